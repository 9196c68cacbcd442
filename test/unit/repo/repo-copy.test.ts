/**
 * Repository.copyObjectTo and copyRepository (`pgark copy`) on repositories in memory: objects
 * copied as stored between plain repositories and still decodable, a damaged source refused with
 * nothing stored, resumable (same content skipped), a different object in the target refused
 * and left unchanged, a backup's catalog entry written after its objects and its chain.
 */
import { Readable } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ArchiveMismatchError, IntegrityError } from '../../../src/common/errors.js';
import { catalogKey, stanzaMetaKey, walKey } from '../../../src/repo/layout.js';
import { readAll } from '../../../src/repo/object-stream.js';
import { copyRepository } from '../../../src/ops/repo-copy.js';
import { allKeys, backupEntry, memoryRepo, storeBackup, type MemoryRepo } from '../../helpers/memory-repo.js';

let a: MemoryRepo;
let b: MemoryRepo;
beforeEach(async () => {
  a = memoryRepo();
  b = memoryRepo();
  await a.repo.ensureStanza({ systemIdentifier: '7000000000000000001', pgVersion: 150000, walSegmentSize: 16 * 1024 * 1024 }, 'lz4', 'test');
});
afterEach(() => {
  a.drop();
  b.drop();
});

/** Compressible, several MiB: many lz4 blocks and driver chunks. */
const content = (): Buffer => Buffer.concat(Array.from({ length: 48 }, (_v, i) => Buffer.concat([Buffer.alloc(50_000, i), randomBytes(20_000)])));

async function put(m: MemoryRepo, key: string, body: Buffer, codec: 'lz4' | 'zstd' | 'none' = 'lz4'): Promise<void> {
  await m.repo.putObject(key, () => Readable.from([body]), { codec, ifAbsent: true });
}

describe('copyObjectTo', () => {
  it.each(['lz4', 'zstd', 'none'] as const)('copies a %s object as stored; the copy decodes to the same content', async (codec) => {
    const key = 'main/backup/20261207-000000F/data/0';
    const body = content();
    await put(a, key, body, codec);
    expect(await a.repo.copyObjectTo(b.repo, key, { codec: 'lz4' })).toEqual({ status: 'copied', how: 'as-stored', rawSize: body.length });
    expect((await readAll(await b.repo.getObject(key), 8 * 1024 * 1024)).equals(body)).toBe(true);
    // Byte for byte what the source stores.
    expect((await readAll(await a.driver.get(key), 8 * 1024 * 1024)).equals(await readAll(await b.driver.get(key), 8 * 1024 * 1024))).toBe(true);
    // Again: already there, skipped.
    expect((await a.repo.copyObjectTo(b.repo, key, { codec: 'lz4' })).status).toBe('exists');
  });

  it('refuses a damaged source object and stores nothing', async () => {
    const key = 'main/backup/20261207-000000F/data/1';
    await put(a, key, content());
    const stored = await readAll(await a.driver.get(key), 8 * 1024 * 1024);
    stored[Math.floor(stored.length / 2)]! ^= 0x40;
    await a.driver.delete([key]);
    await a.driver.put(key, Readable.from([stored]), { ifAbsent: true });
    await expect(a.repo.copyObjectTo(b.repo, key, { codec: 'lz4' })).rejects.toBeInstanceOf(IntegrityError);
    expect(await b.driver.stat(key)).toBeNull();
  });

  it('leaves a different object in the target unchanged (exit 3)', async () => {
    const key = walKey('main', '00000002.history');
    await put(a, key, Buffer.from('1\t0/3000000\tno recovery target specified\n'));
    await put(b, key, Buffer.from('something else\n'));
    const before = await readAll(await b.driver.get(key));
    await expect(a.repo.copyObjectTo(b.repo, key, { codec: 'lz4' })).rejects.toBeInstanceOf(ArchiveMismatchError);
    expect((await readAll(await b.driver.get(key))).equals(before)).toBe(true);
  });
});

describe('copyRepository', () => {
  it('copies the stanza, WAL and backups with their chains; catalog entries last; a second run copies nothing', async () => {
    const full = backupEntry({ id: '20261201-000000F', lsn: '0/2000028', stop: '2026-12-01T00:10:00Z' });
    const incr = backupEntry({ id: '20261202-000000I', lsn: '0/4000028', stop: '2026-12-02T00:10:00Z', parent: full });
    await storeBackup(a.repo, full);
    await storeBackup(a.repo, incr);
    await put(a, walKey('main', '000000010000000000000002'), Buffer.alloc(1000, 2));
    await put(a, walKey('main', '000000010000000000000009'), Buffer.alloc(1000, 9));
    // Only the incremental asked for: its parent comes too, and the WAL of each backup's own range.
    const r = await copyRepository(a.repo, b.repo, 'repo2', { wal: false, backups: [incr.id], jobs: 2 });
    expect(r.backups).toEqual([full.id, incr.id]);
    const keys = await allKeys(b.driver);
    expect(keys).toContain(stanzaMetaKey('main'));
    expect(keys).toContain(catalogKey('main', full.id));
    expect(keys).toContain(walKey('main', '000000010000000000000002'));
    expect(keys).not.toContain(walKey('main', '000000010000000000000009'));
    const all = await copyRepository(a.repo, b.repo, 'repo2', { wal: true, backups: 'all', jobs: 2 });
    expect(all.walFiles).toBe(2);
    expect(all.objects.copied).toBe(1);
    const again = await copyRepository(a.repo, b.repo, 'repo2', { wal: true, backups: 'all', jobs: 2 });
    expect(again.objects).toMatchObject({ copied: 0 });
    expect(await allKeys(b.driver, 'main/wal/')).toEqual(await allKeys(a.driver, 'main/wal/'));
  });

  it('refuses a target stanza of another cluster', async () => {
    await b.repo.ensureStanza({ systemIdentifier: '7000000000000000999', pgVersion: 150000, walSegmentSize: 16 * 1024 * 1024 }, 'lz4', 'test');
    await expect(copyRepository(a.repo, b.repo, 'repo2', { wal: true, backups: [], jobs: 1 })).rejects.toThrow(/system identifier/);
  });
});

