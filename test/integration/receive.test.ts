/**
 * `pgark receive` against real PostgreSQL 15:
 *  1. RPO=0: the receiver is the only synchronous standby; every commit that returned is
 *     restorable after kill -9 of the primary (backup + received WAL including the partial
 *     segment, served by wal-fetch);
 *  2. timelines: a standby is promoted and the receiver, pointed at it, finishes timeline 1 and
 *     follows timeline 2 (history file stored); a restore finds rows from both timelines;
 *  3. faults: the server restarts under the receiver (it reconnects and goes on without a gap); a
 *     missing slot and WAL removed before it was received are clear errors.
 */
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { archiveCommand, destroyAllClusters, makeSharedTempDir, PgCluster } from '../helpers/pg-cluster.js';
import { startPgark, stopPgark, type BackgroundPgark } from '../helpers/pgark-background.js';
import { pgark, pgarkJson } from '../helpers/pgark-run.js';
import { waitUntil, newUserDir } from '../helpers/wait.js';
import { createRepo } from '../helpers/repo.js';

let work: string;
beforeAll(async () => {
  work = await makeSharedTempDir('pgark-recv-');
}, 60_000);
afterAll(async () => {
  await destroyAllClusters();
}, 120_000);

const newDir = (name: string): Promise<string> => newUserDir(work, name);

function receive(c: PgCluster, repo: string, stanza: string, extra: string[]): BackgroundPgark {
  return startPgark(['receive', '--repo', repo, '--stanza', stanza, '--dsn', `host=127.0.0.1 port=${c.port} user=postgres`,
    '--spool-dir', join(work, `spool-${stanza}-${Math.random().toString(36).slice(2, 8)}`), '--log-level', 'info', ...extra]);
}

async function restoreAndStart(repo: string, stanza: string, name: string, extra: string[] = []): Promise<PgCluster> {
  const dir = await newDir(name);
  await pgark(['restore', 'latest', '--repo', repo, '--stanza', stanza, '--pgdata', dir, '--force', ...extra]);
  const c = await PgCluster.fromDataDir(dir, { name, ownsDataDir: true });
  await c.start({ timeoutSec: 120 });
  await waitUntil(`${name} to finish recovery`, async () => (await c.psql('SELECT pg_is_in_recovery()')) === 'f', 120_000);
  return c;
}

describe('synchronous receiver: zero data loss', () => {
  it('every commit that returned is restorable after kill -9 of the primary', { timeout: 300_000 }, async () => {
    const repo = await createRepo(await newDir('repo-rpo'));
    const stanza = 'rpo';
    const primary = await PgCluster.create({
      name: 'rpo', walSegmentSizeMB: 1,
      conf: { archive_mode: 'on', archive_command: archiveCommand({ repo, stanza }), wal_level: 'replica' },
    });
    await primary.start();
    await primary.psql('CREATE TABLE t (id int PRIMARY KEY, payload text)');
    await pgark(['backup', '--repo', repo, '--stanza', stanza, '--pgdata', primary.dataDir], { env: primary.clientEnv() });
    const r = receive(primary, repo, stanza, ['--slot', 'pgark_rpo', '--create-slot', '--synchronous', '--application-name', 'pgark_rpo', '--metrics-port', '0']);
    try {
      await primary.psql("ALTER SYSTEM SET synchronous_standby_names = 'pgark_rpo'");
      await primary.psql('SELECT pg_reload_conf()');
      await waitUntil('the receiver to be the synchronous standby', async () =>
        (await primary.psql("SELECT sync_state FROM pg_stat_replication WHERE application_name = 'pgark_rpo'")) === 'sync', 60_000, r.output);
      // Single-row commits, each returning only after the receiver stored its WAL; then a
      // bigger one that spans segments.
      let committed = 0;
      for (let i = 1; i <= 120; i++) {
        await primary.psql(`INSERT INTO t VALUES (${i}, 'row ${i}')`);
        committed = i;
      }
      await primary.psql("INSERT INTO t SELECT g, repeat('x', 200) FROM generate_series(121, 12000) g");
      committed = 12000;
      await primary.psql(`INSERT INTO t VALUES (${committed + 1}, 'the last one')`);
      committed += 1;
      await primary.kill9();
      expect(await stopPgark(r)).toBe(0);
      expect(r.output()).toMatch(/resuming|starting/);
      // The newest WAL exists only as received pieces: the restore below depends on them.
      const verify = await pgarkJson<{ received: { segment: string; bytes: number; archived: boolean }[] }>(['wal-verify', '--repo', repo, '--stanza', stanza, '--read']);
      expect(verify.received.filter((x) => !x.archived && x.bytes > 0).length).toBeGreaterThanOrEqual(1);
      // On this fs repository they are in a received-WAL journal (one record per commit), not piece objects.
      const stored = await readdir(join(repo, stanza, 'received'), { recursive: true });
      expect(stored.filter((f) => /\.journal\.[0-9a-f]{16}$/.test(f)).length).toBeGreaterThanOrEqual(1);

      const clone = await restoreAndStart(repo, stanza, 'rpo-restored');
      expect(await clone.psql('SELECT count(*), max(id) FROM t')).toBe(`${committed}|${committed}`);
      expect(await clone.psql(`SELECT payload FROM t WHERE id = ${committed}`)).toBe('the last one');
      await clone.stop();
    } finally {
      await stopPgark(r, 'SIGKILL');
    }
  });
});

