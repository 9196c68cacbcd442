/**
 * pgark backup and pgark restore end to end against real PostgreSQL 15 clusters (data checksums on):
 *
 *  1. a full backup taken under pgbench load, restored to a named restore point: same content;
 *  2. point-in-time recovery to an xid (inclusive and exclusive), a time and an LSN, with
 *     `restore auto` choosing the backup by itself;
 *  3. an incremental chain of three: catalog (types, parents, chains, stored sizes) and restores
 *     of the newest and of the middle incremental to their consistency point;
 *  4. `restore --delta` over a modified restored directory.
 *
 * Every source cluster archives with archive_command = pgark wal-push into its own repository.
 * Restored copies are started on a fresh port with PgCluster.fromDataDir().
 */
import { createHash } from 'node:crypto';
import { appendFile, mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { archiveCommand, chownToRunAs, destroyAllClusters, makeSharedTempDir, PgCluster, connEnv } from '../helpers/pg-cluster.js';
import { pgark } from '../helpers/pgark-run.js';
import { createRepo } from '../helpers/repo.js';

const STANZA = 'main';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

afterAll(async () => {
  await destroyAllClusters();
}, 120_000);

// ---------------------------------------------------------------------------
// Local helpers
// ---------------------------------------------------------------------------

interface BackupJson {
  id: string;
  type: 'full' | 'incr';
  parent?: string;
  chain: string[];
  start: { time: string; lsn: string; timeline: number };
  stop: { time: string; lsn: string; timeline: number };
  dataChecksums: boolean;
  checksumFailures: number;
  size: { original: number; stored: number; files: number; objects: number; changedBlocks?: number; reusedBlocks?: number };
  kept?: boolean;
}

interface RestoreJson {
  backup: string;
  pgdata: string;
  filesWritten: number;
  filesUnchanged: number;
  filesRemoved: number;
  bytesWritten: number;
  signal: string;
  settings: Record<string, string>;
  notes: string[];
}

interface ManifestFile {
  path: string;
  size: number;
  sha256: string;
  object?: { backup: string; n: number; offset: number };
  delta?: { n: number; offset: number; blocks: Array<[number, number]> };
}

/** A source cluster archiving into its own repository. */
async function sourceCluster(name: string, repo: string, conf: Record<string, string> = {}): Promise<PgCluster> {
  const c = await PgCluster.create({
    name,
    dataChecksums: true,
    conf: {
      archive_mode: 'on',
      archive_command: archiveCommand({ repo, stanza: STANZA }),
      max_wal_size: '1GB',
      checkpoint_timeout: '30min',
      ...conf,
    },
  });
  await c.start();
  return c;
}

/** libpq environment for pgark backup: the cluster's socket directory. */
async function pgarkJsonOut<T>(args: string[], env: Record<string, string> = {}, timeoutMs = 180_000): Promise<T> {
  const r = await pgark([...args, '--json'], { env, timeoutMs, allowFail: true });
  if (r.code !== 0) throw new Error(`pgark ${args.join(' ')} exited ${r.code}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr.slice(-6000)}`);
  try {
    return JSON.parse(r.stdout) as T;
  } catch (e) {
    throw new Error(`pgark ${args.join(' ')}: stdout is not JSON (${(e as Error).message}):\n${r.stdout}\n--- stderr ---\n${r.stderr.slice(-4000)}`);
  }
}

async function backup(src: PgCluster, repo: string, extra: string[] = []): Promise<BackupJson> {
  return pgarkJsonOut<BackupJson>(
    ['backup', '--repo', repo, '--stanza', STANZA, '--pgdata', src.dataDir, '--jobs', '2', '--no-progress', ...extra],
    connEnv(src),
  );
}

// --jobs 3: worker threads restore too (a restore this small at --jobs 1 or 2 runs on the main thread alone: restore.ts lanesHere).
async function restore(repo: string, ref: string, pgdata: string, extra: string[], env: Record<string, string> = {}): Promise<RestoreJson> {
  return pgarkJsonOut<RestoreJson>(['restore', ref, '--repo', repo, '--stanza', STANZA, '--pgdata', pgdata, '--jobs', '3', '--no-progress', ...extra], env);
}

/**
 * Environment that makes every pgark process started with it write the shared objects it has
 * mapped (/proc/self/maps at exit, worker threads' native modules included: a loaded addon
 * stays mapped) into `dir`; mappedFiles() reads them back.
 */
async function mapsRecorder(dir: string): Promise<Record<string, string>> {
  await mkdir(join(dir, 'maps'), { recursive: true });
  await chownToRunAs(join(dir, 'maps'));
  const hook = join(dir, 'maps-hook.mjs');
  await writeFile(
    hook,
    `import { readFileSync, writeFileSync } from 'node:fs';
process.on('exit', () => writeFileSync(${JSON.stringify(join(dir, 'maps'))} + '/' + process.pid, readFileSync('/proc/self/maps', 'utf8')));
`,
    { mode: 0o644 },
  );
  return { NODE_OPTIONS: `--import ${hook}` };
}

async function mappedFiles(dir: string): Promise<string[]> {
  const files = new Set<string>();
  for (const f of await readdir(join(dir, 'maps'))) {
    for (const line of (await readFile(join(dir, 'maps', f), 'utf8')).split('\n')) {
      const path = line.split(/\s+/)[5];
      if (path?.startsWith('/')) files.add(path);
    }
  }
  return [...files];
}

async function listBackups(repo: string): Promise<BackupJson[]> {
  return (await pgarkJsonOut<{ backups: BackupJson[] }>(['list', '--repo', repo, '--stanza', STANZA])).backups;
}

async function showManifest(repo: string, id: string): Promise<{ files: ManifestFile[]; dirs: Array<{ path: string }> }> {
  const s = await pgarkJsonOut<{ id: string; files: ManifestFile[]; dirs: Array<{ path: string }> }>(['show', id, '--files', '--repo', repo, '--stanza', STANZA]);
  expect(s.id).toBe(id);
  return s;
}

async function showFiles(repo: string, id: string): Promise<ManifestFile[]> {
  return (await showManifest(repo, id)).files;
}

/** Entries of `root` that the manifest does not hold (a directory not held is listed, not descended). */
async function extrasOf(root: string, files: ReadonlySet<string>, dirs: ReadonlySet<string>, rel = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(join(root, rel), { withFileTypes: true })) {
    const p = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) {
      if (dirs.has(p)) out.push(...(await extrasOf(root, files, dirs, p)));
      else out.push(`${p}/`);
    } else if (!files.has(p)) out.push(p);
  }
  return out;
}

