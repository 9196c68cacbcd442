/**
 * Every `--json` output against its documented JSON Schema (docs/json-schema, docs/JSON.md),
 * from the real commands: one PostgreSQL 15 cluster archiving with pgark into a filesystem
 * repository. sets/slots (logical replication between two clusters) are validated in
 * sets-admin and sets-native, drill/drills/promote in clone-drill; test/unit/json-formats.test.ts
 * checks that every command with --json is validated somewhere.
 * Also: a stanza that does not exist is the same error (exit 8, one message) for every command
 * that reads one.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { archiveCommand, chownToRunAs, destroyAllClusters, makeSharedTempDir, PgCluster } from '../helpers/pg-cluster.js';
import { startPgark, stopPgark } from '../helpers/pgark-background.js';
import { pgark } from '../helpers/pgark-run.js';
import { expectJsonFormat } from '../helpers/json-schema.js';
import { waitUntil } from '../helpers/wait.js';

const STANZA = 'main';
let pgc: PgCluster;
let repo: string;
let work: string;
let env: Record<string, string>;

beforeAll(async () => {
  work = await makeSharedTempDir('pgark-json-');
  repo = join(work, 'repo');
  pgc = await PgCluster.create({
    name: 'json-formats',
    conf: { archive_mode: 'on', archive_command: archiveCommand({ repo, stanza: STANZA }), max_wal_size: '1GB', checkpoint_timeout: '1h', autovacuum: 'off' },
  });
  env = { PGHOST: pgc.socketDir, PGPORT: String(pgc.port), PGUSER: 'postgres', PGDATABASE: 'postgres' };
}, 120_000);
afterAll(async () => {
  await destroyAllClusters();
}, 120_000);

const repoArgs = (stanza = STANZA) => ['--repo', repo, '--stanza', stanza];

/** Run `args --json` and validate the output against the command's schema. */
async function json<T = Record<string, unknown>>(thing: string, args: string[], o: { allowFail?: boolean } = {}): Promise<T> {
  const r = await pgark([...args, '--json'], { env, allowFail: o.allowFail ?? false, timeoutMs: 180_000 });
  return expectJsonFormat<T>(r.stdout, thing);
}

