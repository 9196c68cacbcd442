import { describe, expect, it } from 'vitest';
import { deleteSql, identityCondition, PreparedCache, SqlBatch, sqlValue, truncateSql, updateSql, type Rel } from '../../src/logical/pgoutput-apply.js';
import { applyPrometheusText, retryDelayMs } from '../../src/logical/apply-worker.js';
import { alreadyApplied, positionGuardSql, positionUpdateSql, timestampSql } from '../../src/logical/apply-position.js';

const accounts: Rel = {
  relationOid: 1, schema: 'public', name: 'accounts', replicaIdentity: 'default',
  columns: [{ name: 'id', typeOid: 23, flags: 1 }, { name: 'bal', typeOid: 23, flags: 0 }, { name: 'note', typeOid: 25, flags: 0 }],
  keyColumns: ['id'],
};
const history: Rel = {
  relationOid: 2, schema: 'public', name: 'hist"ory', replicaIdentity: 'full',
  columns: [{ name: 'a', typeOid: 23, flags: 0 }, { name: 'j', typeOid: 114, flags: 0 }, { name: 'n', typeOid: 25, flags: 0 }],
  keyColumns: [],
};
const nokey: Rel = { ...accounts, relationOid: 3, name: 'nokey', replicaIdentity: 'nothing', keyColumns: [] };

describe('sqlValue', () => {
  it.each([
    [null, 'NULL'],
    ['1', "'1'"],
    ["it's", "'it''s'"],
    ['a\\b', "E'a\\\\b'"],
    ['', "''"],
  ])('%j -> %s', (v, sql) => expect(sqlValue(v)).toBe(sql));
  it('refuses non-text values', () => {
    expect(() => sqlValue(5)).toThrow(/text-format/);
    expect(() => sqlValue(Buffer.from('x'))).toThrow(/text-format/);
  });
});

describe('identity conditions', () => {
  const cases: Array<[string, Rel, Record<string, unknown> | null, Record<string, unknown> | null, Record<string, unknown> | null, string]> = [
    ['key from new tuple', accounts, null, null, { id: '5', bal: '1' }, `"id" = '5'`],
    ['old key wins (key changed)', accounts, { id: '4' }, null, { id: '5' }, `"id" = '4'`],
    ['full: all old columns, nulls, json as text, one row', history, null, { a: '1', j: '{"x":1}', n: null }, null,
      `ctid = (SELECT ctid FROM "public"."hist""ory" WHERE "a" = '1' AND "j"::text = '{"x":1}' AND "n" IS NULL LIMIT 1)`],
  ];
  it.each(cases)('%s', (_n, rel, key, old, fb, sql) => expect(identityCondition(rel, key, old, fb)).toBe(sql));
  it('refuses a relation without identity', () => {
    expect(() => identityCondition(nokey, null, null, { id: '1' })).toThrow(/no replica identity key/);
  });
  it('refuses a missing key value', () => {
    expect(() => identityCondition(accounts, null, null, { bal: '1' })).toThrow(/key column id/);
  });
});

describe('statements', () => {
  it('update leaves unchanged TOAST values out', () => {
    expect(updateSql(accounts, null, null, { id: '1', bal: '7', note: undefined })).toBe(`UPDATE "public"."accounts" SET "id" = '1', "bal" = '7' WHERE "id" = '1'`);
  });
  it('update with nothing to set is no statement', () => {
    expect(updateSql({ ...accounts, columns: [accounts.columns[2]!] }, { id: '1' }, null, { note: undefined })).toBeUndefined();
  });
  it('delete and truncate', () => {
    expect(deleteSql(accounts, { id: '9' }, null)).toBe(`DELETE FROM "public"."accounts" WHERE "id" = '9'`);
    expect(truncateSql([accounts, history], true)).toBe(`TRUNCATE "public"."accounts", "public"."hist""ory" RESTART IDENTITY`);
    expect(truncateSql([accounts], false)).toBe(`TRUNCATE "public"."accounts"`);
  });
});

