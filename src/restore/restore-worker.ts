/**
 * Worker thread of `pgark restore`: writes files from objects, checking every byte against the
 * manifest's sha256 before the file counts as restored. With --delta a file that already has the
 * manifest's size and sha256 is left alone, and an object none of whose files need writing is
 * not read at all.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import { createHash } from 'node:crypto';
import { closeSync, fchmodSync, fsync, futimesSync, writeSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { ExactReader } from '../repo/exact-reader.js';
import { IntegrityError } from '../common/errors.js';
import { serveWorker } from '../common/worker-pool.js';

import type { RepositorySettings } from '../config/resolve.js';
import { dataObjectKey } from '../repo/layout.js';
import type { Repository } from '../repo/repository.js';
import type { RestorePiece, RestoreTask } from './plan.js';
import { targetPath, type PathMapping } from './restore-worker-paths.js';
import { openPrivateForRead, openPrivateForWriteSync } from './private-file.js';
import { RestoreSources, type RestoreSource } from './restore-sources.js';
import { warmUpLz4Decoder } from '../io/codecs/lz4-block.js';
import { setWasmLz4Decoding } from '../repo/object-reader.js';

// This thread decodes most of the backup's bytes: in WebAssembly (object-reader.ts; pgbench -s 100
// restored with 0.4-0.5 s less user CPU, bench/results/restore.md), and in JavaScript the blocks of
// mostly literals, whose decoder learns all its paths first (lz4-block.ts).
setWasmLz4Decoding(true);
warmUpLz4Decoder();

export interface RestoreWorkerInit extends PathMapping {
  /** What this thread opens the repository with. */
  settings: RepositorySettings;
  delta: boolean;
  /** The repository `settings` opens ('repo' unless repo2/repo3 was chosen) and the others holding the same backup (restore-sources.ts). */
  repoName?: string;
  fallbacks?: RestoreSource[];
}

export interface RestoreTaskResult {
  written: number;
  skipped: number;
  bytes: number;
}

let sources: { init: RestoreWorkerInit; sources: RestoreSources } | undefined;
/**
 * This thread's repositories: the chosen one, then the fallbacks (restore-sources.ts). A worker
 * thread has one init for all its tasks; a restore run on the calling thread (tests) brings its own.
 */
function sourcesOf(init: RestoreWorkerInit): RestoreSources {
  if (sources?.init !== init) {
    void sources?.sources.close();
    sources = {
      init,
      sources: new RestoreSources([{ name: init.repoName ?? 'repo', settings: init.settings }, ...(init.fallbacks ?? [])],
        (s) => import('../repo/open-repository.js').then((m) => m.openRepository(s, { marker: 'skip' }))),
    };
  }
  return sources.sources;
}
/** Closes the repositories this thread opened after moving to another copy (the main thread calls it after its tasks). */
export async function closeRestoreSources(): Promise<void> {
  const s = sources;
  sources = undefined;
  await s?.sources.close();
}
function repository(init: RestoreWorkerInit): Promise<Repository> {
  return sourcesOf(init).repository();
}

/**
 * --delta: the piece is already there with the manifest's bytes, in a private regular file (a
 * symbolic link, a file hard-linked elsewhere or a special file is never kept: it is replaced).
 */
async function sameContent(path: string, p: RestorePiece): Promise<boolean> {
  const fh = await openPrivateForRead(path);
  if (!fh) return false;
  try {
    const st = await fh.stat();
    if (p.whole ? st.size !== p.size : st.size < p.start + p.size) return false;
    if (p.size === 0) return true;
    return (await hashRange(fh, p.start, p.size)) === p.sha256;
  } finally {
    await fh.close();
  }
}

/** sha256 of `size` bytes at `start` of an open file. */
async function hashRange(fh: FileHandle, start: number, size: number): Promise<string> {
  const h = createHash('sha256');
  const buf = Buffer.allocUnsafe(Math.min(size, 1024 * 1024));
  let done = 0;
  while (done < size) {
    const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, size - done), start + done);
    if (bytesRead === 0) break;
    h.update(buf.subarray(0, bytesRead));
    done += bytesRead;
  }
  return h.digest('hex');
}

/** Files written but not yet fsynced, per worker, before they are synced together. */
const SYNC_GROUP = 64;

/**
 * Whole files a task wrote, still open: fsynced together (in parallel on the threadpool, so
 * the filesystem can commit them in one journal transaction instead of one per file) once
 * SYNC_GROUP are pending, while the worker goes on writing the next files (at most one group
 * in flight, so at most 2 x SYNC_GROUP descriptors are open), and at the end of the task,
 * before the task reports success. Each file is synced through the descriptor that wrote it,
 * so a writeback error cannot be missed.
 */
