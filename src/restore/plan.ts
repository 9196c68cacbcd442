/**
 * What a restore writes and where each file's bytes come from (pure).
 *
 * A file stored whole is a slice of one object. A file stored as a block delta is rebuilt from
 * layers: the newest ancestor that stored it whole, then each delta up to the restored backup,
 * newest last; a block comes from the newest layer that holds it.
 */
import { IntegrityError } from '../common/errors.js';
import type { FileEntry, Manifest, ObjectRef } from '../backup/manifest.js';

export interface WholeLayer {
  kind: 'whole';
  backup: string;
  n: number;
  offset: number;
  size: number;
}

export interface DeltaLayer {
  kind: 'delta';
  backup: string;
  n: number;
  offset: number;
  size: number;
  blocks: Array<[number, number]>;
}

export type Layer = WholeLayer | DeltaLayer;

export interface RestoreFile {
  path: string;
  size: number;
  mode: number;
  mtimeMs: number;
  sha256: string;
}

/** Files stored whole in one object, read in one pass. */
export interface ObjectTask {
  kind: 'object';
  backup: string;
  n: number;
  files: Array<RestoreFile & { offset: number }>;
  bytes: number;
}

/** One file rebuilt from a chain of layers. */
export interface RebuildTask {
  kind: 'rebuild';
  file: RestoreFile;
  layers: Layer[];
  blockSize: number;
  bytes: number;
}

export interface EmptyFilesTask {
  kind: 'empty';
  files: RestoreFile[];
  bytes: 0;
}

export type RestoreTask = ObjectTask | RebuildTask | EmptyFilesTask;

/**
 * `chain` holds the manifests from the full backup (index 0) to the one restored (last).
 * Returns tasks with large work first.
 */
export function planRestore(chain: readonly Manifest[]): RestoreTask[] {
  const target = chain[chain.length - 1]!;
  const byBackup = new Map(chain.map((m, i) => [m.header.id, i]));
  const objects = new Map<string, ObjectTask>();
  const rebuilds: RebuildTask[] = [];
  const empty: RestoreFile[] = [];
  const addWhole = (f: FileEntry, ref: ObjectRef) => {
    if (!byBackup.has(ref.backup)) throw new IntegrityError(`file '${f.path}' refers to backup '${ref.backup}', which is not in the chain of '${target.header.id}'`);
    const key = `${ref.backup}/${ref.n}`;
    let t = objects.get(key);
    if (!t) objects.set(key, (t = { kind: 'object', backup: ref.backup, n: ref.n, files: [], bytes: 0 }));
    t.files.push({ ...restoreFile(f), offset: ref.offset });
    t.bytes += f.size;
  };
  for (const f of target.files.values()) {
    if (f.object) addWhole(f, f.object);
    else if (f.delta) rebuilds.push({ kind: 'rebuild', file: restoreFile(f), layers: layersOf(chain, chain.length - 1, f.path), blockSize: target.header.blockSize, bytes: f.size });
    else if (f.size === 0) empty.push(restoreFile(f));
    else throw new IntegrityError(`file '${f.path}' of backup '${target.header.id}' has no stored content`);
  }
  for (const t of objects.values()) t.files.sort((a, b) => a.offset - b.offset);
  const tasks: RestoreTask[] = [...objects.values(), ...rebuilds];
  tasks.sort((a, b) => b.bytes - a.bytes);
  if (empty.length > 0) tasks.push({ kind: 'empty', files: empty, bytes: 0 });
  return tasks;
}

function restoreFile(f: FileEntry): RestoreFile {
  return { path: f.path, size: f.size, mode: f.mode, mtimeMs: f.mtimeMs, sha256: f.sha256 };
}

/** Layers of `path` as of chain[index], oldest first. */
export function layersOf(chain: readonly Manifest[], index: number, path: string): Layer[] {
  const out: Layer[] = [];
  for (let i = index; i >= 0; i--) {
    const m = chain[i]!;
    const f = m.files.get(path);
    if (!f) throw new IntegrityError(`backup '${chain[i + 1]?.header.id ?? m.header.id}' stores '${path}' as changed blocks, but its parent '${m.header.id}' has no such file`);
    if (f.object) {
      out.push({ kind: 'whole', backup: f.object.backup, n: f.object.n, offset: f.object.offset, size: f.size });
      return out.reverse();
    }
    if (f.delta) {
      out.push({ kind: 'delta', backup: m.header.id, n: f.delta.n, offset: f.delta.offset, size: f.size, blocks: f.delta.blocks });
      continue;
    }
    // An empty file: nothing older matters.
    out.push({ kind: 'whole', backup: m.header.id, n: -1, offset: 0, size: 0 });
    return out.reverse();
  }
  throw new IntegrityError(`'${path}' is stored as changed blocks down to the full backup '${chain[0]!.header.id}', which does not hold it whole`);
}

/** Blocks a layer holds, ascending (a whole layer: all blocks of its size). */
export function* layerBlocks(l: Layer, blockSize: number): Generator<number> {
  if (l.kind === 'whole') {
    const n = Math.ceil(l.size / blockSize);
    for (let b = 0; b < n; b++) yield b;
    return;
  }
  for (const [first, count] of l.blocks) for (let b = first; b < first + count; b++) yield b;
}

/** Bytes of block `b` in a layer of file size `size`. */
export function blockLength(b: number, size: number, blockSize: number): number {
  return Math.max(0, Math.min(blockSize, size - b * blockSize));
}
