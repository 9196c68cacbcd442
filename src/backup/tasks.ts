/**
 * Group the files of a backup into storage objects (pure). Files of at least `bundleLimit`
 * bytes get an object of their own; smaller files are packed into bundles of about
 * `bundleSize` raw bytes, so the object count grows with data size, not with file count.
 * Large objects come first so that parallel jobs finish together.
 */
import type { FileEntry } from './manifest.js';
import type { WalkFile } from './walk.js';

export const BUNDLE_LIMIT = 4 * 1024 * 1024;
export const BUNDLE_SIZE = 32 * 1024 * 1024;

export interface TaskFile {
  path: string;
  abs: string;
  mode: number;
  mtimeMs: number;
  planSize: number;
  relation?: { segment: number; fork: 'main' | 'fsm' | 'vm' | 'init' };
  /** The same path in the parent backup (incremental backups). */
  parent?: FileEntry;
}

export interface BackupTask {
  /** Object number within the backup. */
  n: number;
  /** One large file in an object of its own (the only kind that may be stored as a block delta). */
  own: boolean;
  files: TaskFile[];
  bytes: number;
}

export function planTasks(
  files: readonly WalkFile[],
  parentFiles: ReadonlyMap<string, FileEntry> | undefined,
  o: { bundleLimit?: number; bundleSize?: number } = {},
): BackupTask[] {
  const limit = o.bundleLimit ?? BUNDLE_LIMIT;
  const bundleSize = o.bundleSize ?? BUNDLE_SIZE;
  const toTask = (f: WalkFile): TaskFile => {
    const t: TaskFile = { path: f.path, abs: f.abs, mode: f.mode, mtimeMs: f.mtimeMs, planSize: f.size };
    if (f.relation) t.relation = { segment: f.relation.segment, fork: f.relation.fork };
    const p = parentFiles?.get(f.path);
    if (p) t.parent = p;
    return t;
  };
  const big = files.filter((f) => f.size >= limit).sort((a, b) => b.size - a.size || (a.path < b.path ? -1 : 1));
  const small = files.filter((f) => f.size < limit); // walk order keeps a directory's files together
  const tasks: BackupTask[] = [];
  let n = 0;
  for (const f of big) tasks.push({ n: n++, own: true, files: [toTask(f)], bytes: f.size });
  let cur: BackupTask | undefined;
  for (const f of small) {
    if (!cur || cur.bytes >= bundleSize) {
      cur = { n: n++, own: false, files: [], bytes: 0 };
      tasks.push(cur);
    }
    cur.files.push(toTask(f));
    cur.bytes += f.size;
  }
  return tasks;
}
