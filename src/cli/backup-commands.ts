/** CLI wiring of backup, list and show. Implementations load only when a command runs. */
import { Command, Option } from 'commander';
import { ConfigError, ExitCode } from '../common/errors.js';
import { printJson, settingsFrom, withRepository } from './context.js';
import { formatBytes } from './format.js';
import type { BackupInfo } from '../catalog/backup-info.js';
import { intOption } from './options.js';

function duration(ms: number): string {
  const s = Math.round(ms / 1000);
  return s < 60 ? `${s}s` : s < 3600 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

export function describeBackup(b: BackupInfo, pinned: boolean): string {
  const lines = [
    `backup ${b.id} (${b.type}${b.parent ? ` on ${b.parent}` : ''})${pinned ? ' [kept]' : ''}${b.label ? `  label: ${b.label}` : ''}`,
    `  start   ${b.start.time}  lsn ${b.start.lsn}  timeline ${b.start.timeline}`,
    `  stop    ${b.stop.time}  lsn ${b.stop.lsn}  timeline ${b.stop.timeline}`,
    `  wal     ${b.walRange.first} .. ${b.walRange.last}${b.walStored ? ' (stored with the backup)' : ''}`,
    `  size    ${formatBytes(b.size.original)} read, ${formatBytes(b.size.stored)} stored, ${b.size.files} files in ${b.size.objects} objects` +
      (b.size.changedBlocks !== undefined ? `; blocks ${b.size.changedBlocks} stored, ${b.size.reusedBlocks ?? 0} from the parent` : ''),
    `  took    ${duration(b.durationMs)}${b.fromStandby ? ', from a standby' : ''}; PostgreSQL ${b.pgVersion}; chain ${b.chain.join(' <- ')}`,
  ];
  if (b.checksumFailures > 0) lines.push(`  WARNING ${b.checksumFailures} page(s) failed checksum verification (pgark show ${b.id} --files)`);
  return lines.join('\n');
}

export function registerBackupCommands(program: Command): void {
  program
    .command('backup')
    .summary('take a base backup of the running cluster')
    .description(
      'Copy the data directory of the running cluster on this host into the repository, using\n' +
      "PostgreSQL's non-exclusive backup API. Connection: libpq environment (PGHOST, PGPORT, PGUSER,\n" +
      'PGDATABASE, PGPASSFILE) or --dsn. The backup is listed only once its WAL is archived and its\n' +
      'manifest committed. --type auto (default) takes an incremental on the newest backup, or a full\n' +
      'when there is none, its chain is incr-chain-max long, or the timeline changed.',
    )
    .addOption(new Option('--type <type>', 'full, incr or auto').choices(['full', 'incr', 'auto']).default('auto'))
    .option('--label <text>', 'free text stored with the backup')
    .option('--keep', 'pin the backup: expire never removes it (pgark keep --release undoes)')
    .option('--jobs <n>', 'parallel file copies (default: number of CPU cores)')
    .option('--dsn <conninfo>', 'connection string (no password: use PGPASSWORD/PGPASSFILE)')
    .option('--from-standby', 'require the server to be a hot standby (detected anyway)')
    .addOption(new Option('--checkpoint <mode>', 'checkpoint at start: fast or spread').choices(['fast', 'spread']).default('fast'))
    .option('--store-wal', 'store the WAL needed for consistency with the backup instead of waiting for the archive')
    .option('--archive-timeout <sec>', 'seconds to wait for the needed WAL in the repository (default 120)')
    .option('--incr-chain-max <n>', 'longest incremental chain (default 7)')
    .option('--codec <name>', 'lz4, zstd, gzip or none (default: the stanza\'s)')
    .option('--compress-level <n>', 'codec level')
    .option('--no-progress', 'no progress output on stderr')
    .option('--json', 'print the result as JSON')
    .action(async (opts: { type: 'full' | 'incr' | 'auto'; label?: string; keep?: boolean; jobs?: string; dsn?: string; fromStandby?: boolean; checkpoint: 'fast' | 'spread'; storeWal?: boolean; progress: boolean; json?: boolean }, cmd: Command) => {
      const settings = settingsFrom(cmd);
      const { runBackup } = await import('../backup/backup.js');
      const out = await withRepository(settings, (repo) => runBackup(settings, repo, {
        type: opts.type, label: opts.label, keep: !!opts.keep, jobs: intOption(opts.jobs, '--jobs', 1, 256), dsn: opts.dsn,
        fromStandby: !!opts.fromStandby, checkpoint: opts.checkpoint, storeWal: !!opts.storeWal, progress: opts.progress,
      }));
      if (opts.json) printJson((await import('../json/catalog-json.js')).backupJson(out.info, !!opts.keep, out.checksumFailures, out.notes));
      else {
        for (const n of out.notes) process.stdout.write(`note: ${n}\n`);
        process.stdout.write(describeBackup(out.info, !!opts.keep) + '\n');
        for (const f of out.checksumFailures) process.stdout.write(`  checksum failure: ${f.path} blocks ${f.blocks.join(', ')}\n`);
      }
      if (out.checksumFailures.length > 0) process.exitCode = ExitCode.VERIFY_FAILED;
    });

  program
    .command('list')
    .summary('list the backups of the stanza')
    .option('--json', 'print as JSON')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const settings = settingsFrom(cmd);
      const { listBackups, listPins } = await import('../catalog/catalog.js');
      const [backups, pins] = await withRepository(settings, async (repo) => [await listBackups(repo), await listPins(repo)] as const, { stanza: 'require' });
      if (opts.json) {
        printJson((await import('../json/catalog-json.js')).listJson(settings.stanza, backups, pins));
        return;
      }
      if (backups.length === 0) {
        process.stdout.write(`no backups in stanza '${settings.stanza}'\n`);
        return;
      }
      const rows = backups.map((b) => [b.id, b.type, b.start.time.slice(0, 19).replace('T', ' '), b.stop.lsn, String(b.stop.timeline),
        formatBytes(b.size.original), formatBytes(b.size.stored), duration(b.durationMs), b.parent ?? '', pins.has(b.id) ? 'kept' : '',
        b.checksumFailures ? `${b.checksumFailures} bad pages` : '', b.label ?? '']);
      const head = ['id', 'type', 'start (UTC)', 'stop lsn', 'tl', 'size', 'stored', 'took', 'parent', 'pin', 'checks', 'label'];
      const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
      for (const r of [head, ...rows]) process.stdout.write(r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd() + '\n');
    });

  program
    .command('show')
    .summary('show one backup')
    .argument('<id>', "backup id or 'latest'")
    .option('--files', 'list the files (path, size, where stored)')
    .option('--json', 'print as JSON')
    .action(async (ref: string, opts: { files?: boolean; json?: boolean }, cmd: Command) => {
      const settings = settingsFrom(cmd);
      const { listBackups, listPins, findBackup, readManifest } = await import('../catalog/catalog.js');
      await withRepository(settings, async (repo) => {
        const backups = await listBackups(repo);
        const b = findBackup(backups, ref);
        const pinned = (await listPins(repo)).has(b.id);
        const manifest = opts.files || b.checksumFailures > 0 ? await readManifest(repo, b) : undefined;
        const files = manifest ? [...manifest.files.values()] : [];
        if (opts.json) {
          printJson((await import('../json/catalog-json.js')).showJson(b, pinned, manifest, !!opts.files));
          return;
        }
        process.stdout.write(describeBackup(b, pinned) + '\n');
        for (const f of files) if (f.checksumFailures) process.stdout.write(`  checksum failure: ${f.path} blocks ${f.checksumFailures.join(', ')}\n`);
        if (opts.files) {
          for (const f of files) {
            const where = f.object ? (f.object.backup === b.id ? `object ${f.object.n}` : `from ${f.object.backup}`)
              : f.delta ? `delta: ${f.delta.blocks.reduce((n, r) => n + r[1], 0)} blocks in object ${f.delta.n}`
              : f.parts ? `${f.parts.length} parts` : 'empty';
            process.stdout.write(`  ${f.path}  ${f.size}  ${where}\n`);
          }
        }
      }, { stanza: 'require' });
    });
}