/** The receiver named `app` has stored (flushed) everything the server has written so far. */
async function waitStored(c: PgCluster, app: string, output: () => string, timeoutMs = 60_000): Promise<void> {
  const target = await c.psql('SELECT CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END');
  await waitUntil(`receiver '${app}' to store up to ${target}`, async () =>
    (await c.psql(`SELECT flush_lsn >= '${target}'::pg_lsn FROM pg_stat_replication WHERE application_name = '${app}'`)) === 't', timeoutMs, output);
}

describe('timelines', () => {
  it('pointed at a promoted standby, finishes timeline 1 from it and follows timeline 2', { timeout: 300_000 }, async () => {
    const repo = await createRepo(await newDir('repo-tl'));
    const stanza = 'tl';
    const conf = { archive_mode: 'on', archive_command: archiveCommand({ repo, stanza }), wal_level: 'replica', wal_keep_size: '256MB', hot_standby: 'on' };
    const primary = await PgCluster.create({ name: 'tl-primary', walSegmentSizeMB: 1, conf });
    await primary.start();
    await primary.psql('CREATE TABLE t (id int PRIMARY KEY, tl int)');
    await pgark(['backup', '--repo', repo, '--stanza', stanza, '--pgdata', primary.dataDir], { env: primary.clientEnv() });
    const standbyDir = join(work, 'tl-standby');
    await primary.basebackup(standbyDir, { walMethod: 'stream', extraArgs: ['-R'] });
    // No archiving from the standby: after the switch, the repository gets WAL only from the receiver.
    const standby = await PgCluster.fromDataDir(standbyDir, { name: 'tl-standby', ownsDataDir: true, conf: { archive_mode: 'off' } });
    await standby.start();

    const r1 = receive(primary, repo, stanza, ['--slot', 'recv', '--create-slot']);
    let r2: BackgroundPgark | undefined;
    try {
      await primary.psql('INSERT INTO t SELECT g, 1 FROM generate_series(1, 100) g');
      await waitStored(primary, 'pgark', r1.output);
      expect(await stopPgark(r1)).toBe(0);
      // WAL the receiver never saw from the primary: the standby has it.
      await primary.psql("INSERT INTO t SELECT g, 1 FROM generate_series(101, 2000) g");
      await primary.stop('fast');
      await standby.psql('SELECT pg_promote(true, 60)');
      await standby.psql('INSERT INTO t SELECT g, 2 FROM generate_series(2001, 2100) g');

      r2 = receive(standby, repo, stanza, ['--slot', 'recv', '--create-slot']);
      await waitUntil('the receiver to follow timeline 2', async () => /following timeline 2/.test(r2!.output()), 60_000, r2.output);
      await standby.psql('INSERT INTO t SELECT g, 2 FROM generate_series(2101, 2200) g');
      await waitStored(standby, 'pgark', r2.output);
      expect(await stopPgark(r2)).toBe(0);
      expect(existsSync(join(repo, stanza, 'wal', '00000002', '00000002.history'))).toBe(true);
      expect(r2.output()).toMatch(/resuming after the stored WAL at [0-9A-F/]+ on timeline 1/);

      const clone = await restoreAndStart(repo, stanza, 'tl-restored');
      expect(await clone.psql('SELECT count(*), max(id), sum(tl) FROM t')).toBe(`2200|2200|${2000 + 200 * 2}`);
      await clone.stop();
    } finally {
      await stopPgark(r1, 'SIGKILL');
      if (r2) await stopPgark(r2, 'SIGKILL');
      await standby.stop('immediate').catch(() => undefined);
    }
  });
});

