/**
 * Client-side encryption on the stores the whole scenario (encryption.test.ts, on fs and s3rver)
 * does not run on: sshd, Azurite and the GCS fake. Encryption, the keyring and the integrity
 * checks are the repository layer's (src/repo/), above the drivers, which only store and return
 * opaque bytes; so what is checked per store here is what each driver does differently with
 * them, through pgark's own commands:
 *
 *   - the keyring written, read back and replaced on the store: key init, key list, key rotate
 *     with a new data key (the old KEK refused, exit 15), retire of a used key refused;
 *   - a real WAL segment (1 MiB, rows in it) pushed and fetched back byte-identical with the
 *     key; without the key wal-fetch exits 215 (never 1, "not archived");
 *   - a full backup (--store-wal: its WAL too) stored and restored through the driver, every
 *     byte checked, the restored table file holding the rows (verify --full and wal-verify
 *     --read read the same objects through the same driver calls: on fs and s3 only);
 *   - every stored object, listed and read through the store's driver, holds no plaintext
 *     (table name, row value), while key decrypt-object turns the segment back into a plain
 *     object that does (so the scan can fail).
 * One PostgreSQL cluster (no archiving) serves all stores.
 *
 * PGARK_ENCRYPTION_STORES=ssh,gcs limits the stores (default: all three).
 */
import { copyFile, mkdir, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chownToRunAs, connEnv, destroyAllClusters, makeSharedTempDir, PgCluster, removeSharedTempDir } from '../helpers/pg-cluster.js';
import { pgark, pgarkOk } from '../helpers/pgark-run.js';
import { REMOTE_STORES } from '../helpers/remote-stores.js';
import { expectJsonFormat } from '../helpers/json-schema.js';
import { FULL_SCENARIO_STORES, makeKeyFiles, SEGMENT_KEY, storedObjects } from '../helpers/encryption.js';

const STANZA = 'enc';
const TABLE = 'zanzibar_secret_ledger';
const MARK = 'Quixotic-Zanzibar-4711';
const only = process.env.PGARK_ENCRYPTION_STORES?.split(',');
const STORES = REMOTE_STORES.filter((s) => !FULL_SCENARIO_STORES.includes(s.name) && (!only || only.includes(s.name)));

const run = pgarkOk;
let shared: string;
let src: PgCluster;
/** A completed segment holding rows of TABLE, copied out of pg_wal (a checkpoint may recycle it). */
let segment: { name: string; path: string; bytes: Buffer };
/** The table's file, relative to the data directory. */
let tableFile: string;

beforeAll(async () => {
  shared = await makeSharedTempDir('pgark-enc-stores-');
  // 1 MiB segments: what a driver does with a segment does not depend on its size (objects over
  // a driver's part size are the backup's), and each one crosses the store six times here.
  src = await PgCluster.create({ name: 'enc-stores', walSegmentSizeMB: 1, conf: { max_wal_size: '1GB', checkpoint_timeout: '30min' } });
  await src.start();
  await src.psql(`CREATE TABLE ${TABLE} (id int PRIMARY KEY, v text); INSERT INTO ${TABLE} SELECT g, '${MARK}-' || g FROM generate_series(1, 5000) g`);
  const name = await src.switchWal();
  const walDir = join(shared, 'pg_wal');
  await mkdir(walDir, { mode: 0o700 });
  const path = join(walDir, name);
  await copyFile(join(src.dataDir, 'pg_wal', name), path);
  await chownToRunAs(walDir);
  await chownToRunAs(path);
  segment = { name, path, bytes: await readFile(path) };
  expect(segment.bytes.includes(Buffer.from(MARK))).toBe(true);
  await src.psql('CHECKPOINT');
  tableFile = await src.psql(`SELECT pg_relation_filepath('${TABLE}')`);
}, 180_000);

afterAll(async () => {
  await destroyAllClusters();
  if (shared) await removeSharedTempDir(shared).catch(() => undefined);
}, 120_000);

