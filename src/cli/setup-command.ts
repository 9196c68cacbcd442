/** CLI wiring of `pgark setup`. The implementation loads only when the command runs. */
import type { Command } from 'commander';
import { log } from '../common/log.js';
import { printJson, settingsFrom, withRepository } from './context.js';
import { deprecatedAlias } from './deprecated-flags.js';
import type { SetupOutcome } from '../ops/setup.js';
import { intOption } from './options.js';
import { withFormat } from '../json/format.js';

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
export function registerSetupCommand(program: Command): void {
  const setup = program
    .command('setup')
    .summary('configure a cluster for pgark with ALTER SYSTEM (archive_mode, archive_command, wal_level, ...)')
    .description(
      'Set what pgark needs with ALTER SYSTEM: archive_mode = on, archive_command = pgark wal-push for this ' +
      'installation, repository and stanza, archive_library empty (15+), wal_level at least replica (logical is ' +
      'kept), max_wal_senders at least 10 (never lowered), archive_timeout with --server-archive-timeout, and for a ' +
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
    .option('--server-log-file <file>', 'with --restart: the server log file (pg_ctl -l); needed when logging_collector is off')
    .option('--server-archive-timeout <sec>', "also set PostgreSQL's archive_timeout to this many seconds (1-86400)")
    .option('--standby', 'also set restore_command, although the server is not in recovery now')
    .option('--force', 'replace an archive_command/restore_command/archive_library pgark did not write')
    .option('--json', 'print the result as JSON')
    .action(async (opts: { dsn?: string; dryRun?: boolean; reload?: boolean; restart?: boolean; serverLogFile?: string; serverArchiveTimeout?: string; standby?: boolean; force?: boolean; json?: boolean }, cmd: Command) => {
      const archiveTimeoutSec = intOption(opts.serverArchiveTimeout, '--server-archive-timeout', 1, 86400);
      const settings = settingsFrom(cmd);
      // `setup --restart --log-file F` named the server's log before --log-file became pgark's own
      // log (a global option): honoured for one release, with a warning.
      let serverLogFile = opts.serverLogFile;
      if (serverLogFile === undefined && opts.restart && cmd.parent?.getOptionValueSource('logFile') === 'cli' && settings.logFile !== undefined) {
        serverLogFile = settings.logFile;
        log.warn(`setup: --log-file is pgark's own log file now; taking it as the server log file (pg_ctl -l) too, as before: pass --server-log-file ${settings.logFile} instead (the old meaning goes in the next release)`);
      }
      const { runSetup } = await import('../ops/setup.js');
      const { commandSettings } = await import('../config/settings-transport.js');
      const { describeReplacement } = await import('../ops/setup-plan.js');
      const out = await withRepository(settings, (repo) => runSetup(repo, {
        commands: commandSettings(settings), pgdata: settings.pgdata, dsn: opts.dsn, dryRun: !!opts.dryRun, reload: !!opts.reload, restart: !!opts.restart, logFile: serverLogFile,
        archiveTimeoutSec, standby: !!opts.standby, force: !!opts.force,
      }), { marker: 'skip' }); // setup creates the repository (as pgark repo create)
      if (opts.json) printJson(withFormat('setup', out));
      else printSetup(out, describeReplacement);
    });
  // Until the next release: setup's --archive-timeout, which elsewhere (backup, the config file)
  // is the wait for WAL to reach the repository.
  deprecatedAlias(setup, '--archive-timeout <sec>', '--server-archive-timeout');
}
