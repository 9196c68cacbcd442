/**
 * Repository.list / delete / sweep (issue 15 item 1): the same retry policy and abort signal as
 * get/put/stat. Before, callers listed and deleted through `repo.driver`, and one connection
 * reset failed the whole command.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { InvalidInputError, StorageError } from '../../../src/common/errors.js';
import { Repository } from '../../../src/repo/repository.js';
import { createMemoryStore, dropMemoryStore, type MemoryDriver } from '../../../storage-drivers/memory/memory-driver.js';
import { flakyDriver, type Faults } from '../../helpers/flaky-driver.js';

const policy = { attempts: 3, budgetMs: 10_000, baseDelayMs: 1 };
let n = 0;
const made: string[] = [];

async function store(keys: string[]): Promise<MemoryDriver> {
  const name = `repo-list-delete-${++n}`;
  made.push(name);
  const mem = createMemoryStore(name);
  for (const k of keys) await mem.put(k, Buffer.from(k));
  return mem;
}

async function paths(it: AsyncIterable<{ path: string }>): Promise<string[]> {
  const out: string[] = [];
  for await (const o of it) out.push(o.path);
  return out;
}

afterEach(() => {
  for (const name of made.splice(0)) dropMemoryStore(name);
});

const KEYS = ['main/wal/a', 'main/wal/b', 'main/wal/c', 'main/wal/d', 'other/x'];

describe('Repository.list', () => {
  it('lists again after a connection reset mid-listing, yielding each object once', async () => {
    const d = flakyDriver(await store(KEYS), { list: [1, 2] });
    const repo = new Repository(d, 'main', policy);
    expect(await paths(repo.list('main/wal/'))).toEqual(['main/wal/a', 'main/wal/b', 'main/wal/c', 'main/wal/d']);
    expect(d.calls.list).toBe(2);
  });

  it('gives up with the transient error when the attempts are used up', async () => {
    const d = flakyDriver(await store(KEYS), { list: [3, 0] });
    const err = await paths(new Repository(d, 'main', policy).list('main/')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageError);
    expect(d.calls.list).toBe(3);
  });

  it('does not retry an error that is not transient', async () => {
    const d = flakyDriver(await store(KEYS), {});
    await expect(paths(new Repository(d, 'main', policy).list('../x'))).rejects.toBeInstanceOf(InvalidInputError);
    expect(d.calls.list).toBe(1);
  });

  it('stops at an aborted signal, also while waiting to retry', async () => {
    const d = flakyDriver(await store(KEYS), { list: [5, 0] });
    const repo = new Repository(d, 'main', { attempts: 5, budgetMs: 600_000, baseDelayMs: 60_000 });
    const ac = new AbortController();
    const listing = paths(repo.list('main/', { signal: ac.signal })).catch((e: unknown) => e);
    setTimeout(() => ac.abort(), 50);
    const started = Date.now();
    expect((await listing) as Error).toMatchObject({ name: 'AbortError' });
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(d.calls.list).toBe(1);
    await expect(paths(repo.list('main/', { signal: ac.signal }))).rejects.toMatchObject({ name: 'AbortError' });
    expect(d.calls.list).toBe(1);
  });
});

describe('Repository.delete and sweep', () => {
  it('retries a delete that met a connection reset', async () => {
    const d = flakyDriver(await store(KEYS), { delete: 1 });
    const repo = new Repository(d, 'main', policy);
    await repo.delete(['main/wal/a', 'main/wal/b']);
    expect(d.calls.delete).toBe(2);
    expect(await paths(repo.list('main/wal/'))).toEqual(['main/wal/c', 'main/wal/d']);
  });

  it('gives up after the attempts of the policy', async () => {
    const d = flakyDriver(await store(KEYS), { delete: 5 });
    await expect(new Repository(d, 'main', policy).delete(['main/wal/a'])).rejects.toBeInstanceOf(StorageError);
    expect(d.calls.delete).toBe(3);
  });

  it('rejects at once when the signal is already aborted', async () => {
    const d = flakyDriver(await store(KEYS), {});
    const ac = new AbortController();
    ac.abort();
    await expect(new Repository(d, 'main', policy).delete(['main/wal/a'], { signal: ac.signal })).rejects.toMatchObject({ name: 'AbortError' });
    expect(d.calls.delete).toBe(0);
  });

  it('retries a sweep, and is 0 on a driver without sweep', async () => {
    const faults: Faults = { sweep: 1 };
    const d = flakyDriver(await store(KEYS), faults, { sweep: true });
    expect(await new Repository(d, 'main', policy).sweep('main/')).toBe(0);
    expect(d.calls.sweep).toBe(2);
    expect(await new Repository(await store([]), 'main', policy).sweep('main/')).toBe(0);
  });
});

describe('Repository.location and driverName', () => {
  it('are the driver\'s', async () => {
    const repo = new Repository(await store([]), 'main', policy);
    expect(repo.location).toBe(`memory://repo-list-delete-${n}`);
    expect(repo.driverName).toBe('memory');
  });
});
