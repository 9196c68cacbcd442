/**
 * Retention, delete and verify against a real PostgreSQL 15 cluster archiving with pgark
 * wal-push into a filesystem repository:
 *  - expire keeps every point inside the policy restorable, honours pins, removes WAL only below
 *    the oldest kept backup, and refuses to run without a policy;
 *  - delete refuses to break chains and pins unless --force;
 *  - verify is incremental (objects verified before are skipped unless --full), detects a
 *    flipped byte in a data object and a WAL segment missing from the archive.
 * The tests of this file run in order and share one cluster and one repository.
 */
import { open, readdir, rm, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { archiveCommand, destroyAllClusters, makeSharedTempDir, PgCluster } from '../helpers/pg-cluster.js';
import { pgark } from '../helpers/pgark-run.js';
import { createRepo } from '../helpers/repo.js';
import { expectJsonFormat } from '../helpers/json-schema.js';

const STANZA = 'main';

interface BackupJson {
  id: string;
  type: 'full' | 'incr';
  parent?: string;
  chain: string[];
  start: { lsn: string; walFile: string; time: string };
  stop: { lsn: string; walFile: string; time: string };
  walRange: { first: string; last: string };
  kept?: boolean;
}

interface ExpireJson {
  dryRun: boolean;
  plan: {
    keep: Array<{ id: string; reasons: string[] }>;
    expire: Array<{ id: string; reason: string }>;
    walKeepFrom: { segment: string; backup: string } | null;
    warnings: string[];
  };
  walKeptFrom: string | null;
  removed: { backups: string[]; uncommitted: string[]; wal: { files: number; bytes: number } };
  wouldRemove?: { backups: string[]; uncommitted: string[]; wal: { files: number; bytes: number; objects: Array<{ name: string; key: string; size: number }> } };
}

interface VerifyJson {
  backups: Array<{ id: string; ok: boolean; problems: string[]; objectsRead: number; objectsSkipped: number; walChecked: number }>;
  objectsRead: number;
  objectsSkipped: number;
  bytesRead: number;
  walRead: number;
  walSkipped: number;
  ok: boolean;
}

let src: PgCluster;
let repo: string;
let work: string;
let env: Record<string, string>;

afterAll(async () => {
  await destroyAllClusters();
});

beforeAll(async () => {
  repo = await createRepo(await makeSharedTempDir('pgark-ret-repo-'));
  work = await makeSharedTempDir('pgark-ret-work-');
  src = await PgCluster.create({
    name: 'retention-src',
    conf: {
      archive_mode: 'on',
      archive_command: archiveCommand({ repo, stanza: STANZA }),
      max_wal_size: '1GB',
      checkpoint_timeout: '1h',
      autovacuum: 'off',
    },
  });
  await src.start();
  env = { PGHOST: src.socketDir, PGPORT: String(src.port), PGUSER: 'postgres', PGDATABASE: 'postgres' };
  await src.pgbench(['-i', '-s', '1', '-q']);
  await src.psql('CREATE TABLE marker (tag text PRIMARY KEY)');
  await writeAndSwitch('m0');
}, 120_000);

// ---------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------

const repoArgs = (): string[] => ['--repo', repo, '--stanza', STANZA];

function run(args: string[], allowFail = false) {
  return pgark([...args, ...repoArgs()], { env, allowFail, timeoutMs: 120_000 });
}

/** The command's --json output, validated against its documented schema (docs/JSON.md). */
async function runJson<T>(args: string[]): Promise<T> {
  const r = await run([...args, '--json']);
  return expectJsonFormat<T>(r.stdout, args[0]!);
}

/** Insert a marker row, touch some pgbench rows, switch WAL and wait until it is archived. */
async function writeAndSwitch(tag: string): Promise<void> {
  await src.psql(`INSERT INTO marker VALUES ('${tag}'); UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid % 97 = 0`);
  const seg = await src.switchWal();
  await src.waitForArchived(seg, 60_000);
}

/** Wait (bounded) until the server has no WAL file waiting for archive_command (e.g. a .backup file). */
async function archiveSettled(): Promise<void> {
  const statusDir = join(src.dataDir, 'pg_wal', 'archive_status');
  const deadline = Date.now() + 30_000;
  for (;;) {
    const ready = (await readdir(statusDir)).filter((n) => n.endsWith('.ready'));
    if (ready.length === 0) return;
    if (Date.now() > deadline) throw new Error(`WAL not archived within 30 s: ${ready.join(', ')}`);
    await new Promise((res) => setTimeout(res, 100));
  }
}

async function backup(type: 'full' | 'incr'): Promise<BackupJson> {
  const b = await runJson<BackupJson>(['backup', '--type', type, '--no-progress', '--jobs', '2']);
  expect(b.type).toBe(type);
  // The server archives the backup history file (<segment>.<offset>.backup) after the backup
  // returned; let it land so that repository listings compared later are stable.
  await archiveSettled();
  return b;
}

async function listIds(): Promise<Array<{ id: string; kept: boolean }>> {
  const l = (await runJson<{ backups: BackupJson[] }>(['list'])).backups;
  return l.map((b) => ({ id: b.id, kept: !!b.kept }));
}

/** Every file of the repository (relative paths), without the audit trail and locks. */
async function repoFiles(dir = repo): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await repoFiles(p)));
    else out.push(relative(repo, p));
  }
  return dir === repo ? out.filter((p) => !p.startsWith(`${STANZA}/log/`) && !p.startsWith(`${STANZA}/lock/`)).sort() : out;
}

