/**
 * Client-side encryption end to end (issue 18), on fs and s3rver (FULL_SCENARIO_STORES):
 *
 *   repo create -> key init (KEK in a key file) -> archive_command with --cipher-key-file
 *   -> full backup -> rows, restore point 'before' -> more rows
 *   -> restore to 'before': exactly its rows -> verify, wal-verify
 *   -> key rotate to a new KEK with a new data key; the old KEK is refused (exit 15, naming the
 *      key id needed); the key file is replaced at the same path, archiving goes on
 *   -> second full backup (new data key), restore point 'after'
 *   -> restore the old backup to 'before' and the new one to 'after': exact rows both times
 *   -> the stored bytes hold no plaintext (table name, row value), while the emergency path
 *      (key decrypt-object) gives back plain segments that do hold them (so the scan can fail)
 *   -> without the key, or with a wrong one, wal-fetch exits 215 (never 1, "not archived").
 * On fs also: a flipped byte, a truncated object and a swapped object are each detected (211).
 *
 * Why two stores keep the coverage of five: encryption, the keyring and every check above live
 * in the repository layer (src/repo/repo-cipher.ts, keyring.ts, object-*.ts), which hands the
 * drivers opaque bytes; PostgreSQL, archive_command, restore targets and recovery do not depend
 * on the store. What a driver does differently (its put paths for small and 16 MiB objects,
 * whole and ranged reads, the keyring's conditional writes, its listing) is exercised on ssh,
 * Azurite and the GCS fake by encryption-stores.test.ts: key init/rotate/retire on the store,
 * wal-push/wal-fetch of a real segment, a backup and its restore through the driver, verify,
 * and the scan of every stored object for plaintext. fs and s3 here run the whole scenario.
 *
 * PGARK_ENCRYPTION_STORES=fs,s3 limits the stores (default: both).
 */
