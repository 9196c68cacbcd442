/** CLI wiring of `pgark setup` and `pgark check`. Implementations load only when a command runs. */
import type { Command } from 'commander';
import { causeText, ConfigError, ExitCode, exitCodeOf } from '../common/errors.js';
import { openRepository, printJson, settingsFrom, withRepository } from './context.js';
import { withFormat } from '../json/format.js';
import { ExitWith } from './exit.js';
import type { SetupOutcome } from '../ops/setup.js';
import { intOption } from './options.js';

function printSetup(out: SetupOutcome, describeReplacement: (i: SetupOutcome['plan']['items'][number]) => string): void {
  const w = (s: string) => process.stdout.write(s + '\n');
  const s = out.server;
  w(`server: PostgreSQL ${s.pgVersion} ${s.inRecovery ? 'standby' : 'primary'}, data directory ${s.dataDirectory}; repository ${out.repo}, stanza '${out.stanza}'`);
  if (out.repository === 'created') w(`created pgark repository ${out.repo}`);
  else if (out.repository === 'would-create') w(`dry run: would create pgark repository ${out.repo} (pgark repo create)`);
  for (const n of out.notes) w(`note: ${n}`);
  const width = Math.max(...out.plan.items.map((i) => i.name.length));
  for (const i of out.plan.items) {
    const name = i.name.padEnd(width);
    if (i.action === 'set') w(`  ${name}  '${i.configured}' -> '${i.target}'  (needs a ${i.apply})`);
    else if (i.action === 'pending') w(`  ${name}  '${i.running}' -> '${i.target}'  (${i.note ?? `needs a ${i.apply}`})`);
    else if (i.action === 'blocked') w(`  ${name}  '${i.running}'  BLOCKED: ${i.note ?? ''}`);
    else w(`  ${name}  '${i.running}'  ok${i.note ? ` (${i.note})` : ''}`);
  }
  for (const f of out.plan.foreign) w(out.dryRun ? `dry run: would be ${describeReplacement(f)}` : describeReplacement(f));
  if (out.plan.writes.length === 0 && out.pending.length === 0 && !out.restarted && !out.reloaded && out.repository === 'exists') {
    w(`nothing to change: the server is set up for pgark (repository ${out.repo}, stanza '${out.stanza}')`);
    return;
  }
  if (out.dryRun) {
    w(`dry run: would write ${out.plan.writes.length} setting(s) with ALTER SYSTEM; ` +
      (out.plan.restartNeeded ? 'a restart is needed' : out.plan.reloadNeeded ? 'a reload is needed' : 'nothing to apply'));
    return;
  }
  w(out.written.length > 0 ? `wrote ${out.written.length} setting(s) with ALTER SYSTEM (postgresql.auto.conf)` : 'nothing to write: the configuration files already hold every value');
  if (out.restarted) w('restarted the server (pg_ctl restart -m fast)');
  else if (out.reloaded) w('reloaded the configuration (pg_reload_conf())');
  if (out.pending.length === 0) {
    w('every setting is in effect');
    return;
  }
  const restart = out.pending.filter((i) => i.apply === 'restart').map((i) => i.name);
  const reload = out.pending.filter((i) => i.apply === 'reload').map((i) => i.name);
  if (restart.length > 0) w(`restart needed for ${restart.join(', ')}: pgark setup --restart, or restart the server`);
  if (reload.length > 0) w(`reload needed for ${reload.join(', ')}: pgark setup --reload, or SELECT pg_reload_conf()`);
}

