/**
 * XLOG page headers as PostgreSQL writes them (little-endian, 64-bit
 * MAXALIGN). Pure functions, no I/O.
 *
 *   XLogPageHeaderData (SizeOfXLogShortPHD = 24)
 *     0 uint16 xlp_magic   2 uint16 xlp_info   4 uint32 xlp_tli
 *     8 uint64 xlp_pageaddr   16 uint32 xlp_rem_len   20 (4 bytes padding)
 *   XLogLongPageHeaderData (SizeOfXLogLongPHD = 40)
 *     24 uint64 xlp_sysid   32 uint32 xlp_seg_size   36 uint32 xlp_xlog_blcksz
 */
import { InvalidInputError } from '../common/errors.js';
import { formatLsn, isValidWalSegmentSize, segmentName, segmentStartLsn } from './segment-name.js';

export const SIZE_OF_SHORT_PAGE_HEADER = 24;
export const SIZE_OF_LONG_PAGE_HEADER = 40;

export const XLP_FIRST_IS_CONTRECORD = 0x0001;
export const XLP_LONG_HEADER = 0x0002;
export const XLP_BKP_REMOVABLE = 0x0004;
/** Added (and back-patched to all supported branches) in late 2021. */
export const XLP_FIRST_IS_OVERWRITE_CONTRECORD = 0x0008;
export const XLP_ALL_FLAGS = 0x000f;

/** XLOG_PAGE_MAGIC per PostgreSQL major version. */
const WAL_MAGIC_BY_VERSION: ReadonlyMap<number, number> = new Map([
  [13, 0xd106],
  [14, 0xd10d],
  [15, 0xd110],
  [16, 0xd113],
  [17, 0xd116],
  [18, 0xd118],
]);
const VERSION_BY_WAL_MAGIC: ReadonlyMap<number, number> = new Map(
  [...WAL_MAGIC_BY_VERSION].map(([version, magic]) => [magic, version]),
);

/** The PostgreSQL major version that writes this XLOG_PAGE_MAGIC, if known. */
export function pgVersionForWalMagic(magic: number): number | undefined {
  return VERSION_BY_WAL_MAGIC.get(magic);
}

/** XLOG_PAGE_MAGIC of a PostgreSQL major version, if known. */
export function walMagicForPgVersion(version: number): number | undefined {
  return WAL_MAGIC_BY_VERSION.get(version);
}

export interface LongPageHeader {
  magic: number;
  info: number;
  /** xlp_tli: timeline of the first record on the page. */
  timeline: number;
  pageAddr: bigint;
  remLen: number;
  systemIdentifier: bigint;
  segmentSize: number;
  blockSize: number;
}

/** XLOG_BLCKSZ: a power of two from 1 kB to 64 kB (configure --with-wal-blocksize). */
function isValidWalBlockSize(n: number): boolean {
  return n >= 1024 && n <= 65536 && (n & (n - 1)) === 0;
}

function hex(n: number): string {
  return `0x${n.toString(16).toUpperCase().padStart(4, '0')}`;
}

/**
 * Parse the long page header at the start of a WAL segment. Throws
 * InvalidInputError on a short buffer, unknown info bits, a missing
 * XLP_LONG_HEADER flag, or an invalid segment / block size.
 */
export function parseLongPageHeader(buf: Uint8Array): LongPageHeader {
  if (buf.length < SIZE_OF_LONG_PAGE_HEADER) {
    throw new InvalidInputError(
      `invalid WAL page header: need ${String(SIZE_OF_LONG_PAGE_HEADER)} bytes, got ${String(buf.length)}`,
    );
  }
  const view = new DataView(buf.buffer, buf.byteOffset, SIZE_OF_LONG_PAGE_HEADER);
  const header: LongPageHeader = {
    magic: view.getUint16(0, true),
    info: view.getUint16(2, true),
    timeline: view.getUint32(4, true),
    pageAddr: view.getBigUint64(8, true),
    remLen: view.getUint32(16, true),
    systemIdentifier: view.getBigUint64(24, true),
    segmentSize: view.getUint32(32, true),
    blockSize: view.getUint32(36, true),
  };
  if ((header.info & ~XLP_ALL_FLAGS) !== 0) {
    throw new InvalidInputError(`invalid WAL page header: invalid info bits ${hex(header.info)}`);
  }
  if ((header.info & XLP_LONG_HEADER) === 0) {
    throw new InvalidInputError(`invalid WAL page header: not a long header (info ${hex(header.info)})`);
  }
  if (!isValidWalSegmentSize(header.segmentSize)) {
    throw new InvalidInputError(
      `invalid WAL page header: invalid segment size ${String(header.segmentSize)} (must be a power of two between 1MiB and 1GiB)`,
    );
  }
  if (!isValidWalBlockSize(header.blockSize)) {
    throw new InvalidInputError(
      `invalid WAL page header: invalid WAL block size ${String(header.blockSize)} (must be a power of two between 1kB and 64kB)`,
    );
  }
  return header;
}

export interface ExpectedSegment {
  /** Timeline from the segment's file name. */
  timeline: number;
  segno: bigint;
  walSegmentSize: number;
  /** When given, xlp_sysid must match. */
  systemIdentifier?: bigint;
  /** When given, xlp_xlog_blcksz must match. */
  blockSize?: number;
}

/**
 * Check the first page of a segment against what its name and the cluster
 * say, and return the parsed header.
 *
 * Timeline: xlp_tli is the timeline of the first record on the page. When
 * PostgreSQL switches timeline mid-segment it starts the new timeline's file
 * as a copy of the old one, so the first page of that file carries the
 * parent's timeline. Hence the rule is 1 <= xlp_tli <= name timeline (equal
 * for every segment except the one a timeline switch happened in).
 */
export function validateSegmentHeader(buf: Uint8Array, expected: ExpectedSegment): LongPageHeader {
  const header = parseLongPageHeader(buf);
  const name = segmentName({ timeline: expected.timeline, segno: expected.segno }, expected.walSegmentSize);
  const bad = (why: string): never => {
    throw new InvalidInputError(`invalid WAL segment '${name}': ${why}`);
  };
  if (pgVersionForWalMagic(header.magic) === undefined) {
    bad(`unknown page magic ${hex(header.magic)} (not PostgreSQL 13 or later)`);
  }
  if (header.segmentSize !== expected.walSegmentSize) {
    bad(`header segment size ${String(header.segmentSize)} differs from ${String(expected.walSegmentSize)}`);
  }
  const startLsn = segmentStartLsn(expected, expected.walSegmentSize);
  if (header.pageAddr !== startLsn) {
    bad(`page address ${formatLsn(header.pageAddr)} differs from segment start ${formatLsn(startLsn)}`);
  }
  if (header.timeline === 0 || header.timeline > expected.timeline) {
    bad(`page timeline ${String(header.timeline)} is not valid for a segment of timeline ${String(expected.timeline)}`);
  }
  if (expected.systemIdentifier !== undefined && header.systemIdentifier !== expected.systemIdentifier) {
    bad(
      `system identifier ${header.systemIdentifier.toString()} differs from ${expected.systemIdentifier.toString()}`,
    );
  }
  if (expected.blockSize !== undefined && header.blockSize !== expected.blockSize) {
    bad(`WAL block size ${String(header.blockSize)} differs from ${String(expected.blockSize)}`);
  }
  return header;
}
