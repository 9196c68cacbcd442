/**
 * Is a stream of bytes exactly one whole WAL segment? Pure: fed chunks, no I/O.
 *
 * A segment (a 24-hex name) must be exactly the segment size, and its pages must follow each
 * other the way PostgreSQL writes them and its reader (XLogReaderValidatePageHeader in
 * xlogreader.c) accepts them: every page header has the first page's magic, only known info
 * bits, the page's own address (segment start + offset), and a timeline that never goes back
 * and is not newer than the name's. The first page has the long header (segment size, block
 * size, system identifier); later pages never do (PostgreSQL sets XLP_LONG_HEADER only at
 * offset 0). After an XLOG_SWITCH record PostgreSQL (11 and later) writes the rest of the
 * segment as zero pages, headers included (CopyXLogRecordToWAL; AdvanceXLInsertBuffer zeroes
 * every new page), so a page with a zeroed header is accepted only when every byte from there to
 * the end is zero: WAL after a hole is not.
 *
 * What this cannot see: bytes that became zero from some point to the end of the segment look
 * like a switched segment's end (telling them apart needs the records themselves).
 *
 * A `.partial` file (the end of an old timeline) is a whole segment file whose bytes after the
 * switch point are whatever the file held, so only its size and first page are checked. Other
 * files (history, backup history) only have to be exactly `size` bytes.
 *
 * The checker sees every byte once and never buffers more than one page header.
 */
import { InvalidInputError } from '../common/errors.js';
import {
  SIZE_OF_LONG_PAGE_HEADER, SIZE_OF_SHORT_PAGE_HEADER, validateSegmentHeader,
  XLP_ALL_FLAGS, XLP_LONG_HEADER, type LongPageHeader,
} from './page-header.js';
import { classifyWalFileName, formatLsn, parseSegmentName, segmentStartLsn } from './segment-name.js';

/** A WAL file's bytes are not what its name and size say. The message says where and why. */
export class SegmentShapeError extends InvalidInputError {}

export interface SegmentCheckTarget {
  /** WAL file name: a segment, a `.partial`, a history or a backup history file. */
  name: string;
  /** Exact number of bytes expected: wal_segment_size for segments and partials. */
  size: number;
  /** When known, the first page's system identifier must be this one. */
  systemIdentifier?: bigint;
}

type Mode = 'pages' | 'first-page' | 'size-only';

export class SegmentChecker {
  private readonly mode: Mode;
  private readonly timeline: number = 0;
  private readonly segStart: bigint = 0n;
  /** segStart as two 32-bit halves, for the per-page address check. */
  private readonly segStartLo: number = 0;
  private readonly segStartHi: number = 0;
  private bytes = 0;
  /** Header bytes of the page being read, until complete. */
  private readonly head = Buffer.alloc(SIZE_OF_LONG_PAGE_HEADER);
  private headLen = 0;
  private first: LongPageHeader | undefined;
  private blockSize = 0;
  private lastTli = 0;
  /** Offset of the first page whose header is zeroed (the rest of the segment after a switch). */
  private zeroFrom: number | undefined;

  constructor(private readonly target: SegmentCheckTarget) {
    const wal = classifyWalFileName(target.name);
    if (wal?.kind === 'segment' || wal?.kind === 'partial') {
      this.mode = wal.kind === 'segment' ? 'pages' : 'first-page';
      const id = parseSegmentName(wal.segmentName, target.size);
      this.timeline = id.timeline;
      this.segStart = segmentStartLsn(id, target.size);
      this.segStartLo = Number(this.segStart & 0xffffffffn);
      this.segStartHi = Number(this.segStart >> 32n);
    } else {
      this.mode = 'size-only';
    }
  }

  private fail(why: string): never {
    throw new SegmentShapeError(`'${this.target.name}' is not a whole WAL file: ${why}`);
  }

  update(chunk: Uint8Array): void {
    if (this.bytes + chunk.length > this.target.size) {
      this.fail(`more than the expected ${this.target.size} bytes`);
    }
    if (this.mode !== 'size-only') {
      let pos = 0;
      while (pos < chunk.length) {
        if (this.zeroFrom !== undefined) {
          const nz = firstNonZero(chunk, pos);
          if (nz >= 0) {
            this.fail(`byte at offset ${this.bytes + nz} is not zero, after the zeroed pages from offset ${this.zeroFrom} (WAL after a hole)`);
          }
          break;
        }
        const at = this.bytes + pos;
        const need = this.headerLength();
        const inPage = this.blockSize > 0 ? at % this.blockSize : at;
        if (need === 0 || inPage >= need) {
          // Skip to the next page start (or the end of the chunk).
          if (this.blockSize === 0) break; // 'first-page' mode: the first page was all there was to check
          pos += Math.min(chunk.length - pos, this.blockSize - inPage);
          continue;
        }
        if (this.headLen === 0 && chunk.length - pos >= need && this.first) {
          // The whole header is in this chunk (nearly always): checked where it lies, no copy.
          this.page(at, asBuffer(chunk), pos);
          pos += need;
          continue;
        }
        const take = Math.min(need - this.headLen, chunk.length - pos);
        this.head.set(chunk.subarray(pos, pos + take), this.headLen);
        this.headLen += take;
        pos += take;
        if (this.headLen === need) {
          this.page(at + take - need, this.head, 0);
          this.headLen = 0;
        }
      }
    }
    this.bytes += chunk.length;
  }

