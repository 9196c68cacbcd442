/**
 * `pgark backup` / `pgark restore` failure paths against real PostgreSQL 15 clusters initialised
 * with --data-checksums:
 *  1. kill -9 during a backup: nothing is listed, the server ends the backup with the session, the
 *     stale lock is taken over, and the next backup removes the uncommitted run's objects;
 *  2. a second concurrent backup is refused with exit 6 (LOCKED) naming the holder;
 *  3. a flipped byte in a relation file is reported (exit 7, file and block) and recorded;
 *  4. a flipped byte in a stored object makes restore fail without leaving a startable directory;
 *  5. a non-empty restore target is refused and left untouched;
 *  6. a backup taken from a hot standby restores, promotes and holds the primary's data.
 *
 * Archiving of the main cluster can be paused (a PAUSE file makes its archive_command fail): a
 * backup then cannot commit, because it waits for its WAL, so a run is guaranteed to be alive
 * (and holding the lock) at the moment the test kills it or runs a second backup next to it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, open, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { archiveCommand, chownToRunAs, destroyAllClusters, killProcessesMentioning, lookupUser, makeSharedTempDir, PGARK_BIN, pgarkProcessesMentioning, pgRunAsUser, PgCluster, shellQuote, connEnv } from '../helpers/pg-cluster.js';
import { pgark } from '../helpers/pgark-run.js';
import { createRepo } from '../helpers/repo.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let repo: string;
let work: string;
let main: PgCluster;
let pauseFile: string;
const spawned = new Set<ChildProcess>();

afterAll(async () => {
  for (const c of spawned) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  if (repo) killProcessesMentioning(repo);
  await destroyAllClusters();
}, 120_000);

// ---------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------

interface Running {
  child: ChildProcess;
  /** Resolves when the process has exited and its output is closed. */
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
}

/**
 * Start `node bin/pgark.js args` in the background, as the PostgreSQL OS user when we are root
 * (setpriv execs node directly, as runAsUser does, so child.pid is pgark's own pid), with an
 * explicit environment. Killed by SIGKILL after timeoutMs.
 */
function spawnPgark(args: string[], env: Record<string, string>, timeoutMs = 150_000): Running {
  const userName = pgRunAsUser();
  const user = userName !== null && userName !== 'root' ? lookupUser(userName) : null;
  const baseEnv: Record<string, string> = {
    PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    HOME: user ? user.home : (process.env['HOME'] ?? '/'),
    LANG: 'C.UTF-8',
    LC_MESSAGES: 'C',
    ...(user ? { USER: user.name, LOGNAME: user.name } : {}),
    ...env,
  };
  const argv = [PGARK_BIN, ...args];
  const child = user
    ? spawn('setpriv', [`--reuid=${user.uid}`, `--regid=${user.gid}`, '--init-groups', '--', process.execPath, ...argv], { cwd: '/', env: baseEnv, stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn(process.execPath, argv, { cwd: '/', env: baseEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  spawned.add(child);
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout!.on('data', (d: Buffer) => out.push(d));
  child.stderr!.on('data', (d: Buffer) => err.push(d));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      spawned.delete(child);
      resolve({ code, signal, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
    });
  });
  return { child, done };
}

function exited(r: Running): boolean {
  return r.child.exitCode !== null || r.child.signalCode !== null;
}

/** Files (committed objects and temp files) under `<repo>/<stanza>/backup/<id>/`, by backup id. */
async function backupDirFiles(stanza: string): Promise<Map<string, { objects: string[]; temps: string[] }>> {
  const res = new Map<string, { objects: string[]; temps: string[] }>();
  const root = join(repo, stanza, 'backup');
  const ids = await readdir(root).catch(() => [] as string[]);
  for (const id of ids) {
    const entry = { objects: [] as string[], temps: [] as string[] };
    const walk = async (rel: string): Promise<void> => {
      const ents = await readdir(join(root, id, rel), { withFileTypes: true }).catch(() => []);
      for (const e of ents) {
        const p = rel ? `${rel}/${e.name}` : e.name;
        if (e.isDirectory()) await walk(p);
        else (e.name.includes('.pgark-tmp-') ? entry.temps : entry.objects).push(p);
      }
    };
    await walk('');
    res.set(id, entry);
  }
  return res;
}

/** Poll until a backup id other than `known` has at least one committed object under backup/<id>/data/. */
async function waitForNewObjects(stanza: string, known: ReadonlySet<string>, run: Running, timeoutMs: number): Promise<{ id: string; objects: string[]; temps: string[] }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const [id, e] of await backupDirFiles(stanza)) {
      if (!known.has(id) && e.objects.some((o) => o.startsWith('data/'))) return { id, ...e };
    }
    if (exited(run)) {
      const r = await run.done;
      throw new Error(`pgark backup exited (code ${r.code}, signal ${r.signal}) before any object appeared\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`);
    }
    if (Date.now() > deadline) throw new Error(`no backup object appeared under ${repo}/${stanza}/backup within ${timeoutMs} ms`);
    await sleep(25);
  }
}

