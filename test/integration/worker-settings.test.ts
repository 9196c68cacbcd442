/**
 * Storage settings given only as flags (as `pgark setup` writes them into archive_command and
 * restore writes them into restore_command) reach the workers pgark starts: the wal-push
 * look-ahead worker stores the further ready segments on s3rver, not on the default AWS
 * endpoint (before config/settings-transport.ts it lost --s3-endpoint / --s3-path-style /
 * --s3-region, failed silently, and only the segment PostgreSQL asked for was archived). Then the
 * wal-fetch prefetch worker, started the same way, downloads the next segments from s3rver.
 * Credentials come from the environment only, as they do for PostgreSQL's commands.
 */
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chownToRunAs, destroyAllClusters, killProcessesMentioning, makeSharedTempDir, PgCluster, pgarkProcessesMentioning } from '../helpers/pg-cluster.js';
import { pgark, pgarkJson } from '../helpers/pgark-run.js';
import { startS3Server, type S3TestServer } from '../helpers/s3-server.js';
import { createRepo } from '../helpers/repo.js';
import { walCopy as walCopyOf } from '../helpers/wal-copy.js';

let work: string;
let src: PgCluster;
let segs: string[];
let s3: S3TestServer;

afterAll(async () => {
  await s3?.stop();
  await destroyAllClusters();
});

beforeAll(async () => {
  s3 = await startS3Server();
  work = await makeSharedTempDir('pgark-worker-settings-');
  src = await PgCluster.create({ name: 'wsettings', conf: { wal_keep_size: '1GB' } });
  await src.start();
  segs = [];
  for (let i = 0; i < 5; i++) {
    await src.psql(`CREATE TABLE t${i} AS SELECT g FROM generate_series(1, 20000) g`);
    segs.push(await src.switchWal());
  }
  await src.stop();
}, 180_000);

/** A pg_wal copy with every segment marked `.ready`, plus global/pg_control and PG_VERSION. */
const walCopy = (sub: string): Promise<string> => walCopyOf(src.dataDir, join(work, sub), segs);

