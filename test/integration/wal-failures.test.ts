/**
 * wal-push / wal-fetch / wal-verify failure paths against real PostgreSQL 15 WAL: idempotent
 * re-push, archive mismatch, history files never overwritten, wrong cluster, hostile names,
 * missing files, damaged objects, unreadable storage, kill -9 during an upload, gaps, and the
 * stored objects decoded by the stock lz4/zstd/gzip CLIs.
 *
 * Segments come from three throwaway clusters created once: A (started, three consecutive
 * segments copied out after pg_switch_wal), B (a second initdb: another system identifier) and
 * C (initdb --wal-segsize=512: a segment whose upload takes long enough to be killed).
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { chmod, copyFile, lstat, mkdir, open, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  chownToRunAs,
  destroyAllClusters,
  lookupUser,
  makeSharedTempDir,
  PGARK_BIN,
  PgCluster,
  pgRunAsUser,
  type RunResult,
} from '../helpers/pg-cluster.js';
import { pgark } from '../helpers/pgark-run.js';
import { createRepo } from '../helpers/repo.js';

// ---------------------------------------------------------------------------
// Shared fixtures
// ---------------------------------------------------------------------------

let work: string;
/** Three consecutive segment names of cluster A, and their copies in `<work>/a/pg_wal`. */
let segs: string[];
let aWal: string;
let sysA: string;
/** Cluster B's first segment (another system identifier). */
let bSegPath: string;
let sysB: string;
/** Cluster C's first segment: 512 MiB. */
let bigSegPath: string;
const BIG_NAME = '000000010000000000000001';

const segPath = (name: string) => join(aWal, name);
/** Where an archived WAL file lives in a local repository (docs/REPOSITORY.md, "Keys"). */
function objectPath(repo: string, stanza: string, name: string): string {
  if (name.endsWith('.history')) return join(repo, stanza, 'wal', name.slice(0, 8), name);
  return join(repo, stanza, 'wal', name.slice(0, 8), name.slice(0, 16), name);
}

async function systemIdentifier(c: PgCluster): Promise<string> {
  const r = await c.runServerTool('pg_controldata', ['-D', c.dataDir], { env: { LC_ALL: 'C' } });
  const m = /Database system identifier:\s+(\d+)/.exec(r.stdout);
  if (!m?.[1]) throw new Error(`no system identifier in pg_controldata output:\n${r.stdout}`);
  return m[1];
}

/** A fresh `<work>/<sub>/pg_wal` holding the given files (copied from a path, or bytes), owned by postgres. */
async function walDir(sub: string, files: Record<string, string | Buffer>): Promise<string> {
  const dir = join(work, sub, 'pg_wal');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  for (const [name, src] of Object.entries(files)) {
    if (Buffer.isBuffer(src)) await writeFile(join(dir, name), src, { mode: 0o600 });
    else await copyFile(src, join(dir, name));
  }
  await chownToRunAs(join(work, sub));
  return dir;
}

/** An empty directory owned by postgres (a fetch destination's parent). */
async function userDir(sub: string): Promise<string> {
  const dir = join(work, sub);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chownToRunAs(join(work, sub.split('/')[0]!));
  return dir;
}

/** Every path under `root` with size, mtime and inode: compared before/after to prove nothing was written. */
async function snapshot(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (dir: string): Promise<void> => {
    let entries: string[];
    try {
      entries = await readdir(dir);
    } catch {
      return;
    }
    for (const e of entries.sort()) {
      const p = join(dir, e);
      const st = await lstat(p);
      out[p] = st.isDirectory() ? `dir:${st.mtimeMs}` : `${st.size}:${st.mtimeMs}:${st.ino}`;
      if (st.isDirectory()) await walk(p);
    }
  };
  await walk(root);
  return out;
}

/** sha256 and size of a file, streamed (the 512 MiB segment is not read into memory). */
async function sha256Of(p: string): Promise<{ sha256: string; size: number }> {
  const h = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(p, { highWaterMark: 4 * 1024 * 1024 })) {
    h.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { sha256: h.digest('hex'), size };
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(() => true, () => false);
}

async function flipByte(path: string, offset: number): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, offset);
    b[0] = b[0]! ^ 0xff;
    await fh.write(b, 0, 1, offset);
  } finally {
    await fh.close();
  }
}

interface AuditEventJson {
  op: string;
  name: string;
  sha256?: string;
  detail?: string;
}