  /** Header bytes to collect at the start of a page; 0 when no more headers are checked. */
  private headerLength(): number {
    if (!this.first) return SIZE_OF_LONG_PAGE_HEADER;
    if (this.mode !== 'pages') return 0;
    return SIZE_OF_SHORT_PAGE_HEADER;
  }

  /** Check the header of the page at `offset`: its bytes are in `buf` from `at`. */
  private page(offset: number, buf: Buffer, at: number): void {
    if (offset === 0) {
      let h: LongPageHeader;
      try {
        h = validateSegmentHeader(this.head, {
          timeline: this.timeline, segno: this.segStart / BigInt(this.target.size), walSegmentSize: this.target.size,
          ...(this.target.systemIdentifier !== undefined ? { systemIdentifier: this.target.systemIdentifier } : {}),
        });
      } catch (err) {
        this.fail(`first page: ${(err as Error).message}`);
      }
      this.first = h;
      this.lastTli = h.timeline;
      this.blockSize = this.mode === 'pages' ? h.blockSize : 0;
      return;
    }
    // Per page (2047 times a 16 MiB segment): numbers only, the message is built on failure.
    const where = (): string => `page at offset ${offset} (${formatLsn(this.segStart + BigInt(offset))})`;
    if (isZero(buf, at, SIZE_OF_SHORT_PAGE_HEADER)) {
      // The rest of a switched segment: from here on every byte must be zero.
      this.zeroFrom = offset;
      return;
    }
    const magic = buf.readUInt16LE(at);
    const info = buf.readUInt16LE(at + 2);
    const tli = buf.readUInt32LE(at + 4);
    const first = this.first!;
    if (magic !== first.magic) this.fail(`${where()}: magic 0x${magic.toString(16)} differs from the first page's 0x${first.magic.toString(16)}`);
    if ((info & ~XLP_ALL_FLAGS) !== 0) this.fail(`${where()}: invalid info bits 0x${info.toString(16)}`);
    if ((info & XLP_LONG_HEADER) !== 0) this.fail(`${where()}: a long page header inside the segment`);
    // The page address (uint64 LE) against segment start + offset, as two 32-bit halves.
    const lo = this.segStartLo + offset;
    const expectedLo = lo % 0x1_0000_0000;
    const expectedHi = this.segStartHi + Math.floor(lo / 0x1_0000_0000);
    if (buf.readUInt32LE(at + 8) !== expectedLo || buf.readUInt32LE(at + 12) !== expectedHi) {
      this.fail(`${where()}: page address ${formatLsn(buf.readBigUInt64LE(at + 8))} (not the page's own: stale or misplaced bytes)`);
    }
    if (tli < this.lastTli || tli > this.timeline) {
      this.fail(`${where()}: timeline ${tli} out of sequence (previous page ${this.lastTli}, segment ${this.timeline})`);
    }
    this.lastTli = tli;
  }

  /** The stream ended: it must have been exactly the expected size. */
  finish(): void {
    if (this.bytes !== this.target.size) this.fail(`${this.bytes} bytes, expected exactly ${this.target.size}`);
  }
}


const ZEROS = Buffer.alloc(64 * 1024);

function asBuffer(b: Uint8Array): Buffer {
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

/** True when `len` bytes of `buf` from `at` are all zero. */
function isZero(buf: Buffer, at: number, len: number): boolean {
  for (let i = at; i < at + len; i++) if (buf[i] !== 0) return false;
  return true;
}

/** Index of the first non-zero byte of `buf` at or after `from`, or -1. */
function firstNonZero(buf: Uint8Array, from: number): number {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  for (let i = from; i < b.length; i += ZEROS.length) {
    const end = Math.min(b.length, i + ZEROS.length);
    if (b.subarray(i, end).equals(ZEROS.subarray(0, end - i))) continue;
    for (let j = i; j < end; j++) if (b[j] !== 0) return j;
  }
  return -1;
}
