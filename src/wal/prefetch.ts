/**
 * The prefetch area for wal-fetch: `<spool>/prefetch/<name>` holds complete, verified segments
 * downloaded ahead of PostgreSQL's requests. A file appears there only by rename after
 * verification; `<name>.lock` (O_EXCL, holding the owner's pid) keeps two workers off one name.
 */
import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { NotFoundError } from '../common/errors.js';
import { isProcessAlive } from '../common/process.js';
import { lockHeld, tryLock } from '../common/pid-lock.js';
import { log } from '../common/log.js';
import { mapPool } from '../common/pool.js';
import type { Repository } from '../repo/repository.js';
import type { Settings } from '../config/resolve.js';
import { auditEvent, writeAudit, type AuditEvent } from './audit.js';
import { fetchWalFile } from './fetch-file.js';
import { nextSegment, parseSegmentName, segmentName } from './segment-name.js';
import { ensureDir } from './spool.js';
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

/**
 * The prefetch worker: download `names` (`jobs` at a time), then keep `settings.prefetch`
 * verified segments ready ahead of replay, one after the other, while replay keeps taking them.
 * Stops at the first segment not in the archive (the end of recovery, or a standby waiting);
 * after IDLE_EXIT_MS without replay taking a segment it removes what it left and exits.
 */
export async function runPrefetch(repo: Repository, settings: Pick<Settings, 'jobs' | 'prefetch'>, dir: string, names: string[]): Promise<{ fetched: string[] }> {
  await ensureDir(dir);
  const meta = await repo.requireStanza();
  const fetched: string[] = [];
  const events: AuditEvent[] = [];
  let missing = false;
  const fetchOne = async (name: string): Promise<void> => {
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
  };
  // The initial window in order, so that a missing segment stops the ones after it.
  const sorted = [...names].sort();
  await mapPool(sorted, settings.jobs, fetchOne);
  await writeAudit(repo, events.splice(0));

  const deadline = Date.now() + WORKER_LIFETIME_MS;
  let next = sorted[sorted.length - 1];
  /** Fetched segments replay has not taken yet. */
  let waiting = [...fetched];
  let lastProgress = Date.now();
  while (!missing && next !== undefined && Date.now() < deadline && Date.now() - lastProgress < IDLE_EXIT_MS) {
    const present: string[] = [];
    for (const n of waiting) if (await exists(join(dir, n))) present.push(n);
    waiting = present;
    if (waiting.length >= settings.prefetch) {
      await new Promise((r) => setTimeout(r, 25));
      continue;
    }
    lastProgress = Date.now();
    next = followingSegments(next, meta.walSegmentSize, 1)[0]!;
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
  await writeAudit(repo, events);
  return { fetched };
}
