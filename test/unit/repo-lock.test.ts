import { spawn } from 'node:child_process';
import { mkdtemp, rm, utimes } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createDriver } from '../../storage-drivers/fs/fs-driver.js';
import { LockedError } from '../../src/common/errors.js';
import { log } from '../../src/common/log.js';
import { lockKey } from '../../src/repo/layout.js';
import { acquireRepoLock, type RepoLock, type RepoLockInfo } from '../../src/repo/repo-lock.js';
import { Repository } from '../../src/repo/repository.js';
import { waitFor } from '../helpers/wait.js';

const MIN = 60_000;

let parent: string;
let repo: Repository;
let stanzaN = 0;
const held: RepoLock[] = [];

/** Each test its own stanza, so tests share one repository without seeing each other's locks. */
function stanzaRepo(): Repository {
  return new Repository(repo.driver, `s${++stanzaN}`, { attempts: 1, budgetMs: 0 });
}

async function acquire(r: Repository, o: Parameters<typeof acquireRepoLock>[2]): Promise<RepoLock> {
  const lock = await acquireRepoLock(r, 'backup', o);
  held.push(lock);
  return lock;
}

async function readLock(r: Repository): Promise<RepoLockInfo | null> {
  const key = lockKey(r.stanza, 'backup');
  return (await r.stat(key)) ? (JSON.parse(await r.getJson(key)) as RepoLockInfo) : null;
}

async function writeLock(r: Repository, info: Partial<RepoLockInfo>): Promise<RepoLockInfo> {
  const t = new Date().toISOString();
  const full: RepoLockInfo = { host: hostname(), pid: process.pid, token: 'f'.repeat(32), purpose: 'expire', acquiredAt: t, renewedAt: t, ...info };
  await r.putJson(lockKey(r.stanza, 'backup'), full);
  return full;
}

/** A pid that existed and has exited (reuse within the test is vanishingly unlikely). */
async function deadPid(): Promise<number> {
  const child = spawn('true');
  await new Promise((r) => child.once('exit', r));
  if (child.pid === undefined) throw new Error('spawn failed');
  return child.pid;
}

beforeAll(async () => {
  parent = await mkdtemp(join(tmpdir(), 'pgark-repo-lock-test-'));
  const driver = await createDriver(pathToFileURL(join(parent, 'repo')), {});
  repo = new Repository(driver, 'main', { attempts: 1, budgetMs: 0 });
});

afterEach(async () => {
  vi.restoreAllMocks();
  await Promise.all(held.splice(0).map((l) => l.release()));
});

afterAll(async () => {
  await repo?.close();
  if (parent) await rm(parent, { recursive: true, force: true });
});

