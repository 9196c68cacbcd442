/**
 * The backup stores its stop segment itself (src/backup/stop-wal.ts), against a real PostgreSQL 15
 * cluster whose archive_command is pgark wal-push (bin/pgark.js) behind two test hooks: it notes
 * each segment for which a push lock or record exists when it is called, and it fails for a
 * segment named by a file in the break directory.
 *  1. archive_command for the stop segment finds the backup's lock or record (it answers from the
 *     record), the backup commits, no lock is left;
 *  2. an archive_command that fails for the stop segment fails the backup (archive-timeout),
 *     although the segment is in the repository: nothing is committed;
 *  3. with pgark agent serving the same pg_wal at the same time the backup commits, the segment
 *     archived once, no lock left;
 *  4. through the installed command (bin/pgark wal-push, as pgark setup writes archive_command)
 *     the stop segment is answered in the shell (bin/pgark-wal-push), without starting Node.
 */
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { archiveCommand, chownToRunAs, connEnv, destroyAllClusters, makeSharedTempDir, PgCluster, PROJECT_ROOT } from '../helpers/pg-cluster.js';
import { startPgark, stopPgark, type BackgroundPgark } from '../helpers/pgark-background.js';
import { pgark } from '../helpers/pgark-run.js';
import { createRepo } from '../helpers/repo.js';

const STANZA = 'stopwal';
let work: string;
let repo: string;
let c: PgCluster;
let agent: BackgroundPgark | undefined;

const noted = () => join(work, 'noted');
const breakDir = () => join(work, 'break');

beforeAll(async () => {
  work = await makeSharedTempDir('pgark-stopwal-');
  repo = await createRepo(await makeSharedTempDir('pgark-stopwal-repo-'));
  await mkdir(breakDir(), { recursive: true });
  await chownToRunAs(breakDir());
  const hook = `if [ -e pg_wal/.pgark/pushed/%f.lock ] || [ -s pg_wal/.pgark/pushed/%f ]; then echo %f >> ${noted()}; fi; test ! -e ${breakDir()}/%f && `;
  c = await PgCluster.create({ name: 'stopwal', conf: { archive_mode: 'on', archive_command: hook + archiveCommand({ repo, stanza: STANZA }), autovacuum: 'off' } });
  await c.start();
  await c.psql('CREATE TABLE t (id int PRIMARY KEY, v text)');
  await c.psql("INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 2000) g");
}, 180_000);
afterAll(async () => {
  if (agent) await stopPgark(agent);
  await destroyAllClusters();
}, 120_000);

/** Switch to a fresh segment and wait until the one switched out is archived (into this repository); the new segment's name. */
async function freshSegment(): Promise<string> {
  const done = (await c.psql('SELECT pg_walfile_name(pg_switch_wal())')).trim();
  await c.waitForArchived(done, 60_000);
  return (await c.psql('SELECT pg_walfile_name(pg_current_wal_insert_lsn())')).trim();
}

const backup = (extra: string[]) => pgark(['backup', '--repo', repo, '--stanza', STANZA, '--pgdata', c.dataDir, '--type', 'full', '--no-progress', '--log-level-stderr', 'debug', '--json', ...extra],
  { env: connEnv(c), allowFail: true, timeoutMs: 150_000 });

/** A full backup on a fresh segment that commits and stores its stop segment itself; that segment, once archived. */
async function backupStoringStopWal(): Promise<string> {
  await freshSegment();
  const r = await backup([]);
  expect(r.code, r.stderr).toBe(0);
  const stopWal = (JSON.parse(r.stdout) as { stop: { walFile: string } }).stop.walFile;
  expect(r.stderr).toContain(`WAL segment ${stopWal} stored by the backup`);
  await c.waitForArchived(stopWal, 30_000);
  return stopWal;
}

async function leftoverLocks(): Promise<string[]> {
  return (await readdir(join(c.dataDir, 'pg_wal', '.pgark', 'pushed')).catch(() => [] as string[])).filter((n) => n.endsWith('.lock'));
}