class SyncGroup {
  private pending: number[] = [];
  private inFlight: Promise<void> | undefined;

  async add(fd: number): Promise<void> {
    this.pending.push(fd);
    if (this.pending.length < SYNC_GROUP) return;
    await this.waitInFlight();
    const group = this.syncAndClose(this.pending);
    this.pending = [];
    group.catch(() => undefined); // delivered by waitInFlight (next group or flush)
    this.inFlight = group;
  }

  /** Sync and close everything added; rejects if any fsync failed. */
  async flush(): Promise<void> {
    await this.waitInFlight();
    const fds = this.pending;
    this.pending = [];
    await this.syncAndClose(fds);
  }

  /** Close without syncing (the task failed: nothing it wrote counts). */
  async abandon(): Promise<void> {
    const fds = this.pending;
    this.pending = [];
    closeAll(fds);
    await this.inFlight?.catch(() => undefined);
    this.inFlight = undefined;
  }

  private async waitInFlight(): Promise<void> {
    const p = this.inFlight;
    this.inFlight = undefined;
    await p;
  }

  private async syncAndClose(fds: number[]): Promise<void> {
    const synced = await Promise.allSettled(fds.map((fd) => new Promise<void>((resolve, reject) => fsync(fd, (err) => (err ? reject(err) : resolve())))));
    closeAll(fds);
    const failed = synced.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }
}

function closeAll(fds: number[]): void {
  for (const fd of fds) {
    try {
      closeSync(fd);
    } catch {
      // closing is all that is left to do with it
    }
  }
}

/**
 * The largest single write into the data directory: 64 KiB (PostgreSQL writes 8 KiB pages,
 * pgBackRest 2.59.1 56-88 KiB). On the benchmark VM (Linux 6.18, ext4) a buffered write into a
 * new file costs the kernel either ~0.25 s of system time per GiB or, in some runs, 1.6-3.0 s,
 * and which one depends on the run, not on the size, for every size from 128 KiB to 1 MiB
 * (1 GiB files written, fsynced and removed in rotation, 4 rounds per size); writes of 64 KiB
 * were never slow in 12 rounds (0.24-0.30 s). In whole restores of pgbench -s 100 / 1.55 GB of
 * random data, 256 KiB writes took 1.1-3.3 s of system time and 64 KiB writes 0.7-1.1 s, for
 * 2.0-2.3 s of wall time instead of 2.8-4.4 s (bench/results/restore.md, 2026-12-07 integrator).
 * Sixteen system calls per MiB instead of one cost ~0.03 s per GiB.
 */
export const WRITE_MAX = 64 * 1024;

/**
 * Writes one piece. The worker thread has nothing else to do while a write runs, so open,
 * write, chmod, utimes and close are synchronous calls: no hop to the libuv threadpool and
 * back per call (each hop is two context switches and a promise). Each decoded chunk (up to
 * 1 MiB) is written as soon as it is hashed, while it is likely still in the CPU cache, and
 * nothing is held back; gathering 4 MiB per writev did not measure cheaper (the kernel's copy
 * into the page cache varied between 0.1 and 0.7 s per 0.5 GB either way on the shared
 * machine; bench/results/restore.md).
 */
class FileWriter {
  private readonly hash = createHash('sha256');
  private written = 0;
  /** The descriptor was closed or handed to a SyncGroup: this writer must not close it again. */
  private released = false;
  private constructor(private readonly fd: number, private readonly abs: string, private readonly p: RestorePiece, private readonly hashing: boolean) {}

  /**
   * A whole file is created anew (whatever was at its name removed first, links never followed);
   * a part is written in place into the private file the main thread created. `hashing: false`
   * when the caller checks the bytes another way (the object's trailer).
   */
  static async open(abs: string, p: RestorePiece, hashing = true): Promise<FileWriter> {
    return new FileWriter(openPrivateForWriteSync(abs, !p.whole), abs, p, hashing);
  }

  write(chunk: Buffer): void {
    if (this.hashing) this.hash.update(chunk);
    let off = 0;
    while (off < chunk.length) {
      const n = writeSync(this.fd, chunk, off, Math.min(WRITE_MAX, chunk.length - off), this.p.start + this.written);
      off += n;
      this.written += n;
    }
  }

