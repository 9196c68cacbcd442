/**
 * `pgark setup` and `pgark check` against real PostgreSQL 15 (pgark runs as the postgres OS
 * user, so file permissions apply):
 *  1. setup on a fresh initdb cluster: the plan names each change and what it needs; --restart
 *     applies it; a switched segment then reaches the repository; a second setup changes nothing;
 *  2. setup refuses to replace an archive_command it did not write unless --force, and names it
 *     with its file and line; --pgdata of another cluster is refused;
 *  3. check warns (exit 1) before the first backup (critical with --if-no-backup critical), passes
 *     after it (every item OK, exit 0) and fails (exit 2) with the right reason for a wrong
 *     archive_command (another stanza, /bin/true); its output is read as Nagios reads a plugin's
 *     (first line, '|' perfdata by the plugin guidelines' grammar); pgark's own failures (bad
 *     usage, an unreadable config file) are UNKNOWN (exit 3);
 *  4. on a hot standby setup adds restore_command and check skips the round trip; a receiver and
 *     its slot are reported while it streams and after it stopped;
 *  5. check fails (exit 2) naming a segment missing after the backup, and for an unwritable
 *     repository.
 * The tests of each describe build on each other, in order.
 */
import { existsSync } from 'node:fs';
import { chmod, mkdir, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storeDrillReport } from '../../src/drill/drill-store.js';
import { drillIdFor } from '../../src/repo/layout.js';
import { Repository } from '../../src/repo/repository.js';
import { openDriver } from '../../storage-drivers/registry.js';
import { chownToRunAs, destroyAllClusters, makeSharedTempDir, PgCluster, PROJECT_ROOT, runAsUser } from '../helpers/pg-cluster.js';
import { startPgark, stopPgark } from '../helpers/pgark-background.js';
import { parsePluginOutput, pluginState, type ParsedPerfDatum } from '../helpers/nagios-output.js';
import { pgark, pgarkJson } from '../helpers/pgark-run.js';
import { newUserDir, waitFor } from '../helpers/wait.js';

interface CheckJson {
  status: 'OK' | 'WARNING' | 'CRITICAL' | 'UNKNOWN';
  items: Array<{ name: string; status: string; detail: string; seconds?: number }>;
  perfdata: Array<{ label: string; value: number; uom: string; warn?: number; crit?: number; min?: number; max?: number }>;
}

/**
 * `pgark check` run as a monitoring system runs a plugin (check_nrpe passes stdout and the exit
 * code on): the exit code is one of 0-3, the first line is `PGARK <state> - ...` for that code,
 * at most 1023 bytes (NRPE 2's whole-output limit, so the status and perfdata always get through),
 * and its perfdata and the long output parse by the plugin guidelines.
 */
async function nagiosCheck(args: string[], env: Record<string, string>) {
  const r = await pgark(['check', ...args], { env, allowFail: true });
  const code = r.code ?? -1;
  expect([0, 1, 2, 3], `exit ${code}\n${r.stdout}\n${r.stderr}`).toContain(code);
  const out = parsePluginOutput(r.stdout);
  const state = pluginState(code);
  expect(out.text, r.stdout).toMatch(new RegExp(`^PGARK ${state} - `));
  expect(Buffer.byteLength(r.stdout.split('\n')[0]!), r.stdout).toBeLessThan(1024);
  const perf = (label: string): ParsedPerfDatum | undefined => out.perfdata.find((p) => p.label === label);
  expect(new Set(out.perfdata.map((p) => p.label)).size, 'perfdata labels are unique').toBe(out.perfdata.length);
  return { code, state, ...out, perf, stdout: r.stdout, stderr: r.stderr };
}

let work: string;
beforeAll(async () => {
  work = await makeSharedTempDir('pgark-ops-');
}, 60_000);
afterAll(async () => {
  await destroyAllClusters();
}, 120_000);

const newDir = (name: string): Promise<string> => newUserDir(work, name);

/** Every directory under `root` (and root) set to `mode`. */
async function chmodDirs(root: string, mode: number): Promise<void> {
  await chmod(root, mode);
  for (const e of await readdir(root, { withFileTypes: true })) if (e.isDirectory()) await chmodDirs(join(root, e.name), mode);
}

