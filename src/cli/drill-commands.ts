/**
 * CLI wiring of `pgark drill` and `pgark drills`.
 * Implementations load only when a command runs.
 */
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { ConfigError, ExitCode } from '../common/errors.js';
import { reportFailure } from '../common/log.js';
import { printJson, settingsFrom, withRepository } from './context.js';
import { deprecatedAlias } from './deprecated-flags.js';
import { withFormat } from '../json/format.js';
import { formatBytes } from './format.js';
import { intOption } from './options.js';

const shq = (s: string) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);
export function registerDrillCommands(program: Command): void {
  const drill = program
    .command('drill')
    .summary('DR drill: restore, replay, promote and check a backup in a scratch server; report RTO and RPO')
    .description(
      'Restore a backup into a private scratch directory (--scratch, default the temp directory), start it on ' +
      'its own unix socket (no TCP, no archiving), replay to the target (default: the end of the archive), promote, and check it: pg_amcheck on every ' +
      'database (skipped when not installed), an exact count of every user table, and --checks FILE.sql, each ' +
      'statement of which must return one row with one boolean true. Reports RTO (restore + replay + promote, ' +
      'per phase) and RPO (the newest archived commit, found with pg_waldump, minus the last replayed commit), ' +
      'stores the report in the repository (pgark drills lists them) and removes the scratch server unless ' +
      '--keep. Exit 7 when a check fails or the target cannot be reached. Run as the PostgreSQL OS user.',
    )
    .argument('[id]', "backup id, 'latest' or 'auto' (the newest backup that can reach the target)", 'auto')
    .option('--target-time <time>', "recover up to this time (e.g. '2026-11-23 16:20:00+00')")
    .option('--target-name <name>', 'recover up to this restore point (pg_create_restore_point)')
    .option('--target-lsn <lsn>', 'recover up to this LSN')
    .option('--target-xid <xid>', 'recover up to this transaction id')
    .option('--target-immediate', 'stop as soon as the backup is consistent')
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
      targetTime?: string; targetName?: string; targetLsn?: string; targetXid?: string; targetImmediate?: boolean; targetExclusive?: boolean; checks?: string; checksDb: string; keep?: boolean; scratch?: string; timeout?: string; jobs?: string; progress: boolean; json?: boolean;
    }, cmd: Command) => {
      const settings = settingsFrom(cmd);
      const { assertNotRoot } = await import('../pg/pg-ctl.js');
      assertNotRoot('pgark drill');
      const { drillTargetOf, recoveryTargetOf, formatDrillReport } = await import('../drill/drill-report.js');
      const { validateTarget } = await import('../restore/recovery-conf.js');
      const target = drillTargetOf(opts);
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
      const out = await withRepository(settings, (repo) => runDrill(repo, settings, {
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
      if (out.storeError) reportFailure(ExitCode.STORAGE, `unable to store the drill report: ${out.storeError}`);
      if (r.result === 'failed') process.exitCode = ExitCode.VERIFY_FAILED;
      else if (out.storeError) process.exitCode = ExitCode.STORAGE;
    });
  // Until the next release: --target KIND=VALUE, spelt as restore's flags now.
  deprecatedAlias(drill, '--target <target>', '--target-time/--target-name/--target-lsn/--target-xid/--target-immediate', async (v) => {
    const { parseDrillTarget, drillTargetFlags } = await import('../drill/drill-report.js');
    return { ...drillTargetFlags(parseDrillTarget(v)) };
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
