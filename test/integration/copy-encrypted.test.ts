/**
 * `pgark copy` between encrypted repositories (issue 18 item 2: "no re-compression or
 * re-encryption when both use the same key; re-encrypts when keys differ"), fs -> fs:
 *
 * - repo (its own KEK) and repo2 whose keyring was made by `pgark key init --in repo2
 *   --share-from repo`: the same data key wrapped under repo2's own KEK. `copy --all --to repo2`
 *   copies every object as stored: the bytes in repo2 are the source's bytes; repo2 holds no
 *   plaintext; a restore from repo2 alone (its own KEK) reaches a restore point with exact rows.
 * - repo3 with a keyring of its own (`key init --in repo3`): every object is re-encrypted, its
 *   bytes differ from the source's, and a restore from repo3 alone works as well.
 * - A source object with a flipped byte: copy fails naming the object and the target does not
 *   get it (as stored into repo2 and re-encrypted into repo3).
 * - After `key rotate --new-data-key` on repo, objects under the new data key (which repo2's
 *   keyring lacks) are re-encrypted under repo2's current key.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chownToRunAs, connEnv, destroyAllClusters, makeSharedTempDir, PgCluster, archiveCommand, removeSharedTempDir, waitPromoted } from '../helpers/pg-cluster.js';
import { pgark, pgarkOk } from '../helpers/pgark-run.js';
import { createRepo } from '../helpers/repo.js';
import { expectJsonFormat } from '../helpers/json-schema.js';
import { privateFile } from '../helpers/encryption.js';

const STANZA = 'cp';
const TABLE = 'marrakesh_ledger_copy';
const MARK = 'Obsidian-Marrakesh-9031';

let work: string;
let repo1: string;
let repo2: string;
let repo3: string;
let keys: string;
let src: PgCluster;
let before: string;
/** Codec none: without encryption, every row value would be in the stored bytes verbatim. */
const env: Record<string, string> = { PGARK_CODEC: 'none' };
let all: string[];

interface CopyOut { toName: string; objects: { copied: number; existing: number; asStored: number; reEncoded: number }; walFiles: number; backups: string[] }

const fingerprint = (c: PgCluster): Promise<string> => c.psql(`SELECT count(*) || ':' || md5(string_agg(id || '=' || v, ',' ORDER BY id)) FROM ${TABLE}`);

/** Every stored file of an fs repository under the stanza, by its key. */
async function stored(repo: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  const walk = async (dir: string): Promise<void> => {
    for (const e of await readdir(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile()) out.set(relative(repo, p), await readFile(p));
    }
  };
  await walk(join(repo, STANZA));
  return out;
}

