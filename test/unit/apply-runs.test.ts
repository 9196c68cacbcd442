import { describe, expect, it } from 'vitest';
import { multiDeleteSql, multiUpdateSql, runPolicy, type TargetRelInfo } from '../../src/logical/apply-runs.js';
import { PreparedCache, SqlBatch, type ChangeMessage, type Rel, type Tuple } from '../../src/logical/pgoutput-apply.js';

const acc: Rel = {
  relationOid: 1, schema: 'public', name: 'acc', replicaIdentity: 'default',
  columns: [{ name: 'id', typeOid: 23, flags: 1 }, { name: 'bal', typeOid: 23, flags: 0 }, { name: 'note', typeOid: 25, flags: 0 }],
  keyColumns: ['id'],
};
const tel: Rel = { ...acc, relationOid: 2, name: 'tel' };
const hist: Rel = { relationOid: 3, schema: 'public', name: 'hist', replicaIdentity: 'full', columns: [{ name: 'a', typeOid: 23, flags: 0 }], keyColumns: [] };
/** A relation with triggers on the target: its changes stay in place. */
const dep: Rel = { ...acc, relationOid: 4, name: 'dep' };

const free: TargetRelInfo = { independent: true, uniqueIndexes: [['id']] };

describe('runPolicy', () => {
  it.each<[string, TargetRelInfo | undefined, Rel, { updates: boolean } | undefined]>([
    ['missing on the target', undefined, acc, undefined],
    ['triggers, rules, row security or children', { independent: false, uniqueIndexes: [['id']] }, acc, undefined],
    ['primary key only', free, acc, { updates: true }],
    ['no unique index at all', { independent: true, uniqueIndexes: [] }, acc, { updates: true }],
    ['another unique column: updates stay single', { independent: true, uniqueIndexes: [['id'], ['note']] }, acc, { updates: false }],
    ['expression or partial unique index', { independent: true, uniqueIndexes: [['id'], null] }, acc, { updates: false }],
    ['REPLICA IDENTITY FULL', { independent: true, uniqueIndexes: [] }, hist, { updates: false }],
  ])('%s', (_n, info, rel, want) => expect(runPolicy(info, rel)).toEqual(want));
});

const ins = (relation: Rel, v: Tuple): ChangeMessage => ({ tag: 'insert', relation, new: v });
const upd = (relation: Rel, v: Tuple, key: Tuple | null = null): ChangeMessage => ({ tag: 'update', relation, key, old: null, new: v });
const del = (relation: Rel, id: string): ChangeMessage => ({ tag: 'delete', relation, key: { id }, old: null });
const ALL = ['insert', 'update', 'delete', 'truncate'] as const;

function run(changes: ChangeMessage[], o: { prepared?: boolean; info?: (r: Rel) => TargetRelInfo | undefined } = {}): string[] {
  const info = o.info ?? ((r: Rel) => (r === dep ? { independent: false, uniqueIndexes: [] } : r === hist ? { independent: true, uniqueIndexes: [] } : free));
  const b = new SqlBatch({ operations: [...ALL], independent: (r) => runPolicy(info(r), r), ...(o.prepared ? { prepared: new PreparedCache() } : {}) });
  for (const c of changes) b.add(c);
  expect(b.rows).toBe(changes.length);
  return b.take().split(';\n');
}

const T = (t: string) => `(NULL::"public"."${t}")`;
const UPD = (t: string, rows: string) =>
  `UPDATE "public"."${t}" AS pgark_t SET "bal" = pgark_v.c2 FROM (VALUES (${T(t)}."id", ${T(t)}."bal"), ${rows}) AS pgark_v(c1, c2) WHERE pgark_t."id" = pgark_v.c1`;

