/**
 * `pgark sets` administration and `pgark slots` against real PostgreSQL 15: a source
 * (wal_level = logical, pgbench tables) and a target (wal_level = replica, which also serves as
 * the server that must be refused). Native subscribers are made here by hand (slot + CREATE
 * SUBSCRIPTION + metadata) and agent subscribers simulated (slot + metadata), so these tests do
 * not depend on the subscribe commands.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSet, writeSet } from '../../src/logical/set-catalog.js';
import type { SetMeta, Subscriber } from '../../src/logical/set-meta.js';
import { destroyAllClusters, findPgBin, PgCluster } from '../helpers/pg-cluster.js';
import { pgark } from '../helpers/pgark-run.js';
import { expectJsonFormat } from '../helpers/json-schema.js';
import { waitUntil } from '../helpers/wait.js';

let source: PgCluster;
let target: PgCluster;

beforeAll(async () => {
  [source, target] = await Promise.all([
    PgCluster.create({ name: 'sets-src', walSegmentSizeMB: 1, conf: { wal_level: 'logical', max_replication_slots: '10', max_wal_senders: '10' } }),
    PgCluster.create({ name: 'sets-dst', walSegmentSizeMB: 1 }),
  ]);
  await Promise.all([source.start(), target.start()]);
  await source.pgbench(['-i', '-s', '1', '-q']);
  await source.psql(`CREATE SCHEMA extra; CREATE TABLE extra.e1 (id int PRIMARY KEY, v text); CREATE TABLE extra.e2 (id int PRIMARY KEY);
    CREATE TABLE only_on_source (id int PRIMARY KEY); INSERT INTO only_on_source VALUES (1)`);
  // The target: pgbench tables without data (d = drop, t = create tables, p = primary keys).
  await target.pgbench(['-i', '-I', 'dtp', '-q']);
}, 120_000);
afterAll(async () => {
  await destroyAllClusters();
}, 120_000);

const src = () => ['--source', source.connString];
const sets = (args: string[]) => pgark(['sets', ...args, ...src()], { allowFail: true });
/** `args --json`, validated against the documented schema of its format (docs/JSON.md). */
async function json<T>(thing: string, args: string[]): Promise<T> {
  const r = await pgark([...args, ...src(), '--json']);
  return expectJsonFormat<T>(r.stdout, thing);
}

async function withClient<T>(c: PgCluster, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ host: c.host, port: c.port, user: 'postgres', database: 'postgres' });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

const publishedTables = (set: string) =>
  source.psql(`SELECT string_agg(schemaname || '.' || tablename, ',' ORDER BY schemaname, tablename) FROM pg_publication_tables WHERE pubname = 'pgark_${set}'`);
const slotNames = () => source.psql("SELECT coalesce(string_agg(slot_name::text, ',' ORDER BY slot_name), '') FROM pg_replication_slots");

/** A native subscriber made by hand: slot on the source, subscription on the target, metadata. */
async function nativeSubscriber(set: string, name: string, copyData = true): Promise<Subscriber> {
  const slot = `pgark_${set}_${name}`;
  await source.psql(`SELECT pg_create_logical_replication_slot('${slot}', 'pgoutput')`);
  await target.psql(`CREATE SUBSCRIPTION ${name} CONNECTION '${source.connString}' PUBLICATION pgark_${set}
    WITH (create_slot = false, slot_name = '${slot}', copy_data = ${copyData})`);
  const sub: Subscriber = { name, mode: 'native', slot, target: target.connString, createdAt: new Date().toISOString() };
  await withClient(source, async (c) => {
    const meta = await readSet(c, set);
    meta.subscribers.push(sub);
    await writeSet(c, meta);
  });
  return sub;
}

/** A simulated agent subscriber: slot (unless noSlot) and metadata, and a position row on the target. */
async function agentSubscriber(set: string, name: string, o: { noSlot?: boolean } = {}): Promise<Subscriber> {
  const slot = `pgark_${set}_${name}`;
  if (!o.noSlot) await source.psql(`SELECT pg_create_logical_replication_slot('${slot}', 'pgoutput')`);
  await target.psql(`CREATE SCHEMA IF NOT EXISTS pgark; CREATE TABLE IF NOT EXISTS pgark.apply_position (subscription text PRIMARY KEY, lsn pg_lsn NOT NULL,
    commit_time timestamptz, updated_at timestamptz NOT NULL DEFAULT now(), last_error text);
    INSERT INTO pgark.apply_position (subscription, lsn) VALUES ('${set}.${name}', '0/0')`);
  const sub: Subscriber = { name, mode: 'agent', slot, target: target.connString, createdAt: new Date().toISOString() };
  await withClient(source, async (c) => {
    const meta = await readSet(c, set);
    meta.subscribers.push(sub);
    await writeSet(c, meta);
  });
  return sub;
}