/** Start a restored data directory on a fresh port. */
async function startRestored(dir: string, name: string): Promise<PgCluster> {
  const c = await PgCluster.fromDataDir(dir, { name });
  await c.start({ timeoutSec: 120 });
  return c;
}

/** Wait until recovery ended and the copy promoted. */
async function waitPromoted(c: PgCluster, timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let inRecovery: string;
    try {
      inRecovery = await c.psql('SELECT pg_is_in_recovery()');
    } catch (e) {
      throw new Error(`restored cluster not reachable: ${(e as Error).message}\n--- server log ---\n${await c.readLog(8000)}`);
    }
    if (inRecovery === 'f') return;
    if (Date.now() > deadline) throw new Error(`recovery did not end within ${timeoutMs} ms\n--- server log ---\n${await c.readLog(8000)}`);
    await sleep(200);
  }
}

/** Wait until recovery paused at its target (recovery_target_action = pause). */
async function waitPaused(c: PgCluster, timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const state = await c.psql("SELECT pg_is_in_recovery()::text || ':' || CASE WHEN pg_is_in_recovery() THEN pg_get_wal_replay_pause_state() ELSE '' END");
    if (state === 'true:paused') return;
    if (state.startsWith('false')) throw new Error(`the copy promoted instead of pausing\n--- server log ---\n${await c.readLog(8000)}`);
    if (Date.now() > deadline) throw new Error(`recovery did not pause within ${timeoutMs} ms (${state})\n--- server log ---\n${await c.readLog(8000)}`);
    await sleep(200);
  }
}

