/**
 * Native subscriptions to replication sets against two real PostgreSQL 15 clusters (source with
 * wal_level = logical, target):
 *  1. the cookbook scenario: pgbench tables, a set replicating inserts and updates only, subscribed
 *     with --sync-structure; rows and updates arrive, a delete on the source does not; a second
 *     subscribe under the same name and a subscription the target refuses leave no slot behind;
 *  2. a row filter: only matching rows arrive (initial copy and later changes); an existing table
 *     on the target is left as it is;
 *  3. a table added to the set later arrives with its data.
 * Each scenario uses its own source and target databases on the same two clusters.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSet } from '../../src/logical/set-catalog.js';
import type { Subscriber } from '../../src/logical/set-meta.js';
import { addTable, createSet } from '../../src/logical/sets-admin.js';
import { syncStructure } from '../../src/logical/structure-sync.js';
import { subscribeNative, subscriptionTableStates } from '../../src/logical/subscribe-native.js';
import { connectPg } from '../../src/pg/connect.js';
import { destroyAllClusters, PgCluster } from '../helpers/pg-cluster.js';
import { pgark } from '../helpers/pgark-run.js';
import { expectJsonFormat } from '../helpers/json-schema.js';
import { waitUntil } from '../helpers/wait.js';

let source: PgCluster;
let target: PgCluster;

beforeAll(async () => {
  [source, target] = await Promise.all([
    PgCluster.create({ name: 'sets-src', walSegmentSizeMB: 1, conf: { wal_level: 'logical', max_wal_size: '64MB' } }),
    PgCluster.create({ name: 'sets-tgt', walSegmentSizeMB: 1, conf: { wal_retrieve_retry_interval: '500ms' } }),
  ]);
  await Promise.all([source.start(), target.start()]);
}, 120_000);
afterAll(async () => {
  await destroyAllClusters();
}, 120_000);

const dsn = (c: PgCluster, db: string) => `host=${c.host} port=${c.port} user=postgres dbname=${db}`;
const pgarkSlots = async () => source.psql("SELECT string_agg(slot_name, ',' ORDER BY slot_name) FROM pg_replication_slots WHERE slot_name LIKE 'pgark%'");

async function newDatabases(name: string): Promise<void> {
  await source.psql(`CREATE DATABASE ${name}`);
  await target.psql(`CREATE DATABASE tgt_${name}`);
}

/** Wait until `sql` gives the same answer on the target as on the source. */
async function converged(sql: string, srcDb: string, tgtDb: string, what: string, timeoutMs = 30_000): Promise<string> {
  const want = await source.psql(sql, srcDb);
  await waitUntil(what, async () => (await target.psql(sql, tgtDb)) === want, timeoutMs, () => `source: ${want}`);
  return want;
}

