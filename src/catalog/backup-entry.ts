/** A backup's catalog entry as every output (list, info, --json) shows it (pure). */
import type { BackupInfo } from './backup-info.js';

/** The catalog entry without its storage format, with its pin. */
export type BackupEntry = Omit<BackupInfo, 'format'> & { kept: boolean };

export function backupEntry(b: BackupInfo, kept: boolean): BackupEntry {
  const { format: _stored, ...rest } = b;
  return { ...rest, kept };
}

/** Each backup of a stanza, oldest first. */
export function backupEntries(backups: readonly BackupInfo[], pins: ReadonlySet<string>): BackupEntry[] {
  return backups.map((b) => backupEntry(b, pins.has(b.id)));
}