/** Content fingerprint of the pgbench tables (and of table t with `withT`). Reads only. */
async function fingerprint(c: PgCluster, withT = false): Promise<string> {
  return c.psql(`
    SELECT concat_ws(' | ',
      (SELECT count(*) || ':' || md5(string_agg(aid || ':' || abalance, ',' ORDER BY aid)) FROM pgbench_accounts),
      (SELECT count(*) || ':' || coalesce(sum(delta), 0) || ':' || coalesce(md5(string_agg(tid || ':' || bid || ':' || aid || ':' || delta, ',' ORDER BY mtime, tid, aid, delta)), '-') FROM pgbench_history),
      (SELECT md5(string_agg(bid || ':' || bbalance, ',' ORDER BY bid)) FROM pgbench_branches),
      (SELECT md5(string_agg(tid || ':' || tbalance, ',' ORDER BY tid)) FROM pgbench_tellers)
      ${withT ? ", (SELECT coalesce(string_agg(id || '=' || v, ',' ORDER BY id), 'empty') FROM t)" : ''})`);
}

async function switchAndWaitArchived(c: PgCluster): Promise<void> {
  const seg = await c.switchWal();
  await c.waitForArchived(seg, 60_000);
}

function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

// ---------------------------------------------------------------------------
// 1. Full backup under load, restore to a named restore point
// ---------------------------------------------------------------------------

describe('full backup under pgbench load, restored to a restore point', () => {
  let repo: string;
  let work: string;
  let src: PgCluster;

  beforeAll(async () => {
    repo = await createRepo(await makeSharedTempDir('pgark-br1-repo-'));
    work = await makeSharedTempDir('pgark-br1-work-');
    src = await sourceCluster('br-load', repo);
    await src.pgbench(['-i', '-s', '2', '-q']);
  }, 120_000);

  it('restores exactly the content at after_load', async () => {
    let loadDone = false;
    const load = src.pgbench(['-c', '2', '-j', '2', '-T', '8', '-n']).finally(() => {
      loadDone = true;
    });
    // Let the load get going; a read-only count proves transactions are committing.
    let before = 0;
    for (let i = 0; i < 50 && before === 0; i++) {
      await sleep(100);
      before = Number(await src.psql('SELECT count(*) FROM pgbench_history'));
    }
    expect(before).toBeGreaterThan(0);
    expect(loadDone).toBe(false);
    const b = await backup(src, repo, ['--type', 'full', '--label', 'under load']);
    const bench = await load;

    expect(b.type).toBe('full');
    expect(b.parent).toBeUndefined();
    expect(b.chain).toEqual([b.id]);
    expect(b.dataChecksums).toBe(true);
    expect(b.checksumFailures).toBe(0);
    expect(b.size.stored).toBeGreaterThan(0);
    expect(b.size.original).toBeGreaterThan(30 * 1024 * 1024); // scale 2 alone is ~30 MB

    const processed = Number(/number of transactions actually processed: (\d+)/.exec(bench.stdout)?.[1]);
    expect(processed).toBeGreaterThan(before);

    // Fingerprint, then the restore point, with no write in between (the load has ended).
    const fp = await fingerprint(src);
    await src.psql("SELECT pg_create_restore_point('after_load')");
    await switchAndWaitArchived(src);
    // Each pgbench transaction inserts exactly one history row.
    expect(fp.split(' | ')[1]!.split(':')[0]).toBe(String(processed));

    const dir = join(work, 'restored');
    const r = await restore(repo, 'auto', dir, ['--target-name', 'after_load', '--target-action', 'promote']);
    expect(r.backup).toBe(b.id);
    expect(r.signal).toBe('recovery.signal');
    expect(r.settings['recovery_target_name']).toBe('after_load');
    expect(r.settings['recovery_target_action']).toBe('promote');
    expect(r.settings['archive_mode']).toBe('off');
    expect(r.filesWritten).toBe(b.size.files);
    expect(existsSync(join(dir, 'recovery.signal'))).toBe(true);
    const auto = await readFile(join(dir, 'postgresql.auto.conf'), 'utf8');
    expect(auto).toMatch(/^restore_command = '.*wal-fetch %f %p --repo .*'$/m);
    expect(auto).toMatch(/^recovery_target_name = 'after_load'$/m);
    expect(auto).toMatch(/^archive_mode = 'off'$/m);

    const copy = await startRestored(dir, 'br-load-copy');
    await waitPromoted(copy);
    expect(await copy.psql('SHOW data_checksums')).toBe('on');
    expect(await fingerprint(copy)).toBe(fp);
    const log = await copy.readLog();
    expect(log).toMatch(/recovery stopping at restore point "after_load"/);
    await copy.destroy();
  }, 180_000);

  it('a restore that fails after choosing the backup ends the worker threads it started and exits', async () => {
    // --jobs 3: the worker threads start as soon as the backup is chosen (restore.ts earlyThreads);
    // the tablespace map is refused after that. A thread left running kept the process alive.
    const r = await pgark(['restore', 'latest', '--repo', repo, '--stanza', STANZA, '--pgdata', join(work, 'never'), '--jobs', '3', '--no-progress',
      '--tablespace-map', `99999=${join(work, 'ts-never')}`], { timeoutMs: 60_000, allowFail: true });
    expect(r.stderr).toMatch(/'99999' matches no tablespace of the backup/);
    expect(r.code).toBe(5);
  }, 90_000);
});

