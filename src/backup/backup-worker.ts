/**
 * Worker thread of `pgark backup`: stores one object per task. Each file is read once, through
 * sha256 and (with data checksums) page checksum verification; an incremental stores only what
 * changed since its parent:
 * - bundled (small) files are read into memory and referenced from the parent when their
 *   sha256 is unchanged;
 * - a large main-fork relation file is stored as a block delta when `blockDelta` allows it (data
 *   checksums on here and in the parent: block-delta.ts): a block is the parent's when its page
 *   LSN is before the parent's start LSN and not 0, its page checksum verifies and the parent's
 *   copy has it; every other block is stored. Every byte is still read, checksummed and hashed
 *   (the piece's sha256 covers the file as read); only the changed blocks are compressed and
 *   written, each read's runs of them handed to the encoder at once (OnePassEncoder.addRuns);
 * - other large files are stored whole unless size, mtime and sha256 all match the parent.
 */
import { createHash } from 'node:crypto';
import { closeSync, openSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { isNodeError } from '../common/errors.js';
import { serveWorker } from '../common/worker-pool.js';
import { isMainThread } from 'node:worker_threads';
import { compressLz4OnCallingThread } from '../io/codecs/lz4-thread.js';
import { setCompressorBudget } from '../common/gc-budget.js';
import { BufferPool, releaseBuffer, SliceTracker } from '../io/buffer-pool.js';
import type { RepositorySettings } from '../config/resolve.js';
import type { CodecName } from '../io/codec.js';
import { readInto, readIntoSync } from '../io/pooled-file-stream.js';
import { dataObjectKey } from '../repo/layout.js';
import { encodeOnePass, onePassCodec } from '../repo/one-pass-encoder.js';
import type { Repository } from '../repo/repository.js';
import { parseLsn } from '../wal/segment-name.js';
import type { FileEntry, FilePart } from '../catalog/manifest.js';
import { toRanges } from '../catalog/manifest.js';
import { BLCKSZ, PAGE_BAD, PAGE_OK, pageLsn, verifyPageAt, verifyPages } from './page-checksum.js';
import { blockDeltaRule, blockFromParent } from './block-delta.js';
import type { BackupTask, TaskFile } from './tasks.js';

export interface BackupWorkerInit {
  /** What this thread opens the repository with. */
  settings: RepositorySettings;
  backupId: string;
  codec: CodecName;
  level: number | undefined;
  checksums: boolean;
  blockSize: number;
  relsegBlocks: number;
  /** This backup's start LSN: a page with a bad checksum but a newer LSN is being written (WAL restores it). */
  startLsn: string;
  /** Parent's start LSN (incremental only). */
  parentStartLsn?: string;
  /** Main-fork relation files may be stored as page-LSN block deltas (block-delta.ts: blockDeltaRefusal found nothing against it). */
  blockDelta?: boolean;
}

export interface BackupTaskResult {
  n: number;
  entries: FileEntry[];
  rawBytes: number;
  storedBytes: number;
  readBytes: number;
  changedBlocks: number;
  reusedBlocks: number;
}

const CHUNK = 1024 * 1024;
const readPool = new BufferPool(CHUNK);

// This module runs only in a backup (its lanes on the main thread and its worker threads).
setCompressorBudget();

let repoPromise: Promise<Repository> | undefined;

async function repository(init: BackupWorkerInit): Promise<Repository> {
  repoPromise ??= import('../repo/open-repository.js').then((m) => m.openRepository(init.settings, { marker: 'skip' }));
  return repoPromise;
}

interface Attempt {
  entries: FileEntry[];
  offset: number;
  readBytes: number;
  changedBlocks: number;
  reusedBlocks: number;
}

class PageChecker {
  readonly failures: number[] = [];
  /** verifyPages' verdict of each page of the last buffer checked. */
  readonly verdicts = new Uint8Array(CHUNK / BLCKSZ);
  constructor(
    private readonly init: BackupWorkerInit,
    private readonly file: TaskFile,
    /** Reads the file at a position into a buffer, as full as the file allows (a torn page's second read). */
    private readonly readAt: (buf: Buffer, pos: number) => Promise<number> | number,
    private readonly startLsn: bigint,
  ) {}

  get enabled(): boolean {
    return this.init.checksums && this.init.blockSize === BLCKSZ && this.file.relation !== undefined;
  }

  /**
   * Verify the full pages of `buf` (file position `pos`, a multiple of BLCKSZ, at most CHUNK
   * bytes); `verdicts[i]` is then page i's verdict in these bytes. A page that fails is read
   * again (a write in progress may have torn it) and recorded when it fails again, unless its LSN
   * is at or after the backup's start (WAL replay restores it): only then is a promise returned.
   */
  check(buf: Buffer, pos: number): Promise<void> | undefined {
    if (!this.enabled) return undefined;
    const pages = verifyPages(buf, this.base + pos / BLCKSZ, this.verdicts);
    for (let i = 0; i < pages; i++) if (this.verdicts[i] === PAGE_BAD) return this.recheck(buf, pos, pages);
    return undefined;
  }

  /** Absolute block number of the file's first block. */
  get base(): number {
    return (this.file.relation?.segment ?? 0) * this.init.relsegBlocks;
  }

  private async recheck(buf: Buffer, pos: number, pages: number): Promise<void> {
    const first = pos / BLCKSZ;
    const base = this.base;
    for (let i = 0; i < pages; i++) {
      if (this.verdicts[i] !== PAGE_BAD) continue;
      const off = i * BLCKSZ;
      const block = first + i;
      if (pageLsn(buf, off) >= this.startLsn) continue; // being written now: WAL replay restores it
      const again = Buffer.allocUnsafe(BLCKSZ);
      const got = await this.readAt(again, pos + off);
      if (got === BLCKSZ && (verifyPageAt(again, 0, base + block) !== 'bad' || pageLsn(again, 0) >= this.startLsn)) continue;
      this.failures.push(block);
    }
  }
}

/** buf[0, n) as a slice whose release (releaseBuffer) hands a pooled `buf` back to its pool. */
function releasableSlice(buf: Buffer, n: number): Buffer {
  const t = new SliceTracker(buf);
  const slice = t.slice(0, n);
  t.done();
  return slice;
}

function newEntry(f: TaskFile): FileEntry {
  return { t: 'file', path: f.path, size: 0, mode: f.mode, mtimeMs: f.mtimeMs, ...(f.ctimeMs !== undefined ? { ctimeMs: f.ctimeMs } : {}), sha256: '' };
}

/**
 * A bundled (small) file: read whole (bounded by the bundle limit, plus growth while reading)
 * into pooled buffers, which the encoder hands back once it copied them (a file taken from the
 * parent hands them back here), so small files allocate nothing per file. Opened, read and closed
 * synchronously: a small file's read from the page cache costs less than the three threadpool
 * round trips of asynchronous calls (~130 µs of CPU per file measured, bench/results/backup.md),
 * and a backup has hundreds to thousands of them. Only a torn page's second read is awaited.
 */
async function* bundledFileChunks(init: BackupWorkerInit, task: BackupTask, f: TaskFile, a: Attempt, progress: (n: number) => void): AsyncGenerator<Buffer> {
  let fd: number;
  try {
    fd = openSync(f.abs, 'r');
  } catch (err) {
    if (isNodeError(err, 'ENOENT')) return; // removed since the walk: WAL replay recreates or drops it
    throw err;
  }
  const parts: Buffer[] = [];
  let entry: FileEntry;
  let size = 0;
  let failures: number[];
  try {
    const checker = new PageChecker(init, f, (b, p) => readIntoSync(fd, b, p), parseLsn(init.startLsn));
    const hash = createHash('sha256');
    entry = newEntry(f);
    for (;;) {
      const buf = readPool.acquire();
      let got: number;
      try {
        got = readIntoSync(fd, buf, size);
      } catch (err) {
        releaseBuffer(buf);
        throw err;
      }
      if (got === 0) {
        releaseBuffer(buf);
        break;
      }
      const part = got === buf.length ? buf : releasableSlice(buf, got);
      parts.push(part);
      const rechecked = checker.check(part, size);
      if (rechecked) await rechecked;
      hash.update(part);
      size += got;
      if (got < buf.length) break;
    }
    entry.size = size;
    entry.sha256 = hash.digest('hex');
    failures = checker.failures;
  } catch (err) {
    for (const p of parts) releaseBuffer(p);
    throw err;
  } finally {
    closeSync(fd);
  }
  a.readBytes += size;
  progress(size);
  const parent = f.parent;
  let stored = false;
  if (init.parentStartLsn !== undefined && parent?.object && parent.size === size && parent.sha256 === entry.sha256) {
    entry.object = parent.object;
    for (const p of parts) releaseBuffer(p);
  } else if (size > 0) {
    entry.object = { backup: init.backupId, n: task.n, offset: a.offset };
    a.offset += size;
    stored = true;
  }
  if (failures.length > 0) entry.checksumFailures = failures;
  a.entries.push(entry);
  if (stored) for (const p of parts) yield p;
}

/**
 * Byte ranges of `buf` to store (start, end pairs, ascending): a block delta's runs of changed
 * blocks within one read. Whoever takes it owns `buf` (a pooled buffer, or a slice of one).
 */
export interface Runs {
  buf: Buffer;
  runs: number[];
}

/** A file's bytes to store: whole buffers (owned by the taker, as OnePassEncoder.add) or a read's runs. */
type Chunk = Buffer | Runs;

/** `c`'s bytes as buffers for a stream: a read's runs become slices that hand the buffer back once all are released. */
function* chunkBuffers(c: Chunk): Generator<Buffer> {
  if (Buffer.isBuffer(c)) {
    yield c;
    return;
  }
  const slices = new SliceTracker(c.buf);
  for (let i = 0; i < c.runs.length; i += 2) yield slices.slice(c.runs[i]!, c.runs[i + 1]!);
  slices.done();
}

async function* fileChunks(init: BackupWorkerInit, task: BackupTask, f: TaskFile, a: Attempt, progress: (n: number) => void): AsyncGenerator<Chunk> {
  if (!task.own) {
    yield* bundledFileChunks(init, task, f, a, progress);
    return;
  }
  let fh: FileHandle;
  try {
    fh = await open(f.abs, 'r');
  } catch (err) {
    if (isNodeError(err, 'ENOENT')) return; // removed since the walk: WAL replay recreates or drops it
    throw err;
  }
  try {
    const startLsn = parseLsn(init.startLsn);
    const checker = new PageChecker(init, f, (b, p) => readInto(fh, b, p), startLsn);
    const hash = createHash('sha256');
    const entry = newEntry(f);
    const parent = f.parent;
    const incremental = init.parentStartLsn !== undefined;

    const deltaMode = incremental && init.blockDelta === true && parent !== undefined && f.relation?.fork === 'main' && init.blockSize === BLCKSZ;
    if (!deltaMode && !f.part && incremental && parent?.object && parent.size === f.planSize && parent.mtimeMs === f.mtimeMs) {
      // Probably unchanged: hash it first and store it only if it differs.
      const pre = createHash('sha256');
      let pos = 0;
      const buf = readPool.acquire();
      try {
        for (;;) {
          const got = await readInto(fh, buf, pos);
          if (got === 0) break;
          pre.update(buf.subarray(0, got));
          pos += got;
        }
      } finally {
        releaseBuffer(buf);
      }
      if (pos === parent.size && pre.digest('hex') === parent.sha256) {
        a.readBytes += pos;
        progress(pos);
        entry.size = pos;
        entry.sha256 = parent.sha256;
        entry.object = parent.object;
        a.entries.push(entry);
        return;
      }
    }
    const rule = blockDeltaRule(deltaMode ? parseLsn(init.parentStartLsn!) : 0n, deltaMode ? Math.floor(parent!.size / init.blockSize) : 0);
    const bs = init.blockSize;
    // Verdicts of the pages read (the delta takes only pages whose checksum matched from the parent).
    const verdicts = checker.verdicts;
    const base = checker.base;
    const changed: number[] = [];
    const first = f.part?.start ?? 0;
    const end = f.part && f.part.length !== null ? first + f.part.length : Number.MAX_SAFE_INTEGER;
    let pos = first;
    let stored = 0;
    const startOffset = a.offset;
    for (;;) {
      const want = Math.min(CHUNK, end - pos);
      if (want <= 0) break;
      // Whole chunks come from the pool: the compressor hands them back, or, for a delta, the
      // slices of changed blocks it yields (the buffer returns once every slice is released).
      const buf = want === CHUNK ? readPool.acquire() : Buffer.allocUnsafe(want);
      const got = await readInto(fh, buf, pos);
      if (got === 0) {
        releaseBuffer(buf);
        break;
      }
      const part = got === buf.length ? buf : buf.subarray(0, got);
      const rechecked = checker.check(part, pos);
      if (rechecked) await rechecked;
      // (Delta mode implies data checksums, so the checker ran; verify here should it not have.)
      if (deltaMode && !checker.enabled) verifyPages(part, base + pos / BLCKSZ, verdicts);
      // Whole pieces take their sha256 from the object trailer (same bytes); deltas hash here.
      if (deltaMode) hash.update(part);
      if (!deltaMode) {
        // A short last read goes on as a slice that hands the pooled buffer back when released.
        yield got === buf.length ? buf : releasableSlice(buf, got);
        stored += got;
      } else {
        // The runs of changed blocks of this read, handed on at once (one yield per read, not per run).
        const runs: number[] = [];
        let runStart = -1;
        for (let off = 0; off < got; off += bs) {
          const block = (pos + off) / bs;
          const len = Math.min(bs, got - off);
          const ok = len === bs && verdicts[off / bs] === PAGE_OK;
          const isChanged = !blockFromParent(part, off, len, block, ok, rule);
          if (isChanged) {
            changed.push(block);
            if (runStart < 0) runStart = off;
          } else {
            a.reusedBlocks++;
            if (runStart >= 0) {
              runs.push(runStart, off);
              stored += off - runStart;
              runStart = -1;
            }
          }
        }
        if (runStart >= 0) {
          runs.push(runStart, got);
          stored += got - runStart;
        }
        if (runs.length > 0) yield { buf, runs }; // runs lie within [0, got)
        else releaseBuffer(buf);
      }
      pos += got;
      progress(got);
      if (got < want) break;
    }
    const size = pos - first;
    a.readBytes += size;
    const piece: FilePart = { start: first, size, sha256: deltaMode ? hash.digest('hex') : '' };
    if (deltaMode) a.changedBlocks += changed.length;
    if (deltaMode && changed.length < Math.ceil(size / bs)) {
      piece.delta = { n: task.n, offset: startOffset, blocks: toRanges(changed) };
    } else if (size > 0) {
      piece.object = { backup: init.backupId, n: task.n, offset: startOffset };
    }
    a.offset += stored;
    if (f.part) {
      entry.size = pos;
      entry.parts = [piece];
    } else {
      entry.size = size;
      entry.sha256 = piece.sha256;
      if (piece.delta) entry.delta = piece.delta;
      if (piece.object) entry.object = piece.object;
    }
    if (checker.failures.length > 0) entry.checksumFailures = checker.failures;
    a.entries.push(entry);
  } finally {
    await fh.close();
  }
}

/** One copy task; `own` is the caller's open repository when the task runs on the main thread (backup.ts). */
export async function runBackupTask(init: BackupWorkerInit, task: BackupTask, progress: (bytes: number) => void, own?: Repository): Promise<BackupTaskResult> {
  const repo = own ?? await repository(init);
  let a: Attempt = { entries: [], offset: 0, readBytes: 0, changedBlocks: 0, reusedBlocks: 0 };
  let pending = 0;
  const report = (n: number) => {
    pending += n;
    if (pending >= 8 * CHUNK) {
      progress(pending);
      pending = 0;
    }
  };
  let attempts = 0;
  /** This attempt's record and progress (a retry re-reads the files from the start). */
  const attempt = (): [Attempt, (n: number) => void] => {
    if (attempts++ > 0) a = { entries: [], offset: 0, readBytes: 0, changedBlocks: 0, reusedBlocks: 0 };
    return [a, attempts === 1 ? report : () => undefined];
  };
  const key = dataObjectKey(init.settings.stanza, init.backupId, task.n);
  // lz4 or none in a plain stanza: encoded in one pass (repo/one-pass-encoder.ts, the same bytes);
  // otherwise (another codec, or the stanza encrypts: putPlainEncoded stores nothing) as a stream.
  const res = (onePassCodec(init.codec) ? await repo.putPlainEncoded(key, () => {
    const [current, onProgress] = attempt();
    return encodeOnePass(init.codec, key, async function* (enc) {
      for (const f of task.files) {
        for await (const chunk of fileChunks(init, task, f, current, onProgress)) {
          if (Buffer.isBuffer(chunk)) enc.add(chunk);
          else enc.addRuns(chunk.buf, chunk.runs);
          yield* enc.drain(enc.readAheadFrames);
        }
      }
    });
  }) : undefined) ?? await repo.putObject(key, () => {
    const [current, onProgress] = attempt();
    return Readable.from((async function* () {
      for (const f of task.files) for await (const chunk of fileChunks(init, task, f, current, onProgress)) yield* chunkBuffers(chunk);
    })(), { objectMode: false });
  }, { codec: init.codec, level: init.level });
  if (pending > 0) progress(pending);
  if (task.own) {
    // The object holds exactly this piece's bytes when it is stored whole: its sha256 is the piece's.
    for (const e of a.entries) {
      if (e.parts) for (const p of e.parts) if (p.sha256 === '') p.sha256 = res.sha256;
      if (e.sha256 === '' && !e.parts) e.sha256 = res.sha256;
    }
  }
  return {
    n: task.n,
    entries: a.entries,
    rawBytes: res.rawSize,
    storedBytes: res.storedSize,
    readBytes: a.readBytes,
    changedBlocks: a.changedBlocks,
    reusedBlocks: a.reusedBlocks,
  };
}

// A worker thread (--jobs beyond backup.ts MAIN_THREAD_LANES) compresses on itself too, as the
// main thread does (runBackup): lz4 outputs made and freed on one thread (io/codecs/lz4-thread.ts).
if (!isMainThread) compressLz4OnCallingThread();
serveWorker<BackupWorkerInit, BackupTask, BackupTaskResult>((init, task, progress) => runBackupTask(init, task, progress));
