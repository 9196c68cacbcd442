/** Text rendering of backups for the CLI (pure): durations and the description `backup`, `show` and `restore` print. */
import type { BackupInfo } from '../catalog/backup-info.js';
import { formatBytes } from './format.js';

export function duration(ms: number): string {
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
      (b.size.changedBlocks !== undefined ? `; blocks ${b.size.changedBlocks} stored, ${b.size.reusedBlocks ?? 0} from the parent` : '') +
      (b.size.unchangedFiles ? `; ${b.size.unchangedFiles} unchanged files (${formatBytes(b.size.unchangedBytes ?? 0)}) not read` : ''),
    `  took    ${duration(b.durationMs)}${b.fromStandby ? ', from a standby' : ''}; PostgreSQL ${b.pgVersion}; chain ${b.chain.join(' <- ')}`,
  ];
  if (b.checksumFailures > 0) lines.push(`  WARNING ${b.checksumFailures} page(s) failed checksum verification (pgark show ${b.id} --files)`);
  return lines.join('\n');
}