/** pg_recvlogical streaming from a slot (makes it active). */
function holdSlot(slot: string, publication: string): ChildProcess {
  return spawn(join(findPgBin(), 'pg_recvlogical'), ['-h', source.host, '-p', String(source.port), '-U', 'postgres', '-d', 'postgres',
    '--slot', slot, '--start', '-o', 'proto_version=1', '-o', `publication_names=${publication}`, '-f', '/dev/null'], { stdio: 'ignore' });
}

describe('sets create', () => {
  it('tables with a row filter and a column list; list shows them', async () => {
    const r = await sets(['create', 'accts', '--tables', 'pgbench_accounts,pgbench_branches', '--operations', 'insert,update',
      '--row-filter', 'pgbench_accounts:aid <= 1000', '--columns', 'pgbench_branches:bid,bbalance']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/created set accts/);
    expect(await publishedTables('accts')).toBe('public.pgbench_accounts,public.pgbench_branches');
    expect(await source.psql("SELECT pubinsert, pubupdate, pubdelete, pubtruncate FROM pg_publication WHERE pubname = 'pgark_accts'")).toBe('t|t|f|f');
    const list = (await json<{ sets: SetMeta[] }>('sets-list', ['sets', 'list'])).sets;
    const accts = list.find((m) => m.set === 'accts')!;
    expect(accts.operations).toEqual(['insert', 'update']);
    expect(accts.tables).toEqual([
      { schema: 'public', table: 'pgbench_accounts', rowFilter: 'aid <= 1000' },
      { schema: 'public', table: 'pgbench_branches', columns: ['bid', 'bbalance'] },
    ]);
    const text = await pgark(['sets', 'list', ...src()]);
    expect(text.stdout).toMatch(/set accts \(publication pgark_accts\): public.pgbench_accounts WHERE aid <= 1000; public.pgbench_branches \(bid, bbalance\)/);
    // The same name again is refused.
    const again = await sets(['create', 'accts', '--tables', 'pgbench_tellers']);
    expect(again.code).toBe(5);
    expect(again.stderr).toMatch(/set 'accts' exists already/);
  });

  it('schema and all-tables scopes', async () => {
    expect((await sets(['create', 'extra', '--schema', 'extra'])).code).toBe(0);
    expect(await publishedTables('extra')).toBe('extra.e1,extra.e2');
    const missing = await sets(['create', 'nosuch', '--schema', 'nosuch']);
    expect(missing.stderr).toMatch(/schema not found on the source: nosuch/);
    // All tables include pgbench_history (no primary key): inserts only.
    const refused = await sets(['create', 'everything', '--all-tables']);
    expect(refused.code).toBe(5);
    expect(refused.stderr).toMatch(/public.pgbench_history/);
    const everything = await sets(['create', 'everything', '--all-tables', '--operations', 'insert', '--json']);
    expect(everything.code).toBe(0);
    expect(expectJsonFormat(everything.stdout, 'sets-create')).toMatchObject({ set: 'everything', scope: { kind: 'all-tables' }, operations: ['insert'] });
    expect(await source.psql("SELECT puballtables FROM pg_publication WHERE pubname = 'pgark_everything'")).toBe('t');
  });

  it('a table without a primary key is refused by name, and accepted for inserts only', async () => {
    const r = await sets(['create', 'hist', '--tables', 'pgbench_history,pgbench_tellers,nosuch_table']);
    expect(r.code).toBe(5);
    expect(r.stderr).toMatch(/table not found on the source: public.nosuch_table/);
    expect(r.stderr).toMatch(/without a primary key or replica identity: public.pgbench_history; replicating update and delete needs one/);
    expect(r.stderr).toMatch(/ALTER TABLE "public"."pgbench_history" REPLICA IDENTITY/);
    expect(await source.psql("SELECT count(*) FROM pg_publication WHERE pubname = 'pgark_hist'")).toBe('0');
    expect((await sets(['create', 'hist', '--tables', 'pgbench_history', '--operations', 'insert'])).code).toBe(0);
  });

  it('a row filter outside the replica identity is refused when updates are replicated', async () => {
    const r = await sets(['create', 'badfilter', '--tables', 'pgbench_accounts', '--row-filter', 'pgbench_accounts:bid = 1']);
    expect(r.code).toBe(5);
    expect(r.stderr).toMatch(/row filter of public.pgbench_accounts uses column bid, not part of the replica identity \(aid\)/);
    expect(await source.psql("SELECT count(*) FROM pg_publication WHERE pubname = 'pgark_badfilter'")).toBe('0');
    expect((await sets(['create', 'badfilter', '--tables', 'pgbench_accounts', '--row-filter', 'pgbench_accounts:bid = 1', '--operations', 'insert'])).code).toBe(0);
    // PostgreSQL's own errors surface with the statement's context.
    const syntax = await sets(['create', 'syntax', '--tables', 'pgbench_accounts', '--row-filter', 'pgbench_accounts:aid <<>> 1']);
    expect(syntax.stderr).toMatch(/unable to create set 'syntax' \(CREATE PUBLICATION pgark_syntax\): .*operator/);
  });

  it('wal_level = replica is refused with the fix', async () => {
    const r = await pgark(['sets', 'create', 'x', '--tables', 'pgbench_accounts', '--source', target.connString], { allowFail: true });
    expect(r.code).toBe(5);
    expect(r.stderr).toMatch(/wal_level is 'replica' on the source, logical replication needs 'logical': run ALTER SYSTEM SET wal_level = logical .* restart/);
  });
});

