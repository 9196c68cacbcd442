/**
 * Object format v1 (pure byte layout; see docs/REPOSITORY.md).
 *
 *   object  = header-wrapper  payload  trailer-wrapper
 *   payload = the codec's standard stream (lz4 frames, zstd frames, gzip members, raw bytes),
 *             or, when the encrypted flag is set, that stream encrypted in chunks (chunk-cipher.ts).
 *
 * Version 1 records are plain objects; version 2 records (header and trailer) mark an encrypted
 * object: the header has flag bit 0, the trailer names the data key number and holds a keyed
 * digest (HMAC, see chunk-cipher.ts keyedDigest) instead of the plain sha256.
 *
 * The header and trailer records are wrapped so that the stock CLIs skip them:
 *   lz4, zstd: a skippable frame  (u32le 0x184D2A5A, u32le length, record)
 *   gzip:      an empty gzip member whose FEXTRA subfield 'PK' holds the record
 *   none:      the bare record
 */
import { createHash } from 'node:crypto';
import { IntegrityError } from '../common/errors.js';
import { CODEC_IDS, codecNameFromId, type CodecName } from '../io/codec.js';

export const OBJECT_FORMAT_VERSION = 1;
/** The record version of encrypted objects (the format version bumps only for them). */
export const ENCRYPTED_FORMAT_VERSION = 2;
export const HEADER_RECORD_SIZE = 16;
export const TRAILER_RECORD_SIZE = 64;
const HEADER_MAGIC = Buffer.from('PGAK', 'latin1');
const TRAILER_MAGIC = Buffer.from('PGAT', 'latin1');
const SKIPPABLE_MAGIC = 0x184d2a5a;
export const FLAG_ENCRYPTED = 0x01;

export interface ObjectHeader {
  version: number;
  codec: CodecName;
  flags: number;
}

export interface ObjectTrailer {
  rawSize: number;
  payloadSize: number;
  /**
   * sha256 of the raw (uncompressed, unencrypted) content, hex. In an encrypted object's stored
   * trailer: the keyed digest of that sha256 (chunk-cipher.ts keyedDigest).
   */
  sha256: string;
  /** Encrypted objects (version 2): the number of the data key in the stanza's keyring. */
  keyNumber?: number;
}

/** Bytes the header wrapper occupies for a codec. */
export function headerWrapperSize(codec: CodecName): number {
  return wrapperOverhead(codec) + HEADER_RECORD_SIZE;
}

/** Bytes the trailer wrapper occupies for a codec. */
export function trailerWrapperSize(codec: CodecName): number {
  return wrapperOverhead(codec) + TRAILER_RECORD_SIZE;
}

/** Largest header wrapper of any codec: enough bytes to recognise every header. */
export const MAX_HEADER_WRAPPER = 26 + HEADER_RECORD_SIZE;
export const MAX_TRAILER_WRAPPER = 26 + TRAILER_RECORD_SIZE;

function wrapperOverhead(codec: CodecName): number {
  switch (codec) {
    case 'lz4':
    case 'zstd':
      return 8;
    case 'gzip':
      return 26; // 10 header + 2 XLEN + 4 subfield header + 2 empty deflate + 8 CRC/ISIZE
    case 'none':
      return 0;
  }
}

function wrap(codec: CodecName, record: Buffer): Buffer {
  switch (codec) {
    case 'lz4':
    case 'zstd': {
      const head = Buffer.alloc(8);
      head.writeUInt32LE(SKIPPABLE_MAGIC, 0);
      head.writeUInt32LE(record.length, 4);
      return Buffer.concat([head, record]);
    }
    case 'gzip': {
      // ID1 ID2 CM=deflate FLG=FEXTRA MTIME=0 XFL=0 OS=255(unknown)
      const head = Buffer.from([0x1f, 0x8b, 0x08, 0x04, 0, 0, 0, 0, 0, 0xff]);
      const xlen = Buffer.alloc(2);
      xlen.writeUInt16LE(4 + record.length, 0);
      const sub = Buffer.alloc(4);
      sub.write('PK', 0, 'latin1');
      sub.writeUInt16LE(record.length, 2);
      // Empty final stored-or-fixed deflate block, CRC32 of nothing = 0, ISIZE = 0.
      const tail = Buffer.from([0x03, 0x00, 0, 0, 0, 0, 0, 0, 0, 0]);
      return Buffer.concat([head, xlen, sub, record, tail]);
    }
    case 'none':
      return record;
  }
}

export function encodeHeader(codec: CodecName, flags = 0): Buffer {
  const rec = Buffer.alloc(HEADER_RECORD_SIZE);
  HEADER_MAGIC.copy(rec, 0);
  rec[4] = flags & FLAG_ENCRYPTED ? ENCRYPTED_FORMAT_VERSION : OBJECT_FORMAT_VERSION;
  rec[5] = CODEC_IDS[codec];
  rec[6] = flags;
  return wrap(codec, rec);
}

