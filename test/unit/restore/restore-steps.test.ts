/**
 * runRestore's steps (src/restore/restore.ts) on a repository in memory (issue 15 item 7): the
 * target check, the choice of the backup and its chain from the catalog, the tablespace remap,
 * the layout, the files (runRestore's processFiles with the tasks run on this thread: a worker
 * thread cannot reach a store in this thread's memory) and the configuration, in runRestore's
 * order, with pg_control held back until the end. No PostgreSQL, no CLI, no repository on disk.
 */
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../../src/common/errors.js';
import { catalogKey, manifestKey } from '../../../src/repo/layout.js';
import { readAll } from '../../../src/repo/object-stream.js';
import { recoverySettings } from '../../../src/restore/recovery-conf.js';
import { HOLD_BACK, HOLD_BACK_AS } from '../../../src/restore/restore-clean.js';
import { checkTargetDirectory, lanesHere, LANES_HERE_MAX_BYTES, layOut, remapTablespaces, runRestore, selectBackup, writeConfiguration } from '../../../src/restore/restore.js';
import type { RestoreWorkerInit } from '../../../src/restore/restore-worker.js';
import { backupDirectory, readTree, restoreFiles, type BackedUp } from '../../helpers/memory-backup.js';
import { memoryRepo, SEG, type MemoryRepo } from '../../helpers/memory-repo.js';
import { EXCLUDED, pages, setPageLsn, syntheticFiles, writeFiles } from '../../helpers/synthetic-pgdata.js';

const F = '20261201-010000F';
const I = '20261201-020000I';
const SYSID = '7000000000000000001';
const SIZES = { bundleLimit: 2 * 8192, partSize: 4 * 8192 };
const copied = (p: string): boolean => p !== 'postmaster.pid' && !p.startsWith('pg_wal/');
const NO_FLAGS = { tablespaceMap: [], delta: false, force: false };

let m: MemoryRepo;
let dir: string;
let pgdata: string;
let full: BackedUp;
let incr: BackedUp;
let atIncr: Map<string, Buffer>;

beforeAll(async () => {
  m = memoryRepo();
  await m.repo.ensureStanza({ systemIdentifier: SYSID, pgVersion: 150000, walSegmentSize: SEG }, 'lz4', 'backup');
  dir = await mkdtemp(join(tmpdir(), 'pgark-unit-restore-steps-'));
  pgdata = join(dir, 'data');
  await writeFiles(pgdata, { ...syntheticFiles(0x1000000n), ...EXCLUDED });
  full = await backupDirectory(m, pgdata, { id: F, startLsn: '0/2000028', ...SIZES });
  const rel = await readFile(join(pgdata, 'base/1/2619'));
  setPageLsn(rel, 1, 0x3000000n);
  await writeFile(join(pgdata, 'base/1/2619'), Buffer.concat([rel, pages(1, 0x3000100n)]));
  await writeFile(join(pgdata, 'global/pg_control'), pages(1, 0x3000200n));
  incr = await backupDirectory(m, pgdata, { id: I, startLsn: '0/4000028', parent: { manifest: full.manifest, startLsn: '0/2000028', info: full.info }, ...SIZES });
  atIncr = await readTree(pgdata, copied);
});

afterAll(async () => {
  m.drop();
  await rm(dir, { recursive: true, force: true });
});

describe('checkTargetDirectory', () => {
  it('takes a missing or empty directory, refuses a non-empty one without --delta or --force', async () => {
    const t = join(dir, 'target-check');
    expect(await checkTargetDirectory(t, NO_FLAGS)).toBe(null);
    await mkdir(t);
    expect(await checkTargetDirectory(t, NO_FLAGS)).toBe(true);
    await writeFile(join(t, 'PG_VERSION'), '15\n');
    await expect(checkTargetDirectory(t, NO_FLAGS)).rejects.toThrow(/is not empty: pass --delta/);
    expect(await checkTargetDirectory(t, { delta: true, force: false })).toBe(false);
  });

  it('refuses a directory a live server runs in, even with --force', async () => {
    const t = join(dir, 'target-live');
    await mkdir(t);
    await writeFile(join(t, 'postmaster.pid'), `${process.pid}\n${t}\n`);
    await expect(checkTargetDirectory(t, { delta: false, force: true })).rejects.toThrow(new RegExp(`server \\(pid ${process.pid}\\) is running`));
  });
});

