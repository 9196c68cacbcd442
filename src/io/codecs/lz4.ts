/**
 * LZ4 via lz4-napi (lz4_flex, prebuilt N-API binaries). The input is cut into 1 MiB chunks, each
 * written as one independent LZ4 frame (frame header built here) of independent blocks of
 * LZ4_BLOCK raw bytes, each compressed by the async (libuv threadpool) block encoder and stored
 * uncompressed when that is not smaller; `lz4 -d` decodes the concatenation. By default a frame
 * is one 1 MiB block, as pgark has always written it. PGARK_LZ4_BLOCK_KIB=64 (or 256) trades CPU
 * for memory (issue 17 item 4, docs/OPERATIONS.md "Memory"): lz4_flex allocates a worst-case
 * output per call and lz4-napi's mimalloc keeps the pages of its last freed outputs per pool
 * thread, far fewer of them when they are small (the agent on bulk-insert WAL: 130-140 → 96-105
 * MiB peak RSS), but the memory that returns is faulted in again and blocks are copied into their
 * frame: +9-18 % of the agent's CPU per segment, ~+15 % for a backup of poorly compressible data,
 * stored sizes +1-4 % (bench/results/memory.md "64 KiB lz4 blocks"). The frames carry no xxHash32
 * content checksum: every repository object already has a sha256 of its raw bytes in its trailer,
 * verified on every read, and the checksum cost a quarter of the compressor's CPU
 * (bench/results/agent.md). Frames of any of these layouts, and those of lz4_flex's frame encoder
 * with content checksums (earlier versions), decode alike. lz4_flex has only the fast mode, so
 * the level is accepted for interface compatibility and ignored. Decoding does not use lz4-napi
 * (lz4-decode.ts).
 */
import { Transform, type TransformCallback } from 'node:stream';
import lz4 from 'lz4-napi';
import type { Codec } from '../codec.js';
import { lz4Decompressor } from './lz4-decode.js';
import { xxh32 } from './xxhash32.js';
import { BufferPool, releaseBuffer } from '../buffer-pool.js';
import { noteGarbage } from '../../common/gc-budget.js';
import { freeNow } from '../free-once-written.js';
import { lz4OnCallingThread } from './lz4-thread.js';

const CHUNK_SIZE = 1024 * 1024;

/** The block sizes PGARK_LZ4_BLOCK_KIB may choose, KiB → the frame descriptor's BD byte (block maximum). */
const BLOCK_MAXIMUM: Record<string, number> = { 64: 0x40, 256: 0x50, 1024: 0x70 };

/**
 * Raw bytes per lz4 block from PGARK_LZ4_BLOCK_KIB (unset or empty: 1024, one block per frame);
 * anything else than 64, 256 or 1024 is refused with the reason.
 */
export function lz4BlockSize(setting: string | undefined): number {
  const v = (setting ?? '').trim();
  if (v === '') return CHUNK_SIZE;
  if (!Object.hasOwn(BLOCK_MAXIMUM, v)) throw new Error(`PGARK_LZ4_BLOCK_KIB must be 64, 256 or 1024 (KiB of raw bytes per lz4 block; unset: 1024), not '${v}'`);
  return Number(v) * 1024;
}

/** Raw bytes per block: a frame of CHUNK_SIZE holds CHUNK_SIZE / LZ4_BLOCK of them, compressed at once on the threadpool. */
export const LZ4_BLOCK = lz4BlockSize(process.env.PGARK_LZ4_BLOCK_KIB);
/** Frames being compressed on the threadpool at once per stream: the next chunk fills meanwhile. */
const MAX_IN_FLIGHT = 2;

/**
 * Frame header of every frame we write: magic, FLG = version 01 + independent blocks (no block or
 * content checksum, no content size, no dictionary), BD = the block maximum (4 MiB for one block
 * of 1 MiB per frame, as always written; 64 or 256 KiB), header checksum.
 */
const FRAME_DESCRIPTOR = Buffer.from([0x60, BLOCK_MAXIMUM[String(LZ4_BLOCK / 1024)]!]);
/** The frame header (read only: only ever copied). */
export const LZ4_FRAME_HEADER = Buffer.from([0x04, 0x22, 0x4d, 0x18, ...FRAME_DESCRIPTOR, (xxh32(FRAME_DESCRIPTOR) >>> 8) & 0xff]);
/** Block size field flag: the block is stored uncompressed. */
const UNCOMPRESSED = 0x80000000;

/** Bytes before a frame's first block size field: the frame header. */
export const LZ4_FRAME_HEAD_SIZE = LZ4_FRAME_HEADER.length;
/** Bytes after a frame's last block: the end mark. */
export const LZ4_FRAME_END_SIZE = 4;

