/**
 * `pgark clone`, `pgark promote`, `pgark drill` and `pgark drills` against real PostgreSQL 15:
 *  1. a clone built from the repository streams from the primary, catches up, and `pgark promote`
 *     makes it writable; a password in --primary-conninfo is refused before anything is written;
 *  2. a delayed clone (--delay) has the WAL of a commit but applies it only after the delay;
 *  3. a drill on pgbench data passes, reports RTO phases and a known RPO, runs --checks, is
 *     stored and listed, and leaves nothing behind;
 *  4. drills that must fail: a --checks query returning false (named), a target beyond the
 *     archive (recovery ended before it), a damaged backup (integrity error); their reports are
 *     stored and no scratch server is left running.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { archiveCommand, chownToRunAs, destroyAllClusters, findPgBin, freePort, makeSharedTempDir, PGARK_BIN, PgCluster, runAsUser } from '../helpers/pg-cluster.js';
import { pgark, pgarkJson } from '../helpers/pgark-run.js';
import { expectJsonFormat } from '../helpers/json-schema.js';
import type { DrillReport } from '../../src/drill/drill-report.js';
import { waitUntil, newUserDir } from '../helpers/wait.js';
import { createRepo } from '../helpers/repo.js';

let work: string;
let repo: string;
const stanza = 'drill';
let primary: PgCluster;

const newDir = (name: string): Promise<string> => newUserDir(work, name);

const repoArgs = () => ['--repo', repo, '--stanza', stanza];
/** `pgark drills --json`, validated against its documented schema; the reports, newest first. */
async function drills(args: string[]): Promise<DrillReport[]> {
  return expectJsonFormat<{ drills: DrillReport[] }>((await pgark(['drills', ...repoArgs(), ...args, '--json'])).stdout, 'drills').drills;
}

/** Live postgres processes whose command line or data directory mentions `text`. */
function postgresProcessesUnder(text: string): number[] {
  const pids: number[] = [];
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (/postgres/.test(cmd) && cmd.includes(text)) pids.push(Number(pid));
    } catch {
      // gone
    }
  }
  return pids;
}

beforeAll(async () => {
  work = await makeSharedTempDir('pgark-drill-');
  repo = await createRepo(await newDir('repo'));
  primary = await PgCluster.create({
    name: 'drill-primary', walSegmentSizeMB: 1,
    conf: { archive_mode: 'on', archive_command: archiveCommand({ repo, stanza }), wal_level: 'replica', max_wal_senders: '10', hot_standby: 'on' },
  });
  await primary.start();
  await primary.pgbench(['-i', '-s', '1', '-q']);
  await primary.psql('CREATE TABLE t (id int PRIMARY KEY, note text)');
  await pgark(['backup', ...repoArgs(), '--pgdata', primary.dataDir, '--no-progress'], { env: primary.clientEnv() });
}, 180_000);

afterAll(async () => {
  // A failed assertion may leave a drill's scratch server (not a harness cluster) running.
  for (const pid of postgresProcessesUnder(join(work, 'scratch-'))) {
    try {
      if (/\/postgres -D /.test(readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' '))) process.kill(pid, 'SIGQUIT');
    } catch {
      // gone
    }
  }
  await destroyAllClusters();
}, 120_000);

