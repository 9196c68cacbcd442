/**
 * Cutting a put body into blocks (pure stream logic, no SDK).
 */
import { randomBytes } from 'node:crypto';

/** Azure's limit on the blocks of one blob. */
export const MAX_BLOCKS = 50_000;

export interface Block {
  data: Buffer;
  /** True for the final block; a body that fits one block arrives as one block with last set. */
  last: boolean;
}

function toBuffer(chunk: unknown): Buffer {
  if (Buffer.isBuffer(chunk)) return chunk;
  if (typeof chunk === 'string') return Buffer.from(chunk);
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  throw new TypeError('put body yielded a chunk that is not a Buffer, Uint8Array or string');
}

function join(parts: Buffer[], len: number): Buffer {
  return parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts, len);
}

/**
 * Yield `body` as blocks of exactly `blockSize` bytes, the last one shorter (or empty when the
 * body is empty). A full block is held back until the next byte or the end of the body shows
 * whether it is the last, so a body of at most one block is recognised as such. Holds at most
 * one block plus one chunk; the body is read only as fast as the consumer takes blocks.
 */
export async function* readBlocks(body: AsyncIterable<unknown> | Iterable<unknown>, blockSize: number): AsyncGenerator<Block, void, undefined> {
  let parts: Buffer[] = [];
  let len = 0;
  let held: Buffer | undefined;
  let yielded = 0;
  for await (const chunk of body) {
    let buf = toBuffer(chunk);
    if (buf.length === 0) continue;
    if (held) {
      yield { data: held, last: false };
      yielded++;
      held = undefined;
    }
    while (buf.length > 0) {
      const take = Math.min(blockSize - len, buf.length);
      parts.push(take === buf.length ? buf : buf.subarray(0, take));
      len += take;
      buf = buf.subarray(take);
      if (len === blockSize) {
        const block = join(parts, len);
        parts = [];
        len = 0;
        if (buf.length > 0) {
          yield { data: block, last: false };
          yielded++;
        } else {
          held = block;
        }
      }
    }
  }
  if (held) yield { data: held, last: true };
  else if (len > 0 || yielded === 0) yield { data: join(parts, len), last: true };
}

/** A random id for one put: names its blocks and marks the blob it commits. */
export function newPutId(): string {
  return randomBytes(8).toString('hex');
}

/**
 * Block ids must be base64 and of one length within a blob. The put id keeps concurrent writers
 * of the same blob from overwriting each other's uncommitted blocks.
 */
export function blockId(putId: string, index: number): string {
  return Buffer.from(`${putId}-${String(index).padStart(6, '0')}`).toString('base64');
}
