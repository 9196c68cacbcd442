/**
 * Agent subscriptions (pgark applies the change stream itself) between two real PostgreSQL 15
 * clusters:
 *  1. initial copy from the slot's exported snapshot while single-row transactions keep
 *     committing: the target ends with exactly the source's ids (none missed, none doubled);
 *  2. exactly once under kill -9: the apply worker is killed twice in the middle of a stream of
 *     transactions (each inserts a row and increments a counter: a doubled transaction would
 *     show in the counter, a lost one in both); restarted, it converges to the source exactly;
 *  3. an operations filter (insert,update): deletes on the source leave the rows on the target;
 *     a table added later (sets add-table) arrives with its rows, then its changes;
 *  4. batched apply (apply-runs.ts): a backlog of transactions touching a trigger-free table
 *     (multi-row statements, moved past other tables' changes), a REPLICA IDENTITY FULL table
 *     and a table with a trigger that reads the first one at its moment; updates of one key
 *     twice in a transaction, delete then re-insert of a key, unchanged TOAST values, NULLs; kill -9
 *     in the middle: the target ends identical to the source, nothing applied twice.
 */
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runApplyWorker, type ApplyStatus } from '../../src/logical/apply-worker.js';
import { subscribeAgent } from '../../src/logical/agent-subscribe.js';
import { addTable, createSet } from '../../src/logical/sets-admin.js';
import { destroyAllClusters, PgCluster } from '../helpers/pg-cluster.js';
import { startPgark, type BackgroundPgark } from '../helpers/pgark-background.js';
import { waitUntil } from '../helpers/wait.js';

let src: PgCluster;
let tgt: PgCluster;
const workers: ChildProcess[] = [];

beforeAll(async () => {
  [src, tgt] = await Promise.all([
    PgCluster.create({ name: 'agent-src', walSegmentSizeMB: 1, conf: { wal_level: 'logical', max_replication_slots: '10', max_wal_senders: '10' } }),
    PgCluster.create({ name: 'agent-tgt', walSegmentSizeMB: 1, conf: { shared_preload_libraries: 'pg_stat_statements' } }),
  ]);
  await Promise.all([src.start(), tgt.start()]);
}, 120_000);
afterAll(async () => {
  for (const w of workers) if (w.exitCode === null && w.signalCode === null) w.kill('SIGKILL');
  await destroyAllClusters();
}, 120_000);

/** `pgark sets apply` in the background (its own process: kill -9 needs one). */
function startWorker(set: string, name: string): BackgroundPgark {
  const w = startPgark(['sets', 'apply', set, '--name', name, '--source', src.connString, '--log-level', 'info']);
  workers.push(w);
  return w;
}

async function kill9(p: ChildProcess): Promise<void> {
  const exited = new Promise((r) => p.once('exit', r));
  p.kill('SIGKILL');
  await exited;
}

/** A promise that never rejects unhandled: awaiting it gives a function that returns or throws its outcome. */
function settled<T>(p: Promise<T>): Promise<() => T> {
  return p.then((v) => () => v, (e: unknown) => () => {
    throw e;
  });
}

const fingerprint = (c: PgCluster) => c.psql('SELECT count(*), count(DISTINCT id), coalesce(sum(id), 0), (SELECT n FROM counter WHERE k = 1) FROM items');

/** One transaction per row: INSERT id, counter + 1 (a doubled or lost transaction changes the fingerprint). */
const streamSql = (from: number, to: number, sleepSec: number) => `DO $$ BEGIN
  FOR i IN ${from}..${to} LOOP
    INSERT INTO items VALUES (i, md5(i::text));
    UPDATE counter SET n = n + 1 WHERE k = 1;
    COMMIT;
    ${sleepSec > 0 ? `PERFORM pg_sleep(${sleepSec});` : ''}
  END LOOP; END $$;`;

