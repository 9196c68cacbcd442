/**
 * zstd via zstd-napi. Compression always writes the frame checksum; libzstd verifies it on
 * decompression and skips skippable frames itself. zstd-napi has no async API, so both directions
 * run on the calling thread (its nbWorkers option measured slower; see bench/results/codecs.md).
 */
import { Transform, type TransformCallback } from 'node:stream';
import zstd from 'zstd-napi';
import binding from 'zstd-napi/binding.js';
import { IntegrityError } from '../../common/errors.js';
import type { Codec } from '../codec.js';

const OUT_SIZE = binding.dStreamOutSize();

class ZstdDecompressor extends Transform {
  private readonly dctx = new binding.DCtx();
  /** Replaced only once handed downstream, so tiny input chunks do not allocate per call. */
  private out = Buffer.allocUnsafe(OUT_SIZE);
  private midFrame = false;
  private sawInput = false;

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    if (chunk.length > 0) this.sawInput = true;
    try {
      let src = chunk;
      for (;;) {
        const out = this.out;
        const [ret, produced, consumed] = this.dctx.decompressStream(out, src);
        if (produced > 0) {
          this.push(out.subarray(0, produced));
          this.out = Buffer.allocUnsafe(OUT_SIZE);
        }
        src = src.subarray(consumed);
        // ret is 0 only on the call that completes a frame; an idle call after that reports the next header size.
        if (consumed > 0 || produced > 0) this.midFrame = ret !== 0;
        // Output buffer not filled up means libzstd holds no more decodable output for this input.
        if (src.length === 0 && produced < out.length) break;
      }
    } catch (err) {
      return done(new IntegrityError(`corrupt zstd stream: ${(err as Error).message}`, { cause: err }));
    }
    done();
  }

  override _flush(done: TransformCallback): void {
    if (!this.sawInput) return done(new IntegrityError('corrupt zstd stream: empty input'));
    if (this.midFrame) return done(new IntegrityError('corrupt zstd stream: truncated input'));
    done();
  }
}

export const zstdCodec: Codec = {
  name: 'zstd',
  defaultLevel: 3,
  compressor: (level = 3) => new zstd.CompressStream({ compressionLevel: level, checksumFlag: true }),
  decompressor: () => new ZstdDecompressor(),
};
