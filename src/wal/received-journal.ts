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
import { createHash } from 'node:crypto';

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

/** The header of a record holding `data` (one buffer or several, in order) at segment offset `start`. */
export function recordHeader(segment: string, start: number, data: Buffer | readonly Buffer[]): Buffer {
  const length = Buffer.isBuffer(data) ? data.length : data.reduce((n, d) => n + d.length, 0);
  if (!(Number.isInteger(start) && start >= 0 && length > 0 && length <= MAX_RECORD_DATA && start + length <= 0xffffffff)) {
    throw new RangeError(`invalid journal record ${start}+${length}`);
  }
  const header = Buffer.alloc(RECORD_HEADER);
  header.writeUInt32BE(JOURNAL_MAGIC, 0);
  header.writeUInt32BE(start, 4);
  header.writeUInt32BE(length, 8);
  digest(segment, header, data).copy(header, 16);
  return header;
}

/** The valid prefix of a journal of `segment` whose first record is at `start` (see the file comment). */
export function parseJournal(segment: string, start: number, file: Buffer): JournalContent {
  const records: JournalRecord[] = [];
  let pos = 0;
  let end = start;
  while (pos + RECORD_HEADER <= file.length) {
    const header = file.subarray(pos, pos + RECORD_HEADER);
    if (header.readUInt32BE(0) !== JOURNAL_MAGIC || header.readUInt32BE(4) !== end || header.readUInt32BE(12) !== 0) break;
    const length = header.readUInt32BE(8);
    if (length === 0 || length > MAX_RECORD_DATA || pos + RECORD_HEADER + length > file.length) break;
    const data = file.subarray(pos + RECORD_HEADER, pos + RECORD_HEADER + length);
    if (!digest(segment, header, data).equals(header.subarray(16, 48))) break;
    records.push({ pos, start: end, length });
    pos += RECORD_HEADER + length;
    end += length;
  }
  let tailNonZero = false;
  for (let i = pos; i < Math.min(file.length, pos + RECORD_HEADER); i++) {
    if (file[i] !== 0) {
      tailNonZero = true;
      break;
    }
  }
  return { end, records, validBytes: pos, tailNonZero };
}

/** The data of the records, in order: bytes [records[0].start, end) of the segment. */
export function* journalData(file: Buffer, records: readonly JournalRecord[]): Generator<Buffer> {
  for (const r of records) yield file.subarray(r.pos + RECORD_HEADER, r.pos + RECORD_HEADER + r.length);
}
