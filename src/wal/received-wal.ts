/**
 * Received WAL in the repository: the pieces of segments a receiver is streaming (listing,
 * chains, reading a segment's received prefix). Used by the receiver to resume, by wal-fetch to
 * serve the newest segment, and by wal-verify/info to show what was received.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { PassThrough, Readable } from 'node:stream';
import { pipeline, Transform, type TransformCallback } from 'node:stream';
import { AlreadyExistsError, ArchiveMismatchError, IntegrityError, InvalidInputError, NotFoundError } from '../common/errors.js';
import type { CodecName } from '../io/codec.js';
import { receivedJournalOfKey, receivedPieceKey, receivedPieceOfKey, receivedPrefix, type ReceivedPieceRef } from '../repo/layout.js';
import { JOURNAL_FILE_MAX, JournalScanner } from './received-journal.js';
import type { Repository } from '../repo/repository.js';
import { pieceChain } from './received-pieces.js';
import { isLiveStreaming, readReceiverStatuses } from './receiver-statuses.js';

export interface StoredPiece extends ReceivedPieceRef {
  key: string;
  storedSize: number;
  mtimeMs: number;
  /**
   * A received-WAL journal (received-journal.ts), not an object: [start, end) is its valid
   * prefix when it was listed (end = start when it holds no valid record or was not read).
   */
  journal?: { tailNonZero: boolean };
}

/**
 * Every received piece and journal under the stanza (or one timeline / segment), grouped by
 * segment. Journals are read to find their valid prefix, unless `o.readJournals` is false
 * (callers that only delete).
 */
export async function listReceived(repo: Repository, timeline?: number, segment?: string, o: { readJournals?: boolean } = {}): Promise<Map<string, StoredPiece[]>> {
  const bySegment = new Map<string, StoredPiece[]>();
  for await (const obj of repo.list(receivedPrefix(repo.stanza, timeline, segment))) {
    let piece: StoredPiece;
    const ref = receivedPieceOfKey(obj.path);
    if (ref) {
      piece = { ...ref, key: obj.path, storedSize: obj.size, mtimeMs: obj.mtimeMs };
    } else {
      const j = receivedJournalOfKey(obj.path);
      if (!j) continue;
      piece = { ...j, end: j.start, key: obj.path, storedSize: obj.size, mtimeMs: obj.mtimeMs, journal: { tailNonZero: false } };
      if (o.readJournals !== false) {
        const c = await readJournal(repo, obj.path, j.segment, j.start);
        if (!c) continue; // stored whole and removed since the listing
        piece.end = c.end;
        piece.journal = { tailNonZero: c.tailNonZero };
      }
    }
    const list = bySegment.get(piece.segment) ?? [];
    list.push(piece);
    bySegment.set(piece.segment, list);
  }
  return bySegment;
}

/**
 * Read a listed journal again and check its records (wal-verify --read): IntegrityError when its
 * valid records now end below what was listed (damage: they are never rewritten).
 */
export async function verifyJournal(repo: Repository, p: StoredPiece): Promise<void> {
  const c = await readJournal(repo, p.key, p.segment, p.start);
  if (c && c.end < p.end) throw new IntegrityError(`unable to read '${p.key}': the journal's valid records end at ${c.end}, it was listed up to ${p.end}`);
}

/**
 * Read a journal's valid prefix, record by record (at most one in memory), handing each
 * verified record's data to `onData` until it returns false; reading stops at the first byte
 * that is not a valid record. Undefined when it is gone (the segment was stored whole meanwhile).
 */
