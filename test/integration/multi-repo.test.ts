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
 * - A backup taken once into `repo`, then more WAL while repo2 is unreachable again:
 *   `pgark copy --all --to repo2` fills the gap and copies the backup (a second run copies
 *   nothing), and a restore from repo2 alone reaches a restore point with exact rows. Then
 *   expire applies each repository's own retention (retain-full 2 / repo2-retain-full 1).
 */
import { access, mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { archiveCommand, chownToRunAs, connEnv, destroyAllClusters, makeSharedTempDir, PgCluster, pgConfQuote } from '../helpers/pg-cluster.js';
import { pgark } from '../helpers/pgark-run.js';
import { startS3Server, type S3TestServer } from '../helpers/s3-server.js';
import { FaultProxy } from '../helpers/fault-proxy.js';
import { createRepo } from '../helpers/repo.js';
import { expectJsonFormat } from '../helpers/json-schema.js';
import { waitFor } from '../helpers/wait.js';

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
    const failed = await waitFor(async () => {
      const st = await src.archiverStats();
      return st.failed_count > 0 && st.last_failed_wal === seg2 ? st : undefined;
    }, 'a failed archive attempt', 90_000, 250);
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
    await waitFor(async () => {
      if ((await info(fsRepo)).backlog.length === 0) return true;
      last = await src.switchWal();
      await src.waitForArchived(last, 120_000);
      return undefined;
    }, 'the backlog to be filled', 120_000, 250).catch(async (err: Error) => {
      throw new Error(`${err.message}\n--- server log tail ---\n${await src.readLog(8000)}`);
    });
    const second = await info(s3Repo, s3Flags);
    expect(second.wal.timelines[0]!.last).toBe(last);
    expect(second.wal.timelines[0]!.gaps).toBe(0);
  });
});

const fingerprint = (c: PgCluster): Promise<string> => c.psql("SELECT count(*) || ':' || md5(string_agg(id || '=' || v, ',' ORDER BY id)) FROM t");

interface CopyOut { toName: string; objects: { copied: number; existing: number; asStored: number; reEncoded: number }; walFiles: number; backups: string[]; backlogCleared: number }

