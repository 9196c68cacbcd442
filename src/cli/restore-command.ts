/** CLI wiring of `pgark restore`. The implementation loads only when the command runs. */
import { Command, Option } from 'commander';
import { ConfigError } from '../common/errors.js';
import { duration } from './backup-text.js';
import { printJson, settingsFrom } from './context.js';
import { formatBytes } from './format.js';
import { intOption, repeatable } from './options.js';

export function registerRestoreCommand(program: Command): void {
  program
    .command('restore')
    .summary('restore a backup into a data directory, optionally to a point in time')
    .description(
      "Write a backup into --pgdata with recovery settings in postgresql.auto.conf (restore_command = " +
      "pgark wal-fetch with the same repositories) and recovery.signal (or standby.signal with --standby). " +
      "With repo2/repo3 the backup is read from the first repository that has it ('latest'/'auto': the newest " +
      'across them); an unreachable one is skipped, and objects that cannot be read are read from the next one. ' +
      "<id> is a backup id, 'latest', or 'auto': the newest backup that ends before the --target-time or " +
      '--target-lsn. archive_mode is switched off in the copy unless --keep-archive. A non-empty target is ' +
      'refused unless --delta (write only files that differ, remove extras) or --force (replace contents). ' +
      'Every byte written is checked against the manifest; global/pg_control is written last.',
    )
    .argument('[id]', "backup id, 'latest' or 'auto' (the newest backup that can reach the target)", 'auto')
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
    .option('--tablespace-map <OLD=NEW>', 'restore tablespace OLD (oid, name or path) into NEW; repeatable', repeatable)
    .option('--jobs <n>', 'parallel restores (default: number of CPU cores)')
    .option('--delta', 'update an existing data directory: write only what differs, remove extras')
    .option('--force', 'replace the contents of a non-empty target directory')
    .option('--owner <user[:group]>', 'run as root: give the files to this OS user (default: the owner recorded in the backup)')
    .option('--no-progress', 'no progress output on stderr')
    .option('--json', 'print the result as JSON')
    .action(async (ref: string, opts: {
      owner?: string; targetTime?: string; targetXid?: string; targetName?: string; targetLsn?: string; targetImmediate?: boolean; targetExclusive?: boolean;
      targetAction?: 'promote' | 'pause' | 'shutdown'; targetTimeline?: string; standby?: boolean; primaryConninfo?: string; primarySlotName?: string;
      keepArchive?: boolean; tablespaceMap?: string[]; jobs?: string; delta?: boolean; force?: boolean; progress: boolean; json?: boolean;
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
      // Every repository of the stanza (repo, repo2, repo3), each opened only when restore reads it.
      const { withRepoSet } = await import('../repo/repo-set.js');
      const out = await withRepoSet(settings, (set) => runRestore(set, settings, {
        ref, pgdata: settings.pgdata!, target, standby: !!opts.standby, primaryConninfo: opts.primaryConninfo, primarySlotName: opts.primarySlotName,
        keepArchive: !!opts.keepArchive, tablespaceMap: opts.tablespaceMap ?? [], jobs: intOption(opts.jobs, '--jobs', 1, 256),
        delta: !!opts.delta, force: !!opts.force, progress: opts.progress, owner: opts.owner,
      }), { lazy: true });
      if (opts.json) {
        printJson((await import('../json/catalog-json.js')).restoreJson(out));
        return;
      }
      for (const n of out.notes) process.stdout.write(`note: ${n}\n`);
      process.stdout.write(`restored backup ${out.backup.id} (${out.backup.type})${settings.moreRepos.length > 0 ? ` from ${out.repo}` : ''} into ${out.pgdata}: ${out.filesWritten} files written` +
        (opts.delta ? `, ${out.filesUnchanged} unchanged, ${out.filesRemoved} removed` : '') + ` (${formatBytes(out.bytesWritten)}) in ${duration(out.durationMs)}\n`);
      for (const [k, v] of out.settings) if (k !== 'restore_command') process.stdout.write(`  ${k} = '${v}'\n`);
      process.stdout.write(`  ${out.signal} written; start it with: ${out.owner ? `sudo -u ${out.owner.user} ` : ''}pg_ctl -D ${out.pgdata} start\n`);
    });
}