describe('selectBackup', () => {
  it('chooses the newest backup from the catalog in memory and reads its chain, full first', async () => {
    const notes: string[] = [];
    const s = await selectBackup(m.repo, 'latest', {}, notes);
    expect(s.backup.id).toBe(I);
    expect(s.manifests.map((x) => x.header.id)).toEqual([F, I]);
    expect(s.manifest).toBe(s.manifests[1]);
    expect([...s.manifest.files.keys()]).toEqual([...incr.manifest.files.keys()]);
  });

  it('chooses a backup by id', async () => {
    const s = await selectBackup(m.repo, F, {}, []);
    expect(s.backup.id).toBe(F);
    expect(s.manifests.map((x) => x.header.id)).toEqual([F]);
  });

  it('refuses a backup of another system than the stanza', async () => {
    const other = memoryRepo();
    try {
      await other.repo.ensureStanza({ systemIdentifier: '7000000000000000002', pgVersion: 150000, walSegmentSize: SEG }, 'lz4', 'backup');
      // The catalog entry and manifest of backup F, as stored objects. (Not backupDirectory: the
      // worker module keeps the repository its thread opened first.)
      for (const key of [catalogKey('main', F), manifestKey('main', F)]) await other.driver.put(key, await readAll(await m.driver.get(key), 2 ** 30));
      await expect(selectBackup(other.repo, 'latest', {}, [])).rejects.toThrow(`backup ${F} belongs to system ${SYSID}, the stanza to 7000000000000000002`);
    } finally {
      other.drop();
    }
  });
});

