/**
 * CLI wiring of `pgark clone`, `pgark promote`, `pgark drill` and `pgark drills`.
 * Implementations load only when a command runs.
 */
import { readFile } from 'node:fs/promises';
import { Command, Option } from 'commander';
import { ConfigError, ExitCode } from '../common/errors.js';
import { printJson, settingsFrom, withRepository } from './context.js';
import { withFormat } from '../json/format.js';
import { formatBytes } from './format.js';
import { intOption } from './options.js';

const shq = (s: string) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

export function registerDrillCommands(program: Command): void {
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
    .option('--tablespace-map <OLD=NEW>', 'restore tablespace OLD (oid, name or path) into NEW; repeatable', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--jobs <n>', 'parallel restores (default: number of CPU cores)')
    .option('--delta', 'rebuild an existing data directory in place: write only what differs')
    .option('--force', 'replace the contents of a non-empty data directory')
    .option('--no-progress', 'no progress output on stderr')
    .option('--json', 'print the result as JSON')
    .action(async (ref: string, opts: {
      primaryConninfo?: string; primarySlotName?: string; delay?: string; port?: string; start?: boolean; startTimeout?: string;
      tablespaceMap: string[]; jobs?: string; delta?: boolean; force?: boolean; progress: boolean; json?: boolean;
    }, cmd: Command) => {
      const settings = settingsFrom(cmd);
      if (!settings.pgdata) throw new ConfigError('clone needs --pgdata DIR (the new standby\'s data directory)');
      const { parseApplyDelay, parsePort } = await import('../drill/clone-settings.js');
      const delayMs = opts.delay !== undefined ? parseApplyDelay(opts.delay) : undefined;
      const port = opts.port !== undefined ? parsePort(opts.port) : undefined;
      const { runClone } = await import('../drill/clone.js');
      const out = await withRepository(settings, (repo) => runClone(settings, repo, {
        ref, pgdata: settings.pgdata!, primaryConninfo: opts.primaryConninfo, primarySlotName: opts.primarySlotName, delayMs, port,
        start: !!opts.start, startTimeoutSec: intOption(opts.startTimeout, '--start-timeout', 1, 86400) ?? 300,
        tablespaceMap: opts.tablespaceMap, jobs: intOption(opts.jobs, '--jobs', 1, 256), delta: !!opts.delta, force: !!opts.force, progress: opts.progress,
      }));
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

  program
    .command('drill')
    .summary('DR drill: restore, replay, promote and check a backup in a scratch server; report RTO and RPO')
    .description(
      'Restore a backup into a private scratch directory (--scratch, default the temp directory), start it on ' +
      'its own unix socket (no TCP, no archiving), replay to --target, promote, and check it: pg_amcheck on every ' +
      'database (skipped when not installed), an exact count of every user table, and --checks FILE.sql, each ' +
      'statement of which must return one row with one boolean true. Reports RTO (restore + replay + promote, ' +
      'per phase) and RPO (the newest archived commit, found with pg_waldump, minus the last replayed commit), ' +
      'stores the report in the repository (pgark drills lists them) and removes the scratch server unless ' +
      '--keep. Exit 7 when a check fails or the target cannot be reached. Run as the PostgreSQL OS user.',
    )
    .argument('[id]', "backup id, 'latest' or 'auto' (default: the newest that can reach the target)", 'auto')
    .option('--target <target>', 'latest (the end of the archive, default), immediate, time=TIMESTAMP, name=RESTORE_POINT, lsn=X/Y or xid=XID', 'latest')
    .option('--target-exclusive', 'stop just before a time, lsn or xid target')
    .option('--checks <file>', 'SQL file: each statement must return exactly one row with one boolean true')
    .option('--checks-db <db>', 'database the --checks statements run in', 'postgres')
    .option('--keep', 'keep the scratch server running and its directory (prints how to reach and remove it)')
    .option('--scratch <dir>', 'directory under which the scratch directory is created (default: the temp directory)')
    .option('--timeout <sec>', 'seconds allowed for start, replay and promotion (default 3600)')
    .option('--jobs <n>', 'parallel restores (default: number of CPU cores)')
    .option('--no-progress', 'no restore progress on stderr')
    .option('--json', 'print the report as JSON')
    .action(async (ref: string, opts: {
      target: string; targetExclusive?: boolean; checks?: string; checksDb: string; keep?: boolean; scratch?: string; timeout?: string; jobs?: string; progress: boolean; json?: boolean;
    }, cmd: Command) => {
      const settings = settingsFrom(cmd);
      const { assertNotRoot } = await import('../pg/pg-ctl.js');
      assertNotRoot('pgark drill');
      const { parseDrillTarget, recoveryTargetOf, formatDrillReport } = await import('../drill/drill-report.js');
      const { validateTarget } = await import('../restore/recovery-conf.js');
      const target = parseDrillTarget(opts.target);
      validateTarget(recoveryTargetOf(target, !!opts.targetExclusive));
      let checks: { file: string; database: string; statements: import('../drill/sql-split.js').SqlStatement[] } | undefined;
      if (opts.checks !== undefined) {
        const { splitSql } = await import('../drill/sql-split.js');
        const text = await readFile(opts.checks, 'utf8').catch((err: unknown) => {
          throw new ConfigError(`unable to read --checks file '${opts.checks}': ${(err as Error).message}`);
        });
        const statements = splitSql(text, opts.checks);
        if (statements.length === 0) throw new ConfigError(`--checks file '${opts.checks}' holds no SQL statement`);
        checks = { file: opts.checks, database: opts.checksDb, statements };
      }
      const { runDrill } = await import('../drill/drill.js');
      const out = await withRepository(settings, (repo) => runDrill(settings, repo, {
        ref, target, exclusive: !!opts.targetExclusive, checks, keep: !!opts.keep, scratchParent: opts.scratch,
        timeoutSec: intOption(opts.timeout, '--timeout', 1, 7 * 86400) ?? 3600, jobs: intOption(opts.jobs, '--jobs', 1, 256), progress: opts.progress,
      }));
      const r = out.report;
      if (opts.json) printJson(withFormat('drill', r));
      else {
        process.stdout.write(formatDrillReport(r) + '\n');
        if (out.key) process.stdout.write(`  report    stored as ${out.key}\n`);
        if (r.kept) {
          process.stdout.write(`  kept      the scratch server${out.scratch && r.phases.replaySec !== undefined ? ' is running' : ''} in ${r.kept.pgdata}\n` +
            (r.phases.replaySec !== undefined ? `            connect:  psql -h ${shq(r.kept.socketDir)} -p ${r.kept.port}${out.user ? ` -U ${shq(out.user)}` : ''} postgres\n` : '') +
            `            remove:   pg_ctl stop -D ${shq(r.kept.pgdata)} -m fast; rm -rf ${shq(out.scratch?.dir ?? r.kept.socketDir)}\n`);
        }
      }
      if (out.storeError) process.stderr.write(`pgark: ERROR [${ExitCode.STORAGE}]: unable to store the drill report: ${out.storeError}\n`);
      if (r.result === 'failed') process.exitCode = ExitCode.VERIFY_FAILED;
      else if (out.storeError) process.exitCode = ExitCode.STORAGE;
    });

  program
    .command('drills')
    .summary('list past DR drills, newest first')
    .option('--limit <n>', 'at most this many (default 20)')
    .option('--json', 'print the reports as JSON')
    .action(async (opts: { limit?: string; json?: boolean }, cmd: Command) => {
      const settings = settingsFrom(cmd);
      const limit = intOption(opts.limit, '--limit', 1, 100000) ?? 20;
      const { listDrillReports } = await import('../drill/drill-store.js');
      const { formatDrillList } = await import('../drill/drill-report.js');
      const reports = await withRepository(settings, (repo) => listDrillReports(repo, limit), { stanza: 'require' });
      if (opts.json) printJson((await import('../json/drill-json.js')).drillsJson(settings.stanza, reports));
      else if (reports.length === 0) process.stdout.write(`no drills in stanza '${settings.stanza}' (pgark drill runs one)\n`);
      else process.stdout.write(formatDrillList(reports) + '\n');
    });
}
