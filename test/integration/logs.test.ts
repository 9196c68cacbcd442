/**
 * pgark's log against a real PostgreSQL 15 cluster (issue 19 item 3):
 *  1. a backup with --log-file and --log-level debug appends phase lines with durations to the
 *     file (0600, its new directories 0700), every line in the one format; stderr keeps to warn;
 *  2. --log-level trace adds each file's decision (stored, unchanged since the parent, excluded);
 *  3. every error path prints the same line format, `[<exit code>] <message>`, to stderr and to
 *     the log file, and no secret.
 */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseLogLine } from '../../src/common/log-format.js';
import { archiveCommand, connEnv, destroyAllClusters, makeSharedTempDir, PgCluster } from '../helpers/pg-cluster.js';
import { pgark } from '../helpers/pgark-run.js';
import { createRepo } from '../helpers/repo.js';

let work: string;
let repo: string;
let c: PgCluster;
const base = () => ['--repo', repo, '--stanza', 'logs'];
const env = () => connEnv(c);

beforeAll(async () => {
  work = await makeSharedTempDir('pgark-logs-');
  repo = await createRepo(await makeSharedTempDir('pgark-logs-repo-'));
  c = await PgCluster.create({ name: 'logs', conf: { archive_mode: 'on', archive_command: archiveCommand({ repo, stanza: 'logs' }) } });
  await c.start();
  await c.psql('CREATE TABLE t (id int PRIMARY KEY, v text)');
  await c.psql("INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 5000) g");
}, 180_000);
afterAll(async () => {
  await destroyAllClusters();
}, 120_000);

async function logLines(path: string) {
  const text = await readFile(path, 'utf8');
  const lines = text.trimEnd().split('\n');
  for (const l of lines) expect(parseLogLine(l), l).toBeDefined();
  return lines.map((l) => parseLogLine(l)!);
}

