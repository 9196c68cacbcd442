/**
 * `pgark agent` with real PostgreSQL 15, archive_command = bin/pgark-wal-push (the POSIX shell
 * client) under pgbench load:
 *
 *  1. on the fs repository and on s3rver: the agent stores the segments, archive_command finds
 *     their records; everything ends archived, byte-identical, and the metrics endpoint and
 *     the status file show the queue;
 *  2. the agent killed with kill -9 in the middle of uploads and restarted: nothing lost, every
 *     segment archived and identical (failed_count may rise);
 *  3. the agent stopped: archiving goes on through the full wal-push;
 *  4. the shell client against a record for a file whose content changed: a mismatch (exit 3)
 *     through the full path, the archived copy unchanged; and it never answers for records
 *     it cannot trust;
 *  5. a copy replaying 100+ segments (more than twelve times the prefetch depth of 8) with
 *     restore_command = bin/pgark-wal-fetch, served from the prefetch area or by the serving
 *     prefetch worker: Node starts only for the first call (the history probe).
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, watch } from 'node:fs';
import { chmod, copyFile, mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { destroyAllClusters, makeSharedTempDir, PgCluster, pgRunAsUser, PROJECT_ROOT, removeSharedTempDir, shellQuote, runAsUser } from '../helpers/pg-cluster.js';
import { startPgark, stopPgark, type BackgroundPgark } from '../helpers/pgark-background.js';
import { pgark } from '../helpers/pgark-run.js';
import { REMOTE_STORES, type StartedStore } from '../helpers/remote-stores.js';
import { createRepo } from '../helpers/repo.js';

const STANZA = 'agent';
const SHELL_CLIENT = join(PROJECT_ROOT, 'bin', 'pgark-wal-push');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

afterAll(async () => {
  await destroyAllClusters();
}, 120_000);

/** Start `pgark agent` in the background as the PostgreSQL OS user. */
function startAgent(pgdata: string, repo: string, env: Record<string, string>, extra: string[] = []): BackgroundPgark {
  return startPgark(['agent', '--pgdata', pgdata, '--repo', repo, '--stanza', STANZA, '--jobs', '4', '--poll-ms', '200', '--log-level', 'info', ...extra], env);
}

async function stopAgent(a: BackgroundPgark, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  await stopPgark(a, signal);
}

function shellArchiveCommand(repo: string): string {
  return `${shellQuote(SHELL_CLIENT)} %p --repo ${shellQuote(repo)} --stanza ${STANZA}`;
}

async function sourceCluster(name: string, repo: string, env: Record<string, string>): Promise<PgCluster> {
  const c = await PgCluster.create({
    name,
    walSegmentSizeMB: 1,
    conf: { archive_mode: 'on', archive_command: shellArchiveCommand(repo), max_wal_size: '256MB', checkpoint_timeout: '30min' },
  });
  c.serverEnv = { ...env, PGARK_NODE: process.execPath };
  await c.start();
  await c.pgbench(['-i', '-q', '-s', '2']);
  return c;
}

