/**
 * The backup catalog on a repository: committed backups (one small entry each under
 * `<stanza>/catalog/`), their manifests, pins, and what aborted runs left behind.
 * Backups are ordered by start LSN, then start time — never by name.
 */
import { IntegrityError, NotFoundError } from '../common/errors.js';
import { backupIdOfCatalogKey, backupPrefix, catalogKey, catalogPrefix, isBackupId, manifestKey, pinKey, pinPrefix, verifyStateKey } from '../repo/layout.js';
import { readAll } from '../repo/object-stream.js';
import type { Repository } from '../repo/repository.js';
import { parseLsn } from '../wal/segment-name.js';
import { parseManifest, type Manifest } from './manifest.js';
import { parseBackupInfo, type BackupInfo } from './backup-info.js';
import { createHash } from 'node:crypto';

export function compareBackups(a: BackupInfo, b: BackupInfo): number {
  const x = parseLsn(a.start.lsn);
  const y = parseLsn(b.start.lsn);
  if (x !== y) return x < y ? -1 : 1;
  return Date.parse(a.start.time) - Date.parse(b.start.time);
}

export async function listBackups(repo: Repository): Promise<BackupInfo[]> {
  const out: BackupInfo[] = [];
  for await (const o of repo.list(catalogPrefix(repo.stanza))) {
    const id = backupIdOfCatalogKey(o.path);
    if (!id) continue;
    out.push(await readBackupInfo(repo, id));
  }
  return out.sort(compareBackups);
}

export async function readBackupInfo(repo: Repository, id: string): Promise<BackupInfo> {
  const key = catalogKey(repo.stanza, id);
  const info = parseBackupInfo(await repo.getJson(key), key);
  if (info.id !== id) throw new IntegrityError(`unable to read '${key}': it describes backup '${info.id}'`);
  return info;
}

export async function listPins(repo: Repository): Promise<Set<string>> {
  const pins = new Set<string>();
  for await (const o of repo.list(pinPrefix(repo.stanza))) {
    const id = o.path.slice(o.path.lastIndexOf('/') + 1);
    if (isBackupId(id)) pins.add(id);
  }
  return pins;
}

/** Resolve 'latest' or an id against the catalog. */
export function findBackup(backups: readonly BackupInfo[], ref: string): BackupInfo {
  if (backups.length === 0) throw new NotFoundError(ref, 'the repository holds no backup of this stanza');
  if (ref === 'latest') return backups[backups.length - 1]!;
  const b = backups.find((x) => x.id === ref);
  if (!b) throw new NotFoundError(ref, `backup '${ref.slice(0, 64)}' not found (pgark list shows the backups)`);
  return b;
}

/** The backups of `b`'s chain, root full first, each checked present. */
export function chainOf(backups: readonly BackupInfo[], b: BackupInfo): BackupInfo[] {
  return b.chain.map((id) => {
    const x = backups.find((y) => y.id === id);
    if (!x) throw new IntegrityError(`backup '${b.id}' depends on backup '${id}', which is missing from the repository`);
    return x;
  });
}

export async function readManifest(repo: Repository, info: BackupInfo): Promise<Manifest> {
  const key = manifestKey(repo.stanza, info.id);
  const text = await readAll(await repo.getObject(key), 2 ** 30);
  const sha = createHash('sha256').update(text).digest('hex');
  if (sha !== info.manifest.sha256) throw new IntegrityError(`unable to read '${key}': it is not the manifest the catalog entry of '${info.id}' records`);
  const m = parseManifest(text.toString('utf8'), key);
  if (m.header.id !== info.id) throw new IntegrityError(`unable to read '${key}': it describes backup '${m.header.id}'`);
  return m;
}

/** Backup ids that have stored objects but no catalog entry: runs that never committed. */
export async function uncommittedBackupIds(repo: Repository, committed: ReadonlySet<string>, o: { sweep?: boolean } = {}): Promise<Set<string>> {
  const prefix = backupPrefix(repo.stanza);
  // Half-written objects of killed runs are not listed: remove them first (only dead writers'; not on a dry run).
  if (o.sweep ?? true) await repo.sweep(prefix);
  const ids = new Set<string>();
  for await (const o of repo.list(prefix)) {
    const id = o.path.slice(prefix.length).split('/')[0] ?? '';
    if (isBackupId(id) && !committed.has(id)) ids.add(id);
  }
  return ids;
}

/**
 * Remove a backup: the catalog entry first (from then on it is not listed and, if this is
 * interrupted, the next backup run removes the rest), then its pin, verify state and objects.
 */
export async function removeBackup(repo: Repository, id: string, committed: boolean): Promise<number> {
  if (committed) await repo.delete([catalogKey(repo.stanza, id)]);
  await repo.delete([pinKey(repo.stanza, id), verifyStateKey(repo.stanza, id)]);
  const keys: string[] = [];
  for await (const o of repo.list(backupPrefix(repo.stanza, id))) keys.push(o.path);
  // Manifest last: a half-removed backup still says what it held.
  keys.sort((a, b) => Number(a.endsWith('/manifest')) - Number(b.endsWith('/manifest')));
  for (let i = 0; i < keys.length; i += 500) await repo.delete(keys.slice(i, i + 500));
  await repo.sweep(backupPrefix(repo.stanza, id));
  return keys.length;
}