const WAL_FILE_RE = /^[0-9A-F]{24}(\.partial|\.[0-9A-F]{8}\.backup)?$/;

/** Archived WAL file names (segments, .partial, .backup), sorted. */
async function walFiles(): Promise<string[]> {
  return (await repoFiles())
    .filter((p) => p.startsWith(`${STANZA}/wal/`))
    .map((p) => p.slice(p.lastIndexOf('/') + 1))
    .filter((n) => WAL_FILE_RE.test(n))
    .sort();
}

const backupFiles = (files: string[], id: string): string[] => files.filter((p) => p.startsWith(`${STANZA}/backup/${id}/`));

async function dataObjects(id: string): Promise<string[]> {
  const dir = join(repo, STANZA, 'backup', id, 'data');
  return (await readdir(dir)).filter((n) => !n.includes('.pgark-tmp-')).sort((a, b) => Number(a) - Number(b));
}

/** Restore `ref` into a fresh directory, start it, wait for promotion and return the markers. */
async function restoreAndRead(ref: string, extra: string[], name: string): Promise<string[]> {
  const dir = join(work, name);
  const r = await run(['restore', ref, '--pgdata', dir, '--no-progress', '--jobs', '2', ...extra]);
  expect(r.code).toBe(0);
  const copy = await PgCluster.fromDataDir(dir, { name, conf: { archive_mode: 'off' } });
  try {
    await copy.start({ timeoutSec: 120 });
    const deadline = Date.now() + 90_000;
    while ((await copy.psql('SELECT pg_is_in_recovery()')) === 't') {
      if (Date.now() > deadline) throw new Error(`restored ${ref} did not leave recovery\n${await copy.readLog(4000)}`);
      await new Promise((res) => setTimeout(res, 200));
    }
    const rows = await copy.psql('SELECT tag FROM marker ORDER BY tag');
    return rows === '' ? [] : rows.split('\n');
  } finally {
    await copy.destroy();
    await rm(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------
// 1. expire
// ---------------------------------------------------------------------------

describe('expire', () => {
  let F1: BackupJson;
  let I1: BackupJson;
  let F2: BackupJson;
  let I2: BackupJson;
  let F3: BackupJson;

  beforeAll(async () => {
    F1 = await backup('full');
    await writeAndSwitch('m1');
    I1 = await backup('incr');
    await writeAndSwitch('m2');
    F2 = await backup('full');
    await writeAndSwitch('m3');
    I2 = await backup('incr');
    await writeAndSwitch('m4');
    F3 = await backup('full');
    await writeAndSwitch('m5');
    expect(I1.parent).toBe(F1.id);
    expect(I1.chain).toEqual([F1.id, I1.id]);
    expect(I2.parent).toBe(F2.id);
    expect(I2.chain).toEqual([F2.id, I2.id]);
  }, 240_000);

  it('lists the five backups oldest first', async () => {
    expect(await listIds()).toEqual([F1, I1, F2, I2, F3].map((b) => ({ id: b.id, kept: false })));
  });

  it('--dry-run --retain-full 2 plans F2, I2, F3 kept and I1 then F1 expired, and removes nothing', async () => {
    const before = await repoFiles();
    const walBefore = await walFiles();
    const out = await runJson<ExpireJson>(['expire', '--retain-full', '2', '--dry-run']);
    expect(out.dryRun).toBe(true);
    expect(out.plan.keep.map((k) => k.id)).toEqual([F2.id, I2.id, F3.id]);
    expect(out.plan.expire.map((e) => e.id)).toEqual([I1.id, F1.id]);
    expect(out.plan.walKeepFrom).toEqual({ segment: F2.start.walFile, backup: F2.id });
    // Nothing reads as removed; wouldRemove names every backup and every WAL object that would go.
    expect(out.removed).toEqual({ backups: [], uncommitted: [], wal: { files: 0, bytes: 0 } });
    expect(out.wouldRemove!.backups).toEqual([I1.id, F1.id]);
    expect(out.wouldRemove!.uncommitted).toEqual([]);
    const doomed = walBefore.filter((n) => n.slice(0, 24) < F2.start.walFile);
    expect(doomed.length).toBeGreaterThan(1);
    expect(out.wouldRemove!.wal.objects.map((o) => o.name)).toEqual(doomed);
    expect(out.wouldRemove!.wal.files).toBe(doomed.length);
    expect(out.wouldRemove!.wal.bytes).toBe(out.wouldRemove!.wal.objects.reduce((n, o) => n + o.size, 0));
    expect(out.walKeptFrom).toBe(F2.start.walFile);
    const text = await run(['expire', '--retain-full', '2', '--dry-run']);
    expect(text.stdout).toContain(`WAL: would remove ${doomed.length} file(s)`);
    expect(await repoFiles()).toEqual(before);
    expect(await listIds()).toEqual([F1, I1, F2, I2, F3].map((b) => ({ id: b.id, kept: false })));
  });

  it('keep F1 + --retain-full 1: F1 and F3 kept, I1/F2/I2 expired, WAL below F1 removed; both stay restorable', async () => {
    const keep = await run(['keep', F1.id]);
    expect(keep.stdout).toContain(`backup ${F1.id} pinned`);
    expect(await listIds()).toEqual([F1, I1, F2, I2, F3].map((b) => ({ id: b.id, kept: b === F1 })));

    const before = await repoFiles();
    const walBefore = await walFiles();
    const out = await runJson<ExpireJson>(['expire', '--retain-full', '1']);
    expect(out.dryRun).toBe(false);
    expect(out.plan.keep).toEqual([
      { id: F1.id, reasons: ['pinned'] },
      { id: F3.id, reasons: ['newest backup', 'retain-full (1 of 1)'] },
    ]);
    // Dependents before parents: I2 before F2; I1 is not in F1's chain (F1 is its parent).
    expect(out.plan.expire.map((e) => e.id)).toEqual([I2.id, F2.id, I1.id]);
    expect(out.removed.backups).toEqual([I2.id, F2.id, I1.id]);
    expect(out.wouldRemove).toBeUndefined();
    expect(out.plan.walKeepFrom).toEqual({ segment: F1.start.walFile, backup: F1.id });

    // WAL: exactly the files below F1's start segment are gone.
    const walAfter = await walFiles();
    const walBelow = walBefore.filter((n) => n.slice(0, 24) < F1.start.walFile);
    expect(walBelow.length).toBeGreaterThan(0);
    expect(walAfter).toEqual(walBefore.filter((n) => n.slice(0, 24) >= F1.start.walFile));
    expect(out.removed.wal.files).toBe(walBelow.length);
    expect(walAfter).toContain(F1.start.walFile);
    expect(walAfter).toContain(F1.walRange.last);

    // Backups: the expired ones are gone entirely, the kept ones untouched.
    const after = await repoFiles();
    for (const b of [I1, F2, I2]) {
      expect(after).not.toContain(`${STANZA}/catalog/${b.id}.json`);
      expect(backupFiles(after, b.id)).toEqual([]);
    }
    for (const b of [F1, F3]) {
      expect(after).toContain(`${STANZA}/catalog/${b.id}.json`);
      expect(backupFiles(after, b.id)).toEqual(backupFiles(before, b.id));
    }
    expect(after).toContain(`${STANZA}/pin/${F1.id}`);
    expect(await listIds()).toEqual([
      { id: F1.id, kept: true },
      { id: F3.id, kept: false },
    ]);

    // F1 (pinned, its younger WAL intact) still restores to its consistency point.
    expect(await restoreAndRead(F1.id, ['--target-immediate', '--target-action', 'promote'], 'ret-f1')).toEqual(['m0']);
    // latest = F3, recovered to the end of the archive.
    expect(await restoreAndRead('latest', [], 'ret-latest')).toEqual(['m0', 'm1', 'm2', 'm3', 'm4', 'm5']);
  }, 240_000);

  it('keep --release, then --retain-window 1h keeps every backup of the last hour', async () => {
    const rel = await run(['keep', F1.id, '--release']);
    expect(rel.stdout).toContain(`backup ${F1.id} released`);
    expect(await listIds()).toEqual([
      { id: F1.id, kept: false },
      { id: F3.id, kept: false },
    ]);
    const before = await repoFiles();
    const out = await runJson<ExpireJson>(['expire', '--retain-window', '1h']);
    expect(out.plan.keep.map((k) => k.id)).toEqual([F1.id, F3.id]);
    expect(out.plan.keep[0]!.reasons.some((r) => r.startsWith('retain-window (stopped at or after'))).toBe(true);
    expect(out.plan.expire).toEqual([]);
    expect(out.removed).toEqual({ backups: [], uncommitted: [], wal: { files: 0, bytes: 0 } });
    expect(out.plan.warnings.some((w) => w.startsWith('retain-window: no backup stopped before'))).toBe(true);
    const after = await repoFiles();
    expect(before.filter((p) => !after.includes(p))).toEqual([]);
    expect(await listIds()).toEqual([
      { id: F1.id, kept: false },
      { id: F3.id, kept: false },
    ]);
  });

  it('refuses to run without a policy and removes nothing', async () => {
    const before = await repoFiles();
    const r = await run(['expire'], true);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/no retention policy/);
    expect(r.stdout).toBe('');
    expect(await repoFiles()).toEqual(before);
    const dry = await run(['expire', '--dry-run'], true);
    expect(dry.code, dry.stderr).toBe(2);
    expect(dry.stderr).toMatch(/no retention policy/);
    expect(await listIds()).toEqual([
      { id: F1.id, kept: false },
      { id: F3.id, kept: false },
    ]);
  });
});

// ---------------------------------------------------------------------------
// 2. delete
// ---------------------------------------------------------------------------

describe('delete', () => {
  it('refuses to break a chain or a pin unless --force', async () => {
    const start = (await listIds()).map((b) => b.id); // F1, F3 from the expire tests
    expect(start.length).toBe(2);
    await writeAndSwitch('d0');
    const F = await backup('full');
    await writeAndSwitch('d1');
    const I = await backup('incr');
    expect(I.chain).toEqual([F.id, I.id]);

    // F has a dependent: refused, the message names it, nothing removed.
    let before = await repoFiles();
    const refused = await run(['delete', F.id], true);
    expect(refused.code, refused.stderr).toBe(5);
    expect(refused.stderr).toContain(`refusing to delete backup ${F.id}`);
    expect(refused.stderr).toContain(`backups depend on it: ${I.id}`);
    expect(await repoFiles()).toEqual(before);

    // The incremental itself can go.
    const delI = await run(['delete', I.id]);
    expect(delI.stdout.trim()).toBe(`deleted ${I.id}`);
    expect((await listIds()).map((b) => b.id)).toEqual([...start, F.id]);
    expect(backupFiles(await repoFiles(), I.id)).toEqual([]);

    // --force on a chain F <- I2 <- I3 deletes the dependents first, then F.
    await writeAndSwitch('d2');
    const I2 = await backup('incr');
    await writeAndSwitch('d3');
    const I3 = await backup('incr');
    expect(I3.chain).toEqual([F.id, I2.id, I3.id]);
    const forced = await run(['delete', F.id, '--force']);
    expect(forced.stdout).toContain(`forced: backups depend on it: ${I2.id}, ${I3.id}`);
    expect(forced.stdout).toContain(`deleted ${I3.id}, ${I2.id}, ${F.id}`);
    expect((await listIds()).map((b) => b.id)).toEqual(start);
    const after = await repoFiles();
    for (const id of [F.id, I2.id, I3.id]) {
      expect(after).not.toContain(`${STANZA}/catalog/${id}.json`);
      expect(backupFiles(after, id)).toEqual([]);
    }

    // A pinned backup: refused without --force, deleted (pin included) with it.
    const pinned = start[0]!;
    await run(['keep', pinned]);
    before = await repoFiles();
    expect(before).toContain(`${STANZA}/pin/${pinned}`);
    const refusedPin = await run(['delete', pinned], true);
    expect(refusedPin.code, refusedPin.stderr).toBe(5);
    expect(refusedPin.stderr).toContain(`refusing to delete backup ${pinned}: it is pinned`);
    expect(await repoFiles()).toEqual(before);
    const forcedPin = await run(['delete', pinned, '--force']);
    expect(forcedPin.stdout).toContain('forced: it is pinned');
    expect(forcedPin.stdout).toContain(`deleted ${pinned}`);
    const afterPin = await repoFiles();
    expect(afterPin).not.toContain(`${STANZA}/pin/${pinned}`);
    expect(backupFiles(afterPin, pinned)).toEqual([]);
    expect((await listIds()).map((b) => b.id)).toEqual(start.slice(1));

    // Leave the stanza empty for the verify tests.
    await run(['delete', start[1]!]);
    expect(await listIds()).toEqual([]);
  }, 180_000);
});

// ---------------------------------------------------------------------------
// 3. verify
// ---------------------------------------------------------------------------

describe('verify', () => {
  let VF: BackupJson;
  let VI: BackupJson;
  let objs: Record<string, number>;

  beforeAll(async () => {
    await writeAndSwitch('v0');
    VF = await backup('full');
    await writeAndSwitch('v1');
    VI = await backup('incr');
    // WAL after the newest backup: verify follows it up to the newest archived segment.
    await writeAndSwitch('v2');
    await writeAndSwitch('v3');
    objs = { [VF.id]: (await dataObjects(VF.id)).length, [VI.id]: (await dataObjects(VI.id)).length };
    expect(objs[VF.id]).toBeGreaterThan(0);
    expect(objs[VI.id]).toBeGreaterThan(0);
  }, 120_000);

  const total = () => objs[VF.id]! + objs[VI.id]!;

  it('reads every object and WAL segment once, then only what is new unless --full', async () => {
    const first = await runJson<VerifyJson>(['verify']);
    expect(first.ok).toBe(true);
    expect(first.backups.map((b) => [b.id, b.ok, b.problems, b.objectsRead, b.objectsSkipped])).toEqual([
      [VF.id, true, [], objs[VF.id], 0],
      [VI.id, true, [], objs[VI.id], 0],
    ]);
    expect(first.objectsRead).toBe(total());
    expect(first.objectsRead).toBeGreaterThan(0);
    expect(first.objectsSkipped).toBe(0);
    expect(first.walRead).toBeGreaterThan(0);

    const second = await runJson<VerifyJson>(['verify']);
    expect(second.ok).toBe(true);
    expect(second.objectsRead).toBe(0);
    expect(second.objectsSkipped).toBe(total());
    expect(second.bytesRead).toBe(0);
    expect(second.walRead).toBe(0);
    expect(second.walSkipped).toBeGreaterThan(0);
    expect(second.backups.map((b) => [b.id, b.objectsRead, b.objectsSkipped])).toEqual([
      [VF.id, 0, objs[VF.id]],
      [VI.id, 0, objs[VI.id]],
    ]);

    const full = await runJson<VerifyJson>(['verify', '--full']);
    expect(full.ok).toBe(true);
    expect(full.objectsRead).toBe(total());
    expect(full.objectsSkipped).toBe(0);
    // Segments shared by two backups' ranges are read once per run unless --full.
    expect(full.walRead).toBe(first.walRead + first.walSkipped);
    expect(full.walSkipped).toBe(0);
  }, 120_000);

  it('verify --full exits 7 naming a data object with one flipped byte', async () => {
    const dir = join(repo, STANZA, 'backup', VF.id, 'data');
    let largest = '';
    let largestSize = -1;
    for (const n of await dataObjects(VF.id)) {
      const s = (await stat(join(dir, n))).size;
      if (s > largestSize) [largest, largestSize] = [n, s];
    }
    const file = join(dir, largest);
    const st = await stat(file);
    const fh = await open(file, 'r+');
    try {
      const pos = Math.floor(st.size / 2);
      const buf = Buffer.alloc(1);
      await fh.read(buf, 0, 1, pos);
      buf[0] = buf[0]! ^ 0xff;
      await fh.write(buf, 0, 1, pos);
    } finally {
      await fh.close();
    }
    const st2 = await stat(file);
    expect(st2.mode & 0o777).toBe(0o600);
    expect([st2.uid, st2.size]).toEqual([st.uid, st.size]);

    const r = await run(['verify', '--full', '--json'], true);
    expect(r.code, r.stderr).toBe(7);
    const out = JSON.parse(r.stdout) as VerifyJson;
    expect(out.ok).toBe(false);
    const key = `${STANZA}/backup/${VF.id}/data/${largest}`;
    const vf = out.backups.find((b) => b.id === VF.id)!;
    const vi = out.backups.find((b) => b.id === VI.id)!;
    expect(vf.ok).toBe(false);
    expect(vf.problems.length).toBe(1);
    // The problem must say which object is damaged (soft: the other checks still run).
    expect.soft(vf.problems[0]).toContain(key);
    expect(vi.ok).toBe(true);
    expect(vi.problems).toEqual([]);

    const text = await run(['verify', '--full'], true);
    expect(text.code).toBe(7);
    expect.soft(text.stdout).toContain(key);
    expect(text.stdout).toContain('verification FAILED');
  }, 120_000);

  it("reports 'WAL missing' for a segment the newest backup needs", async () => {
    const segs = (await walFiles()).filter((n) => /^[0-9A-F]{24}$/.test(n));
    const newestArchived = segs[segs.length - 1]!;
    const between = segs.filter((n) => n > VI.walRange.last && n < newestArchived);
    expect(between.length).toBeGreaterThan(0);
    const victim = between[0]!;
    await rm(join(repo, STANZA, 'wal', victim.slice(0, 8), victim.slice(0, 16), victim));

    const r = await run(['verify', '--json'], true);
    expect(r.code, r.stderr).toBe(7);
    const out = JSON.parse(r.stdout) as VerifyJson;
    expect(out.ok).toBe(false);
    const vi = out.backups.find((b) => b.id === VI.id)!;
    expect(vi.ok).toBe(false);
    expect(vi.problems).toEqual([`WAL missing: 1 segment(s), first ${victim}`]);
    // VF's WAL (start..stop) is complete; its only problem is still the damaged object.
    const vf = out.backups.find((b) => b.id === VF.id)!;
    expect(vf.problems.filter((p) => p.startsWith('WAL missing'))).toEqual([]);
  }, 120_000);
});