/** Keys copied by `pgark copy` (everything under the stanza but its keyring, stanza.json and locks). */
const copiedKeys = (m: Map<string, Buffer>) => [...m.keys()].filter((k) => /^[^/]+\/(wal|backup|catalog)\//.test(k)).sort();

function noPlaintext(m: Map<string, Buffer>): void {
  expect(m.size).toBeGreaterThan(5);
  for (const [k, body] of m) {
    expect(body.includes(Buffer.from(TABLE)), k).toBe(false);
    expect(body.includes(Buffer.from(MARK)), k).toBe(false);
  }
}

async function restoreFrom(label: string, repo: string, kek: string): Promise<string> {
  const target = join(work, `restored-${label}`);
  await mkdir(target, { mode: 0o700 });
  await chownToRunAs(target);
  // The target alone: its location and its KEK, no other repository named.
  await pgarkOk(['restore', 'latest', '--repo', repo, '--stanza', STANZA, '--cipher-key-file', kek, '--pgdata', target, '--target-name', 'before', '--target-action', 'promote', '--jobs', '2', '--no-progress'], env);
  const copy = await PgCluster.fromDataDir(target, { name: `copy-enc-${label}`, conf: { archive_mode: 'off' } });
  copy.serverEnv = { ...env, PGARK_PREFETCH: '0' };
  await copy.start({ timeoutSec: 180 });
  await waitPromoted(copy);
  const got = await fingerprint(copy);
  await copy.stop('fast');
  return got;
}

beforeAll(async () => {
  work = await makeSharedTempDir('pgark-copy-enc-');
  repo1 = join(work, 'repo1');
  repo2 = join(work, 'repo2');
  repo3 = join(work, 'repo3');
  keys = join(work, 'keys');
  await mkdir(keys, { mode: 0o700 });
  await chownToRunAs(keys);
  for (const n of ['k1', 'k2', 'k3']) await privateFile(join(keys, n), `${randomBytes(32).toString('hex')}\n`);
  for (const r of [repo1, repo2, repo3]) await createRepo(r, { env });
  all = ['--repo', repo1, '--repo2', repo2, '--repo3', repo3, '--stanza', STANZA,
    '--cipher-key-file', join(keys, 'k1'), '--repo2-cipher-key-file', join(keys, 'k2'), '--repo3-cipher-key-file', join(keys, 'k3')];

  await pgarkOk(['key', 'init', '--repo', repo1, '--stanza', STANZA, '--cipher-key-file', join(keys, 'k1')], env);
  src = await PgCluster.create({
    name: 'copy-enc',
    conf: { archive_mode: 'on', archive_command: archiveCommand({ repo: repo1, stanza: STANZA, extraArgs: ['--cipher-key-file', join(keys, 'k1')] }), max_wal_size: '1GB', checkpoint_timeout: '30min' },
  });
  src.serverEnv = { ...env, PGARK_PUSH_AHEAD: '0' };
  await src.start();
  await src.psql(`CREATE TABLE ${TABLE} (id int PRIMARY KEY, v text); INSERT INTO ${TABLE} SELECT g, '${MARK}-' || g FROM generate_series(1, 5000) g`);
  await src.waitForArchived(await src.switchWal(), 90_000);
  await pgarkOk(['backup', '--repo', repo1, '--stanza', STANZA, '--cipher-key-file', join(keys, 'k1'), '--pgdata', src.dataDir, '--type', 'full', '--jobs', '2', '--no-progress'], { ...env, ...connEnv(src) });
  await src.psql(`UPDATE ${TABLE} SET v = v || '+' WHERE id % 10 = 0; INSERT INTO ${TABLE} SELECT g, '${MARK}-' || g FROM generate_series(5001, 6000) g`);
  before = await fingerprint(src);
  await src.psql("SELECT pg_create_restore_point('before')");
  await src.psql(`DELETE FROM ${TABLE} WHERE id % 7 = 0`);
  await src.waitForArchived(await src.switchWal(), 90_000);
}, 300_000);

afterAll(async () => {
  await destroyAllClusters();
  if (work) await removeSharedTempDir(work).catch(() => undefined);
}, 120_000);

describe('copy between encrypted repositories', () => {
  it('same data key (key init --share-from): copied as stored, byte for byte; no plaintext; repo2 restores on its own', { timeout: 600_000 }, async () => {
    const shared = expectJsonFormat<{ kekId: string; sharedFrom: string; sharedKeys: number[] }>(
      (await pgarkOk(['key', 'init', '--in', 'repo2', '--share-from', 'repo', ...all, '--json'], env)).stdout, 'key-init');
    expect(shared.sharedFrom).toBe(repo1);
    expect(shared.sharedKeys).toEqual([1]);
    // repo2's keyring is its own: wrapped under its KEK (k2), no data key in the clear.
    const ring = await readFile(join(repo2, STANZA, 'keyring.json'), 'utf8');
    const ring1 = await readFile(join(repo1, STANZA, 'keyring.json'), 'utf8');
    expect(ring).toContain(shared.kekId);
    expect(ring1).not.toContain(shared.kekId);
    for (const k of ['k1', 'k2']) expect(ring).not.toContain((await readFile(join(keys, k), 'utf8')).trim());

    const out = expectJsonFormat<CopyOut>((await pgarkOk(['copy', '--all', '--to', 'repo2', ...all, '--json'], env)).stdout, 'copy');
    expect(out.objects.copied).toBeGreaterThan(5);
    expect(out.objects.asStored).toBe(out.objects.copied);
    expect(out.objects.reEncoded).toBe(0);
    const source = await stored(repo1);
    const target = await stored(repo2);
    const copied = copiedKeys(target);
    expect(copied).toEqual(copiedKeys(source));
    for (const k of copied) expect(target.get(k)!.equals(source.get(k)!), k).toBe(true);
    noPlaintext(target);
    // The text output says how.
    const again = (await pgarkOk(['copy', '--all', '--to', 'repo2', ...all], env)).stdout;
    expect(again).toMatch(/: 0 objects \(0 as stored, 0 re-encoded\), \d+ already there/);

    expect(await restoreFrom('repo2', repo2, join(keys, 'k2'))).toBe(before);
  });

  it('different data keys: re-encrypted with the target\'s key; the bytes differ; repo3 restores on its own', { timeout: 600_000 }, async () => {
    await pgarkOk(['key', 'init', '--in', 'repo3', ...all], env);
    const out = expectJsonFormat<CopyOut>((await pgarkOk(['copy', '--all', '--to', 'repo3', ...all, '--json'], env)).stdout, 'copy');
    expect(out.objects.copied).toBeGreaterThan(5);
    expect(out.objects.reEncoded).toBe(out.objects.copied);
    expect(out.objects.asStored).toBe(0);
    const source = await stored(repo1);
    const target = await stored(repo3);
    const copied = copiedKeys(target);
    expect(copied).toEqual(copiedKeys(source));
    for (const k of copied) expect(target.get(k)!.equals(source.get(k)!), k).toBe(false);
    noPlaintext(target);
    expect(await restoreFrom('repo3', repo3, join(keys, 'k3'))).toBe(before);
  });

  it('a damaged source object: copy fails naming it, and the target does not get it', { timeout: 300_000 }, async () => {
    await src.psql(`INSERT INTO ${TABLE} SELECT g, '${MARK}-' || g FROM generate_series(7001, 8000) g`);
    const seg = await src.switchWal();
    await src.waitForArchived(seg, 90_000);
    const key = [...(await stored(repo1)).keys()].find((k) => k.endsWith(`/${seg}`))!;
    expect(key).toBeDefined();
    const original = await readFile(join(repo1, key));
    const flipped = Buffer.from(original);
    flipped[flipped.length >> 1] = flipped[flipped.length >> 1]! ^ 0x10;
    await writeFile(join(repo1, key), flipped);
    for (const to of ['repo2', 'repo3']) {
      const r = await pgark(['copy', '--wal', '--to', to, ...all, '--jobs', '1'], { env, allowFail: true });
      expect(r.code, `${r.stdout}\n${r.stderr}`).not.toBe(0);
      expect(r.stderr).toContain(key);
      const targetRepo = to === 'repo2' ? repo2 : repo3;
      expect((await stored(targetRepo)).has(key), `${to} got the damaged ${key}`).toBe(false);
    }
    // Repaired, it copies.
    await writeFile(join(repo1, key), original);
    const out = expectJsonFormat<CopyOut>((await pgarkOk(['copy', '--wal', '--to', 'repo2', ...all, '--json'], env)).stdout, 'copy');
    expect(out.objects).toMatchObject({ copied: 1, asStored: 1, reEncoded: 0 });
    expect((await stored(repo2)).get(key)!.equals(original)).toBe(true);
  });

  it('a data key repo2 lacks (after key rotate --new-data-key on repo): re-encrypted under repo2\'s current key', { timeout: 300_000 }, async () => {
    await privateFile(join(keys, 'k1.next'), `${randomBytes(32).toString('hex')}\n`);
    await pgarkOk(['key', 'rotate', '--repo', repo1, '--stanza', STANZA, '--cipher-key-file', join(keys, 'k1'), '--new-key-file', join(keys, 'k1.next'), '--new-data-key'], env);
    await writeFile(join(keys, 'k1'), await readFile(join(keys, 'k1.next')));
    await src.psql(`INSERT INTO ${TABLE} SELECT g, '${MARK}-' || g FROM generate_series(8001, 9000) g`);
    const seg = await src.switchWal();
    await src.waitForArchived(seg, 90_000);
    const out = expectJsonFormat<CopyOut>((await pgarkOk(['copy', '--wal', '--to', 'repo2', ...all, '--json'], env)).stdout, 'copy');
    expect(out.objects).toMatchObject({ asStored: 0 });
    expect(out.objects.reEncoded).toBeGreaterThanOrEqual(1);
    const key = [...(await stored(repo2)).keys()].find((k) => k.endsWith(`/${seg}`))!;
    const inTarget = (await stored(repo2)).get(key)!;
    expect(inTarget.equals((await stored(repo1)).get(key)!)).toBe(false);
    // It reads back from repo2 with repo2's key alone.
    const fetched = join(work, 'fetched-seg');
    await pgarkOk(['wal-fetch', seg, fetched, '--repo', repo2, '--stanza', STANZA, '--cipher-key-file', join(keys, 'k2'), '--prefetch', '0'], env);
    expect((await readFile(fetched)).length).toBe(16 * 1024 * 1024);
  });
});
