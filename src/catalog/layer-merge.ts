/**
 * A block-delta piece of a file rebuilt from its layers (chain-layers.ts), streamed: every layer's
 * object is read once, in order, side by side, and each block is taken from the newest layer
 * that holds it (the others skip it). Memory is what the open readers hold, whatever the size of
 * the file. Restore (restore/restore-worker.ts) writes the bytes, verify
 * (catalog/delta-check.ts) hashes them; both compare the result with the manifest.
 */
import { IntegrityError } from '../common/errors.js';
import { blockLength, layerBlocks, type Layer } from './chain-layers.js';

/** A layer's bytes from its offset in its object on: the blocks it holds, back to back. */
export interface BlockSource {
  /** Exactly `n` bytes as one or more slices, each valid until the next is asked for. */
  take(n: number): AsyncIterable<Buffer>;
  skip(n: number): Promise<void>;
  close(): Promise<void>;
}

/** Bytes [start, start + size) of `path`. */
export interface MergedPiece {
  path: string;
  start: number;
  size: number;
}

interface Cursor {
  layer: Layer;
  source: BlockSource | undefined;
  blocks: Generator<number>;
  next: IteratorResult<number>;
}

export class LayerMerge {
  private constructor(private readonly piece: MergedPiece, private readonly blockSize: number, private readonly cursors: Cursor[]) {}

  /**
   * Opens every layer (an empty piece, n < 0, has no object) and skips its blocks before the
   * piece. On failure the sources already open are closed.
   */
  static async open(layers: readonly Layer[], piece: MergedPiece, blockSize: number, open: (l: Layer) => Promise<BlockSource>): Promise<LayerMerge> {
    const firstBlock = piece.start / blockSize;
    const cursors: Cursor[] = [];
    try {
      for (const l of layers) {
        const source = l.n < 0 ? undefined : await open(l);
        const blocks = layerBlocks(l, blockSize);
        const c: Cursor = { layer: l, source, blocks, next: blocks.next() };
        cursors.push(c);
        while (!c.next.done && c.next.value < firstBlock) {
          await source?.skip(blockLength(c.next.value, l.start + l.size, blockSize));
          c.next = blocks.next();
        }
      }
    } catch (err) {
      await closeAll(cursors);
      throw err;
    }
    return new LayerMerge(piece, blockSize, cursors);
  }

  /** The piece's bytes, in order, to `write` (a chunk is valid only during the call). */
  async copy(write: (chunk: Buffer) => void): Promise<void> {
    const { piece: p, blockSize: bs, cursors } = this;
    const endBlock = Math.ceil((p.start + p.size) / bs);
    for (let b = p.start / bs; b < endBlock; b++) {
      let provider = -1;
      for (let i = cursors.length - 1; i >= 0 && provider < 0; i--) {
        const c = cursors[i]!;
        if (!c.next.done && c.next.value === b) provider = i;
      }
      if (provider < 0) throw new IntegrityError(`unable to rebuild '${p.path}': no backup in the chain holds block ${b}`);
      for (let i = 0; i < cursors.length; i++) {
        const c = cursors[i]!;
        if (c.next.done || c.next.value !== b) continue;
        const len = blockLength(b, c.layer.start + c.layer.size, bs);
        if (i === provider) {
          const want = blockLength(b, p.start + p.size, bs);
          if (len !== want) throw new IntegrityError(`unable to rebuild '${p.path}': block ${b} is ${len} bytes in backup '${c.layer.backup}', ${want} expected`);
          for await (const chunk of c.source!.take(len)) write(chunk);
        } else {
          await c.source?.skip(len);
        }
        c.next = c.blocks.next();
      }
    }
  }

  async close(): Promise<void> {
    await closeAll(this.cursors);
  }
}

async function closeAll(cursors: Cursor[]): Promise<void> {
  for (const c of cursors) await c.source?.close();
}

/** The backups a piece's layers come from, oldest first, for messages. */
export function layerBackups(layers: readonly Layer[]): string[] {
  return [...new Set(layers.map((l) => l.backup))];
}
