/**
 * LZ4 via lz4-napi (lz4_flex, prebuilt N-API binaries). The input is cut into 1 MiB chunks, each
 * written as an independent LZ4 frame with a content checksum by the async (libuv threadpool)
 * frame encoder; `lz4 -d` decodes the concatenation. lz4_flex has only the fast mode, so the level
 * is accepted for interface compatibility and ignored.
 */
import { Transform, type TransformCallback } from 'node:stream';
import lz4 from 'lz4-napi';
import type { Codec } from '../codec.js';
import { Lz4FrameDecoder } from './lz4-frame-decoder.js';

const CHUNK_SIZE = 1024 * 1024;
/** Frames being compressed on the threadpool at once per stream: the next chunk fills meanwhile. */
const MAX_IN_FLIGHT = 2;

class Lz4ChunkedCompressor extends Transform {
  private buf = Buffer.allocUnsafe(CHUNK_SIZE);
  private filled = 0;
  private started = 0;
  private readonly inFlight: Promise<Buffer>[] = [];

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.fill(chunk).then(() => done(), done);
  }

  override _flush(done: TransformCallback): void {
    // Empty input still gets one (empty) frame so the output is a valid .lz4 file.
    if (this.filled > 0 || this.started === 0) this.start(this.buf.subarray(0, this.filled));
    this.drain(0).then(() => done(), done);
  }

  private async fill(chunk: Buffer): Promise<void> {
    let pos = 0;
    while (pos < chunk.length) {
      const k = Math.min(CHUNK_SIZE - this.filled, chunk.length - pos);
      chunk.copy(this.buf, this.filled, pos, pos + k);
      this.filled += k;
      pos += k;
      if (this.filled === CHUNK_SIZE) {
        this.start(this.buf);
        this.buf = Buffer.allocUnsafe(CHUNK_SIZE);
        this.filled = 0;
        await this.drain(MAX_IN_FLIGHT - 1);
      }
    }
  }

  private start(data: Buffer): void {
    this.started++;
    const frame = lz4.compressFrame(data, { contentChecksum: true });
    frame.catch(() => undefined); // rejection is delivered by drain(); avoid an unhandled-rejection report meanwhile
    this.inFlight.push(frame);
  }

  private async drain(keep: number): Promise<void> {
    while (this.inFlight.length > keep) this.push(await this.inFlight.shift()!);
  }
}

/** Our own frames never hold blocks above 1 MiB, although lz4_flex declares a 4 MiB block maximum. */
const LIKELY_BLOCK_SIZE = CHUNK_SIZE;

function decodeBlock(block: Buffer, capacity: number, dict: Buffer | undefined): Buffer {
  // lz4-napi's block API expects lz4_flex's size-prepended layout, whose prefix is used as the output
  // capacity. Decoding is markedly slower with a 4 MiB capacity than with 1 MiB, so try the size our
  // compressor writes first and fall back to the frame's maximum (for frames written by other tools).
  const input = Buffer.allocUnsafe(4 + block.length);
  block.copy(input, 4);
  if (capacity > LIKELY_BLOCK_SIZE) {
    input.writeUInt32LE(LIKELY_BLOCK_SIZE, 0);
    try {
      return lz4.uncompressSync(input, dict);
    } catch {
      // retried below with the full capacity; a corrupt block fails there too
    }
  }
  input.writeUInt32LE(capacity, 0);
  return lz4.uncompressSync(input, dict);
}

export const lz4Codec: Codec = {
  name: 'lz4',
  defaultLevel: 1,
  compressor: () => new Lz4ChunkedCompressor(),
  decompressor: (o) => new Lz4FrameDecoder(decodeBlock, o?.contentChecksums ?? true),
};