async function readJournal(
  repo: Repository, key: string, segment: string, start: number, onData?: (data: Buffer) => boolean | Promise<boolean>,
): Promise<JournalScanner | undefined> {
  let body;
  try {
    body = await repo.getRaw(key);
  } catch (err) {
    if (err instanceof NotFoundError) return undefined;
    throw err;
  }
  const sc = new JournalScanner(segment, start);
  let read = 0;
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      read += chunk.length;
      if (read > JOURNAL_FILE_MAX) throw new IntegrityError(`unable to read '${key}': larger than a journal can be (${JOURNAL_FILE_MAX} bytes)`);
      for (const data of sc.push(chunk)) if (onData && !(await onData(data))) return sc;
      if (sc.done) return sc;
    }
    sc.finish();
    return sc;
  } finally {
    body.destroy();
  }
}

export interface ReceivedSegment {
  segment: string;
  /** Bytes of the segment received and stored from offset 0. */
  end: number;
  chain: StoredPiece[];
  /** Pieces not on the chain (merged away but not yet deleted, or past a hole). */
  stray: StoredPiece[];
  lastModifiedMs: number;
}

export function receivedSegment(segment: string, pieces: StoredPiece[]): ReceivedSegment {
  const { end, chain } = pieceChain(pieces);
  const on = new Set(chain.map((p) => p.key));
  return {
    segment,
    end,
    chain,
    stray: pieces.filter((p) => !on.has(p.key)),
    lastModifiedMs: Math.max(0, ...pieces.map((p) => p.mtimeMs)),
  };
}

/** The received prefix of one segment (end 0 when nothing was received). */
export async function readReceivedSegment(repo: Repository, segment: string): Promise<ReceivedSegment> {
  const timeline = Number.parseInt(segment.slice(0, 8), 16);
  const pieces = (await listReceived(repo, timeline, segment)).get(segment) ?? [];
  return receivedSegment(segment, pieces);
}

/**
 * A stream of the chain's bytes [0, upTo), each piece verified against its checksum, then
 * `padTo - upTo` zero bytes (a partial segment served as a whole one, the way pg_receivewal
 * leaves `.partial` files).
 */
export function chainStream(repo: Repository, chain: readonly StoredPiece[], upTo: number, padTo = upTo): Readable {
  const out = new PassThrough({ highWaterMark: 1024 * 1024 });
  void (async () => {
    let pos = 0;
    for (const p of chain) {
      if (pos >= upTo) break;
      if (p.start !== pos) throw new ArchiveMismatchError(`received piece '${p.key}' starts at ${p.start}, expected ${pos}`);
      if (p.journal) {
        // Its records up to the listed end, each verified again: written once, never rewritten.
        const last = Math.min(upTo, p.end);
        const c = await readJournal(repo, p.key, p.segment, p.start, async (data) => {
          const take = Math.min(data.length, last - pos);
          if (take > 0 && !out.write(take === data.length ? data : data.subarray(0, take))) await new Promise((r) => out.once('drain', r));
          pos += take;
          return pos < last;
        });
        // Gone: the segment was stored whole meanwhile (as when a piece is deleted under a reader).
        if (!c) throw new NotFoundError(p.key);
        if (pos < last) throw new IntegrityError(`unable to read '${p.key}': the journal's valid records end at ${c.end}, it was listed up to ${p.end}`);
        continue;
      }
      const body = await repo.getObject(p.key);
      for await (const chunk of body as AsyncIterable<Buffer>) {
        const take = Math.min(chunk.length, upTo - pos);
        if (take > 0 && !out.write(take === chunk.length ? chunk : chunk.subarray(0, take))) await new Promise((r) => out.once('drain', r));
        pos += take;
      }
      const t = await body.verified;
      if (t.rawSize !== p.end - p.start) throw new IntegrityError(`unable to read '${p.key}': the stored piece is ${t.rawSize} bytes, its name says ${p.end - p.start}`);
    }
    if (pos < upTo) throw new ArchiveMismatchError(`received pieces end at ${pos}, expected ${upTo}`);
    const zeros = Buffer.alloc(64 * 1024);
    for (let left = padTo - pos; left > 0; left -= zeros.length) {
      if (!out.write(left >= zeros.length ? zeros : zeros.subarray(0, left))) await new Promise((r) => out.once('drain', r));
    }
    out.end();
  })().catch((err: unknown) => out.destroy(err as Error));
  return out;
}

