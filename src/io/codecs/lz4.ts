/**
 * LZ4 via lz4-napi (lz4_flex, prebuilt N-API binaries). The input is cut into 1 MiB chunks, each
 * compressed as one LZ4 block by the async (libuv threadpool) block encoder and written as an
 * independent LZ4 frame of that single block (frame header built here); `lz4 -d` decodes the
 * concatenation. The frames carry no xxHash32 content checksum: every repository object already
 * has a sha256 of its raw bytes in its trailer, verified on every read, and the checksum cost a
 * quarter of the compressor's CPU (bench/results/agent.md). Frames written by earlier versions
 * (lz4_flex's frame encoder, with content checksums) decode as before. lz4_flex has only the fast
 * mode, so the level is accepted for interface compatibility and ignored. Decoding does not use
 * lz4-napi (lz4-decode.ts).
 */
import { Transform, type TransformCallback } from 'node:stream';
import lz4 from 'lz4-napi';
import type { Codec } from '../codec.js';
import { lz4Decompressor } from './lz4-decode.js';
import { xxh32 } from './xxhash32.js';
import { BufferPool, releaseBuffer } from '../buffer-pool.js';
import { noteGarbage } from '../../common/gc-budget.js';

const CHUNK_SIZE = 1024 * 1024;
/** Frames being compressed on the threadpool at once per stream: the next chunk fills meanwhile. */
const MAX_IN_FLIGHT = 2;

/**
 * Frame header of every frame we write: magic, FLG = version 01 + independent blocks (no block or
 * content checksum, no content size, no dictionary), BD = 4 MiB block maximum, header checksum.
 */
const FRAME_DESCRIPTOR = Buffer.from([0x60, 0x70]);
const FRAME_HEADER = Buffer.from([0x04, 0x22, 0x4d, 0x18, ...FRAME_DESCRIPTOR, (xxh32(FRAME_DESCRIPTOR) >>> 8) & 0xff]);
/** Block size field flag: the block is stored uncompressed. */
const UNCOMPRESSED = 0x80000000;

/** Bytes before a frame's block: the frame header and the block size field. */
export const LZ4_FRAME_HEAD_SIZE = FRAME_HEADER.length + 4;
/** Bytes after a frame's block: the end mark. */
export const LZ4_FRAME_END_SIZE = 4;

/** Write the head of a frame whose one block is `blockSize` bytes (stored uncompressed if `raw`) into `dst` at `at`. */
export function writeLz4FrameHead(dst: Buffer, at: number, blockSize: number, raw: boolean): void {
  FRAME_HEADER.copy(dst, at);
  dst.writeUInt32LE(raw ? (blockSize | UNCOMPRESSED) >>> 0 : blockSize, at + FRAME_HEADER.length);
}

/** Write a frame's end mark into `dst` at `at`. */
export function writeLz4FrameEnd(dst: Buffer, at: number): void {
  dst.writeUInt32LE(0, at);
}

/**
 * The block of a frame holding `data` (not empty): lz4's compressed block, or undefined when it
 * would not be smaller than `data` (then the frame stores `data` itself, uncompressed). The block
 * is a fresh buffer of lz4-napi's; what it holds in memory until collected is about `data.length`
 * (lz4_flex allocates the worst case), which is what callers count as garbage.
 */
export async function compressLz4Block(data: Buffer): Promise<Buffer | undefined> {
  // lz4_flex's block layout: the uncompressed size (u32 LE), then the block.
  const out = await lz4.compress(data);
  if (out.length < 4 || out.readUInt32LE(0) !== data.length) throw new Error('lz4 block encoder returned an unexpected layout');
  const block = out.subarray(4);
  return block.length >= data.length ? undefined : block;
}

/**
 * One LZ4 frame holding `data` as a single block: [header + block size, block, end mark]. Every
 * part is a fresh buffer (never a shared constant): consumers may own what they are handed.
 */
export async function compressOneFrame(data: Buffer): Promise<Buffer[]> {
  const head = Buffer.allocUnsafe(LZ4_FRAME_HEAD_SIZE);
  if (data.length === 0) {
    FRAME_HEADER.copy(head, 0);
    return [head.subarray(0, FRAME_HEADER.length), Buffer.alloc(4)];
  }
  const block = await compressLz4Block(data);
  if (!block) {
    // Incompressible: stored as is (a copy: the caller recycles `data`).
    writeLz4FrameHead(head, 0, data.length, true);
    return [head, Buffer.from(data), Buffer.alloc(4)];
  }
  writeLz4FrameHead(head, 0, block.length, false);
  return [head, block, Buffer.alloc(4)];
}

/** The frame of empty input: a header and an end mark (no block). */
export function emptyLz4Frame(): Buffer {
  const b = Buffer.allocUnsafe(FRAME_HEADER.length + 4);
  FRAME_HEADER.copy(b, 0);
  b.writeUInt32LE(0, FRAME_HEADER.length);
  return b;
}

class Lz4ChunkedCompressor extends Transform {
  /** Staging buffers for input that does not arrive in whole 1 MiB chunks, recycled per frame. */
  private readonly staging = new BufferPool(CHUNK_SIZE, MAX_IN_FLIGHT + 1);
  private buf: Buffer | undefined;
  private filled = 0;
  private started = 0;
  private readonly inFlight: Array<{ frame: Promise<Buffer[]>; input: Buffer }> = [];

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
    const frame = compressOneFrame(data);
    frame.catch(() => undefined); // rejection is delivered by drain(); avoid an unhandled-rejection report meanwhile
    this.inFlight.push({ frame, input: input ?? data });
  }

  private async drain(keep: number): Promise<void> {
    while (this.inFlight.length > keep) {
      const { frame, input } = this.inFlight.shift()!;
      const parts = await frame;
      releaseBuffer(input);
      // lz4-napi's buffer: garbage once written out, of about the input's size whatever the
      // block's (lz4_flex allocates the worst case); counting only the block's bytes let several
      // times the garbage budget pile up on compressible WAL.
      noteGarbage(Math.max(input.length, parts.reduce((n, p) => n + p.length, 0)));
      for (const part of parts) this.push(part);
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
