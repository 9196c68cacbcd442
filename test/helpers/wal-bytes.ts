/**
 * WAL-shaped bytes for unit tests: random record bytes with a valid page header at every page
 * start (the long header at each segment start), as PostgreSQL lays pages out. Not replayable:
 * only what pgark checks (page headers, sizes) is real.
 */
import { randomBytes } from 'node:crypto';

export interface FakeWalOptions {
  walSegmentSize: number;
  blockSize?: number;
  /** xlp_tli of the pages (default 1). */
  timeline?: number;
  systemIdentifier?: bigint;
  /** XLOG_PAGE_MAGIC (default PostgreSQL 15's). */
  magic?: number;
}

/** Bytes [startLsn, startLsn + length) of a WAL stream. */
export function fakeWal(startLsn: bigint, length: number, o: FakeWalOptions): Buffer {
  const blk = o.blockSize ?? 8192;
  const out = randomBytes(length);
  const firstPage = (startLsn / BigInt(blk)) * BigInt(blk);
  for (let page = firstPage; page < startLsn + BigInt(length); page += BigInt(blk)) {
    const long = page % BigInt(o.walSegmentSize) === 0n;
    const h = Buffer.alloc(long ? 40 : 24);
    h.writeUInt16LE(o.magic ?? 0xd110, 0);
    h.writeUInt16LE(long ? 0x0002 : 0, 2);
    h.writeUInt32LE(o.timeline ?? 1, 4);
    h.writeBigUInt64LE(page, 8);
    h.writeUInt32LE(0, 16);
    if (long) {
      h.writeBigUInt64LE(o.systemIdentifier ?? 7000000000000000001n, 24);
      h.writeUInt32LE(o.walSegmentSize, 32);
      h.writeUInt32LE(blk, 36);
    }
    // Copy the part of the header inside [startLsn, startLsn + length).
    const from = page < startLsn ? Number(startLsn - page) : 0;
    const at = Number(page - startLsn) + from;
    if (from < h.length) h.copy(out, at, from, Math.min(h.length, from + (length - at)));
  }
  return out;
}

/** One whole segment (segno of the given size) of fake WAL. */
export function fakeSegment(segno: bigint, o: FakeWalOptions): Buffer {
  return fakeWal(segno * BigInt(o.walSegmentSize), o.walSegmentSize, o);
}
