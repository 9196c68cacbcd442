/**
 * The stanza keyring's life cycle (pgark key init/list/rotate/retire/decrypt-object; docs/ENCRYPTION.md).
 * Every keyring write is one atomic object replace, verified by reading it back under the KEK.
 */
import { type Readable } from 'node:stream';
import { AlreadyExistsError, KeyError } from '../common/errors.js';
import { acquireRepoLock } from './repo-lock.js';
import { deriveKek, newKeyring, openKeyring, parseKeyring, rewrapKeyring, serializeKeyring, sharedKeyring, withoutKey, type Kek, type KeyringBody } from './keyring.js';
import { decryptToPlain, readAll } from './object-stream.js';
import { keyringKey, type KeySource } from './repo-cipher.js';
import type { Repository } from './repository.js';
import { stanzaMetaKey } from './layout.js';

function requireSource(repo: Repository): KeySource {
  const s = repo.cipher.keySource;
  if (!s) throw new KeyError('no key-encryption key configured: give --cipher-key-file FILE or --cipher-key-env VAR (the key itself never goes on the command line)');
  return s;
}

/** Write the keyring document and read it back: it must open under `kek` with the same body. */
async function storeKeyring(repo: Repository, kek: Kek, body: KeyringBody, ifAbsent: boolean, source: string): Promise<void> {
  const key = keyringKey(repo.stanza);
  await repo.putSmallObject(key, serializeKeyring(kek, body), { ifAbsent });
  const back = parseKeyring((await readAll(await repo.getObject(key), 1024 * 1024)).toString('utf8'), key);
  openKeyring(back, kek, source, repo.stanza);
  repo.cipher.reset();
}

export interface KeyInitResult {
  stanza: string;
  kekId: string;
  allowPlain: boolean;
  /** With shareFrom: that repository's location and the data key numbers now in both keyrings. */
  sharedFrom?: string;
  sharedKeys?: number[];
}

/**
 * Encrypt the stanza from now on: a keyring with one random data key wrapped under the configured
 * KEK. A stanza that already holds data keeps reading its plain objects (allowPlain); a new one
 * refuses any plain object under it.
 *
 * With `shareFrom` (another repository of the stanza, opened with its own KEK), the new keyring
 * holds that repository's data keys instead, wrapped under this repository's KEK: `pgark copy`
 * between the two then copies encrypted objects as stored (docs/ENCRYPTION.md).
 */
export async function keyInit(repo: Repository, o: { shareFrom?: Repository } = {}): Promise<KeyInitResult> {
  const source = requireSource(repo);
  const from = o.shareFrom ? await o.shareFrom.cipher.open() : undefined;
  if (await repo.stat(keyringKey(repo.stanza))) throw new KeyError(`stanza '${repo.stanza}' already has a keyring: see pgark key list, pgark key rotate`);
  let hasData = false;
  for await (const _o of repo.driver.list(`${repo.stanza}/`)) {
    hasData = true;
    break;
  }
  hasData ||= !!(await repo.stat(stanzaMetaKey(repo.stanza)));
  const kek = deriveKek(await source.read(), source.describe);
  const body = from ? sharedKeyring(from, kek, repo.stanza, hasData) : newKeyring(kek, repo.stanza, hasData).body;
  try {
    await storeKeyring(repo, kek, body, true, source.describe);
  } catch (err) {
    if (err instanceof AlreadyExistsError) throw new KeyError(`stanza '${repo.stanza}' already has a keyring (created by another process just now)`);
    throw err;
  }
  return { stanza: repo.stanza, kekId: kek.info.id, allowPlain: hasData, ...(from ? { sharedFrom: o.shareFrom!.location, sharedKeys: body.keys.map((k) => k.n) } : {}) };
}

export interface KeyListing {
  stanza: string;
  encrypted: boolean;
  /** Whether the keyring's MAC was checked (a key was configured). */
  verified: boolean;
  kek?: { id: string; kdf: string };
  current?: number;
  keys: Array<{ n: number; createdAt: string; ageDays: number; current: boolean }>;
  createdAt?: string;
  rotatedAt?: string;
  allowPlain?: boolean;
}