/**
 * Store an immutable object, from a stream (`open` is called again for retries and the
 * comparison) or, when small, from a buffer written uncompressed in one request. One already
 * there must hold the same bytes (a retried or repeated store): anything else is an
 * ArchiveMismatchError and nothing is overwritten.
 */
export async function storeImmutable(
  repo: Repository, key: string, source: (() => Readable) | Buffer, codec: CodecName, expectedSize?: number,
): Promise<{ key: string; storedSize: number; sha256: string; existed: boolean }> {
  // The size is checked before the object can become visible: a short read fails the upload.
  const wrongSize = (n: number) => new InvalidInputError(`unable to store '${key}': ${n} bytes to store, expected ${expectedSize}; nothing was stored`);
  if (Buffer.isBuffer(source) && expectedSize !== undefined && source.length !== expectedSize) throw wrongSize(source.length);
  let refused: InvalidInputError | undefined;
  try {
    const r = Buffer.isBuffer(source)
      ? await repo.putSmallObject(key, source, { ifAbsent: true })
      : await repo.putObject(key, () => {
        refused = undefined;
        return expectedSize === undefined ? source() : pipeline(source(), new ExactSize(expectedSize, (n) => (refused = wrongSize(n))), () => undefined);
      }, { codec, ifAbsent: true });
    return { key, storedSize: r.storedSize, sha256: r.sha256, existed: false };
  } catch (err) {
    if (refused) throw refused;
    if (!(err instanceof AlreadyExistsError)) throw err;
    const st = await repo.stat(key);
    if (!st) throw err;
    const theirs = await repo.readTrailer(key, st.size);
    const h = createHash('sha256');
    let size = 0;
    for await (const c of (Buffer.isBuffer(source) ? [source] : source()) as AsyncIterable<Buffer>) {
      h.update(c);
      size += c.length;
    }
    const mine = h.digest('hex');
    if (!(await repo.trailerMatches(key, theirs, mine, size))) {
      throw new ArchiveMismatchError(`archive mismatch: '${key}' already holds different content (${theirs.rawSize} bytes, ours ${size}); it was left unchanged`);
    }
    return { key, storedSize: st.size, sha256: mine, existed: true };
  }
}

/** Passes exactly `size` bytes on, or errors (after calling `onWrong` with the count) instead of ending. */
class ExactSize extends Transform {
  private n = 0;
  constructor(private readonly size: number, private readonly onWrong: (n: number) => Error) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.n += chunk.length;
    if (this.n > this.size) return cb(this.onWrong(this.n));
    cb(null, chunk);
  }
  override _flush(cb: TransformCallback): void {
    cb(this.n === this.size ? null : this.onWrong(this.n));
  }
}

/** Store bytes [start, end) of `segment` as a piece. */
export async function storePiece(
  repo: Repository, segment: string, start: number, end: number,
  source: (() => Readable) | Buffer, codec: CodecName,
): Promise<{ key: string; storedSize: number; sha256: string }> {
  return storeImmutable(repo, receivedPieceKey(repo.stanza, segment, start, end), source, codec, end - start);
}

/** A readable of bytes [start, end) of a local file. */
export function fileRange(path: string, start: number, end: number): Readable {
  return end > start ? createReadStream(path, { start, end: end - 1, highWaterMark: 1024 * 1024 }) : Readable.from([]);
}

/** Names of receivers whose status object says they are streaming and is fresh (receiver-statuses.ts). */
export async function liveReceivers(repo: Repository, nowMs = Date.now()): Promise<string[]> {
  // an unreadable status says nothing about a live receiver
  return (await readReceiverStatuses(repo)).filter((s) => isLiveStreaming(s, nowMs)).map((s) => s.name);
}
