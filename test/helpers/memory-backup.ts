/**
 * Back up a directory into a repository in memory, and restore from it, with the step functions
 * of runBackup and runRestore (src/backup/backup.ts, src/restore/restore.ts) and the task
 * functions the worker threads run (runBackupTask, runRestoreTask) called on this thread: the
 * copy and restore paths of `pgark backup` / `pgark restore` without PostgreSQL, the CLI or
 * worker threads. Only the pool is replaced: the tasks run one after another here (a worker
 * thread cannot reach a store in this thread's memory).
 *
 * The worker modules open their repository once per thread from the first task's settings: a
 * test file uses one store for all its backups and restores.
 */
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { addTaskResult, commitBackup, emptyCopy, storeManifest, type StoreFacts } from '../../src/backup/backup.js';
import { runBackupTask, type BackupTaskResult, type BackupWorkerInit } from '../../src/backup/backup-worker.js';
import { finishParts } from '../../src/backup/backup-rules.js';
import type { BackupInfo } from '../../src/catalog/backup-info.js';
import { readManifest } from '../../src/catalog/catalog.js';
import type { Manifest } from '../../src/catalog/manifest.js';
import { planTasks, type BackupTask } from '../../src/backup/tasks.js';
import { walkDataDirectory } from '../../src/backup/walk.js';
import { planRestore, type RestoreTask } from '../../src/restore/plan.js';
import { createPartFiles, finishPartFiles, layOut } from '../../src/restore/restore.js';
import { runRestoreTask, type RestoreTaskResult, type RestoreWorkerInit } from '../../src/restore/restore-worker.js';
import { backupEntry, SEG, type MemoryRepo } from './memory-repo.js';

export interface BackedUp {
  /** The manifest as stored, read back through the catalog entry's checksum. */
  manifest: Manifest;
  /** The catalog entry (committed unless `commit: false`): start LSN, manifest key and checksum. */
  info: BackupInfo;
  tasks: BackupTask[];
  results: BackupTaskResult[];
}

/** What the server check of runBackup finds for the synthetic data directory (PostgreSQL 15, 8 KiB blocks). */
export function syntheticServer(pgdata: string): StoreFacts {
  return { pgdata, codec: 'lz4', facts: { pgVersion: 150000, dataDirectory: pgdata, blockSize: 8192, relsegBlocks: 131072, tablespaces: [], walSegmentSize: SEG } };
}

export async function backupDirectory(m: MemoryRepo, pgdata: string, o: {
  id: string;
  startLsn: string;
  parent?: { manifest: Manifest; startLsn: string; info?: BackupInfo };
  bundleLimit?: number;
  partSize?: number;
  /** Commit the catalog entry (commitBackup), so that the catalog lists the backup; default true. */
  commit?: boolean;
}): Promise<BackedUp> {
  const walk = await walkDataDirectory(pgdata, 15);
  const tasks = planTasks(walk.files, o.parent?.manifest.files, {
    ...(o.bundleLimit !== undefined ? { bundleLimit: o.bundleLimit } : {}),
    ...(o.partSize !== undefined ? { partSize: o.partSize } : {}),
  });
  const init: BackupWorkerInit = {
    settings: m.settings(), backupId: o.id, codec: 'lz4', level: undefined, checksums: false, blockSize: 8192, relsegBlocks: 131072,
    startLsn: o.startLsn, ...(o.parent ? { parentStartLsn: o.parent.startLsn, blockDelta: true } : {}),
  };
  // runBackup's copyDataFiles, with the tasks run here instead of in a pool.
  const copied = emptyCopy();
  const results: BackupTaskResult[] = [];
  for (const t of tasks) {
    const r = await runBackupTask(init, t, () => undefined);
    results.push(r);
    addTaskResult(copied, r, o.id);
  }
  finishParts(copied.files.values());
  const type = o.parent ? 'incr' : 'full';
  const parentId = o.parent?.manifest.header.id;
  const ref = await storeManifest(m.repo, syntheticServer(pgdata), { id: o.id, type, parent: parentId !== undefined ? { id: parentId } : undefined }, walk, false, copied);
  const info: BackupInfo = {
    ...backupEntry({ id: o.id, lsn: o.startLsn, stop: new Date().toISOString(), ...(o.parent?.info ? { parent: o.parent.info } : {}) }),
    type, manifest: ref, codec: 'lz4',
  };
  if (parentId !== undefined) {
    info.parent = parentId;
    info.chain = [...(o.parent?.info?.chain ?? [parentId]), o.id];
  }
  if (o.commit !== false) await commitBackup(m.repo, { lost: false }, info, false);
  return { manifest: await readManifest(m.repo, info), info, tasks, results };
}

export interface Restored {
  tasks: RestoreTask[];
  results: RestoreTaskResult[];
}

/**
 * Restore the last backup of `chain` (full first) into the empty or missing directory `dir`:
 * runRestore's layOut and processFiles steps (files in parts created first, finished last),
 * with the tasks run here instead of in a pool. No pg_control held back, no configuration.
 */
export async function restoreInto(m: MemoryRepo, chain: Manifest[], dir: string): Promise<Restored> {
  const manifest = chain[chain.length - 1]!;
  const init: RestoreWorkerInit = { settings: m.settings(), pgdata: dir, tablespaces: {}, holdBack: {}, delta: false };
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await layOut(init, manifest);
  return restoreFiles(init, chain);
}

/** runRestore's processFiles step with the tasks run on this thread. */
export async function restoreFiles(init: RestoreWorkerInit, chain: Manifest[]): Promise<Restored> {
  const { tasks, multi } = planRestore(chain);
  await createPartFiles(init, multi);
  const results: RestoreTaskResult[] = [];
  for (const t of tasks) results.push(await runRestoreTask(init, t, () => undefined));
  await finishPartFiles(init, multi);
  return { tasks, results };
}

/** path -> content of every regular file under `dir` whose path `keep` accepts. */
export async function readTree(dir: string, keep: (path: string) => boolean = () => true): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  const walk = async (rel: string): Promise<void> => {
    for (const e of await readdir(join(dir, rel), { withFileTypes: true })) {
      const p = rel === '' ? e.name : `${rel}/${e.name}`;
      if (e.isDirectory()) await walk(p);
      else if (e.isFile() && keep(p)) out.set(p, await readFile(join(dir, p)));
    }
  };
  await walk('');
  return new Map([...out.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1)));
}