/** Write a block size field: `blockSize` bytes follow, stored uncompressed if `raw`. */
export function writeLz4BlockSize(dst: Buffer, at: number, blockSize: number, raw: boolean): void {
  dst.writeUInt32LE(raw ? (blockSize | UNCOMPRESSED) >>> 0 : blockSize, at);
}

/** Write a frame's end mark into `dst` at `at`. */
export function writeLz4FrameEnd(dst: Buffer, at: number): void {
  dst.writeUInt32LE(0, at);
}

/**
 * The block of `data` (not empty, at most LZ4_BLOCK bytes): lz4's compressed block, or undefined
 * when it would not be smaller than `data` (then the frame stores `data` itself, uncompressed).
 * The block is a view of a fresh buffer of lz4-napi's (its whole ArrayBuffer: the caller may free
 * it, free-once-written.ts), holding about `data.length` in memory until collected or freed
 * (lz4_flex allocates the worst case). Compressed on libuv's threadpool, or synchronously on
 * this thread when the process chose so (lz4-thread.ts): then `data` is no longer read once this
 * returns its promise, and a block that is not used is freed at once.
 */
export async function compressLz4Block(data: Buffer): Promise<Buffer | undefined> {
  // lz4_flex's block layout: the uncompressed size (u32 LE), then the block.
  const out = lz4OnCallingThread() ? lz4.compressSync(data) : await lz4.compress(data);
  if (out.length < 4 || out.readUInt32LE(0) !== data.length) throw new Error('lz4 block encoder returned an unexpected layout');
  const block = out.subarray(4);
  if (block.length < data.length) return block;
  if (lz4OnCallingThread()) freeNow(out);
  return undefined;
}

/**
 * The blocks of the frame holding `data` (at most one chunk): each LZ4_BLOCK of it compressed
 * on the threadpool, all at once. Settles when all have (rejects with the first failure, after
 * every block has settled: none still reads `data` then).
 */
export async function compressLz4Blocks(data: Buffer): Promise<Array<Buffer | undefined>> {
  const blocks: Array<Promise<Buffer | undefined>> = [];
  for (let at = 0; at < data.length; at += LZ4_BLOCK) blocks.push(compressLz4Block(data.subarray(at, Math.min(at + LZ4_BLOCK, data.length))));
  const settled = await Promise.allSettled(blocks);
  return settled.map((s) => {
    if (s.status === 'rejected') throw s.reason;
    return s.value;
  });
}

/**
 * The frame holding `data`, without its end mark (the caller writes it, or glues it to what
 * follows): `lead` (what goes before the frame) and the frame header, then each block of
 * `blocks` (compressLz4Blocks(data)) after its size field, the raw piece of `data` where a block
 * is undefined. One block: [lead + header + size field, the block as lz4 returned it, or a copy
 * of the raw bytes], so that a frame costs two writes and no copy of compressed bytes. Several:
 * one fresh buffer with everything (sixteen writes per MiB would cost more than the copy).
 * Every part is fresh (raw bytes are copied: the caller recycles `data`). Empty `data`: lead and
 * header only. The frame's body (the block, the copy, or the buffer of several blocks) is a
 * buffer of its own, which the caller may free once written (free-once-written.ts); the head is
 * not. `rawInPlace`: a stored block is `data` itself, not a copy (the caller then keeps `data`'s
 * buffer until the frame is written).
 */
export function lz4FrameParts(data: Buffer, blocks: Array<Buffer | undefined>, lead: Buffer = EMPTY, rawInPlace = false): Buffer[] {
  if (blocks.length === 1) {
    const head = Buffer.allocUnsafe(lead.length + LZ4_FRAME_HEAD_SIZE + 4);
    lead.copy(head, 0);
    LZ4_FRAME_HEADER.copy(head, lead.length);
    const body = blocks[0] ?? (rawInPlace ? data : copyOf(data));
    writeLz4BlockSize(head, lead.length + LZ4_FRAME_HEAD_SIZE, body.length, blocks[0] === undefined);
    return [head, body];
  }
  let size = lead.length + LZ4_FRAME_HEAD_SIZE;
  for (let i = 0; i < blocks.length; i++) size += 4 + (blocks[i]?.length ?? Math.min(LZ4_BLOCK, data.length - i * LZ4_BLOCK));
  const out = Buffer.allocUnsafeSlow(size);
  let at = lead.copy(out, 0);
  at += LZ4_FRAME_HEADER.copy(out, at);
  for (let i = 0; i < blocks.length; i++) {
    const block = blocks[i];
    const body = block ?? data.subarray(i * LZ4_BLOCK, Math.min((i + 1) * LZ4_BLOCK, data.length));
    writeLz4BlockSize(out, at, body.length, block === undefined);
    at += 4;
    at += body.copy(out, at);
  }
  return [out];
}

