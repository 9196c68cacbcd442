/**
 * The page-LSN block delta of an incremental backup (pure): which blocks of a main-fork relation
 * file are taken from the parent backup instead of being stored again (pg_probackup's DELTA rule,
 * made safe for pgark's content digests).
 *
 * Page layout (PostgreSQL src/include/storage/bufpage.h, PageHeaderData): the first 8 bytes are
 * pd_lsn, a PageXLogRecPtr of two uint32 halves in host byte order, `xlogid` (high 32 bits) then
 * `xrecoff` (low 32 bits): "LSN: next byte after last byte of xlog record for last change to this
 * page"; pd_checksum is the uint16 at byte 8. Only little-endian hosts are supported
 * (page-checksum.ts).
 *
 * A full block is the parent's when all of these hold:
 * - the parent's copy of the file has the block (block < parentBlocks);
 * - its pd_lsn is not 0 (a new or all-zero page says nothing) and is before the parent's start
 *   LSN: no WAL-logged change since the parent began;
 * - its page checksum verifies (data checksums on): a page being written while it is read (torn:
 *   old pd_lsn in front, new bytes behind) or damaged fails it and is stored as read; WAL replay
 *   from this backup's start rewrites a torn page (full-page images, forced during a backup).
 *
 * Why data checksums are required (blockDeltaRefusal): the new manifest records the sha256 of the
 * file as read, and restore checks the file it rebuilds from the chain against it, so a page taken
 * from the parent must be byte for byte what is on disk now. With checksums (or wal_log_hints)
 * PostgreSQL WAL-logs the first hint-bit change of a page after a checkpoint (MarkBufferDirtyHint,
 * storage/page/README), which moves pd_lsn past the parent's start; without checksums hint bits
 * change pages without moving pd_lsn, and torn reads cannot be told apart. A parent taken
 * without checksums may hold pages whose pd_checksum pg_checksums has since rewritten (no LSN
 * change), so the parent must have had checksums too.
 */
import { BLCKSZ } from './page-checksum.js';

export interface BlockDeltaRule {
  /** The parent backup's start LSN, as its high and low 32-bit halves. */
  parentStartHi: number;
  parentStartLo: number;
  /** Whole blocks in the parent's copy of the file. */
  parentBlocks: number;
}

export function blockDeltaRule(parentStartLsn: bigint, parentBlocks: number): BlockDeltaRule {
  return { parentStartHi: Number(parentStartLsn >> 32n), parentStartLo: Number(parentStartLsn & 0xffffffffn), parentBlocks };
}

/**
 * Whether block `block` of the file (bytes buf[off, off + len)) is taken from the parent;
 * `verified`: its page checksum was checked and matched.
 */
export function blockFromParent(buf: Uint8Array, off: number, len: number, block: number, verified: boolean, r: BlockDeltaRule): boolean {
  if (len < BLCKSZ || block >= r.parentBlocks || !verified) return false;
  const hi = (buf[off]! | (buf[off + 1]! << 8) | (buf[off + 2]! << 16) | (buf[off + 3]! << 24)) >>> 0;
  const lo = (buf[off + 4]! | (buf[off + 5]! << 8) | (buf[off + 6]! << 16) | (buf[off + 7]! << 24)) >>> 0;
  if (hi === 0 && lo === 0) return false;
  return hi < r.parentStartHi || (hi === r.parentStartHi && lo < r.parentStartLo);
}

/** Why an incremental may not take blocks from its parent by page LSN (undefined: it may). */
export function blockDeltaRefusal(now: { dataChecksums: boolean; fullPageWrites: boolean; blockSize: number }, parent: { dataChecksums: boolean }): string | undefined {
  if (now.blockSize !== BLCKSZ) return `the block size is ${now.blockSize}, not ${BLCKSZ}`;
  if (!now.dataChecksums) return 'data checksums are off (hint-bit changes do not move page LSNs, torn reads cannot be detected)';
  if (!parent.dataChecksums) return 'the parent backup was taken without data checksums';
  if (!now.fullPageWrites) return 'full_page_writes is off';
  return undefined;
}