async function noWorkerMentioning(text: string): Promise<void> {
  const until = Date.now() + 90_000;
  while (pgarkProcessesMentioning(text).length > 0) {
    if (Date.now() > until) throw new Error(`worker '${text}' did not finish within 90 s`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('workers get the storage settings given as flags', () => {
  it('the look-ahead worker pushes to s3rver, and the prefetch worker fetches from it', async () => {
    const repo = `s3://${s3.bucket}/flags-only`;
    // Only the credentials (and a short retry budget, so a worker talking to the wrong endpoint
    // does not linger) in the environment; every storage setting is a flag.
    const env = { AWS_ACCESS_KEY_ID: s3.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.secretAccessKey, PGARK_RETRIES: '2', PGARK_RETRY_BUDGET: '10' };
    const flags = ['--repo', repo, '--s3-endpoint', s3.endpoint, '--s3-path-style', 'true', '--s3-region', 'us-east-1', '--storage-timeout', '10'];
    const wal = await walCopy('c1');
    await createRepo(repo, { env, args: flags.slice(2) });

    const first = await pgarkJson<{ status: string; queuedAhead: string[] }>(['wal-push', join(wal, segs[0]!), ...flags, '--push-ahead', '4', '--jobs', '2'], { env });
    expect(first.status).toBe('stored');
    expect(first.queuedAhead).toEqual(segs.slice(1));
    await noWorkerMentioning(`wal-push-ahead ${wal}`);
    // The worker recorded each segment it stored ahead, and they are on s3rver.
    expect((await readdir(join(wal, '.pgark', 'pushed'))).filter((n) => !n.endsWith('.lock')).sort()).toEqual(segs.slice(1));
    const puts = (await s3.requests()).filter((r) => r.method === 'PUT').map((r) => decodeURIComponent(r.path));
    for (const n of segs) expect(puts.some((p) => p.startsWith(`/${s3.bucket}/flags-only/`) && p.includes(n))).toBe(true);
    const info = await pgarkJson<{ wal: { segments: number } }>(['info', ...flags], { env });
    expect(info.wal.segments).toBe(5);

    // wal-fetch with the same flags: its prefetch worker downloads the next segments.
    const restoreDir = join(work, 'restored');
    await mkdir(join(restoreDir, 'pg_wal'), { recursive: true });
    await chownToRunAs(restoreDir);
    await s3.clearRequests();
    const dest = join(restoreDir, 'pg_wal', 'RECOVERYXLOG');
    const fetch = (n: string) => pgark(['wal-fetch', n, dest, ...flags, '--prefetch', '3'], { env, cwd: restoreDir });
    expect((await fetch(segs[0]!)).code).toBe(0);
    // The worker keeps --prefetch segments ready while replay takes them: wait for the three.
    const area = join(restoreDir, 'pg_wal', '.pgark', 'prefetch');
    const ready = async () => (await readdir(area).catch(() => [] as string[])).filter((n) => segs.includes(n)).sort();
    const until = Date.now() + 60_000;
    while ((await ready()).length < 3 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    expect(await ready()).toEqual(segs.slice(1, 4));
    const gets = (await s3.requests()).filter((r) => r.method === 'GET').map((r) => decodeURIComponent(r.path));
    for (const n of segs.slice(1, 4)) expect(gets.some((p) => p.includes(n))).toBe(true);
    // The next call is served from the prefetch area, byte-identical to the source segment.
    expect((await fetch(segs[1]!)).code).toBe(0);
    expect((await readFile(dest)).equals(await readFile(join(src.dataDir, 'pg_wal', segs[1]!)))).toBe(true);
    expect(await ready()).not.toContain(segs[1]);
    killProcessesMentioning(`wal-prefetch ${area}`);
  }, 300_000);
});

describe("workers get repo2's own store settings", () => {
  it("wal-push --repo <repo2's location> with the config file: the look-ahead worker stores to repo2's endpoint too", async () => {
    // The shared endpoint leads nowhere; only repo2's own (repo2-s3-*) reaches s3rver.
    const repo2 = `s3://${s3.bucket}/repo2-own`;
    const cfg = join(work, 'own-store.conf');
    await writeFile(cfg, `[global]\nrepo = /nonexistent/first\ns3-endpoint = http://127.0.0.1:9\nrepo2 = ${repo2}\n` +
      `repo2-s3-endpoint = ${s3.endpoint}\nrepo2-s3-path-style = true\nrepo2-s3-region = us-east-1\nrepo2-storage-timeout = 10\n`, { mode: 0o644 });
    const env = { AWS_ACCESS_KEY_ID: s3.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.secretAccessKey, PGARK_RETRIES: '2', PGARK_RETRY_BUDGET: '10' };
    const flags = ['--config', cfg, '--repo', repo2];
    const wal = await walCopy('c2');
    await pgark(['repo', 'create', ...flags], { env });
    await s3.clearRequests();

    const first = await pgarkJson<{ status: string; queuedAhead: string[] }>(['wal-push', join(wal, segs[0]!), ...flags, '--push-ahead', '4', '--jobs', '2'], { env });
    expect(first.status).toBe('stored');
    expect(first.queuedAhead).toEqual(segs.slice(1));
    await noWorkerMentioning(`wal-push-ahead ${wal}`);
    expect((await readdir(join(wal, '.pgark', 'pushed'))).filter((n) => !n.endsWith('.lock')).sort()).toEqual(segs.slice(1));
    const puts = (await s3.requests()).filter((r) => r.method === 'PUT').map((r) => decodeURIComponent(r.path));
    for (const n of segs) expect(puts.some((p) => p.startsWith(`/${s3.bucket}/repo2-own/`) && p.includes(n)), n).toBe(true);
  }, 300_000);
});

