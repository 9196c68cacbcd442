/**
 * What a restore writes and where each piece of each file comes from (pure).
 *
 * A file is one piece, or parts (see manifest.ts). A piece stored whole is a slice of one object.
 * A piece stored as a block delta is rebuilt from layers (catalog/chain-layers.ts, merged by
 * catalog/layer-merge.ts).
 */
import { IntegrityError } from '../common/errors.js';
import { piecesOf, type Manifest } from '../catalog/manifest.js';
import { layersOf, type Layer } from '../catalog/chain-layers.js';

// Moved to catalog/chain-layers.ts (verify rebuilds block deltas too); imported from here as before.
export { blockLength, layerBlocks, layersOf, type Layer } from '../catalog/chain-layers.js';

/** One piece of a file to write: bytes [start, start + size) of `path`, whose sha256 is `sha256`. */
export interface RestorePiece {
  path: string;
  start: number;
  size: number;
  sha256: string;
  /** The file is this one piece (written with truncation, mode and mtime set by the worker). */
  whole: boolean;
  mode: number;
  mtimeMs: number;
}

/** Pieces stored whole in one object, read in one pass. */
export interface ObjectTask {
  kind: 'object';
  backup: string;
  n: number;
  pieces: Array<RestorePiece & { offset: number }>;
  bytes: number;
}

/** One piece rebuilt from a chain of layers. */
export interface RebuildTask {
  kind: 'rebuild';
  piece: RestorePiece;
  layers: Layer[];
  blockSize: number;
  bytes: number;
}

export interface EmptyFilesTask {
  kind: 'empty';
  pieces: RestorePiece[];
  bytes: 0;
}

export type RestoreTask = ObjectTask | RebuildTask | EmptyFilesTask;

/** A file written in several pieces: the main thread sets its size, mode and mtime at the end. */
export interface MultiPieceFile {
  path: string;
  size: number;
  mode: number;
  mtimeMs: number;
}

/**
 * `chain` holds the manifests from the full backup (index 0) to the one restored (last).
 * Returns tasks with large work first, and the files written in several pieces.
 */
export function planRestore(chain: readonly Manifest[]): { tasks: RestoreTask[]; multi: MultiPieceFile[] } {
  const target = chain[chain.length - 1]!;
  const inChain = new Set(chain.map((m) => m.header.id));
  const objects = new Map<string, ObjectTask>();
  const rebuilds: RebuildTask[] = [];
  const empty: RestorePiece[] = [];
  const multi: MultiPieceFile[] = [];
  for (const f of target.files.values()) {
    const pieces = piecesOf(f);
    const whole = !f.parts;
    if (!whole) multi.push({ path: f.path, size: f.size, mode: f.mode, mtimeMs: f.mtimeMs });
    for (const p of pieces) {
      const piece: RestorePiece = { path: f.path, start: p.start, size: p.size, sha256: p.sha256, whole, mode: f.mode, mtimeMs: f.mtimeMs };
      if (p.object) {
        if (!inChain.has(p.object.backup)) throw new IntegrityError(`file '${f.path}' refers to backup '${p.object.backup}', which is not in the chain of '${target.header.id}'`);
        const key = `${p.object.backup}/${p.object.n}`;
        let t = objects.get(key);
        if (!t) objects.set(key, (t = { kind: 'object', backup: p.object.backup, n: p.object.n, pieces: [], bytes: 0 }));
        t.pieces.push({ ...piece, offset: p.object.offset });
        t.bytes += p.size;
      } else if (p.delta) {
        rebuilds.push({ kind: 'rebuild', piece, layers: layersOf(chain, chain.length - 1, f.path, p.start, p.start + p.size, target.header.blockSize), blockSize: target.header.blockSize, bytes: p.size });
      } else if (p.size === 0) {
        if (whole) empty.push(piece);
      } else {
        throw new IntegrityError(`file '${f.path}' of backup '${target.header.id}' has no stored content`);
      }
    }
  }
  for (const t of objects.values()) t.pieces.sort((a, b) => a.offset - b.offset);
  return { tasks: scheduleTasks([...objects.values(), ...rebuilds], empty), multi };
}

/**
 * The file a task writes one part of (a task of only that part), else undefined (scheduleTasks
 * interleaves such tasks with other files' work).
 */
export function partOf(t: RestoreTask): string | undefined {
  if (t.kind === 'empty') return undefined;
  const only = t.kind === 'object' ? (t.pieces.length === 1 ? t.pieces[0]! : undefined) : t.piece;
  return only && !only.whole ? only.path : undefined;
}

/**
 * Order tasks for a pool that hands them out in order. Parts of one file are interleaved with
 * parts of other files: parallel buffered writes into one file serialize on its inode lock
 * (ext4 and others), which costs CPU spinning, so concurrently running tasks should be of
 * different files as long as there are several. Within that, the largest work goes first.
 */
export function scheduleTasks(work: Array<ObjectTask | RebuildTask>, empty: RestorePiece[]): RestoreTask[] {
  const byFile = new Map<string, Array<ObjectTask | RebuildTask>>();
  const single: Array<ObjectTask | RebuildTask> = [];
  for (const t of work) {
    const path = partOf(t);
    if (path !== undefined) {
      const q = byFile.get(path) ?? [];
      q.push(t);
      byFile.set(path, q);
    } else single.push(t);
  }
  const startOf = (t: ObjectTask | RebuildTask) => (t.kind === 'object' ? t.pieces[0]!.start : t.piece.start);
  // Few files are large enough to have parts: scanning their queues per pick is cheap.
  const queues = [...byFile.entries()].map(([path, q]) => ({ path, q: q.sort((a, b) => startOf(a) - startOf(b)), left: q.reduce((n, t) => n + t.bytes, 0) }));
  single.sort((a, b) => b.bytes - a.bytes);
  const tasks: RestoreTask[] = [];
  let next = 0;
  let last: string | undefined;
  for (;;) {
    let best: (typeof queues)[number] | undefined;
    for (const x of queues) {
      if (x.q.length === 0 || x.path === last) continue;
      if (!best || x.left > best.left) best = x;
    }
    const lastQueue = queues.find((x) => x.path === last && x.q.length > 0);
    const s = single[next];
    if (best && (!s || best.left >= s.bytes)) {
      tasks.push(best.q.shift()!);
      best.left -= (tasks[tasks.length - 1] as ObjectTask | RebuildTask).bytes;
      last = best.path;
    } else if (s) {
      tasks.push(s);
      next++;
      last = undefined;
    } else if (lastQueue) {
      // Only the file just scheduled has parts left.
      const t = lastQueue.q.shift()!;
      lastQueue.left -= t.bytes;
      tasks.push(t);
    } else break;
  }
  if (empty.length > 0) tasks.push({ kind: 'empty', pieces: empty, bytes: 0 });
  return tasks;
}