describe('--json outputs match docs/json-schema', () => {
  it('version', async () => {
    const v = await json<{ pgark: string }>('version', ['version']);
    expect(v.pgark).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('repo create (first and second run)', async () => {
    expect((await json<{ created: boolean }>('repo-create', ['repo', 'create', '--repo', repo])).created).toBe(true);
    expect((await json<{ created: boolean }>('repo-create', ['repo', 'create', '--repo', repo])).created).toBe(false);
  });

  it('check: UNKNOWN with the error when pgark cannot check (bad usage)', async () => {
    const c = await json<{ status: string; error: string; items: unknown[] }>('check', ['check', ...repoArgs(), '--no-switch', '--if-no-backup', 'bogus'], { allowFail: true });
    expect(c).toMatchObject({ status: 'UNKNOWN', items: [] });
    expect(c.error).toContain('--if-no-backup');
  });

  it('setup, then check, wal-push, backup, list, show, info, wal-verify, wal-log, check-repo, verify', async () => {
    await pgc.start();
    await pgc.pgbench(['-i', '-s', '1', '-q']);
    const setup = await json<{ dryRun: boolean }>('setup', ['setup', ...repoArgs(), '--dry-run']);
    expect(setup.dryRun).toBe(true);
    const seg = await pgc.switchWal();
    await pgc.waitForArchived(seg, 60_000);
    const push = await json<{ name: string; status: string }>('wal-push', ['wal-push', join(pgc.dataDir, 'pg_wal', seg), ...repoArgs()]);
    expect(push).toMatchObject({ name: seg, status: 'exists' });
    const check = await json<{ status: string; items: unknown[] }>('check', ['check', ...repoArgs(), '--wal-timeout', '60'], { allowFail: true });
    expect(check.items.length).toBeGreaterThan(3);

    const full = await json<{ id: string; type: string; kept: boolean }>('backup', ['backup', ...repoArgs(), '--type', 'full', '--no-progress']);
    expect(full).toMatchObject({ type: 'full', kept: false });
    await pgc.psql('UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid % 50 = 0');
    const incr = await json<{ id: string; parent: string }>('backup', ['backup', ...repoArgs(), '--type', 'incr', '--keep', '--no-progress']);
    expect(incr.parent).toBe(full.id);
    const seg2 = await pgc.switchWal();
    await pgc.waitForArchived(seg2, 60_000);

    const list = await json<{ stanza: string; backups: Array<{ id: string; kept: boolean }> }>('list', ['list', ...repoArgs()]);
    expect(list.stanza).toBe(STANZA);
    expect(list.backups.map((b) => [b.id, b.kept])).toEqual([[full.id, false], [incr.id, true]]);
    const show = await json<{ id: string; files: unknown[] }>('show', ['show', 'latest', '--files', ...repoArgs()]);
    expect(show.id).toBe(incr.id);
    expect(show.files.length).toBeGreaterThan(100);
    await json('show', ['show', full.id, ...repoArgs()]);

    const info = await json<{ backups: Array<{ id: string }>; agent: { running: boolean } }>('info', ['info', ...repoArgs(), '--pgdata', pgc.dataDir]);
    expect(info.backups.map((b) => b.id)).toEqual([full.id, incr.id]);
    expect(info.agent.running).toBe(false);
    expect((await pgark(['info', ...repoArgs()], { env })).stdout).toContain(`backups: 2; newest ${incr.id} (incr)`);

    expect((await json<{ ok: boolean }>('wal-verify', ['wal-verify', '--read', ...repoArgs()])).ok).toBe(true);
    const log = await json<{ events: Array<{ op: string; name: string }> }>('wal-log', ['wal-log', '--since', '1h', ...repoArgs()]);
    expect(log.events.some((e) => e.op === 'push-exists' && e.name === seg)).toBe(true);
    expect((await json<{ ok: boolean }>('check-repo', ['check-repo', ...repoArgs()])).ok).toBe(true);
    expect((await json<{ ok: boolean }>('verify', ['verify', ...repoArgs()])).ok).toBe(true);
  }, 600_000);

  it('expire --dry-run and expire; drills with none stored', async () => {
    const dry = await json<{ removed: unknown; wouldRemove: { backups: string[] } }>('expire', ['expire', '--retain-full', '1', '--dry-run', ...repoArgs()]);
    expect(dry.removed).toEqual({ backups: [], uncommitted: [], wal: { files: 0, bytes: 0 } });
    expect(dry.wouldRemove.backups).toEqual([]);
    const real = await json<{ wouldRemove?: unknown }>('expire', ['expire', '--retain-full', '1', ...repoArgs()]);
    expect(real.wouldRemove).toBeUndefined();
    expect((await json<{ drills: unknown[] }>('drills', ['drills', ...repoArgs()])).drills).toEqual([]);
  }, 300_000);

  it('restore and clone into new directories', async () => {
    const dir = join(work, 'restored');
    const r = await json<{ pgdata: string; settings: Record<string, string> }>('restore', ['restore', 'latest', ...repoArgs(), '--pgdata', dir, '--target-immediate', '--no-progress']);
    expect(r.pgdata).toBe(dir);
    expect(r.settings.restore_command).toContain('wal-fetch');
    const cl = join(work, 'clone');
    const c = await json<{ started: boolean; signal: string }>('clone', ['clone', ...repoArgs(), '--pgdata', cl, '--primary-conninfo', `host=${pgc.socketDir} port=${pgc.port} user=postgres`, '--no-progress']);
    expect(c).toMatchObject({ started: false, signal: 'standby.signal' });
  }, 300_000);

  it('agent and receive print their final status when stopped', async () => {
    const agent = startPgark(['agent', ...repoArgs(), '--pgdata', pgc.dataDir, '--poll-ms', '100', '--json'], env);
    // The agent publishes its status file once it watches pg_wal.
    await waitUntil('the agent to run', async () => JSON.parse((await pgark(['info', ...repoArgs(), '--pgdata', pgc.dataDir, '--json'], { env })).stdout).agent.running === true, 60_000, agent.output);
    expect(await stopPgark(agent)).toBe(0);
    const a = expectJsonFormat<{ pid: number; stanza: string }>(agent.stdout(), 'agent');
    expect(a.stanza).toBe(STANZA);

    const spool = join(work, 'spool');
    await mkdir(spool, { recursive: true });
    await chownToRunAs(spool);
    const recv = startPgark(['receive', ...repoArgs(), '--dsn', `host=${pgc.socketDir} port=${pgc.port} user=postgres`, '--spool-dir', join(spool, 'r'),
      '--status-interval', '1', '--log-level', 'info', '--json'], env);
    await waitUntil('receiver streaming', async () => /receive: (resuming|nothing stored yet)/.test(recv.output()) || recv.exitCode !== null, 60_000, recv.output);
    await new Promise((r) => setTimeout(r, 1500));
    await stopPgark(recv);
    const s = expectJsonFormat<{ name: string; state: string }>(recv.stdout(), 'receive');
    expect(s.state).toBe('stopped');
  }, 300_000);
});

describe('a stanza that does not exist', () => {
  const READ_COMMANDS: string[][] = [
    ['info'], ['list'], ['show', 'latest'], ['verify'], ['wal-verify'], ['wal-log'], ['drills'], ['expire', '--retain-full', '1'], ['keep', 'latest'], ['delete', 'latest'],
  ];
  it.each(READ_COMMANDS)('%s: exit 8, the same message, nothing on stdout', async (...cmd: string[]) => {
    for (const json of [[], ['--json']]) {
      if (json.length && ['keep', 'delete'].includes(cmd[0]!)) continue;
      const r = await pgark([...cmd, ...repoArgs('other'), ...json], { env, allowFail: true });
      expect(r.code, r.stderr).toBe(8);
      expect(r.stdout).toBe('');
      expect(r.stderr).toContain(`stanza 'other' does not exist in repository '${repo}' (it is created by the first wal-push or backup)`);
    }
  });
});
