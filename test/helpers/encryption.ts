/** Shared by the encryption end-to-end tests (test/integration/encryption*.test.ts). */
import { randomBytes } from 'node:crypto';
import { chmod, chown, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { resolveSettings } from '../../src/config/resolve.js';
import { openDriver } from '../../storage-drivers/registry.js';
import { chownToRunAs, lookupUser, pgRunAsUser } from './pg-cluster.js';

/** A file only the run-as user reads. */
export async function privateFile(path: string, content: string): Promise<void> {
  await writeFile(path, content, { mode: 0o600 });
  const u = pgRunAsUser();
  if (u) {
    const { uid, gid } = lookupUser(u);
    await chown(path, uid, gid);
  }
  await chmod(path, 0o600);
}

/** Every stored object of the repository, through the store's own driver. */
export async function storedObjects(repo: string, env: Record<string, string>): Promise<Array<{ path: string; body: Buffer }>> {
  const saved: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(env)) {
    saved[k] = process.env[k];
    process.env[k] = v;
  }
  try {
    const s = resolveSettings({ repo }, process.env);
    const driver = await openDriver(repo, { settings: s.driver });
    try {
      const out: Array<{ path: string; body: Buffer }> = [];
      for await (const o of driver.list('')) {
        const parts: Buffer[] = [];
        for await (const c of await driver.get(o.path)) parts.push(c as Buffer);
        out.push({ path: o.path, body: Buffer.concat(parts) });
      }
      return out;
    } finally {
      await driver.close();
    }
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

/** A WAL segment object's key (not a history file or a backup file). */
export const SEGMENT_KEY = /\/wal\/.*\/[0-9A-F]{24}$/;

/**
 * The stores the whole encryption scenario runs on (encryption.test.ts): the filesystem and one
 * object store. The others get the store-specific part (encryption-stores.test.ts).
 */
export const FULL_SCENARIO_STORES = ['fs', 's3'];

/** Two key-encryption keys in a 0700 directory the run-as user owns: `kek` (current) and `kek.next` (for rotation). */
export interface KeyFiles { kekFile: string; nextFile: string; kek1: string; kek2: string }

export async function makeKeyFiles(work: string): Promise<KeyFiles> {
  const keyDir = join(work, 'keys');
  await mkdir(keyDir, { mode: 0o700 });
  await chownToRunAs(keyDir);
  const kekFile = join(keyDir, 'kek');
  const nextFile = join(keyDir, 'kek.next');
  const kek1 = randomBytes(32).toString('hex');
  const kek2 = randomBytes(32).toString('hex');
  await privateFile(kekFile, `${kek1}\n`);
  await privateFile(nextFile, `${kek2}\n`);
  return { kekFile, nextFile, kek1, kek2 };
}
