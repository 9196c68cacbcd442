/**
 * The prefetch area for wal-fetch: `<spool>/prefetch/<name>` holds complete, verified segments
 * downloaded ahead of PostgreSQL's requests. A file appears there only by rename after
 * verification; `<name>.lock` (O_EXCL, holding the owner's pid) keeps two workers off one name.
 */
import { randomBytes } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { link, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { NotFoundError } from '../common/errors.js';
import { isProcessAlive } from '../common/process.js';
import { lockHeld, lockOwner, tryLock } from '../common/pid-lock.js';
import { log } from '../common/log.js';
import { mapPool } from '../common/pool.js';
import type { Repository } from '../repo/repository.js';
import type { Settings } from '../config/resolve.js';
import { auditEvent, writeAudit, type AuditEvent } from './audit.js';
import { fetchWalFile } from './fetch-file.js';
import { nextSegment, parseSegmentName, segmentName } from './segment-name.js';
import { ensureDir } from './spool.js';
import { parseRequestFile, requestFileName, SERVE_LOCK } from './prefetch-requests.js';
import { isSegmentName } from '../pg/wal-names.js';

/** The `count` segment names after `name` on its timeline. */
export function followingSegments(name: string, walSegmentSize: number, count: number): string[] {
  const out: string[] = [];
  let id = parseSegmentName(name, walSegmentSize);
  for (let i = 0; i < count; i++) {
    id = nextSegment(id, walSegmentSize);
    out.push(segmentName(id, walSegmentSize));
  }
  return out;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(() => true, () => false);
}

/**
 * Remove what is no longer useful: segments before `current` (replay has passed them),
 * temp files and locks of dead processes.
 */
export async function cleanPrefetchArea(dir: string, current: string): Promise<void> {
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch {
    return;
  }
  for (const e of entries) {
    const full = join(dir, e);
    const tmp = /\.pgark-tmp-(\d+)-/.exec(e);
    if (tmp) {
      if (!isProcessAlive(Number(tmp[1]))) await rm(full, { force: true });
      continue;
    }
    if (e.endsWith('.lock')) {
      if (!(await lockHeld(full))) await rm(full, { force: true });
      continue;
    }
    if (isSegmentName(e) && e < current) await rm(full, { force: true });
  }
}

/** Which of `names` still need a worker (neither present nor being fetched). */
export async function namesToPrefetch(dir: string, names: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const n of names) {
    if (await exists(join(dir, n))) continue;
    if (await lockHeld(join(dir, `${n}.lock`))) continue;
    out.push(n);
  }
  return out;
}

/** A prefetch worker exits when replay has not taken a segment for this long... */
const IDLE_EXIT_MS = 60_000;
/** ...or after this long in all (the next direct fetch starts another). */
const WORKER_LIFETIME_MS = 10 * 60_000;
/** A serving worker whose prefetching has ended stays this long after the last request (the probes at the end of recovery, a standby's retries). */
const SERVE_IDLE_MS = 15_000;
/** Without a change in the prefetch area (a file watch), look again this often. */
const POLL_MS = 250;

/** Answers a request of the shell client (prefetch-requests.ts) as the full `pgark wal-fetch` would. */
export interface PrefetchServer {
  /** `name` restored into `dest` (verified, written atomically), or 'missing' when the repository answered that it is not archived; throws for anything else. */
  answer(name: string, dest: string): Promise<'restored' | 'missing'>;
}

/** Wake-ups on changes in one directory (inotify through fs.watch), with a timeout as the fallback. */
class DirEvents {
  private waiters: (() => void)[] = [];
  private readonly watcher: FSWatcher | undefined;
  constructor(dir: string) {
    let w: FSWatcher | undefined;
    try {
      w = watch(dir, { persistent: false }, () => this.notify());
      w.on('error', () => undefined);
    } catch {
      w = undefined; // no watch on this filesystem: the timeouts poll
    }
    this.watcher = w;
  }
  notify(): void {
    const ws = this.waiters;
    this.waiters = [];
    for (const w of ws) w();
  }
  wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== done);
        resolve();
      }, ms);
      this.waiters.push(done);
    });
  }
  close(): void {
    this.watcher?.close();
    this.notify();
  }
}