async function listJson(stanza: string): Promise<Array<{ id: string; type: string; fromStandby: boolean; checksumFailures: number }>> {
  const r = await pgark(['list', '--repo', repo, '--stanza', stanza, '--json']);
  return (JSON.parse(r.stdout) as { backups: Array<{ id: string; type: string; fromStandby: boolean; checksumFailures: number }> }).backups;
}

function backupArgs(stanza: string, c: PgCluster, extra: string[]): string[] {
  return ['backup', '--repo', repo, '--stanza', stanza, '--pgdata', c.dataDir, '--no-progress', ...extra];
}

/** PGHOST = the socket directory, as the brief for the CLI documents. */
async function pauseArchiving(): Promise<void> {
  await writeFile(pauseFile, '');
}

async function resumeArchiving(c: PgCluster): Promise<void> {
  await rm(pauseFile, { force: true });
  // After three failures the archiver sleeps up to 60 s; SIGHUP sets its latch.
  await c.reload();
}

/** Flip one byte of a file in place (owner and mode unchanged). */
async function flipByte(file: string, offset: number): Promise<{ before: number; after: number }> {
  const fh = await open(file, 'r+');
  try {
    const b = Buffer.alloc(1);
    const { bytesRead } = await fh.read(b, 0, 1, offset);
    if (bytesRead !== 1) throw new Error(`${file} has no byte at ${offset}`);
    const before = b[0]!;
    b[0] = before ^ 0x5a;
    await fh.write(b, 0, 1, offset);
    await fh.sync();
    return { before, after: b[0] };
  } finally {
    await fh.close();
  }
}

async function fingerprint(c: PgCluster, table: string): Promise<string> {
  return c.psql(`SELECT count(*) || ':' || md5(string_agg(t::text, ',' ORDER BY t::text)) FROM ${table} t`);
}

async function waitUntil(what: string, fn: () => Promise<boolean>, timeoutMs: number, stepMs = 200): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(stepMs);
  }
}

// ---------------------------------------------------------------------------
// main cluster: ~150 MB of pgbench data, archiving into stanza 'main' (pausable)
// ---------------------------------------------------------------------------

beforeAll(async () => {
  repo = await createRepo(await makeSharedTempDir('pgark-bf-repo-'));
  work = await makeSharedTempDir('pgark-bf-work-');
  pauseFile = join(work, 'PAUSE-ARCHIVING');
  main = await PgCluster.create({
    name: 'bf-main',
    dataChecksums: true,
    conf: {
      archive_mode: 'on',
      archive_command: `test ! -e ${shellQuote(pauseFile)} && ${archiveCommand({ repo, stanza: 'main' })}`,
      autovacuum: 'off',
      checkpoint_timeout: '1h',
      max_wal_size: '1GB',
    },
  });
  await main.start();
  expect(await main.psql('SHOW data_checksums')).toBe('on');
  await main.pgbench(['-i', '-s', '10', '-q']);
  await main.psql('CHECKPOINT');
  await main.waitForArchived(await main.switchWal(), 90_000);
}, 180_000);