describe('add-table, remove-table', () => {
  it('changes the publication, refreshes a native subscriber (the table arrives with its data) and marks agents pending', { timeout: 60_000 }, async () => {
    expect((await sets(['create', 'grow', '--tables', 'pgbench_branches'])).code).toBe(0);
    await nativeSubscriber('grow', 'growsub');
    await agentSubscriber('grow', 'growagent');
    await waitUntil('the branches to arrive', async () => (await target.psql('SELECT count(*) FROM pgbench_branches')) === '1', 30_000);

    const missing = await sets(['add-table', 'grow', 'only_on_source']);
    expect(missing.code).toBe(5);
    expect(missing.stderr).toMatch(/table public.only_on_source does not exist on the target of subscriber growsub/);
    expect(await publishedTables('grow')).toBe('public.pgbench_branches');

    const nopk = await sets(['add-table', 'grow', 'pgbench_history']);
    expect(nopk.stderr).toMatch(/without a primary key or replica identity: public.pgbench_history/);

    const add = await sets(['add-table', 'grow', 'pgbench_tellers']);
    expect(add.stderr).toBe('');
    expect(add.stdout).toMatch(/added table public.pgbench_tellers to set grow/);
    expect(add.stdout).toMatch(/refreshed subscription growsub/);
    expect(add.stdout).toMatch(/agent subscriber growagent will copy it/);
    expect(await publishedTables('grow')).toBe('public.pgbench_branches,public.pgbench_tellers');
    await waitUntil('the tellers to arrive on the target', async () => (await target.psql('SELECT count(*) FROM pgbench_tellers')) === '10', 30_000);
    const meta = await withClient(source, (c) => readSet(c, 'grow'));
    expect(meta.subscribers.find((s) => s.name === 'growagent')!.pendingTables).toEqual(['public.pgbench_tellers']);
    expect(meta.tables.map((t) => t.table)).toEqual(['pgbench_branches', 'pgbench_tellers']);

    const rm = await sets(['remove-table', 'grow', 'pgbench_tellers', '--json']);
    expect(expectJsonFormat(rm.stdout, 'sets-table-change')).toMatchObject({ action: 'removed', refreshed: ['growsub'] });
    expect(await publishedTables('grow')).toBe('public.pgbench_branches');
    const after = await withClient(source, (c) => readSet(c, 'grow'));
    expect(after.subscribers.find((s) => s.name === 'growagent')!.pendingTables).toEqual([]);
    expect((await sets(['remove-table', 'grow', 'pgbench_tellers'])).stderr).toMatch(/not in the set/);
    const unknown = await sets(['add-table', 'nosuch', 'pgbench_tellers']);
    expect(unknown.code).toBe(8);
    expect(unknown.stderr).toMatch(/unable to find set 'nosuch': no publication pgark_nosuch on the source/);
    const schemaSet = await sets(['add-table', 'extra', 'pgbench_tellers']);
    expect(schemaSet.stderr).toMatch(/it replicates every table in schema extra; tables are added and removed only in sets made with --tables/);
  });
});