describe('copyObjectTo with encryption: re-encoded with the target\'s key', () => {
  const K1 = randomBytes(32).toString('hex');
  const K2 = randomBytes(32).toString('hex');
  const keys = { K1, K2 };

  it('plain -> encrypted (K1) -> encrypted under another key (K2): each copy readable only with its own key', async () => {
    const { keyEnvSource } = await import('../../../src/repo/repo-cipher.js');
    const { keyInit } = await import('../../../src/repo/key-admin.js');
    const c = memoryRepo();
    try {
      b.repo.useKeySource(keyEnvSource('K1', keys));
      c.repo.useKeySource(keyEnvSource('K2', keys));
      await keyInit(b.repo);
      await keyInit(c.repo);
      const key = 'main/backup/20261207-000000F/data/0';
      const body = content();
      await put(a, key, body);
      expect(await a.repo.copyObjectTo(b.repo, key, { codec: 'zstd' })).toMatchObject({ status: 'copied', how: 're-encoded' });
      expect(await b.repo.copyObjectTo(c.repo, key, { codec: 'lz4' })).toMatchObject({ status: 'copied', how: 're-encoded' });
      for (const m of [b, c]) expect((await readAll(await m.repo.getObject(key), 8 * 1024 * 1024)).equals(body)).toBe(true);
      // The encrypted copies hold no plaintext run of the content.
      const probe = body.subarray(60_000, 60_064);
      for (const m of [b, c]) expect((await readAll(await m.driver.get(key), 16 * 1024 * 1024)).includes(probe)).toBe(false);
      // Resumed: the same content under the target's key is recognised (keyed digest).
      expect((await a.repo.copyObjectTo(b.repo, key, { codec: 'zstd' })).status).toBe('exists');
      expect((await b.repo.copyObjectTo(c.repo, key, { codec: 'lz4' })).status).toBe('exists');
    } finally {
      c.drop();
    }
  });
});