describe.each(STORES)('encryption on $name', (store) => {
  it('keyring on the store; a segment and a backup stored as ciphertext, fetched and restored; rotation', { timeout: 600_000 }, async () => {
    const work = await makeSharedTempDir(`pgark-enc-${store.name}-`);
    const started = await store.start(work);
    try {
      const { repo } = started;
      const { kekFile, nextFile, kek1, kek2 } = await makeKeyFiles(work);
      // Codec none: without encryption, every row value would be in the stored bytes verbatim.
      const env = { ...started.env, PGARK_CODEC: 'none' };
      const args = ['--repo', repo, '--stanza', STANZA];
      const keyArgs = ['--cipher-key-file', kekFile];

      const init = expectJsonFormat<{ kekId: string; allowPlain: boolean }>((await run(['key', 'init', ...args, ...keyArgs, '--json'], env)).stdout, 'key-init');
      expect(init.allowPlain).toBe(false);
      const listed = expectJsonFormat<{ encrypted: boolean; kek: { id: string }; keys: Array<{ n: number }> }>((await run(['key', 'list', ...args, '--json'], env)).stdout, 'key-list');
      expect(listed).toMatchObject({ encrypted: true, kek: { id: init.kekId }, keys: [{ n: 1 }] });

      // A real segment, pushed and fetched back; without the key: 215.
      await run(['wal-push', segment.path, ...args, ...keyArgs], env);
      const fetchDir = join(work, 'fetched');
      await mkdir(fetchDir, { mode: 0o700 });
      await chownToRunAs(fetchDir);
      await run(['wal-fetch', segment.name, join(fetchDir, 'a'), ...args, ...keyArgs, '--prefetch', '0'], env);
      expect((await readFile(join(fetchDir, 'a'))).equals(segment.bytes)).toBe(true);
      const fetchNoKey = await pgark(['wal-fetch', segment.name, join(fetchDir, 'b'), ...args, '--prefetch', '0'], { env, allowFail: true });
      expect(fetchNoKey.code, fetchNoKey.stderr).toBe(215);
      const noKey = await pgark(['list', ...args], { env, allowFail: true });
      expect(noKey.code, noKey.stderr).toBe(15);
      expect(noKey.stderr).toContain(init.kekId);

      // A full backup through the driver, restored through it (every byte checked on the way).
      const full = JSON.parse(
        (await run(['backup', ...args, ...keyArgs, '--pgdata', src.dataDir, '--store-wal', '--jobs', '2', '--no-progress', '--json', '--type', 'full'], { ...env, ...connEnv(src) })).stdout,
      ) as { id: string };
      const target = join(work, 'restored');
      await mkdir(target, { mode: 0o700 });
      await chownToRunAs(target);
      await run(['restore', full.id, ...args, ...keyArgs, '--pgdata', target, '--jobs', '3', '--no-progress'], env); // worker threads read with the keys too
      expect((await readFile(join(target, tableFile))).includes(Buffer.from(MARK))).toBe(true);
      const conf = await readFile(join(target, 'postgresql.auto.conf'), 'utf8').catch(() => '');
      expect(conf).not.toContain(kek1);

      // Nothing stored holds the table name or a row value...
      const objects = await storedObjects(repo, started.env);
      expect(objects.length).toBeGreaterThan(3);
      for (const o of objects) {
        expect(o.body.includes(Buffer.from(TABLE)), o.path).toBe(false);
        expect(o.body.includes(Buffer.from(MARK)), o.path).toBe(false);
      }
      // ...while the emergency path turns the pushed segment back into a plain object that does.
      const stored = objects.find((o) => SEGMENT_KEY.test(o.path) && o.path.endsWith(`/${segment.name}`));
      expect(stored, objects.map((o) => o.path).join(' ')).toBeDefined();
      const plainOut = join(work, 'plain-segment');
      await run(['key', 'decrypt-object', stored!.path, plainOut, ...args, ...keyArgs], env);
      const plain = await readFile(plainOut);
      expect(plain.subarray(0, 4).toString('latin1')).toBe('PGAK');
      expect(plain.length).toBe(16 + 1024 * 1024 + 64);
      expect(plain.includes(Buffer.from(MARK))).toBe(true);

      // Rotation rewrites the keyring on the store; the old KEK no longer opens it.
      const rotated = expectJsonFormat<{ newKekId: string; current: number }>((await run(['key', 'rotate', ...args, ...keyArgs, '--new-key-file', nextFile, '--new-data-key', '--json'], env)).stdout, 'key-rotate');
      expect(rotated.current).toBe(2);
      const old = await pgark(['list', ...args, ...keyArgs], { env, allowFail: true });
      expect(old.code, old.stderr).toBe(15);
      expect(old.stderr).toContain(rotated.newKekId);
      const fetchWrong = await pgark(['wal-fetch', segment.name, join(fetchDir, 'c'), ...args, ...keyArgs, '--prefetch', '0'], { env, allowFail: true });
      expect(fetchWrong.code, fetchWrong.stderr).toBe(215);
      await rename(nextFile, kekFile);
      const list2 = JSON.parse((await run(['key', 'list', ...args, ...keyArgs, '--json'], env)).stdout) as { verified: boolean; kek: { id: string }; keys: Array<{ n: number; current: boolean }> };
      expect(list2).toMatchObject({ verified: true, kek: { id: rotated.newKekId } });
      expect(list2.keys.map((k) => [k.n, k.current])).toEqual([[1, false], [2, true]]);
      const retire = await pgark(['key', 'retire', '1', ...args, ...keyArgs], { env, allowFail: true });
      expect(retire.code, retire.stderr).toBe(15);
      expect(retire.stderr).toMatch(/still used by \d+ object/);
      // The segment (data key 1) still reads back under the new KEK.
      await run(['wal-fetch', segment.name, join(fetchDir, 'd'), ...args, ...keyArgs, '--prefetch', '0'], env);
      expect((await readFile(join(fetchDir, 'd'))).equals(segment.bytes)).toBe(true);
    } finally {
      await started.stop();
      await removeSharedTempDir(work).catch(() => undefined);
    }
  });
});
