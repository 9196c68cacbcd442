/**
 * Look-ahead: after wal-push stored the requested segment, a detached worker pushes the next
 * segments PostgreSQL has marked ready while PostgreSQL goes on calling archive_command. Each
 * queued segment is locked (`<name>.lock`, the worker's pid) before the foreground returns; the
 * worker writes the segment's record only after the object is durable, then drops the lock.
 * A call for a locked segment waits for the lock (takePushRecord, wal/fast-path.ts) and then reads the record.
 */
import { join } from 'node:path';
import { rm } from 'node:fs/promises';
import { ArchiveMismatchError } from '../common/errors.js';
import { log } from '../common/log.js';
import { lockHeld, lockOwner, tryLock } from '../common/pid-lock.js';
import { mapPool } from '../common/pool.js';
import { spawnWorker } from './spawn-worker.js';
import type { Settings } from '../config/resolve.js';
import type { WorkerSettings } from '../config/settings-transport.js';
import type { Repository } from '../repo/repository.js';
import { auditEvent, writeAudit, type AuditEvent } from './audit.js';
import { inspectLocalWal } from './inspect-local.js';
import { pushWalFile } from './push-file.js';
import { pushLockPath, pushRecordDir, pushTarget } from './fast-path.js';
import { requireRepo } from '../config/resolve.js';
import { assertWalFileName } from './segment-name.js';
import { ensureDir, PushRecords, readySegmentsAfter } from './spool.js';

/** Ready segments after `name` that have neither a record nor a live worker. */
async function candidates(walDir: string, name: string, limit: number): Promise<string[]> {
  const done = new Set(await new PushRecords(walDir).names());
  const out: string[] = [];
  for (const n of await readySegmentsAfter(walDir, name, limit)) {
    if (!done.has(n) && !(await lockHeld(pushLockPath(walDir, n)))) out.push(n);
  }
  return out;
}

/** Start a worker for the segments after `name`; returns the names it was given. */
/** What queuePushAhead reads: the window and what the worker's environment is made of. */
export type QueuePushAheadSettings = Pick<Settings, 'pushAhead'> & WorkerSettings;

/** What the look-ahead worker reads: the push target, the codec and level, its parallelism and window. */
export type PushAheadSettings = Pick<Settings, 'repo' | 'stanza' | 'codec' | 'codecExplicit' | 'compressLevel' | 'jobs' | 'pushAhead'>;

export async function queuePushAhead(settings: QueuePushAheadSettings, walDir: string, name: string): Promise<string[]> {
  const names = await candidates(walDir, name, settings.pushAhead);
  if (names.length === 0) return [];
  await ensureDir(pushRecordDir(walDir));
  const pid = spawnWorker(['wal-push-ahead', walDir, ...names], settings);
  if (pid === undefined) return [];
  const queued: string[] = [];
  for (const n of names) if (await tryLock(pushLockPath(walDir, n), pid)) queued.push(n);
  return queued;
}

/** Wait briefly for the foreground to write our lock (it does so right after spawning us). */
async function ownsLock(lock: string): Promise<boolean> {
  for (let i = 0; i < 100; i++) {
    const owner = await lockOwner(lock);
    if (owner !== undefined) return owner === process.pid;
    await new Promise((r) => setTimeout(r, 10));
  }
  return false;
}

/** A worker keeps extending its window while PostgreSQL keeps marking segments ready, this long at most. */
const WORKER_LIFETIME_MS = 5 * 60_000;

/**
 * The worker: push each locked segment, record it, release its lock. When its window is done it
 * locks the next ready segments itself and goes on, so a steady backlog is drained by one warm
 * process while PostgreSQL's calls only read records; it exits when nothing is left to push (or
 * after WORKER_LIFETIME_MS; the next full wal-push call starts another).
 */
export async function runPushAhead(repo: Repository, settings: PushAheadSettings, walDir: string, names: string[]): Promise<void> {
  const meta = await repo.requireStanza();
  const codec = settings.codecExplicit ? settings.codec : meta.codec;
  const records = new PushRecords(walDir);
  const events: AuditEvent[] = [];
  const deadline = Date.now() + WORKER_LIFETIME_MS;
  const pushOne = async (name: string) => {
    const lock = pushLockPath(walDir, name);
    if (!(await ownsLock(lock))) return;
    const started = Date.now();
    try {
      const file = await inspectLocalWal(join(walDir, name), assertWalFileName(name), name);
      if (file.identity) await repo.ensureStanza(file.identity, codec, `WAL file '${name}'`);
      const r = await pushWalFile(repo, file, { codec, level: settings.compressLevel });
      await records.add(file, r.sha256, pushTarget(requireRepo(settings), settings.stanza));
      events.push(r.event);
    } catch (err) {
      // PostgreSQL's own call for this segment will push it and report the error properly.
      log.warn(`look-ahead push of '${name}' failed: ${(err as Error).message}`);
      events.push(auditEvent(err instanceof ArchiveMismatchError ? 'mismatch' : 'error', name, started, { detail: `look-ahead: ${(err as Error).message}` }));
    } finally {
      await rm(lock, { force: true });
    }
  };
  let window = names;
  while (window.length > 0) {
    await mapPool(window, settings.jobs, pushOne);
    await writeAudit(repo, events.splice(0));
    if (Date.now() > deadline) break;
    const after = window[window.length - 1]!;
    window = [];
    for (const n of await candidates(walDir, after, settings.pushAhead)) {
      if (await tryLock(pushLockPath(walDir, n))) window.push(n);
    }
  }
}