describe('faults', () => {
  it('reconnects with backoff when the server restarts and goes on without a gap; reports status', { timeout: 300_000 }, async () => {
    const repo = await createRepo(await newDir('repo-rc'));
    const stanza = 'rc';
    const primary = await PgCluster.create({ name: 'rc', walSegmentSizeMB: 1, conf: { wal_level: 'replica' } });
    await primary.start();
    await primary.psql("CREATE TABLE t (id int PRIMARY KEY); SELECT pg_create_physical_replication_slot('recv', true)");
    const r = receive(primary, repo, stanza, ['--slot', 'recv', '--metrics-port', '0', '--status-interval', '1']);
    try {
      // archive_mode is off: the backup's WAL comes from the receiver.
      await waitStored(primary, 'pgark', r.output);
      const b = await pgark(['backup', '--repo', repo, '--stanza', stanza, '--pgdata', primary.dataDir, '--json', '--no-progress'], { env: primary.clientEnv() });
      expect(b.stderr + b.stdout).toMatch(/WAL comes from pgark receive \(pgark\)/);
      await primary.psql('INSERT INTO t SELECT generate_series(1, 1000)');
      await waitStored(primary, 'pgark', r.output);
      await primary.restart();
      await primary.psql('INSERT INTO t SELECT generate_series(1001, 30000)');
      await waitStored(primary, 'pgark', r.output, 90_000);
      expect(r.output()).toMatch(/reconnecting in/);
      const port = /metrics on http:\/\/127\.0\.0\.1:(\d+)/.exec(r.output())?.[1];
      const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      expect(metrics).toMatch(/^pgark_receiver_up 1$/m);
      expect(metrics).toMatch(/^pgark_receiver_reconnects_total [1-9]\d*$/m);
      expect(metrics).toMatch(/^pgark_receiver_lag_bytes \d+$/m);
      const info = await pgarkJson<{ receivers: { name: string; state: string; reconnects: number; flushLsn: string; slot: { name: string } }[] }>(['info', '--repo', repo, '--stanza', stanza]);
      expect(info.receivers).toHaveLength(1);
      expect(info.receivers[0]).toMatchObject({ name: 'pgark', state: 'streaming', slot: { name: 'recv' } });
      expect(info.receivers[0]!.reconnects).toBeGreaterThanOrEqual(1);
      expect(await stopPgark(r)).toBe(0);
      const verify = await pgarkJson<{ gapCount: number; totalSegments: number; received: { segment: string; bytes: number }[] }>(['wal-verify', '--repo', repo, '--stanza', stanza]);
      expect(verify.gapCount).toBe(0);
      // The status stored at the stop counts each segment once (it counted the last session's
      // writer twice: once as the current writer, once in the earlier sessions' total).
      const stopped = await pgarkJson<{ receivers: { state: string; segmentsStored: number }[] }>(['info', '--repo', repo, '--stanza', stanza]);
      expect(stopped.receivers[0]).toMatchObject({ state: 'stopped', segmentsStored: verify.totalSegments });
      expect(verify.received.length).toBeGreaterThanOrEqual(1);
      await primary.kill9();
      const clone = await restoreAndStart(repo, stanza, 'rc-restored');
      expect(await clone.psql('SELECT count(*) FROM t')).toBe('30000');
      await clone.stop();
    } finally {
      await stopPgark(r, 'SIGKILL');
    }
  });

  it('a missing slot and WAL removed before it was received are clear errors', { timeout: 180_000 }, async () => {
    const repo = await createRepo(await newDir('repo-gone'));
    const stanza = 'gone';
    const c = await PgCluster.create({ name: 'gone', walSegmentSizeMB: 1, conf: { wal_level: 'replica', min_wal_size: '2MB', max_wal_size: '4MB', wal_keep_size: '0' } });
    await c.start();
    const dsn = `host=127.0.0.1 port=${c.port} user=postgres`;
    const missing = await pgark(['receive', '--repo', repo, '--stanza', stanza, '--dsn', dsn, '--slot', 'nosuch', '--spool-dir', join(work, 'spool-gone')], { allowFail: true, timeoutMs: 60_000 });
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toMatch(/replication slot 'nosuch' does not exist .*--create-slot/);

    const r = receive(c, repo, stanza, []);
    await c.psql('CREATE TABLE t AS SELECT generate_series(1, 1000) id');
    await waitStored(c, 'pgark', r.output);
    expect(await stopPgark(r)).toBe(0);
    for (let i = 0; i < 4; i++) await c.psql("INSERT INTO t SELECT generate_series(1, 100000); SELECT pg_switch_wal(); CHECKPOINT");
    const gone = await pgark(['receive', '--repo', repo, '--stanza', stanza, '--dsn', dsn, '--spool-dir', join(work, 'spool-gone')], { allowFail: true, timeoutMs: 60_000 });
    expect(gone.code).not.toBe(0);
    expect(gone.stderr).toMatch(/the server no longer has the WAL at [0-9A-F]+\/[0-9A-F]+ on timeline 1/);
    expect(gone.stderr).toMatch(/replication slot/);
  });
});