describe('SqlBatch with independent tables (which changes merge, which flush)', () => {
  const cases: Array<[string, ChangeMessage[], string[]]> = [
    ['TPC-B-like transactions: per table, one statement each',
      [upd(acc, { id: '1', bal: '5' }), upd(tel, { id: '1', bal: '5' }), ins(hist, { a: '1' }),
        upd(acc, { id: '2', bal: '6' }), upd(tel, { id: '2', bal: '6' }), ins(hist, { a: '2' })],
      [UPD('acc', `('1', '5'), ('2', '6')`), UPD('tel', `('1', '5'), ('2', '6')`), `INSERT INTO "public"."hist" ("a") VALUES ('1'), ('2')`]],
    ['the same key twice: folded, the later value wins',
      [upd(acc, { id: '1', bal: '5' }), upd(acc, { id: '2', bal: '1' }), upd(acc, { id: '1', bal: '7' })],
      [UPD('acc', `('1', '7'), ('2', '1')`)]],
    ['unchanged TOAST value (undefined) keeps the earlier update\'s value; NULL is a value',
      [upd(acc, { id: '1', bal: '5', note: 'big' }), upd(acc, { id: '1', bal: '6', note: undefined }), upd(acc, { id: '2', bal: null, note: null })],
      [`UPDATE "public"."acc" AS pgark_t SET "bal" = pgark_v.c2, "note" = pgark_v.c3 FROM (VALUES (${T('acc')}."id", ${T('acc')}."bal", ${T('acc')}."note"), ('1', '6', 'big'), ('2', NULL, NULL)) AS pgark_v(c1, c2, c3) WHERE pgark_t."id" = pgark_v.c1`]],
    ['different column shapes: one statement per shape',
      [upd(acc, { id: '1', bal: '5', note: undefined }), upd(acc, { id: '2', bal: '6', note: 'n' }), upd(acc, { id: '3', bal: '7', note: undefined })],
      [UPD('acc', `('1', '5'), ('3', '7')`), `UPDATE "public"."acc" SET "bal" = '6', "note" = 'n' WHERE "id" = '2'`]],
    ['delete then re-insert of a key: in order',
      [del(acc, '1'), del(acc, '2'), ins(acc, { id: '1', bal: '9', note: null }), ins(acc, { id: '3', bal: '9', note: null })],
      [`DELETE FROM "public"."acc" AS pgark_t USING (VALUES (${T('acc')}."id"), ('1'), ('2')) AS pgark_v(c1) WHERE pgark_t."id" = pgark_v.c1`,
        `INSERT INTO "public"."acc" ("id", "bal", "note") VALUES ('1', '9', NULL), ('3', '9', NULL)`]],
    ['insert then update of the key: in order',
      [ins(acc, { id: '1', bal: '0', note: null }), ins(acc, { id: '2', bal: '0', note: null }), upd(acc, { id: '1', bal: '1' })],
      [`INSERT INTO "public"."acc" ("id", "bal", "note") VALUES ('1', '0', NULL), ('2', '0', NULL)`, `UPDATE "public"."acc" SET "bal" = '1' WHERE "id" = '1'`]],
    ['a key change is a single statement in its place and ends the run',
      [upd(acc, { id: '1', bal: '1' }), upd(acc, { id: '9', bal: '2' }, { id: '2' }), upd(acc, { id: '3', bal: '3' })],
      [`UPDATE "public"."acc" SET "bal" = '1' WHERE "id" = '1'`, `UPDATE "public"."acc" SET "id" = '9', "bal" = '2' WHERE "id" = '2'`, `UPDATE "public"."acc" SET "bal" = '3' WHERE "id" = '3'`]],
    ['a dependent table\'s change sees everything before it: runs are emitted first, later ones after',
      [upd(acc, { id: '1', bal: '1' }), upd(acc, { id: '2', bal: '1' }), ins(dep, { id: '1', bal: '0', note: null }), upd(acc, { id: '3', bal: '1' }), upd(acc, { id: '4', bal: '1' })],
      [UPD('acc', `('1', '1'), ('2', '1')`), `INSERT INTO "public"."dep" ("id", "bal", "note") VALUES ('1', '0', NULL)`, UPD('acc', `('3', '1'), ('4', '1')`)]],
    ['a dependent insert before an independent change is emitted before it',
      [ins(dep, { id: '1', bal: '0', note: null }), upd(acc, { id: '1', bal: '1' }), upd(acc, { id: '2', bal: '1' })],
      [`INSERT INTO "public"."dep" ("id", "bal", "note") VALUES ('1', '0', NULL)`, UPD('acc', `('1', '1'), ('2', '1')`)]],
    ['TRUNCATE flushes the runs first',
      [upd(acc, { id: '1', bal: '1' }), { tag: 'truncate', cascade: false, restartIdentity: false, relations: [acc] }, ins(acc, { id: '1', bal: '0', note: null })],
      [`UPDATE "public"."acc" SET "bal" = '1' WHERE "id" = '1'`, `TRUNCATE "public"."acc"`, `INSERT INTO "public"."acc" ("id", "bal", "note") VALUES ('1', '0', NULL)`]],
    ['REPLICA IDENTITY FULL updates and deletes stay single, in order within their table',
      [ins(hist, { a: '1' }), { tag: 'delete', relation: hist, key: null, old: { a: '1' } }, ins(hist, { a: '2' })],
      [`INSERT INTO "public"."hist" ("a") VALUES ('1')`, `DELETE FROM "public"."hist" WHERE ctid = (SELECT ctid FROM "public"."hist" WHERE "a" = '1' LIMIT 1)`, `INSERT INTO "public"."hist" ("a") VALUES ('2')`]],
  ];
  it.each(cases)('%s', (_n, changes, want) => expect(run(changes)).toEqual(want));

  it('another unique index on the target: updates are not merged, still grouped per table', () => {
    const info = () => ({ independent: true, uniqueIndexes: [['id'], ['note']] });
    expect(run([upd(acc, { id: '1', bal: '1' }), upd(tel, { id: '1', bal: '1' }), upd(acc, { id: '1', bal: '2' })], { info })).toEqual([
      `UPDATE "public"."acc" SET "id" = '1', "bal" = '1' WHERE "id" = '1'`,
      `UPDATE "public"."acc" SET "id" = '1', "bal" = '2' WHERE "id" = '1'`,
      `UPDATE "public"."tel" SET "id" = '1', "bal" = '1' WHERE "id" = '1'`,
    ]);
  });

  it('without target facts every change stays in place (the behaviour before)', () => {
    expect(run([upd(acc, { id: '1', bal: '1' }), upd(tel, { id: '1', bal: '1' }), upd(acc, { id: '2', bal: '2' })], { info: () => undefined })).toEqual([
      `UPDATE "public"."acc" SET "id" = '1', "bal" = '1' WHERE "id" = '1'`,
      `UPDATE "public"."tel" SET "id" = '1', "bal" = '1' WHERE "id" = '1'`,
      `UPDATE "public"."acc" SET "id" = '2', "bal" = '2' WHERE "id" = '2'`,
    ]);
  });

  it('single rows left in a run use the prepared statements', () => {
    expect(run([upd(acc, { id: '1', bal: '1' }), del(tel, '4')], { prepared: true })).toEqual([
      `PREPARE pgark_p1 AS UPDATE "public"."acc" SET "bal" = $1 WHERE "id" = $2`, `EXECUTE pgark_p1('1', '1')`,
      `PREPARE pgark_p2 AS DELETE FROM "public"."tel" WHERE "id" = $1`, `EXECUTE pgark_p2('4')`,
    ]);
  });

  it('bytes counts the runs; take empties them', () => {
    const b = new SqlBatch({ operations: [...ALL], independent: () => ({ updates: true }) });
    b.add(upd(acc, { id: '1', bal: 'x'.repeat(1000) }));
    expect(b.bytes).toBeGreaterThan(1000);
    expect(b.empty).toBe(false);
    b.take();
    expect([b.bytes, b.empty]).toEqual([0, true]);
  });

  it('composite keys', () => {
    const two: Rel = { ...acc, keyColumns: ['id', 'bal'] };
    expect(multiDeleteSql(two, [{ id: '1', bal: '2' }, { id: '3', bal: '4' }])).toBe(
      `DELETE FROM "public"."acc" AS pgark_t USING (VALUES (${T('acc')}."id", ${T('acc')}."bal"), ('1', '2'), ('3', '4')) AS pgark_v(c1, c2) WHERE pgark_t."id" = pgark_v.c1 AND pgark_t."bal" = pgark_v.c2`,
    );
    expect(multiUpdateSql(two, ['note'], [{ id: '1', bal: '2', note: 'a' }, { id: '3', bal: '4', note: null }])).toBe(
      `UPDATE "public"."acc" AS pgark_t SET "note" = pgark_v.c3 FROM (VALUES (${T('acc')}."id", ${T('acc')}."bal", ${T('acc')}."note"), ('1', '2', 'a'), ('3', '4', NULL)) AS pgark_v(c1, c2, c3) WHERE pgark_t."id" = pgark_v.c1 AND pgark_t."bal" = pgark_v.c2`,
    );
  });
});
