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

class Lz4ChunkedCompressor extends Transform {
  private buf = Buffer.allocUnsafe(CHUNK_SIZE);
  private filled = 0;
  private frames = 0;

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.fill(chunk).then(() => done(), done);
  }

  override _flush(done: TransformCallback): void {
    // Empty input still gets one (empty) frame so the output is a valid .lz4 file.
    const last = this.filled > 0 || this.frames === 0 ? this.compressChunk(this.buf.subarray(0, this.filled)) : Promise.resolve();
    last.then(() => done(), done);
  }

  private async fill(chunk: Buffer): Promise<void> {
    let pos = 0;
    while (pos < chunk.length) {
      const k = Math.min(CHUNK_SIZE - this.filled, chunk.length - pos);
      chunk.copy(this.buf, this.filled, pos, pos + k);
      this.filled += k;
      pos += k;
      if (this.filled === CHUNK_SIZE) {
        const full = this.buf;
        this.buf = Buffer.allocUnsafe(CHUNK_SIZE);
        this.filled = 0;
        await this.compressChunk(full);
      }
    }
  }

  private async compressChunk(data: Buffer): Promise<void> {
    this.frames++;
    this.push(await lz4.compressFrame(data, { contentChecksum: true }));
  }
}

function decodeBlock(block: Buffer, capacity: number, dict: Buffer | undefined): Promise<Buffer> {
  // lz4-napi's block API expects lz4_flex's size-prepended layout; the prefix is the output capacity.
  const input = Buffer.allocUnsafe(4 + block.length);
  input.writeUInt32LE(capacity, 0);
  block.copy(input, 4);
  return lz4.uncompress(input, dict);
}

export const lz4Codec: Codec = {
  name: 'lz4',
  defaultLevel: 1,
  compressor: () => new Lz4ChunkedCompressor(),
  decompressor: () => new Lz4FrameDecoder(decodeBlock),
};