import { mkdir, readdir, readFile, rename, stat, truncate, writeFile, copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { archiveCommand, chownToRunAs, connEnv, destroyAllClusters, makeSharedTempDir, PgCluster, removeSharedTempDir, waitPromoted } from '../helpers/pg-cluster.js';
import { FULL_SCENARIO_STORES, makeKeyFiles, SEGMENT_KEY, storedObjects } from '../helpers/encryption.js';
import { pgark, pgarkOk } from '../helpers/pgark-run.js';
import { REMOTE_STORES } from '../helpers/remote-stores.js';
import { expectJsonFormat } from '../helpers/json-schema.js';

const STANZA = 'enc';
const TABLE = 'zanzibar_secret_ledger';
const MARK = 'Quixotic-Zanzibar-4711';
const only = process.env.PGARK_ENCRYPTION_STORES?.split(',');
const STORES = REMOTE_STORES.filter((s) => FULL_SCENARIO_STORES.includes(s.name) && (!only || only.includes(s.name)));

afterAll(async () => {
  await destroyAllClusters();
}, 120_000);

const run = pgarkOk;

const fingerprint = (c: PgCluster): Promise<string> => c.psql(`SELECT count(*) || ':' || md5(string_agg(id || '=' || v, ',' ORDER BY id)) FROM ${TABLE}`);

describe.each(STORES)('encryption on $name', (store) => {
  it('push, backup, restore to a restore point, verify, rotate, restore old and new backups; no plaintext stored', { timeout: 900_000 }, async () => {
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

      const src = await PgCluster.create({
        name: `enc-${store.name}`,
        conf: { archive_mode: 'on', archive_command: archiveCommand({ repo, stanza: STANZA, extraArgs: keyArgs }), max_wal_size: '1GB', checkpoint_timeout: '30min' },
      });
      src.serverEnv = { ...env };
      await src.start();
      await src.psql(`CREATE TABLE ${TABLE} (id int PRIMARY KEY, v text); INSERT INTO ${TABLE} SELECT g, '${MARK}-' || g FROM generate_series(1, 5000) g`);
      await src.waitForArchived(await src.switchWal(), 90_000);

      const backupArgs = ['backup', ...args, ...keyArgs, '--pgdata', src.dataDir, '--jobs', '2', '--no-progress', '--json', '--type', 'full'];
      const full1 = JSON.parse((await run(backupArgs, { ...env, ...connEnv(src) })).stdout) as { id: string };
      await src.psql(`UPDATE ${TABLE} SET v = v || '+' WHERE id % 10 = 0; INSERT INTO ${TABLE} SELECT g, '${MARK}-' || g FROM generate_series(5001, 6000) g`);
      const before = await fingerprint(src);
      await src.psql("SELECT pg_create_restore_point('before')");
      await src.psql(`DELETE FROM ${TABLE} WHERE id % 7 = 0`);
      const archivedSeg = await src.switchWal();
      await src.waitForArchived(archivedSeg, 90_000);

      const restoreTo = async (label: string, backup: string, point: string, expected: string) => {
        const target = join(work, `restored-${label}`);
        await mkdir(target, { mode: 0o700 });
        await chownToRunAs(target);
        await run(['restore', backup, ...args, ...keyArgs, '--pgdata', target, '--target-name', point, '--target-action', 'promote', '--jobs', '2', '--no-progress'], env);
        const conf = await readFile(join(target, 'postgresql.auto.conf'), 'utf8').catch(() => '');
        // The restore_command names the key file, never the key.
        expect(conf).not.toContain(kek1);
        expect(conf).not.toContain(kek2);
        const copy = await PgCluster.fromDataDir(target, { name: `enc-${store.name}-${label}` });
        copy.serverEnv = { ...env };
        await copy.start({ timeoutSec: 180 });
        await waitPromoted(copy);
        expect(await fingerprint(copy)).toBe(expected);
        await copy.stop('fast');
      };
      await restoreTo('one', full1.id, 'before', before);
      await run(['verify', ...args, ...keyArgs, '--full'], env);
      await run(['wal-verify', ...args, ...keyArgs, '--read'], env);

      // Without the key, or with a wrong one: exit 15 naming the key id; wal-fetch never says "not archived".
      const noKey = await pgark(['list', ...args], { env, allowFail: true });
      expect(noKey.code, noKey.stderr).toBe(15);
      expect(noKey.stderr).toContain(init.kekId);
      const fetchNoKey = await pgark(['wal-fetch', archivedSeg, join(work, 'fetched'), ...args, '--prefetch', '0'], { env, allowFail: true });
      expect(fetchNoKey.code, fetchNoKey.stderr).toBe(215);

      // Rotate to the new KEK with a new data key. The old KEK no longer opens the keyring.
      const rotated = expectJsonFormat<{ newKekId: string; current: number }>((await run(['key', 'rotate', ...args, ...keyArgs, '--new-key-file', nextFile, '--new-data-key', '--json'], env)).stdout, 'key-rotate');
      expect(rotated.current).toBe(2);
      const old = await pgark(['list', ...args, ...keyArgs], { env, allowFail: true });
      expect(old.code, old.stderr).toBe(15);
      expect(old.stderr).toContain(rotated.newKekId);
      expect(old.stderr).not.toContain(kek1);
      const fetchWrong = await pgark(['wal-fetch', archivedSeg, join(work, 'fetched'), ...args, ...keyArgs, '--prefetch', '0'], { env, allowFail: true });
      expect(fetchWrong.code, fetchWrong.stderr).toBe(215);
      // The documented step: the new key replaces the old one at the configured path.
      await rename(nextFile, kekFile);
      const list2 = JSON.parse((await run(['key', 'list', ...args, ...keyArgs, '--json'], env)).stdout) as { verified: boolean; kek: { id: string }; keys: Array<{ n: number; current: boolean }> };
      expect(list2).toMatchObject({ verified: true, kek: { id: rotated.newKekId } });
      expect(list2.keys.map((k) => [k.n, k.current])).toEqual([[1, false], [2, true]]);
      // Data key 1 is still used: it cannot be retired.
      const retire = await pgark(['key', 'retire', '1', ...args, ...keyArgs], { env, allowFail: true });
      expect(retire.code, retire.stderr).toBe(15);
      expect(retire.stderr).toMatch(/still used by \d+ object/);

      // Archiving goes on (new processes read the new key file); a second full backup with data key 2.
      await src.psql(`INSERT INTO ${TABLE} SELECT g, '${MARK}-' || g FROM generate_series(6001, 7000) g`);
      await src.waitForArchived(await src.switchWal(), 120_000);
      const full2 = JSON.parse((await run(backupArgs, { ...env, ...connEnv(src) })).stdout) as { id: string };
      await src.psql(`UPDATE ${TABLE} SET v = 'after ' || v WHERE id % 3 = 0`);
      const after = await fingerprint(src);
      await src.psql("SELECT pg_create_restore_point('after')");
      await src.psql(`INSERT INTO ${TABLE} VALUES (999999, 'not restored')`);
      await src.waitForArchived(await src.switchWal(), 120_000);
      await src.stop('fast');

      await restoreTo('old', full1.id, 'before', before);
      await restoreTo('new', full2.id, 'after', after);
      await run(['verify', ...args, ...keyArgs, '--full'], env);

      // The plaintext scan: nothing stored holds the table name or a row value...
      const objects = await storedObjects(repo, started.env);
      expect(objects.length).toBeGreaterThan(10);
      for (const o of objects) {
        expect(o.body.includes(Buffer.from(TABLE)), o.path).toBe(false);
        expect(o.body.includes(Buffer.from(MARK)), o.path).toBe(false);
      }
      // ...while the emergency path turns the segments back into plain objects that do.
      const segments = objects.filter((o) => SEGMENT_KEY.test(o.path));
      expect(segments.length).toBeGreaterThan(2);
      let found = 0;
      for (const s of segments) {
        const out = join(work, 'plain-segment');
        await run(['key', 'decrypt-object', s.path, out, ...args, ...keyArgs], env);
        const plain = await readFile(out);
        expect(plain.subarray(0, 4).toString('latin1')).toBe('PGAK');
        expect(plain[4]).toBe(1);
        expect(plain.length).toBe(16 + 16 * 1024 * 1024 + 64);
        if (plain.includes(Buffer.from(MARK))) found++;
      }
      expect(found).toBeGreaterThan(0);

      // The audit trail is encrypted and reads back with the key; no log holds the keys.
      const { events } = expectJsonFormat<{ events: Array<{ op: string }> }>((await run(['wal-log', ...args, ...keyArgs, '--since', '1d', '--json'], env)).stdout, 'wal-log');
      expect(events.some((e) => e.op === 'push')).toBe(true);
      const serverLog = await readFile(src.logFile, 'utf8');
      expect(serverLog).not.toContain(kek1);
      expect(serverLog).not.toContain(kek2);

      if (store.name === 'fs') {
        // Damage on the store: each is detected (211 = above 125, recovery stops), never "not archived".
        const keyOf = (p: string) => join(repo, p);
        const [a, b] = segments.slice(0, 2).map((s) => s.path) as [string, string];
        const nameOf = (p: string) => p.slice(p.lastIndexOf('/') + 1);
        const fetch = async (p: string) => (await pgark(['wal-fetch', nameOf(p), join(work, 'f'), ...args, ...keyArgs, '--prefetch', '0'], { env, allowFail: true })).code;
        expect(await fetch(a)).toBe(0);
        const original = await readFile(keyOf(a));
        const flipped = Buffer.from(original);
        flipped[flipped.length >> 1] = flipped[flipped.length >> 1]! ^ 0x04;
        await writeFile(keyOf(a), flipped);
        expect(await fetch(a)).toBe(211);
        await truncate(keyOf(a), original.length - 1000);
        expect(await fetch(a)).toBe(211);
        await copyFile(keyOf(b), keyOf(a));
        expect(await fetch(a)).toBe(211);
        await writeFile(keyOf(a), original);
        expect(await fetch(a)).toBe(0);
        expect((await stat(keyOf(a))).size).toBe(original.length);
        expect((await readdir(join(repo, STANZA))).sort()).toContain('keyring.json');
      }
    } finally {
      await started.stop();
      await removeSharedTempDir(work).catch(() => undefined);
    }
  });
});