describe('pgark copy', () => {
  it('after the fault, copy --all makes repo2 restorable on its own', { timeout: 600_000 }, async () => {
    const backup = JSON.parse((await pgark(['backup', '--repo', fsRepo, '--stanza', 'main', '--pgdata', src.dataDir, '--type', 'full', '--no-progress', '--json'], { env: { ...env, ...connEnv(src) } })).stdout) as { id: string };
    cut();
    await src.psql("UPDATE t SET v = v || '+' WHERE id % 10 = 0; INSERT INTO t SELECT g, 'after the backup' FROM generate_series(20001, 21000) g");
    const expected = await fingerprint(src);
    await src.psql("SELECT pg_create_restore_point('copied')");
    await src.psql("INSERT INTO t SELECT g, 'after the restore point' FROM generate_series(21001, 22000) g");
    const lastSeg = await src.switchWal();
    await src.waitForArchived(lastSeg, 120_000);
    expect((await info(fsRepo)).backlog[0]).toMatchObject({ repo: 'repo2' });
    proxy.clear();

    const copyArgs = ['copy', '--all', '--to', 'repo2', '--repo', fsRepo, '--repo2', s3Repo, '--stanza', 'main', ...s3Flags, '--json'];
    const first = expectJsonFormat<CopyOut>((await pgark(copyArgs, { env })).stdout, 'copy');
    expect(first.toName).toBe('repo2');
    expect(first.backups).toEqual([backup.id]);
    expect(first.objects.copied).toBeGreaterThan(0);
    // Both repositories plain: every object copied as stored.
    expect(first.objects.reEncoded).toBe(0);
    expect((await info(fsRepo)).backlog).toEqual([]);
    // Resumable: a second run finds everything there.
    const again = expectJsonFormat<CopyOut>((await pgark(copyArgs, { env })).stdout, 'copy');
    expect(again.objects.copied).toBe(0);
    expect(again.objects.existing).toBe(first.objects.copied + first.objects.existing);

    // repo2 alone: its own list, and a restore with exact rows (restore_command reads only repo2).
    const listed = JSON.parse((await pgark(['list', '--repo', s3Repo, '--stanza', 'main', ...s3Flags, '--json'], { env })).stdout) as { backups: Array<{ id: string }> };
    expect(listed.backups.map((b) => b.id)).toEqual([backup.id]);
    const target = join(work, 'restored-from-repo2');
    await mkdir(target, { mode: 0o700 });
    await chownToRunAs(target);
    await pgark(['restore', 'latest', '--repo', s3Repo, '--stanza', 'main', ...s3Flags, '--pgdata', target, '--target-name', 'copied', '--target-action', 'promote', '--no-progress'], { env });
    const copy = await PgCluster.fromDataDir(target, { name: 'multi-repo-copy', conf: { archive_mode: 'off' } });
    copy.serverEnv = { ...env, PGARK_PREFETCH: '0' };
    await copy.start({ timeoutSec: 180 });
    const deadline = Date.now() + 120_000;
    while ((await copy.psql('SELECT pg_is_in_recovery()').catch(() => 't')) !== 'f') {
      if (Date.now() > deadline) throw new Error(`recovery did not end\n${await copy.readLog(8000)}`);
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(await fingerprint(copy)).toBe(expected);
    await copy.stop('fast');

    // Retention per repository: a second backup in both; repo keeps 2 full backups, repo2 only 1.
    const second = JSON.parse((await pgark(['backup', '--repo', fsRepo, '--stanza', 'main', '--pgdata', src.dataDir, '--type', 'full', '--no-progress', '--json'], { env: { ...env, ...connEnv(src) } })).stdout) as { id: string };
    await pgark(copyArgs, { env });
    const both = ['--repo', fsRepo, '--repo2', s3Repo, '--stanza', 'main', ...s3Flags, '--retain-full', '2', '--repo2-retain-full', '1'];
    const text = (await pgark(['expire', ...both], { env })).stdout;
    expect(text).toMatch(/^repo \(.*fs-repo\):$/m);
    expect(text).toMatch(/^repo2 \(s3:\/\/pgark-test\/second\):$/m);
    const ids = async (repo: string, extra: string[] = []) => (JSON.parse((await pgark(['list', '--repo', repo, '--stanza', 'main', ...extra, '--json'], { env })).stdout) as { backups: Array<{ id: string }> }).backups.map((b) => b.id);
    expect(await ids(fsRepo)).toEqual([backup.id, second.id]);
    expect(await ids(s3Repo, s3Flags)).toEqual([second.id]);
    // One repository's outcome as JSON; --json without --in is refused with several.
    expect(expectJsonFormat<{ removed: { backups: string[] }; plan: { keep: Array<{ id: string }> } }>((await pgark(['expire', ...both, '--in', 'repo2', '--json'], { env })).stdout, 'expire')).toMatchObject({ removed: { backups: [] }, plan: { keep: [{ id: second.id }] } });
    const refused = await pgark(['expire', ...both, '--json'], { env, allowFail: true });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/name one with --in/);

    // wal-fetch with both: "missing" (exit 1) only while both answer; repo2 unreachable: above 125.
    const fetchDir = join(work, 'fetch');
    await mkdir(fetchDir, { mode: 0o700 });
    await chownToRunAs(fetchDir);
    const fetchArgs = (name: string) => ['wal-fetch', name, join(fetchDir, 'RECOVERYXLOG'), '--repo', fsRepo, '--repo2', s3Repo, '--stanza', 'main', ...s3Flags];
    const absent = '0000000100000000000000FE';
    expect((await pgark(fetchArgs(absent), { env, allowFail: true, cwd: fetchDir })).code).toBe(1);
    expect((await pgark(fetchArgs(lastSeg), { env, cwd: fetchDir })).code).toBe(0);
    cut();
    const down = await pgark(fetchArgs(absent), { env, allowFail: true, cwd: fetchDir });
    expect(down.code).toBe(210);
    expect(down.stderr).toMatch(/repo2: .*not reporting it as missing/);
    // What repo has is still served.
    expect((await pgark(fetchArgs(lastSeg), { env, cwd: fetchDir })).code).toBe(0);
    proxy.clear();
  });
});