describe('acquireRepoLock', () => {
  it('creates the lock object, and release() deletes it', async () => {
    const r = stanzaRepo();
    const lock = await acquire(r, { purpose: 'backup' });
    expect(lock.token).toMatch(/^[0-9a-f]{32}$/);
    expect(lock.key).toBe(`${r.stanza}/lock/backup`);
    expect(lock.lost).toBe(false);
    const info = await readLock(r);
    expect(info).toEqual({
      host: hostname(),
      pid: process.pid,
      token: lock.token,
      purpose: 'backup',
      acquiredAt: expect.any(String),
      renewedAt: info!.acquiredAt,
    });
    await lock.release();
    expect(await readLock(r)).toBeNull();
    await lock.release(); // idempotent
    // Free again.
    const again = await acquire(r, { purpose: 'expire' });
    expect(again.token).not.toBe(lock.token);
  });

  it('a second acquire while held is a LockedError naming the holder and how it clears', async () => {
    const r = stanzaRepo();
    const lock = await acquire(r, { purpose: 'backup' });
    const info = (await readLock(r))!;
    const err = await acquireRepoLock(r, 'backup', { purpose: 'expire' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LockedError);
    const msg = (err as Error).message;
    expect(msg).toContain(`'${r.stanza}/lock/backup'`);
    expect(msg).toContain('held by backup');
    expect(msg).toContain(`host '${hostname()}'`);
    expect(msg).toContain(`pid ${process.pid}`);
    expect(msg).toContain(`since ${info.acquiredAt}`);
    expect(msg).toContain(`clears when process ${process.pid} exits`);
    expect((await readLock(r))!.token).toBe(lock.token);
  });

  it('takes over a lock of a dead process on this host', async () => {
    const r = stanzaRepo();
    const pid = await deadPid();
    await writeLock(r, { pid });
    const warn = vi.spyOn(log, 'warn').mockImplementation(() => {});
    const lock = await acquire(r, { purpose: 'backup' });
    const info = (await readLock(r))!;
    expect(info.token).toBe(lock.token);
    expect(info.pid).toBe(process.pid);
    expect(warn.mock.calls.join('\n')).toContain(`process ${pid} on this host has exited`);
  });

  it('another host\'s lock is live within the lease and stale after it (injected clock)', async () => {
    const r = stanzaRepo();
    const renewedAt = new Date().toISOString();
    await writeLock(r, { host: 'other-host.example', pid: 1, renewedAt });

    const err = await acquireRepoLock(r, 'backup', { purpose: 'backup', now: () => Date.now() + 9 * MIN }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LockedError);
    const msg = (err as Error).message;
    expect(msg).toContain("host 'other-host.example' pid 1");
    expect(msg).toContain('when its lease expires');

    vi.spyOn(log, 'warn').mockImplementation(() => {});
    const lock = await acquire(r, { purpose: 'backup', now: () => Date.now() + 11 * MIN });
    expect((await readLock(r))!.token).toBe(lock.token);
  });

  it('the lease counts from the later of renewedAt and the object\'s mtime', async () => {
    const r = stanzaRepo();
    const key = lockKey(r.stanza, 'backup');
    // renewedAt 20 minutes ago, but the object was written just now.
    await writeLock(r, { host: 'other-host.example', renewedAt: new Date(Date.now() - 20 * MIN).toISOString() });
    await expect(acquireRepoLock(r, 'backup', { purpose: 'backup' })).rejects.toBeInstanceOf(LockedError);
    // renewedAt now, but the object's mtime is old: still live.
    await writeLock(r, { host: 'other-host.example', renewedAt: new Date().toISOString() });
    const old = new Date(Date.now() - 20 * MIN);
    await utimes(join(parent, 'repo', key), old, old);
    await expect(acquireRepoLock(r, 'backup', { purpose: 'backup' })).rejects.toBeInstanceOf(LockedError);
    // Both old: stale.
    await writeLock(r, { host: 'other-host.example', renewedAt: old.toISOString() });
    await utimes(join(parent, 'repo', key), old, old);
    vi.spyOn(log, 'warn').mockImplementation(() => {});
    const lock = await acquire(r, { purpose: 'backup' });
    expect((await readLock(r))!.token).toBe(lock.token);
  });

  it('a custom leaseMs applies', async () => {
    const r = stanzaRepo();
    await writeLock(r, { host: 'other-host.example', renewedAt: new Date().toISOString() });
    await expect(acquireRepoLock(r, 'backup', { purpose: 'backup', leaseMs: 60 * MIN, now: () => Date.now() + 30 * MIN }))
      .rejects.toBeInstanceOf(LockedError);
    vi.spyOn(log, 'warn').mockImplementation(() => {});
    await expect(acquire(r, { purpose: 'backup', leaseMs: 60 * MIN, now: () => Date.now() + 61 * MIN })).resolves.toBeTruthy();
  });

  it('release() does not delete a lock that is no longer ours', async () => {
    const r = stanzaRepo();
    const lock = await acquire(r, { purpose: 'backup' });
    const theirs = await writeLock(r, { host: 'other-host.example', token: 'a'.repeat(32) });
    const warn = vi.spyOn(log, 'warn').mockImplementation(() => {});
    await lock.release();
    expect(await readLock(r)).toEqual(theirs);
    expect(warn.mock.calls.join('\n')).toContain('no longer ours');
  });

  it('renews renewedAt every leaseMs/4 while held, and stops after release', async () => {
    const r = stanzaRepo();
    const lock = await acquire(r, { purpose: 'backup', leaseMs: 200 });
    const first = (await readLock(r))!;
    await waitFor(async () => (await readLock(r))!.renewedAt !== first.renewedAt, 'a renewal');
    const renewed = (await readLock(r))!;
    expect(renewed.token).toBe(lock.token);
    expect(renewed.acquiredAt).toBe(first.acquiredAt);
    expect(Date.parse(renewed.renewedAt)).toBeGreaterThan(Date.parse(first.renewedAt));
    // Renewal keeps it live well past the lease: renewed more than two leases after it was
    // taken, and live for a taker whose clock is within a lease of the last renewal seen. (The
    // taker's clock is injected: a wall-clock wait let a renewal delayed by a loaded machine
    // make the lock look stale, the flake this replaces.)
    await waitFor(async () => Date.parse((await readLock(r))!.renewedAt) - Date.parse(first.acquiredAt) > 400, 'renewals past the lease');
    const seen = Date.parse((await readLock(r))!.renewedAt);
    await expect(acquireRepoLock(r, 'backup', { purpose: 'expire', leaseMs: 200, now: () => seen + 150 })).rejects.toBeInstanceOf(LockedError);
    expect((await readLock(r))!.token).toBe(lock.token);
    await lock.release();
    await new Promise((res) => setTimeout(res, 150));
    expect(await readLock(r)).toBeNull(); // no renewal recreated it
  });

  it('stops renewing, warns and reports lost when the lock was taken over', async () => {
    const r = stanzaRepo();
    const warn = vi.spyOn(log, 'warn').mockImplementation(() => {});
    const lock = await acquire(r, { purpose: 'backup', leaseMs: 200 });
    // The takeover is written right after a renewal's write, before the next renewal reads: one
    // written at any moment could land between a renewal's read and write and be overwritten
    // (the flake on a loaded machine; a store without conditional writes allows it, see
    // src/repo/repo-lock.ts).
    const realPut = r.putJson.bind(r);
    let puts = 0;
    const takenOver = new Promise<RepoLockInfo>((resolve, reject) => {
      vi.spyOn(r, 'putJson').mockImplementation(async (...a: Parameters<Repository['putJson']>) => {
        const out = await realPut(...a);
        if (puts++ === 0) await writeLock(r, { host: 'other-host.example', token: 'b'.repeat(32) }).then(resolve, reject);
        return out;
      });
    });
    const theirs = await takenOver;
    await waitFor(async () => lock.lost, 'the loss to be noticed');
    expect(warn.mock.calls.join('\n')).toContain('is no longer ours');
    await new Promise((res) => setTimeout(res, 150));
    expect(await readLock(r)).toEqual(theirs); // not overwritten by a renewal
    await lock.release();
    expect(await readLock(r)).toEqual(theirs);
  });
});