export async function keyList(repo: Repository, now = Date.now()): Promise<KeyListing> {
  const key = keyringKey(repo.stanza);
  if (!(await repo.stat(key))) return { stanza: repo.stanza, encrypted: false, verified: false, keys: [] };
  let body: KeyringBody;
  let verified = false;
  if (repo.cipher.keySource) {
    body = (await repo.cipher.open()).body;
    verified = true;
  } else {
    body = parseKeyring((await readAll(await repo.getObject(key), 1024 * 1024)).toString('utf8'), key).body;
  }
  return {
    stanza: repo.stanza,
    encrypted: true,
    verified,
    kek: { id: body.kek.id, kdf: body.kek.kdf },
    current: body.current,
    keys: body.keys.map((k) => ({ n: k.n, createdAt: k.createdAt, ageDays: Math.floor((now - Date.parse(k.createdAt)) / 86_400_000), current: k.n === body.current })),
    createdAt: body.createdAt,
    ...(body.rotatedAt ? { rotatedAt: body.rotatedAt } : {}),
    allowPlain: body.allowPlain,
  };
}

export interface RotateResult {
  stanza: string;
  oldKekId: string;
  newKekId: string;
  current: number;
}

/**
 * Re-wrap every data key under the KEK from `next` (the configured one opens the keyring), under
 * the stanza's `key` lock. Data objects are not touched. With `newDataKey`, new objects use a new
 * random data key from now on (processes that already opened the keyring keep the old one until
 * they restart).
 */
export async function keyRotate(repo: Repository, next: KeySource, o: { newDataKey?: boolean } = {}): Promise<RotateResult> {
  requireSource(repo);
  const lock = await acquireRepoLock(repo, 'key', { purpose: 'key rotate' });
  try {
    repo.cipher.reset();
    const open = await repo.cipher.open();
    const nextKek = deriveKek(await next.read(), next.describe);
    if (nextKek.info.id === open.kek.info.id && !o.newDataKey) throw new KeyError(`the new key-encryption key (${next.describe}) is the current one (${nextKek.info.id}): nothing to rotate`);
    const { body } = rewrapKeyring(open, nextKek, o.newDataKey ?? false);
    await storeKeyring(repo, nextKek, body, false, next.describe);
    // From here on this process opens the keyring with the new KEK (the lock release reads the lock object).
    repo.useKeySource(next);
    return { stanza: repo.stanza, oldKekId: open.kek.info.id, newKekId: nextKek.info.id, current: body.current };
  } finally {
    await lock.release();
  }
}

/** Data key numbers the stanza's objects use, with a count each (one ranged read per encrypted object). */
export async function dataKeyUsage(repo: Repository): Promise<Map<number, number>> {
  const used = new Map<number, number>();
  const skip = keyringKey(repo.stanza);
  for await (const o of repo.driver.list(`${repo.stanza}/`)) {
    if (o.path === skip) continue;
    const t = await repo.readTrailer(o.path, o.size).catch(() => undefined);
    if (t?.keyNumber !== undefined) used.set(t.keyNumber, (used.get(t.keyNumber) ?? 0) + 1);
  }
  return used;
}

/**
 * Drop data key `n` from the keyring once no object of the stanza uses it (every object's trailer
 * is read to prove it). Not the current key.
 */
export async function keyRetire(repo: Repository, n: number): Promise<{ stanza: string; retired: number }> {
  const source = requireSource(repo);
  const lock = await acquireRepoLock(repo, 'key', { purpose: 'key retire' });
  try {
    repo.cipher.reset();
    const open = await repo.cipher.open();
    const body = withoutKey(open, n);
    const used = (await dataKeyUsage(repo)).get(n) ?? 0;
    if (used > 0) throw new KeyError(`data key ${n} of stanza '${repo.stanza}' is still used by ${used} object(s): expire the backups and WAL that use it first`);
    await storeKeyring(repo, open.kek, body, false, source.describe);
    return { stanza: repo.stanza, retired: n };
  } finally {
    await lock.release();
  }
}

/**
 * Emergency path: the plain object (format version 1: same codec, `lz4 -d` / `zstd -d` /
 * `gzip -d` read it) of the encrypted object `key`, from the repository or from a copy of its bytes.
 */
export async function decryptObject(repo: Repository, key: string, stored?: Readable): Promise<Readable> {
  requireSource(repo);
  const keys = await repo.cipher.forRead(key);
  if (!keys) throw new KeyError(`'${key}' is not under an encrypted stanza '${repo.stanza}' (the marker and the keyring are never encrypted)`);
  return decryptToPlain(stored ?? (await repo.driver.get(key)), key, keys);
}