describe('status and drop', () => {
  it('status reports a healthy native subscriber, exits 2 when a slot is missing; drop leaves no slot and no publication', { timeout: 60_000 }, async () => {
    expect((await sets(['create', 'mon', '--tables', 'pgbench_branches,pgbench_tellers'])).code).toBe(0);
    // The grow set's subscription copied some of these rows already.
    await target.psql('TRUNCATE pgbench_branches, pgbench_tellers');
    await nativeSubscriber('mon', 'monsub');
    await waitUntil('the subscription to stream', async () =>
      (await source.psql("SELECT active FROM pg_replication_slots WHERE slot_name = 'pgark_mon_monsub'")) === 't', 30_000);
    await waitUntil('the tables to be ready', async () =>
      (await target.psql("SELECT count(*) FROM pg_subscription_rel r JOIN pg_subscription s ON s.oid = r.srsubid WHERE s.subname = 'monsub' AND srsubstate = 'r'")) === '2', 30_000);
    const ok = await pgark(['sets', 'status', 'mon', ...src(), '--json']);
    const report = expectJsonFormat(ok.stdout, 'sets-status') as { exitCode: number; sets: Array<{ subscribers: Array<Record<string, unknown>> }> };
    expect(report.exitCode).toBe(0);
    const s = report.sets[0]!.subscribers[0]!;
    expect(s).toMatchObject({ name: 'monsub', slotExists: true, active: true, enabled: true, health: 'ok' });
    expect(typeof s.lagBytes).toBe('number');
    expect(typeof s.retainedBytes).toBe('number');
    expect(s.tables).toEqual([{ table: 'public.pgbench_branches', state: 'ready' }, { table: 'public.pgbench_tellers', state: 'ready' }]);

    // An agent subscriber whose slot is gone: unhealthy, exit 2.
    await agentSubscriber('mon', 'lost', { noSlot: true });
    const bad = await pgark(['sets', 'status', 'mon', ...src()], { allowFail: true });
    expect(bad.code).toBe(2);
    expect(bad.stdout).toMatch(/UNHEALTHY: slot pgark_mon_lost is missing on the source/);

    // Drop one subscriber, then the whole set.
    const one = await sets(['drop', 'mon', '--subscriber', 'lost', '--json']);
    expect(expectJsonFormat(one.stdout, 'sets-drop')).toMatchObject({ publicationDropped: false, subscribers: [{ name: 'lost', slotDropped: false }] });
    expect(await target.psql("SELECT count(*) FROM pgark.apply_position WHERE subscription = 'mon.lost'")).toBe('0');
    const all = await sets(['drop', 'mon', '--json']);
    expect(all.stderr).toBe('');
    expect(expectJsonFormat(all.stdout, 'sets-drop')).toMatchObject({ publicationDropped: true, subscribers: [{ name: 'monsub', subscriptionDropped: true, slotDropped: true }] });
    expect(await source.psql("SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'pgark\\_mon\\_%' OR slot_name LIKE 'pg\\_%\\_sync\\_%'")).toBe('0');
    expect(await source.psql("SELECT count(*) FROM pg_publication WHERE pubname = 'pgark_mon'")).toBe('0');
    expect(await target.psql("SELECT count(*) FROM pg_subscription WHERE subname = 'monsub'")).toBe('0');
  });

  it('drop of a set with native and agent subscribers (the grow set) leaves nothing behind', async () => {
    const r = await sets(['drop', 'grow']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/dropped subscriber growsub \(native\), its subscription on the target and its slot/);
    expect(r.stdout).toMatch(/dropped subscriber growagent \(agent\) and its slot/);
    expect(await source.psql("SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'pgark\\_grow%'")).toBe('0');
    expect(await source.psql("SELECT count(*) FROM pg_publication WHERE pubname = 'pgark_grow'")).toBe('0');
    expect(await target.psql("SELECT count(*) FROM pgark.apply_position WHERE subscription LIKE 'grow.%'")).toBe('0');
  });
});

