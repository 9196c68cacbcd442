import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AlreadyExistsError, StorageError } from '../../src/common/errors.js';
import { Repository } from '../../src/repo/repository.js';
import { FsDriver } from '../../storage-drivers/fs/fs-driver.js';
import type { PutOptions, StorageDriver } from '../../storage-drivers/types.js';

/** An fs driver whose first put stores the object and then loses the answer (a transient error). */
function losingFirstAnswer(fs: FsDriver): StorageDriver & { puts: number } {
  const d = Object.assign(Object.create(fs) as StorageDriver, { puts: 0 });
  d.put = async (path: string, body: Readable | Buffer, o?: PutOptions) => {
    const n = ++d.puts;
    const r = await fs.put(path, body, o);
    if (n === 1) throw new StorageError('test', `unable to store '${path}': connection reset (answer lost)`, { transient: true });
    return r;
  };
  return d;
}

describe('Repository.putObject retries of put-if-absent', () => {
  let root: string;
  let fs: FsDriver;
  const policy = { attempts: 3, budgetMs: 10_000, baseDelayMs: 1 };
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'pgark-repo-retry-'));
    fs = new FsDriver(root);
  });
  afterAll(async () => rm(root, { recursive: true, force: true }));

  it('recognises its own write when the first answer was lost', async () => {
    const driver = losingFirstAnswer(fs);
    const repo = new Repository(driver, 'main', policy);
    const body = Buffer.from('lock token 1234');
    const r = await repo.putObject('main/lock/x', () => Readable.from([body]), { codec: 'none', ifAbsent: true });
    expect(driver.puts).toBe(2);
    expect(r.rawSize).toBe(body.length);
    expect(await repo.getJson('main/lock/x')).toBe('lock token 1234');
  });

  it('still refuses when the object holds someone else\'s content', async () => {
    await new Repository(fs, 'main', policy).putObject('main/lock/y', () => Readable.from([Buffer.from('theirs')]), { codec: 'none', ifAbsent: true });
    const driver = losingFirstAnswer(fs);
    // First attempt: AlreadyExists at once (not transient), no retry.
    await expect(new Repository(driver, 'main', policy).putObject('main/lock/y', () => Readable.from([Buffer.from('mine')]), { codec: 'none', ifAbsent: true })).rejects.toBeInstanceOf(AlreadyExistsError);
  });

  it('refuses on a retry when another writer got in between', async () => {
    const d = Object.assign(Object.create(fs) as StorageDriver, { n: 0 });
    d.put = async (path: string, body: Readable | Buffer, o?: PutOptions) => {
      if (++d.n === 1) {
        // Consume our body, fail transiently, and let another writer store different content.
        for await (const _ of body as Readable) void _;
        await fs.put(path, Buffer.from('x'));
        throw new StorageError('test', 'connection reset', { transient: true });
      }
      return fs.put(path, body, o);
    };
    await expect(new Repository(d, 'main', policy).putObject('main/lock/z', () => Readable.from([Buffer.from('mine')]), { codec: 'none', ifAbsent: true })).rejects.toBeInstanceOf(AlreadyExistsError);
  });
});
