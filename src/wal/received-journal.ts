/**
 * The received-WAL journal (pure): on a local filesystem repository, pgark receive stores the
 * segment it is receiving as one preallocated file written in place, one record per flush,
 * made durable with one fdatasync (no new file, no directory change), instead of one
 * repository object per flush. docs/FORMAT.md "Received-WAL journal".
 *
 * A journal of segment S whose key says it starts at offset `start` is a sequence of records
 * from file offset 0, each:
 *
 *   magic 'RJ01' (4) | segment offset u32 BE | length u32 BE | 0 u32 | sha256 (32) | data (length)
 *
 * sha256 covers the segment's name (24 ASCII bytes), the 16 header bytes before it, and the
 * data. The first record starts at `start`, each next one where the previous one ended. What a
 * journal holds is its valid prefix: the records up to the first that is missing (zeros of the
 * preallocation), torn, fails its checksum or does not continue the previous one. A writer
 * appends a record only after the previous one was synced, so a crash leaves at most one torn
 * record, at the end, and nothing after it was ever reported flushed.
 */
import { createHash, hash } from 'node:crypto';

export const JOURNAL_MAGIC = 0x524a3031; // 'RJ01'
export const RECORD_HEADER = 48;
/** A journal file is never larger (a writer starts another journal of the segment there). */
export const JOURNAL_FILE_MAX = 64 * 1024 * 1024;
/** Records hold at most this much data (bigger flushes are split): bounded hashing and reads. */
export const MAX_RECORD_DATA = 1024 * 1024;

export interface JournalRecord {
  /** Where the record's header is in the journal file. */
  pos: number;
  /** The bytes [start, start + length) of the segment. */
  start: number;
  length: number;
}

export interface JournalContent {
  /** Segment offset where the valid prefix ends (the key's start when it holds no record). */
  end: number;
  records: JournalRecord[];
  /** File bytes the valid records take. */
  validBytes: number;
  /**
   * Non-zero bytes right after the valid prefix: a record torn by a crash (normal, it was never
   * reported flushed) or damage. Zero when the journal ends in its preallocation.
   */
  tailNonZero: boolean;
}

function digest(segment: string, header: Buffer, data: Buffer | readonly Buffer[]): Buffer {
  const h = createHash('sha256').update(segment, 'latin1').update(header.subarray(0, 16));
  if (Buffer.isBuffer(data)) h.update(data);
  else for (const d of data) h.update(d);
  return h.digest();
}

/** Records up to this size are hashed in one call over one copy (no hash object: a synchronous standby's commits). */
const ONE_SHOT = 16 * 1024;
/** Scratch for the one-shot hash: segment name (24) + header fields (16) + data. */
const scratch = Buffer.allocUnsafe(24 + 16 + ONE_SHOT);

/** The header of a record holding `data` (one buffer or several, in order) at segment offset `start`. */
export function recordHeader(segment: string, start: number, data: Buffer | readonly Buffer[]): Buffer {
  const length = Buffer.isBuffer(data) ? data.length : data.reduce((n, d) => n + d.length, 0);
  if (!(Number.isInteger(start) && start >= 0 && length > 0 && length <= MAX_RECORD_DATA && start + length <= 0xffffffff)) {
    throw new RangeError(`invalid journal record ${start}+${length}`);
  }
  const header = Buffer.allocUnsafe(RECORD_HEADER);
  header.writeUInt32BE(JOURNAL_MAGIC, 0);
  header.writeUInt32BE(start, 4);
  header.writeUInt32BE(length, 8);
  header.writeUInt32BE(0, 12);
  // The same bytes hashed either way: segment name, the 16 header bytes, the data.
  if (length <= ONE_SHOT && Buffer.isBuffer(data) && segment.length === 24) {
    scratch.write(segment, 0, 24, 'latin1');
    header.copy(scratch, 24, 0, 16);
    data.copy(scratch, 40);
    const d = hash('sha256', scratch.subarray(0, 40 + length), 'buffer') as unknown as Buffer;
    d.copy(header, 16);
  } else {
    digest(segment, header, data).copy(header, 16);
  }
  return header;
}

/**
 * Reads a journal as its bytes arrive, keeping at most one record in memory: push() returns the
 * data of each record once it is whole and verified; at the first byte that is not a valid
 * record `done` is set (the caller stops reading), and finish() says the file ended.
 */
export class JournalScanner {
  /** Segment offset where the valid records end so far. */
  end: number;
  records = 0;
  validBytes = 0;
  tailNonZero = false;
  done = false;
  private pending: Buffer = Buffer.alloc(0);

  constructor(private readonly segment: string, readonly start: number) {
    this.end = start;
  }

  push(chunk: Buffer): Buffer[] {
    if (this.done) return [];
    const buf = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    const out: Buffer[] = [];
    let off = 0;
    while (buf.length - off >= RECORD_HEADER) {
      const header = buf.subarray(off, off + RECORD_HEADER);
      const length = header.readUInt32BE(8);
      if (header.readUInt32BE(0) !== JOURNAL_MAGIC || header.readUInt32BE(4) !== this.end || header.readUInt32BE(12) !== 0 || length === 0 || length > MAX_RECORD_DATA) {
        this.stop(buf.subarray(off, off + RECORD_HEADER));
        return out;
      }
      if (buf.length - off < RECORD_HEADER + length) break;
      const data = buf.subarray(off + RECORD_HEADER, off + RECORD_HEADER + length);
      if (!digest(this.segment, header, data).equals(header.subarray(16, 48))) {
        this.stop(header);
        return out;
      }
      out.push(data);
      this.records += 1;
      this.validBytes += RECORD_HEADER + length;
      this.end += length;
      off += RECORD_HEADER + length;
    }
    this.pending = buf.subarray(off);
    return out;
  }

  /** The file ended: what is left is a torn record (non-zero) or zeros. */
  finish(): void {
    if (!this.done) this.stop(this.pending.subarray(0, RECORD_HEADER));
  }

  private stop(tail: Buffer): void {
    this.done = true;
    this.tailNonZero = tail.some((b) => b !== 0);
    this.pending = Buffer.alloc(0);
  }
}

/** The valid prefix of a journal of `segment` whose first record is at `start` (see the file comment). */
export function parseJournal(segment: string, start: number, file: Buffer): JournalContent {
  const sc = new JournalScanner(segment, start);
  const records: JournalRecord[] = [];
  let pos = 0;
  let at = start;
  for (const data of sc.push(file)) {
    records.push({ pos, start: at, length: data.length });
    pos += RECORD_HEADER + data.length;
    at += data.length;
  }
  sc.finish();
  return { end: sc.end, records, validBytes: sc.validBytes, tailNonZero: sc.tailNonZero };
}
