/**
 * Restore, check and metrics with two repositories (issue 18 item 2): `repo` on the filesystem,
 * `repo2` on s3rver behind a fault proxy. A backup taken once into `repo` and copied with
 * `pgark copy`, then:
 *
 * - `repo` unreachable (its directory moved away): restore reads the backup from repo2 (JSON
 *   `repo: "repo2"`, a note naming repo), and the restore_command it writes fetches from repo2
 *   while repo is unreachable (a segment repo2 has: restored; one neither has: not "missing", so
 *   PostgreSQL stops rather than recover early); with repo back, PostgreSQL starts and reaches
 *   the restore point with exact rows.
 * - objects of the backup gone from repo, or one with a flipped byte: restore reads them from
 *   repo2 (with a warning naming repo), every byte verified, and PostgreSQL starts with exact rows.
 * - an encrypted repo3 (its own key; `pgark copy` re-encrypts into it): with repo and repo2
 *   unreachable, restore reads it with repo3's key; without that key, the error names each
 *   repository's state.
 * - a backup only in repo2 (taken with --repo at repo2's location) is found by restore and clone.
 * - repo2 async and unreachable: `pgark check` shows its backlog (WARNING, exit 1; CRITICAL past
 *   --backlog-crit-files, exit 2) with perfdata backlog_repo2; required and unreachable: CRITICAL;
 *   `pgark metrics` serves pgark_repo_backlog_files{repo="repo2"}.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { archiveCommand, chownToRunAs, connEnv, destroyAllClusters, makeSharedTempDir, PgCluster, pgConfQuote, runAsUser } from '../helpers/pg-cluster.js';
import { pgark } from '../helpers/pgark-run.js';
import { startS3Server, type S3TestServer } from '../helpers/s3-server.js';
import { FaultProxy } from '../helpers/fault-proxy.js';
import { createRepo } from '../helpers/repo.js';
import { expectJsonFormat } from '../helpers/json-schema.js';
import { startPgark, stopPgark } from '../helpers/pgark-background.js';
import { waitFor } from '../helpers/wait.js';

let s3: S3TestServer;
let proxy: FaultProxy;
let work: string;
let fsRepo: string;
let s3Repo: string;
let env: Record<string, string>;
let s3Flags: string[];
let both: string[];
let src: PgCluster;
let full: string;
let expected: string;
let lastSeg: string;

interface RestoreOut { backup: string; repo: string; notes: string[]; settings: Record<string, string> }

const fingerprint = (c: PgCluster): Promise<string> => c.psql("SELECT count(*) || ':' || md5(string_agg(id || '=' || v, ',' ORDER BY id)) FROM t");
const cut = () => proxy.inject({ kind: 'drop', direction: 'up', afterBytes: 0, connections: 1_000_000_000 });
let targets = 0;

async function newTarget(): Promise<string> {
  const dir = join(work, `restored-${++targets}`);
  await mkdir(dir, { mode: 0o700 });
  await chownToRunAs(dir);
  return dir;
}

async function restore(ref: string, extra: string[] = []): Promise<{ out: RestoreOut; stderr: string; target: string }> {
  const target = await newTarget();
  const r = await pgark(['restore', ref, ...both, '--pgdata', target, '--no-progress', '--jobs', '1', ...extra, '--json'], { env, timeoutMs: 300_000 });
  return { out: expectJsonFormat<RestoreOut>(r.stdout, 'restore'), stderr: r.stderr, target };
}

async function restoredCluster(target: string, name: string): Promise<PgCluster> {
  const c = await PgCluster.fromDataDir(target, { name, conf: { archive_mode: 'off' } });
  c.serverEnv = { ...env, PGARK_PREFETCH: '0' };
  return c;
}

/** Start the restored directory, wait for the end of recovery, return its fingerprint. */
async function startAndFingerprint(target: string | PgCluster, name: string): Promise<string> {
  const c = typeof target === 'string' ? await restoredCluster(target, name) : target;
  await c.start({ timeoutSec: 180 });
  const deadline = Date.now() + 120_000;
  while ((await c.psql('SELECT pg_is_in_recovery()').catch(() => 't')) !== 'f') {
    if (Date.now() > deadline) throw new Error(`recovery did not end\n${await c.readLog(8000)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  const fp = await fingerprint(c);
  await c.stop('fast');
  return fp;
}

beforeAll(async () => {
  s3 = await startS3Server();
  proxy = await FaultProxy.start({ host: '127.0.0.1', port: s3.port });
  work = await makeSharedTempDir('pgark-multi-repo-restore-');
  fsRepo = join(work, 'fs-repo');
  s3Repo = `s3://${s3.bucket}/second`;
  s3Flags = ['--s3-endpoint', `http://127.0.0.1:${proxy.port}`, '--s3-path-style', 'true', '--s3-region', 'us-east-1'];
  both = ['--repo', fsRepo, '--repo2', s3Repo, '--stanza', 'main', ...s3Flags];
  env = { AWS_ACCESS_KEY_ID: s3.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.secretAccessKey, PGARK_RETRIES: '2', PGARK_RETRY_BUDGET: '5', PGARK_STORAGE_TIMEOUT: '3' };
  await createRepo(fsRepo, { env });
  await createRepo(s3Repo, { env, args: s3Flags });
  const archive = archiveCommand({ repo: fsRepo, stanza: 'main', extraArgs: ['--repo2', s3Repo, '--repo2-mode', 'required', ...s3Flags] });
  src = await PgCluster.create({ name: 'multi-repo-restore', conf: { archive_mode: 'on', archive_command: archive, archive_timeout: '0', wal_keep_size: '1GB' } });
  src.serverEnv = { ...env, PGARK_PUSH_AHEAD: '0' };
  await src.start();
  await src.psql('CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 20000) g');
  // One backup, into repo only, then copied to repo2 as stored.
  full = (JSON.parse((await pgark(['backup', '--repo', fsRepo, '--stanza', 'main', '--pgdata', src.dataDir, '--type', 'full', '--no-progress', '--json'], { env: { ...env, ...connEnv(src) } })).stdout) as { id: string }).id;
  await src.psql("UPDATE t SET v = v || '+' WHERE id % 7 = 0; INSERT INTO t SELECT g, 'after the backup' FROM generate_series(20001, 21000) g");
  expected = await fingerprint(src);
  await src.psql("SELECT pg_create_restore_point('rp1')");
  await src.psql("INSERT INTO t SELECT g, 'after the restore point' FROM generate_series(21001, 22000) g");
  lastSeg = await src.switchWal();
  await src.waitForArchived(lastSeg, 120_000);
  await pgark(['copy', '--all', '--to', 'repo2', ...both], { env, timeoutMs: 300_000 });
}, 600_000);

afterAll(async () => {
  await destroyAllClusters();
  await proxy?.stop();
  await s3?.stop();
});

describe('restore with two repositories', () => {
  it('repo unreachable: the backup is read from repo2, restore_command fails over, PostgreSQL reaches the restore point', { timeout: 600_000 }, async () => {
    await rename(fsRepo, `${fsRepo}.away`);
    let r: Awaited<ReturnType<typeof restore>>;
    let c: PgCluster;
    try {
      r = await restore('auto', ['--target-name', 'rp1', '--target-action', 'promote']);
      expect(r.out.backup).toBe(full);
      expect(r.out.repo).toBe('repo2');
      expect(r.out.notes.join('\n')).toMatch(/^repo could not be read and was skipped: /m);
      expect(r.stderr).toMatch(/WARN .*repo: .*skipped/);
      // restore_command carries both repositories: wal-fetch fails over to repo2 while repo is away.
      const cmd = r.out.settings.restore_command!;
      expect(cmd).toContain('--repo2');
      expect(cmd).toContain(s3Repo);
      const dir = await newTarget();
      const run = (name: string) => runAsUser('/bin/sh', ['-c', cmd.replaceAll('%f', name).replaceAll('%p', join(dir, 'RECOVERYXLOG'))], { env, cwd: dir, allowFail: true, timeoutMs: 120_000 });
      const got = await run(lastSeg);
      expect(got.code, got.stderr).toBe(0);
      expect((await readFile(join(dir, 'RECOVERYXLOG'))).length).toBe(16 * 1024 * 1024);
      // Neither has it, and repo cannot answer: never "missing" (exit 1).
      expect((await run('0000000100000000000000FE')).code).toBeGreaterThan(125);
      expect(r.out.notes.join('\n')).toMatch(/restore_command names every repository: while repo cannot be read, PostgreSQL stops recovery/);
      // As the note says: PostgreSQL stops (its first look for a timeline history file fails) rather than recover early.
      c = await restoredCluster(r.target, 'mrr-away');
      await expect(c.start({ timeoutSec: 60 })).rejects.toThrow(/FATAL:\s+could not restore file "00000002.history" from archive/);
      expect(await c.psql('SELECT 1').catch(() => 'down')).toBe('down');
    } finally {
      await rename(`${fsRepo}.away`, fsRepo);
    }
    // repo back: the same directory recovers to the restore point.
    expect(await startAndFingerprint(c, 'mrr-away')).toBe(expected);
  });

  it('objects gone from repo, or damaged there, are read from repo2 with a warning; every byte verified', { timeout: 600_000 }, async () => {
    const dataDir = join(fsRepo, 'main', 'backup', full, 'data');
    const objects = (await readdir(dataDir)).sort((a, b) => Number(a) - Number(b));
    expect(objects.length).toBeGreaterThan(1);
    // Gone: the whole data directory of the backup.
    await rename(dataDir, `${dataDir}.away`);
    try {
      const r = await restore(full);
      expect(r.out.repo).toBe('repo');
      expect(r.stderr).toMatch(/WARN .*repo: unable to read object \d+ of backup .*reading it from repo2 instead/);
    } finally {
      await rename(`${dataDir}.away`, dataDir);
    }
    // Damaged: one byte flipped in the largest object.
    const sizes = await Promise.all(objects.map(async (o) => ({ o, size: (await readFile(join(dataDir, o))).length })));
    const victim = join(dataDir, sizes.sort((a, b) => b.size - a.size)[0]!.o);
    const original = await readFile(victim);
    const flipped = Buffer.from(original);
    flipped[Math.floor(flipped.length / 2)]! ^= 0x40;
    await writeFile(victim, flipped);
    try {
      const r = await restore(full, ['--target-name', 'rp1', '--target-action', 'promote']);
      expect(r.out.repo).toBe('repo');
      expect(r.stderr).toMatch(/WARN .*repo: object \d+ of backup .* did not verify .*reading it from repo2 instead, checked against the same manifest/);
      expect(await startAndFingerprint(r.target, 'mrr-damaged')).toBe(expected);
    } finally {
      await writeFile(victim, original);
    }
  });

  it('an encrypted repo3 with its own key: read with that key when repo and repo2 are unreachable', { timeout: 600_000 }, async () => {
    const repo3 = join(work, 'fs-repo3');
    await createRepo(repo3, { env });
    const keyDir = join(work, 'keys');
    await mkdir(keyDir, { mode: 0o700 });
    await chownToRunAs(keyDir);
    const kek = join(keyDir, 'kek3');
    await writeFile(kek, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
    await chownToRunAs(kek);
    await pgark(['key', 'init', '--repo', repo3, '--stanza', 'main', '--cipher-key-file', kek], { env });
    const three = ['--repo3', repo3, '--repo3-cipher-key-file', kek];
    const copied = expectJsonFormat<{ objects: { reEncoded: number } }>((await pgark(['copy', '--all', '--to', 'repo3', ...both, ...three, '--json'], { env, timeoutMs: 300_000 })).stdout, 'copy');
    expect(copied.objects.reEncoded).toBeGreaterThan(0);
    await rename(fsRepo, `${fsRepo}.away`);
    cut();
    let r: Awaited<ReturnType<typeof restore>>;
    try {
      r = await restore(full, [...three, '--target-name', 'rp1', '--target-action', 'promote']);
      expect(r.out.repo).toBe('repo3');
      // Without repo3's key nothing can be read: the error names each repository's state.
      const failed = await pgark(['restore', full, ...both, '--repo3', repo3, '--pgdata', await newTarget(), '--no-progress'], { env, allowFail: true, timeoutMs: 300_000 });
      expect(failed.code).not.toBe(0);
      expect(failed.stderr).toMatch(/no repository could be read: repo \(unreachable\): .*; repo2 \(unreachable\): .*; repo3 \(unreachable\): .*key/);
    } finally {
      proxy.clear();
      await rename(`${fsRepo}.away`, fsRepo);
    }
    expect(await startAndFingerprint(r.target, 'mrr-repo3')).toBe(expected);
  });

  it('a backup only in repo2 is found, by id and as the newest', { timeout: 600_000 }, async () => {
    const only2 = (JSON.parse((await pgark(['backup', '--repo', s3Repo, '--stanza', 'main', ...s3Flags, '--pgdata', src.dataDir, '--type', 'full', '--no-progress', '--json'], { env: { ...env, ...connEnv(src) } })).stdout) as { id: string }).id;
    const byId = await restore(only2);
    expect(byId.out).toMatchObject({ backup: only2, repo: 'repo2' });
    const newest = await restore('latest');
    expect(newest.out).toMatchObject({ backup: only2, repo: 'repo2' });
    // clone reads what restore reads.
    const clone = expectJsonFormat<{ backup: string; notes: string[] }>((await pgark(['clone', 'latest', ...both, '--pgdata', await newTarget(), '--no-progress', '--jobs', '1', '--json'], { env, timeoutMs: 300_000 })).stdout, 'clone');
    expect(clone.backup).toBe(only2);
    expect(clone.notes).toContain(`backup ${only2} is read from repo2`);
    // repo alone has never heard of it.
    const alone = await pgark(['restore', only2, '--repo', fsRepo, '--stanza', 'main', '--pgdata', await newTarget(), '--no-progress'], { env, allowFail: true });
    expect(alone.code).toBe(8);
  });
});

interface CheckOut { status: string; items: Array<{ name: string; status: string; detail: string }>; perfdata: Array<{ label: string; value: number }> }

describe('check and metrics: the backlog of an async repo2', () => {
  it('check warns, then is critical past the threshold; an unreachable required repo2 is critical; metrics serve the gauge', { timeout: 600_000 }, async () => {
    const asyncArchive = archiveCommand({ repo: fsRepo, stanza: 'main', extraArgs: ['--repo2', s3Repo, '--repo2-mode', 'async', ...s3Flags] });
    await src.psql(`ALTER SYSTEM SET archive_command = ${pgConfQuote(asyncArchive)}`);
    await src.psql('SELECT pg_reload_conf()');
    await new Promise((r) => setTimeout(r, 500));
    cut();
    try {
      for (let i = 0; i < 2; i++) {
        await src.psql(`INSERT INTO t SELECT g, 'async ${i}' FROM generate_series(${30000 + i * 1000}, ${30999 + i * 1000}) g`);
        await src.waitForArchived(await src.switchWal(), 120_000);
      }
      const check = async (extra: string[], mode = 'async') => {
        const r = await pgark(['check', '--repo', fsRepo, '--repo2', s3Repo, '--repo2-mode', mode, '--stanza', 'main', ...s3Flags, '--no-switch', '--backup-warn', '30d', '--backup-crit', '60d', ...extra], { env: { ...env, ...connEnv(src) }, allowFail: true, timeoutMs: 120_000 });
        const j = await pgark(['check', '--repo', fsRepo, '--repo2', s3Repo, '--repo2-mode', mode, '--stanza', 'main', ...s3Flags, '--no-switch', '--backup-warn', '30d', '--backup-crit', '60d', ...extra, '--json'], { env: { ...env, ...connEnv(src) }, allowFail: true, timeoutMs: 120_000 });
        return { code: r.code, text: r.stdout, json: expectJsonFormat<CheckOut>(j.stdout, 'check') };
      };
      const warn = await check([]);
      const item = (c: CheckOut, name: string) => c.items.find((i) => i.name === name);
      expect(item(warn.json, 'backlog repo2')).toMatchObject({ status: 'WARNING' });
      expect(item(warn.json, 'backlog repo2')!.detail).toMatch(/^repo2 lacks 2 WAL files/);
      expect(item(warn.json, 'repo2')).toMatchObject({ status: 'WARNING' });
      expect(warn.json.items.filter((i) => i.status !== 'OK').map((i) => i.name).sort()).toEqual(['backlog repo2', 'repo2']);
      expect(warn.code).toBe(1);
      expect(warn.text).toMatch(/^PGARK WARNING - .* \| .*backlog_repo2=2;0;256;0 backlog_repo2_age=\d+s;;3600;0/);
      expect(warn.json.perfdata.find((p) => p.label === 'backlog_repo2')!.value).toBe(2);

      const crit = await check(['--backlog-crit-files', '1']);
      expect(item(crit.json, 'backlog repo2')).toMatchObject({ status: 'CRITICAL' });
      expect(crit.code).toBe(2);

      const required = await check([], 'required');
      expect(item(required.json, 'repo2')).toMatchObject({ status: 'CRITICAL' });
      expect(item(required.json, 'repo2')!.detail).toMatch(/\(required\) unreachable/);
      expect(required.code).toBe(2);

      const m = startPgark(['metrics', ...both, '--repo2-mode', 'async', '--port', '0', '--refresh', '1'], env);
      try {
        const port = await waitFor(async () => /metrics on http:\/\/127\.0\.0\.1:(\d+)\/metrics/.exec(m.output())?.[1], 'the metrics endpoint', 60_000, 200);
        const text = await (await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
        expect(text).toContain('pgark_repo_backlog_files{stanza="main",repo="repo2"} 2\n');
        expect(text).toMatch(/pgark_repo_backlog_oldest_age_seconds\{stanza="main",repo="repo2"\} \d+/);
      } finally {
        await stopPgark(m);
      }
    } finally {
      proxy.clear();
    }
  });
});
