/** Shared by the encryption end-to-end tests (test/integration/encryption*.test.ts). */
import { chmod, chown, writeFile } from 'node:fs/promises';
import { resolveSettings } from '../../src/config/resolve.js';
import { openDriver } from '../../storage-drivers/registry.js';
import { lookupUser, pgRunAsUser } from './pg-cluster.js';

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
