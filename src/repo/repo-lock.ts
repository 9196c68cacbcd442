/**
 * A lock object in the repository (`<stanza>/lock/<name>`), so that only one backup or
 * expire of a stanza runs at a time, on any host.
 *
 * The object ({ host, pid, token, purpose, acquiredAt, renewedAt }) is created with put-if-absent.
 * The holder renews it every leaseMs/4. An existing lock is stale, and is taken over, when
 *  - its host is this host and its pid is not alive (the holder crashed), or
 *  - it has not been renewed for leaseMs (the later of renewedAt and the object's mtime counts):
 *    the only way a lock of a dead holder on another host clears.
 * A crash therefore never leaves the lock stuck for longer than the lease.
 *
 * Takeover is delete + put-if-absent + read back: two processes replacing the same stale lock
 * cannot both succeed through put-if-absent, and the read back catches one that deleted the
 * other's fresh lock. Storage without conditional delete leaves a small window in which that
 * read back can be too early; renewal then notices that the lock is no longer ours, logs it and
 * `lost` turns true.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { AlreadyExistsError, causeText, IntegrityError, LockedError, NotFoundError } from '../common/errors.js';
import { log } from '../common/log.js';
import { isProcessAlive } from '../common/process.js';
import { lockKey } from './layout.js';
import type { Repository } from './repository.js';

export const DEFAULT_LOCK_LEASE_MS = 10 * 60 * 1000;

/** How long a takeover waits before reading the lock back, to let a racing taker's write land. */
const TAKEOVER_SETTLE_MS = 100;
const MAX_ATTEMPTS = 5;

/** The stored lock object. Times are ISO 8601. */
export interface RepoLockInfo {
  host: string;
  pid: number;
  token: string;
  purpose: string;
  acquiredAt: string;
  renewedAt: string;
}

export interface AcquireRepoLockOptions {
  /** What holds the lock, for the message others get: 'backup', 'expire'. */
  purpose: string;
  /** A lock not renewed for this long is stale. Default 10 minutes. Renewal every leaseMs/4. */
  leaseMs?: number;
  /** Clock in ms; injectable for tests. Default Date.now. */
  now?: () => number;
}

export interface RepoLock {
  readonly key: string;
  readonly token: string;
  /** True once renewal found the object replaced or gone: another process may hold the lock. */
  readonly lost: boolean;
  /** Stop renewing and delete the object if it is still ours. Idempotent. */
  release(): Promise<void>;
}

export async function acquireRepoLock(repo: Repository, name: string, o: AcquireRepoLockOptions): Promise<RepoLock> {
  const key = lockKey(repo.stanza, name);
  const leaseMs = o.leaseMs ?? DEFAULT_LOCK_LEASE_MS;
  const now = o.now ?? Date.now;
  const host = hostname();

  for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
    const t = new Date(now()).toISOString();
    const mine: RepoLockInfo = { host, pid: process.pid, token: randomBytes(16).toString('hex'), purpose: o.purpose, acquiredAt: t, renewedAt: t };
    if (await create(repo, key, mine)) return new HeldLock(repo, key, mine, leaseMs, now);

    const existing = await readLock(repo, key);
    if (!existing) continue; // released meanwhile: try again
    if (existing.info?.token === mine.token) return new HeldLock(repo, key, mine, leaseMs, now); // a retried put that had succeeded

    const staleBecause = staleness(existing, host, leaseMs, now());
    if (!staleBecause) throw lockedError(key, existing, leaseMs);

    // Replace the stale lock, unless it changed since we judged it.
    const again = await readLock(repo, key);
    if (!again) continue;
    if (again.info?.token !== existing.info?.token || again.mtimeMs !== existing.mtimeMs) continue;
    log.warn(`taking over stale lock '${key}' (${describe(existing)}): ${staleBecause}`);
    await repo.driver.delete([key]);
    if (!(await create(repo, key, mine))) continue; // another process took it over first
    await sleep(TAKEOVER_SETTLE_MS);
    const check = await readLock(repo, key);
    if (check?.info?.token !== mine.token) {
      throw new LockedError(
        `unable to acquire lock '${key}': another process took over the stale lock at the same time` +
          (check ? ` (${describe(check)})` : ''),
      );
    }
    return new HeldLock(repo, key, mine, leaseMs, now);
  }
  throw new LockedError(`unable to acquire lock '${key}': it keeps changing (${MAX_ATTEMPTS} attempts)`);
}

class HeldLock implements RepoLock {
  private timer: NodeJS.Timeout | undefined;
  private renewing: Promise<void> | undefined;
  private stopped = false;
  private lostFlag = false;
  readonly token: string;

  constructor(
    private readonly repo: Repository,
    readonly key: string,
    private readonly info: RepoLockInfo,
    private readonly leaseMs: number,
    private readonly now: () => number,
  ) {
    this.token = info.token;
    this.schedule();
  }

