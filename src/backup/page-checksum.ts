/**
 * PostgreSQL data page checksums (pure logic): a TypeScript re-implementation of the algorithm in
 * PostgreSQL's src/include/storage/checksum_impl.h (pg_checksum_page), plus the page checks that
 * PageIsVerifiedExtended() (bufpage.c) applies to new pages.
 *
 * Algorithm: the 8 KiB page is read as 64 rows of 32 uint32 words; each of the 32 columns is hashed
 * separately with an FNV-1a variant, `tmp = sum ^ word; sum = tmp * FNV_PRIME ^ (tmp >>> 17)`,
 * starting from its own base offset; two extra rounds with zero words follow, the 32 sums are
 * xor-folded, the block number is xor-ed in and the result is reduced to `(x % 65535) + 1`.
 * pd_checksum (bytes 8..9) counts as zero. The block number is the ABSOLUTE block number in the
 * relation fork: segment number * RELSEG_BLOCKS + block index within the segment file.
 *
 * Byte order: words are read in host order, as PostgreSQL does. Only little-endian hosts are
 * supported (x86-64, arm64); the checksum functions throw on a big-endian host.
 *
 * Buffers: pageChecksumAt/verifyPageAt (and the optional `offset` of the header readers) work on a
 * page inside a larger buffer (e.g. a 1 MiB read buffer), without copying when
 * `buf.byteOffset + offset` is 4-byte aligned; otherwise the page is first copied into a private
 * aligned scratch page. The caller's bytes are never written to.
 *
 * Throughput (measured once by hand with a throwaway script, not in tests): verifyPageAt over
 * 16384 valid non-new pages in one 128 MiB Buffer, Node 20.20, 2 vCPU AMD EPYC, 5 runs each:
 * 2800-3150 MiB/s when pages are 4-byte aligned, 2330-2380 MiB/s when every page is unaligned
 * (scratch copy). A plain loop over a Uint32Array of 32 sums measured about 1300-1500 MiB/s.
 */

/** PostgreSQL block (page) size in bytes; pgark supports the default 8 KiB only. */
export const BLCKSZ = 8192;
/** Blocks per relation segment file with the default RELSEG_SIZE (1 GiB / 8 KiB). */
export const RELSEG_BLOCKS = 131072;

/** Result of verifyPage: 'new' pages (all zeros) carry no checksum and are not checked. */
export type PageVerdict = 'ok' | 'new' | 'bad';

const N_SUMS = 32;
const FNV_PRIME = 16777619;
const WORDS_PER_PAGE = BLCKSZ / 4;
/** Word 2 = bytes 8..11 = pd_checksum (low 16 bits on little-endian) | pd_flags (high 16 bits). */
const PD_CHECKSUM_MASK = 0xffff0000 | 0;
const MAX_BLOCK_NUMBER = 0xffffffff;

/** Initial state of each of the 32 parallel sums (checksumBaseOffsets in checksum_impl.h). */
const BASE_OFFSETS = new Uint32Array([
  0x5b1f36e9, 0xb8525960, 0x02ab50aa, 0x1de66d2a, 0x79ff467a, 0x9bb9f8a3, 0x217e7cd2, 0x83e13d2c,
  0xf8d4474f, 0xe39eb970, 0x42c6ae16, 0x993216fa, 0x7b093b5d, 0x98daff3c, 0xf718902a, 0x0b1c9cdb,
  0xe58f764b, 0x187636bc, 0x5d7b3bb1, 0xe73de7de, 0x92bec979, 0xcca6c0b2, 0x304a0979, 0x85aa43d4,
  0x783125bb, 0x6ca8eaa2, 0xe407eac6, 0x4b5cfc3e, 0x9fbf8c76, 0x15ca20be, 0xf2ca9fd3, 0x959bd756,
]);

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Aligned private copy target for pages that are not 4-byte aligned in the caller's buffer. */
const scratchWords = new Uint32Array(WORDS_PER_PAGE);
const scratchBytes = new Uint8Array(scratchWords.buffer);

/**
 * The 32-bit block hash (pg_checksum_block) of the page in `w`, with pd_checksum read as zero.
 * The columns are processed 8 at a time (4 passes over the page): 8 independent chains hide the
 * multiply latency while the state stays in registers, which measured faster than one pass
 * with 32 live sums or a typed-array of sums. The result equals PostgreSQL's row-by-row order
 * because each column's chain is independent of the others.
 */