async function waitUntil(what: string, probe: () => Promise<boolean>, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/**
 * Kill the agent with SIGKILL while it stores a segment, deterministically on any machine load:
 * its records directory is watched (inotify: no lock is missed, however briefly held), the
 * agent is frozen (SIGSTOP) as soon as a lock appears, and killed if the lock is still there
 * and names it (an upload in flight, frozen mid-way); otherwise it goes on (SIGCONT) until the
 * next lock. `more()` completes segments meanwhile. Returns the segment killed mid-upload and its bytes.
 */
async function killMidUpload(agent: BackgroundPgark, pushedDir: string, more: () => Promise<void>, timeoutMs = 180_000): Promise<{ name: string; bytes: Buffer }> {
  const pid = agent.pid!;
  let caught: { name: string; bytes: Buffer } | undefined;
  const tryCatch = (name: string): void => {
    if (caught || !name.endsWith('.lock')) return;
    process.kill(pid, 'SIGSTOP');
    const lock = join(pushedDir, name);
    const holder = existsSync(lock) ? readFileSync(lock, 'utf8').trim() : '';
    if (holder === String(pid)) {
      // Read while the lock holds it back from archive_command (so from recycling too).
      const segment = name.slice(0, -'.lock'.length);
      caught = { name: segment, bytes: readFileSync(join(pushedDir, '..', '..', segment)) };
      process.kill(pid, 'SIGKILL');
    } else {
      process.kill(pid, 'SIGCONT');
    }
  };
  const watcher = watch(pushedDir, (_event, name) => {
    if (typeof name === 'string') tryCatch(name);
  });
  try {
    const deadline = Date.now() + timeoutMs;
    while (!caught) {
      if (Date.now() > deadline) throw new Error('no upload of the agent caught in flight');
      await more();
      for (const n of await readdir(pushedDir)) tryCatch(n);
    }
  } finally {
    watcher.close();
  }
  await agent.exited;
  return caught;
}

/** Switch WAL and wait until PostgreSQL has archived everything up to that segment. */
async function drain(c: PgCluster): Promise<string> {
  const seg = await c.switchWal();
  await c.waitForArchived(seg, 180_000);
  return seg;
}

/** Every segment still in pg_wal that PostgreSQL archived is in the repository with the same bytes. */
async function expectArchivedIdentical(c: PgCluster, repo: string, env: Record<string, string>, work: string): Promise<number> {
  const status = await readdir(join(c.dataDir, 'pg_wal', 'archive_status'));
  const done = status.filter((n) => /^[0-9A-F]{24}\.done$/.test(n)).map((n) => n.slice(0, 24));
  expect(done.length).toBeGreaterThan(0);
  const dest = join(work, 'fetched');
  await mkdir(dest, { recursive: true, mode: 0o777 });
  await chmod(dest, 0o777);
  let checked = 0;
  for (const name of done.slice(-12)) {
    const local = await readFile(join(c.dataDir, 'pg_wal', name)).catch(() => undefined);
    if (!local) continue; // recycled meanwhile
    await pgark(['wal-fetch', name, join(dest, name), '--repo', repo, '--stanza', STANZA, '--prefetch', '0'], { env });
    const fetched = await readFile(join(dest, name));
    expect(createHash('sha256').update(fetched).digest('hex')).toBe(createHash('sha256').update(local).digest('hex'));
    checked++;
  }
  const verify = await pgark(['wal-verify', '--repo', repo, '--stanza', STANZA, '--read'], { env, allowFail: true });
  expect(verify.code, verify.stdout + verify.stderr).toBe(0);
  return checked;
}

const stores = REMOTE_STORES.filter((s) => s.name === 'fs' || s.name === 's3');

describe.each(stores)('pgark agent on $name', (store) => {
  it('archives a pgbench load through the agent; survives kill -9; falls back when stopped', { timeout: 600_000 }, async () => {
    const work = await makeSharedTempDir(`pgark-agent-${store.name}-`);
    let started: StartedStore | undefined;
    let agent: ReturnType<typeof startAgent> | undefined;
    try {
      started = await store.start(work);
      const { repo, env } = started;
      // The first call has no record: the full path pushes it and creates the stanza.
      const src = await sourceCluster(`agent-${store.name}`, repo, env);
      await drain(src);

      // 1. The agent under load.
      agent = startAgent(src.dataDir, repo, env, ['--metrics-port', '0']);
      await waitUntil('the agent status file', async () => (await stat(join(src.dataDir, 'pg_wal', '.pgark', 'agent', 'status.json')).catch(() => null)) !== null, 30_000);
      const port = Number(/metrics on http:\/\/127\.0\.0\.1:(\d+)\/metrics/.exec(agent.output())?.[1]);
      expect(port).toBeGreaterThan(0);
      const before = await src.archiverStats();
      // pgbench for the load, and WAL switches so the segment count does not depend on the
      // machine's speed: each switch follows a write of its own, so it completes a segment even
      // when a loaded machine stretched the loop past the load (the flake: 5-7 of 10 archived).
      const load1 = src.pgbench(['-T', '6', '-c', '2', '-j', '2']);
      for (let i = 0; i < 12; i++) {
        await sleep(300);
        await src.psql(`INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (1, 1, 1, ${i}, now()); SELECT pg_switch_wal()`);
      }
      await load1;
      await drain(src);
      const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      expect(metrics).toMatch(/^pgark_agent_up\{stanza="agent"\} 1$/m);
      const pushed = Number(/^pgark_agent_pushed_segments_total\{stanza="agent"\} (\d+)$/m.exec(metrics)?.[1]);
      const after = await src.archiverStats();
      const archived = after.archived_count - before.archived_count;
      expect(archived).toBeGreaterThanOrEqual(10);
      // The agent stored a good part of them (the shell client only found their records; a
      // segment PostgreSQL asks for before the agent took it goes through the full path).
      expect(pushed).toBeGreaterThanOrEqual(Math.floor(archived / 3));
      expect(after.failed_count).toBe(before.failed_count);
      const st = JSON.parse(await readFile(join(src.dataDir, 'pg_wal', '.pgark', 'agent', 'status.json'), 'utf8')) as { pid: number; queue: number };
      expect(st.pid).toBe(agent.pid);
      const info = await pgark(['info', '--repo', repo, '--stanza', STANZA, '--pgdata', src.dataDir, '--json'], { env });
      expect((JSON.parse(info.stdout) as { agent?: { queue: number } }).agent).toBeDefined();
      // Records and state are private to the PostgreSQL user.
      expect((await stat(join(src.dataDir, 'pg_wal', '.pgark', 'pushed'))).mode & 0o777).toBe(0o700);
      expect((await stat(join(src.dataDir, 'pg_wal', '.pgark', 'agent', 'status.json'))).mode & 0o777).toBe(0o600);

      // 2. kill -9 in the middle of uploads, then a restart.
      // The load runs while the agent is caught (killMidUpload's own writes complete segments
      // for as long as that takes).
      const load = src.pgbench(['-T', '3', '-c', '2', '-j', '2']);
      const killed = await killMidUpload(agent, join(src.dataDir, 'pg_wal', '.pgark', 'pushed'), async () => {
        await src.psql('INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (1, 1, 1, 1, now()); SELECT pg_switch_wal()');
      });
      expect(agent.signalCode).toBe('SIGKILL');
      await load;
      agent = startAgent(src.dataDir, repo, env);
      // Serving before it is stopped below (a loaded machine can take longer to start it than
      // the checks in between take).
      const restarted = agent;
      await waitUntil('the restarted agent serving', async () => restarted.output().includes('agent: serving'), 60_000);
      await drain(src);
      await expectArchivedIdentical(src, repo, env, work);
      // The segment the agent was killed storing is archived, identical.
      const killedFetched = join(work, 'fetched', `killed-${killed.name}`);
      await pgark(['wal-fetch', killed.name, killedFetched, '--repo', repo, '--stanza', STANZA, '--prefetch', '0'], { env });
      expect((await readFile(killedFetched)).equals(killed.bytes)).toBe(true);

      // 3. The agent stopped: archive_command does the full push.
      await stopAgent(agent);
      expect(agent.exitCode, `agent exit, signal ${String(agent.signalCode)}; its output:\n${agent.output().slice(-4000)}`).toBe(0);
      const beforeStop = await src.archiverStats();
      await src.pgbench(['-T', '3', '-c', '2', '-j', '2']);
      await drain(src);
      const afterStop = await src.archiverStats();
      expect(afterStop.archived_count).toBeGreaterThan(beforeStop.archived_count);
      expect(afterStop.failed_count).toBe(beforeStop.failed_count);
      await expectArchivedIdentical(src, repo, env, work);
      await src.stop('fast');
    } finally {
      if (agent) await stopAgent(agent, 'SIGKILL');
      await started?.stop();
      await removeSharedTempDir(work).catch(() => undefined);
    }
  });
});

describe('bin/pgark-wal-push, the shell client', () => {
  it('answers from a record only for the very file stored; a changed file is a mismatch', { timeout: 300_000 }, async () => {
    const work = await makeSharedTempDir('pgark-shell-client-');
    try {
      const repo = await createRepo(join(work, 'repo'));
      const src = await PgCluster.create({ name: 'shell-client', walSegmentSizeMB: 1, conf: { archive_mode: 'on', archive_command: '/bin/true' } });
      await src.start();
      const seg = await src.switchWal();
      await src.psql('SELECT 1');
      // A private pg_wal with one ready segment (a copy of a real one), served by the agent.
      const wal = join(work, 'data', 'pg_wal');
      await mkdir(join(wal, 'archive_status'), { recursive: true });
      await copyFile(join(src.dataDir, 'pg_wal', seg), join(wal, seg));
      await writeFile(join(wal, 'archive_status', `${seg}.ready`), '');
      await runAsUser('chown', ['-R', `${pgRunAsUser() ?? 'root'}`, join(work, 'data')], { user: null }).catch(() => undefined);
      const agent = startAgent(join(work, 'data'), repo, {});
      await waitUntil('the record', async () => (await readdir(join(wal, '.pgark', 'pushed')).catch(() => [] as string[])).includes(seg), 60_000);
      await stopAgent(agent);
      const record = await readFile(join(wal, '.pgark', 'pushed', seg), 'utf8');
      expect(record).toMatch(/^v3 \d+ 1048576 \d+ \d+ [0-9a-f]{64} [0-9a-f]{16}\n$/);

      // A call archiving to another repository never takes this record for its own.
      const elsewhere = await runAsUser('/bin/sh', [SHELL_CLIENT, `pg_wal/${seg}`, '--repo', join(work, 'other-repo'), '--stanza', STANZA], { cwd: join(work, 'data'), env: { PGARK_NODE: '/bin/false' }, allowFail: true });
      expect(elsewhere.code).not.toBe(0);
      const agent1b = startAgent(join(work, 'data'), repo, {});
      await waitUntil('the record once more', async () => (await readdir(join(wal, '.pgark', 'pushed')).catch(() => [] as string[])).includes(seg), 60_000);
      await stopAgent(agent1b);

      // The record answers, without Node (PGARK_NODE=/bin/false would fail the fallback).
      const ok = await runAsUser('/bin/sh', [SHELL_CLIENT, `pg_wal/${seg}`, '--repo', repo, '--stanza', STANZA], { cwd: join(work, 'data'), env: { PGARK_NODE: '/bin/false' }, allowFail: true });
      expect(ok.code, ok.stderr).toBe(0);
      // Consumed: a second call needs the full path.
      const again = await runAsUser('/bin/sh', [SHELL_CLIENT, `pg_wal/${seg}`, '--repo', repo, '--stanza', STANZA], { cwd: join(work, 'data'), env: { PGARK_NODE: '/bin/false' }, allowFail: true });
      expect(again.code).not.toBe(0);

      // A record for the stored file, then the file replaced by different content: mismatch.
      const agent2 = startAgent(join(work, 'data'), repo, {});
      await waitUntil('the record again', async () => (await readdir(join(wal, '.pgark', 'pushed')).catch(() => [] as string[])).includes(seg), 60_000);
      await stopAgent(agent2);
      const original = await readFile(join(wal, seg));
      const changed = Buffer.from(original);
      changed.writeUInt8(changed.readUInt8(changed.length - 1) ^ 0xff, changed.length - 1);
      await writeFile(join(wal, seg), changed); // same inode and owner, new content
      const bad = await runAsUser('/bin/sh', [SHELL_CLIENT, `pg_wal/${seg}`, '--repo', repo, '--stanza', STANZA], { cwd: join(work, 'data'), env: { PGARK_NODE: process.execPath }, allowFail: true });
      expect(bad.code, bad.stderr).toBe(3);
      expect(bad.stderr).toMatch(/archive mismatch/);
      // The archived copy is the original.
      const fetched = join(work, 'fetched-original');
      await mkdir(fetched, { mode: 0o777 });
      await chmod(fetched, 0o777);
      await pgark(['wal-fetch', seg, join(fetched, seg), '--repo', repo, '--stanza', STANZA, '--prefetch', '0']);
      expect((await readFile(join(fetched, seg))).equals(original)).toBe(true);
      await src.destroy();
    } finally {
      await removeSharedTempDir(work).catch(() => undefined);
    }
  });
});

describe('bin/pgark-wal-fetch, the shell client, on a long replay', () => {
  it('replays 100+ segments, most of them served from the prefetch area without Node', { timeout: 600_000 }, async () => {
    const work = await makeSharedTempDir('pgark-replay-');
    let agent: ReturnType<typeof startAgent> | undefined;
    try {
      const repo = await createRepo(join(work, 'repo'));
      const src = await PgCluster.create({
        name: 'replay-src',
        walSegmentSizeMB: 1,
        conf: { archive_mode: 'on', archive_command: shellArchiveCommand(repo), max_wal_size: '512MB', checkpoint_timeout: '30min' },
      });
      src.serverEnv = { PGARK_NODE: process.execPath };
      await src.start();
      await src.psql('CREATE TABLE m (i int primary key, h text)');
      await drain(src);
      const base = join(work, 'base');
      await src.basebackup(base, { walMethod: 'none' });
      agent = startAgent(src.dataDir, repo, {});
      for (let i = 1; i <= 110; i++) {
        await src.psql(`INSERT INTO m VALUES (${i}, md5('${i}')); SELECT pg_switch_wal()`);
      }
      await drain(src);
      await stopAgent(agent);
      const expected = await src.psql("SELECT count(*) || ':' || md5(string_agg(h, '' ORDER BY i)) FROM m");

      // Count the Node starts of the restore_command client.
      const counter = join(work, 'node-starts');
      const wrapper = join(work, 'node-counting.sh');
      await writeFile(wrapper, `#!/bin/sh\necho x >> ${shellQuote(counter)}\nexec ${shellQuote(process.execPath)} "$@"\n`, { mode: 0o755 });
      await writeFile(counter, '', { mode: 0o666 });
      await chmod(counter, 0o666);
      const copy = await PgCluster.fromDataDir(base, {
        name: 'replay-copy',
        signal: 'recovery',
        conf: {
          archive_mode: 'off',
          restore_command: `${shellQuote(join(PROJECT_ROOT, 'bin', 'pgark-wal-fetch'))} %f %p --repo ${shellQuote(repo)} --stanza ${STANZA}`,
          recovery_target_action: 'promote',
        },
      });
      copy.serverEnv = { PGARK_NODE: wrapper };
      await copy.start({ timeoutSec: 300 });
      await waitUntil('the end of recovery', async () => (await copy.psql('SELECT pg_is_in_recovery()')) === 'f', 400_000);
      expect(await copy.psql("SELECT count(*) || ':' || md5(string_agg(h, '' ORDER BY i)) FROM m")).toBe(expected);
      const restored = ((await copy.readLog(10_000_000)).match(/restored log file "[0-9A-F]{24}" from archive/g) ?? []).length;
      expect(restored).toBeGreaterThanOrEqual(100);
      const nodeStarts = (await readFile(counter, 'utf8')).split('\n').filter(Boolean).length;
      console.log(`[replay] ${restored} segments restored, ${nodeStarts} restore_command calls started Node`);
      // One Node start: the history probe that starts recovery, which starts the serving
      // prefetch worker; everything else (the first segment, the history probes and the end of
      // the archive at the end of recovery) came from the prefetch area or the worker through
      // the shell client (before the worker served requests: 8-9 per replay).
      expect(nodeStarts).toBeLessThanOrEqual(2);
      await copy.destroy();
      await src.destroy();
    } finally {
      if (agent) await stopAgent(agent, 'SIGKILL');
      await removeSharedTempDir(work).catch(() => undefined);
    }
  });
});
