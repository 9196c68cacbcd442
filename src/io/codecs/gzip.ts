/**
 * gzip via Node's zlib (work runs on the libuv threadpool). Gunzip decodes concatenated members,
 * including pgark's empty header/trailer members. zlib errors are rethrown as IntegrityError.
 */
import type { Transform } from 'node:stream';
import zlib from 'node:zlib';
import { IntegrityError } from '../../common/errors.js';
import type { Codec } from '../codec.js';

function withIntegrityErrors(stream: Transform): Transform {
  const destroyImpl = stream._destroy.bind(stream);
  stream._destroy = (err, cb) => {
    const mapped = err === null || err instanceof IntegrityError ? err : new IntegrityError(`corrupt gzip stream: ${err.message}`, { cause: err });
    destroyImpl(mapped, cb);
  };
  return stream;
}

export const gzipCodec: Codec = {
  name: 'gzip',
  defaultLevel: 6,
  compressor: (level = 6) => zlib.createGzip({ level }),
  decompressor: () => withIntegrityErrors(zlib.createGunzip()),
};