describe('backup stores its stop segment', () => {
  it('archive_command for the stop segment answers from the backup\'s push record', async () => {
    const stopWal = await backupStoringStopWal();
    expect((await readFile(noted(), 'utf8')).split('\n')).toContain(stopWal);
    expect(await leftoverLocks()).toEqual([]);
  }, 180_000);

  it('an archive_command that fails for the stop segment fails the backup, though the backup stored it', async () => {
    const stopWal = await freshSegment();
    await writeFile(join(breakDir(), stopWal), '');
    try {
      const before = (await pgark(['info', '--repo', repo, '--stanza', STANZA, '--json'])).stdout;
      const r = await backup(['--archive-timeout', '4']);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain(`WAL segment ${stopWal} stored by the backup`);
      expect(r.stderr).toMatch(new RegExp(`WAL segment ${stopWal} is in the repository \\(the backup stored it\\), but PostgreSQL's archiver did not archive it`));
      const after = (await pgark(['info', '--repo', repo, '--stanza', STANZA, '--json'])).stdout;
      expect((JSON.parse(after) as { backups: unknown[] }).backups.length).toBe((JSON.parse(before) as { backups: unknown[] }).backups.length);
      expect(await leftoverLocks()).toEqual([]);
    } finally {
      await rm(join(breakDir(), stopWal), { force: true });
    }
    // The archiver waits a minute after three failures; a reload wakes it.
    await c.psql('SELECT pg_reload_conf()');
    await c.waitForArchived(stopWal, 60_000);
  }, 180_000);

  it('with pgark agent serving the same pg_wal: the backup commits, the segment archived, no lock left', async () => {
    await freshSegment();
    agent = startPgark(['agent', '--pgdata', c.dataDir, '--repo', repo, '--stanza', STANZA, '--jobs', '2', '--poll-ms', '100', '--log-level', 'info'], {});
    const pid = join(c.dataDir, 'pg_wal', '.pgark', 'agent', 'agent.pid');
    for (let i = 0; i < 300 && !existsSync(pid); i++) await new Promise((res) => setTimeout(res, 50));
    expect(existsSync(pid), agent.output()).toBe(true);
    const r = await backup([]);
    expect(r.code, r.stderr).toBe(0);
    const stopWal = (JSON.parse(r.stdout) as { stop: { walFile: string } }).stop.walFile;
    await c.waitForArchived(stopWal, 30_000);
    expect(await leftoverLocks()).toEqual([]);
    expect(agent.output()).not.toMatch(/mismatch|failed/);
    await stopPgark(agent);
    agent = undefined;
  }, 180_000);

  it('through the installed command (bin/pgark wal-push): the stop segment is answered in the shell, no Node started', async () => {
    // The launcher with a Node that cannot run: only an answer from a push record (in the shell)
    // succeeds; anything else falls through to the usual full path, so archiving goes on.
    const answered = join(work, 'answered-in-shell');
    const launcher = join(PROJECT_ROOT, 'bin', 'pgark');
    const viaShell = `PGARK_NODE=/bin/false '${launcher}' wal-push %p --repo '${repo}' --stanza '${STANZA}' && echo %f >> ${answered}`;
    const cmd = `${viaShell} || ${archiveCommand({ repo, stanza: STANZA })}`;
    await c.psql(`ALTER SYSTEM SET archive_command = '${cmd.replace(/'/g, "''")}'`);
    await c.psql('SELECT pg_reload_conf()');
    try {
      const stopWal = await backupStoringStopWal();
      expect((await readFile(answered, 'utf8')).split('\n')).toContain(stopWal);
      expect(await leftoverLocks()).toEqual([]);
    } finally {
      await c.psql('ALTER SYSTEM RESET archive_command');
      await c.psql('SELECT pg_reload_conf()');
    }
  }, 180_000);
});