export function registerRestoreCommand(program: Command): void {
  program
    .command('restore')
    .summary('restore a backup into a data directory, optionally to a point in time')
    .description(
      "Write a backup into --pgdata with recovery settings in postgresql.auto.conf (restore_command =\n" +
      "pgark wal-fetch with the same repository) and recovery.signal (or standby.signal with --standby).\n" +
      "<id> is a backup id, 'latest', or 'auto': the newest backup that ends before the --target-time or\n" +
      '--target-lsn. archive_mode is switched off in the copy unless --keep-archive. A non-empty target is\n' +
      'refused unless --delta (write only files that differ, remove extras) or --force (replace contents).\n' +
      'Every byte written is checked against the manifest; global/pg_control is written last.',
    )
    .argument('[id]', "backup id, 'latest' or 'auto' (default: auto)", 'auto')
    .option('--target-time <time>', "recover up to this time (e.g. '2026-11-23 16:20:00+00')")
    .option('--target-xid <xid>', 'recover up to this transaction id')
    .option('--target-name <name>', 'recover up to this restore point (pg_create_restore_point)')
    .option('--target-lsn <lsn>', 'recover up to this LSN')
    .option('--target-immediate', 'stop as soon as the backup is consistent')
    .option('--target-exclusive', 'stop just before the target (time, xid, lsn)')
    .addOption(new Option('--target-action <action>', 'when the target is reached: promote, pause or shutdown').choices(['promote', 'pause', 'shutdown']))
    .option('--target-timeline <tl>', "'latest', 'current' or a timeline id")
    .option('--standby', 'write standby.signal instead of recovery.signal')
    .option('--primary-conninfo <conninfo>', 'primary_conninfo for --standby')
    .option('--primary-slot-name <slot>', 'primary_slot_name for --standby')
    .option('--keep-archive', 'keep archive_mode/archive_command of the backup (default: archiving off)')
    .option('--tablespace-map <OLD=NEW>', 'restore tablespace OLD (oid, name or path) into NEW; repeatable', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--jobs <n>', 'parallel restores (default: number of CPU cores)')
    .option('--delta', 'update an existing data directory: write only what differs, remove extras')
    .option('--force', 'replace the contents of a non-empty target directory')
    .option('--no-progress', 'no progress output on stderr')
    .option('--json', 'print the result as JSON')
    .action(async (ref: string, opts: {
      targetTime?: string; targetXid?: string; targetName?: string; targetLsn?: string; targetImmediate?: boolean; targetExclusive?: boolean;
      targetAction?: 'promote' | 'pause' | 'shutdown'; targetTimeline?: string; standby?: boolean; primaryConninfo?: string; primarySlotName?: string;
      keepArchive?: boolean; tablespaceMap: string[]; jobs?: string; delta?: boolean; force?: boolean; progress: boolean; json?: boolean;
    }, cmd: Command) => {
      const settings = settingsFrom(cmd);
      if (!settings.pgdata) throw new ConfigError('restore needs --pgdata DIR (the directory to restore into)');
      const { runRestore } = await import('../restore/restore.js');
      const target = {
        ...(opts.targetTime !== undefined ? { time: opts.targetTime } : {}),
        ...(opts.targetXid !== undefined ? { xid: opts.targetXid } : {}),
        ...(opts.targetName !== undefined ? { name: opts.targetName } : {}),
        ...(opts.targetLsn !== undefined ? { lsn: opts.targetLsn } : {}),
        ...(opts.targetImmediate ? { immediate: true } : {}),
        ...(opts.targetExclusive ? { exclusive: true } : {}),
        ...(opts.targetAction !== undefined ? { action: opts.targetAction } : {}),
        ...(opts.targetTimeline !== undefined ? { timeline: opts.targetTimeline } : {}),
      };
      const out = await withRepository(settings, (repo) => runRestore(settings, repo, {
        ref, pgdata: settings.pgdata!, target, standby: !!opts.standby, primaryConninfo: opts.primaryConninfo, primarySlotName: opts.primarySlotName,
        keepArchive: !!opts.keepArchive, tablespaceMap: opts.tablespaceMap, jobs: intOption(opts.jobs, '--jobs', 1, 256),
        delta: !!opts.delta, force: !!opts.force, progress: opts.progress,
      }));
      if (opts.json) {
        printJson((await import('../json/catalog-json.js')).restoreJson(out));
        return;
      }
      for (const n of out.notes) process.stdout.write(`note: ${n}\n`);
      process.stdout.write(`restored backup ${out.backup.id} (${out.backup.type}) into ${out.pgdata}: ${out.filesWritten} files written` +
        (opts.delta ? `, ${out.filesUnchanged} unchanged, ${out.filesRemoved} removed` : '') + ` (${formatBytes(out.bytesWritten)}) in ${duration(out.durationMs)}\n`);
      for (const [k, v] of out.settings) if (k !== 'restore_command') process.stdout.write(`  ${k} = '${v}'\n`);
      process.stdout.write(`  ${out.signal} written; start it with: pg_ctl -D ${out.pgdata} start\n`);
    });
}

export function registerCatalogCommands(program: Command): void {
  program
    .command('expire')
    .summary('remove backups and WAL that the retention policy no longer needs')
    .description(
      'Apply the retention policy (flags, PGARK_RETAIN_* or the config file). A backup is kept when any\n' +
      'rule keeps it: --retain-full N (newest N fulls and their incrementals), --retain-window DUR (every\n' +
      'point of the window stays restorable), --retain-daily/--retain-weekly/--retain-monthly N (newest\n' +
      'backup of each of the last N days/ISO weeks/months that have one). Pinned backups (pgark keep)\n' +
      'and the newest backup are always kept, and a kept backup keeps its whole chain. WAL below the\n' +
      'start of the oldest kept backup is removed; history files are kept. With no rule, nothing happens.',
    )
    .option('--retain-full <n>', 'keep the newest N full backups and their incrementals')
    .option('--retain-window <duration>', 'keep every point of this window restorable (e.g. 7d, 36h, 2w)')
    .option('--retain-daily <n>', 'keep the newest backup of each of the last N days')
    .option('--retain-weekly <n>', 'keep the newest backup of each of the last N ISO weeks')
    .option('--retain-monthly <n>', 'keep the newest backup of each of the last N months')
    .option('--dry-run', 'print the plan, remove nothing')
    .option('--json', 'print as JSON')
    .action(async (opts: { dryRun?: boolean; json?: boolean }, cmd: Command) => {
      const settings = settingsFrom(cmd);
      const { runExpire } = await import('../catalog/expire.js');
      const out = await withRepository(settings, (repo) => runExpire(settings, repo, { dryRun: !!opts.dryRun }));
      if (opts.json) {
        printJson((await import('../json/catalog-json.js')).expireJson(out));
        return;
      }
      const verb = out.dryRun ? 'would remove' : 'removed';
      const wal = out.wouldRemove ? out.wouldRemove.wal : { files: out.wal.removed, bytes: out.wal.removedBytes };
      for (const k of out.plan.keep) process.stdout.write(`keep    ${k.id}  (${k.reasons.join('; ')})\n`);
      for (const e of out.plan.expire) process.stdout.write(`${out.dryRun ? 'expire ' : 'expired'} ${e.id}  (${e.reason})\n`);
      for (const w of out.plan.warnings) process.stdout.write(`warning: ${w}\n`);
      for (const id of out.wouldRemove?.uncommitted ?? out.removedUncommitted) process.stdout.write(`${verb} uncommitted backup ${id}\n`);
      process.stdout.write(`WAL: ${verb} ${wal.files} file(s) (${formatBytes(wal.bytes)})` +
        (out.wal.keptFrom ? `; WAL from ${out.wal.keptFrom} on is kept` : '') + '\n');
    });

  program
    .command('keep')
    .summary('pin a backup so that expire never removes it (or --release the pin)')
    .argument('<id>', "backup id or 'latest'")
    .option('--release', 'remove the pin')
    .action(async (ref: string, opts: { release?: boolean }, cmd: Command) => {
      const settings = settingsFrom(cmd);
      const { setPin } = await import('../catalog/expire.js');
      const r = await withRepository(settings, (repo) => setPin(repo, ref, !!opts.release), { stanza: 'require' });
      process.stdout.write(`backup ${r.id} ${opts.release ? (r.changed ? 'released' : 'was not pinned') : r.changed ? 'pinned (with its chain)' : 'was already pinned'}\n`);
    });

  program
    .command('delete')
    .summary('delete one backup')
    .description('Delete a backup. Refused when incrementals depend on it, it is pinned, or the retention\npolicy keeps it, unless --force (which also deletes the backups that depend on it).')
    .argument('<id>', 'backup id')
    .option('--force', 'delete even if that breaks a chain, a pin or the retention policy')
    .action(async (ref: string, opts: { force?: boolean }, cmd: Command) => {
      const settings = settingsFrom(cmd);
      const { runDelete } = await import('../catalog/expire.js');
      const r = await withRepository(settings, (repo) => runDelete(settings, repo, ref, !!opts.force));
      for (const why of r.overridden) process.stdout.write(`forced: ${why}\n`);
      process.stdout.write(`deleted ${r.removed.join(', ')}\n`);
    });

  program
    .command('verify')
    .summary('re-read backups and the WAL they need, and check every checksum')
    .argument('[id]', "backup id or 'latest' (default: every backup)")
    .option('--all', 'every backup (the default)')
    .option('--full', 're-read objects verified by earlier runs too')
    .option('--jobs <n>', 'parallel reads (default 4)')
    .option('--json', 'print as JSON')
    .action(async (ref: string | undefined, opts: { full?: boolean; jobs?: string; json?: boolean }, cmd: Command) => {
      const settings = settingsFrom(cmd);
      const { runVerify } = await import('../catalog/verify.js');
      const out = await withRepository(settings, (repo) => runVerify(repo, { ref, full: !!opts.full, jobs: intOption(opts.jobs, '--jobs', 1, 256) ?? settings.jobs }));
      if (opts.json) printJson((await import('../json/catalog-json.js')).verifyJson(out));
      else {
        for (const b of out.backups) {
          process.stdout.write(`${b.ok ? 'ok    ' : 'FAILED'} ${b.id}: ${b.objectsRead} objects read, ${b.objectsSkipped} verified before, ${b.walChecked} WAL segments\n`);
          for (const p of b.problems) process.stdout.write(`       ${p}\n`);
        }
        process.stdout.write(`${out.ok ? 'all ok' : 'verification FAILED'}: ${out.objectsRead} objects (${formatBytes(out.bytesRead)}) and ${out.walRead} WAL segments read; ${out.objectsSkipped + out.walSkipped} skipped as verified before (--full re-reads them)\n`);
      }
      if (!out.ok) process.exitCode = ExitCode.VERIFY_FAILED;
    });
}
