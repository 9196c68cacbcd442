/** CLI wiring of `pgark backup`. The implementation loads only when the command runs. */
import { Command, Option } from 'commander';
import { ExitCode } from '../common/errors.js';
import { describeBackup } from './backup-text.js';
import { printJson, settingsFrom, withRepository } from './context.js';
import { intOption } from './options.js';

export function registerBackupCommand(program: Command): void {
  program
    .command('backup')
    .summary('take a base backup of the running cluster')
    .description(
      'Copy the data directory of the running cluster on this host into the repository, using ' +
      "PostgreSQL's non-exclusive backup API. Connection: libpq environment (PGHOST, PGPORT, PGUSER, " +
      'PGDATABASE, PGPASSFILE) or --dsn. The backup is listed only once its WAL is archived and its ' +
      'manifest committed. --type auto (default) takes an incremental on the newest backup, or a full ' +
      'when there is none, its chain is incr-chain-max long, or the timeline changed.',
    )
    .addOption(new Option('--type <type>', 'full, incr or auto').choices(['full', 'incr', 'auto']).default('auto'))
    .option('--label <text>', 'free text stored with the backup')
    .option('--keep', 'pin the backup: expire never removes it (pgark keep --release undoes)')
    .option('--jobs <n>', 'parallel file copies (default: number of CPU cores)')
    .option('--dsn <conninfo>', 'connection string (no password: use PGPASSWORD/PGPASSFILE)')
    .option('--from-standby', 'require the server to be a hot standby (detected anyway)')
    .addOption(new Option('--checkpoint <mode>', 'checkpoint at start: fast or spread').choices(['fast', 'spread']).default('fast'))
    .option('--delta', 'incremental: read every file (by default a file whose size, mtime and ctime are unchanged since the parent is taken from it unread)')
    .option('--store-wal', 'store the WAL needed for consistency with the backup instead of waiting for the archive')
    .option('--archive-timeout <sec>', 'seconds to wait for the needed WAL in the repository (default 120)')
    .option('--incr-chain-max <n>', 'longest incremental chain (default 7)')
    .option('--codec <name>', 'lz4, zstd, gzip or none (default: the stanza\'s)')
    .option('--compress-level <n>', 'codec level')
    .option('--no-progress', 'no progress output on stderr')
    .option('--json', 'print the result as JSON')
    .action(async (opts: { type: 'full' | 'incr' | 'auto'; label?: string; keep?: boolean; jobs?: string; dsn?: string; fromStandby?: boolean; checkpoint: 'fast' | 'spread'; storeWal?: boolean; delta?: boolean; progress: boolean; json?: boolean }, cmd: Command) => {
      const settings = settingsFrom(cmd);
      const { runBackup } = await import('../backup/backup.js');
      const out = await withRepository(settings, (repo) => runBackup(repo, settings, {
        type: opts.type, label: opts.label, keep: !!opts.keep, jobs: intOption(opts.jobs, '--jobs', 1, 256), dsn: opts.dsn,
        fromStandby: !!opts.fromStandby, checkpoint: opts.checkpoint, storeWal: !!opts.storeWal, progress: opts.progress, delta: !!opts.delta,
      }));
      if (opts.json) printJson((await import('../json/catalog-json.js')).backupJson(out.info, !!opts.keep, out.checksumFailures, out.notes));
      else {
        for (const n of out.notes) process.stdout.write(`note: ${n}\n`);
        process.stdout.write(describeBackup(out.info, !!opts.keep) + '\n');
        for (const f of out.checksumFailures) process.stdout.write(`  checksum failure: ${f.path} blocks ${f.blocks.join(', ')}\n`);
      }
      if (out.checksumFailures.length > 0) process.exitCode = ExitCode.VERIFY_FAILED;
    });
}