async function walLog(repo: string, stanza = 'main'): Promise<AuditEventJson[]> {
  const r = await pgark(['wal-log', '--json', '--since', '1h', '--repo', repo, '--stanza', stanza]);
  return (JSON.parse(r.stdout) as { events: AuditEventJson[] }).events;
}

function describeRun(r: RunResult): string {
  return `exit ${r.code} signal ${r.signal}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;
}

const push = (path: string, repo: string, extra: string[] = []) => pgark(['wal-push', path, '--repo', repo, ...extra], { allowFail: true });
const fetch = (name: string, dest: string, repo: string, extra: string[] = [], env: Record<string, string> = {}) =>
  pgark(['wal-fetch', name, dest, '--repo', repo, ...extra], { allowFail: true, env });

afterAll(async () => {
  await destroyAllClusters();
});

beforeAll(async () => {
  work = await makeSharedTempDir('pgark-fail-');
  const [a, b, c] = await Promise.all([
    PgCluster.create({ name: 'fail-a' }),
    PgCluster.create({ name: 'fail-b' }),
    PgCluster.create({ name: 'fail-big', walSegmentSizeMB: 512 }),
  ]);
  await a.start();
  await a.psql('CREATE TABLE t (x int, y text)');
  segs = [];
  for (let i = 0; i < 3; i++) {
    await a.psql(`INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 2000) g`);
    segs.push(await a.switchWal());
  }
  // Completed segments are never modified again: copy them out while the server runs (a
  // shutdown checkpoint could recycle them).
  aWal = await walDir('a', Object.fromEntries(segs.map((n) => [n, join(a.dataDir, 'pg_wal', n)])));
  const segnos = segs.map((n) => Number.parseInt(n.slice(16), 16));
  expect(segs.every((n) => n.startsWith('0000000100000000')), segs.join(' ')).toBe(true);
  expect(segnos).toEqual([segnos[0], segnos[0]! + 1, segnos[0]! + 2]);
  await a.stop();
  // B and C need no server: initdb leaves their first segment in pg_wal.
  bSegPath = join(await walDir('b', { [BIG_NAME]: join(b.dataDir, 'pg_wal', BIG_NAME) }), BIG_NAME);
  bigSegPath = join(await walDir('big', { [BIG_NAME]: join(c.dataDir, 'pg_wal', BIG_NAME) }), BIG_NAME);
  [sysA, sysB] = await Promise.all([systemIdentifier(a), systemIdentifier(b)]);
  expect(sysA).not.toBe(sysB);
  expect((await stat(bigSegPath)).size).toBe(512 * 1024 * 1024);
  await Promise.all([b.destroy(), c.destroy()]);
}, 120_000);

// ---------------------------------------------------------------------------
// Cases 1-6 share repository R1 (stanza main), in order.
// ---------------------------------------------------------------------------

describe('wal-push: never overwrite', () => {
  let r1: string;
  beforeAll(async () => {
    r1 = await createRepo(await makeSharedTempDir('pgark-r1-'));
  });

  it('1. re-pushing an archived segment succeeds without touching the object (push-exists)', async () => {
    const s1 = segs[0]!;
    const first = await push(segPath(s1), r1);
    expect(first.code, describeRun(first)).toBe(0);
    const obj = objectPath(r1, 'main', s1);
    const before = await stat(obj);
    const again = await push(segPath(s1), r1);
    expect(again.code, describeRun(again)).toBe(0);
    const after = await stat(obj);
    expect(after.ino).toBe(before.ino);
    expect(after.mtimeMs).toBe(before.mtimeMs);
    expect(after.size).toBe(before.size);
    const events = await walLog(r1);
    expect(events.filter((e) => e.name === s1).map((e) => e.op)).toEqual(['push', 'push-exists']);
  });

  it('2. same name, different content: exit 3 "archive mismatch", archived copy unchanged', async () => {
    const s1 = segs[0]!;
    const original = await readFile(segPath(s1));
    const changed = Buffer.from(original);
    changed[4096 + 100] = changed[4096 + 100]! ^ 0x5a; // after the 40-byte long page header
    const dir = await walDir('mismatch', { [s1]: changed });
    const obj = objectPath(r1, 'main', s1);
    const before = await stat(obj);
    const r = await push(join(dir, s1), r1);
    expect(r.code, describeRun(r)).toBe(3);
    expect(r.stderr).toContain('archive mismatch');
    const after = await stat(obj);
    expect([after.ino, after.mtimeMs, after.size]).toEqual([before.ino, before.mtimeMs, before.size]);
    const dest = join(await userDir('fetch-mismatch'), s1);
    const f = await fetch(s1, dest, r1, ['--prefetch', '0']);
    expect(f.code, describeRun(f)).toBe(0);
    expect((await readFile(dest)).equals(original)).toBe(true);
    const events = await walLog(r1);
    expect(events.some((e) => e.op === 'mismatch' && e.name === s1)).toBe(true);
  });

  it('3. a .history file is never overwritten', async () => {
    const name = '00000002.history';
    // wal-push identifies the cluster of a history file from a segment beside it.
    const d1 = await walDir('hist1', { [segs[0]!]: segPath(segs[0]!), [name]: Buffer.from('1\t0/3000000\tno recovery target specified\n') });
    const d2 = await walDir('hist2', { [segs[0]!]: segPath(segs[0]!), [name]: Buffer.from('1\t0/4000000\tbefore 2000-01-01 00:00:00+00\n') });
    const ok = await push(join(d1, name), r1);
    expect(ok.code, describeRun(ok)).toBe(0);
    const obj = objectPath(r1, 'main', name);
    const before = await stat(obj);
    const same = await push(join(d1, name), r1);
    expect(same.code, describeRun(same)).toBe(0);
    const r = await push(join(d2, name), r1);
    expect(r.code, describeRun(r)).toBe(3);
    expect(r.stderr).toContain('archive mismatch');
    const after = await stat(obj);
    expect([after.ino, after.mtimeMs]).toEqual([before.ino, before.mtimeMs]);
    const dest = join(await userDir('fetch-hist'), name);
    const f = await fetch(name, dest, r1, ['--prefetch', '0']);
    expect(f.code, describeRun(f)).toBe(0);
    expect(await readFile(dest, 'utf8')).toBe('1\t0/3000000\tno recovery target specified\n');
  });

  it("4. another cluster's segment: exit 4 naming both system identifiers", async () => {
    const before = await snapshot(join(r1, 'main', 'wal'));
    const r = await push(bSegPath, r1);
    expect(r.code, describeRun(r)).toBe(4);
    expect(r.stderr).toContain(sysA);
    expect(r.stderr).toContain(sysB);
    // B's segment has the same name as A's archived first segment: that one stays as it was.
    expect(await snapshot(join(r1, 'main', 'wal'))).toEqual(before);
  });

  it('5. wal-fetch refuses bogus names (exit 205) and writes nothing anywhere', async () => {
    const destDir = await userDir('fetch-bogus/pg_wal');
    const dest = join(destDir, 'RECOVERYXLOG');
    const bogus = [
      '../x',
      `foo/${segs[0]}`,
      `${segs[0]}/../../etc`,
      '0000000a000000000000000b', // lowercase hex of a valid name
      '0000000100000000000000ab',
      '00000001000000000000000',
      '',
      'pg_control',
    ];
    const before = { work: await snapshot(work), repo: await snapshot(r1) };
    const results = await Promise.all(bogus.map((name) => fetch(name, dest, r1)));
    results.forEach((r, i) => {
      expect(r.code, `wal-fetch '${bogus[i]}': ${describeRun(r)}`).toBe(205);
      expect(r.stderr, `wal-fetch '${bogus[i]}'`).toMatch(/invalid WAL file name/);
    });
    expect(await exists(dest)).toBe(false);
    expect(await snapshot(work)).toEqual(before.work);
    expect(await snapshot(r1)).toEqual(before.repo);
  });

  it('5. wal-push refuses a bogus name, garbage content and a truncated segment (exit 5)', async () => {
    const s2 = segs[1]!;
    const original = await readFile(segPath(s2));
    const badName = await walDir('push-badname', { notawalfile: original });
    const garbage = await walDir('push-garbage', { [s2]: Buffer.alloc(original.length, 0x5c) });
    const truncated = await walDir('push-truncated', { [s2]: original.subarray(0, original.length / 2) });
    const repoBefore = await snapshot(r1);
    const results = await Promise.all([
      push(join(badName, 'notawalfile'), r1),
      push(join(garbage, s2), r1),
      push(join(truncated, s2), r1),
    ]);
    for (const r of results) expect(r.code, describeRun(r)).toBe(5);
    expect(results[0]!.stderr).toMatch(/invalid WAL file name 'notawalfile'/);
    expect(results[1]!.stderr).toMatch(/not a WAL segment/);
    expect(results[2]!.stderr).toMatch(/bytes but its header says wal_segment_size/);
    expect(await exists(objectPath(r1, 'main', s2))).toBe(false);
    // Nothing archived; at most audit records were added.
    const added = Object.keys(await snapshot(r1)).filter((p) => !(p in repoBefore));
    expect(added.filter((p) => !p.includes('/log/wal/'))).toEqual([]);
  });

  it('6. a valid name that is not archived: exit 1 and no destination (segment and history)', async () => {
    const destDir = await userDir('fetch-missing/pg_wal');
    for (const name of [segs[2]!, '00000003.history']) {
      const dest = join(destDir, 'RECOVERYXLOG');
      const r = await fetch(name, dest, r1);
      expect(r.code, `wal-fetch ${name}: ${describeRun(r)}`).toBe(1);
      expect(await exists(dest)).toBe(false);
    }
    expect((await readdir(destDir)).filter((n) => n !== '.pgark')).toEqual([]);
    // The destination was writable all along: an archived file lands there.
    const ok = await fetch(segs[0]!, join(destDir, 'RECOVERYXLOG'), r1, ['--prefetch', '0']);
    expect(ok.code, describeRun(ok)).toBe(0);
  });
});

// ---------------------------------------------------------------------------

describe('damaged objects', () => {
  it('7. a flipped byte in the payload or the trailer: wal-fetch 211, wal-verify --read 7', async () => {
    const repo = await createRepo(await makeSharedTempDir('pgark-r2-'));
    const [s1, s2, s3] = [segs[0]!, segs[1]!, segs[2]!];
    for (const s of [s1, s2, s3]) {
      const r = await push(segPath(s), repo);
      expect(r.code, describeRun(r)).toBe(0);
    }
    const clean = await pgark(['wal-verify', '--read', '--json', '--repo', repo], { allowFail: true });
    expect(clean.code, describeRun(clean)).toBe(0);

    const destDir = await userDir('fetch-damaged/pg_wal');
    const dest = join(destDir, 'RECOVERYXLOG');

    // Payload: the middle of s2's object.
    const o2 = objectPath(repo, 'main', s2);
    await flipByte(o2, Math.floor((await stat(o2)).size / 2));
    const f2 = await fetch(s2, dest, repo);
    expect(f2.code, describeRun(f2)).toBe(211);
    expect(f2.stderr).toContain(`main/wal/00000001/0000000100000000/${s2}`);
    expect(f2.stderr).toMatch(/checksum|decode|damaged/i);
    expect(await exists(dest)).toBe(false);

    // Trailer: inside the last record (its sha256 field) of s1's object.
    const o1 = objectPath(repo, 'main', s1);
    await flipByte(o1, (await stat(o1)).size - 20);
    const f1 = await fetch(s1, dest, repo);
    expect(f1.code, describeRun(f1)).toBe(211);
    expect(f1.stderr).toContain(`main/wal/00000001/0000000100000000/${s1}`);
    expect(f1.stderr).toMatch(/checksum|trailer/i);
    expect(await exists(dest)).toBe(false);
    // No temp file left beside the destination either.
    expect((await readdir(destDir)).filter((n) => n !== '.pgark')).toEqual([]);
    // The destination was writable all along: an intact object lands there.
    const f3 = await fetch(s3, dest, repo, ['--prefetch', '0']);
    expect(f3.code, describeRun(f3)).toBe(0);
    expect((await readFile(dest)).equals(await readFile(segPath(s3)))).toBe(true);

    const v = await pgark(['wal-verify', '--read', '--json', '--repo', repo], { allowFail: true });
    expect(v.code, describeRun(v)).toBe(7);
    const report = JSON.parse(v.stdout) as { damaged: Array<{ name: string; error: string }>; ok: boolean; gapCount: number };
    expect(report.ok).toBe(false);
    expect(report.gapCount).toBe(0);
    expect(report.damaged.map((d) => d.name)).toEqual([s1, s2].sort());
  });
});

// ---------------------------------------------------------------------------

describe('unreachable storage', () => {
  const env = { PGARK_RETRIES: '2', PGARK_RETRY_BUDGET: '5' };

  async function expectFatal(repo: string, name: string, destDir: string): Promise<void> {
    const dest = join(destDir, 'RECOVERYXLOG');
    const t0 = Date.now();
    const r = await fetch(name, dest, repo, [], env);
    const ms = Date.now() - t0;
    // Exit 1 would make PostgreSQL treat an unreadable archive as "end of WAL" and promote.
    expect(r.code, `wal-fetch ${name} from ${repo}: ${describeRun(r)}`).toBeGreaterThan(125);
    expect(ms).toBeLessThan(30_000);
    expect(await exists(dest)).toBe(false);
  }

  it('8a. repository below a regular file: wal-fetch fails above 125, not 1', async () => {
    const file = join(work, 'not-a-dir');
    await writeFile(file, 'x');
    await chownToRunAs(file);
    const destDir = await userDir('fetch-enotdir/pg_wal');
    await expectFatal(join(file, 'repo'), segs[0]!, destDir);
    await expectFatal(join(file, 'repo'), '00000002.history', destDir);
  });

  it('8c. an empty mount point (no stanza) is not an archive where everything is missing', async () => {
    const mountPoint = await userDir('unmounted');
    const destDir = await userDir('fetch-unmounted/pg_wal');
    await expectFatal(mountPoint, segs[0]!, destDir);
    await expect(readdir(mountPoint)).resolves.toEqual([]);
  });

  it('8b. repository in a directory postgres cannot enter: wal-fetch fails above 125, not 1', async () => {
    const parent = await userDir('locked');
    const repo = join(parent, 'repo');
    await mkdir(repo, { mode: 0o700 });
    await chownToRunAs(repo);
    await createRepo(repo);
    const p = await push(segPath(segs[0]!), repo);
    expect(p.code, describeRun(p)).toBe(0);
    await chmod(parent, 0o000);
    try {
      const destDir = await userDir('fetch-eacces/pg_wal');
      await expectFatal(repo, segs[0]!, destDir); // archived, unreadable
      await expectFatal(repo, segs[1]!, destDir); // not archived, but nobody can tell
    } finally {
      await chmod(parent, 0o700);
    }
  });
});

// ---------------------------------------------------------------------------

describe('kill -9 during an upload', () => {
  it('9. leaves no visible object; a retry succeeds and removes the dead temp file', async () => {
    const repo = await createRepo(await makeSharedTempDir('pgark-r5-'));
    const objDir = join(repo, 'big', 'wal', '00000001', '0000000100000000');
    const obj = join(objDir, BIG_NAME);
    const args = [PGARK_BIN, 'wal-push', bigSegPath, '--repo', repo, '--stanza', 'big'];
    const user = pgRunAsUser();
    const u = user ? lookupUser(user) : null;
    const child = u
      ? spawn('setpriv', [`--reuid=${u.uid}`, `--regid=${u.gid}`, '--init-groups', '--', process.execPath, ...args], {
          cwd: '/',
          env: { PATH: '/usr/bin:/bin', HOME: u.home, LANG: 'C.UTF-8' },
          stdio: ['ignore', 'ignore', 'pipe'],
        })
      : spawn(process.execPath, args, { cwd: '/', stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.on('exit', (code, signal) => resolve({ code, signal })),
    );
    let temp: string | undefined;
    let finished: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    void exited.then((e) => (finished = e));
    const deadline = Date.now() + 30_000;
    while (!temp && !finished && Date.now() < deadline) {
      const names = await readdir(objDir).catch(() => [] as string[]);
      temp = names.find((n) => n.startsWith(`${BIG_NAME}.pgark-tmp-`));
      if (!temp) await new Promise((r) => setTimeout(r, 2));
    }
    expect(finished, `wal-push finished before its upload could be killed: ${stderr}`).toBeUndefined();
    expect(temp, 'no temp file appeared within 30 s').toBeDefined();
    child.kill('SIGKILL');
    const end = await exited;
    expect(end.signal).toBe('SIGKILL');
    expect(temp).toMatch(new RegExp(`\\.pgark-tmp-${child.pid}-`));

    expect(await exists(obj), 'an object became visible although its upload was killed').toBe(false);
    const left = (await readdir(objDir)).filter((n) => n.startsWith(BIG_NAME));
    expect(left.every((n) => n.includes('.pgark-tmp-'))).toBe(true);
    const verify = await pgark(['wal-verify', '--json', '--repo', repo, '--stanza', 'big'], { allowFail: true });
    expect(verify.code, describeRun(verify)).toBe(0);
    expect((JSON.parse(verify.stdout) as { totalSegments: number }).totalSegments).toBe(0);
    const info = await pgark(['info', '--json', '--repo', repo, '--stanza', 'big']);
    expect((JSON.parse(info.stdout) as { wal: { segments: number } }).wal.segments).toBe(0);

    const retry = await push(bigSegPath, repo, ['--stanza', 'big']);
    expect(retry.code, describeRun(retry)).toBe(0);
    expect(await exists(obj)).toBe(true);
    expect(await readdir(objDir)).toEqual([BIG_NAME]); // the dead process's temp is gone
    const dest = join(await userDir('fetch-big'), BIG_NAME);
    const f = await fetch(BIG_NAME, dest, repo, ['--stanza', 'big', '--prefetch', '0']);
    expect(f.code, describeRun(f)).toBe(0);
    const [a, b] = await Promise.all([sha256Of(dest), sha256Of(bigSegPath)]);
    expect(a).toEqual(b);
    await rm(dest);
  });
});

// ---------------------------------------------------------------------------

describe('gaps', () => {
  it('10. a deleted middle segment is reported as one gap (exit 7)', async () => {
    const repo = await createRepo(await makeSharedTempDir('pgark-r3-'));
    for (const s of segs) {
      const r = await push(segPath(s), repo);
      expect(r.code, describeRun(r)).toBe(0);
    }
    const ok = await pgark(['wal-verify', '--json', '--repo', repo], { allowFail: true });
    expect(ok.code, describeRun(ok)).toBe(0);
    await rm(objectPath(repo, 'main', segs[1]!));
    const v = await pgark(['wal-verify', '--json', '--repo', repo], { allowFail: true });
    expect(v.code, describeRun(v)).toBe(7);
    const report = JSON.parse(v.stdout) as { gapCount: number; ok: boolean; timelines: Array<{ timeline: number; gaps: Array<{ first: string; last: string; count: number }> }> };
    expect(report.ok).toBe(false);
    expect(report.gapCount).toBe(1);
    expect(report.timelines.map((t) => t.timeline)).toEqual([1]);
    expect(report.timelines[0]!.gaps).toEqual([{ first: segs[1], last: segs[1], count: 1 }]);
    expect(segs[1]).toBe('000000010000000000000002');
  });
});

// ---------------------------------------------------------------------------

describe('stored objects and the stock CLIs', () => {
  it('11. lz4 -d, zstd -d, gzip -d and tail|head decode the stored objects', async () => {
    const missing = ['lz4', 'zstd', 'gzip', 'tail', 'head'].filter((t) => spawnSync('sh', ['-c', `command -v ${t}`]).status !== 0);
    if (missing.length) throw new Error(`missing ${missing.join(', ')}: apt-get install lz4 zstd gzip`);
    const repo = await createRepo(await makeSharedTempDir('pgark-r6-'));
    const s1 = segs[0]!;
    const raw = await readFile(segPath(s1));
    const decoders: Record<string, string> = {
      lz4: 'lz4 -d -c',
      zstd: 'zstd -d -c',
      gzip: 'gzip -d -c',
      none: 'tail -c +17 | head -c -64',
    };
    const pushes = await Promise.all(Object.keys(decoders).map((codec) => push(segPath(s1), repo, ['--stanza', codec, '--codec', codec])));
    for (const r of pushes) expect(r.code, describeRun(r)).toBe(0);
    for (const [codec, cmd] of Object.entries(decoders)) {
      const obj = objectPath(repo, codec, s1);
      const stored = await readFile(obj);
      if (codec !== 'none') expect(stored.length, `${codec} did not compress`).toBeLessThan(raw.length);
      // The object on stdin, the decoded WAL on stdout.
      const fh = await open(obj, 'r');
      let r: ReturnType<typeof spawnSync>;
      try {
        r = spawnSync('sh', ['-c', cmd], { stdio: [fh.fd, 'pipe', 'pipe'], maxBuffer: 64 * 1024 * 1024, timeout: 30_000 });
      } finally {
        await fh.close();
      }
      expect(r.status, `${cmd}: ${r.stderr?.toString()}`).toBe(0);
      const out = r.stdout as Buffer;
      expect(out.length, codec).toBe(raw.length);
      expect(out.equals(raw), `${codec}: decoded bytes differ`).toBe(true);
    }
  });
});