  /**
   * Check size and sha256, set mode and mtime of a whole file, and hand the descriptor to
   * `syncs` (which fsyncs and closes it); on failure the descriptor is closed here.
   */
  async finish(where: string, syncs: SyncGroup): Promise<void> {
    try {
      const sha = this.hashing ? this.hash.digest('hex') : this.p.sha256;
      if (this.written !== this.p.size || sha !== this.p.sha256) {
        const what = this.p.whole ? `'${this.p.path}'` : `'${this.p.path}' bytes ${this.p.start}..${this.p.start + this.p.size}`;
        throw new IntegrityError(`restored ${what} does not match the manifest (${this.written} bytes, sha256 ${sha.slice(0, 16)}…; expected ${this.p.size} bytes, ${this.p.sha256.slice(0, 16)}…) from ${where}`);
      }
      // A part shares its file with other workers' parts: the main thread syncs the file once
      // and sets its size, mode and mtime.
      if (this.p.whole) {
        if ((this.p.mode & 0o7777) !== 0o600) fchmodSync(this.fd, this.p.mode & 0o7777);
        futimesSync(this.fd, this.p.mtimeMs / 1000, this.p.mtimeMs / 1000);
        this.released = true;
        await syncs.add(this.fd);
      }
    } finally {
      if (!this.released) {
        this.released = true;
        closeSync(this.fd);
      }
    }
  }

  /** sha256 of the bytes written so far (read back from the file). */
  async hashWritten(): Promise<string> {
    const fh = await openPrivateForRead(this.abs);
    if (!fh) throw new IntegrityError(`unable to read back '${this.abs}': it is no longer the file restore wrote`);
    try {
      return await hashRange(fh, this.p.start, this.written);
    } finally {
      await fh.close();
    }
  }

  async abandon(): Promise<void> {
    if (this.released) return;
    this.released = true;
    closeAll([this.fd]);
  }
}

/**
 * `contentHash: false` when every byte taken from the object is hashed against the manifest
 * by the FileWriter (bundles, layers): the object's own sha256 would be a second pass.
 */
async function openSlice(repo: Repository, init: RestoreWorkerInit, backup: string, n: number, offset: number, contentHash: boolean): Promise<ExactReader> {
  const key = dataObjectKey(init.settings.stanza, backup, n);
  // Blocking reads: this lane has nothing else to do meanwhile (writes are synchronous too, see FileWriter).
  const r = new ExactReader(await repo.readObject(key, { contentHash, blocking: true }), key);
  if (offset > 0) await r.skip(offset);
  return r;
}

/**
 * A lane gives the event loop a turn after every TURN_BYTES it writes. Its reads and writes are
 * synchronous (openSlice, FileWriter), so every await of a task settles as a microtask and a
 * whole task (a part of a large file: tens of MiB, a fraction of a second) ran without one. On the
 * main thread, which runs a lane too (runPool's `local`) and hands the worker threads their tasks,
 * a worker thread that finished its task then waited for the main thread's task to end before it
 * got the next one: in a restore of pgbench -s 100 the worker thread sat idle for 0.6-1.6 s at a
 * time (--cpu-prof of both threads; bench/results/restore.md). A turn (setImmediate, an epoll
 * poll that does not wait) costs a few microseconds; one per MiB (about one per lz4 block) keeps
 * a worker thread's wait for its next task to a millisecond or two.
 */
export const TURN_BYTES = 1024 * 1024;

/** Counts the bytes a lane writes; `due` says when it is time to give the event loop a turn. */
export class EventLoopTurns {
  private since = 0;
  constructor(private readonly every = TURN_BYTES) {}

  due(bytes: number): boolean {
    this.since += bytes;
    if (this.since < this.every) return false;
    this.since = 0;
    return true;
  }
}


/** Progress is reported to the main thread at most every PROGRESS_BYTES (and at the end of a task). */
const PROGRESS_BYTES = 32 * 1024 * 1024;

/**
 * One task. `repo`: the repository to read (the main thread passes its own, open and closed by
 * its caller); a worker thread opens its own from `init.settings`.
 */
export async function runRestoreTask(init: RestoreWorkerInit, task: RestoreTask, report: (bytes: number) => void, repo?: Repository): Promise<RestoreTaskResult> {
  let unreported = 0;
  // Bytes an attempt that failed already counted: its retry from another repository does not count them again.
  let counted = 0;
  let credit = 0;
  const progress = (bytes: number) => {
    counted += bytes;
    const again = Math.min(credit, bytes);
    credit -= again;
    unreported += bytes - again;
    if (unreported >= PROGRESS_BYTES) {
      report(unreported);
      unreported = 0;
    }
  };
  try {
    // A read another copy can cure runs the task again from the next repository (restore-sources.ts).
    for (;;) {
      const syncs = new SyncGroup();
      const src = sourcesOf(init);
      // The copy this attempt reads: another lane of this thread may move on meanwhile (restore-sources.ts).
      const at = src.position;
      try {
        // The main thread's own repository until a failure moved this thread to another copy.
        const res = await restoreTask(init, task, progress, syncs, at === 0 ? repo : undefined);
        await syncs.flush();
        return res;
      } catch (err) {
        if (task.kind === 'empty' || !(await src.next(err, taskText(task), at))) throw err;
        credit += counted;
        counted = 0;
      } finally {
        await syncs.abandon();
      }
    }
  } finally {
    if (unreported > 0) report(unreported);
  }
}