function blockHash(w: Uint32Array): number {
  let result = 0;
  let t = 0;
  for (let j = 0; j < N_SUMS; j += 8) {
    let s0 = BASE_OFFSETS[j]!;
    let s1 = BASE_OFFSETS[j + 1]!;
    let s2 = BASE_OFFSETS[j + 2]!;
    let s3 = BASE_OFFSETS[j + 3]!;
    let s4 = BASE_OFFSETS[j + 4]!;
    let s5 = BASE_OFFSETS[j + 5]!;
    let s6 = BASE_OFFSETS[j + 6]!;
    let s7 = BASE_OFFSETS[j + 7]!;
    // Only the very first row of the first group holds pd_checksum (low half of word 2).
    let mask = j === 0 ? PD_CHECKSUM_MASK : -1;
    for (let p = j; p < WORDS_PER_PAGE; p += N_SUMS) {
      t = s0 ^ w[p]!;
      s0 = Math.imul(t, FNV_PRIME) ^ (t >>> 17);
      t = s1 ^ w[p + 1]!;
      s1 = Math.imul(t, FNV_PRIME) ^ (t >>> 17);
      t = s2 ^ (w[p + 2]! & mask);
      s2 = Math.imul(t, FNV_PRIME) ^ (t >>> 17);
      t = s3 ^ w[p + 3]!;
      s3 = Math.imul(t, FNV_PRIME) ^ (t >>> 17);
      t = s4 ^ w[p + 4]!;
      s4 = Math.imul(t, FNV_PRIME) ^ (t >>> 17);
      t = s5 ^ w[p + 5]!;
      s5 = Math.imul(t, FNV_PRIME) ^ (t >>> 17);
      t = s6 ^ w[p + 6]!;
      s6 = Math.imul(t, FNV_PRIME) ^ (t >>> 17);
      t = s7 ^ w[p + 7]!;
      s7 = Math.imul(t, FNV_PRIME) ^ (t >>> 17);
      mask = -1;
    }
    // Two extra rounds with zeros for mixing, then xor-fold into the result.
    t = Math.imul(s0, FNV_PRIME) ^ (s0 >>> 17);
    result ^= Math.imul(t, FNV_PRIME) ^ (t >>> 17);
    t = Math.imul(s1, FNV_PRIME) ^ (s1 >>> 17);
    result ^= Math.imul(t, FNV_PRIME) ^ (t >>> 17);
    t = Math.imul(s2, FNV_PRIME) ^ (s2 >>> 17);
    result ^= Math.imul(t, FNV_PRIME) ^ (t >>> 17);
    t = Math.imul(s3, FNV_PRIME) ^ (s3 >>> 17);
    result ^= Math.imul(t, FNV_PRIME) ^ (t >>> 17);
    t = Math.imul(s4, FNV_PRIME) ^ (s4 >>> 17);
    result ^= Math.imul(t, FNV_PRIME) ^ (t >>> 17);
    t = Math.imul(s5, FNV_PRIME) ^ (s5 >>> 17);
    result ^= Math.imul(t, FNV_PRIME) ^ (t >>> 17);
    t = Math.imul(s6, FNV_PRIME) ^ (s6 >>> 17);
    result ^= Math.imul(t, FNV_PRIME) ^ (t >>> 17);
    t = Math.imul(s7, FNV_PRIME) ^ (s7 >>> 17);
    result ^= Math.imul(t, FNV_PRIME) ^ (t >>> 17);
  }
  return result >>> 0;
}

function checkRange(buf: Uint8Array, offset: number): void {
  if (!Number.isInteger(offset) || offset < 0 || offset + BLCKSZ > buf.length) {
    throw new RangeError(`page at offset ${offset} does not fit in a buffer of ${buf.length} bytes (page size ${BLCKSZ})`);
  }
}

function checkWholePage(page: Uint8Array): void {
  if (page.length !== BLCKSZ) throw new RangeError(`a page is ${BLCKSZ} bytes, got ${page.length}`);
}

function checkBlock(absoluteBlock: number): void {
  if (!Number.isInteger(absoluteBlock) || absoluteBlock < 0 || absoluteBlock > MAX_BLOCK_NUMBER) {
    throw new RangeError(`block number must be an integer in 0..${MAX_BLOCK_NUMBER}, got ${absoluteBlock}`);
  }
}

/** Word view of the page at `offset`: zero-copy when aligned, else a copy in the scratch page. */
function pageWords(buf: Uint8Array, offset: number): Uint32Array {
  if (!LITTLE_ENDIAN) throw new Error('page checksums are only implemented for little-endian hosts');
  const start = buf.byteOffset + offset;
  if ((start & 3) === 0) return new Uint32Array(buf.buffer, start, WORDS_PER_PAGE);
  scratchBytes.set(buf.subarray(offset, offset + BLCKSZ));
  return scratchWords;
}

function u16(buf: Uint8Array, at: number): number {
  return buf[at]! | (buf[at + 1]! << 8);
}

function u32(buf: Uint8Array, at: number): number {
  return (buf[at]! | (buf[at + 1]! << 8) | (buf[at + 2]! << 16) | (buf[at + 3]! << 24)) >>> 0;
}

/** absoluteBlock for block `blockInSegment` of segment file `<relfilenode>[.<segment>]`. */
export function absoluteBlockNumber(segment: number, blockInSegment: number): number {
  return segment * RELSEG_BLOCKS + blockInSegment;
}

/** pg_checksum_page for the page at `buf[offset .. offset + BLCKSZ)`; does not modify `buf`. */
export function pageChecksumAt(buf: Uint8Array, offset: number, absoluteBlock: number): number {
  checkRange(buf, offset);
  checkBlock(absoluteBlock);
  const checksum = (blockHash(pageWords(buf, offset)) ^ absoluteBlock) >>> 0;
  return (checksum % 65535) + 1;
}