describe('SqlBatch', () => {
  const ins = (rel: Rel, v: Record<string, unknown>) => ({ tag: 'insert' as const, relation: rel, new: v });
  it('merges consecutive inserts into one relation, splits at other changes and at maxInsertRows', () => {
    const b = new SqlBatch({ operations: ['insert', 'update', 'delete', 'truncate'], maxInsertRows: 2 });
    b.add(ins(accounts, { id: '1', bal: '0', note: null }));
    b.add(ins(accounts, { id: '2', bal: '0', note: 'x' }));
    b.add(ins(accounts, { id: '3', bal: '0', note: 'y' }));
    b.add({ tag: 'delete', relation: accounts, key: { id: '1' }, old: null });
    b.add(ins(accounts, { id: '4', bal: '0', note: null }));
    expect(b.take()).toBe([
      `INSERT INTO "public"."accounts" ("id", "bal", "note") VALUES ('1', '0', NULL), ('2', '0', 'x')`,
      `INSERT INTO "public"."accounts" ("id", "bal", "note") VALUES ('3', '0', 'y')`,
      `DELETE FROM "public"."accounts" WHERE "id" = '1'`,
      `INSERT INTO "public"."accounts" ("id", "bal", "note") VALUES ('4', '0', NULL)`,
    ].join(';\n'));
    expect(b.rows).toBe(5);
    expect(b.empty).toBe(true);
    expect(b.take()).toBe('');
  });

  const opCases: Array<[string, Array<'insert' | 'update' | 'delete' | 'truncate'>, number, number]> = [
    ['all operations', ['insert', 'update', 'delete', 'truncate'], 4, 0],
    ['insert,update only: delete and truncate skipped', ['insert', 'update'], 2, 2],
    ['insert only', ['insert'], 1, 3],
  ];
  it.each(opCases)('%s', (_n, operations, rows, skipped) => {
    const b = new SqlBatch({ operations });
    b.add(ins(accounts, { id: '1', bal: '0', note: null }));
    b.add({ tag: 'update', relation: accounts, key: null, old: null, new: { id: '1', bal: '2', note: null } });
    b.add({ tag: 'delete', relation: accounts, key: { id: '1' }, old: null });
    b.add({ tag: 'truncate', cascade: true, restartIdentity: false, relations: [accounts] });
    expect([b.rows, b.skipped]).toEqual([rows, skipped]);
    const sql = b.take();
    expect(sql.includes('DELETE')).toBe(operations.includes('delete'));
    expect(sql.includes('CASCADE')).toBe(false);
  });

  it('accept() holds back relations still being synchronised', () => {
    const b = new SqlBatch({ operations: ['insert', 'truncate'], accept: (r) => r.name !== 'accounts' });
    expect(b.add(ins(accounts, { id: '1', bal: '0', note: null }))).toBe(false);
    expect(b.add(ins(history, { a: '1', j: null, n: null }))).toBe(true);
    b.add({ tag: 'truncate', cascade: false, restartIdentity: false, relations: [accounts, history] });
    expect(b.take()).toBe(`INSERT INTO "public"."hist""ory" ("a", "j", "n") VALUES ('1', NULL, NULL);\nTRUNCATE "public"."hist""ory"`);
  });

  it('bytes grows with buffered SQL and resets on take', () => {
    const b = new SqlBatch({ operations: ['insert'] });
    expect(b.bytes).toBe(0);
    b.add(ins(accounts, { id: '1', bal: '0', note: 'x'.repeat(1000) }));
    expect(b.bytes).toBeGreaterThan(1000);
    b.take();
    expect(b.bytes).toBe(0);
  });
});

describe('position', () => {
  it.each([
    [0x100n, 0x200n, true],
    [0x200n, 0x200n, false],
    [0x300n, 0x200n, false],
  ])('commit %s vs stored %s: already applied %s', (c, s, r) => expect(alreadyApplied(c, s)).toBe(r));
  it('update statement', () => {
    expect(positionUpdateSql("s.o'k", 0x1_0000_00a0n, 1700000000123456n)).toBe(
      `UPDATE pgark.apply_position SET lsn = '1/A0', commit_time = (timestamptz 'epoch' + 1700000000123456 * interval '1 microsecond'), updated_at = now(), last_error = NULL WHERE subscription = 's.o''k'`,
    );
    expect(timestampSql(0n)).toContain('epoch');
  });
});