describe('the steps in runRestore order', () => {
  it('writes the backup with pg_control held back, then the configuration and pg_control last', async () => {
    const target = join(dir, 'restored');
    const empty = await checkTargetDirectory(target, NO_FLAGS);
    const { backup, manifests, manifest } = await selectBackup(m.repo, 'latest', {}, []);
    const tablespaces = await remapTablespaces(manifest, NO_FLAGS);
    expect(tablespaces).toEqual({});
    expect(empty).toBe(null);
    await mkdir(target, { recursive: true, mode: 0o700 });
    const init: RestoreWorkerInit = { settings: m.settings(), pgdata: target, tablespaces, delta: false, holdBack: { [HOLD_BACK]: HOLD_BACK_AS } };
    await layOut(init, manifest);
    await restoreFiles(init, manifests);
    // Interrupted here, the directory cannot be started: pg_control is under another name.
    await expect(stat(join(target, HOLD_BACK))).rejects.toThrow(/ENOENT/);
    expect((await readFile(join(target, HOLD_BACK_AS))).equals(atIncr.get(HOLD_BACK)!)).toBe(true);

    const gucs = recoverySettings({ restoreCommand: 'pgark wal-fetch %f %p', target: {}, standby: false, keepArchive: false });
    const signal = await writeConfiguration(init, backup, manifest, gucs, false, undefined);
    expect(signal).toBe('recovery.signal');
    const got = await readTree(target);
    await expect(stat(join(target, HOLD_BACK_AS))).rejects.toThrow(/ENOENT/);
    expect(got.get('postgresql.auto.conf')!.toString()).toContain("restore_command = 'pgark wal-fetch %f %p'");
    expect(got.get('recovery.signal')!.length).toBe(0);
    got.delete('postgresql.auto.conf');
    got.delete('recovery.signal');
    expect([...got.keys()]).toEqual([...atIncr.keys()]);
    for (const [p, b] of atIncr) expect(got.get(p)!.equals(b), p).toBe(true);
  });

  it('writeConfiguration refuses a backup without pg_control and leaves the directory unstartable', async () => {
    const target = join(dir, 'no-control');
    const { backup, manifests, manifest } = await selectBackup(m.repo, F, {}, []);
    await mkdir(target, { recursive: true, mode: 0o700 });
    const init: RestoreWorkerInit = { settings: m.settings(), pgdata: target, tablespaces: {}, delta: false, holdBack: { [HOLD_BACK]: HOLD_BACK_AS } };
    await layOut(init, manifest);
    await restoreFiles(init, manifests);
    const files = new Map(manifest.files);
    files.delete(HOLD_BACK);
    await expect(writeConfiguration(init, backup, { ...manifest, files }, [], true, undefined)).rejects.toThrow(`backup ${F} has no global/pg_control`);
    await expect(stat(join(target, HOLD_BACK))).rejects.toThrow(/ENOENT/);
    expect((await stat(join(target, 'standby.signal'))).isFile()).toBe(true);
  });

  it('remapTablespaces refuses a non-empty tablespace location without --delta or --force', async () => {
    const loc = join(dir, 'ts-busy');
    await writeFiles(loc, { 'PG_15_202209061': 'x' });
    const manifest = { ...full.manifest, header: { ...full.manifest.header, tablespaces: [{ oid: 16400, name: 'ts1', location: loc }] }, links: [{ t: 'link' as const, path: 'pg_tblspc/16400', target: loc }] };
    await expect(remapTablespaces(manifest, NO_FLAGS)).rejects.toThrow(ConfigError);
    await expect(remapTablespaces(manifest, NO_FLAGS)).rejects.toThrow(/tablespace directory '.*ts-busy' \(tablespace 16400\) is not empty/);
    expect(await remapTablespaces(manifest, { tablespaceMap: [], delta: true, force: false })).toEqual({ 16400: loc });
  });
});

describe('a small restore runs on this thread (lanesHere)', () => {
  it('takes --jobs 1 and 2 up to LANES_HERE_MAX_BYTES here; larger restores and --jobs 3 or more start worker threads', () => {
    const table: Array<[number, number, boolean]> = [
      [1, 0, true], [2, 0, true], [2, LANES_HERE_MAX_BYTES, true], [1, LANES_HERE_MAX_BYTES, true],
      [2, LANES_HERE_MAX_BYTES + 1, false], [1, LANES_HERE_MAX_BYTES + 1, false], [3, 0, false], [8, 1024, false],
    ];
    for (const [jobs, bytes, here] of table) expect(lanesHere(jobs, bytes), `${jobs} jobs, ${bytes} bytes`).toBe(here);
  });

  it('runRestore at --jobs 2 writes the incremental byte for byte without a worker thread (one could not reach a store in memory)', async () => {
    const target = join(dir, 'run-restore-lanes');
    // As root, restore gives the files to an unprivileged user (test/helpers/pg-cluster.ts's).
    const owner = process.getuid?.() === 0 ? { owner: process.env['PGARK_TEST_PG_USER'] || 'postgres' } : {};
    const out = await runRestore(m.repo, { ...m.settings(), jobs: 2, jobsExplicit: true }, {
      ref: 'latest', pgdata: target, target: {}, standby: false, keepArchive: false, tablespaceMap: [], jobs: 2, delta: false, force: false, progress: false, ...owner,
    });
    expect(out.backup.id).toBe(I);
    const got = await readTree(target, copied);
    got.delete('postgresql.auto.conf');
    got.delete('recovery.signal');
    expect([...got.keys()].sort()).toEqual([...atIncr.keys()].sort());
    for (const [p, b] of atIncr) expect(got.get(p)!.equals(b), p).toBe(true);
  });
});