export function encodeTrailer(codec: CodecName, t: ObjectTrailer): Buffer {
  const rec = Buffer.alloc(TRAILER_RECORD_SIZE);
  TRAILER_MAGIC.copy(rec, 0);
  if (t.keyNumber !== undefined) {
    if (!Number.isInteger(t.keyNumber) || t.keyNumber < 1 || t.keyNumber > 0xffff) throw new Error(`bad data key number ${t.keyNumber}`);
    rec[4] = ENCRYPTED_FORMAT_VERSION;
    rec.writeUInt16LE(t.keyNumber, 5);
  } else {
    rec[4] = OBJECT_FORMAT_VERSION;
  }
  rec.writeBigUInt64LE(BigInt(t.rawSize), 8);
  rec.writeBigUInt64LE(BigInt(t.payloadSize), 16);
  const digest = Buffer.from(t.sha256, 'hex');
  if (digest.length !== 32) throw new Error('sha256 must be 32 bytes');
  digest.copy(rec, 24);
  recordCheck(rec).copy(rec, 56);
  return wrap(codec, rec);
}

/** First 8 bytes of sha256 over the record's first 56 bytes: guards the trailer itself. */
function recordCheck(rec: Buffer): Buffer {
  return createHash('sha256').update(rec.subarray(0, 56)).digest().subarray(0, 8);
}

/**
 * Parse the header wrapper at the start of an object. `head` holds at least the first
 * MAX_HEADER_WRAPPER bytes, or the whole object when it is shorter.
 */
export function parseHeader(head: Buffer, where: string): ObjectHeader & { wrapperSize: number } {
  const bad = (why: string) => new IntegrityError(`unable to read '${where}': not a valid pgark object (${why})`);
  if (head.length < 4) throw bad('too short');
  let recAt: number;
  if (head.readUInt32LE(0) === SKIPPABLE_MAGIC) {
    recAt = 8;
  } else if (head[0] === 0x1f && head[1] === 0x8b) {
    recAt = 16;
    if (head.length >= 16 && (head[3] !== 0x04 || head.toString('latin1', 12, 14) !== 'PK')) throw bad('gzip header without pgark record');
  } else {
    recAt = 0;
  }
  if (head.length < recAt + HEADER_RECORD_SIZE) throw bad('truncated header');
  const rec = head.subarray(recAt, recAt + HEADER_RECORD_SIZE);
  if (!rec.subarray(0, 4).equals(HEADER_MAGIC)) throw bad('bad header magic');
  const version = rec[4]!;
  if (version !== OBJECT_FORMAT_VERSION && version !== ENCRYPTED_FORMAT_VERSION) throw bad(`unsupported object format version ${version}`);
  const codec = codecNameFromId(rec[5]!);
  if (!codec) throw bad(`unknown codec id ${rec[5]}`);
  const flags = rec[6]!;
  if (flags & ~FLAG_ENCRYPTED) throw bad(`unknown header flags ${flags}`);
  if ((version === ENCRYPTED_FORMAT_VERSION) !== ((flags & FLAG_ENCRYPTED) !== 0)) throw bad(`version ${version} with flags ${flags}`);
  // v1 headers are fully determined by codec and flags: compare every byte, reserved ones too.
  const expected = encodeHeader(codec, flags);
  if (!head.subarray(0, expected.length).equals(expected)) throw bad(`header wrapper does not match codec ${codec}`);
  return { version, codec, flags, wrapperSize: expected.length };
}

/** Parse the trailer wrapper, given exactly trailerWrapperSize(codec) bytes from the end. */
export function parseTrailer(codec: CodecName, tail: Buffer, where: string): ObjectTrailer {
  const bad = (why: string) => new IntegrityError(`unable to read '${where}': damaged object trailer (${why})`);
  const size = trailerWrapperSize(codec);
  if (tail.length !== size) throw bad('truncated object');
  const expected = wrap(codec, Buffer.alloc(TRAILER_RECORD_SIZE));
  const recAt = codec === 'lz4' || codec === 'zstd' ? 8 : codec === 'gzip' ? 16 : 0;
  // The wrapper bytes around the record are constant: compare them outside the record.
  if (!tail.subarray(0, recAt).equals(expected.subarray(0, recAt)) ||
      !tail.subarray(recAt + TRAILER_RECORD_SIZE).equals(expected.subarray(recAt + TRAILER_RECORD_SIZE))) {
    throw bad('bad trailer wrapper');
  }
  const rec = tail.subarray(recAt, recAt + TRAILER_RECORD_SIZE);
  if (!rec.subarray(0, 4).equals(TRAILER_MAGIC)) throw bad('bad trailer magic');
  if (!recordCheck(rec).equals(rec.subarray(56, 64))) throw bad('trailer checksum mismatch');
  const version = rec[4]!;
  if (version !== OBJECT_FORMAT_VERSION && version !== ENCRYPTED_FORMAT_VERSION) throw bad(`unsupported trailer version ${version}`);
  const keyNumber = rec.readUInt16LE(5);
  if (version === ENCRYPTED_FORMAT_VERSION ? keyNumber === 0 || rec[7] !== 0 : rec[5] !== 0 || rec[6] !== 0 || rec[7] !== 0) throw bad('bad reserved bytes');
  return {
    rawSize: Number(rec.readBigUInt64LE(8)),
    payloadSize: Number(rec.readBigUInt64LE(16)),
    sha256: rec.subarray(24, 56).toString('hex'),
    ...(version === ENCRYPTED_FORMAT_VERSION ? { keyNumber } : {}),
  };
}