describe('drop while a table copy keeps failing', () => {
  it('status warns about the sync errors; drop removes the table-sync slots too', { timeout: 60_000 }, async () => {
    expect((await sets(['create', 'stuck', '--tables', 'pgbench_branches'])).code).toBe(0);
    // A row already on the target: the initial copy fails with a duplicate key, again and again.
    await target.psql('TRUNCATE pgbench_branches; INSERT INTO pgbench_branches VALUES (1, 0)');
    await nativeSubscriber('stuck', 'stucksub');
    await waitUntil('a sync error', async () =>
      Number(await target.psql("SELECT sync_error_count FROM pg_stat_subscription_stats WHERE subname = 'stucksub'")) > 0, 30_000);
    await waitUntil('a table-sync slot on the source', async () =>
      Number(await source.psql("SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'pg\\_%\\_sync\\_%'")) > 0, 30_000);
    const st = await pgark(['sets', 'status', 'stuck', ...src()], { allowFail: true });
    expect(st.code).toBeGreaterThanOrEqual(1);
    expect(st.stdout).toMatch(/subscription stucksub has had 0 apply and \d+ sync error/);
    const r = await sets(['drop', 'stuck']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(await source.psql("SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'pgark\\_stuck%' OR slot_name LIKE 'pg\\_%\\_sync\\_%'")).toBe('0');
    await target.psql('TRUNCATE pgbench_branches');
  });
});

describe('slots', () => {
  it('list shows owners; drop refuses set slots and active slots unless forced', { timeout: 60_000 }, async () => {
    expect((await sets(['create', 'slotted', '--tables', 'pgbench_branches'])).code).toBe(0);
    await agentSubscriber('slotted', 'a1');
    await source.psql("SELECT pg_create_logical_replication_slot('leftover', 'pgoutput'); SELECT pg_create_logical_replication_slot('busy', 'pgoutput')");
    const list = (await json<{ slots: Array<{ slot: string; type: string; plugin: string; active: boolean; retainedBytes: number; owner?: { set: string } }> }>('slots-list', ['slots', 'list'])).slots;
    expect(list.find((s) => s.slot === 'pgark_slotted_a1')).toMatchObject({ type: 'logical', plugin: 'pgoutput', owner: { set: 'slotted', subscriber: 'a1' } });
    expect(list.find((s) => s.slot === 'leftover')?.owner).toBeUndefined();
    expect(typeof list.find((s) => s.slot === 'leftover')?.retainedBytes).toBe('number');

    const owned = await pgark(['slots', 'drop', 'pgark_slotted_a1', ...src()], { allowFail: true });
    expect(owned.code).toBe(5);
    expect(owned.stderr).toMatch(/belongs to subscriber 'a1' of set 'slotted'; use pgark sets drop slotted --subscriber a1/);
    expect((await pgark(['slots', 'drop', 'leftover', ...src()])).stdout).toMatch(/dropped slot leftover/);
    const gone = await pgark(['slots', 'drop', 'leftover', ...src()], { allowFail: true });
    expect(gone.code).toBe(8);

    // An active slot: pg_recvlogical holds it.
    const busy = holdSlot('busy', 'pgark_slotted');
    try {
      await waitUntil('pg_recvlogical to hold the slot', async () => (await source.psql("SELECT active FROM pg_replication_slots WHERE slot_name = 'busy'")) === 't', 20_000);
      const pid = await source.psql("SELECT active_pid FROM pg_replication_slots WHERE slot_name = 'busy'");
      const refused = await pgark(['slots', 'drop', 'busy', ...src()], { allowFail: true });
      expect(refused.code).toBe(5);
      expect(refused.stderr).toMatch(new RegExp(`it is active \\(held by pid ${pid}, application 'pg_recvlogical'`));
      expect(expectJsonFormat((await pgark(['slots', 'drop', 'busy', '--force', ...src(), '--json'])).stdout, 'slots-drop')).toEqual({ format: 'pgark.slots-drop/1', slot: 'busy', dropped: true });
    } finally {
      busy.kill('SIGKILL');
    }
    // A running consumer of an agent subscriber's slot: drop refuses (and keeps its position) unless --force.
    const agentConsumer = holdSlot('pgark_slotted_a1', 'pgark_slotted');
    try {
      await waitUntil('pg_recvlogical to hold the agent slot', async () =>
        (await source.psql("SELECT active FROM pg_replication_slots WHERE slot_name = 'pgark_slotted_a1'")) === 't', 20_000);
      const refused = await sets(['drop', 'slotted']);
      expect(refused.code).toBe(5);
      expect(refused.stderr).toMatch(/unable to drop slot 'pgark_slotted_a1': it is active \(held by pid \d+/);
      expect(await target.psql("SELECT count(*) FROM pgark.apply_position WHERE subscription = 'slotted.a1'")).toBe('1');
      expect((await sets(['drop', 'slotted', '--force'])).code).toBe(0);
      expect(await target.psql("SELECT count(*) FROM pgark.apply_position WHERE subscription = 'slotted.a1'")).toBe('0');
    } finally {
      agentConsumer.kill('SIGKILL');
    }
    expect(await slotNames()).toBe('');
  });
});