function taskText(task: Exclude<RestoreTask, { kind: 'empty' }>): string {
  return task.kind === 'object' ? `object ${task.n} of backup ${task.backup}` : `'${task.piece.path}' (backups ${[...new Set(task.layers.map((l) => l.backup))].join(', ')})`;
}

async function restoreTask(init: RestoreWorkerInit, task: RestoreTask, progress: (bytes: number) => void, syncs: SyncGroup, given: Repository | undefined): Promise<RestoreTaskResult> {
  const res: RestoreTaskResult = { written: 0, skipped: 0, bytes: 0 };
  if (task.kind === 'empty') {
    for (const p of task.pieces) {
      const w = await FileWriter.open(targetPath(init, p.path), p);
      await w.finish('an empty file', syncs);
      res.written++;
    }
    return res;
  }
  const repo = given ?? (await repository(init));
  if (task.kind === 'object') {
    const needed = new Set<RestorePiece>();
    for (const p of task.pieces) {
      if (init.delta && (await sameContent(targetPath(init, p.path), p))) {
        res.skipped++;
        progress(p.size);
      } else needed.add(p);
    }
    if (needed.size === 0) return res;
    const key = dataObjectKey(init.settings.stanza, task.backup, task.n);
    const single = task.pieces.length === 1 && task.pieces[0]!.offset === 0;
    const reader = await openSlice(repo, init, task.backup, task.n, 0, single);
    const turns = new EventLoopTurns();
    try {
      let pos = 0;
      for (const p of task.pieces) {
        if (!needed.has(p)) continue;
        if (p.offset < pos) throw new IntegrityError(`manifest places '${p.path}' inside another file of object '${key}'`);
        await reader.skip(p.offset - pos);
        // A piece that is the whole object is checked by the object's own trailer (sha256 of the
        // same bytes, recorded in the manifest as the piece's): no second hash.
        const alone = task.pieces.length === 1 && p.offset === 0;
        const w = await FileWriter.open(targetPath(init, p.path), p, !alone);
        try {
          for await (const chunk of reader.take(p.size)) {
            w.write(chunk);
            progress(chunk.length);
            if (turns.due(chunk.length)) await nextTurn();
          }
          if (alone) {
            const t = await reader.finish();
            // A bundle of which only this first file is needed holds more bytes: hash what was written.
            const sha = t.rawSize === p.size ? t.sha256 : await w.hashWritten();
            if (sha !== p.sha256) {
              throw new IntegrityError(`restored '${p.path}' from '${key}' does not match the manifest (sha256 ${sha.slice(0, 16)}…, expected ${p.sha256.slice(0, 16)}…)`);
            }
          }
        } catch (err) {
          await w.abandon();
          throw err;
        }
        await w.finish(`object '${key}'`, syncs);
        pos = p.offset + p.size;
        res.written++;
        res.bytes += p.size;
      }
    } finally {
      await reader.close();
    }
    return res;
  }
  // Rebuild a piece from layers.
  const p = task.piece;
  const abs = targetPath(init, p.path);
  if (init.delta && (await sameContent(abs, p))) {
    progress(p.size);
    return { written: 0, skipped: 1, bytes: 0 };
  }
  // Loaded by the first rebuild (an incremental backup's block deltas): a full backup's restore
  // threads never load the layer merge, the chain's layers or the manifest module (start-up).
  const { LayerMerge, layerBackups } = await import('../catalog/layer-merge.js');
  const merge = await LayerMerge.open(task.layers, p, task.blockSize, (l) => openSlice(repo, init, l.backup, l.n, l.offset, false));
  try {
    const w = await FileWriter.open(abs, p);
    try {
      await merge.copy((chunk) => {
        w.write(chunk);
        progress(chunk.length);
      });
      await w.finish(`backups ${layerBackups(task.layers).join(', ')}`, syncs);
    } catch (err) {
      await w.abandon();
      throw err;
    }
    return { written: 1, skipped: 0, bytes: p.size };
  } finally {
    await merge.close();
  }
}

serveWorker<RestoreWorkerInit, RestoreTask, RestoreTaskResult>((init, task, report) => runRestoreTask(init, task, report));
