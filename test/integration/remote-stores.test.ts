/**
 * End to end on every store: the same scenario against the local filesystem, sshd, s3rver,
 * Azurite and the GCS fake, each started on loopback by its test helper.
 *
 *   archive_command = pgark wal-push (credentials in the server's environment, never in argv)
 *   -> full backup -> writes -> incremental backup -> writes, restore point -> writes after it
 *   -> restore latest to the restore point (restore_command = pgark wal-fetch from the store)
 *   -> the copy promotes with exactly the rows of the restore point
 *   -> verify, wal-verify and check-repo pass.
 *
 * It also counts the requests each wal-push call, each wal-fetch call and `pgark list` make
 * (PGARK_STORAGE_STATS=1 prints them; archive/restore commands print into the server log),
 * asserts upper bounds, and prints them (recorded in bench/results/storage-requests.md).
 */
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { archiveCommand, chownToRunAs, destroyAllClusters, makeSharedTempDir, PgCluster, removeSharedTempDir, connEnv, waitPromoted } from '../helpers/pg-cluster.js';
import { pgark, pgarkOk } from '../helpers/pgark-run.js';
import { REMOTE_STORES, type StartedStore } from '../helpers/remote-stores.js';

const STANZA = 'e2e';

afterAll(async () => {
  await destroyAllClusters();
}, 120_000);

type Counts = Record<'list' | 'head' | 'get' | 'put' | 'delete' | 'other', number>;

function countsIn(text: string): Counts[] {
  const out: Counts[] = [];
  for (const line of text.split('\n')) {
    const i = line.indexOf('{"pgarkStorageRequests":');
    if (i >= 0) out.push((JSON.parse(line.slice(i)) as { pgarkStorageRequests: Counts }).pgarkStorageRequests);
  }
  return out;
}

const total = (c: Counts): number => c.list + c.head + c.get + c.put + c.delete + c.other;
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
function summary(cs: Counts[]): string {
  if (cs.length === 0) return 'none';
  const keys = ['list', 'head', 'get', 'put', 'delete', 'other'] as const;
  return `${cs.length} calls, median per call: ` + keys.map((k) => `${k} ${median(cs.map((c) => c[k]))}`).join(', ') + `, total ${median(cs.map(total))} (max ${Math.max(...cs.map(total))})`;
}

const run = pgarkOk;

const fingerprint = (c: PgCluster): Promise<string> => c.psql("SELECT count(*) || ':' || md5(string_agg(id || '=' || v, ',' ORDER BY id)) FROM t");