describe('pgark clone and promote', () => {
  it('refuses a password in --primary-conninfo before writing anything', async () => {
    const dir = await newDir('clone-pw');
    const r = await pgark(['clone', ...repoArgs(), '--pgdata', dir, '--primary-conninfo', `host=127.0.0.1 port=${primary.port} user=postgres password=s3cret`], { allowFail: true });
    expect(r.code).toBe(2); // the one code for a connection string with a password (was 5 here, 1 or 2 elsewhere)
    expect(r.stderr).toMatch(/must not contain a password.*\.pgpass/);
    expect(r.stderr + r.stdout).not.toContain('s3cret');
    expect(await readdir(dir)).toEqual([]);
  });

  it('refuses --start as root (PostgreSQL would), and drills too, before writing anything', async () => {
    const dir = await newDir('clone-root');
    const asRoot = (args: string[]) => runAsUser(process.execPath, [PGARK_BIN, ...args], { user: null, allowFail: true, timeoutMs: 60_000 });
    const clone = await asRoot(['clone', ...repoArgs(), '--pgdata', dir, '--start']);
    expect(clone.code).toBe(2);
    expect(clone.stderr).toMatch(/pgark clone --start: PostgreSQL refuses to run as root; run pgark as the OS user that owns the data directory/);
    expect(await readdir(dir)).toEqual([]);
    const drill = await asRoot(['drill', ...repoArgs()]);
    expect(drill.code).toBe(2);
    expect(drill.stderr).toMatch(/pgark drill: PostgreSQL refuses to run as root/);
  });

  it('builds a standby from the repository that streams, catches up, and promotes', { timeout: 180_000 }, async () => {
    await primary.psql("INSERT INTO t VALUES (1, 'after the backup')");
    const dir = await newDir('clone1');
    const port = await freePort();
    const out = await pgark(['clone', ...repoArgs(), '--pgdata', dir, '--primary-conninfo', `host=127.0.0.1 port=${primary.port} user=postgres application_name=clone1`,
      '--port', String(port), '--start', '--no-progress']);
    expect(out.stdout).toMatch(/as a standby/);
    expect(out.stdout).toMatch(/started; log: .*pgark-clone\.log/);
    expect(existsSync(join(dir, 'standby.signal'))).toBe(true);
    const auto = await readFile(join(dir, 'postgresql.auto.conf'), 'utf8');
    expect(auto).toMatch(/primary_conninfo = 'host=127\.0\.0\.1 port=\d+ user=postgres application_name=clone1'/);
    expect(auto).toMatch(/restore_command = '.*wal-fetch %f %p/);
    expect(auto).toMatch(new RegExp(`^port = '${port}'$`, 'm'));
    const clone = await PgCluster.fromDataDir(dir, { port, name: 'clone1', ownsDataDir: true });

    await waitUntil('the clone to stream from the primary', async () =>
      (await primary.psql("SELECT state FROM pg_stat_replication WHERE application_name = 'clone1'")) === 'streaming');
    await waitUntil('the clone\'s WAL receiver', async () => (await clone.psql('SELECT status FROM pg_stat_wal_receiver')) === 'streaming');
    expect(await clone.psql('SELECT pg_is_in_recovery()')).toBe('t');
    await primary.psql("INSERT INTO t VALUES (2, 'while streaming')");
    await waitUntil('the clone to catch up', async () => (await clone.psql('SELECT count(*) FROM t')) === '2');

    const p = expectJsonFormat<{ alreadyPrimary: boolean; seconds: number; timeline: number }>((await pgark(['promote', '--pgdata', dir, '--timeout', '60', '--json'])).stdout, 'promote');
    expect(p.alreadyPrimary).toBe(false);
    expect(p.seconds).toBeGreaterThanOrEqual(0);
    expect(p.timeline).toBe(2);
    expect(await clone.psql('SELECT pg_is_in_recovery()')).toBe('f');
    await clone.psql("INSERT INTO t VALUES (3, 'written on the promoted clone')");
    expect(await clone.psql('SELECT count(*) FROM t')).toBe('3');
    // Promoting again: already a primary.
    const again = await pgark(['promote', '--pgdata', dir]);
    expect(again.stdout).toMatch(/already accepts writes/);
    await clone.stop();
  });

  it('a delayed clone receives a commit at once but applies it only after the delay', { timeout: 180_000 }, async () => {
    const delayMs = 8000;
    const dir = await newDir('clone-delayed');
    const port = await freePort();
    await pgark(['clone', ...repoArgs(), '--pgdata', dir, '--primary-conninfo', `host=127.0.0.1 port=${primary.port} user=postgres application_name=delayed`,
      '--delay', '8s', '--port', String(port), '--start', '--no-progress']);
    const clone = await PgCluster.fromDataDir(dir, { port, name: 'delayed', ownsDataDir: true });
    expect(await clone.psql('SHOW recovery_min_apply_delay')).toBe('8s');
    await waitUntil('the delayed clone to stream', async () => (await clone.psql('SELECT status FROM pg_stat_wal_receiver')) === 'streaming');
    const t0 = Date.now();
    await primary.psql("INSERT INTO t VALUES (100, 'delayed')");
    const lsn = await primary.psql('SELECT pg_current_wal_lsn()');
    await waitUntil('the delayed clone to receive the commit', async () =>
      (await clone.psql(`SELECT pg_last_wal_receive_lsn() >= '${lsn}'::pg_lsn`)) === 't', delayMs / 2);
    // Received (within half the delay), not applied.
    expect(await clone.psql(`SELECT pg_last_wal_replay_lsn() < '${lsn}'::pg_lsn`)).toBe('t');
    expect(await clone.psql('SELECT count(*) FROM t WHERE id = 100')).toBe('0');
    expect(Date.now() - t0).toBeLessThan(delayMs);
    await waitUntil('the delayed clone to apply the commit', async () => (await clone.psql('SELECT count(*) FROM t WHERE id = 100')) === '1', 60_000);
    // Applied no earlier than its commit time + the delay (commit time >= t0).
    expect(Date.now() - t0).toBeGreaterThanOrEqual(delayMs);
    await clone.stop();
  });
});

describe('pgark drill', () => {
  it('passes on pgbench data, reports RTO and a known RPO, runs --checks, is stored and listed', { timeout: 180_000 }, async () => {
    await primary.psql("INSERT INTO t VALUES (200, 'the newest commit')");
    await primary.waitForArchived(await primary.switchWal());
    const checks = join(work, 'checks.sql');
    await writeFile(checks, '-- drill checks\nSELECT count(*) = 100000 FROM pgbench_accounts;\n\nSELECT exists (SELECT 1 FROM t WHERE id = 200 AND note = \'the newest commit\');\n');
    await chownToRunAs(checks);
    const scratch = await newDir('scratch-ok');
    const r = await pgark(['drill', ...repoArgs(), '--checks', checks, '--scratch', scratch, '--json', '--no-progress'], { allowFail: true });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const rep = expectJsonFormat<DrillReport>(r.stdout, 'drill');
    expect(rep.result).toBe('passed');
    expect(rep.failure).toBeUndefined();
    expect(rep.target).toEqual({ kind: 'latest' });
    expect(rep.backup?.type).toBe('full');
    const { restoreSec, replaySec, promoteSec, checksSec } = rep.phases;
    for (const s of [restoreSec, replaySec, promoteSec, checksSec]) expect(typeof s).toBe('number');
    expect(rep.rtoSec).toBeCloseTo(restoreSec + replaySec! + promoteSec!, 2);
    // RPO: the newest archived commit is the one replayed last.
    expect(rep.rpo.newestArchivedCommit).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/);
    expect(rep.rpo.lastReplayedCommit).toBe(rep.rpo.newestArchivedCommit);
    expect(rep.rpo.seconds).toBe(0);
    expect(rep.timeline).toBe(2);
    expect(rep.checks.find((c) => c.name === 'pg_amcheck')).toMatchObject({ ok: true });
    expect(rep.checks.find((c) => c.name === 'pg_amcheck')?.skipped).toBeUndefined();
    expect(rep.checks.find((c) => c.name === 'table counts')).toMatchObject({ ok: true });
    const sql = rep.checks.filter((c) => c.name.startsWith('sql '));
    expect(sql).toHaveLength(2);
    expect(sql.every((c) => c.ok)).toBe(true);
    expect(sql[0]!.name).toMatch(/checks\.sql:2\) SELECT count\(\*\) = 100000 FROM pgbench_accounts/);
    expect(rep.tables).toContainEqual({ database: 'postgres', table: 'public.pgbench_accounts', rows: 100000 });
    expect(rep.tables).toContainEqual({ database: 'postgres', table: 'public.t', rows: 4 });
    // Stored, listed, nothing left behind.
    expect(await stat(join(repo, stanza, 'drill', `${rep.id}.json`)).then((s) => s.isFile())).toBe(true);
    expect(await readdir(scratch)).toEqual([]);
    const list = await drills([]);
    expect(list[0]!.id).toBe(rep.id);
    const human = await pgark(['drills', ...repoArgs()]);
    expect(human.stdout).toMatch(new RegExp(`^${rep.id}\\s+passed\\s+latest\\s+${rep.backup!.id}`, 'm'));
  });

  it('--keep leaves the promoted copy running on its private socket only', { timeout: 180_000 }, async () => {
    const scratch = await newDir('scratch-keep');
    const r = await pgark(['drill', ...repoArgs(), '--keep', '--scratch', scratch, '--target', 'immediate', '--no-progress']);
    const [rep] = await drills(['--limit', '1']);
    expect(rep!.result).toBe('passed');
    expect(rep!.target).toEqual({ kind: 'immediate' });
    expect(rep!.kept?.pgdata.startsWith(scratch)).toBe(true);
    const kept = rep!.kept!;
    const pgdata = kept.pgdata;
    expect(r.stdout).toMatch(/^drill \d{8}-\d{6}D PASSED/);
    expect(r.stdout).toContain(`connect:  psql -h ${kept.socketDir} -p ${kept.port} -U postgres postgres`);
    expect(r.stdout).toContain(`remove:   pg_ctl stop -D ${pgdata} -m fast; rm -rf ${kept.socketDir}`);
    try {
      const psql = (sql: string) => runAsUser(join(findPgBin(), 'psql'), ['-X', '-A', '-t', '-h', kept.socketDir, '-p', String(kept.port), '-U', 'postgres', '-d', 'postgres', '-c', sql]);
      expect((await psql('SELECT pg_is_in_recovery()')).stdout.trim()).toBe('f');
      expect((await psql('SHOW listen_addresses')).stdout.trim()).toBe('');
      expect((await psql('SHOW archive_mode')).stdout.trim()).toBe('off');
      expect((await psql('SELECT count(*) FROM pgbench_accounts')).stdout.trim()).toBe('100000');
      expect((await stat(kept.socketDir)).mode & 0o777).toBe(0o700);
    } finally {
      await runAsUser(join(findPgBin(), 'pg_ctl'), ['stop', '-D', pgdata, '-m', 'immediate', '-w'], { allowFail: true, timeoutMs: 60_000 });
    }
    expect(postgresProcessesUnder(scratch)).toEqual([]);
  });

  it('fails naming a --checks statement that returns false', { timeout: 180_000 }, async () => {
    const checks = join(work, 'checks-false.sql');
    await writeFile(checks, 'SELECT count(*) = 100000 FROM pgbench_accounts;\nSELECT count(*) = 0 FROM pgbench_branches;\n');
    await chownToRunAs(checks);
    const scratch = await newDir('scratch-false');
    const r = await pgark(['drill', ...repoArgs(), '--checks', checks, '--scratch', scratch, '--no-progress'], { allowFail: true });
    expect(r.code).toBe(7);
    expect(r.stdout).toMatch(/FAILED/);
    expect(r.stdout).toMatch(/failure\s+check failed: sql \(.*checks-false\.sql:2\) SELECT count\(\*\) = 0 FROM pgbench_branches: returned false/);
    expect(r.stdout).toMatch(/RTO\s+\d/);
    expect(await readdir(scratch)).toEqual([]);
    const [last] = await drills(['--limit', '1']);
    expect(last!.result).toBe('failed');
    expect(last!.failure).toMatch(/pgbench_branches: returned false/);
  });

  it('fails when the target is beyond the archive, with the server log', { timeout: 180_000 }, async () => {
    const scratch = await newDir('scratch-target');
    const r = await pgark(['drill', ...repoArgs(), '--target-name', 'no_such_restore_point', '--scratch', scratch, '--json', '--no-progress'], { allowFail: true });
    expect(r.code).toBe(7);
    const rep = expectJsonFormat<DrillReport>(r.stdout, 'drill');
    expect(rep.result).toBe('failed');
    expect(rep.target).toEqual({ kind: 'name', value: 'no_such_restore_point' });
    expect(rep.failure).toMatch(/recovery target was not reached/);
    expect(rep.failure).toMatch(/server log:/);
    expect(rep.rtoSec).toBeUndefined();
    expect(await readdir(scratch)).toEqual([]);
    expect(postgresProcessesUnder(scratch)).toEqual([]);
  });

  it('fails clearly over a damaged backup, stores the failed report, leaves no server', { timeout: 180_000 }, async () => {
    const [backup] = (await pgarkJson<{ backups: Array<{ id: string }> }>(['list', ...repoArgs()])).backups;
    const dataDir = join(repo, stanza, 'backup', backup!.id, 'data');
    const objects = await readdir(dataDir);
    let largest = '';
    let size = 0;
    for (const o of objects) {
      const s = (await stat(join(dataDir, o))).size;
      if (s > size) [largest, size] = [o, s];
    }
    const path = join(dataDir, largest);
    const bytes = await readFile(path);
    bytes[Math.floor(bytes.length / 2)]! ^= 0x5a;
    await writeFile(path, bytes);
    const scratch = await newDir('scratch-damaged');
    const r = await pgark(['drill', ...repoArgs(), '--scratch', scratch, '--json', '--no-progress'], { allowFail: true });
    expect(r.code).toBe(7);
    const rep = expectJsonFormat<DrillReport>(r.stdout, 'drill');
    expect(rep.result).toBe('failed');
    expect(rep.failure).toMatch(new RegExp(`^restore of backup ${backup!.id} failed: `));
    expect(rep.failure).toMatch(/checksum|integrity|corrupt|sha256|does not match/i);
    expect(rep.failure).toContain(`backup/${backup!.id}/data/${largest}`);
    expect(rep.phases.replaySec).toBeUndefined();
    expect(rep.rpo.note).toMatch(/not measured/);
    expect(await readdir(scratch)).toEqual([]);
    expect(postgresProcessesUnder(scratch)).toEqual([]);
    const [last] = await drills([]);
    expect(last!.id).toBe(rep.id);
    expect(last!.result).toBe('failed');
  });
});
