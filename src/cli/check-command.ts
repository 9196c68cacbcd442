/** CLI wiring of `pgark check` (a monitoring plugin). The implementation loads only when the command runs. */
import type { Command } from 'commander';
import { causeText, ConfigError, ExitCode, exitCodeOf } from '../common/errors.js';
import { reportFailure } from '../common/log.js';
import { openRepository, printJson, settingsFrom } from './context.js';
import { withFormat } from '../json/format.js';
import { ExitWith } from './exit.js';
import { intOption } from './options.js';

export function registerCheckCommand(program: Command): void {
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
      'their slots, or --slot; with further repositories (repo2, repo3), each one reachable (an unreachable required one ' +
      'is critical, an async one a warning) and each async one\'s backlog (a warning while it holds anything, critical past ' +
      '--backlog-crit or --backlog-crit-files). Each item is OK, WARNING or CRITICAL with a reason.\n\n' +
      'Output is a monitoring plugin\'s: the first line is the status, what is not OK and, after "|", performance ' +
      'data (backup_age, archive_lag, archive_lag_segments, archived, archive_failed, wal_window_segments, ' +
      'last_drill_age, backlog_<repoN>, backlog_<repoN>_age; those that are known); one line per item follows. Exit codes follow the plugin convention, ' +
      'unlike other pgark commands: 0 all OK, 1 a warning, 2 something critical, 3 unknown (pgark itself could not ' +
      'check: bad usage, an unreadable configuration, an unexpected error).\n\n' +
      'Every round trip completes a WAL segment: for checks every few minutes use --no-switch, and a full check hourly.',
    )
    .option('--dsn <conninfo>', 'connection string (no password: use PGPASSWORD/PGPASSFILE)')
    .option('--backup-warn <duration>', 'warn when the newest backup is older (e.g. 36h, 7d)', '26h')
    .option('--backup-crit <duration>', 'critical when the newest backup is older', '50h')
    .option('--if-no-backup <status>', 'status of a stanza without any backup: warning or critical', 'warning')
    .option('--wal-timeout <sec>', 'seconds to wait for the switched segment in the repository', '60')
    .option('--slot <name>', 'a physical replication slot that must exist and be active')
    .option('--backlog-crit <duration>', 'with an async repository (repoN-mode=async): critical when its backlog\'s oldest file waits longer', '1h')
    .option('--backlog-crit-files <n>', 'critical when an async repository\'s backlog holds more files', '256')
    .option('--no-switch', 'skip the WAL round trip (no pg_switch_wal(); for frequent monitoring runs)')
    .option('--json', 'print {status, items: [{name, status, detail, seconds?}], perfdata: [{label, value, uom, warn?, crit?, min?}]}')
    .action(async (opts: { dsn?: string; backupWarn: string; backupCrit: string; ifNoBackup: string; walTimeout: string; slot?: string; switch: boolean; json?: boolean; backlogCrit: string; backlogCritFiles: string }, cmd: Command) => {
      try {
        await runCheckCommand(opts, cmd);
      } catch (err) {
        if (err instanceof ExitWith) throw err;
        // pgark could not check: the plugin status is UNKNOWN (3), whatever pgark's own code would be.
        const msg = causeText(err);
        if (opts.json) printJson(withFormat('check', { status: 'UNKNOWN', error: msg, items: [], perfdata: [] }));
        else process.stdout.write(`PGARK UNKNOWN - ${msg.replace(/\|/g, '/').replace(/[\r\n]+/g, ' ')}\n`);
        const internal = exitCodeOf(err) === ExitCode.INTERNAL && err instanceof Error && err.stack;
        reportFailure(3, internal ? `internal error: ${err.stack}` : msg);
        throw new ExitWith(3);
      }
    });
}

async function runCheckCommand(
  opts: { dsn?: string; backupWarn: string; backupCrit: string; ifNoBackup: string; walTimeout: string; slot?: string; switch: boolean; json?: boolean; backlogCrit: string; backlogCritFiles: string },
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
  const backlog = { critMs: parse(opts.backlogCrit, '--backlog-crit'), critFiles: intOption(opts.backlogCritFiles, '--backlog-crit-files', 0, 1_000_000_000)! };
  if (opts.slot !== undefined && !/^[a-z0-9_]{1,63}$/.test(opts.slot)) throw new ConfigError(`invalid --slot '${opts.slot.slice(0, 64)}': a slot name is 1 to 63 characters from a-z, 0-9 and _`);
  const { runCheck } = await import('../ops/check.js');
  const { formatCheckReport, checkExitCode } = await import('../ops/check-items.js');
  const report = await runCheck(() => settingsFrom(cmd), openRepository, {
    dsn: opts.dsn, backupWarnMs, backupCritMs, walTimeoutSec, slot: opts.slot, noSwitch: !opts.switch, noBackup: noBackup === 'critical' ? 'CRITICAL' : 'WARNING', backlog,
  });
  if (opts.json) printJson(withFormat('check', report));
  else process.stdout.write(formatCheckReport(report.items, report.perfdata, report.status));
  const code = checkExitCode(report.status);
  if (code !== 0) throw new ExitWith(code);
}