describe('native subscriptions', () => {
  it('cookbook: inserts and updates arrive, a delete does not', { timeout: 90_000 }, async () => {
    await newDatabases('cookbook');
    await source.pgbench(['-i', '-s', '1', '--foreign-keys', '-q'], { db: 'cookbook' });
    // pgbench_history has no primary key: updates need a replica identity.
    await source.psql('ALTER TABLE pgbench_history REPLICA IDENTITY FULL', 'cookbook');
    // Through the CLI, as the cookbook shows it.
    await pgark(['sets', 'create', 'cookbook', '--source', dsn(source, 'cookbook'), '--tables', 'pgbench_accounts,pgbench_history', '--operations', 'insert,update']);
    const subscribe = ['sets', 'subscribe', 'cookbook', '--source', dsn(source, 'cookbook'), '--target', dsn(target, 'tgt_cookbook')];

    // The set's tables are missing on the target and there is no --sync-structure: refused, no slot.
    const refused = await pgark(subscribe, { allowFail: true });
    expect(refused.code).toBe(5);
    expect(refused.stderr).toMatch(/the target has no table "public"."pgbench_accounts", "public"."pgbench_history": create them on the target first, or use --sync-structure/);
    expect(await pgarkSlots()).toBe('');

    const r = await pgark([...subscribe, '--sync-structure', '--wait-sync', '60', '--json']);
    const { format: _format, ...sub } = expectJsonFormat<Subscriber & { format: string }>(r.stdout, 'sets-subscribe');
    expect(sub).toMatchObject({ name: 'tgt_cookbook', mode: 'native', slot: 'pgark_cookbook_tgt_cookbook', target: dsn(target, 'tgt_cookbook') });
    // Foreign keys to tables outside the set are left out with a note; the one inside is kept.
    expect(r.stderr).toMatch(/foreign key pgbench_accounts pgbench_accounts_bid_fkey not created on the target: it references public\.pgbench_branches/);
    expect(await target.psql("SELECT string_agg(conname, ',' ORDER BY conname) FROM pg_constraint WHERE contype = 'f'", 'tgt_cookbook')).toBe('pgbench_history_aid_fkey');
    expect(await target.psql("SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables WHERE schemaname = 'public'", 'tgt_cookbook'))
      .toBe('pgbench_accounts,pgbench_history');
    // The initial copy is complete once waitSync returned.
    expect(await target.psql('SELECT count(*), sum(abalance) FROM pgbench_accounts', 'tgt_cookbook')).toBe('100000|0');
    const states = await (async () => {
      const c = await connectPg(dsn(target, 'tgt_cookbook'));
      try {
        return await subscriptionTableStates(c, 'tgt_cookbook');
      } finally {
        await c.end();
      }
    })();
    expect(states.map((s) => s.state).every((s) => s === 'r' || s === 's')).toBe(true);
    expect(states).toHaveLength(2);

    // The subscriber is in the set's metadata and its slot is in use.
    const c = await connectPg(dsn(source, 'cookbook'));
    try {
      expect((await readSet(c, 'cookbook')).subscribers).toEqual([sub]);
    } finally {
      await c.end();
    }
    await waitUntil('the slot to be active', async () => (await source.psql("SELECT active FROM pg_replication_slots WHERE slot_name = 'pgark_cookbook_tgt_cookbook'")) === 't', 20_000);

    // pgbench transactions: updates of accounts and inserts into history arrive.
    await source.pgbench(['-n', '-c', '2', '-t', '50'], { db: 'cookbook' });
    await converged('SELECT count(*) FROM pgbench_history', 'cookbook', 'tgt_cookbook', 'history rows to arrive');
    const sums = await converged('SELECT sum(abalance), count(*) FILTER (WHERE abalance <> 0) FROM pgbench_accounts', 'cookbook', 'tgt_cookbook', 'account updates to arrive');
    expect(sums).not.toBe('0|0');
    await source.psql('UPDATE pgbench_accounts SET abalance = 4242 WHERE aid = 7', 'cookbook');
    await converged('SELECT abalance FROM pgbench_accounts WHERE aid = 7', 'cookbook', 'tgt_cookbook', 'a single update to arrive');

    // A delete is not replicated: the row is still on the target after a later insert arrived.
    const victim = await source.psql('SELECT min(aid) FROM pgbench_accounts WHERE aid NOT IN (SELECT aid FROM pgbench_history)', 'cookbook');
    await source.psql(`DELETE FROM pgbench_accounts WHERE aid = ${victim}`, 'cookbook');
    await source.psql("INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) SELECT 1, 1, max(aid), 99999, now() FROM pgbench_accounts", 'cookbook');
    await converged('SELECT count(*) FROM pgbench_history WHERE delta = 99999', 'cookbook', 'tgt_cookbook', 'the marker insert to arrive');
    expect(await source.psql(`SELECT count(*) FROM pgbench_accounts WHERE aid = ${victim}`, 'cookbook')).toBe('0');
    expect(await target.psql(`SELECT count(*) FROM pgbench_accounts WHERE aid = ${victim}`, 'tgt_cookbook')).toBe('1');
    expect(await target.psql('SELECT count(*) FROM pgbench_accounts', 'tgt_cookbook')).toBe('100000');

    // The same subscriber again: refused before anything is created.
    await expect(subscribeNative({ set: 'cookbook', sourceDsn: dsn(source, 'cookbook'), targetDsn: dsn(target, 'tgt_cookbook'), syncStructure: false, copyData: true }))
      .rejects.toThrow(/set 'cookbook' already has a subscriber 'tgt_cookbook'/);

    // A subscription the target refuses (its user may not create subscriptions): the slot made for it is dropped again.
    await target.psql('CREATE ROLE app LOGIN', 'tgt_cookbook');
    await expect(subscribeNative({
      set: 'cookbook', sourceDsn: dsn(source, 'cookbook'), targetDsn: `host=${target.host} port=${target.port} user=app dbname=tgt_cookbook`,
      name: 'app', syncStructure: false, copyData: false,
    })).rejects.toThrow(/unable to create subscription app on the target: must be superuser/);
    expect(await pgarkSlots()).toBe('pgark_cookbook_tgt_cookbook');
    const c2 = await connectPg(dsn(source, 'cookbook'));
    try {
      expect((await readSet(c2, 'cookbook')).subscribers.map((s) => s.name)).toEqual(['tgt_cookbook']);
    } finally {
      await c2.end();
    }
  });

  it('a row filter replicates only the matching rows; an existing target table is left as it is', { timeout: 60_000 }, async () => {
    await newDatabases('filtered');
    await source.pgbench(['-i', '-s', '1', '-q'], { db: 'filtered' });
    await source.psql('INSERT INTO pgbench_branches VALUES (2, 0); UPDATE pgbench_accounts SET bid = 2 WHERE aid % 10 = 0; ALTER TABLE pgbench_accounts REPLICA IDENTITY FULL', 'filtered');
    await createSet({ set: 'branch1', sourceDsn: dsn(source, 'filtered'), tables: 'pgbench_accounts', rowFilters: ['pgbench_accounts:bid = 1'] });
    // The target already has the table (made by hand, with an extra column): structure sync leaves it alone.
    await target.psql('CREATE TABLE pgbench_accounts (aid int PRIMARY KEY, bid int, abalance int, filler char(84), note text)', 'tgt_filtered');
    const notes: string[] = [];
    await subscribeNative({
      set: 'branch1', sourceDsn: dsn(source, 'filtered'), targetDsn: dsn(target, 'tgt_filtered'), name: 'reports',
      syncStructure: true, copyData: true, waitSync: 60, onNote: (n) => notes.push(n),
    });
    expect(notes).toEqual(['sets subscribe: table "public"."pgbench_accounts" already exists on the target: left as it is']);
    expect(await target.psql('SELECT count(*), count(*) FILTER (WHERE bid = 1) FROM pgbench_accounts', 'tgt_filtered')).toBe('90000|90000');
    await source.psql("INSERT INTO pgbench_accounts VALUES (200001, 2, 0, ''), (200002, 1, 0, ''); UPDATE pgbench_accounts SET abalance = 5 WHERE aid IN (1, 10)", 'filtered');
    await waitUntil('the matching insert to arrive', async () => (await target.psql('SELECT count(*) FROM pgbench_accounts WHERE aid = 200002', 'tgt_filtered')) === '1', 30_000);
    expect(await target.psql('SELECT aid, abalance FROM pgbench_accounts WHERE aid IN (1, 10, 200001) ORDER BY aid', 'tgt_filtered')).toBe('1|5');
    expect(await target.psql('SELECT count(*) FROM pgbench_accounts WHERE bid <> 1', 'tgt_filtered')).toBe('0');
  });

  it('a table added to the set later arrives with its data', { timeout: 60_000 }, async () => {
    await newDatabases('later');
    await source.pgbench(['-i', '-s', '1', '-q'], { db: 'later' });
    await createSet({ set: 'later', sourceDsn: dsn(source, 'later'), tables: 'pgbench_branches' });
    await subscribeNative({ set: 'later', sourceDsn: dsn(source, 'later'), targetDsn: dsn(target, 'tgt_later'), syncStructure: true, copyData: true, waitSync: 60 });
    expect(await target.psql('SELECT count(*) FROM pgbench_branches', 'tgt_later')).toBe('1');
    // The new table's definition goes to the target first (the same structure sync), then into the set.
    const s = await connectPg(dsn(source, 'later'));
    const t = await connectPg(dsn(target, 'tgt_later'));
    try {
      // With it, a table in a schema the target lacks, with awkward names and a serial column.
      await source.psql('CREATE SCHEMA "Sales"; CREATE TABLE "Sales"."Order*Lines" (id serial PRIMARY KEY, "Item" text NOT NULL DEFAULT \'x\')', 'later');
      const tables = [{ schema: 'public', table: 'pgbench_tellers' }, { schema: 'Sales', table: 'Order*Lines' }];
      const r = await syncStructure({ sourceDsn: dsn(source, 'later'), source: s, target: t, tables });
      expect(r).toMatchObject({ created: tables, existing: [], schemasCreated: ['Sales'] });
      await target.psql('INSERT INTO "Sales"."Order*Lines" DEFAULT VALUES', 'tgt_later');
      expect(await target.psql('SELECT id, "Item" FROM "Sales"."Order*Lines"', 'tgt_later')).toBe('1|x');
      // search_path and friends set by the dump do not stay in the session.
      expect((await t.query('SHOW search_path')).rows[0]).toEqual({ search_path: '"$user", public' });
    } finally {
      await s.end();
      await t.end();
    }
    await source.psql('UPDATE pgbench_tellers SET tbalance = tid * 3', 'later');
    const added = await addTable({ set: 'later', sourceDsn: dsn(source, 'later'), table: 'pgbench_tellers' });
    expect(added.refreshed).toEqual(['tgt_later']);
    await converged('SELECT count(*), sum(tbalance) FROM pgbench_tellers', 'later', 'tgt_later', 'the added table\'s rows to arrive');
    await source.psql('INSERT INTO pgbench_tellers VALUES (11, 1, 77)', 'later');
    await converged('SELECT count(*), sum(tbalance) FROM pgbench_tellers', 'later', 'tgt_later', 'a later insert into the added table to arrive');
  });
});