  get lost(): boolean {
    return this.lostFlag;
  }

  async release(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.timer);
    // A renewal in flight would recreate the object after our delete.
    await this.renewing;
    const current = await readLock(this.repo, this.key);
    if (current?.info?.token === this.token) {
      await this.repo.driver.delete([this.key]);
    } else if (!this.lostFlag) {
      log.warn(`lock '${this.key}' was no longer ours at release` + (current ? ` (${describe(current)})` : ' (gone)') + '; left as is');
    }
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.renewing = this.renew().finally(() => {
        this.renewing = undefined;
        this.schedule();
      });
    }, Math.max(1, Math.floor(this.leaseMs / 4)));
    this.timer.unref();
  }

  private async renew(): Promise<void> {
    try {
      const current = await readLock(this.repo, this.key);
      if (this.stopped) return;
      if (current?.info?.token !== this.token) {
        this.lostFlag = true;
        this.stopped = true;
        log.warn(
          `lock '${this.key}' (${this.info.purpose}) is no longer ours: ` +
            (current ? `now ${describe(current)}` : 'it was deleted') +
            '; another process may run at the same time; stopped renewing it',
        );
        return;
      }
      this.info.renewedAt = new Date(this.now()).toISOString();
      await this.repo.putJson(this.key, this.info);
    } catch (err) {
      // Keep trying: the lease leaves time for several renewals.
      log.warn(`unable to renew lock '${this.key}': ${causeText(err)}`);
    }
  }
}

interface StoredLock {
  /** Undefined when the object is unreadable or not a lock: only its age can free it. */
  info: RepoLockInfo | undefined;
  mtimeMs: number;
}

/** Create the lock object; false when one exists. */
async function create(repo: Repository, key: string, info: RepoLockInfo): Promise<boolean> {
  try {
    await repo.putJson(key, info, true);
    return true;
  } catch (err) {
    if (err instanceof AlreadyExistsError) return false;
    throw err;
  }
}

async function readLock(repo: Repository, key: string): Promise<StoredLock | null> {
  const st = await repo.stat(key);
  if (!st) return null;
  let text: string;
  try {
    text = await repo.getJson(key);
  } catch (err) {
    if (err instanceof NotFoundError) return null;
    if (err instanceof IntegrityError) return { info: undefined, mtimeMs: st.mtimeMs };
    throw err;
  }
  return { info: parseLock(text), mtimeMs: st.mtimeMs };
}

function parseLock(text: string): RepoLockInfo | undefined {
  try {
    const v = JSON.parse(text) as Partial<RepoLockInfo> | null;
    if (
      v && typeof v.host === 'string' && typeof v.pid === 'number' && typeof v.token === 'string' &&
      typeof v.purpose === 'string' && typeof v.acquiredAt === 'string' && typeof v.renewedAt === 'string'
    ) {
      return v as RepoLockInfo;
    }
  } catch {
    // not JSON
  }
  return undefined;
}

function lastRenewal(lock: StoredLock): number {
  const renewed = lock.info ? Date.parse(lock.info.renewedAt) : NaN;
  return Number.isFinite(renewed) ? Math.max(renewed, lock.mtimeMs) : lock.mtimeMs;
}

/** Why the lock is stale, or undefined when it is live. */
function staleness(lock: StoredLock, host: string, leaseMs: number, now: number): string | undefined {
  if (lock.info && lock.info.host === host && !isProcessAlive(lock.info.pid)) {
    return `process ${lock.info.pid} on this host has exited`;
  }
  const idle = now - lastRenewal(lock);
  if (idle > leaseMs) return `not renewed for ${Math.round(idle / 1000)} s (lease ${Math.round(leaseMs / 1000)} s)`;
  return undefined;
}

function describe(lock: StoredLock): string {
  const i = lock.info;
  if (!i) return `unreadable lock object, last written ${new Date(lock.mtimeMs).toISOString()}`;
  return `held by ${i.purpose} on host '${i.host}' pid ${i.pid} since ${i.acquiredAt}, last renewed ${new Date(lastRenewal(lock)).toISOString()}`;
}

function lockedError(key: string, lock: StoredLock, leaseMs: number): LockedError {
  const expires = new Date(lastRenewal(lock) + leaseMs).toISOString();
  const i = lock.info;
  const clears = !i
    ? `it clears when not rewritten for ${Math.round(leaseMs / 1000)} s (at ${expires})`
    : i.host === hostname()
      ? `it clears when process ${i.pid} exits (or stops renewing it: lease expiry at ${expires})`
      : `it clears when that process exits and releases it, or, if it died, when its lease expires (${expires}, ` +
        `${Math.round(leaseMs / 1000)} s after its last renewal)`;
  return new LockedError(`unable to acquire lock '${key}': ${describe(lock)}; ${clears}`);
}