export function registerOpsCommands(program: Command): void {
  program
    .command('setup')
    .summary('configure a cluster for pgark with ALTER SYSTEM (archive_mode, archive_command, wal_level, ...)')
    .description(
      'Set what pgark needs with ALTER SYSTEM: archive_mode = on, archive_command = pgark wal-push for this ' +
      'installation, repository and stanza, archive_library empty (15+), wal_level at least replica (logical is ' +
      'kept), max_wal_senders at least 10 (never lowered), archive_timeout with --archive-timeout, and for a ' +
      'standby (in recovery, or --standby) restore_command = pgark wal-fetch. Prints each change (old -> new) ' +
      'and whether it needs a reload or a restart; --reload / --restart do it. A second run changes nothing. ' +
      'A command pgark did not write (not pgark, or pgark for another repository or stanza) is named with the ' +
      'file and line that set it, and replaced only with --force. Connection: libpq environment or --dsn; ' +
      '--pgdata, when given, must be the data directory of that server. --restart runs pg_ctl -D <data_directory> ' +
      '-m fast -w restart as the server\'s OS user (on systemd/pg_ctlcluster systems restart with those instead).',
    )
    .option('--dsn <conninfo>', 'connection string (no password: use PGPASSWORD/PGPASSFILE)')
    .option('--dry-run', 'print the plan and change nothing')
    .option('--reload', 'reload the configuration afterwards (pg_reload_conf())')
    .option('--restart', "restart the server afterwards when a setting needs it (pg_ctl restart, as the server's OS user)")
    .option('--log-file <file>', 'with --restart: the server log file (pg_ctl -l); needed when logging_collector is off')
    .option('--archive-timeout <sec>', 'also set archive_timeout to this many seconds (1-86400)')
    .option('--standby', 'also set restore_command, although the server is not in recovery now')
    .option('--force', 'replace an archive_command/restore_command/archive_library pgark did not write')
    .option('--json', 'print the result as JSON')
    .action(async (opts: { dsn?: string; dryRun?: boolean; reload?: boolean; restart?: boolean; logFile?: string; archiveTimeout?: string; standby?: boolean; force?: boolean; json?: boolean }, cmd: Command) => {
      // --archive-timeout is also the backup setting of that name: settingsFrom validates it (1-86400).
      const archiveTimeoutSec = intOption(opts.archiveTimeout, '--archive-timeout', 1, 86400);
      const settings = settingsFrom(cmd);
      const { runSetup } = await import('../ops/setup.js');
      const { describeReplacement } = await import('../ops/setup-plan.js');
      const out = await withRepository(settings, (repo) => runSetup(settings, repo, {
        dsn: opts.dsn, dryRun: !!opts.dryRun, reload: !!opts.reload, restart: !!opts.restart, logFile: opts.logFile,
        archiveTimeoutSec, standby: !!opts.standby, force: !!opts.force,
      }), { marker: 'skip' }); // setup creates the repository (as pgark repo create)
      if (opts.json) printJson(withFormat('setup', out));
      else printSetup(out, describeReplacement);
    });

  program
    .command('check')
    .summary('check that archiving and backups work (Nagios plugin: exit 0 ok, 1 warning, 2 critical, 3 unknown)')
    .description(
      "Check, like Barman's check: the configuration; the repository (reachable, writable, the stanza bound " +
      'to this cluster); archive_mode and archive_command (pgark wal-push for this repository and stanza) and ' +
      'pg_stat_archiver failures; a WAL round trip (pg_switch_wal(), then wait up to --wal-timeout for the ' +
      'segment in the repository; skipped on a standby and with --no-switch); the age of the newest backup ' +
      '(--backup-warn, --backup-crit; no backup yet is a warning, or --if-no-backup critical); WAL continuity from ' +
      'the newest backup to the newest archived segment; receivers (status objects under <stanza>/receiver/) and ' +
      'their slots, or --slot. Each item is OK, WARNING or CRITICAL with a reason.\n' +
      'Output is a monitoring plugin\'s: the first line is the status, what is not OK and, after "|", performance ' +
      'data (backup_age, archive_lag, archive_lag_segments, archived, archive_failed, wal_window_segments, ' +
      'last_drill_age; those that are known); one line per item follows. Exit codes follow the plugin convention, ' +
      'unlike other pgark commands: 0 all OK, 1 a warning, 2 something critical, 3 unknown (pgark itself could not ' +
      'check: bad usage, an unreadable configuration, an unexpected error).\n' +
      'Every round trip completes a WAL segment: for checks every few minutes use --no-switch, and a full check hourly.',
    )
    .option('--dsn <conninfo>', 'connection string (no password: use PGPASSWORD/PGPASSFILE)')
    .option('--backup-warn <duration>', 'warn when the newest backup is older (e.g. 36h, 7d)', '26h')
    .option('--backup-crit <duration>', 'critical when the newest backup is older', '50h')
    .option('--if-no-backup <status>', 'status of a stanza without any backup: warning or critical', 'warning')
    .option('--wal-timeout <sec>', 'seconds to wait for the switched segment in the repository', '60')
    .option('--slot <name>', 'a physical replication slot that must exist and be active')
    .option('--no-switch', 'skip the WAL round trip (no pg_switch_wal(); for frequent monitoring runs)')
    .option('--json', 'print {status, items: [{name, status, detail, seconds?}], perfdata: [{label, value, uom, warn?, crit?, min?}]}')
    .action(async (opts: { dsn?: string; backupWarn: string; backupCrit: string; ifNoBackup: string; walTimeout: string; slot?: string; switch: boolean; json?: boolean }, cmd: Command) => {
      try {
        await runCheckCommand(opts, cmd);
      } catch (err) {
        if (err instanceof ExitWith) throw err;
        // pgark could not check: the plugin status is UNKNOWN (3), whatever pgark's own code would be.
        const msg = causeText(err);
        if (opts.json) printJson(withFormat('check', { status: 'UNKNOWN', error: msg, items: [], perfdata: [] }));
        else process.stdout.write(`PGARK UNKNOWN - ${msg.replace(/\|/g, '/').replace(/[\r\n]+/g, ' ')}\n`);
        const internal = exitCodeOf(err) === ExitCode.INTERNAL && err instanceof Error && err.stack;
        process.stderr.write(`pgark: ERROR [3]: ${internal ? `internal error: ${err.stack}` : msg}\n`);
        throw new ExitWith(3);
      }
    });
}