describe('agent subscription', () => {
  it('copies from the exported snapshot and applies exactly once under kill -9', { timeout: 150_000 }, async () => {
    await src.psql(`CREATE TABLE items (id int PRIMARY KEY, v text);
      CREATE TABLE counter (k int PRIMARY KEY, n bigint NOT NULL);
      INSERT INTO counter VALUES (1, 0);
      INSERT INTO items SELECT i, md5(i::text) FROM generate_series(1, 300) i;
      UPDATE counter SET n = 300;`);
    await createSet({ set: 'ag', sourceDsn: src.connString, tables: 'public.items,public.counter' });

    // transactions keep committing while the slot and its snapshot are taken
    const during = settled(src.psql(streamSql(301, 1300, 0.001), 'postgres', { timeoutMs: 120_000 }));
    await waitUntil('the first streamed rows', async () => Number(await src.psql('SELECT count(*) FROM items')) > 400, 30_000);
    const sub = await subscribeAgent({ set: 'ag', sourceDsn: src.connString, targetDsn: tgt.connString, name: 'a1', syncStructure: true, copyData: true });
    expect(sub).toMatchObject({ name: 'a1', mode: 'agent', slot: 'pgark_ag_a1' });
    const copied = Number(await tgt.psql('SELECT count(*) FROM items'));
    expect(copied).toBeGreaterThan(300);
    expect(await tgt.psql("SELECT count(*) FROM pgark.apply_position WHERE subscription = 'ag.a1'")).toBe('1');
    await (await during)();

    let w = startWorker('ag', 'a1');
    await waitUntil('the target to catch up after the copy', async () => (await fingerprint(tgt)) === (await fingerprint(src)), 40_000, w.output);
    expect(await fingerprint(tgt)).toBe('1300|1300|845650|1300');

    // kill -9 twice in the middle of a stream of single-row transactions
    const stream = settled(src.psql(streamSql(1301, 3300, 0.002), 'postgres', { timeoutMs: 120_000 }));
    for (const at of [1700, 2400]) {
      await waitUntil(`the target to pass ${at} rows`, async () => Number(await tgt.psql('SELECT count(*) FROM items')) > at, 40_000, w.output);
      expect(Number(await src.psql('SELECT count(*) FROM items'))).toBeLessThan(3300); // the stream is still running
      await kill9(w);
      w = startWorker('ag', 'a1');
    }
    await (await stream)();
    await waitUntil('the target to match the source', async () => (await fingerprint(tgt)) === (await fingerprint(src)), 40_000, w.output);
    expect(await fingerprint(tgt)).toBe(`3300|3300|${(3300 * 3301) / 2}|3300`);
    // the slot is confirmed up to the applied position
    const applied = await tgt.psql("SELECT lsn FROM pgark.apply_position WHERE subscription = 'ag.a1'");
    await waitUntil('the slot to be confirmed', async () =>
      (await src.psql(`SELECT confirmed_flush_lsn >= '${applied}' FROM pg_replication_slots WHERE slot_name = 'pgark_ag_a1'`)) === 't', 20_000, w.output);
    // SIGTERM stops it cleanly and promptly
    const t0 = Date.now();
    w.kill('SIGTERM');
    expect(await w.exited).toBe(0);
    expect(Date.now() - t0).toBeLessThan(10_000);
  });

  it('an insert,update set leaves deleted rows on the target; a table added later arrives', { timeout: 90_000 }, async () => {
    await src.psql(`CREATE TABLE ops (id int PRIMARY KEY, v text);
      INSERT INTO ops SELECT i, 'a' FROM generate_series(1, 10) i;
      CREATE TABLE late (id int PRIMARY KEY, v text);
      INSERT INTO late SELECT i, 'l' FROM generate_series(1, 50) i;`);
    await tgt.psql('CREATE TABLE ops (id int PRIMARY KEY, v text); CREATE TABLE late (id int PRIMARY KEY, v text);');
    await createSet({ set: 'ins', sourceDsn: src.connString, tables: 'public.ops', operations: 'insert,update' });
    await subscribeAgent({ set: 'ins', sourceDsn: src.connString, targetDsn: tgt.connString, name: 'b1', copyData: true });
    expect(await tgt.psql('SELECT count(*) FROM ops')).toBe('10');

    const ac = new AbortController();
    let last: ApplyStatus | undefined;
    const worker = runApplyWorker({ set: 'ins', sourceDsn: src.connString, name: 'b1', signal: ac.signal, onStatus: (s) => (last = s) });
    try {
      await src.psql(`INSERT INTO ops SELECT i, 'a' FROM generate_series(11, 20) i;
        UPDATE ops SET v = 'u' WHERE id <= 5;
        DELETE FROM ops WHERE id BETWEEN 6 AND 15;
        INSERT INTO ops VALUES (1000, 'marker');`);
      await waitUntil('the marker row', async () => (await tgt.psql('SELECT count(*) FROM ops WHERE id = 1000')) === '1', 30_000, () => JSON.stringify(last));
      expect(await tgt.psql("SELECT count(*), count(*) FILTER (WHERE v = 'u') FROM ops")).toBe('21|5');
      expect(await src.psql('SELECT count(*) FROM ops')).toBe('11');

      const added = await addTable({ set: 'ins', sourceDsn: src.connString, table: 'public.late' });
      expect(added.pending).toEqual(['b1']);
      await src.psql("INSERT INTO late VALUES (51, 'after'); UPDATE late SET v = 'u' WHERE id = 1;");
      await waitUntil('the added table with its rows and changes', async () =>
        (await tgt.psql("SELECT count(*), count(*) FILTER (WHERE v = 'u') FROM late")) === '51|1', 40_000, () => JSON.stringify(last));
      await src.psql("INSERT INTO late VALUES (52, 'stream')");
      await waitUntil('a streamed row of the added table', async () => (await tgt.psql('SELECT count(*) FROM late')) === '52', 20_000);
      expect(last?.transactions).toBeGreaterThan(0);
      expect(last?.state).toBe('streaming');
    } finally {
      ac.abort();
      await worker;
    }
    expect(last?.state).toBe('stopped');
  });

  it('batched apply: identical rows, the trigger table sees the order, exactly once under kill -9', { timeout: 180_000 }, async () => {
    const ddl = `CREATE TABLE bacc (id int PRIMARY KEY, bal bigint, note text);
      ALTER TABLE bacc ALTER note SET STORAGE EXTERNAL;
      CREATE TABLE bhist (a int, b text);
      CREATE TABLE bdep (id int PRIMARY KEY, seen numeric);
      CREATE FUNCTION bdep_seen() RETURNS trigger LANGUAGE plpgsql AS $f$
        BEGIN NEW.seen := (SELECT sum(bal * id) FROM bacc); RETURN NEW; END $f$;
      CREATE TRIGGER bdep_seen BEFORE INSERT ON bdep FOR EACH ROW EXECUTE FUNCTION bdep_seen();`;
    await src.psql(`${ddl}
      ALTER TABLE bhist REPLICA IDENTITY FULL;
      INSERT INTO bacc SELECT i, i, repeat(md5(i::text), 200) FROM generate_series(1, 100) i;`);
    await tgt.psql(`${ddl} CREATE EXTENSION pg_stat_statements;`);
    await createSet({ set: 'bat', sourceDsn: src.connString, tables: 'public.bacc,public.bhist,public.bdep' });
    await subscribeAgent({ set: 'bat', sourceDsn: src.connString, targetDsn: tgt.connString, name: 'c1', copyData: true });
    const load = (from: number, to: number, sleepSec: number) => `DO $$ DECLARE k int; BEGIN
      FOR i IN ${from}..${to} LOOP
        k := i % 100 + 1;
        UPDATE bacc SET bal = bal + 1 WHERE id = k;                  -- note: unchanged TOAST value
        UPDATE bacc SET bal = bal * 2 % 1000003 WHERE id = k;        -- the same key again
        UPDATE bacc SET bal = bal + 3 WHERE id = (i * 7) % 100 + 1;
        IF i % 10 = 0 THEN                                           -- delete, then re-insert the key
          DELETE FROM bacc WHERE id = (i * 3) % 100 + 1;
          INSERT INTO bacc VALUES ((i * 3) % 100 + 1, i, CASE WHEN i % 20 = 0 THEN NULL ELSE repeat('n', 3000) END);
        END IF;
        IF i % 15 = 0 THEN UPDATE bacc SET note = NULL, bal = NULL WHERE id = (i * 11) % 100 + 1; END IF;
        IF i % 16 = 0 THEN UPDATE bacc SET bal = coalesce(bal, 0) + 1 WHERE bal IS NULL; END IF;
        INSERT INTO bhist VALUES (i, CASE WHEN i % 3 = 0 THEN NULL ELSE md5(i::text) END);
        IF i % 4 = 0 THEN UPDATE bhist SET b = 'u' WHERE a = i - 1; END IF;
        IF i % 25 = 0 THEN INSERT INTO bdep (id) VALUES (i); END IF;
        COMMIT;
        ${sleepSec > 0 ? `PERFORM pg_sleep(${sleepSec});` : ''}
      END LOOP; END $$;`;
    const print = (c: PgCluster) => c.psql(`SELECT (SELECT md5(string_agg(t::text, '|' ORDER BY id)) FROM bacc t),
      (SELECT count(*) || ':' || md5(string_agg(t::text, '|' ORDER BY a, b)) FROM bhist t), (SELECT md5(string_agg(t::text, '|' ORDER BY id)) FROM bdep t)`);
    await src.psql(load(1, 1000, 0), 'postgres', { timeoutMs: 120_000 }); // a backlog: large groups
    let w = startWorker('bat', 'c1');
    const stream = settled(src.psql(load(1001, 3000, 0.002), 'postgres', { timeoutMs: 150_000 }));
    await waitUntil('the target to pass 1500 history rows', async () => Number(await tgt.psql('SELECT count(*) FROM bhist')) > 1500, 60_000, w.output);
    expect(Number(await src.psql('SELECT count(*) FROM bhist'))).toBeLessThan(3000); // still streaming
    await kill9(w);
    w = startWorker('bat', 'c1');
    await (await stream)();
    await waitUntil('the target to match the source', async () => (await print(tgt)) === (await print(src)), 60_000, w.output);
    expect((await print(tgt)).split('|')[1]).toMatch(/^3000:/); // no history row lost or doubled
    expect(Number(await tgt.psql('SELECT count(*) FROM bdep'))).toBe(120);
    // the trigger-free table went in multi-row statements; the trigger table row by row
    expect(Number(await tgt.psql("SELECT coalesce(sum(calls), 0) FROM pg_stat_statements WHERE query LIKE 'UPDATE \"public\".\"bacc\" AS pgark_t%'"))).toBeGreaterThan(0);
    expect(Number(await tgt.psql("SELECT coalesce(sum(calls), 0) FROM pg_stat_statements WHERE query LIKE '%\"bdep\" AS pgark_t%'"))).toBe(0);
    w.kill('SIGTERM');
    expect(await w.exited).toBe(0);
  });
});
