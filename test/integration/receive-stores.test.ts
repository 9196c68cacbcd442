/**
 * `pgark receive --synchronous` into every store (fs, sshd, s3rver, Azurite, the GCS fake):
 * commits return only after their WAL is stored; after kill -9 of the server, the received
 * segments and the pieces of the last one are in the store, and wal-fetch serves the last one
 * with exactly the bytes the server had written, zero-filled to the segment size.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { chownToRunAs, destroyAllClusters, makeSharedTempDir, PgCluster, removeSharedTempDir } from '../helpers/pg-cluster.js';
import { startPgark, stopPgark } from '../helpers/pgark-background.js';
import { pgark } from '../helpers/pgark-run.js';
import { REMOTE_STORES, type StartedStore } from '../helpers/remote-stores.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const STANZA = 'recv';
const SEG = 1024 * 1024;

afterAll(async () => {
  await destroyAllClusters();
}, 120_000);

describe.each(REMOTE_STORES)('receive into $name', (store) => {
  it('streams synchronously into the store; wal-fetch serves the partial segment byte for byte', { timeout: 300_000 }, async () => {
    const work = await makeSharedTempDir(`pgark-recv-${store.name}-`);
    await chownToRunAs(work);
    let started: StartedStore | undefined;
    try {
      started = await store.start(work);
      const { repo, env } = started;
      const c = await PgCluster.create({ name: `recv-${store.name}`, walSegmentSizeMB: 1, conf: { wal_level: 'replica' } });
      await c.start();
      const r = startPgark(['receive', '--repo', repo, '--stanza', STANZA, '--dsn', `host=127.0.0.1 port=${c.port} user=postgres`,
        '--slot', 'recv', '--create-slot', '--synchronous', '--application-name', 'recv', '--spool-dir', join(work, 'spool'), '--log-level', 'info'], env);
      try {
        for (let i = 0; ; i++) {
          if ((await c.psql("SELECT count(*) FROM pg_stat_replication WHERE application_name = 'recv' AND state = 'streaming'")) === '1') break;
          if (i > 300) throw new Error(`the receiver did not start streaming:\n${r.output()}`);
          await sleep(200);
        }
        await c.psql("ALTER SYSTEM SET synchronous_standby_names = 'recv'; SELECT pg_reload_conf()");
        await sleep(500);
        await c.psql("CREATE TABLE t AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 30000) g");
        for (let i = 0; i < 20; i++) await c.psql(`INSERT INTO t VALUES (${100000 + i}, 'single')`);
        const last = await c.psql('SELECT pg_walfile_name(pg_current_wal_lsn())');
        await c.kill9();
        expect(await stopPgark(r)).toBe(0);

        // The server's own copy of the last segment: what it had written when it died.
        const local = await readFile(join(c.dataDir, 'pg_wal', last));
        const fetched = join(work, 'fetched');
        const f = await pgark(['wal-fetch', last, fetched, '--repo', repo, '--stanza', STANZA, '--prefetch', '0'], { env, allowFail: true });
        expect(f.code, f.stderr).toBe(0);
        const got = await readFile(fetched);
        expect(got.length).toBe(SEG);
        // Received bytes equal the server's; the rest is zero.
        const received = got.length - [...got].reverse().findIndex((b) => b !== 0);
        expect(received).toBeGreaterThan(0);
        expect(createHash('sha256').update(got.subarray(0, received)).digest('hex')).toBe(createHash('sha256').update(local.subarray(0, received)).digest('hex'));
        expect(got.subarray(received).every((b) => b === 0)).toBe(true);

        const v = await pgark(['wal-verify', '--repo', repo, '--stanza', STANZA, '--read', '--json'], { env });
        const report = JSON.parse(v.stdout) as { gapCount: number; totalSegments: number; received: { segment: string; archived: boolean }[]; damaged: unknown[] };
        expect(report.damaged).toEqual([]);
        expect(report.gapCount).toBe(0);
        expect(report.totalSegments).toBeGreaterThanOrEqual(1);
        expect(report.received.some((x) => x.segment === last && !x.archived)).toBe(true);
      } finally {
        await stopPgark(r, 'SIGKILL');
      }
    } finally {
      await started?.stop();
      await removeSharedTempDir(work).catch(() => undefined);
    }
  });
});