describe('log file and levels', () => {
  const logFile = () => join(work, 'log', 'cron', 'pgark.log');

  it('backup --log-file F --log-level debug: phases with durations in F, stderr at most warn', async () => {
    const r = await pgark(['backup', ...base(), '--pgdata', c.dataDir, '--type', 'full', '--no-progress', '--log-file', logFile(), '--log-level', 'debug'], { env: env() });
    expect(r.stderr).not.toMatch(/DEBUG|INFO /);
    expect((await stat(logFile())).mode & 0o777).toBe(0o600);
    expect((await stat(join(work, 'log', 'cron'))).mode & 0o777).toBe(0o700);
    expect((await stat(join(work, 'log'))).mode & 0o777).toBe(0o700);
    const lines = await logLines(logFile());
    expect(lines.every((l) => l.command === 'backup')).toBe(true);
    const debug = lines.filter((l) => l.level === 'debug').map((l) => l.message);
    for (const phase of ['connect and check the server', 'lock and plan', 'pg_backup_start', 'walk the data directory', 'copy files', 'pg_backup_stop', 'wait for WAL in the repository', 'backup_label and manifest', 'catalog entry']) {
      expect(debug.some((m) => new RegExp(`^backup: ${phase} took \\d+\\.\\d{3}s`).test(m)), phase).toBe(true);
    }
    expect(debug.some((m) => /^backup: done in \d+\.\d{3}s \(backup \d{8}-\d{6}F\): connect and check the server \d+\.\d{3}s, .*catalog entry \d+\.\d{3}s$/.test(m))).toBe(true);
    expect(lines.some((l) => l.level === 'info' && /^backup \d{8}-\d{6}F: started at/.test(l.message))).toBe(true);
    expect(lines.some((l) => l.level === 'trace')).toBe(false);
  }, 180_000);

  it('--log-level trace (from the config file): each file\'s decision, appended to the same file', async () => {
    const before = (await readFile(logFile(), 'utf8')).length;
    await c.psql("UPDATE t SET v = 'changed' WHERE id = 1");
    const cfg = join(work, 'pgark.conf');
    const { writeFile } = await import('node:fs/promises');
    await writeFile(cfg, `[global]   # for the scheduled backup\nlog-file = ${logFile()}\nlog-level = trace\n`, { mode: 0o644 });
    const r = await pgark(['backup', ...base(), '--config', cfg, '--pgdata', c.dataDir, '--type', 'incr', '--no-progress'], { env: env() });
    expect(r.stderr).not.toMatch(/TRACE|DEBUG/);
    const text = await readFile(logFile(), 'utf8');
    expect(text.length).toBeGreaterThan(before);
    const lines = await logLines(logFile());
    const trace = lines.filter((l) => l.level === 'trace').map((l) => l.message);
    expect(trace.some((m) => /^backup: global\/pg_control: 8192 bytes, stored in object \d+$/.test(m))).toBe(true);
    expect(trace.some((m) => /^backup: \S+: \d+ bytes, unchanged since \d{8}-\d{6}F: its copy is used$/.test(m))).toBe(true);
    expect(trace.some((m) => /^backup: file postmaster\.pid excluded: /.test(m))).toBe(true);
    expect(lines.some((l) => l.level === 'debug' && /^backup: done in .*\(backup \d{8}-\d{6}I\)/.test(l.message))).toBe(true);
  }, 180_000);

  it('expire, verify and restore log their phases too', async () => {
    const f = join(work, 'ops.log');
    await pgark(['verify', ...base(), '--log-file', f, '--log-level', 'debug']);
    await pgark(['expire', ...base(), '--retain-full', '5', '--log-file', f, '--log-level', 'debug']);
    const target = join(work, 'restored');
    await pgark(['restore', ...base(), '--pgdata', target, '--no-progress', '--log-file', f, '--log-level', 'debug']);
    const lines = await logLines(f);
    const by = (cmd: string) => lines.filter((l) => l.command === cmd && l.level === 'debug').map((l) => l.message);
    expect(by('verify').some((m) => /^verify: done in \d+\.\d{3}s \(\d+ objects read/.test(m))).toBe(true);
    expect(by('expire').some((m) => /^expire: lock, catalog and plan took \d+\.\d{3}s \(2 backups, 2 kept, 0 to expire\)$/.test(m))).toBe(true);
    expect(by('restore').some((m) => /^restore: copy files took \d+\.\d{3}s/.test(m))).toBe(true);
    expect(by('restore').some((m) => /^restore: done in \d+\.\d{3}s/.test(m))).toBe(true);
  }, 240_000);
});

describe('every error path prints one format', () => {
  const failures: Array<[string, string[], Record<string, string>, number, number, RegExp]> = [
    ['usage: unknown option', ['list', '--bogus'], {}, 2, 2, /^unknown option '--bogus'$/],
    ['usage: unknown command', ['no-such-command'], {}, 2, 2, /unknown command 'no-such-command'/],
    ['config file value', ['list', '--config', '@BAD_CONFIG@'], {}, 2, 2, /^invalid value 'lots' for 'jobs' \(from .*bad\.conf:2\): expected an integer$/],
    ['not a repository', ['info', '--repo', '/tmp/pgark-no-such-repo-logs'], {}, 9, 9, /^no pgark repository at '\/tmp\/pgark-no-such-repo-logs'/],
    ['missing stanza', ['info', '--repo', '@REPO@', '--stanza', 'ghost'], {}, 8, 8, /stanza 'ghost' does not exist/],
    ['a password in a connection string', ['backup', '--repo', '@REPO@', '--dsn', 'host=/tmp password=hunter2'], {}, 2, 2, /password/],
    ['check: usage is UNKNOWN', ['check', '--bogus'], {}, 3, 3, /^unknown option '--bogus'$/],
    ['wal-fetch: usage is fatal for recovery (200 + code)', ['wal-fetch', '000000010000000000000001', '/tmp/x', '--repo', '/tmp/r', '--bogus'], {}, 202, 2, /^unknown option '--bogus'$/],
    ['repository from the environment', ['list'], { PGARK_REPO: 'not/absolute' }, 2, 2, /^invalid repository 'not\/absolute' \(from (--repo|PGARK_REPO)\)/],
  ];

  it.each(failures)('%s', async (_name, args, env, exit, code, message) => {
    const { writeFile } = await import('node:fs/promises');
    const bad = join(work, 'bad.conf');
    await writeFile(bad, '[global]\njobs = lots\n', { mode: 0o644 });
    const f = join(work, 'errors.log');
    const argv = args.map((a) => a.replace('@BAD_CONFIG@', bad).replace('@REPO@', repo));
    const r = await pgark([...argv, '--log-file', f], { allowFail: true, env });
    expect(r.code).toBe(exit);
    const lines = r.stderr.trimEnd().split('\n').filter((l) => l !== '(run with --help for usage)');
    expect(lines.length).toBeGreaterThan(0);
    const first = parseLogLine(lines[0]!);
    expect(first, r.stderr).toBeDefined();
    expect(first!.level).toBe('error');
    expect(first!.message.startsWith(`[${code}] `)).toBe(true);
    expect(first!.message.slice(`[${code}] `.length)).toMatch(message);
    for (const l of lines) expect(parseLogLine(l), l).toBeDefined();
    expect(r.stderr).not.toContain('hunter2');
    // The error reaches the log file too once the settings that name it are resolved.
    if (exit === 8 || exit === 9) {
      expect(await readFile(f, 'utf8')).toContain(lines[0]!.slice(lines[0]!.indexOf(']: ') + 3));
    }
  }, 60_000);
});
