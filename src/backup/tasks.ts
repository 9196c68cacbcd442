/**
 * Group the files of a backup into storage objects (pure). Files of at least `bundleLimit`
 * bytes get an object of their own; smaller files are packed into bundles of about
 * `bundleSize` bytes of cost, so the object count grows with data size, not with file count.
 *
 * A task's cost is its bytes plus `fileCost` per file: a lane copies each small file with an
 * open, a read and a close and a manifest entry of its own, which cost about as much as copying
 * 128 KiB when they were three trips through libuv's threadpool (bench/results/backup.md,
 * timeline: a bundle of ~970 catalog files, 23 MB, kept one lane busy 0.8-2.8 s while the other
 * copied 157 MB; backup-worker.ts now reads small files synchronously, which costs less: the
 * figure was not measured again). Costliest tasks come first (longest processing time
 * first), so that the lanes finish together: a bundle of a thousand small files planned by its
 * bytes alone went last and left the other lane idle at the end.
 */
import { PART_SIZE, type FileEntry } from '../catalog/manifest.js';
import type { WalkFile } from './walk.js';

export const BUNDLE_LIMIT = 4 * 1024 * 1024;
export const BUNDLE_SIZE = 32 * 1024 * 1024;
/** What one file costs a lane beyond its bytes (open, read, close), in bytes of copying. */
export const FILE_COST = 128 * 1024;

export interface TaskFile {
  path: string;
  abs: string;
  mode: number;
  mtimeMs: number;
  ctimeMs?: number;
  planSize: number;
  relation?: { segment: number; fork: 'main' | 'fsm' | 'vm' | 'init' };
  /** The same path in the parent backup (incremental backups). */
  parent?: FileEntry;
  /** Set when the file is stored in parts: bytes [start, start + length) (the last part: to the end). */
  part?: { start: number; length: number | null; last: boolean };
}

export interface BackupTask {
  /** Object number within the backup. */
  n: number;
  /** One large file in an object of its own (the only kind that may be stored as a block delta). */
  own: boolean;
  files: TaskFile[];
  bytes: number;
  /** bytes + fileCost per file: what the schedule orders by. */
  cost: number;
}

export function planTasks(
  files: readonly WalkFile[],
  parentFiles: ReadonlyMap<string, FileEntry> | undefined,
  o: { bundleLimit?: number; bundleSize?: number; partSize?: number; fileCost?: number } = {},
): BackupTask[] {
  const limit = o.bundleLimit ?? BUNDLE_LIMIT;
  const bundleSize = o.bundleSize ?? BUNDLE_SIZE;
  const fileCost = o.fileCost ?? FILE_COST;
  const toTask = (f: WalkFile): TaskFile => {
    const t: TaskFile = { path: f.path, abs: f.abs, mode: f.mode, mtimeMs: f.mtimeMs, planSize: f.size };
    if (f.ctimeMs !== undefined) t.ctimeMs = f.ctimeMs;
    if (f.relation) t.relation = { segment: f.relation.segment, fork: f.relation.fork };
    const p = parentFiles?.get(f.path);
    if (p) t.parent = p;
    return t;
  };
  const big = files.filter((f) => f.size >= limit).sort((a, b) => b.size - a.size || (a.path < b.path ? -1 : 1));
  const small = files.filter((f) => f.size < limit); // walk order keeps a directory's files together
  const tasks: BackupTask[] = [];
  let n = 0;
  const partSize = o.partSize ?? PART_SIZE;
  const pieces: BackupTask[] = [];
  for (const f of big) {
    if (f.size <= partSize) {
      pieces.push({ n: 0, own: true, files: [toTask(f)], bytes: f.size, cost: f.size + fileCost });
      continue;
    }
    const count = Math.ceil(f.size / partSize);
    for (let i = 0; i < count; i++) {
      const last = i === count - 1;
      const t = toTask(f);
      t.part = { start: i * partSize, length: last ? null : partSize, last };
      const bytes = last ? f.size - i * partSize : partSize;
      pieces.push({ n: 0, own: true, files: [t], bytes, cost: bytes + fileCost });
    }
  }
  for (const t of pieces) tasks.push(t);
  let cur: BackupTask | undefined;
  void n;
  for (const f of small) {
    if (!cur || cur.cost >= bundleSize) {
      cur = { n: n++, own: false, files: [], bytes: 0, cost: 0 };
      tasks.push(cur);
    }
    cur.files.push(toTask(f));
    cur.bytes += f.size;
    cur.cost += f.size + fileCost;
  }
  // Costliest first (stable: equal costs keep walk order), numbered in that order.
  const ordered = tasks.map((t, i) => ({ t, i })).sort((a, b) => b.t.cost - a.t.cost || a.i - b.i).map(({ t }) => t);
  ordered.forEach((t, i) => (t.n = i));
  return ordered;
}