describe('pgark backup: failures', () => {
  let killedId: string;

  it('kill -9 during a backup: nothing listed, session and lock released, the next backup removes the leftovers', async () => {
    // Paused archiving guarantees the run cannot commit before it is killed.
    await pauseArchiving();
    const run = spawnPgark(backupArgs('main', main, ['--type', 'full', '--jobs', '1', '--json']), connEnv(main));
    let seen: { id: string; objects: string[]; temps: string[] };
    try {
      seen = await waitForNewObjects('main', new Set(), run, 60_000);
    } finally {
      run.child.kill('SIGKILL');
    }
    const r = await run.done;
    expect(r.signal).toBe('SIGKILL');
    killedId = seen.id;
    expect(killedId).toMatch(/^\d{8}-\d{6}F$/);
    // Worker threads die with the process: nothing of that run is left running.
    expect(pgarkProcessesMentioning(repo).filter((p) => p === run.child.pid)).toEqual([]);

    // Not committed: not listed.
    expect(await listJson('main')).toEqual([]);
    const shown = await pgark(['show', 'latest', '--repo', repo, '--stanza', 'main', '--json'], { allowFail: true });
    expect(shown.code).not.toBe(0);

    // The server ends a non-exclusive backup with its session: the backend goes away.
    await waitUntil('the killed backup session to end', async () =>
      (await main.psql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pgark backup'")) === '0', 15_000);

    // A new backup succeeds right away (stale lock of a dead pid is taken over) and cleans up.
    await resumeArchiving(main);
    const t0 = Date.now();
    const next = await pgark(backupArgs('main', main, ['--type', 'full', '--jobs', '2', '--json', '--archive-timeout', '60']), { env: connEnv(main), allowFail: true, timeoutMs: 150_000 });
    expect(next.code, `backup after kill -9 failed:\n${next.stdout}\n${next.stderr}`).toBe(0);
    const info = JSON.parse(next.stdout) as { id: string; notes: string[]; checksumFailureList: unknown[] };
    expect(info.id).not.toBe(killedId);
    expect(info.notes.join('\n')).toMatch(new RegExp(`removed \\d+ objects of backup ${killedId}`));
    expect(info.checksumFailureList).toEqual([]);
    // The killed run's lock was judged stale (its pid is gone) and taken over, not waited for.
    if (/lock/i.test(next.stderr)) expect(next.stderr).toMatch(new RegExp(`pid ${run.child.pid}\\b.*has exited`));
    expect(Date.now() - t0).toBeLessThan(120_000);

    const listed = await listJson('main');
    expect(listed.map((b) => b.id)).toEqual([info.id]);
    expect(existsSync(join(repo, 'main', 'lock', 'backup'))).toBe(false);
    // Everything the killed run stored is gone, temp files of the dead process included.
    const left = await backupDirFiles('main');
    expect(left.get(killedId), `left of ${killedId} (at kill time: objects ${JSON.stringify(seen.objects)}, temps ${JSON.stringify(seen.temps)})`).toBeUndefined();
    expect(existsSync(join(repo, 'main', 'backup', killedId))).toBe(false);
    expect([...left.keys()]).toEqual([info.id]);
  }, 200_000);

  it('a second concurrent backup fails with exit 6 (LOCKED) naming the holder', async () => {
    const before = new Set((await listJson('main')).map((b) => b.id));
    expect(before.size).toBe(1);
    // The first run holds the lock from before its first object until it commits, and it
    // cannot commit while archiving is paused (it waits for its WAL).
    await pauseArchiving();
    const first = spawnPgark(backupArgs('main', main, ['--type', 'full', '--jobs', '1', '--json', '--archive-timeout', '90']), connEnv(main));
    try {
      const seen = await waitForNewObjects('main', before, first, 60_000);
      const dirsBefore = [...(await backupDirFiles('main')).keys()].sort();
      expect(dirsBefore).toContain(seen.id);
      const second = await pgark(backupArgs('main', main, ['--type', 'full', '--json']), { env: connEnv(main), allowFail: true, timeoutMs: 60_000 });
      expect(second.code, `second backup:\n${second.stdout}\n${second.stderr}`).toBe(6);
      expect(second.stderr).toMatch(/lock/i);
      expect(second.stderr).toContain(`pid ${first.child.pid}`);
      expect(second.stderr).toMatch(/held by backup/);
      expect(exited(first)).toBe(false);
      // The refused run stored nothing and removed nothing of the running one.
      const dirs = await backupDirFiles('main');
      expect([...dirs.keys()].sort()).toEqual(dirsBefore);
      expect(dirs.get(seen.id)!.objects.length).toBeGreaterThanOrEqual(seen.objects.length);
    } finally {
      await resumeArchiving(main);
    }
    const r = await first.done;
    expect(r.code, `first backup:\n${r.stdout}\n${r.stderr}`).toBe(0);
    const listed = await listJson('main');
    expect(listed.length).toBe(2);
    expect(listed[1]!.type).toBe('full');
  }, 200_000);

  it('restore refuses a non-empty target (mentions --delta/--force) and leaves it untouched', async () => {
    const target = join(work, 'nonempty');
    await mkdir(target, { recursive: true });
    await writeFile(join(target, 'precious.txt'), 'do not touch\n');
    await chownToRunAs(target);
    await chmod(target, 0o700);
    const before = await stat(join(target, 'precious.txt'));
    const r = await pgark(['restore', 'latest', '--repo', repo, '--stanza', 'main', '--pgdata', target, '--no-progress'], { allowFail: true });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('--delta');
    expect(r.stderr).toContain('--force');
    expect(await readdir(target)).toEqual(['precious.txt']);
    expect(await readFile(join(target, 'precious.txt'), 'utf8')).toBe('do not touch\n');
    const after = await stat(join(target, 'precious.txt'));
    expect(after.mtimeMs).toBe(before.mtimeMs);
  }, 60_000);

  it('restore of a backup with a flipped byte in a stored object fails and leaves no startable directory', async () => {
    const latest = (await listJson('main')).pop()!;
    const dataDir = join(repo, 'main', 'backup', latest.id, 'data');
    let largest = { name: '', size: -1 };
    for (const name of await readdir(dataDir)) {
      if (name.includes('.pgark-tmp-')) continue;
      const st = await stat(join(dataDir, name));
      if (st.size > largest.size) largest = { name, size: st.size };
    }
    expect(largest.size).toBeGreaterThan(1024 * 1024);
    const file = join(dataDir, largest.name);
    const modeBefore = (await stat(file)).mode;
    await flipByte(file, Math.floor(largest.size / 2));
    expect((await stat(file)).mode).toBe(modeBefore);

    const target = join(work, 'restore-corrupt');
    const r = await pgark(['restore', 'latest', '--repo', repo, '--stanza', 'main', '--pgdata', target, '--no-progress', '--jobs', '2'], { allowFail: true, timeoutMs: 120_000 });
    expect(r.code, `restore of a corrupted object:\n${r.stdout}\n${r.stderr}`).not.toBe(0);
    expect(r.code).toBe(11); // INTEGRITY
    // Nothing startable: pg_control is only put in place once every file verified.
    expect(existsSync(join(target, 'global', 'pg_control'))).toBe(false);
    expect(existsSync(join(target, 'recovery.signal'))).toBe(false);
    expect(r.stderr).toMatch(/checksum|sha256|integrity|corrupt/i);
    // The operator must learn which object is damaged.
    expect(r.stderr).toContain(`backup/${latest.id}/data/${largest.name}`);
  }, 150_000);

  it('a flipped byte in a relation file: exit 7, the file and block reported and recorded', async () => {
    const c = await PgCluster.create({
      name: 'bf-cksum',
      dataChecksums: true,
      conf: { archive_mode: 'on', archive_command: archiveCommand({ repo, stanza: 'cksum' }), autovacuum: 'off' },
    });
    await c.start();
    await c.psql("CREATE TABLE damaged AS SELECT g AS id, md5(g::text) AS payload FROM generate_series(1, 3000) g");
    await c.psql('VACUUM damaged');
    await c.psql('CHECKPOINT');
    const relPath = await c.psql("SELECT pg_relation_filepath('damaged')");
    const nblocks = Number(await c.psql("SELECT pg_relation_size('damaged') / 8192"));
    expect(nblocks).toBeGreaterThan(3);
    await c.stop();
    await flipByte(join(c.dataDir, relPath), 8192 + 4000);
    await c.start(); // the table is not read: PostgreSQL does not notice

    const r = await pgark(backupArgs('cksum', c, ['--type', 'full', '--json', '--archive-timeout', '60']), { env: connEnv(c), allowFail: true, timeoutMs: 120_000 });
    expect(r.code, `backup of a damaged relation:\n${r.stdout}\n${r.stderr}`).toBe(7);
    const out = JSON.parse(r.stdout) as { id: string; checksumFailures: number; checksumFailureList: Array<{ path: string; blocks: number[] }> };
    expect(out.checksumFailureList).toEqual([{ path: relPath, blocks: [1] }]);
    expect(out.checksumFailures).toBe(1);

    // Committed anyway, and recorded.
    const listed = await listJson('cksum');
    expect(listed.map((b) => b.id)).toEqual([out.id]);
    expect(listed[0]!.checksumFailures).toBe(1);
    const shown = await pgark(['show', 'latest', '--files', '--repo', repo, '--stanza', 'cksum', '--json']);
    const s = JSON.parse(shown.stdout) as { id: string; checksumFailures: number; checksumFailureList: Array<{ path: string; blocks: number[] }>; files: Array<{ path: string; checksumFailures?: number[] }> };
    expect(s.id).toBe(out.id);
    expect(s.checksumFailures).toBeGreaterThanOrEqual(1);
    expect(s.checksumFailureList).toEqual([{ path: relPath, blocks: [1] }]);
    expect(s.files.filter((f) => f.checksumFailures).map((f) => [f.path, f.checksumFailures])).toEqual([[relPath, [1]]]);
    // The text form names the file and block too.
    const text = await pgark(['show', 'latest', '--repo', repo, '--stanza', 'cksum']);
    expect(text.stdout).toContain(`checksum failure: ${relPath} blocks 1`);
    await c.destroy();
  }, 150_000);

  it('a backup from a hot standby commits (fromStandby), restores to consistency, promotes and matches the primary', async () => {
    const primary = await PgCluster.create({
      name: 'bf-primary',
      dataChecksums: true,
      conf: { archive_mode: 'on', archive_command: archiveCommand({ repo, stanza: 'sb' }), autovacuum: 'off', wal_keep_size: '256MB' },
    });
    await primary.start();
    await primary.psql("CREATE TABLE fp AS SELECT g AS id, md5(g::text) AS h FROM generate_series(1, 20000) g");
    await primary.psql('CHECKPOINT');
    await primary.waitForArchived(await primary.switchWal(), 60_000);

    const standbyDir = join(await makeSharedTempDir('pgark-bf-standby-'), 'data');
    await primary.basebackup(standbyDir, { walMethod: 'stream', extraArgs: ['-R'] });
    const standby = await PgCluster.fromDataDir(standbyDir, { name: 'bf-standby', ownsDataDir: true, conf: { hot_standby: 'on', archive_mode: 'off' } });
    await standby.start();
    expect(await standby.psql('SELECT pg_is_in_recovery()')).toBe('t');
    const primaryLsn = await primary.psql('SELECT pg_current_wal_lsn()');
    await waitUntil('the standby to replay the primary', async () =>
      (await standby.psql(`SELECT pg_last_wal_replay_lsn() >= '${primaryLsn}'::pg_lsn`)) === 't', 60_000);
    const expected = await fingerprint(primary, 'fp');
    expect(await fingerprint(standby, 'fp')).toBe(expected);

    // The primary archives the standby's last segment only when it switches WAL.
    const run = spawnPgark(backupArgs('sb', standby, ['--from-standby', '--type', 'full', '--json', '--archive-timeout', '60']), connEnv(standby));
    const deadline = Date.now() + 120_000;
    while (!exited(run) && Date.now() < deadline) {
      await primary.psql('SELECT pg_switch_wal()').catch(() => undefined);
      await Promise.race([run.done, sleep(1000)]);
    }
    const r = await run.done;
    expect(r.code, `backup from the standby:\n${r.stdout}\n${r.stderr}`).toBe(0);
    const info = JSON.parse(r.stdout) as { id: string; fromStandby: boolean; checksumFailureList: unknown[] };
    expect(info.fromStandby).toBe(true);
    expect(info.checksumFailureList).toEqual([]);
    const listed = await listJson('sb');
    expect(listed.map((b) => [b.id, b.fromStandby])).toEqual([[info.id, true]]);
    // A standby's stop point (its minRecoveryPoint) can be the very end of the WAL written so far
    // (e.g. the end of a switch record when the primary is idle at a segment boundary). Recovery to
    // 'immediate' must read the record after the consistent point, so let the archive go on, as
    // it does on a live primary: one more commit record (no table is written) and a switch.
    const after = await primary.psql('SELECT txid_current(); SELECT pg_walfile_name(pg_switch_wal())');
    await primary.waitForArchived(after.split('\n').pop()!, 60_000);

    const target = join(await makeSharedTempDir('pgark-bf-restored-'), 'data');
    const rr = await pgark(['restore', info.id, '--repo', repo, '--stanza', 'sb', '--pgdata', target, '--target-immediate', '--target-action', 'promote', '--no-progress', '--json'], { allowFail: true, timeoutMs: 120_000 });
    expect(rr.code, `restore of the standby backup:\n${rr.stdout}\n${rr.stderr}`).toBe(0);
    expect(existsSync(join(target, 'global', 'pg_control'))).toBe(true);
    expect(existsSync(join(target, 'recovery.signal'))).toBe(true);
    // Restored without --standby: it must not come up as a standby of the original primary.
    expect.soft(existsSync(join(target, 'standby.signal')), 'standby.signal copied from the standby into a restore without --standby').toBe(false);

    // Stop the standby first so the restored copy cannot stream from anything but the archive.
    await standby.stop();
    const restored = await PgCluster.fromDataDir(target, { name: 'bf-sb-restored', ownsDataDir: true, conf: { hot_standby: 'on', archive_mode: 'off' } });
    try {
      await restored.start({ timeoutSec: 120 });
      await waitUntil('the restored copy to promote', async () => (await restored.psql('SELECT pg_is_in_recovery()')) === 'f', 120_000, 250);
    } catch (e) {
      throw new Error(`${(e as Error).message}\n--- server log of the restored copy ---\n${await restored.readLog(8000)}`);
    }
    expect(await fingerprint(restored, 'fp')).toBe(expected);
    expect(await fingerprint(primary, 'fp')).toBe(expected);
    const log = await restored.readLog();
    expect(log).toMatch(/consistent recovery state reached/);
    await restored.destroy();
    await standby.destroy();
    await primary.destroy();
  }, 240_000);
});
