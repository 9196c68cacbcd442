/**
 * `--json` of backup, list, show, restore, expire and verify (pure: data in, output object out).
 * Formats: docs/JSON.md.
 */
import type { BackupInfo } from '../catalog/backup-info.js';
import type { ExpireOutcome } from '../catalog/expire.js';
import type { VerifyOutcome } from '../catalog/verify.js';
import type { FileEntry, Manifest } from '../catalog/manifest.js';
import type { RestoreOutcome } from '../restore/restore.js';
import { backupEntries, backupEntry } from '../catalog/backup-entry.js';
import { withFormat } from './format.js';

export { backupEntry, backupEntries, type BackupEntry } from '../catalog/backup-entry.js';

export function backupJson(info: BackupInfo, kept: boolean, checksumFailures: ReadonlyArray<{ path: string; blocks: number[] }>, notes: readonly string[]) {
  return withFormat('backup', { ...backupEntry(info, kept), checksumFailureList: [...checksumFailures], notes: [...notes] });
}

export function listJson(stanza: string, backups: readonly BackupInfo[], pins: ReadonlySet<string>) {
  return withFormat('list', { stanza, backups: backupEntries(backups, pins) });
}

export function showJson(b: BackupInfo, kept: boolean, manifest: Manifest | undefined, withFiles: boolean) {
  const files: FileEntry[] = manifest ? [...manifest.files.values()] : [];
  return withFormat('show', {
    ...backupEntry(b, kept),
    ...(withFiles && manifest ? { files, dirs: manifest.dirs, links: manifest.links } : {}),
    checksumFailureList: files.filter((f) => f.checksumFailures).map((f) => ({ path: f.path, blocks: f.checksumFailures! })),
  });
}

export function restoreJson(out: RestoreOutcome) {
  const { owner, ...rest } = out;
  return withFormat('restore', {
    ...rest, backup: out.backup.id, settings: Object.fromEntries(out.settings),
    ...(owner ? { owner: { user: owner.user, group: owner.group, uid: owner.uid, gid: owner.gid } } : {}),
  });
}

/**
 * expire: `removed` is what this run removed (nothing on a dry run); a dry run lists in
 * `wouldRemove` every backup and WAL object that a run without --dry-run would remove now.
 */
export function expireJson(out: ExpireOutcome) {
  return withFormat('expire', {
    dryRun: out.dryRun,
    plan: out.plan,
    walKeptFrom: out.wal.keptFrom,
    removed: { backups: out.removedBackups, uncommitted: out.removedUncommitted, wal: { files: out.wal.removed, bytes: out.wal.removedBytes } },
    ...(out.wouldRemove ? { wouldRemove: out.wouldRemove } : {}),
  });
}

export function verifyJson(out: VerifyOutcome) {
  return withFormat('verify', out);
}