const EMPTY = Buffer.alloc(0);

/** A copy of `data` in a buffer of its own (never a slice of Node's shared pool: its owner may free it). */
function copyOf(data: Buffer): Buffer {
  const b = Buffer.allocUnsafeSlow(data.length);
  data.copy(b);
  return b;
}

/**
 * What writing a frame leaves to the collector: lz4-napi's outputs (about the input's size
 * whatever the blocks', lz4_flex allocates the worst case; counting only the blocks' bytes let
 * several times the garbage budget pile up on compressible WAL) and whatever lz4FrameParts
 * copied (the assembled frame of several blocks, or the copy of one raw block).
 */
export function lz4FrameGarbage(data: Buffer, blocks: Array<Buffer | undefined>, parts: Buffer[]): number {
  const copied = blocks.length === 1 ? (blocks[0] === undefined ? data.length : 0) : parts.reduce((n, p) => n + p.length, 0);
  return data.length + copied;
}

/** The frame of empty input: a header and an end mark (no block). */
export function emptyLz4Frame(): Buffer {
  const b = Buffer.allocUnsafe(LZ4_FRAME_HEAD_SIZE + LZ4_FRAME_END_SIZE);
  LZ4_FRAME_HEADER.copy(b, 0);
  writeLz4FrameEnd(b, LZ4_FRAME_HEAD_SIZE);
  return b;
}

class Lz4ChunkedCompressor extends Transform {
  /** Staging buffers for input that does not arrive in whole 1 MiB chunks, recycled per frame. */
  private readonly staging = new BufferPool(CHUNK_SIZE, MAX_IN_FLIGHT + 1);
  private buf: Buffer | undefined;
  private filled = 0;
  private started = 0;
  private readonly inFlight: Array<{ blocks: Promise<Array<Buffer | undefined>>; data: Buffer; input: Buffer }> = [];

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.fill(chunk).then(() => done(), done);
  }

  override _flush(done: TransformCallback): void {
    // Empty input still gets one (empty) frame so the output is a valid .lz4 file.
    if (this.filled > 0 || this.started === 0) this.start((this.buf ?? Buffer.alloc(0)).subarray(0, this.filled), this.buf);
    this.buf = undefined;
    this.filled = 0;
    this.drain(0).then(() => done(), done);
  }

  private async fill(chunk: Buffer): Promise<void> {
    if (this.filled === 0 && chunk.length === CHUNK_SIZE) {
      // A whole chunk is compressed in place; a pooled chunk goes back to its pool afterwards.
      this.start(chunk, chunk);
      await this.drain(MAX_IN_FLIGHT - 1);
      return;
    }
    let pos = 0;
    while (pos < chunk.length) {
      this.buf ??= this.staging.acquire();
      const k = Math.min(CHUNK_SIZE - this.filled, chunk.length - pos);
      chunk.copy(this.buf, this.filled, pos, pos + k);
      this.filled += k;
      pos += k;
      if (this.filled === CHUNK_SIZE) {
        this.start(this.buf, this.buf);
        this.buf = undefined;
        this.filled = 0;
        await this.drain(MAX_IN_FLIGHT - 1);
      }
    }
    releaseBuffer(chunk); // copied: the producer may reuse it
  }

  private start(data: Buffer, input: Buffer | undefined): void {
    this.started++;
    const blocks = compressLz4Blocks(data);
    blocks.catch(() => undefined); // rejection is delivered by drain(); avoid an unhandled-rejection report meanwhile
    this.inFlight.push({ blocks, data, input: input ?? data });
  }

  private async drain(keep: number): Promise<void> {
    while (this.inFlight.length > keep) {
      const { blocks, data, input } = this.inFlight.shift()!;
      let parts: Buffer[];
      let done: Array<Buffer | undefined>;
      try {
        done = await blocks;
        parts = data.length === 0 ? [Buffer.from(LZ4_FRAME_HEADER)] : lz4FrameParts(data, done);
      } finally {
        releaseBuffer(input);
      }
      noteGarbage(lz4FrameGarbage(data, done, parts));
      for (const part of parts) this.push(part);
      this.push(Buffer.alloc(LZ4_FRAME_END_SIZE));
    }
  }
}

export const lz4Codec: Codec = {
  name: 'lz4',
  defaultLevel: 1,
  compressor: () => new Lz4ChunkedCompressor(),
  // Decoding is JavaScript (lz4-decode.ts), as on every read path: lz4-napi only compresses.
  decompressor: (o) => lz4Decompressor(o),
};
