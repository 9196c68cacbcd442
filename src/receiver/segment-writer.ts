/**
 * The segment a receiver is writing: streamed bytes go to a local spool file, are stored in the
 * repository as pieces at each flush, and once the segment is whole it is stored as a normal
 * archive object, exactly as wal-push would store it; then its pieces are deleted.
 * Memory stays small: piece and segment uploads read the spool file.
 *
 * With several repositories (`set`): every piece goes to every required repository (in
 * parallel; flushLsn moves only when each has it), a whole segment too, and each async one gets
 * a backlog record for it, filled behind by the BacklogFiller (wal/wal-push-set.ts
 * storeInEveryRepo, as wal-push and the agent store). With `repo` alone nothing changes.
 */
import { randomBytes } from 'node:crypto';
import { readSync, writeSync } from 'node:fs';
import { mkdir, open, rm, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { LockedError, ProtocolError } from '../common/errors.js';
import { log } from '../common/log.js';
import type { CodecName } from '../io/codec.js';
import type { RepoSet, RepoSetMember } from '../repo/repo-set.js';
import type { Repository } from '../repo/repository.js';
import { pushWalFile, type PushResult } from '../wal/push-file.js';
import { storeInEveryRepo, type BacklogFiller } from '../wal/wal-push-set.js';
import { formatLsn, segmentName } from '../wal/segment-name.js';
import { mergeFrom } from '../wal/received-pieces.js';
import { fileRange, listReceived, storePiece } from '../wal/received-wal.js';
import { JOURNAL_FILE_MAX, MAX_RECORD_DATA, RECORD_HEADER, recordHeader } from '../wal/received-journal.js';
import { receivedJournalKey } from '../repo/layout.js';
import type { InPlaceFile } from '../../storage-drivers/types.js';

/** Pieces up to this size are stored uncompressed from memory in one request. */
const SMALL_PIECE = 64 * 1024;
/** Merged pieces up to this size are stored uncompressed from memory too (they are short-lived). */
const SMALL_MERGE = 256 * 1024;
/** A journal that fills up grows by this much at a time. */
const GROW_BY = 1024 * 1024;
/** Segments up to this size can be spooled in memory (WriterConfig.spoolInMemory). */
export const MEMORY_SPOOL_MAX = 64 * 1024 * 1024;

export interface WriterConfig {
  /** The first repository (the set's first when there is a set). */
  repo: Repository;
  codec: CodecName;
  /** repo2, repo3: the whole set, each repository's codec by name, and who fills the async ones behind. */
  set?: RepoSet | undefined;
  codecs?: ReadonlyMap<string, CodecName> | undefined;
  filler?: BacklogFiller | undefined;
  walSegmentSize: number;
  spoolDir: string;
  /** Merge pieces when a segment has more than this many (default 16). */
  maxPieces?: number;
  /**
   * Store flushes in a received-WAL journal (wal/received-journal.ts) where the repository can
   * (fs store, plain stanza, one repository): one fdatasync per flush. Default true; false keeps
   * one object per flush.
   */
  journal?: boolean;
  /**
   * Preallocate the journal (zeros for the rest of the segment) so that a flush's fdatasync
   * changes no metadata: for small frequent flushes (--synchronous). Default true; false: the
   * journal grows as it is written (large flushes once a second, no zero-fill to write).
   */
  preallocate?: boolean;
  /**
   * Keep the segment being received in memory (one buffer of the segment size, reused) instead
   * of writing every message to the spool file: no write system call per message. The spool
   * file is written once, when the segment is complete, to store it whole from. For segments up
   * to MEMORY_SPOOL_MAX (larger ones use the spool file). Default false.
   */
  spoolInMemory?: boolean;
  /**
   * True while this process holds the spool directory's lock (the receiver's). Spool files are
   * created, truncated and removed only then: a process that lost the lock touches nothing.
   */
  ownsSpool?: () => boolean;
}

export interface WriterCounters {
  piecesStored: number;
  segmentsStored: number;
  bytesStored: number;
  lastFlushAtMs: number;
}

interface Piece {
  start: number;
  end: number;
  key: string;
}

/** Where the prefix of the first segment comes from when the writer starts mid-segment. */
export interface SegmentPrefix {
  stream: Readable;
  /** Pieces of this very segment already stored that cover the prefix (none when it comes from another timeline). */
  pieces: Piece[];
}

export class SegmentWriter {
  readonly counters: WriterCounters = { piecesStored: 0, segmentsStored: 0, bytesStored: 0, lastFlushAtMs: 0 };
  /** The spool file (file spool), or undefined when the segment is in `mem`. */
  private fh: FileHandle | undefined;
  /** The segment's bytes [0, written) when spooled in memory (WriterConfig.spoolInMemory). */
  private readonly mem: Buffer | undefined;
  private path = '';
  private name = '';
  private segno = 0n;
  /** Bytes of the current segment in the spool file. */
  private written = 0;
  /** Bytes of the current segment stored in the repository. */
  private flushed = 0;
  private pieces: Piece[] = [];
  /** The unflushed bytes while they are few (a synchronous receiver's commits): stored from memory. */
  private pending: Buffer[] | undefined = [];
  private pendingBytes = 0;
  private cleanup: Promise<void> = Promise.resolve();
  /** The merge running behind the flushes (mergeBehind), and the error of one that failed. */
  private merging: Promise<void> | undefined;
  private mergeError: unknown;
  /** The segment's journal being written (journal mode), and whether this repository cannot have one. */
  private journal: { file: InPlaceFile; key: string; start: number; pos: number } | undefined;
  private noJournal: boolean;
  /**
   * A journal write or sync that failed: what reached the file past the valid prefix is unknown,
   * so this writer stores nothing more (every flush throws it); the next session resumes after
   * the stored records, in a new journal.
   */
  private journalError: unknown;

  private constructor(private readonly cfg: WriterConfig, private tli: number) {
    this.noJournal = cfg.journal === false || (cfg.set?.members.length ?? 1) > 1;
    this.mem = cfg.spoolInMemory && cfg.walSegmentSize <= MEMORY_SPOOL_MAX ? Buffer.allocUnsafe(cfg.walSegmentSize) : undefined;
  }

  /** Start writing at `lsn` on `timeline`; mid-segment starts need the segment's prefix. */
  static async open(cfg: WriterConfig, timeline: number, lsn: bigint, prefix?: SegmentPrefix): Promise<SegmentWriter> {
    await mkdir(cfg.spoolDir, { recursive: true, mode: 0o700 });
    const w = new SegmentWriter(cfg, timeline);
    const seg = BigInt(cfg.walSegmentSize);
    await w.begin(lsn / seg);
    try {
      const offset = Number(lsn % seg);
      if (offset > 0) {
        if (!prefix) throw new ProtocolError(`unable to resume at ${formatLsn(lsn)}: the start of segment ${w.name} is not available`);
        await w.fill(prefix.stream, offset);
        w.pending = undefined;
        // With other required repositories the prefix is stored again as one piece in each:
        // the pieces found are one repository's, and a flush position must be in all of them.
        if (prefix.pieces.length > 0 && !w.several) {
          w.pieces = [...prefix.pieces];
          w.flushed = offset;
        } else {
          await w.flush();
        }
      }
      return w;
    } catch (err) {
      prefix?.stream.destroy();
      await w.close().catch(() => undefined);
      throw err;
    }
  }

  get timeline(): number {
    return this.tli;
  }

  get segment(): string {
    return this.name;
  }

  /** The LSN where the current segment starts (set by begin). */
  private segStart = 0n;

  /** End of what was received (written to the spool). */
  get writeLsn(): bigint {
    return this.segStart + BigInt(this.written);
  }

  /** End of what is durably stored in the repository. */
  get flushLsn(): bigint {
    return this.segStart + BigInt(this.flushed);
  }

  get unflushed(): number {
    return this.written - this.flushed;
  }

  /** More than one repository: stores go through the set. */
  private get several(): boolean {
    return (this.cfg.set?.members.length ?? 1) > 1;
  }

  private codecOf(m: RepoSetMember): CodecName {
    return this.cfg.codecs?.get(m.name) ?? this.cfg.codec;
  }

  /** The repositories that keep received pieces: the first, and the other required ones. */
  private get pieceRepos(): Repository[] {
    return this.several ? this.cfg.set!.required.map((m) => m.repo!) : [this.cfg.repo];
  }

  /** Store bytes [start, end) as a piece in every required repository (any failure throws: not flushed). */
  private async putPiece(start: number, end: number, source: (() => Readable) | Buffer): Promise<{ key: string }> {
    if (!this.several) return storePiece(this.cfg.repo, this.name, start, end, source, this.cfg.codec);
    const name = this.name;
    const r = await storeInEveryRepo(this.cfg.set!, `${name} (bytes ${start}-${end})`,
      async (repo, m) => ({ ...(await storePiece(repo, name, start, end, source, this.codecOf(m))), status: 'stored' as const }), { async: 'none' });
    return r.required[0]!;
  }

  /** Store the whole segment in every required repository; each async one gets a backlog record, filled behind. */
  private async putSegment(path: string, name: string): Promise<PushResult> {
    const file = { path, name, size: this.cfg.walSegmentSize };
    if (!this.several) return pushWalFile(this.cfg.repo, file, { codec: this.cfg.codec });
    const r = await storeInEveryRepo(this.cfg.set!, name, (repo, m) => pushWalFile(repo, file, { codec: this.codecOf(m) }), { async: 'behind' });
    for (const o of r.outcomes) if (o.status === 'backlog') this.cfg.filler?.noteBacklog(o.repo);
    this.cfg.filler?.kick();
    return r.required[0]!;
  }

  private async deleteEverywhere(keys: string[]): Promise<void> {
    await Promise.all(this.pieceRepos.map((r) => r.delete(keys)));
  }

  private assertOwnsSpool(): void {
    if (this.cfg.ownsSpool && !this.cfg.ownsSpool()) {
      throw new LockedError(`the lock of the spool directory '${this.cfg.spoolDir}' is no longer held by this receiver (removed or taken over); not touching its files`);
    }
  }

  private async removeSpool(path: string): Promise<void> {
    this.assertOwnsSpool();
    await rm(path, { force: true });
  }

  private async closeJournal(): Promise<void> {
    const j = this.journal;
    this.journal = undefined;
    await j?.file.close();
  }

  private async begin(segno: bigint): Promise<void> {
    await this.closeJournal();
    this.segno = segno;
    this.segStart = segno * BigInt(this.cfg.walSegmentSize);
    this.name = segmentName({ timeline: this.tli, segno }, this.cfg.walSegmentSize);
    this.path = join(this.cfg.spoolDir, `${this.name}.receiving`);
    if (!this.mem) {
      this.assertOwnsSpool();
      this.fh = await open(this.path, 'w+', 0o600);
    }
    this.written = 0;
    this.flushed = 0;
    this.pieces = [];
    this.pending = [];
    this.pendingBytes = 0;
  }

  private async fill(stream: Readable, upTo: number): Promise<void> {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      const take = Math.min(chunk.length, upTo - this.written);
      if (take <= 0) continue;
      if (this.mem) chunk.copy(this.mem, this.written, 0, take);
      else await this.fh!.write(chunk, 0, take, this.written);
      this.written += take;
    }
    if (this.written !== upTo) throw new ProtocolError(`unable to resume in segment ${this.name}: only ${this.written} of ${upTo} bytes of its start are stored`);
  }

  /**
   * Append streamed WAL starting at `walStart`, which must be exactly where the last one ended.
   * Returns a promise only when a segment was completed (it is stored whole): the usual message
   * costs no promise. Callers await what it returns. A wrong position throws ProtocolError at once.
   */
  append(walStart: bigint, data: Buffer): Promise<void> | undefined {
    if (walStart !== this.writeLsn) {
      throw new ProtocolError(`unexpected WAL position from the server: got ${formatLsn(walStart)}, expected ${formatLsn(this.writeLsn)} (a gap or an overlap; nothing was stored from it)`);
    }
    const seg = this.cfg.walSegmentSize;
    if (this.written + data.length < seg) {
      this.put(data, 0, data.length);
      return undefined;
    }
    return this.appendAcross(data);
  }

  /** Append `data` that reaches the end of the segment: each whole segment is stored before the rest goes on. */
  private async appendAcross(data: Buffer): Promise<void> {
    let off = 0;
    while (off < data.length) {
      const take = Math.min(data.length - off, this.cfg.walSegmentSize - this.written);
      this.put(data, off, take);
      off += take;
      if (this.written === this.cfg.walSegmentSize) await this.complete();
    }
  }

  /** Bytes [off, off + n) of `data` at the end of the segment's spool (within the segment). */
  private put(data: Buffer, off: number, n: number): void {
    if (this.mem) {
      // flush takes views of `mem`: nothing pending to keep
      data.copy(this.mem, this.written, off, off + n);
    } else {
      // A page-cache write: synchronous is far cheaper than a thread-pool round trip per message.
      const fd = this.fh!.fd;
      for (let done = 0; done < n; ) done += writeSync(fd, data, off + done, n - done, this.written + done);
      if (this.pending && this.pendingBytes + n <= SMALL_PIECE) {
        this.pending.push(off === 0 && n === data.length ? data : data.subarray(off, off + n));
        this.pendingBytes += n;
      } else {
        this.pending = undefined;
      }
    }
    this.written += n;
  }

  /** Store what was written since the last flush as one piece. */
  async flush(): Promise<void> {
    this.throwMergeError();
    if (this.written === this.flushed) return;
    const start = this.flushed;
    const end = this.written;
    const small = this.mem
      ? (end - start <= SMALL_PIECE ? this.mem.subarray(start, end) : undefined)
      : this.pending && this.pendingBytes === end - start ? (this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending)) : undefined;
    if (!(await this.journalFlush(start, end, small))) {
      const r = await this.putPiece(start, end, small ?? this.rangeSource(start, end));
      this.pieces.push({ start, end, key: r.key });
    }
    this.pending = [];
    this.pendingBytes = 0;
    this.flushed = end;
    this.counters.piecesStored += 1;
    this.counters.bytesStored += end - start;
    this.counters.lastFlushAtMs = Date.now();
  }

  /**
   * Merge the segment's pieces when there are too many (mergeFrom), behind the flushes: a merge
   * rewrites bytes already stored (the flush position does not move), so the reply that reports
   * a flush does not wait for it. The receiver starts it after its reply; one runs at a time,
   * and flush, complete, switchTimeline and close wait for it (or throw its error) before they
   * touch the pieces or the spool file. Returns the merge in progress (tests wait for it).
   */
  mergeBehind(): Promise<void> | undefined {
    this.throwMergeError();
    if (this.merging) return this.merging;
    // A journal is never merged (and never deleted before the segment is stored whole).
    if (this.journal) return undefined;
    const from = mergeFrom(this.pieces, this.cfg.maxPieces ?? 16);
    if (from === undefined) return undefined;
    this.merging = this.merge(from)
      .catch((err: unknown) => {
        this.mergeError = err;
      })
      .finally(() => (this.merging = undefined));
    return this.merging;
  }

  /** Wait for a merge in progress; its error, if any, is this call's. */
  private async mergeSettled(): Promise<void> {
    await this.merging;
    this.throwMergeError();
  }

  private throwMergeError(): void {
    const err = this.mergeError;
    if (err === undefined) return;
    this.mergeError = undefined;
    throw err;
  }

  private async merge(from: number): Promise<void> {
    const old = this.pieces.slice(from);
    const start = old[0]!.start;
    const end = old[old.length - 1]!.end;
    // Captured now: the spool file and the segment cannot change until this merge settles.
    const path = this.path;
    const r = await this.putPiece(start, end, end - start <= SMALL_MERGE ? this.readSpool(start, end) : this.rangeSource(start, end, path));
    // Flushes meanwhile only appended pieces: the merged ones are still at [from, from + old.length).
    this.pieces.splice(from, old.length, { start, end, key: r.key });
    const doomed = old.map((p) => p.key).filter((k) => k !== r.key);
    const name = this.name;
    // The merged piece is durable; readers prefer it, so the old ones can go in the background.
    this.cleanup = this.cleanup.then(() => this.deleteEverywhere(doomed))
      .catch((err: unknown) => log.warn(`receive: unable to remove merged pieces of ${name}: ${(err as Error).message}`));
  }

  /**
   * Bytes [start, end) of the segment being written. In memory: a view, valid until the writer
   * goes on to the next segment (complete, switchTimeline), which first waits for every store
   * that reads it (a flush, the merge in progress).
   */
  private readSpool(start: number, end: number): Buffer {
    if (this.mem) return this.mem.subarray(start, end);
    const buf = Buffer.allocUnsafe(end - start);
    const fd = this.fh!.fd;
    for (let done = 0; done < buf.length; ) {
      const n = readSync(fd, buf, done, buf.length - done, start + done);
      if (n === 0) throw new ProtocolError(`spool file of ${this.name} is shorter than ${end} bytes`);
      done += n;
    }
    return buf;
  }

  /** A source of bytes [start, end) of the segment for a piece (`path`: the spool file of the segment). */
  private rangeSource(start: number, end: number, path = this.path): () => Readable {
    const mem = this.mem;
    if (mem) return () => Readable.from([mem.subarray(start, end)]);
    return () => fileRange(path, start, end);
  }

  /**
   * Store [start, end) in the segment's journal: records written in place, one fdatasync.
   * False when this repository cannot keep a journal (the caller stores a piece object).
   */
  private async journalFlush(start: number, end: number, small: Buffer | undefined): Promise<boolean> {
    if (this.journalError !== undefined) throw this.journalError;
    if (this.noJournal) return false;
    // A stanza encrypted meanwhile (pgark key init): from here on, encrypted piece objects
    // (the journal's records end exactly at `start`, where the first piece begins).
    if (this.journal && !(await this.cfg.repo.journalAllowed(this.journal.key))) {
      log.info(`receive: the stanza is encrypted now; ${this.name} goes on as encrypted pieces from offset ${start}`);
      await this.closeJournal();
      this.noJournal = true;
      return false;
    }
    try {
      return await this.journalWrite(start, end, small);
    } catch (err) {
      this.journalError = err;
      throw err;
    }
  }

  private async journalWrite(start: number, end: number, small: Buffer | undefined): Promise<boolean> {
    const name = this.name;
    const synced = new Set<{ file: InPlaceFile }>();
    let bytes = 0;
    for (let s = start; s < end; ) {
      const e = Math.min(end, s + MAX_RECORD_DATA);
      const data = small ? small.subarray(s - start, e - start) : this.readSpool(s, e);
      const header = recordHeader(name, s, data);
      const need = RECORD_HEADER + data.length;
      let j = this.journal;
      if (j && j.pos + need > j.file.size) {
        if (j.pos + need <= JOURNAL_FILE_MAX) {
          if (this.cfg.preallocate !== false) await j.file.grow(Math.min(JOURNAL_FILE_MAX, Math.max(j.pos + need, j.file.size + GROW_BY)));
        } else {
          // Full: sync it, and go on in a new journal of the segment from here.
          if (synced.delete(j)) await j.file.datasync();
          await this.closeJournal();
          j = undefined;
        }
      }
      if (!j) {
        const left = this.cfg.walSegmentSize - s;
        const size = this.cfg.preallocate === false ? 0 : Math.min(JOURNAL_FILE_MAX, Math.max(need, left + Math.ceil(left / 8) + GROW_BY));
        const key = receivedJournalKey(this.cfg.repo.stanza, name, s, randomBytes(8).toString('hex'));
        const file = await this.cfg.repo.createJournalFile(key, size);
        if (!file) {
          this.noJournal = true;
          if (s === start) return false;
          throw new ProtocolError(`unable to store ${name}: the repository stopped taking a received-WAL journal`);
        }
        j = this.journal = { file, key, start: s, pos: 0 };
        log.debug(`receive: journal ${key} (${size} bytes preallocated)`);
      }
      j.file.writeSync([header, data], j.pos);
      j.pos += need;
      synced.add(j);
      bytes += need;
      s = e;
    }
    // Durable before the flush position moves: small flushes (a synchronous standby's commits)
    // sync on this thread, large ones off it.
    for (const j of synced) {
      if (bytes <= SMALL_PIECE) j.file.datasyncSync();
      else await j.file.datasync();
    }
    return true;
  }

  /** The segment is whole: store it as an archived segment, then drop its pieces. */
  private async complete(): Promise<void> {
    await this.mergeSettled();
    await this.closeJournal();
    const name = this.name;
    const path = this.path;
    if (this.mem) {
      // Stored whole from a file, as wal-push stores it: written once, here.
      this.assertOwnsSpool();
      await writeFile(path, this.mem, { mode: 0o600 });
    } else {
      await this.fh!.close();
    }
    const r = await this.putSegment(path, name);
    if (r.status === 'stored') this.counters.bytesStored += this.cfg.walSegmentSize - this.flushed;
    this.counters.segmentsStored += 1;
    this.counters.lastFlushAtMs = Date.now();
    log.debug(`receive: segment ${name} ${r.status === 'stored' ? 'stored' : 'already archived (identical)'}`);
    const tli = this.tli;
    this.cleanup = this.cleanup.then(async () => {
      await this.removeSpool(path);
      for (const repo of this.pieceRepos) {
        const keys = [...((await listReceived(repo, tli, name, { readJournals: false })).get(name) ?? [])].map((p) => p.key);
        if (keys.length > 0) await repo.delete(keys);
      }
    }).catch((err: unknown) => log.warn(`receive: unable to remove the pieces of ${name}: ${(err as Error).message}`));
    await this.begin(this.segno + 1n);
  }

  /**
   * Continue on `timeline` from `lsn`, the switch point where the old timeline ended. The new
   * timeline's first segment starts with the old one's bytes up to the switch point; those are
   * stored again under the new segment name. The old segment stays as received pieces.
   */
  async switchTimeline(timeline: number, lsn: bigint): Promise<void> {
    if (lsn !== this.writeLsn) {
      throw new ProtocolError(`timeline ${timeline} starts at ${formatLsn(lsn)} but timeline ${this.tli} was received up to ${formatLsn(this.writeLsn)}`);
    }
    await this.flush();
    await this.mergeSettled();
    const offset = this.written;
    const oldPath = this.path;
    const oldFh = this.fh;
    this.tli = timeline;
    await this.begin(this.segno);
    if (offset > 0) {
      // In memory the bytes are already where the new segment needs them (the same segment number).
      if (this.mem) this.written = offset;
      else await this.fill(fileRange(oldPath, 0, offset), offset);
      this.pending = undefined;
      await this.flush();
    }
    await oldFh?.close();
    await this.removeSpool(oldPath);
  }

  /** Close the spool (what was not flushed is dropped; it is received again on resume). */
  async close(): Promise<void> {
    await this.merging;
    this.mergeError = undefined;
    await this.fh?.close().catch(() => undefined);
    await this.closeJournal().catch(() => undefined);
    await this.cleanup;
    await this.removeSpool(this.path);
  }
}
