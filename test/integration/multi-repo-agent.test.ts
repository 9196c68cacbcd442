/**
 * `pgark agent` and `pgark receive` with two repositories (issue 18 item 2): `repo` on the
 * filesystem, `repo2` on s3rver reached through a fault proxy that makes it unreachable mid-run.
 *
 * Agent (archive_command = pgark wal-push with the same repositories, which takes the agent's
 * push records of the set):
 * - repo2 required: every archived segment is in both repositories, byte-identical after decode;
 *   while repo2 is unreachable archiving stalls (failed_count grows, the segment stays .ready)
 *   and resumes into both once it is back;
 * - repo2 async: archiving goes on while it is unreachable, the backlog shows in `pgark info`,
 *   and the agent fills it once repo2 is back (with no further WAL switch).
 * Receiver (--synchronous, the only synchronous standby):
 * - repo2 required: the WAL is in both; while repo2 is unreachable a commit waits (the flush
 *   position does not cover it), and returns once repo2 is back;
 * - repo2 async: commits go on while it is unreachable, a completed segment is in repo2's
 *   backlog, and the receiver fills it once repo2 is back.
 */
import { createHash } from 'node:crypto';
import { chmod, mkdir, readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { archiveCommand, destroyAllClusters, makeSharedTempDir, PgCluster, pgConfQuote } from '../helpers/pg-cluster.js';
import { startPgark, stopPgark, type BackgroundPgark } from '../helpers/pgark-background.js';
import { pgark } from '../helpers/pgark-run.js';
import { startS3Server, type S3TestServer } from '../helpers/s3-server.js';
import { FaultProxy } from '../helpers/fault-proxy.js';
import { createRepo } from '../helpers/repo.js';
import { expectJsonFormat } from '../helpers/json-schema.js';
import { waitFor, waitUntil } from '../helpers/wait.js';

let s3: S3TestServer;
let proxy: FaultProxy;
let work: string;
let env: Record<string, string>;
let s3Flags: string[];

interface Info { backlog: Array<{ repo: string; files: number; oldest: string }> }
const backlog = async (repo: string): Promise<Info['backlog']> =>
  expectJsonFormat<Info>((await pgark(['info', '--repo', repo, '--stanza', 'main', '--json'], { env })).stdout, 'info').backlog;

/** repo2 unreachable: new connections cut, and nothing forwarded on the ones kept alive (a long-running process has some). */
const cut = () => {
  proxy.inject({ kind: 'drop', direction: 'up', afterBytes: 0, connections: 1_000_000_000 });
  proxy.stall();
};
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** `names` fetched from one repository alone are the bytes of pg_wal's copies. */
async function expectIdentical(c: PgCluster, repoArgs: string[], names: string[], tag: string): Promise<void> {
  const dest = join(work, `fetched-${tag}-${Math.random().toString(36).slice(2, 8)}`);
  await mkdir(dest, { recursive: true, mode: 0o777 });
  await chmod(dest, 0o777);
  for (const name of names) {
    await pgark(['wal-fetch', name, join(dest, name), ...repoArgs, '--stanza', 'main', '--prefetch', '0'], { env });
    expect(sha(await readFile(join(dest, name))), `${name} from ${repoArgs[1]}`).toBe(sha(await readFile(join(c.dataDir, 'pg_wal', name))));
  }
}

beforeAll(async () => {
  s3 = await startS3Server();
  proxy = await FaultProxy.start({ host: '127.0.0.1', port: s3.port });
  work = await makeSharedTempDir('pgark-multi-agent-');
  s3Flags = ['--s3-endpoint', `http://127.0.0.1:${proxy.port}`, '--s3-path-style', 'true', '--s3-region', 'us-east-1'];
  // A failing attempt ends fast: one retry, a short budget and request timeout.
  env = { AWS_ACCESS_KEY_ID: s3.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.secretAccessKey, PGARK_RETRIES: '2', PGARK_RETRY_BUDGET: '5', PGARK_STORAGE_TIMEOUT: '3' };
}, 120_000);

afterAll(async () => {
  await destroyAllClusters();
  await proxy?.stop();
  await s3?.stop();
}, 120_000);

describe('pgark agent with repo2 on s3rver', () => {
  it('required: both repositories get every segment; archiving stalls while repo2 is unreachable and resumes; async: the agent fills the backlog', { timeout: 600_000 }, async () => {
    const fsRepo = join(work, 'agent-fs');
    const s3Repo = `s3://${s3.bucket}/agent`;
    await createRepo(fsRepo, { env });
    await createRepo(s3Repo, { env, args: s3Flags });
    const both = (mode: 'required' | 'async') => ['--repo', fsRepo, '--stanza', 'main', '--repo2', s3Repo, '--repo2-mode', mode, ...s3Flags];
    const cmd = (mode: 'required' | 'async') => archiveCommand({ repo: fsRepo, stanza: 'main', extraArgs: ['--repo2', s3Repo, '--repo2-mode', mode, ...s3Flags] });
    const src = await PgCluster.create({ name: 'multi-agent', walSegmentSizeMB: 1, conf: { archive_mode: 'on', archive_command: cmd('required'), wal_keep_size: '256MB' } });
    // info on stderr: the server log shows which calls took the agent's records.
    src.serverEnv = { ...env, PGARK_PUSH_AHEAD: '0', PGARK_LOG_LEVEL_STDERR: 'info' };
    await src.start();
    const startAgent = (mode: 'required' | 'async'): BackgroundPgark =>
      startPgark(['agent', '--pgdata', src.dataDir, ...both(mode), '--jobs', '2', '--poll-ms', '200', '--log-level', 'info', '--json'], env);
    let agent = startAgent('required');
    try {
      await src.psql('CREATE TABLE t (id int PRIMARY KEY, v text)');
      const archived: string[] = [];
      for (let i = 0; i < 4; i++) {
        await src.psql(`INSERT INTO t SELECT g, md5(g::text) FROM generate_series(${i * 5000 + 1}, ${(i + 1) * 5000}) g`);
        const seg = await src.switchWal();
        await src.waitForArchived(seg, 120_000);
        archived.push(seg);
      }
      // The agent stored them; PostgreSQL's calls took its records (no second upload).
      expect(await src.readLog(200_000)).toMatch(/already stored in every repository by pgark agent/);
      await expectIdentical(src, ['--repo', fsRepo], archived, 'fs');
      await expectIdentical(src, ['--repo', s3Repo, ...s3Flags], archived, 's3');

      // repo2 unreachable: nothing is reported archived, PostgreSQL keeps the segment.
      const before = await src.archiverStats();
      cut();
      await src.psql('INSERT INTO t SELECT g, md5(g::text) FROM generate_series(30001, 31000) g');
      const stalled = await src.switchWal();
      const failed = await waitFor(async () => {
        const st = await src.archiverStats();
        return st.failed_count >= before.failed_count + 2 && st.last_failed_wal === stalled ? st : undefined;
      }, 'failed archive attempts', 120_000, 250);
      expect(failed.last_archived_wal).toBe(archived[archived.length - 1]);
      const status = await readdir(join(src.dataDir, 'pg_wal', 'archive_status'));
      expect(status).toContain(`${stalled}.ready`);
      expect(status).not.toContain(`${stalled}.done`);
      expect(agent.output()).toMatch(/storing '[0-9A-F]{24}' failed/);
      proxy.clear();
      await src.waitForArchived(stalled, 120_000);
      await expectIdentical(src, ['--repo', s3Repo, ...s3Flags], [stalled], 's3-after');
      expect(await backlog(fsRepo)).toEqual([]);
      expect(await stopPgark(agent), `agent exit, signal ${String(agent.signalCode)}; its output:\n${agent.output().slice(-4000)}`).toBe(0);
      const final = JSON.parse(agent.stdout()) as { pushed: number; errors: number };
      expect(final.pushed).toBeGreaterThan(0);
      expect(final.errors).toBeGreaterThan(0);

      // async: archiving goes on while repo2 is unreachable.
      await src.psql(`ALTER SYSTEM SET archive_command = ${pgConfQuote(cmd('async'))}`);
      await src.psql('SELECT pg_reload_conf()');
      agent = startAgent('async');
      cut();
      const lacking: string[] = [];
      for (let i = 0; i < 2; i++) {
        await src.psql(`INSERT INTO t SELECT g, 'async ${i}' FROM generate_series(${40000 + i * 1000}, ${40999 + i * 1000}) g`);
        const seg = await src.switchWal();
        await src.waitForArchived(seg, 120_000);
        lacking.push(seg);
      }
      const during = await backlog(fsRepo);
      expect(during).toHaveLength(1);
      expect(during[0]!.repo).toBe('repo2');
      expect(during[0]!.files).toBeGreaterThanOrEqual(2);
      const done = await readdir(join(src.dataDir, 'pg_wal', 'archive_status'));
      for (const n of lacking) expect(done).toContain(`${n}.done`);
      // Back: the agent fills the backlog by itself (no more WAL switches, no wal-push calls).
      proxy.clear();
      await waitUntil('the agent to fill the backlog', async () => (await backlog(fsRepo)).length === 0, 120_000, agent.output, 500);
      expect(agent.output()).toMatch(/repo2: filled \d+ of \d+ backlog files/);
      await expectIdentical(src, ['--repo', s3Repo, ...s3Flags], lacking, 's3-filled');
      await expectIdentical(src, ['--repo', fsRepo], lacking, 'fs-async');
    } finally {
      proxy.clear();
      await stopPgark(agent, 'SIGKILL');
    }
  });
});

describe('pgark receive with repo2 on s3rver', () => {
  it('required: a commit waits while repo2 is unreachable and the WAL is in both; async: commits go on and the backlog is filled', { timeout: 600_000 }, async () => {
    const fsRepo = join(work, 'recv-fs');
    const s3Repo = `s3://${s3.bucket}/recv`;
    await createRepo(fsRepo, { env });
    await createRepo(s3Repo, { env, args: s3Flags });
    const primary = await PgCluster.create({ name: 'multi-recv', walSegmentSizeMB: 1, conf: { archive_mode: 'off', wal_level: 'replica', wal_keep_size: '256MB' } });
    await primary.start();
    await primary.psql('CREATE TABLE t (id int PRIMARY KEY, v text)');
    const spool = join(work, 'recv-spool');
    const startReceiver = (mode: 'required' | 'async'): BackgroundPgark =>
      startPgark(['receive', '--repo', fsRepo, '--stanza', 'main', '--repo2', s3Repo, '--repo2-mode', mode, ...s3Flags,
        '--dsn', `host=127.0.0.1 port=${primary.port} user=postgres`, '--slot', 'pgark_multi', '--create-slot', '--synchronous',
        '--application-name', 'pgark_multi', '--spool-dir', spool, '--log-level', 'info'], env);
    const flushCovers = async (lsn: string) =>
      (await primary.psql(`SELECT flush_lsn >= '${lsn}'::pg_lsn FROM pg_stat_replication WHERE application_name = 'pgark_multi'`)) === 't';
    let r = startReceiver('required');
    try {
      await primary.psql("ALTER SYSTEM SET synchronous_standby_names = 'pgark_multi'");
      await primary.psql('SELECT pg_reload_conf()');
      await waitUntil('the receiver to be the synchronous standby', async () =>
        (await primary.psql("SELECT sync_state FROM pg_stat_replication WHERE application_name = 'pgark_multi'")) === 'sync', 60_000, r.output);
      for (let i = 1; i <= 20; i++) await primary.psql(`INSERT INTO t VALUES (${i}, 'row ${i}')`);
      await primary.psql("INSERT INTO t SELECT g, repeat('x', 200) FROM generate_series(21, 8000) g");
      const seg = await primary.psql('SELECT pg_walfile_name(pg_current_wal_lsn())');
      await primary.psql('SELECT pg_switch_wal()');
      await primary.psql('INSERT INTO t VALUES (8001, \'after the switch\')');
      // The completed segment is whole in both repositories.
      await waitUntil(`${seg} whole in both`, async () => {
        const a = await pgark(['wal-fetch', seg, join(work, `probe-${seg}`), '--repo', s3Repo, ...s3Flags, '--stanza', 'main', '--prefetch', '0'], { env, allowFail: true });
        return a.code === 0;
      }, 60_000, r.output, 500);
      await expectIdentical(primary, ['--repo', fsRepo], [seg], 'recv-fs');
      await expectIdentical(primary, ['--repo', s3Repo, ...s3Flags], [seg], 'recv-s3');

      // repo2 unreachable: the commit does not return, the flush position does not cover it.
      cut();
      let returned = false;
      const pending = primary.psql("INSERT INTO t VALUES (9001, 'waits for repo2')").then(() => (returned = true));
      await new Promise((res) => setTimeout(res, 6000));
      const insertEnd = await primary.psql('SELECT pg_current_wal_insert_lsn()');
      expect(returned).toBe(false);
      expect(await flushCovers(insertEnd)).toBe(false);
      proxy.clear();
      await pending;
      expect(await flushCovers(insertEnd)).toBe(true);
      expect(await stopPgark(r)).toBe(0);

      // async: commits go on while repo2 is unreachable; the completed segment is in its backlog.
      r = startReceiver('async');
      await waitUntil('the receiver to be the synchronous standby again', async () =>
        (await primary.psql("SELECT sync_state FROM pg_stat_replication WHERE application_name = 'pgark_multi'")) === 'sync', 60_000, r.output);
      cut();
      await primary.psql("INSERT INTO t SELECT g, repeat('y', 200) FROM generate_series(10001, 14000) g");
      const seg2 = await primary.psql('SELECT pg_walfile_name(pg_current_wal_lsn())');
      await primary.psql('SELECT pg_switch_wal()');
      await primary.psql("INSERT INTO t VALUES (14001, 'returns with repo2 unreachable')");
      await waitUntil(`${seg2} in repo2's backlog`, async () => (await backlog(fsRepo)).some((b) => b.repo === 'repo2' && b.files >= 1), 60_000, r.output, 500);
      await expectIdentical(primary, ['--repo', fsRepo], [seg2], 'recv-fs-async');
      proxy.clear();
      await waitUntil('the receiver to fill the backlog', async () => (await backlog(fsRepo)).length === 0, 120_000, r.output, 500);
      await expectIdentical(primary, ['--repo', s3Repo, ...s3Flags], [seg2], 'recv-s3-filled');
      expect(await stopPgark(r)).toBe(0);
    } finally {
      proxy.clear();
      await stopPgark(r, 'SIGKILL');
      await primary.psql("ALTER SYSTEM SET synchronous_standby_names = ''; SELECT pg_reload_conf()").catch(() => undefined);
    }
  });
});
