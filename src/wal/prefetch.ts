/**
 * The prefetch area for wal-fetch: `<spool>/prefetch/<name>` holds complete, verified segments
 * downloaded ahead of PostgreSQL's requests. A file appears there only by rename after
 * verification; `<name>.lock` (O_EXCL, holding the owner's pid) keeps two workers off one name.
 */
import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { NotFoundError } from '../common/errors.js';
import { isProcessAlive } from '../common/process.js';
import { lockHeld, tryLock, waitWhileLocked } from '../common/pid-lock.js';
import { log } from '../common/log.js';
import { mapPool } from '../common/pool.js';
import type { Repository } from '../repo/repository.js';
import { auditEvent, writeAudit, type AuditEvent } from './audit.js';
import { fetchWalFile } from './fetch-file.js';
import { nextSegment, parseSegmentName, segmentName } from './segment-name.js';
import { ensureDir } from './spool.js';

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
    if (/^[0-9A-F]{24}$/.test(e) && e < current) await rm(full, { force: true });
  }
}

/** Wait (bounded) while a live worker holds `<name>.lock`; the caller then looks for the file. */
export async function waitForPrefetchWorker(dir: string, name: string, maxMs: number): Promise<void> {
  await waitWhileLocked(join(dir, `${name}.lock`), maxMs, 20);
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

/** Download `names` into the prefetch area with `jobs` in parallel; stops at the first missing one. */
export async function runPrefetch(repo: Repository, dir: string, names: string[], jobs: number): Promise<{ fetched: string[] }> {
  await ensureDir(dir);
  const fetched: string[] = [];
  const events: AuditEvent[] = [];
  let missingFrom = Number.POSITIVE_INFINITY;
  await mapPool(names, jobs, async (name, i) => {
    if (i > missingFrom) return;
    const lock = join(dir, `${name}.lock`);
    if (!(await tryLock(lock))) return;
    const started = Date.now();
    try {
      if (await exists(join(dir, name))) return;
      const size = await fetchWalFile(repo, name, join(dir, name));
      fetched.push(name);
      events.push(auditEvent('fetch', name, started, { size, detail: 'prefetch' }));
    } catch (err) {
      if (err instanceof NotFoundError) missingFrom = Math.min(missingFrom, i);
      else log.warn(`prefetch of '${name}' failed: ${(err as Error).message}`);
    } finally {
      await rm(lock, { force: true });
    }
  });
  await writeAudit(repo, events);
  return { fetched };
}