async function runCheckCommand(
  opts: { dsn?: string; backupWarn: string; backupCrit: string; ifNoBackup: string; walTimeout: string; slot?: string; switch: boolean; json?: boolean },
  cmd: Command,
): Promise<void> {
  const { parseDuration } = await import('../catalog/retention.js');
  const parse = (v: string, flag: string) => {
    try {
      return parseDuration(v);
    } catch (err) {
      throw new ConfigError(`invalid ${flag}: ${(err as Error).message}`);
    }
  };
  const backupWarnMs = parse(opts.backupWarn, '--backup-warn');
  const backupCritMs = parse(opts.backupCrit, '--backup-crit');
  if (backupWarnMs > backupCritMs) throw new ConfigError(`--backup-warn (${opts.backupWarn}) must not be longer than --backup-crit (${opts.backupCrit})`);
  const noBackup = opts.ifNoBackup.toLowerCase();
  if (noBackup !== 'warning' && noBackup !== 'critical') throw new ConfigError(`invalid --if-no-backup '${opts.ifNoBackup.slice(0, 32)}': warning or critical`);
  const walTimeoutSec = intOption(opts.walTimeout, '--wal-timeout', 1, 3600)!;
  if (opts.slot !== undefined && !/^[a-z0-9_]{1,63}$/.test(opts.slot)) throw new ConfigError(`invalid --slot '${opts.slot.slice(0, 64)}': a slot name is 1 to 63 characters from a-z, 0-9 and _`);
  const { runCheck } = await import('../ops/check.js');
  const { formatCheckReport, checkExitCode } = await import('../ops/check-items.js');
  const report = await runCheck(() => settingsFrom(cmd), openRepository, {
    dsn: opts.dsn, backupWarnMs, backupCritMs, walTimeoutSec, slot: opts.slot, noSwitch: !opts.switch, noBackup: noBackup === 'critical' ? 'CRITICAL' : 'WARNING',
  });
  if (opts.json) printJson(withFormat('check', report));
  else process.stdout.write(formatCheckReport(report.items, report.perfdata, report.status));
  const code = checkExitCode(report.status);
  if (code !== 0) throw new ExitWith(code);
}
