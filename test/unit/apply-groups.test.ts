import type { Client } from 'pg';
import { describe, expect, it } from 'vitest';
import { acceptsChange, GroupApplier, groupWaitMs, type SessionTables } from '../../src/logical/apply-groups.js';
import { positionGuardSql, positionUpdateSql } from '../../src/logical/apply-position.js';
import type { ApplyStatus } from '../../src/logical/apply-worker.js';
import type { Rel } from '../../src/logical/pgoutput-apply.js';

const rel = (schema: string, name: string): Rel => ({
  relationOid: 1, schema, name, replicaIdentity: 'default', columns: [{ name: 'id', typeOid: 23, flags: 1 }], keyColumns: ['id'],
});

describe('groupWaitMs', () => {
  const now = 1_800_000_000_000;
  it.each([
    ['a fresh commit: the group commits 2 ms after the stream goes quiet', BigInt(now - 5) * 1000n, 2],
    ['one second behind', BigInt(now - 1000) * 1000n, 2],
    ['draining a backlog (the commit is 1.5 s old): waits 50 ms for more', BigInt(now - 1500) * 1000n, 50],
  ])('%s', (_n, commitUs, ms) => expect(groupWaitMs(commitUs, now)).toBe(ms));
});

describe('acceptsChange', () => {
  const tables = (o: Partial<SessionTables>): SessionTables => ({ known: new Set(['public.a', 'public.p']), acceptUnknown: false, pendingRels: new Set(), syncs: new Map(), ...o });
  it.each([
    ['a known table, no copy', tables({}), 'a', 100n, true],
    ['a table published after the session started (--tables set)', tables({}), 'later', 100n, false],
    ['a table created later in a schema / all-tables set', tables({ acceptUnknown: true }), 'later', 100n, true],
    ['a pending table not copied yet', tables({ pendingRels: new Set(['public.p']) }), 'p', 100n, false],
    ['a copied table, transaction before its sync LSN', tables({ pendingRels: new Set(['public.p']), syncs: new Map([['public.p', 200n]]) }), 'p', 199n, false],
    ['a copied table, transaction at its sync LSN', tables({ pendingRels: new Set(['public.p']), syncs: new Map([['public.p', 200n]]) }), 'p', 200n, true],
    ['a copied table, transaction after its sync LSN', tables({ syncs: new Map([['public.a', 200n]]) }), 'a', 300n, true],
  ])('%s', (_what, t, name, commitLsn, want) => {
    expect(acceptsChange(t, rel('public', name), commitLsn)).toBe(want);
  });
});

function status(): ApplyStatus {
  return {
    set: 's', subscriber: 'n', state: 'streaming', appliedLsn: null, sourceLsn: null, lagBytes: null, lagSeconds: null,
    transactions: 0, rows: 0, skippedTransactions: 0, lastError: null, updatedAt: '',
  };
}

/** An applier over a target that records the SQL it is sent (or fails it). */
function applier(o: { startLsn: bigint; fail?: boolean }) {
  const sent: string[] = [];
  const acks: bigint[] = [];
  const failures: Error[] = [];
  const target = { query: async (sql: string) => {
    sent.push(sql);
    if (o.fail) throw new Error('boom');
    return { rows: [] };
  } } as unknown as Client;
  const st = status();
  const a = new GroupApplier({
    target, subscription: 'sub', operations: ['insert', 'update', 'delete', 'truncate'],
    tables: { known: new Set(['public.a']), acceptUnknown: false, pendingRels: new Set(), syncs: new Map() },
    startLsn: o.startLsn, status: st, ack: async (lsn) => void acks.push(lsn), moreQueued: () => true, onFail: (e) => void failures.push(e),
  });
  return { a, sent, acks, failures, st };
}

const begin = (commitLsn: string) => ({ tag: 'begin', commitLsn });
const insert = (id: string) => ({ tag: 'insert', relation: rel('public', 'a'), new: { id } });
const commit = (commitEndLsn: string) => ({ tag: 'commit', commitEndLsn, commitTime: 1_700_000_000_000_000n });

describe('GroupApplier', () => {
  it('applies transactions as one guarded target transaction with the position, then acknowledges', async () => {
    const { a, sent, acks, st } = applier({ startLsn: 0x100n });
    for (const m of [begin('0/200'), insert('1'), commit('0/210'), begin('0/300'), insert('2'), commit('0/310')]) await a.onData(m);
    await a.finish(); // a stop commits the group of complete transactions
    expect(sent).toHaveLength(1);
    expect(sent[0]).toBe(`BEGIN;\n${positionGuardSql('sub', 0x100n)};\n` +
      `PREPARE pgark_p1 AS INSERT INTO "public"."a" ("id") VALUES ($1);\nEXECUTE pgark_p1('1');\nEXECUTE pgark_p1('2');\n` +
      `${positionUpdateSql('sub', 0x310n, 1_700_000_000_000_000n)};\nCOMMIT`);
    expect(acks).toEqual([0x310n]);
    expect([st.transactions, st.rows, st.appliedLsn, a.progressed, a.stored]).toEqual([2, 2, '0/310', true, 0x310n]);
  });

  it('skips a transaction committed before the stored position and only acknowledges it', async () => {
    const { a, sent, acks, st } = applier({ startLsn: 0x500n });
    for (const m of [begin('0/200'), insert('1'), commit('0/210')]) await a.onData(m);
    await a.finish();
    expect(sent).toEqual([]);
    expect(acks).toEqual([0x210n]);
    expect([st.skippedTransactions, st.transactions, a.progressed]).toEqual([1, 0, false]);
  });

  it('a failed target transaction fails the session once, records why, and acknowledges nothing', async () => {
    const { a, acks, failures, st } = applier({ startLsn: 0x100n, fail: true });
    for (const m of [begin('0/200'), insert('1'), commit('0/210')]) await a.onData(m);
    await a.finish();
    expect(failures).toHaveLength(1);
    expect(a.applyError).toMatch(/^unable to apply the transactions up to the one committed at 0\/200: boom/);
    expect(acks).toEqual([]);
    expect([st.transactions, a.progressed]).toEqual([0, false]);
    expect(a.onData(begin('0/300'))).toBeUndefined(); // nothing more is handled after a failure
  });
});
