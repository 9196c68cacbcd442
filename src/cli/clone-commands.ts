/** CLI wiring of `pgark clone` and `pgark promote`. Implementations load only when a command runs. */
import type { Command } from 'commander';
import { ConfigError } from '../common/errors.js';
import { printJson, settingsFrom } from './context.js';
import { formatBytes } from './format.js';
import { intOption, repeatable } from './options.js';
import { withFormat } from '../json/format.js';

export function registerCloneCommands(program: Command): void {
  program
    .command('clone')
    .summary('build a standby from the repository, without load on the primary')
    .description(
      'Restore a backup (default: the newest) into --pgdata as a standby: standby.signal, primary_conninfo for ' +
      "streaming (no password in it: use ~/.pgpass of the OS user running the clone), pgark's restore_command as " +
      'the fallback, archive_mode off. --delay keeps the clone that far behind the primary ' +
      '(recovery_min_apply_delay: 1h, 30min, 30m, 1d12h...), which protects against a mistake or corruption ' +
      'spreading. --start starts it with pg_ctl (as the OS user owning the directory; PostgreSQL refuses root).',
    )
    .argument('[id]', "backup id or 'latest'", 'latest')
    .option('--primary-conninfo <conninfo>', "primary_conninfo, e.g. 'host=db1 port=5432 user=replicator application_name=clone1'")
    .option('--primary-slot-name <slot>', 'replication slot on the primary')
    .option('--delay <duration>', 'recovery_min_apply_delay: apply WAL only this long after its commit (e.g. 1h)')
    .option('--port <port>', 'port of the clone (default: the primary\'s, from its configuration)')
    .option('--start', 'start the clone with pg_ctl and wait until it accepts connections')
    .option('--start-timeout <sec>', 'seconds to wait for the start (default 300)')
    .option('--tablespace-map <OLD=NEW>', 'restore tablespace OLD (oid, name or path) into NEW; repeatable', repeatable)
    .option('--jobs <n>', 'parallel restores (default: number of CPU cores)')
    .option('--delta', 'rebuild an existing data directory in place: write only what differs')
    .option('--force', 'replace the contents of a non-empty data directory')
    .option('--owner <user[:group]>', 'run as root: give the files to this OS user (default: the owner recorded in the backup)')
    .option('--no-progress', 'no progress output on stderr')
    .option('--json', 'print the result as JSON')
    .action(async (ref: string, opts: {
      owner?: string; primaryConninfo?: string; primarySlotName?: string; delay?: string; port?: string; start?: boolean; startTimeout?: string;
      tablespaceMap?: string[]; jobs?: string; delta?: boolean; force?: boolean; progress: boolean; json?: boolean;
    }, cmd: Command) => {
      const settings = settingsFrom(cmd);
      if (!settings.pgdata) throw new ConfigError('clone needs --pgdata DIR (the new standby\'s data directory)');
      const { parseApplyDelay, parsePort } = await import('../drill/clone-settings.js');
      const delayMs = opts.delay !== undefined ? parseApplyDelay(opts.delay) : undefined;
      const port = opts.port !== undefined ? parsePort(opts.port) : undefined;
      const { runClone } = await import('../drill/clone.js');
      // Every repository of the stanza, as restore reads them (each opened only when read).
      const { withRepoSet } = await import('../repo/repo-set.js');
      const out = await withRepoSet(settings, (set) => runClone(set, settings, {
        ref, pgdata: settings.pgdata!, primaryConninfo: opts.primaryConninfo, primarySlotName: opts.primarySlotName, delayMs, port,
        start: !!opts.start, startTimeoutSec: intOption(opts.startTimeout, '--start-timeout', 1, 86400) ?? 300,
        tablespaceMap: opts.tablespaceMap ?? [], jobs: intOption(opts.jobs, '--jobs', 1, 256), delta: !!opts.delta, force: !!opts.force, progress: opts.progress, owner: opts.owner,
      }), { lazy: true });
      const r = out.restore;
      if (opts.json) {
        printJson((await import('../json/drill-json.js')).cloneJson(out));
        return;
      }
      for (const n of [...r.notes, ...out.notes]) process.stdout.write(`note: ${n}\n`);
      process.stdout.write(`restored backup ${r.backup.id} (${r.backup.type}) into ${r.pgdata} as a standby: ${r.filesWritten} files (${formatBytes(r.bytesWritten)}) in ${(r.durationMs / 1000).toFixed(1)}s\n`);
      for (const [k, v] of [...r.settings, ...out.extra]) if (k !== 'restore_command') process.stdout.write(`  ${k} = '${v}'\n`);
      if (out.started) process.stdout.write(`started; log: ${out.logFile}\n`);
      else process.stdout.write(`${r.signal} written; start it (as the OS user owning the directory) with:\n  ${out.startCommand}\n`);
    });

  program
    .command('promote')
    .summary('promote a clone and wait until it accepts writes')
    .description(
      'pg_ctl promote -D DIR -w, then wait (--timeout) until the server, reached over the socket and port its ' +
      'postmaster.pid names, is out of recovery and a write succeeds. PGUSER/PGDATABASE pick the role and ' +
      'database (default: the OS user, postgres). Run as the OS user owning the data directory.',
    )
    .option('--timeout <sec>', 'seconds to wait for the promotion and the first write (default 60)')
    .option('--json', 'print the result as JSON')
    .action(async (opts: { timeout?: string; json?: boolean }, cmd: Command) => {
      const settings = settingsFrom(cmd);
      if (!settings.pgdata) throw new ConfigError('promote needs --pgdata DIR (the clone\'s data directory)');
      const { runPromote } = await import('../drill/promote.js');
      const out = await runPromote(settings.pgdata, intOption(opts.timeout, '--timeout', 1, 86400) ?? 60);
      if (opts.json) printJson(withFormat('promote', out));
      else if (out.alreadyPrimary) process.stdout.write(`${out.pgdata} is not in recovery: it already accepts writes (timeline ${out.timeline}, LSN ${out.lsn})\n`);
      else process.stdout.write(`promoted ${out.pgdata}: accepts writes after ${out.seconds.toFixed(1)}s (timeline ${out.timeline}, LSN ${out.lsn})\n`);
    });
}
