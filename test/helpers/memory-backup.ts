/**
 * Back up a directory into a repository in memory, and restore from it, with the task
 * functions the worker threads run (runBackupTask, runRestoreTask) called on this thread: the
 * copy and restore paths of `pgark backup` / `pgark restore` without PostgreSQL, the CLI or
 * worker threads. What runBackup and runRestore do around the tasks (merging the results of a
 * file stored in parts, creating the files written in parts) is done here the same way.
 *
 * The worker modules open their repository once per thread from the first task's settings: a
 * test file uses one store for all its backups and restores.
 */
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { runBackupTask, type BackupTaskResult, type BackupWorkerInit } from '../../src/backup/backup-worker.js';
import { manifestLines, MANIFEST_FORMAT, partsDigest, type FileEntry, type Manifest } from '../../src/catalog/manifest.js';
import { planTasks, type BackupTask } from '../../src/backup/tasks.js';
import { walkDataDirectory } from '../../src/backup/walk.js';
import { manifestKey } from '../../src/repo/layout.js';
import { planRestore, type RestoreTask } from '../../src/restore/plan.js';
import { openOwnFile, openPrivateForWrite } from '../../src/restore/private-file.js';
import { runRestoreTask, type RestoreTaskResult, type RestoreWorkerInit } from '../../src/restore/restore-worker.js';
import { targetPath } from '../../src/restore/restore-worker-paths.js';
import type { MemoryRepo } from './memory-repo.js';

export interface BackedUp {
  manifest: Manifest;
  tasks: BackupTask[];
  results: BackupTaskResult[];
}

export async function backupDirectory(m: MemoryRepo, pgdata: string, o: {
  id: string;
  startLsn: string;
  parent?: { manifest: Manifest; startLsn: string };
  bundleLimit?: number;
  partSize?: number;
}): Promise<BackedUp> {
  const walk = await walkDataDirectory(pgdata, 15);
  const tasks = planTasks(walk.files, o.parent?.manifest.files, {
    ...(o.bundleLimit !== undefined ? { bundleLimit: o.bundleLimit } : {}),
    ...(o.partSize !== undefined ? { partSize: o.partSize } : {}),
  });
  const init: BackupWorkerInit = {
    settings: m.settings(), backupId: o.id, codec: 'lz4', level: undefined, checksums: false, blockSize: 8192, relsegBlocks: 131072,
    startLsn: o.startLsn, ...(o.parent ? { parentStartLsn: o.parent.startLsn } : {}),
  };
  const results: BackupTaskResult[] = [];
  for (const t of tasks) results.push(await runBackupTask(init, t, () => undefined));
  // As runBackup folds the workers' results.
  const files = new Map<string, FileEntry>();
  for (const r of results) {
    for (const e of r.entries) {
      const had = files.get(e.path);
      if (e.parts && had?.parts) {
        had.parts.push(...e.parts);
        had.size = Math.max(had.size, e.size);
      } else files.set(e.path, e);
    }
  }
  for (const e of files.values()) {
    if (!e.parts) continue;
    e.parts = e.parts.filter((p) => p.size > 0).sort((x, y) => x.start - y.start);
    const last = e.parts[e.parts.length - 1];
    e.size = last ? last.start + last.size : 0;
    e.sha256 = partsDigest(e.parts);
  }
  const manifest: Manifest = {
    header: {
      t: 'header', format: MANIFEST_FORMAT, id: o.id, type: o.parent ? 'incr' : 'full', ...(o.parent ? { parent: o.parent.manifest.header.id } : {}),
      pgVersion: 150000, pgdata, blockSize: 8192, relsegBlocks: 131072, tablespaces: [],
    },
    dirs: [...walk.dirs].sort((a, b) => (a.path < b.path ? -1 : 1)),
    links: walk.links,
    files: new Map([...files.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1))),
  };
  const body = Buffer.from([...manifestLines(manifest)].join(''));
  await m.repo.putObject(manifestKey(m.repo.stanza, o.id), () => Readable.from([body]), { codec: 'lz4' });
  return { manifest, tasks, results };
}

export interface Restored {
  tasks: RestoreTask[];
  results: RestoreTaskResult[];
}

/** Restore the last backup of `chain` (full first) into the empty or missing directory `dir`. */
export async function restoreInto(m: MemoryRepo, chain: Manifest[], dir: string): Promise<Restored> {
  const manifest = chain[chain.length - 1]!;
  const init: RestoreWorkerInit = { settings: m.settings(), pgdata: dir, tablespaces: {}, holdBack: {}, delta: false };
  await mkdir(dir, { recursive: true, mode: 0o700 });
  for (const d of manifest.dirs) await mkdir(targetPath(init, d.path), { recursive: true, mode: 0o700 });
  const { tasks, multi } = planRestore(chain);
  for (const f of multi) await (await openPrivateForWrite(targetPath(init, f.path), false)).close();
  const results: RestoreTaskResult[] = [];
  for (const t of tasks) results.push(await runRestoreTask(init, t, () => undefined));
  for (const f of multi) {
    const fh = await openOwnFile(targetPath(init, f.path));
    try {
      await fh.truncate(f.size);
    } finally {
      await fh.close();
    }
  }
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
