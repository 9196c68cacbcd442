/**
 * The layers a block-delta piece of a file is rebuilt from (pure): going back through the chain,
 * every piece of the same path overlapping it, until a backup stored that range whole; a block
 * comes from the newest layer that holds it. Restore (restore/plan.ts) and verify use it.
 */
import { IntegrityError } from '../common/errors.js';
import { piecesOf, type Manifest } from './manifest.js';

export interface Layer {
  kind: 'whole' | 'delta';
  backup: string;
  /** Object number; -1 for an empty piece. */
  n: number;
  offset: number;
  /** Byte offset of the piece in the file, and its size. */
  start: number;
  size: number;
  blocks?: Array<[number, number]>;
}

/** Layers for bytes [from, to) of `path` as of chain[index], oldest first. */
export function layersOf(chain: readonly Manifest[], index: number, path: string, from: number, to: number, blockSize: number): Layer[] {
  const out: Layer[] = [];
  for (let i = index; i >= 0; i--) {
    const m = chain[i]!;
    const f = m.files.get(path);
    if (!f) throw new IntegrityError(`backup '${chain[i + 1]?.header.id ?? m.header.id}' stores '${path}' as changed blocks, but its parent '${m.header.id}' has no such file`);
    const over = piecesOf(f).filter((p) => p.start < to && p.start + p.size > from);
    let anyDelta = false;
    for (const p of over.reverse()) {
      if (p.start % blockSize !== 0) throw new IntegrityError(`'${path}' in backup '${m.header.id}' has a part that does not start on a block boundary`);
      if (p.delta) {
        anyDelta = true;
        if (p.delta.blocks.length === 0) continue; // every block from the parent (backup/unchanged.ts): nothing to read here
        out.push({ kind: 'delta', backup: m.header.id, n: p.delta.n, offset: p.delta.offset, start: p.start, size: p.size, blocks: p.delta.blocks });
      } else if (p.object) {
        if (!chain.slice(0, i + 1).some((c) => c.header.id === p.object!.backup)) {
          throw new IntegrityError(`file '${path}' in backup '${m.header.id}' refers to backup '${p.object.backup}', which is not in the chain of '${chain[index]!.header.id}'`);
        }
        out.push({ kind: 'whole', backup: p.object.backup, n: p.object.n, offset: p.object.offset, start: p.start, size: p.size });
      }
    }
    if (!anyDelta) return out.reverse();
  }
  throw new IntegrityError(`'${path}' is stored as changed blocks down to the full backup '${chain[0]!.header.id}', which does not hold it whole`);
}

/** Blocks a layer holds, ascending (a whole layer: every block of its range). */
export function* layerBlocks(l: Layer, blockSize: number): Generator<number> {
  if (l.kind === 'whole') {
    const first = l.start / blockSize;
    const end = Math.ceil((l.start + l.size) / blockSize);
    for (let b = first; b < end; b++) yield b;
    return;
  }
  for (const [first, count] of l.blocks ?? []) for (let b = first; b < first + count; b++) yield b;
}

/** Bytes of block `b` in a range ending at byte `end` of the file. */
export function blockLength(b: number, end: number, blockSize: number): number {
  return Math.max(0, Math.min(blockSize, end - b * blockSize));
}
