/**
 * The lz4 decompressor stream, decoded in JavaScript (lz4-block.ts) without lz4-napi: every
 * object a restore, a wal-fetch or a clone reads (manifests, catalogs, encrypted data objects)
 * is decoded without loading the native module and its per-thread allocator (issue 17 item 4).
 * Frames are parsed by Lz4FrameParser (lz4-frame-decoder.ts): frames pgark writes (independent
 * 1 MiB blocks, no checksums) and frames other writers made (linked blocks, block and content
 * checksums, content size, the 4 MiB block maximum of earlier versions) alike.
 *
 * A stream consumer may keep what it is pushed, so each block is decoded into one scratch
 * buffer per thread ([history | block]) and handed on as a copy of exactly its decoded size:
 * no 4 MiB buffer per block for frames that declare a 4 MiB maximum.
 */
import type { Transform } from 'node:stream';
import { noteGarbage } from '../../common/gc-budget.js';
import { decodeLz4BlockInto } from './lz4-block.js';
import { Lz4FrameDecoder } from './lz4-frame-decoder.js';

/** Linked lz4 blocks may refer to the 64 KiB of output before them. */
const HISTORY = 64 * 1024;

/** [history | block], reused block after block (decoding is synchronous: one per thread is enough). */
let scratch: Buffer | undefined;

/** One lz4 block, `capacity` the frame's block maximum, `dict` the output before it (linked blocks). Returns a fresh buffer. */
export function decodeLz4Block(block: Buffer, capacity: number, dict: Buffer | undefined): Buffer {
  const need = HISTORY + capacity;
  if (scratch === undefined || scratch.length < need) scratch = Buffer.allocUnsafeSlow(need);
  let start = 0;
  if (dict !== undefined && dict.length > 0) {
    dict.copy(scratch, 0);
    start = dict.length;
  }
  const n = decodeLz4BlockInto(block, 0, block.length, scratch, start, start + capacity);
  const out = Buffer.allocUnsafe(n);
  scratch.copy(out, 0, start, start + n);
  // Garbage once the consumer is done with it (gc-budget.ts).
  noteGarbage(n);
  return out;
}

/** See Codec.decompressor (codec.ts): `contentChecksums` verifies the frames' own xxHash32 content checksums. */
export function lz4Decompressor(o?: { contentChecksums?: boolean; ownsInput?: boolean }): Transform {
  return new Lz4FrameDecoder(decodeLz4Block, o?.contentChecksums ?? true, false);
}
