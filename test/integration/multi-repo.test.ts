/**
 * Two repositories per stanza (issue 18 item 2): `repo` on the filesystem and `repo2` on s3rver,
 * reached through a fault proxy that makes it unreachable mid-run (every connection cut).
 * PostgreSQL archives with `pgark wal-push` (credentials in the server's environment).
 *
 * - repo2 required: while it is unreachable archiving fails, PostgreSQL keeps the segment
 *   (.ready, still in pg_wal) and nothing is reported archived; once it is back, the segment is
 *   in both repositories.
 * - repo2 async: archiving goes on while it is unreachable; the segments it lacks are its backlog,
 *   shown by `pgark info --json`; once it is back, later wal-push calls fill the backlog and
 *   repo2 holds every segment.
 */
import { access, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { archiveCommand, destroyAllClusters, makeSharedTempDir, PgCluster, pgConfQuote } from '../helpers/pg-cluster.js';
import { pgark } from '../helpers/pgark-run.js';
import { startS3Server, type S3TestServer } from '../helpers/s3-server.js';
import { FaultProxy } from '../helpers/fault-proxy.js';
import { createRepo } from '../helpers/repo.js';
import { expectJsonFormat } from '../helpers/json-schema.js';

let s3: S3TestServer;
let proxy: FaultProxy;
let work: string;
let fsRepo: string;
let s3Repo: string;
let env: Record<string, string>;
let s3Flags: string[];
let src: PgCluster;

interface Info { wal: { segments: number; timelines: Array<{ gaps: number; last?: string }> }; backlog: Array<{ repo: string; files: number; oldest: string }> }

const info = async (repo: string, extra: string[] = []): Promise<Info> =>
  expectJsonFormat<Info>((await pgark(['info', '--repo', repo, '--stanza', 'main', ...extra, '--json'], { env })).stdout, 'info');

function archiveCmd(mode: 'required' | 'async'): string {
  return archiveCommand({ repo: fsRepo, stanza: 'main', extraArgs: ['--repo2', s3Repo, '--repo2-mode', mode, ...s3Flags] });
}

async function setArchiveCommand(mode: 'required' | 'async'): Promise<void> {
  await src.psql(`ALTER SYSTEM SET archive_command = ${pgConfQuote(archiveCmd(mode))}`);
  await src.psql('SELECT pg_reload_conf()');
  await new Promise((r) => setTimeout(r, 500));
}

const cut = () => proxy.inject({ kind: 'drop', direction: 'up', afterBytes: 0, connections: 1_000_000_000 });

async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, ms = 90_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

beforeAll(async () => {
  s3 = await startS3Server();
  proxy = await FaultProxy.start({ host: '127.0.0.1', port: s3.port });
  work = await makeSharedTempDir('pgark-multi-repo-');
  fsRepo = join(work, 'fs-repo');
  s3Repo = `s3://${s3.bucket}/second`;
  s3Flags = ['--s3-endpoint', `http://127.0.0.1:${proxy.port}`, '--s3-path-style', 'true', '--s3-region', 'us-east-1'];
  // A failing attempt ends fast: one retry, a short budget and request timeout.
  env = { AWS_ACCESS_KEY_ID: s3.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.secretAccessKey, PGARK_RETRIES: '2', PGARK_RETRY_BUDGET: '5', PGARK_STORAGE_TIMEOUT: '3' };
  await createRepo(fsRepo, { env });
  await createRepo(s3Repo, { env, args: s3Flags });
  src = await PgCluster.create({ name: 'multi-repo', conf: { archive_mode: 'on', archive_command: archiveCmd('required'), archive_timeout: '0', wal_keep_size: '1GB' } });
  src.serverEnv = { ...env, PGARK_PUSH_AHEAD: '0' };
  await src.start();
  await src.psql('CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 5000) g');
}, 180_000);

afterAll(async () => {
  await destroyAllClusters();
  await proxy?.stop();
  await s3?.stop();
});

describe('two repositories: fs and s3rver', () => {
  it('repo2 required: archiving stops while it is unreachable (PostgreSQL keeps the segment) and resumes into both', { timeout: 300_000 }, async () => {
    const seg1 = await src.switchWal();
    await src.waitForArchived(seg1, 90_000);
    expect((await info(fsRepo)).wal.segments).toBeGreaterThanOrEqual(1);
    expect((await info(s3Repo, s3Flags)).wal.timelines[0]!.last).toBe(seg1);

    cut();
    await src.psql('INSERT INTO t SELECT g, md5(g::text) FROM generate_series(5001, 6000) g');
    const seg2 = await src.switchWal();
    const failed = await waitFor('a failed archive attempt', async () => {
      const st = await src.archiverStats();
      return st.failed_count > 0 && st.last_failed_wal === seg2 ? st : undefined;
    });
    expect(failed.last_archived_wal).toBe(seg1);
    // PostgreSQL keeps it: still in pg_wal, still marked ready.
    await access(join(src.dataDir, 'pg_wal', seg2));
    expect(await readdir(join(src.dataDir, 'pg_wal', 'archive_status'))).toContain(`${seg2}.ready`);
    // The server log has the reason, naming repo2.
    expect(await src.readLog(20_000)).toMatch(/repo2: .*s3:\/\/pgark-test\/second/);

    proxy.clear();
    await src.waitForArchived(seg2, 120_000);
    expect((await info(fsRepo)).wal.timelines[0]!.last).toBe(seg2);
    const second = await info(s3Repo, s3Flags);
    expect(second.wal.timelines[0]!.last).toBe(seg2);
    expect(second.wal.timelines[0]!.gaps).toBe(0);
    expect((await info(fsRepo)).backlog).toEqual([]);
  });

  it('repo2 async: archiving goes on while it is unreachable, the backlog shows, and later pushes fill it', { timeout: 300_000 }, async () => {
    await setArchiveCommand('async');
    cut();
    const lacking: string[] = [];
    for (let i = 0; i < 2; i++) {
      await src.psql(`INSERT INTO t SELECT g, 'async ${i}' FROM generate_series(${7000 + i * 1000}, ${7999 + i * 1000}) g`);
      lacking.push(await src.switchWal());
      await src.waitForArchived(lacking[i]!, 120_000);
    }
    const during = await info(fsRepo);
    expect(during.wal.timelines[0]!.last).toBe(lacking[1]);
    expect(during.backlog).toEqual([{ repo: 'repo2', files: 2, oldest: lacking[0] }]);
    // The text output says it too.
    expect((await pgark(['info', '--repo', fsRepo, '--stanza', 'main'], { env })).stdout).toMatch(/repo2 \(async\) backlog: 2 WAL files/);

    proxy.clear();
    const next = await src.switchWal();
    await src.waitForArchived(next, 120_000);
    // Each later wal-push that reaches repo2 fills up to 16 backlog files; more WAL while waiting.
    let last = next;
    await waitFor('the backlog to be filled', async () => {
      if ((await info(fsRepo)).backlog.length === 0) return true;
      last = await src.switchWal();
      await src.waitForArchived(last, 120_000);
      return undefined;
    }, 120_000).catch(async (err: Error) => {
      throw new Error(`${err.message}\n--- server log tail ---\n${await src.readLog(8000)}`);
    });
    const second = await info(s3Repo, s3Flags);
    expect(second.wal.timelines[0]!.last).toBe(last);
    expect(second.wal.timelines[0]!.gaps).toBe(0);
  });
});