// ---------------------------------------------------------------------------
// 2. PITR to an xid, a time and an LSN
// ---------------------------------------------------------------------------

describe('point-in-time recovery (restore auto)', () => {
  let repo: string;
  let work: string;
  let src: PgCluster;
  let b1: BackupJson;
  const steps: Array<{ xid: string; time: string; lsn: string }> = [];

  const rowsOf = (c: PgCluster) => c.psql("SELECT coalesce(string_agg(id || '=' || v, ',' ORDER BY id), '') FROM t");

  async function restoreAndRows(name: string, target: string[], expectBackup: string): Promise<string> {
    const dir = join(work, name);
    const r = await restore(repo, 'auto', dir, [...target, '--target-action', 'promote']);
    expect(r.backup).toBe(expectBackup);
    const copy = await startRestored(dir, `pitr-${name}`);
    try {
      await waitPromoted(copy);
      return await rowsOf(copy);
    } finally {
      await copy.destroy();
      await rm(dir, { recursive: true, force: true });
    }
  }

  beforeAll(async () => {
    repo = await createRepo(await makeSharedTempDir('pgark-br2-repo-'));
    work = await makeSharedTempDir('pgark-br2-work-');
    src = await sourceCluster('br-pitr', repo);
    await src.psql('CREATE TABLE t(id int PRIMARY KEY, v text)');
    b1 = await backup(src, repo, ['--type', 'full']);
    for (let i = 1; i <= 3; i++) {
      if (i > 1) await sleep(1100);
      const out = await src.psql(
        `BEGIN; INSERT INTO t VALUES (${i}, 'step ${i}'); SELECT txid_current(); COMMIT;
         SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00';
         SELECT pg_current_wal_insert_lsn();`,
      );
      const [xid, time, lsn] = out.split('\n');
      steps.push({ xid: xid!, time: time!, lsn: lsn! });
    }
    await switchAndWaitArchived(src);
  }, 120_000);

  it('captured three distinct steps', () => {
    expect(steps).toHaveLength(3);
    for (const s of steps) {
      expect(s.xid).toMatch(/^\d+$/);
      expect(s.lsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
    }
    expect(Number(steps[1]!.xid)).toBeGreaterThan(Number(steps[0]!.xid));
    expect(Number(steps[2]!.xid)).toBeGreaterThan(Number(steps[1]!.xid));
  });

  it('--target-xid of step 2 (inclusive) shows steps 1-2', async () => {
    expect(await restoreAndRows('xid-incl', ['--target-xid', steps[1]!.xid], b1.id)).toBe('1=step 1,2=step 2');
  }, 120_000);

  it('--target-xid of step 2 with --target-exclusive shows step 1 only', async () => {
    expect(await restoreAndRows('xid-excl', ['--target-xid', steps[1]!.xid, '--target-exclusive'], b1.id)).toBe('1=step 1');
  }, 120_000);

  describe('with a newer backup in the repository', () => {
    let b2: BackupJson;
    beforeAll(async () => {
      // A second backup that ends after every step: auto must not pick it for earlier targets.
      b2 = await backup(src, repo, ['--type', 'full']);
    }, 120_000);

    it('the newer backup ends after step 3', () => {
      expect(Date.parse(b2.stop.time)).toBeGreaterThan(Date.parse(steps[2]!.time.replace(' ', 'T').replace('+00', 'Z')));
    });

    it('--target-time between steps 2 and 3 shows steps 1-2, from the older backup', async () => {
      expect(await restoreAndRows('time', ['--target-time', steps[1]!.time], b1.id)).toBe('1=step 1,2=step 2');
    }, 120_000);

    it('--target-lsn after step 1 shows step 1 only, from the older backup', async () => {
      expect(await restoreAndRows('lsn', ['--target-lsn', steps[0]!.lsn], b1.id)).toBe('1=step 1');
    }, 120_000);
  });
});

// ---------------------------------------------------------------------------
// 3. Incremental chain of three
// ---------------------------------------------------------------------------

describe('incremental chain: full + 3 incr', () => {
  let repo: string;
  let work: string;
  let src: PgCluster;
  const backups: BackupJson[] = [];
  const fps: string[] = [];

  /** A small, deterministic change: one contiguous range of accounts and one row of t. */
  async function change(n: number): Promise<void> {
    const from = n * 40_000 + 1;
    await src.psql(`UPDATE pgbench_accounts SET abalance = abalance + ${n} WHERE aid BETWEEN ${from} AND ${from + 499};
                    INSERT INTO t VALUES (${n}, 'change ${n}')`);
  }

  beforeAll(async () => {
    repo = await createRepo(await makeSharedTempDir('pgark-br3-repo-'));
    work = await makeSharedTempDir('pgark-br3-work-');
    src = await sourceCluster('br-incr', repo);
    await src.pgbench(['-i', '-s', '2', '-q']);
    await src.psql('CREATE TABLE t(id int PRIMARY KEY, v text)');
    backups.push(await backup(src, repo, ['--type', 'full']));
    fps.push(await fingerprint(src, true));
    for (let n = 1; n <= 3; n++) {
      await change(n);
      backups.push(await backup(src, repo, ['--type', 'incr']));
      // Right after the backup, nothing written since: this is the content at its consistency point.
      fps.push(await fingerprint(src, true));
    }
    await switchAndWaitArchived(src);
  }, 180_000);

  it('each backup reports its type, parent and chain', () => {
    const [f, i1, i2, i3] = backups as [BackupJson, BackupJson, BackupJson, BackupJson];
    expect(backups.map((b) => b.type)).toEqual(['full', 'incr', 'incr', 'incr']);
    expect(f.id).toMatch(/F$/);
    for (const i of [i1, i2, i3]) expect(i.id).toMatch(/I$/);
    expect(new Set(fps).size).toBe(4);
  });

  it('pgark list shows the chain in order', async () => {
    const list = await listBackups(repo);
    const [f, i1, i2, i3] = backups as [BackupJson, BackupJson, BackupJson, BackupJson];
    expect(list.map((b) => b.id)).toEqual([f.id, i1.id, i2.id, i3.id]);
    expect(list.map((b) => b.type)).toEqual(['full', 'incr', 'incr', 'incr']);
    expect(list.map((b) => b.parent ?? null)).toEqual([null, f.id, i1.id, i2.id]);
    expect(list.map((b) => b.chain)).toEqual([[f.id], [f.id, i1.id], [f.id, i1.id, i2.id], [f.id, i1.id, i2.id, i3.id]]);
    expect(list.map((b) => b.kept)).toEqual([false, false, false, false]);
    // What list says equals what backup said.
    for (let k = 0; k < 4; k++) expect(list[k]!.size).toEqual(backups[k]!.size);
  });

  it('each incremental stores far fewer bytes than the full backup', () => {
    const full = backups[0]!;
    for (const i of backups.slice(1)) {
      expect(i.size.stored).toBeLessThan(full.size.stored / 10);
      expect(i.size.changedBlocks).toBeGreaterThan(0);
      expect(i.size.reusedBlocks).toBeGreaterThan(i.size.changedBlocks!);
      // The whole data directory is still described.
      expect(i.size.original).toBeGreaterThan(0);
    }
  });

  it('the manifest of the newest incremental refers to its ancestors and stores pgbench_accounts as a delta', async () => {
    const [f, , , i3] = backups as [BackupJson, BackupJson, BackupJson, BackupJson];
    const files = await showFiles(repo, i3.id);
    const accounts = await src.psql("SELECT pg_relation_filepath('pgbench_accounts')");
    const acc = files.find((x) => x.path === accounts);
    expect(acc?.delta).toBeDefined();
    expect(acc!.delta!.blocks.reduce((n, r) => n + r[1], 0)).toBeGreaterThan(0);
    expect(files.some((x) => x.object?.backup === f.id)).toBe(true);
    expect(files.some((x) => x.object !== undefined && x.object.backup === i3.id)).toBe(true);
  });

  it('restores the newest incremental (latest, --target-immediate) to its content, without loading lz4-napi', async () => {
    const dir = join(work, 'latest');
    const r = await restore(repo, 'latest', dir, ['--target-immediate', '--target-action', 'promote'], await mapsRecorder(work));
    expect(r.backup).toBe(backups[3]!.id);
    // Every object it read (manifests of the chain, data objects, on worker threads too) was
    // decoded in JavaScript: lz4-napi's native module and its allocator stay out (issue 17 item 4).
    const mapped = await mappedFiles(work);
    expect(mapped.some((f) => /\/node(js)?$|libc\.so/.test(f))).toBe(true); // the recorder saw the process
    expect(mapped.filter((f) => /lz4/i.test(f))).toEqual([]);
    expect(r.settings['recovery_target']).toBe('immediate');
    const copy = await startRestored(dir, 'incr-latest');
    await waitPromoted(copy);
    expect(await fingerprint(copy, true)).toBe(fps[3]);
    expect(await copy.psql('SHOW data_checksums')).toBe('on');
    await copy.destroy();
    await rm(dir, { recursive: true, force: true });
  }, 120_000);

  it('restores the middle incremental by id (--target-immediate, pause) to its content', async () => {
    const mid = backups[2]!;
    const dir = join(work, 'middle');
    const r = await restore(repo, mid.id, dir, ['--target-immediate', '--target-action', 'pause']);
    expect(r.backup).toBe(mid.id);
    const copy = await startRestored(dir, 'incr-middle');
    await waitPaused(copy);
    expect(await fingerprint(copy, true)).toBe(fps[2]);
    await copy.destroy();
    await rm(dir, { recursive: true, force: true });
  }, 120_000);
});

// ---------------------------------------------------------------------------
// 4. restore --delta
// ---------------------------------------------------------------------------

describe('restore --delta over a modified data directory', () => {
  let repo: string;
  let work: string;
  let src: PgCluster;
  let b: BackupJson;
  let fp: string;
  let deltaResult: RestoreJson | undefined;
  let extrasBefore: string[] = [];

  beforeAll(async () => {
    repo = await createRepo(await makeSharedTempDir('pgark-br4-repo-'));
    work = await makeSharedTempDir('pgark-br4-work-');
    src = await sourceCluster('br-delta', repo);
    await src.pgbench(['-i', '-s', '1', '-q']);
    await src.pgbench(['-c', '1', '-t', '200', '-n']);
    b = await backup(src, repo, ['--type', 'full']);
    fp = await fingerprint(src);
    await switchAndWaitArchived(src);
  }, 120_000);

  it('writes only what differs, removes extras, and the copy starts with the same content', async () => {
    const dir = join(work, 'copy');
    const target = ['--target-immediate', '--target-action', 'promote'];
    const first = await restore(repo, b.id, dir, target);
    expect(first.filesWritten).toBe(b.size.files);
    const copy = await startRestored(dir, 'delta-copy');
    await waitPromoted(copy);
    expect(await fingerprint(copy)).toBe(fp);
    const relPath = await copy.psql("SELECT pg_relation_filepath('pgbench_accounts')");
    await copy.stop('fast');

    // Without --delta or --force a non-empty directory is refused.
    const refused = await pgark(['restore', b.id, '--repo', repo, '--stanza', STANZA, '--pgdata', dir, '--no-progress', ...target], { allowFail: true });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/not empty/);

    // Damage: garbage appended to a relation file, an extra file, a file removed.
    const relFile = join(dir, relPath);
    const sizeBefore = (await stat(relFile)).size;
    await appendFile(relFile, Buffer.alloc(8192, 0x5a));
    const extra = join(dir, 'base', 'garbage-extra-file');
    await writeFile(extra, 'not part of the backup\n');
    await chownToRunAs(extra);
    await rm(join(dir, 'PG_VERSION'));

    const manifest = await showManifest(repo, b.id);
    const relEntry = manifest.files.find((f) => f.path === relPath)!;
    expect(relEntry).toBeDefined();
    expect(relEntry.size).toBe(sizeBefore);
    // What the copy holds beyond the backup: our extra file, plus what the server left
    // (postmaster.opts, WAL of the new timeline, ...).
    const extras = await extrasOf(dir, new Set(manifest.files.map((f) => f.path)), new Set(manifest.dirs.map((d) => d.path)));
    expect(extras).toContain('base/garbage-extra-file');
    expect(extras).toContain('postmaster.opts');
    extrasBefore = extras;

    const r = await restore(repo, b.id, dir, ['--delta', ...target]);
    deltaResult = r;
    expect(r.backup).toBe(b.id);
    expect(r.filesUnchanged).toBeGreaterThan(0);
    expect(r.filesWritten).toBeGreaterThan(0);
    expect(r.filesWritten).toBeLessThan(b.size.files);
    expect(r.filesWritten + r.filesUnchanged).toBe(b.size.files);
    expect(r.filesRemoved).toBeGreaterThanOrEqual(1);
    for (const x of extras) expect(existsSync(join(dir, x)), `${x} should have been removed`).toBe(false);
    expect(existsSync(extra)).toBe(false);
    expect(existsSync(join(dir, 'postmaster.pid'))).toBe(false);
    const rel = await readFile(relFile);
    expect(rel.length).toBe(relEntry.size);
    expect(sha256(rel)).toBe(relEntry.sha256);
    expect((await readFile(join(dir, 'PG_VERSION'), 'utf8')).trim()).toBe('15');

    // The restore rewrote postgresql.conf with the source's: put the copy's port back.
    await copy.setConf({});
    await copy.start({ timeoutSec: 120 });
    await waitPromoted(copy);
    expect(await fingerprint(copy)).toBe(fp);
    await copy.destroy();
  }, 180_000);

  it('counts as removed exactly the entries the backup does not hold', () => {
    expect(deltaResult, 'the delta restore above did not run').toBeDefined();
    // global/pg_control is part of the backup: it is rewritten (and counted as written), so it
    // is not an extra, even though pgark deletes the old one first so that an interrupted
    // delta restore cannot be started.
    expect(deltaResult!.filesRemoved).toBe(extrasBefore.length);
  });

  it('a damaged byte inside a bundled file fails the restore, which never makes the copy startable', async () => {
    // Objects holding several files are read without the object's own sha256 (each file is
    // hashed against the manifest instead): a byte changed in one file must still be caught.
    const plain = await backup(src, repo, ['--type', 'full', '--codec', 'none']);
    const files = await showFiles(repo, plain.id);
    const byObject = new Map<number, ManifestFile[]>();
    for (const f of files) if (f.object && f.object.backup === plain.id && f.size > 0) byObject.set(f.object.n, [...(byObject.get(f.object.n) ?? []), f]);
    const bundle = [...byObject.values()].find((fs) => fs.length > 3)!;
    expect(bundle, 'no object with several files').toBeDefined();
    const victim = bundle.find((f) => f.object!.offset > 0)!;
    const objPath = join(repo, STANZA, 'backup', plain.id, 'data', String(victim.object!.n));
    const stored = await readFile(objPath);
    const header = 8 + stored.readUInt32LE(4); // a skippable frame: magic, length, content
    const at = header + victim.object!.offset + Math.floor(victim.size / 2);
    stored[at]! ^= 0x01;
    await writeFile(objPath, stored);
    const dir = join(work, 'damaged');
    const r = await pgark(['restore', plain.id, '--repo', repo, '--stanza', STANZA, '--pgdata', dir, '--jobs', '2', '--no-progress'], { allowFail: true, timeoutMs: 180_000 });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`'${victim.path}'`);
    expect(r.stderr).toMatch(/does not match the manifest/);
    expect(existsSync(join(dir, 'global', 'pg_control'))).toBe(false);
  });
});