describe('prepared statements', () => {
  it('PREPAREs a shape once, then EXECUTEs it with literals', () => {
    const cache = new PreparedCache();
    const b = new SqlBatch({ operations: ['insert', 'update', 'delete'], prepared: cache });
    b.add({ tag: 'update', relation: accounts, key: null, old: null, new: { id: '1', bal: "o'k", note: null } });
    b.add({ tag: 'update', relation: accounts, key: null, old: null, new: { id: '2', bal: '3', note: 'x' } });
    b.add({ tag: 'insert', relation: accounts, new: { id: '3', bal: '0', note: null } });
    b.add({ tag: 'delete', relation: accounts, key: { id: '3' }, old: null });
    expect(b.take().split(';\n')).toEqual([
      `PREPARE pgark_p1 AS UPDATE "public"."accounts" SET "id" = $1, "bal" = $2, "note" = $3 WHERE "id" = $4`,
      `EXECUTE pgark_p1('1', 'o''k', NULL, '1')`,
      `EXECUTE pgark_p1('2', '3', 'x', '2')`,
      `PREPARE pgark_p2 AS INSERT INTO "public"."accounts" ("id", "bal", "note") VALUES ($1, $2, $3)`,
      `EXECUTE pgark_p2('3', '0', NULL)`,
      `PREPARE pgark_p3 AS DELETE FROM "public"."accounts" WHERE "id" = $1`,
      `EXECUTE pgark_p3('3')`,
    ]);
  });
  it('null key values make their own shape (IS NULL), multi-row inserts stay literal, a full cache falls back to plain SQL', () => {
    const cache = new PreparedCache(1);
    expect(cache.statements((p) => deleteSql(history, null, { a: null, j: null, n: 'x' }, p))).toEqual([
      `PREPARE pgark_p1 AS DELETE FROM "public"."hist""ory" WHERE ctid = (SELECT ctid FROM "public"."hist""ory" WHERE "a" IS NULL AND "j" IS NULL AND "n" = $1 LIMIT 1)`,
      `EXECUTE pgark_p1('x')`,
    ]);
    expect(cache.statements((p) => deleteSql(accounts, { id: '1' }, null, p))).toEqual([`DELETE FROM "public"."accounts" WHERE "id" = '1'`]);
    const b = new SqlBatch({ operations: ['insert'], prepared: new PreparedCache() });
    b.add({ tag: 'insert', relation: accounts, new: { id: '1', bal: '0', note: null } });
    b.add({ tag: 'insert', relation: accounts, new: { id: '2', bal: '0', note: null } });
    expect(b.take()).toBe(`INSERT INTO "public"."accounts" ("id", "bal", "note") VALUES ('1', '0', NULL), ('2', '0', NULL)`);
  });
});

describe('worker helpers', () => {
  it('guard fails unless the stored position is the expected one', () => {
    expect(positionGuardSql('s.a', 0x10n)).toBe(
      `SELECT CASE WHEN count(*) = 1 THEN 1 ELSE ('pgark: the applied position of ' || 's.a' || ' is not ' || '0/10' || ' (another apply worker, or a failed batch; rows: ' || count(*)::text || ')')::int END FROM pgark.apply_position WHERE subscription = 's.a' AND lsn = '0/10'`,
    );
  });
  it.each([[1, 1000], [2, 2000], [5, 16000], [6, 30000], [50, 30000]])('retry %i waits %i ms', (a, ms) => expect(retryDelayMs(a)).toBe(ms));
  it('Prometheus text', () => {
    expect(applyPrometheusText(undefined)).toContain('starting');
    const text = applyPrometheusText({
      set: 's', subscriber: 'a', state: 'streaming', appliedLsn: '0/10', sourceLsn: '0/20', lagBytes: 16, lagSeconds: 0.5,
      transactions: 3, rows: 7, skippedTransactions: 0, lastError: null, updatedAt: '',
    });
    expect(text).toContain('pgark_apply_rows_total{set="s",subscriber="a"} 7');
    expect(text).toContain('pgark_apply_lag_bytes{set="s",subscriber="a"} 16');
    expect(text).toContain('pgark_apply_up{set="s",subscriber="a"} 1');
  });
});