describe.each(REMOTE_STORES)('end to end on $name', (store) => {
  it('archives, backs up (full + incremental), restores to a restore point, verifies', { timeout: 600_000 }, async () => {
    const work = await makeSharedTempDir(`pgark-e2e-${store.name}-`);
    let started: StartedStore | undefined;
    try {
      started = await store.start(work);
      const { repo, env } = started;
      const args = ['--repo', repo, '--stanza', STANZA];

      // The store's helper ran pgark repo create. A location beside it (a wrong prefix) holds no
      // marker: refused (exit 9) before anything is written, even by check-repo, which writes probes.
      const typo = `${repo}-typo`;
      for (const cmd of [['info'], ['check-repo']]) {
        const r = await pgark([...cmd, '--repo', typo, '--stanza', STANZA], { env, allowFail: true });
        expect(r.code, `${cmd[0]}: ${r.stderr}`).toBe(9);
        expect(r.stderr).toMatch(/no pgark repository at .*pgark repo create --repo/);
      }
      const createJson = async (where: string) => JSON.parse((await run(['repo', 'create', '--repo', where, '--json'], env)).stdout) as { created: boolean };
      // Nothing was written there: repo create finds no marker (and then makes one); the real one is marked.
      expect(await createJson(typo)).toMatchObject({ created: true });
      expect(await createJson(typo)).toMatchObject({ created: false });
      expect(await createJson(repo)).toMatchObject({ created: false });

      const src = await PgCluster.create({
        name: `e2e-${store.name}`,
        dataChecksums: true,
        conf: { archive_mode: 'on', archive_command: archiveCommand({ repo, stanza: STANZA }), max_wal_size: '1GB', checkpoint_timeout: '30min' },
      });
      // One segment per call, so the counts are per segment.
      src.serverEnv = { ...env, PGARK_STORAGE_STATS: '1', PGARK_PUSH_AHEAD: '0' };
      await src.start();
      await src.psql('CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 20000) g');
      for (let i = 0; i < 3; i++) await src.waitForArchived(await src.switchWal(), 90_000);

      const backupArgs = ['backup', ...args, '--pgdata', src.dataDir, '--jobs', '2', '--no-progress', '--json'];
      const fullRun = await run([...backupArgs, '--type', 'full'], { ...env, ...connEnv(src) });
      if (!fullRun.stdout.trim()) throw new Error(`backup printed nothing; stderr:\n${fullRun.stderr.slice(-4000)}`);
      const full = JSON.parse(fullRun.stdout) as { id: string; type: string };
      expect(full.type).toBe('full');
      await src.psql('UPDATE t SET v = v || \'+\' WHERE id % 10 = 0; INSERT INTO t SELECT g, md5(g::text) FROM generate_series(20001, 30000) g');
      const incr = JSON.parse((await run([...backupArgs, '--type', 'incr'], { ...env, ...connEnv(src) })).stdout) as { id: string; type: string; parent: string };
      expect(incr).toMatchObject({ type: 'incr', parent: full.id });

      await src.psql('DELETE FROM t WHERE id % 7 = 0; INSERT INTO t SELECT g, md5(g::text) FROM generate_series(30001, 35000) g');
      const expected = await fingerprint(src);
      await src.psql("SELECT pg_create_restore_point('e2e')");
      await src.psql('INSERT INTO t SELECT g, \'after the restore point\' FROM generate_series(35001, 36000) g');
      await src.waitForArchived(await src.switchWal(), 90_000);

      const listed = await run(['list', ...args, '--json'], { ...env, PGARK_STORAGE_STATS: '1' });
      expect((JSON.parse(listed.stdout) as { backups: Array<{ id: string }> }).backups.map((b) => b.id)).toEqual([full.id, incr.id]);

      const target = join(work, 'restored');
      await mkdir(target, { mode: 0o700 });
      await chownToRunAs(target);
      await run(['restore', 'latest', ...args, '--pgdata', target, '--target-name', 'e2e', '--target-action', 'promote', '--jobs', '3', '--no-progress'], env); // worker threads open the store too
      const copy = await PgCluster.fromDataDir(target, { name: `e2e-${store.name}-copy` });
      copy.serverEnv = { ...env, PGARK_STORAGE_STATS: '1', PGARK_PREFETCH: '0' };
      await copy.start({ timeoutSec: 180 });
      await waitPromoted(copy);
      expect(await fingerprint(copy)).toBe(expected);
      await copy.stop('fast');

      await run(['verify', ...args, '--full'], env);
      await run(['wal-verify', ...args], env);
      const probe = await run(['check-repo', ...args], env);
      expect(probe.stdout).toMatch(/repository OK/);

      // Request counts per call, from the server logs and list's stderr.
      const pushes = countsIn(await readFile(src.logFile, 'utf8'));
      const fetches = countsIn(await readFile(copy.logFile, 'utf8'));
      const lists = countsIn(listed.stderr);
      expect(pushes.length).toBeGreaterThanOrEqual(4);
      expect(fetches.length).toBeGreaterThanOrEqual(2);
      expect(lists).toHaveLength(1);
      console.log(`[requests] ${store.name} wal-push: ${summary(pushes)}`);
      console.log(`[requests] ${store.name} wal-fetch: ${summary(fetches)}`);
      console.log(`[requests] ${store.name} list (2 backups): ${summary(lists)}`);
      // Bounds: a push is marker read + stanza read + existence check + put + audit record; a
      // fetch is the marker, one get (plus the stanza) and a miss is at most a get and a list;
      // list reads the marker, one catalog page and entries.
      if (store.boundRequests) {
        expect(median(pushes.map(total))).toBeLessThanOrEqual(6);
        expect(Math.max(...fetches.map(total))).toBeLessThanOrEqual(6);
        expect(total(lists[0] as Counts)).toBeLessThanOrEqual(7);
      }
      await src.stop('fast');
    } finally {
      await started?.stop();
      await removeSharedTempDir(work).catch(() => undefined);
    }
  });
});
