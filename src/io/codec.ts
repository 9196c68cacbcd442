/**
 * Compression codecs. Each codec produces the standard container of its format (lz4 frames,
 * zstd frames, gzip members) so that an unencrypted repository object decodes with the stock
 * CLI (`lz4 -d`, `zstd -d`, `gzip -d`) once pgark's header and trailer frames are skipped, which
 * those tools do by themselves (skippable frames / empty gzip members; see docs/REPOSITORY.md).
 *
 * Implementations live in ./codecs/<name>.ts and are loaded lazily by loadCodec().
 */
import type { Transform } from 'node:stream';
import { ConfigError } from '../common/errors.js';

export const CODEC_NAMES = ['lz4', 'zstd', 'gzip', 'none'] as const;
export type CodecName = (typeof CODEC_NAMES)[number];

/** Numeric ids stored in object headers. Never renumber. */
export const CODEC_IDS: Record<CodecName, number> = { none: 0, lz4: 1, zstd: 2, gzip: 3 };

export interface Codec {
  readonly name: CodecName;
  /** Default level when none is configured. */
  readonly defaultLevel: number;
  /** Streaming compressor: raw bytes in, a valid stream of the format out. Memory bounded. */
  compressor(level?: number): Transform;
  /**
   * Streaming decompressor: accepts one or more concatenated frames/members of the format.
   * `contentChecksums: false` skips the format's own content checksum (lz4) where the caller
   * verifies the content another way (pgark objects: the trailer's sha256). `ownsInput: true`
   * lets the decompressor modify the chunks written to it (the caller never reads them again).
   */
  decompressor(o?: { contentChecksums?: boolean; ownsInput?: boolean }): Transform;
}

export function isCodecName(s: string): s is CodecName {
  return (CODEC_NAMES as readonly string[]).includes(s);
}

export function codecNameFromId(id: number): CodecName | undefined {
  return (Object.keys(CODEC_IDS) as CodecName[]).find((k) => CODEC_IDS[k] === id);
}

export async function loadCodec(name: string): Promise<Codec> {
  switch (name) {
    case 'lz4':
      return (await import('./codecs/lz4.js')).lz4Codec;
    case 'zstd':
      return (await import('./codecs/zstd.js')).zstdCodec;
    case 'gzip':
      return (await import('./codecs/gzip.js')).gzipCodec;
    case 'none':
      return (await import('./codecs/none.js')).noneCodec;
    default:
      throw new ConfigError(`unknown codec '${name}' (expected one of ${CODEC_NAMES.join(', ')})`);
  }
}
