/**
 * A repository on a full disk (issue 14 item 8), on a small tmpfs this test mounts (it runs as
 * root, as the integration suite does): `wal-push` and `backup` exit 10 (storage error) naming
 * ENOSPC, print no stack trace and leave nothing partial visible; after space is freed the same
 * push succeeds. And `wal-push` of a WAL file the PostgreSQL user cannot read (a link to a
 * root-only file) exits 14 (operating-system error) naming the file and EACCES, without a stack.
 */
import { spawnSync } from 'node:child_process';
import { copyFile, chmod, chown, mkdir, readdir, rm, stat, statfs, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { archiveCommand, chownToRunAs, destroyAllClusters, makeSharedTempDir, PgCluster, shellQuote, type RunResult } from '../helpers/pg-cluster.js';
import { pgark } from '../helpers/pgark-run.js';
import { createRepo } from '../helpers/repo.js';

let work: string;
let mnt: string;
let mounted = false;
let repo: string;
let pauseFile: string;
let cluster: PgCluster;
/** A completed segment the archiver has not stored (archiving paused), copied out. */
let segName: string;
let segPath: string;

function describeRun(r: RunResult): string {
  return `exit ${r.code} signal ${r.signal}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;
}

/** Every file under `dir` (relative paths). */
async function filesUnder(dir: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(join(dir, rel), { withFileTypes: true }).catch(() => [])) {
    const p = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...(await filesUnder(dir, p)));
    else out.push(p);
  }
  return out;
}

/** Fill the tmpfs with a root-owned file until `leave` bytes are free. */
async function fillDisk(leave: number): Promise<void> {
  const st = await statfs(mnt);
  const free = Number(st.bavail) * Number(st.bsize);
  const size = free - leave;
  expect(size).toBeGreaterThan(0);
  const r = spawnSync('fallocate', ['-l', String(size), join(mnt, 'filler')]);
  if (r.status !== 0) await writeFile(join(mnt, 'filler'), Buffer.alloc(size, 0x5a));
  const after = await statfs(mnt);
  expect(Number(after.bavail) * Number(after.bsize)).toBeLessThanOrEqual(leave + 65536);
}

function expectCleanStorageFailure(r: RunResult): void {
  expect(r.code, describeRun(r)).toBe(10);
  expect(r.stderr).toMatch(/ENOSPC|no space left/i);
  expect(r.stderr).not.toMatch(/AbortError|internal error/);
  expect(r.stderr, 'no stack trace').not.toMatch(/\n\s+at /);
}

beforeAll(async () => {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) {
    throw new Error('full-disk.test.ts mounts a tmpfs and needs root: run the integration tests as root (the CI container does), e.g. `sudo npx vitest run test/integration/full-disk.test.ts`');
  }
  work = await makeSharedTempDir('pgark-fulldisk-');
  mnt = join(work, 'mnt');
  await mkdir(mnt, { mode: 0o700 });
  const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=96m,mode=0700', 'tmpfs', mnt], { encoding: 'utf8' });
  if (m.status !== 0) throw new Error(`mount -t tmpfs failed (exit ${m.status}): ${m.stderr}; the test needs root with CAP_SYS_ADMIN (a privileged container)`);
  mounted = true;
  await chownToRunAs(mnt);
  repo = await createRepo(join(mnt, 'repo'));
  pauseFile = join(work, 'PAUSE-ARCHIVING');
  cluster = await PgCluster.create({
    name: 'fulldisk',
    conf: {
      archive_mode: 'on',
      archive_command: `test ! -e ${shellQuote(pauseFile)} && ${archiveCommand({ repo, stanza: 'main' })}`,
      autovacuum: 'off',
    },
  });
  await cluster.start();
  await cluster.psql('CREATE TABLE t (x int, y text)');
  await cluster.waitForArchived(await cluster.switchWal(), 60_000);
  // Archiving paused: the next segment stays unarchived; it holds ~4 MB of random hex.
  await writeFile(pauseFile, '');
  await cluster.psql("INSERT INTO t SELECT g, (SELECT string_agg(md5(random()::text || g || i), '') FROM generate_series(1, 32) i) FROM generate_series(1, 4000) g");
  segName = await cluster.switchWal();
  const dir = join(work, 'wal');
  await mkdir(dir, { mode: 0o700 });
  segPath = join(dir, segName);
  await copyFile(join(cluster.dataDir, 'pg_wal', segName), segPath);
  await chownToRunAs(dir);
}, 180_000);

afterAll(async () => {
  await cluster?.stop('immediate').catch(() => undefined);
  if (mounted) {
    const u = spawnSync('umount', [mnt], { encoding: 'utf8' });
    if (u.status !== 0) spawnSync('umount', ['-l', mnt]);
  }
  await destroyAllClusters();
}, 60_000);

describe('a repository on a full disk', () => {
  it('wal-push exits 10 naming ENOSPC, without a stack trace, and stores nothing', async () => {
    await fillDisk(256 * 1024);
    // (The audit log under main/log/ may record the failure: small objects can still fit.)
    const objects = async () => (await filesUnder(repo)).filter((f) => !f.startsWith('main/log/'));
    const before = await objects();
    const r = await pgark(['wal-push', segPath, '--repo', repo, '--stanza', 'main'], { allowFail: true });
    expectCleanStorageFailure(r);
    // Nothing partial: the same files as before (no object for the segment, no temp file).
    expect(await objects()).toEqual(before);
    expect(before.some((f) => f.endsWith(segName))).toBe(false);
  });

  it('backup exits 10 naming ENOSPC, without a stack trace, and lists no backup', async () => {
    const r = await pgark(['backup', '--repo', repo, '--stanza', 'main', '--pgdata', cluster.dataDir, '--no-progress', '--type', 'full', '--jobs', '2'], {
      allowFail: true,
      env: { PGHOST: cluster.socketDir, PGPORT: String(cluster.port), PGUSER: 'postgres', PGDATABASE: 'postgres' },
      timeoutMs: 150_000,
    });
    expectCleanStorageFailure(r);
    // No backup: the stanza does not exist (exit 8, like every read command) or lists none.
    const list = await pgark(['list', '--repo', repo, '--stanza', 'main', '--json'], { allowFail: true });
    expect(list.code === 8 ? [] : (JSON.parse(list.stdout) as { backups: unknown[] }).backups).toEqual([]);
    expect((await filesUnder(repo)).filter((f) => f.includes('.pgark-tmp-'))).toEqual([]);
  }, 180_000);

  it('once space is freed, the same wal-push stores the segment', async () => {
    await rm(join(mnt, 'filler'));
    const r = await pgark(['wal-push', segPath, '--repo', repo, '--stanza', 'main'], { allowFail: true });
    expect(r.code, describeRun(r)).toBe(0);
    const v = await pgark(['wal-fetch', segName, join(work, 'fetched'), '--repo', repo, '--stanza', 'main', '--prefetch', '0'], { allowFail: true });
    expect(v.code, describeRun(v)).toBe(0);
    expect((await stat(join(work, 'fetched'))).size).toBe((await stat(segPath)).size);
  });
});

describe('wal-push of a file the PostgreSQL user cannot read', () => {
  it('exits 14 naming the file and EACCES, without a stack trace', async () => {
    const secret = join(work, 'root-only');
    await mkdir(secret, { mode: 0o755 });
    const target = join(secret, segName);
    await copyFile(segPath, target);
    // Node 24's copyFile keeps the source's owner (postgres here): make it root's own.
    await chown(target, 0, 0);
    await chmod(target, 0o600);
    const dir = join(work, 'linked');
    await mkdir(dir, { mode: 0o700 });
    const next = `${segName.slice(0, 16)}${(Number.parseInt(segName.slice(16), 16) + 1).toString(16).toUpperCase().padStart(8, '0')}`;
    await symlink(target, join(dir, next));
    await chownToRunAs(dir);
    const r = await pgark(['wal-push', join(dir, next), '--repo', repo, '--stanza', 'main'], { allowFail: true });
    expect(r.code, describeRun(r)).toBe(14);
    expect(r.stderr).toMatch(/EACCES|permission denied/i);
    expect(r.stderr).toContain(next);
    expect(r.stderr).not.toMatch(/internal error|\n\s+at /);
  });
});
