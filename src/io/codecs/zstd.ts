/**
 * zstd via Node's built-in zlib (libzstd bundled with Node >= 22.15; nothing to compile). Work
 * runs on the libuv threadpool like gzip, so parallel streams scale (bench/results/codecs.md).
 * Compression always writes the frame checksum; libzstd verifies it on decompression, decodes
 * concatenated frames and skips skippable frames itself. Input that ends mid-frame, and empty
 * input, are errors (zlib's "unexpected end of file"). zlib errors are rethrown as IntegrityError.
 *
 * Streams written by the zstd-napi codec pgark used before decode unchanged (same format; the
 * test decodes a committed fixture written by it: test/fixtures/zstd-napi/).
 */
import type { Transform } from 'node:stream';
import zlib from 'node:zlib';
import { IntegrityError } from '../../common/errors.js';
import type { Codec } from '../codec.js';

/** Output buffer per native call: zlib's 16 KiB default costs more round trips (bench/codecs.mjs). */
const CHUNK_SIZE = 128 * 1024;

function withIntegrityErrors(stream: Transform): Transform {
  const destroyImpl = stream._destroy.bind(stream);
  stream._destroy = (err, cb) => {
    const mapped = err === null || err instanceof IntegrityError ? err : new IntegrityError(`corrupt zstd stream: ${err.message}`, { cause: err });
    destroyImpl(mapped, cb);
  };
  return stream;
}

export const zstdCodec: Codec = {
  name: 'zstd',
  defaultLevel: 3,
  compressor: (level = 3) =>
    zlib.createZstdCompress({
      chunkSize: CHUNK_SIZE,
      params: { [zlib.constants.ZSTD_c_compressionLevel]: level, [zlib.constants.ZSTD_c_checksumFlag]: 1 },
    }),
  decompressor: () => withIntegrityErrors(zlib.createZstdDecompress({ chunkSize: CHUNK_SIZE })),
};