/** pg_checksum_page: the checksum PostgreSQL stores in pd_checksum for this page (1..65535). */
export function pageChecksum(page: Uint8Array, absoluteBlock: number): number {
  checkWholePage(page);
  return pageChecksumAt(page, 0, absoluteBlock);
}

/** The stored pd_checksum (uint16 at byte 8). */
export function storedChecksum(page: Uint8Array, offset = 0): number {
  checkRange(page, offset);
  return u16(page, offset + 8);
}

/** pd_lsn: xlogid (uint32 at byte 0) << 32 | xrecoff (uint32 at byte 4). */
export function pageLsn(page: Uint8Array, offset = 0): bigint {
  checkRange(page, offset);
  return (BigInt(u32(page, offset)) << 32n) | BigInt(u32(page, offset + 4));
}

/** PageIsNew: pd_upper (uint16 at byte 14) is 0, i.e. the page was never initialised. */
export function isNewPage(page: Uint8Array, offset = 0): boolean {
  checkRange(page, offset);
  return u16(page, offset + 14) === 0;
}

/** Every byte of the page is zero. */
export function isAllZero(page: Uint8Array, offset = 0): boolean {
  checkRange(page, offset);
  const start = page.byteOffset + offset;
  if ((start & 3) === 0) {
    const w = new Uint32Array(page.buffer, start, WORDS_PER_PAGE);
    for (let i = 0; i < WORDS_PER_PAGE; i++) if (w[i] !== 0) return false;
    return true;
  }
  for (let i = offset; i < offset + BLCKSZ; i++) if (page[i] !== 0) return false;
  return true;
}

/**
 * Checksum verdict for the page at `buf[offset .. offset + BLCKSZ)`, as PageIsVerifiedExtended
 * decides it: a new page (pd_upper = 0) carries no checksum and is 'new' when all zeros, but 'bad'
 * when any byte is set; any other page is 'ok' exactly when pd_checksum equals pg_checksum_page.
 * Header sanity (pd_lower <= pd_upper <= pd_special, flags) is not checked. Pages that may be
 * changing while they are read (pd_lsn past the backup start) are the caller's concern.
 */
export function verifyPageAt(buf: Uint8Array, offset: number, absoluteBlock: number): PageVerdict {
  checkRange(buf, offset);
  if (u16(buf, offset + 14) === 0) return isAllZero(buf, offset) ? 'new' : 'bad';
  return u16(buf, offset + 8) === pageChecksumAt(buf, offset, absoluteBlock) ? 'ok' : 'bad';
}

/** verifyPages' verdict codes (one byte per page). */
export const PAGE_OK = 0;
export const PAGE_NEW = 1;
export const PAGE_BAD = 2;

/**
 * verifyPageAt for every whole page of `buf` (page i is block `firstBlock + i`), into
 * `out[i]` (PAGE_OK, PAGE_NEW or PAGE_BAD); returns the number of pages (bytes after the last
 * whole page are not looked at). Same verdicts as verifyPageAt, without its per-page argument
 * checks: what a backup calls for each 1 MiB read.
 */
export function verifyPages(buf: Uint8Array, firstBlock: number, out: Uint8Array): number {
  const pages = Math.floor(buf.length / BLCKSZ);
  if (pages === 0) return 0;
  if (out.length < pages) throw new RangeError(`verdict array of ${out.length} for ${pages} pages`);
  checkBlock(firstBlock);
  checkBlock(firstBlock + pages - 1);
  if (!LITTLE_ENDIAN) throw new Error('page checksums are only implemented for little-endian hosts');
  if ((buf.byteOffset & 3) !== 0) {
    for (let i = 0; i < pages; i++) {
      const v = verifyPageAt(buf, i * BLCKSZ, firstBlock + i);
      out[i] = v === 'ok' ? PAGE_OK : v === 'new' ? PAGE_NEW : PAGE_BAD;
    }
    return pages;
  }
  // One page-sized word view per page: blockHash's loops then run to a constant bound, which
  // measured ~20 % faster than one view of the whole buffer with an offset.
  for (let i = 0, off = 0; i < pages; i++, off += BLCKSZ) {
    const w = new Uint32Array(buf.buffer, buf.byteOffset + off, WORDS_PER_PAGE);
    if (u16(buf, off + 14) === 0) {
      // PageIsNew: no checksum; every byte must be zero
      let zero = true;
      for (let k = 0; k < WORDS_PER_PAGE; k++) {
        if (w[k] !== 0) {
          zero = false;
          break;
        }
      }
      out[i] = zero ? PAGE_NEW : PAGE_BAD;
      continue;
    }
    const checksum = ((blockHash(w) ^ (firstBlock + i)) >>> 0) % 65535 + 1;
    out[i] = u16(buf, off + 8) === checksum ? PAGE_OK : PAGE_BAD;
  }
  return pages;
}

/** verifyPageAt for a buffer holding exactly one page. */
export function verifyPage(page: Uint8Array, absoluteBlock: number): PageVerdict {
  checkWholePage(page);
  return verifyPageAt(page, 0, absoluteBlock);
}
