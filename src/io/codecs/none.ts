import { PassThrough } from 'node:stream';
import type { Codec } from '../codec.js';

export const noneCodec: Codec = {
  name: 'none',
  defaultLevel: 0,
  compressor: () => new PassThrough(),
  decompressor: () => new PassThrough(),
};
