/**
 * `pgark copy`: what one repository of the stanza holds, copied into another (repo2, repo3),
 * through Repository.copyObjectTo: verified on the way, as stored when both are plain, re-encoded
 * with the target's key otherwise, never overwriting, resumable (objects already there with the
 * same content are skipped). The database is never read: a backup is taken once and copied.
 *
 * Order: the stanza first (the target's must be the same cluster), then WAL, then each backup's
 * data objects and manifest, its catalog entry last (the commit point: a backup appears in the
 * target only once everything it needs is there). After WAL is copied into a repository, the
 * source's backlog records for it (wal-backlog.ts) are dropped.
 */
import { InvalidInputError } from '../common/errors.js';
import { log } from '../common/log.js';
import { mapPool } from '../common/pool.js';
import { listBackups } from '../catalog/catalog.js';
import { backlogKey, backupPrefix, catalogKey, stanzaMetaKey, walNameOfKey, walPrefix } from '../repo/layout.js';
import type { Repository } from '../repo/repository.js';
import { assertSameCluster } from '../repo/stanza-meta.js';
import { backlogNames } from '../wal/wal-backlog.js';

export interface CopyRequest {
  wal: boolean;
  /** Backup ids, or 'all'. */
  backups: string[] | 'all';
  jobs: number;
}

export interface CopyReport {
  from: string;
  to: string;
  toName: string;
  objects: { copied: number; existing: number; asStored: number; reEncoded: number; bytes: number };
  walFiles: number;
  backups: string[];
  backlogCleared: number;
}

export async function copyRepository(source: Repository, target: Repository, targetName: string, req: CopyRequest): Promise<CopyReport> {
  const meta = await source.requireStanza();
  const theirs = await target.readStanza();
  if (theirs) assertSameCluster(theirs, meta, `repository ${targetName} ('${target.location}')`);
  else await target.putJson(stanzaMetaKey(target.stanza), meta, true);
  const report: CopyReport = {
    from: source.location, to: target.location, toName: targetName,
    objects: { copied: 0, existing: 0, asStored: 0, reEncoded: 0, bytes: 0 }, walFiles: 0, backups: [], backlogCleared: 0,
  };
  const codec = (await target.requireStanza()).codec;
  const copyAll = async (keys: string[]): Promise<void> => {
    const results = await mapPool(keys, req.jobs, async (key) => {
      const r = await source.copyObjectTo(target, key, { codec });
      if (r.status === 'exists') report.objects.existing++;
      else {
        report.objects.copied++;
        report.objects.bytes += r.rawSize;
        if (r.how === 'as-stored') report.objects.asStored++;
        else report.objects.reEncoded++;
      }
    });
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  };
  const listKeys = async (prefix: string): Promise<string[]> => {
    const keys: string[] = [];
    for await (const o of source.list(prefix)) keys.push(o.path);
    return keys.sort();
  };

  if (req.wal) {
    const keys = (await listKeys(walPrefix(source.stanza))).filter((k) => walNameOfKey(k) !== undefined);
    await copyAll(keys);
    report.walFiles = keys.length;
    const copied = new Set(keys.map((k) => walNameOfKey(k)!));
    const done = (await backlogNames(source, targetName)).filter((n) => copied.has(n));
    if (done.length > 0) await source.delete(done.map((n) => backlogKey(source.stanza, targetName, n)));
    report.backlogCleared = done.length;
    log.info(`copy: ${keys.length} WAL files in ${targetName}; ${done.length} backlog records dropped`);
  }

  const catalog = await listBackups(source);
  // A backup needs its chain (an incremental's parents, oldest first) and, without --wal, the WAL
  // from its start to its end (what makes it consistent).
  const ids: string[] = [];
  for (const want of req.backups === 'all' ? catalog.map((b) => b.id) : req.backups) {
    const b = catalog.find((c) => c.id === want);
    if (!b) throw new InvalidInputError(`unable to copy backup '${want}': not in repository '${source.location}' (pgark list shows its backups)`);
    for (const id of b.chain) if (!ids.includes(id)) ids.push(id);
  }
  const walKeys = req.wal ? [] : await listKeys(walPrefix(source.stanza));
  for (const id of ids) {
    const b = catalog.find((c) => c.id === id);
    if (!b) throw new InvalidInputError(`unable to copy backup '${id}': its chain names it but it is not in repository '${source.location}'`);
    if (!req.wal) {
      const { first, last } = b.walRange;
      await copyAll(walKeys.filter((k) => {
        const n = walNameOfKey(k);
        return n !== undefined && n.length >= 24 && n.slice(0, 8) === first.slice(0, 8) && n.slice(0, 24) >= first && n.slice(0, 24) <= last;
      }));
    }
    await copyAll(await listKeys(backupPrefix(source.stanza, id)));
    await copyAll([catalogKey(source.stanza, id)]);
    report.backups.push(id);
    log.info(`copy: backup ${id} in ${targetName}`);
  }
  return report;
}