describe('copyObjectTo between keyrings that share a data key (key init --share-from): as stored', () => {
  const keys = { K1: randomBytes(32).toString('hex'), K2: randomBytes(32).toString('hex'), K3: randomBytes(32).toString('hex') };

  /** a encrypted under K1; b shares its data keys under K2; c has its own keyring under K3. */
  async function encrypted(): Promise<MemoryRepo> {
    const { keyEnvSource } = await import('../../../src/repo/repo-cipher.js');
    const { keyInit } = await import('../../../src/repo/key-admin.js');
    const c = memoryRepo();
    a.repo.useKeySource(keyEnvSource('K1', keys));
    b.repo.useKeySource(keyEnvSource('K2', keys));
    c.repo.useKeySource(keyEnvSource('K3', keys));
    await keyInit(a.repo);
    expect(await keyInit(b.repo, { shareFrom: a.repo })).toMatchObject({ sharedFrom: a.location, sharedKeys: [1] });
    await keyInit(c.repo);
    return c;
  }

  it.each(['lz4', 'none'] as const)('a %s object: the stored bytes copied unchanged, readable with the target\'s own KEK', async (codec) => {
    const c = await encrypted();
    try {
      const key = 'main/backup/20261207-000000F/data/0';
      const body = content();
      await put(a, key, body, codec);
      expect(await a.repo.copyObjectTo(b.repo, key, { codec: 'zstd' })).toEqual({ status: 'copied', how: 'as-stored', rawSize: body.length });
      const src = await readAll(await a.driver.get(key), 16 * 1024 * 1024);
      expect((await readAll(await b.driver.get(key), 16 * 1024 * 1024)).equals(src)).toBe(true);
      expect((await readAll(await b.repo.getObject(key), 8 * 1024 * 1024)).equals(body)).toBe(true);
      expect((await a.repo.copyObjectTo(b.repo, key, { codec: 'zstd' })).status).toBe('exists');
      // Another keyring: re-encrypted; the bytes differ and read back with K3.
      expect(await a.repo.copyObjectTo(c.repo, key, { codec: 'zstd' })).toMatchObject({ status: 'copied', how: 're-encoded' });
      expect((await readAll(await c.driver.get(key), 16 * 1024 * 1024)).equals(src)).toBe(false);
      expect((await readAll(await c.repo.getObject(key), 8 * 1024 * 1024)).equals(body)).toBe(true);
    } finally {
      c.drop();
    }
  });

  it('a damaged encrypted source object is refused, as stored and re-encrypted, and nothing is stored', async () => {
    const c = await encrypted();
    try {
      const key = 'main/backup/20261207-000000F/data/1';
      await put(a, key, content());
      const stored = await readAll(await a.driver.get(key), 16 * 1024 * 1024);
      stored[Math.floor(stored.length / 2)]! ^= 0x40;
      await a.driver.delete([key]);
      await a.driver.put(key, Readable.from([stored]), { ifAbsent: true });
      for (const t of [b, c]) {
        await expect(a.repo.copyObjectTo(t.repo, key, { codec: 'lz4' })).rejects.toThrow(key);
        expect(await t.driver.stat(key)).toBeNull();
      }
    } finally {
      c.drop();
    }
  });

  it('a data key the target lacks (rotated in the source since): re-encrypted under the target\'s current key', async () => {
    const c = await encrypted();
    try {
      const { keyEnvSource } = await import('../../../src/repo/repo-cipher.js');
      const { keyRotate } = await import('../../../src/repo/key-admin.js');
      await keyRotate(a.repo, keyEnvSource('K1', keys), { newDataKey: true });
      const key = 'main/backup/20261207-000000F/data/2';
      const body = content();
      await put(a, key, body);
      expect(await a.repo.copyObjectTo(b.repo, key, { codec: 'lz4' })).toMatchObject({ status: 'copied', how: 're-encoded' });
      const t = await b.repo.readTrailer(key, (await b.driver.stat(key))!.size);
      expect(t.keyNumber).toBe(1);
      expect((await readAll(await b.repo.getObject(key), 8 * 1024 * 1024)).equals(body)).toBe(true);
    } finally {
      c.drop();
    }
  });

  it('a different object under the same name and data key in the target: refused (exit 3), left unchanged', async () => {
    const c = await encrypted();
    try {
      const key = 'main/backup/20261207-000000F/data/4';
      await put(a, key, content());
      await put(b, key, content());
      const before = await readAll(await b.driver.get(key), 16 * 1024 * 1024);
      await expect(a.repo.copyObjectTo(b.repo, key, { codec: 'lz4' })).rejects.toBeInstanceOf(ArchiveMismatchError);
      expect((await readAll(await b.driver.get(key), 16 * 1024 * 1024)).equals(before)).toBe(true);
    } finally {
      c.drop();
    }
  });

  it('a keyring with the same number but another key is not taken for the same key', async () => {
    const c = await encrypted();
    try {
      const key = 'main/backup/20261207-000000F/data/3';
      await put(a, key, content());
      // c's data key 1 is a different random key: never copied as stored.
      expect(await a.repo.copyObjectTo(c.repo, key, { codec: 'lz4' })).toMatchObject({ how: 're-encoded' });
    } finally {
      c.drop();
    }
  });
});

describe('copyObjectTo on the filesystem driver', () => {
  it('an encrypted object damaged mid-way fails the as-stored copy at once (it hung before: the verifier stopped reading) and nothing is stored', async () => {
    const { mkdtemp, readFile, rm, writeFile } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { openDriver } = await import('../../../storage-drivers/registry.js');
    const { Repository } = await import('../../../src/repo/repository.js');
    const { keyEnvSource } = await import('../../../src/repo/repo-cipher.js');
    const { keyInit } = await import('../../../src/repo/key-admin.js');
    const keys = { K1: randomBytes(32).toString('hex'), K2: randomBytes(32).toString('hex') };
    const dirs = [await mkdtemp(join(tmpdir(), 'pgark-copy-a-')), await mkdtemp(join(tmpdir(), 'pgark-copy-b-'))];
    const [src, dst] = await Promise.all(dirs.map(async (d, i) => {
      const r = new Repository(await openDriver(d, { settings: {} }), 'main', { attempts: 1, budgetMs: 0 });
      r.useKeySource(keyEnvSource(i === 0 ? 'K1' : 'K2', keys));
      return r;
    })) as [InstanceType<typeof Repository>, InstanceType<typeof Repository>];
    try {
      await keyInit(src);
      await keyInit(dst, { shareFrom: src });
      const key = 'main/wal/00000001/0000000100000000/000000010000000000000003';
      await src.putObject(key, () => Readable.from([Buffer.concat([Buffer.alloc(8 << 20, 1), randomBytes(8 << 20)])]), { codec: 'none', ifAbsent: true });
      const file = join(dirs[0]!, key);
      const bytes = await readFile(file);
      bytes[bytes.length >> 1]! ^= 0x10;
      await writeFile(file, bytes);
      await expect(src.copyObjectTo(dst, key, { codec: 'lz4' })).rejects.toThrow(/failed authentication/);
      expect(await dst.stat(key)).toBeNull();
    } finally {
      await Promise.all([src.close(), dst.close()]);
      await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
    }
  }, 30_000);
});
