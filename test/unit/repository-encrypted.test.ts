/**
 * A Repository on the filesystem driver with an encrypted stanza: idempotent archiving compares
 * the keyed digest (same file: exists; another file: mismatch), key init / rotate / retire on
 * real stored objects, and the KEK never reaches the stored bytes.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDriver } from '../../storage-drivers/fs/fs-driver.js';
import { ArchiveMismatchError, KeyError } from '../../src/common/errors.js';
import { dataKeyUsage, keyInit, keyList, keyRetire, keyRotate } from '../../src/repo/key-admin.js';
import { keyEnvSource } from '../../src/repo/repo-cipher.js';
import { Repository } from '../../src/repo/repository.js';
import { pushWalFile } from '../../src/wal/push-file.js';

let dir: string;
const K1 = randomBytes(32).toString('hex');
const K2 = randomBytes(32).toString('hex');
const env = { K1, K2 };

async function open(kekVar?: string): Promise<Repository> {
  const r = new Repository(await createDriver(pathToFileURL(join(dir, 'repo')), {}), 'main', { attempts: 1, budgetMs: 0 });
  if (kekVar) r.useKeySource(keyEnvSource(kekVar, env));
  return r;
}

async function files(d: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(d, { withFileTypes: true, recursive: true })) if (e.isFile()) out.push(join(e.parentPath, e.name));
  return out;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pgark-enc-repo-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('encrypted stanza on the filesystem driver', () => {
  it('init, idempotent push by keyed digest, mismatch, rotate, retire refused while used', async () => {
    const r = await open('K1');
    const init = await keyInit(r);
    expect(init.allowPlain).toBe(false);
    const hist = join(dir, '00000002.history');
    const content = Buffer.from('1\t0/3000000\tno recovery target specified\n');
    await writeFile(hist, content);
    const file = { path: hist, name: '00000002.history', size: content.length };
    expect((await pushWalFile(r, file, { codec: 'lz4' })).status).toBe('stored');
    expect((await pushWalFile(r, file, { codec: 'lz4' })).status).toBe('exists');
    // Another process, same key: the keyed digest matches too.
    expect((await pushWalFile(await open('K1'), file, { codec: 'lz4' })).status).toBe('exists');
    const other = Buffer.from('1\t0/4000000\tno recovery target specified\n');
    await writeFile(hist, other);
    await expect(pushWalFile(r, { ...file, size: other.length }, { codec: 'lz4' })).rejects.toBeInstanceOf(ArchiveMismatchError);
    // Without the key the comparison cannot be made: exit 15, not "exists".
    await writeFile(hist, content);
    await expect(pushWalFile(await open(), file, { codec: 'lz4' })).rejects.toBeInstanceOf(KeyError);

    for (const f of await files(join(dir, 'repo'))) {
      const b = await readFile(f);
      expect(b.includes(Buffer.from('no recovery target')), f).toBe(false);
      expect(b.includes(Buffer.from(K1, 'hex')), f).toBe(false);
      expect(b.includes(Buffer.from(K1)), f).toBe(false);
    }

    const rot = await keyRotate(r, keyEnvSource('K2', env), { newDataKey: true });
    expect(rot).toMatchObject({ oldKekId: init.kekId, current: 2 });
    await expect((await open('K1')).getObject('main/wal/00000002/00000002.history')).rejects.toThrow(/wrong key/);
    const r2 = await open('K2');
    expect((await pushWalFile(r2, file, { codec: 'lz4' })).status).toBe('exists');
    expect((await keyList(r2)).keys.map((k) => k.n)).toEqual([1, 2]);
    expect((await dataKeyUsage(r2)).get(1)).toBeGreaterThan(0);
    await expect(keyRetire(r2, 1)).rejects.toThrow(/still used/);
    await expect(keyRetire(r2, 2)).rejects.toThrow(/current key/);
  });
});