function item(r: CheckJson, name: string) {
  const i = r.items.find((x) => x.name === name);
  if (!i) throw new Error(`no item '${name}' in ${JSON.stringify(r, null, 2)}`);
  return i;
}

const autoConf = (c: PgCluster) => readFile(join(c.dataDir, 'postgresql.auto.conf'), 'utf8');

describe('pgark setup and pgark check', () => {
  let repo: string;
  let primary: PgCluster;
  const stanza = 'main';
  const env = () => primary.clientEnv();
  const repoArgs = () => ['--repo', repo, '--stanza', stanza];
  const check = async (extra: string[] = []) => {
    const r = await pgark(['check', ...repoArgs(), '--wal-timeout', '30', '--json', ...extra], { env: env(), allowFail: true });
    let json: CheckJson;
    try {
      json = JSON.parse(r.stdout) as CheckJson;
    } catch {
      throw new Error(`pgark check printed no JSON (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
    }
    return { code: r.code, json, text: JSON.stringify(json.items, null, 1) };
  };

  it('setup on a fresh cluster: plan, --restart, archiving works, a second run changes nothing', { timeout: 120_000 }, async () => {
    // Not created: setup creates the repository (as pgark repo create), once it is past its refusals.
    repo = join(work, 'repo');
    primary = await PgCluster.create({ name: 'ops', walSegmentSizeMB: 1 });
    await primary.start();
    expect(await primary.psql('SHOW archive_mode')).toBe('off');

    const dry = await pgark(['setup', ...repoArgs(), '--dry-run'], { env: env() });
    expect(dry.stdout).toMatch(/archive_mode\s+'off' -> 'on'\s+\(needs a restart\)/);
    expect(dry.stdout).toMatch(/archive_command\s+'' -> '.*' wal-push %p --repo '.*' --stanza 'main''\s+\(needs a reload\)/);
    expect(dry.stdout).toMatch(/wal_level\s+'replica'\s+ok/);
    expect(dry.stdout).toMatch(/max_wal_senders\s+'10'\s+ok/);
    expect(dry.stdout).toMatch(/dry run: would write 2 setting\(s\) with ALTER SYSTEM; a restart is needed/);
    expect(dry.stdout).toMatch(/dry run: would create pgark repository/);
    expect(existsSync(repo)).toBe(false);
    expect(await autoConf(primary)).not.toMatch(/archive/);
    expect(await primary.psql('SHOW archive_mode')).toBe('off');

    // Started through the installed launcher (here a symlink to bin/pgark, as /usr/bin/pgark is
    // in the .deb), setup writes that name: upgrades replace the files behind it, never the name.
    const launcher = join(work, 'usr-bin', 'pgark');
    await mkdir(dirname(launcher), { recursive: true, mode: 0o755 });
    await chmod(dirname(launcher), 0o755);
    await symlink(join(PROJECT_ROOT, 'bin', 'pgark'), launcher);
    const viaLauncher = await runAsUser(launcher, ['setup', ...repoArgs(), '--dry-run'], { env: { ...env(), PGARK_NODE: process.execPath } });
    expect(viaLauncher.stdout).toContain(`archive_command  '' -> ''${launcher}' wal-push %p --repo '${repo}' --stanza 'main''  (needs a reload)`);
    expect(viaLauncher.stdout).not.toContain('pgark.js');

    // A restart needs the server's log file here: the harness runs it with logging_collector off.
    const noLog = await pgark(['setup', ...repoArgs(), '--restart'], { env: env(), allowFail: true });
    expect(noLog.code).toBe(2);
    expect(noLog.stderr).toMatch(/logging_collector is off.*--server-log-file/);
    expect(existsSync(repo)).toBe(false);
    expect(await autoConf(primary)).not.toMatch(/archive/);

    const applied = await pgark(['setup', ...repoArgs(), '--restart', '--server-log-file', primary.logFile, '--archive-timeout', '300'], { env: env() });
    expect(applied.stdout).toMatch(/archive_timeout\s+'0' -> '300'\s+\(needs a reload\)/);
    // --archive-timeout is setup's old spelling of --server-archive-timeout: it still works, and warns.
    expect(applied.stderr).toMatch(/--archive-timeout is deprecated .*use --server-archive-timeout/);
    expect(applied.stdout).toMatch(/wrote 3 setting\(s\) with ALTER SYSTEM/);
    expect(applied.stdout).toContain(`created pgark repository ${repo}`);
    expect(existsSync(join(repo, '.pgark-repository'))).toBe(true);
    expect(applied.stdout).toMatch(/restarted the server/);
    expect(applied.stdout).toMatch(/every setting is in effect/);
    expect(await primary.psql('SHOW archive_mode')).toBe('on');
    expect(await primary.psql('SHOW archive_timeout')).toBe('5min');
    expect(await primary.psql('SHOW archive_command')).toMatch(/wal-push %p --repo/);

    // Archiving works: a switched segment reaches the repository.
    await primary.psql('CREATE TABLE t AS SELECT generate_series(1, 1000) AS id');
    const seg = await primary.switchWal();
    await primary.waitForArchived(seg);
    expect(existsSync(join(repo, stanza, 'wal', seg.slice(0, 8), seg.slice(0, 16), seg))).toBe(true);

    const before = await autoConf(primary);
    // The old spelling (--log-file, now pgark's own log, a global option) still names the server's log, with a warning.
    const again = await pgark(['setup', ...repoArgs(), '--server-archive-timeout', '300', '--restart', '--log-file', primary.logFile], { env: env() });
    expect(again.code).toBe(0);
    expect(again.stderr).toMatch(/WARN  pgark-setup\[\d+\]: setup: --log-file is pgark's own log file now; .*pass --server-log-file/);
    expect(again.stdout).toMatch(/nothing to change: the server is set up for pgark/);
    expect(again.stdout).not.toMatch(/restarted/);
    expect(await autoConf(primary)).toBe(before);
    const json = JSON.parse((await pgark(['setup', ...repoArgs(), '--json'], { env: env() })).stdout) as { plan: { writes: unknown[] }; pending: unknown[] };
    expect(json.plan.writes).toEqual([]);
    expect(json.pending).toEqual([]);
  });

  it('setup refuses to replace a foreign archive_command without --force, and names it', { timeout: 120_000 }, async () => {
    const other = await PgCluster.create({ name: 'foreign', walSegmentSizeMB: 1, conf: { archive_mode: 'on', archive_command: 'cp %p /nonexistent/%f' } });
    await other.start();
    const conf = (await readFile(join(other.dataDir, 'postgresql.conf'), 'utf8')).split('\n');
    const line = conf.findIndex((l) => l.startsWith('archive_command = ')) + 1;
    expect(line).toBeGreaterThan(0);
    const otherRepo = await newDir('repo-foreign');
    const args = ['setup', '--repo', otherRepo, '--stanza', 'foreign'];

    const refused = await pgark([...args, '--reload'], { env: other.clientEnv(), allowFail: true });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(`replacing archive_command 'cp %p /nonexistent/%f' set in ${other.dataDir}/postgresql.conf:${line}`);
    expect(refused.stderr).toMatch(/does not run pgark\); pass --force to replace it/);
    expect(refused.stderr).toMatch(/nothing was changed/);
    expect(await readdir(otherRepo)).toEqual([]); // and no repository created
    expect(await autoConf(other)).not.toMatch(/archive_command/);
    expect(await other.psql('SHOW archive_command')).toBe('cp %p /nonexistent/%f');

    const dry = await pgark([...args, '--force', '--dry-run'], { env: other.clientEnv() });
    expect(dry.stdout).toContain(`would be replacing archive_command 'cp %p /nonexistent/%f' set in ${other.dataDir}/postgresql.conf:${line}`);
    expect(await autoConf(other)).not.toMatch(/archive_command/);

    // --pgdata must be the server's own data directory.
    const wrongDir = await pgark([...args, '--force', '--pgdata', primary.dataDir], { env: other.clientEnv(), allowFail: true });
    expect(wrongDir.code).toBe(2);
    expect(wrongDir.stderr).toMatch(/is not the data directory of the server you connected to/);

    const forced = await pgark([...args, '--force', '--reload', '--pgdata', other.dataDir], { env: other.clientEnv() });
    expect(forced.stdout).toContain(`replacing archive_command 'cp %p /nonexistent/%f' set in ${other.dataDir}/postgresql.conf:${line}`);
    expect(forced.stdout).toMatch(/reloaded the configuration/);
    expect(await other.psql('SHOW archive_command')).toMatch(/wal-push %p --repo .* --stanza 'foreign'/);
    await other.destroy();
  });

  it('check passes on the configured cluster after a backup', { timeout: 120_000 }, async () => {
    // Archiving works, no backup yet: WARNING (exit 1), CRITICAL only when told so.
    const before = await check();
    expect(before.code, before.text).toBe(1);
    expect(before.json.status).toBe('WARNING');
    expect(item(before.json, 'backups')).toMatchObject({ status: 'WARNING', detail: expect.stringMatching(/^none yet \(no backup/) });
    expect(item(before.json, 'wal_continuity')).toMatchObject({ status: 'OK', detail: 'nothing to check: there is no backup yet' });
    expect(before.json.perfdata.map((p) => p.label)).not.toContain('backup_age');
    const warnNagios = await nagiosCheck(repoArgs(), env());
    expect(warnNagios.code).toBe(1);
    expect(warnNagios.text).toBe('PGARK WARNING - 1 warning, 9 ok: backups: none yet');
    expect(warnNagios.perf('backup_age')).toBeUndefined();
    expect(warnNagios.perf('archived')).toMatchObject({ uom: 'c', min: 0, value: expect.any(Number) });
    expect(warnNagios.perf('archived')!.value).toBeGreaterThan(0);
    expect(warnNagios.perf('archive_failed')).toEqual({ label: 'archive_failed', value: 0, uom: 'c', min: 0 });
    // The checks connect as superuser: pg_ls_archive_statusdir() is allowed, so the lag is known.
    expect(warnNagios.perf('archive_lag_segments')).toMatchObject({ uom: '', min: 0 });
    expect(warnNagios.perf('archive_lag')).toMatchObject({ uom: 's', min: 0 });
    expect(warnNagios.longOutput).toContain('[WARNING] backups: none yet (no backup in the stanza: take one with pgark backup)');
    const strict = await nagiosCheck([...repoArgs(), '--no-switch', '--if-no-backup', 'critical'], env());
    expect(strict.code).toBe(2);
    expect(strict.text).toBe('PGARK CRITICAL - 1 critical, 9 ok: backups: none yet');

    await pgark(['backup', ...repoArgs(), '--pgdata', primary.dataDir, '--no-progress'], { env: env() });
    const r = await check();
    expect(r.json.status, r.text).toBe('OK');
    expect(r.code).toBe(0);
    expect(r.json.items.map((i) => i.name)).toEqual([
      'configuration', 'postgresql', 'repository', 'stanza', 'archive_mode', 'archive_command', 'wal_round_trip', 'archiver', 'backups', 'wal_continuity',
    ]);
    expect(r.json.items.every((i) => i.status === 'OK')).toBe(true);
    expect(item(r.json, 'wal_round_trip').seconds).toBeGreaterThanOrEqual(0);
    expect(item(r.json, 'wal_round_trip').detail).toMatch(/^[0-9A-F]{24} reached the repository/);
    expect(item(r.json, 'stanza').detail).toMatch(/bound to this cluster/);
    expect(item(r.json, 'wal_continuity').detail).toMatch(/archived without a gap since backup \d{8}-\d{6}F/);

    // --no-switch: no pg_switch_wal(), so no WAL switch record; the rest is the same. (The
    // segment name alone is no proof: archive_timeout, 5 min here, or background WAL filling a
    // 1 MB segment may move it on a slow machine.)
    const lsnBefore = await primary.psql('SELECT pg_current_wal_lsn()');
    const quick = await check(['--no-switch']);
    expect(quick.code, quick.text).toBe(0);
    expect(item(quick.json, 'wal_round_trip').detail).toMatch(/skipped: --no-switch/);
    await primary.psql('SELECT pg_logical_emit_message(true, \'pgark-test\', \'after check\')');
    const lsnAfter = await primary.psql('SELECT pg_current_wal_lsn()');
    const dump = await primary.runServerTool('pg_waldump', ['-p', join(primary.dataDir, 'pg_wal'), '-s', lsnBefore, '-e', lsnAfter, '-r', 'XLOG'], { allowFail: true });
    expect(dump.stderr, dump.stderr).not.toMatch(/could not find a valid record|invalid/i);
    expect(dump.stdout).not.toMatch(/\bSWITCH\b/);

    const human = await nagiosCheck(repoArgs(), env());
    expect(human.code).toBe(0);
    expect(human.text).toBe('PGARK OK - 10 ok');
    expect(human.longOutput).toHaveLength(10);
    expect(human.longOutput).toContainEqual(expect.stringMatching(/^\[OK\] archive_command: archive_command runs pgark wal-push for repository/));
    // Backup age in seconds with the --backup-warn/--backup-crit defaults (26h, 50h) as thresholds.
    const age = human.perf('backup_age')!;
    expect(age).toMatchObject({ uom: 's', warn: '93600', crit: '180000', min: 0 });
    expect(age.value).toBeGreaterThanOrEqual(0);
    expect(age.value).toBeLessThan(600);
    expect(human.perf('wal_window_segments')).toMatchObject({ uom: '', min: 0 });
    expect(human.perf('wal_window_segments')!.value).toBeGreaterThanOrEqual(2);
    expect(human.perf('archive_lag_segments')).toMatchObject({ uom: '', min: 0 });
    expect(human.perf('last_drill_age')).toBeUndefined(); // no drill yet: unknown, left out
    // A drill that ended an hour ago (its report stored as pgark drill stores it): last_drill_age.
    const ended = Date.now() - 3600_000;
    const driver = await openDriver(repo);
    const store = new Repository(driver, stanza, { attempts: 1, budgetMs: 0 });
    try {
      await storeDrillReport(store, {
        id: drillIdFor(new Date(ended - 60_000)), stanza, host: 'test', startedAt: new Date(ended - 60_000).toISOString(), finishedAt: new Date(ended).toISOString(),
        target: { kind: 'latest' }, result: 'passed', phases: { restoreSec: 30 }, rpo: {}, checks: [],
      });
    } finally {
      await store.close();
    }
    await chownToRunAs(join(repo, stanza, 'drill'));
    const drilled = await nagiosCheck([...repoArgs(), '--no-switch'], env());
    expect(drilled.code, drilled.stdout).toBe(0);
    const drillAge = drilled.perf('last_drill_age')!;
    expect(drillAge).toMatchObject({ uom: 's', min: 0 });
    expect(drillAge.value).toBeGreaterThanOrEqual(3600);
    expect(drillAge.value).toBeLessThan(3600 + 300);
    // --json carries the same perfdata.
    expect(r.json.perfdata.map((p) => p.label).sort()).toEqual(human.perfdata.map((p) => p.label).sort());

    // A threshold the backup is older than warns (exit 1). Its age is counted from its stop time.
    const stop = Date.parse((JSON.parse((await pgark(['show', 'latest', ...repoArgs(), '--json'])).stdout) as { stop: { time: string } }).stop.time);
    await waitFor(async () => Date.now() - stop > 2500, 'the backup to be 2.5 s old', 15_000, 100);
    const warn = await check(['--backup-warn', '2s', '--backup-crit', '7d']);
    expect(warn.code, warn.text).toBe(1);
    expect(item(warn.json, 'backups')).toMatchObject({ status: 'WARNING', detail: expect.stringMatching(/warning above 2s/) });
  });

  it('check fails with the reason for a wrong archive_command; setup names it and --force repairs it', { timeout: 120_000 }, async () => {
    const ours = await primary.psql('SHOW archive_command');
    const otherStanza = ours.replace("--stanza 'main'", "--stanza 'other'");
    expect(otherStanza).not.toBe(ours);
    await primary.psql(`ALTER SYSTEM SET archive_command = '${otherStanza.replace(/'/g, "''")}'; SELECT pg_reload_conf()`);
    await waitFor(async () => (await primary.psql('SHOW archive_command')) === otherStanza, 'the reload', 15_000, 100);
    const wrongStanza = await check();
    expect(wrongStanza.code).toBe(2);
    expect(item(wrongStanza.json, 'archive_command')).toMatchObject({ status: 'CRITICAL', detail: "archive_command uses stanza 'other', not 'main'" });
    expect(item(wrongStanza.json, 'wal_round_trip').detail).toMatch(/not tried: archive_command does not archive to this repository and stanza/);

    await primary.psql("ALTER SYSTEM SET archive_command = '/bin/true'; SELECT pg_reload_conf()");
    await waitFor(async () => (await primary.psql('SHOW archive_command')) === '/bin/true', 'the reload', 15_000, 100);
    const trueCmd = await check();
    expect(trueCmd.code).toBe(2);
    expect(item(trueCmd.json, 'archive_command')).toMatchObject({ status: 'CRITICAL', detail: "archive_command '/bin/true' does not run pgark" });
    const crit = await nagiosCheck([...repoArgs(), '--wal-timeout', '30'], env());
    expect(crit.code).toBe(2);
    expect(crit.text).toBe("PGARK CRITICAL - 2 critical, 8 ok: archive_command: archive_command '/bin/true' does not run pgark; " +
      'wal_round_trip: not tried: archive_command does not archive to this repository and stanza');
    expect(crit.perf('backup_age')?.uom).toBe('s');

    const refused = await pgark(['setup', ...repoArgs(), '--reload'], { env: env(), allowFail: true });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/replacing archive_command '\/bin\/true' set in .*postgresql\.auto\.conf:\d+/);
    const repaired = await pgark(['setup', ...repoArgs(), '--reload', '--force'], { env: env() });
    expect(repaired.stdout).toMatch(/every setting is in effect/);
    expect(await primary.psql('SHOW archive_command')).toBe(ours);
    expect((await check()).code).toBe(0);
  });

  it('on a standby: setup adds restore_command, check skips the WAL round trip', { timeout: 120_000 }, async () => {
    const dir = join(work, 'standby');
    await primary.basebackup(dir, { walMethod: 'stream', extraArgs: ['-R'] });
    const standby = await PgCluster.fromDataDir(dir, { name: 'ops-standby', ownsDataDir: true });
    await standby.start();
    try {
      expect(await standby.psql('SELECT pg_is_in_recovery()')).toBe('t');
      const dry = await pgark(['setup', ...repoArgs(), '--dry-run'], { env: standby.clientEnv() });
      expect(dry.stdout).toMatch(/PostgreSQL 15 standby/);
      expect(dry.stdout).toMatch(/restore_command\s+'' -> '.*' wal-fetch %f %p --repo '.*' --stanza 'main''\s+\(needs a reload\)/);
      expect(dry.stdout).toMatch(/archive_command\s+'.*'\s+ok/);
      await pgark(['setup', ...repoArgs(), '--reload'], { env: standby.clientEnv() });
      expect(await standby.psql('SHOW restore_command')).toMatch(/wal-fetch %f %p --repo/);
      expect((await pgark(['setup', ...repoArgs()], { env: standby.clientEnv() })).stdout).toMatch(/nothing to change/);

      const r = await pgark(['check', ...repoArgs(), '--json'], { env: standby.clientEnv(), allowFail: true });
      const json = JSON.parse(r.stdout) as CheckJson;
      expect(r.code, r.stdout).toBe(0);
      expect(item(json, 'wal_round_trip').detail).toMatch(/^skipped: the server is a standby/);
      expect(item(json, 'archive_mode').detail).toMatch(/a standby archives only once promoted/);
      expect(item(json, 'stanza').status).toBe('OK');
    } finally {
      await standby.destroy();
    }
  });

  it('check reports a receiver and its slot', { timeout: 120_000 }, async () => {
    const recv = ['--stanza', 'recv'];
    const r = startPgark(['receive', '--repo', repo, ...recv, '--dsn', `host=127.0.0.1 port=${primary.port} user=postgres`,
      '--spool-dir', join(work, 'spool'), '--slot', 'pgark_ops', '--create-slot', '--status-interval', '1']);
    try {
      await waitFor(async () => {
        const info = await pgarkJson<{ receivers: Array<{ state: string }> }>(['info', '--repo', repo, ...recv]).catch(() => ({ receivers: [] }));
        return info.receivers[0]?.state === 'streaming';
      }, 'the receiver to stream', 30_000, 100);
      const live = await check(recv);
      expect(item(live.json, 'receiver pgark')).toMatchObject({ status: 'OK', detail: expect.stringMatching(/^streaming on /) });
      expect(item(live.json, 'slot pgark_ops')).toMatchObject({ status: 'OK', detail: expect.stringMatching(/^active, retains/) });
      // This stanza is not the one archive_command writes to.
      expect(item(live.json, 'archive_command').detail).toBe("archive_command uses stanza 'main', not 'recv'");

      expect(await stopPgark(r)).toBe(0);
      const stopped = await check(recv);
      expect(stopped.code).toBe(2);
      expect(item(stopped.json, 'receiver pgark')).toMatchObject({ status: 'WARNING', detail: expect.stringMatching(/^stopped on .* \(a clean stop\)/) });
      expect(item(stopped.json, 'slot pgark_ops')).toMatchObject({ status: 'CRITICAL', detail: expect.stringMatching(/^not active: no receiver is connected/) });
    } finally {
      await stopPgark(r, 'SIGKILL');
      await primary.psql("SELECT pg_drop_replication_slot('pgark_ops')").catch(() => undefined);
    }
  });

  it('check fails naming a segment missing since the backup', { timeout: 120_000 }, async () => {
    const show = JSON.parse((await pgark(['show', 'latest', ...repoArgs(), '--json'])).stdout) as { walRange: { first: string; last: string } };
    const gone = show.walRange.last;
    await primary.psql('INSERT INTO t SELECT generate_series(1, 1000)');
    await primary.waitForArchived(await primary.switchWal());
    const path = join(repo, stanza, 'wal', gone.slice(0, 8), gone.slice(0, 16), gone);
    expect(existsSync(path)).toBe(true);
    await rm(path);
    const r = await check();
    expect(r.code).toBe(2);
    const continuity = item(r.json, 'wal_continuity');
    expect(continuity.status).toBe('CRITICAL');
    expect(continuity.detail).toMatch(new RegExp(`1 segment\\(s\\) missing between ${show.walRange.first} and [0-9A-F]{24} since backup .*: ${gone};`));
    expect(r.json.items.filter((i) => i.status !== 'OK').map((i) => i.name)).toEqual(['wal_continuity']);
    const n = await nagiosCheck([...repoArgs(), '--no-switch'], env());
    expect(n.code).toBe(2);
    expect(n.text).toMatch(new RegExp(`^PGARK CRITICAL - 1 critical, 9 ok: wal_continuity: 1 segment\\(s\\) missing between ${show.walRange.first} and [0-9A-F]{24} since backup \\S+: ${gone}$`));
    expect(n.perf('wal_window_segments')).toBeUndefined(); // not a window with a gap in it
    expect(n.perf('backup_age')).toBeDefined();
  });

  it("check is UNKNOWN (exit 3) for pgark's own failures: bad usage, an unreadable config file", { timeout: 120_000 }, async () => {
    for (const args of [['--bogus'], ['--wal-timeout', 'soon'], ['--if-no-backup', 'maybe'], ['--backup-warn', '3d', '--backup-crit', '1d']]) {
      const r = await nagiosCheck([...repoArgs(), ...args], env());
      expect(r.code, r.stdout + r.stderr).toBe(3);
      expect(r.perfdata).toEqual([]);
    }
    expect((await nagiosCheck([...repoArgs(), '--bogus'], env())).text).toBe("PGARK UNKNOWN - usage: unknown option '--bogus'");
    const conf = join(work, 'unreadable.conf');
    await writeFile(conf, `[global]\nrepo = ${repo}\n`, { mode: 0o600 });
    await chmod(conf, 0o000);
    const unreadable = await nagiosCheck(['--config', conf], env());
    expect(unreadable.code).toBe(3);
    expect(unreadable.text).toMatch(new RegExp(`^PGARK UNKNOWN - 1 unknown: configuration: unable to read config file '${conf}': EACCES`));
    const json = await pgark(['check', '--config', conf, '--json'], { env: env(), allowFail: true });
    expect(json.code).toBe(3);
    expect(JSON.parse(json.stdout)).toMatchObject({ status: 'UNKNOWN', items: [{ name: 'configuration', status: 'UNKNOWN' }], perfdata: [] });
    // Other commands keep pgark's codes: a usage error of backup is still 2.
    expect((await pgark(['backup', '--bogus'], { env: env(), allowFail: true })).code).toBe(2);
  });

  it('check fails when the repository is not writable', { timeout: 120_000 }, async () => {
    await chmodDirs(repo, 0o500);
    try {
      const r = await check();
      expect(r.code).toBe(2);
      expect(item(r.json, 'repository')).toMatchObject({ status: 'CRITICAL', detail: expect.stringMatching(/not writable: .*EACCES/) });
      expect(item(r.json, 'wal_round_trip').detail).toBe('not tried: the repository is not writable');
      expect(item(r.json, 'stanza').status).toBe('OK');
    } finally {
      await chmodDirs(repo, 0o700);
    }
  });
});

