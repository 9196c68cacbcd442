// pgark's zstd codec as it was until built-in zstd replaced it (src/io/codecs/zstd.ts before
// issue 16): zstd-napi's CompressStream, and a decompressor over its DCtx binding. Used by
// bench/codecs.mjs only while zstd-napi is installed (`npm install --no-save zstd-napi@0.0.13`;
// it compiles libzstd with node-gyp, so python3/make/g++ are needed).
import { Transform } from 'node:stream';

export async function loadZstdNapiCodec() {
  let zstd;
  let binding;
  try {
    zstd = (await import('zstd-napi')).default;
    binding = (await import('zstd-napi/binding.js')).default;
  } catch {
    return undefined;
  }
  const OUT_SIZE = binding.dStreamOutSize();
  class ZstdDecompressor extends Transform {
    dctx = new binding.DCtx();
    out = Buffer.allocUnsafe(OUT_SIZE);
    midFrame = false;
    sawInput = false;
    _transform(chunk, _enc, done) {
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
          if (consumed > 0 || produced > 0) this.midFrame = ret !== 0;
          if (src.length === 0 && produced < out.length) break;
        }
      } catch (err) {
        return done(new Error(`corrupt zstd stream: ${err.message}`));
      }
      done();
    }
    _flush(done) {
      if (!this.sawInput) return done(new Error('corrupt zstd stream: empty input'));
      if (this.midFrame) return done(new Error('corrupt zstd stream: truncated input'));
      done();
    }
  }
  return {
    libVersion: binding.versionString(),
    compressor: (level = 3) => new zstd.CompressStream({ compressionLevel: level, checksumFlag: true }),
    decompressor: () => new ZstdDecompressor(),
  };
}