/**
 * Take the serving role for `pid` (default this process): SERVE_LOCK holds `<pid>\n<options>\n`
 * and appears complete (written aside, then linked into place). False when a live process serves.
 */
export async function takeServeLock(dir: string, args: string, pid: number = process.pid): Promise<boolean> {
  await ensureDir(dir);
  const path = join(dir, SERVE_LOCK);
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.new`;
  await writeFile(tmp, `${pid}\n${args}\n`, { mode: 0o600, flag: 'wx' });
  try {
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        await link(tmp, path);
        return true;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const owner = await lockOwner(path);
      if (owner === pid) return true;
      if (owner !== undefined && isProcessAlive(owner)) return false;
      await rm(path, { force: true }); // left by a dead worker
    }
    return false;
  } finally {
    await rm(tmp, { force: true });
  }
}

/**
 * recovery.signal or standby.signal in the working directory (PostgreSQL's data directory when it
 * runs restore_command); any kind of file counts, as PostgreSQL's stat() of them does.
 */
export async function inRecovery(): Promise<boolean> {
  return (await exists('recovery.signal')) || (await exists('standby.signal'));
}

/**
 * The prefetch worker: download `names` (`jobs` at a time), then keep `settings.prefetch`
 * verified segments ready ahead of replay, one after the other, while replay keeps taking them.
 * Stops prefetching at the first segment not in the archive (the end of recovery, or a standby
 * waiting); after IDLE_EXIT_MS without replay taking a segment it removes what it left.
 *
 * With a `server`, and when it holds SERVE_LOCK (the wal-fetch that started it took the lock
 * for it), it also answers the shell client's requests (prefetch-requests.ts): a segment it has
 * not prefetched, a timeline history file, the probes at the end of the archive, each looked up
 * in the repository after the request appeared. A served segment after the end it had found
 * starts prefetching again from there. It stays SERVE_IDLE_MS after the last request or the last
 * segment replay took from the area, and leaves once recovery has ended.
 */
export async function runPrefetch(repo: Repository, settings: Pick<Settings, 'jobs' | 'prefetch'>, dir: string, names: string[], server?: PrefetchServer): Promise<{ fetched: string[]; served: number }> {
  await ensureDir(dir);
  const meta = await repo.requireStanza();
  const fetched: string[] = [];
  const events: AuditEvent[] = [];
  let missing = false;
  /** Names the prefetch loop is about to fetch: a request for one waits for its file. */
  const planned = new Set<string>();
  const changes = new DirEvents(dir);
  const deadline = Date.now() + WORKER_LIFETIME_MS;

  const fetchOne = async (name: string): Promise<void> => {
    try {
      if (missing) return;
      const lock = join(dir, `${name}.lock`);
      if (!(await tryLock(lock))) return;
      const started = Date.now();
      try {
        if (await exists(join(dir, name))) return;
        const size = await fetchWalFile(repo, name, join(dir, name));
        fetched.push(name);
        events.push(auditEvent('fetch', name, started, { size, detail: 'prefetch' }));
      } catch (err) {
        if (err instanceof NotFoundError) missing = true;
        else log.warn(`prefetch of '${name}' failed: ${(err as Error).message}`);
      } finally {
        await rm(lock, { force: true });
      }
    } finally {
      planned.delete(name);
    }
  };

  const prefetchFrom = async (window: string[]): Promise<void> => {
    // The initial window in order, so that a missing segment stops the ones after it.
    const sorted = [...window].sort();
    for (const n of sorted) planned.add(n);
    await mapPool(sorted, settings.jobs, fetchOne);
    await writeAudit(repo, events.splice(0));
    let next = sorted[sorted.length - 1];
    /** Fetched segments replay has not taken yet. */
    let waiting = fetched.filter((n) => sorted.includes(n));
    let lastProgress = Date.now();
    while (!missing && next !== undefined && Date.now() < deadline && Date.now() - lastProgress < IDLE_EXIT_MS) {
      const present: string[] = [];
      for (const n of waiting) if (await exists(join(dir, n))) present.push(n);
      waiting = present;
      if (waiting.length >= settings.prefetch) {
        // Replay taking a segment (a rename out of the area) wakes this up.
        await changes.wait(1000);
        continue;
      }
      lastProgress = Date.now();
      next = followingSegments(next, meta.walSegmentSize, 1)[0]!;
      planned.add(next);
      const before = fetched.length;
      await fetchOne(next);
      if (fetched.length > before) waiting.push(next);
      if (events.length >= 16) await writeAudit(repo, events.splice(0));
    }
    if (!missing && Date.now() - lastProgress >= IDLE_EXIT_MS) {
      // Replay stopped taking segments (recovery target reached, promoted, or paused): leave no
      // unused copies in pg_wal. A paused replay that resumes fetches them again.
      for (const n of waiting) await rm(join(dir, n), { force: true });
    }
    await writeAudit(repo, events.splice(0));
  };

  let prefetching: Promise<void> | undefined;
  const startPrefetch = (window: string[]) => {
    missing = false;
    prefetching = prefetchFrom(window)
      .catch((err: unknown) => log.warn(`prefetch stopped: ${(err as Error).message}`))
      .finally(() => {
        prefetching = undefined;
        changes.notify();
      });
  };
  startPrefetch(names);

  const serveLock = join(dir, SERVE_LOCK);
  const serving = async () => server !== undefined && (await lockOwner(serveLock)) === process.pid;
  let served = 0;
  /** The last request, or the last change in the prefetched segments (replay taking them). */
  let lastRequest = Date.now();
  let segmentsSeen = '';
  /** Answer every pending request once; false when the prefetch area is gone. */
  const serveRequests = async (): Promise<boolean> => {
    let entries: string[];
    try {
      entries = await readdir(dir);
    } catch {
      return false;
    }
    const segments = entries.filter(isSegmentName).sort().join(' ');
    if (segments !== segmentsSeen) {
      // Replay is still taking prefetched segments: its requests at the end of recovery will come.
      segmentsSeen = segments;
      lastRequest = Date.now();
    }
    for (const e of entries) {
      const r = parseRequestFile(e);
      if (!r) continue;
      const path = join(dir, e);
      if (!isProcessAlive(r.pid)) {
        // A client that gave up (it ran the full wal-fetch) or an answer nobody took.
        await rm(path, { force: true });
        continue;
      }
      if (r.kind !== 'want') continue;
      lastRequest = Date.now();
      // The prefetch loop is fetching it, or it is there: the client takes `<name>` itself.
      if (planned.has(r.name) || entries.includes(r.name)) continue;
      const lock = join(dir, `${r.name}.lock`);
      if (!(await tryLock(lock))) continue; // another worker is fetching it: looked at again next time
      try {
        if (await exists(join(dir, r.name))) continue;
        let answer: 'got' | 'none' | 'fail';
        try {
          answer = (await server!.answer(r.name, join(dir, requestFileName('got', r.name, r.pid)))) === 'restored' ? 'got' : 'none';
        } catch (err) {
          log.warn(`unable to answer the request for '${r.name}': ${(err as Error).message}`);
          answer = 'fail';
        }
        if (answer !== 'got') await writeFile(join(dir, requestFileName(answer, r.name, r.pid)), '', { mode: 0o600 });
        served++;
        // Served a segment after the end the prefetch loop had found (a standby whose primary
        // archived more): prefetch from there again.
        if (answer === 'got' && isSegmentName(r.name) && prefetching === undefined && settings.prefetch > 0) {
          startPrefetch(followingSegments(r.name, meta.walSegmentSize, settings.prefetch));
        }
      } finally {
        await rm(lock, { force: true });
        await rm(path, { force: true });
      }
    }
    return true;
  };

  try {
    while (Date.now() < deadline) {
      const isServer = await serving();
      if (isServer && !(await serveRequests())) break;
      // Serving ends SERVE_IDLE_MS after the last request, or as soon as recovery has ended
      // (PostgreSQL removes the signal file from its data directory, the working directory of
      // restore_command and of this worker, after its last restore_command call).
      if (prefetching === undefined && (!isServer || Date.now() - lastRequest >= SERVE_IDLE_MS || !(await inRecovery()))) break;
      await changes.wait(POLL_MS);
    }
  } finally {
    changes.close();
    if (server !== undefined && (await lockOwner(serveLock)) === process.pid) await rm(serveLock, { force: true });
    if (prefetching) await prefetching;
    await writeAudit(repo, events.splice(0));
  }
  return { fetched, served };
}
