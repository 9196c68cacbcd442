/**
 * Reading the repository facts of `pgark metrics`: per refresh one listing of the catalog, one
 * of the WAL and one of the drill reports. Catalog entries and drill reports are immutable once
 * written, so each is read once and cached (by key, size and mtime); only new ones cost a read.
 */
import { log } from '../common/log.js';
import { readBackupInfo } from '../catalog/catalog.js';
import type { BackupInfo } from '../catalog/backup-info.js';
import type { ObjectInfo } from '../../storage-drivers/types.js';
import { backupIdOfCatalogKey, catalogPrefix, drillPrefix, walPrefix } from '../repo/layout.js';
import type { Repository } from '../repo/repository.js';
import { drillIdOfKey, drillTimeMs, summariseDrillReport, type DrillSummary } from './metrics-drill.js';
import { summariseBackups, summariseWal, type DrillFacts, type RepositoryFacts } from './metrics-model.js';
import { backlogStates } from '../wal/wal-backlog.js';

/** Drill reports read (uncached) per refresh while looking for the newest one that passed. */
const DRILL_READS_PER_REFRESH = 20;

interface Cached<T> {
  size: number;
  mtimeMs: number;
  value: T;
}

async function listAll(repo: Repository, prefix: string, signal?: AbortSignal): Promise<ObjectInfo[]> {
  const out: ObjectInfo[] = [];
  for await (const o of repo.list(prefix, signal ? { signal } : {})) {
    signal?.throwIfAborted();
    out.push(o);
  }
  return out;
}

/** Summary of one stored drill report; a report that cannot be read is summarised as unreadable. */
export async function readDrillSummary(repo: Repository, key: string, id: string): Promise<DrillSummary> {
  try {
    return summariseDrillReport(id, await repo.getJson(key));
  } catch (err) {
    log.warn(`unable to read drill report '${key}': ${(err as Error).message}`);
    return { id, phases: {}, rpo: {}, unreadable: (err as Error).message };
  }
}

/** Drill reports under the stanza, newest first (ids sort by time). */
async function listDrills(repo: Repository, signal?: AbortSignal): Promise<Array<{ id: string; o: ObjectInfo }>> {
  return (await listAll(repo, drillPrefix(repo.stanza), signal))
    .map((o) => ({ id: drillIdOfKey(o.path), o }))
    .filter((x): x is { id: string; o: ObjectInfo } => x.id !== undefined)
    .sort((a, b) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
}

/** The number of stored drills and the newest one (for `pgark info`). */
export async function latestDrill(repo: Repository): Promise<{ count: number; last?: DrillSummary }> {
  const drills = await listDrills(repo);
  const newest = drills[0];
  return { count: drills.length, ...(newest ? { last: await readDrillSummary(repo, newest.o.path, newest.id) } : {}) };
}

/** Reads RepositoryFacts; keep one per repository so its caches carry over between refreshes. */
export class RepositoryFactsReader {
  private readonly backups = new Map<string, Cached<BackupInfo>>();
  private readonly drills = new Map<string, Cached<DrillSummary>>();

  /** `backlogRepos`: the async further repositories, shown with a backlog of 0 when they have none. */
  constructor(private readonly repo: Repository, private readonly backlogRepos: readonly string[] = []) {}

  async read(signal?: AbortSignal): Promise<RepositoryFacts> {
    // A stanza not created yet (an agent or receiver before the first segment): nothing stored.
    const meta = await this.repo.readStanza();
    if (!meta) return { backups: { count: 0 }, wal: { segments: 0, storedBytes: 0 }, drills: { count: 0 } };
    const [catalog, wal, drills, backlog] = await Promise.all([
      listAll(this.repo, catalogPrefix(this.repo.stanza), signal),
      listAll(this.repo, walPrefix(this.repo.stanza), signal),
      listDrills(this.repo, signal),
      // Only with an async further repository (one listing more per refresh).
      this.backlogRepos.length > 0 ? backlogStates(this.repo, this.backlogRepos, signal) : undefined,
    ]);
    return {
      backups: summariseBackups(await this.catalogEntries(catalog, signal)),
      wal: summariseWal(wal, meta.walSegmentSize),
      drills: await this.drillFacts(drills, signal),
      ...(backlog ? { backlog: backlog.map((b) => ({ repo: b.repo, files: b.files, oldestMs: b.oldestMs })) } : {}),
    };
  }

  private async catalogEntries(listing: ObjectInfo[], signal?: AbortSignal): Promise<BackupInfo[]> {
    const seen = new Set<string>();
    const out: BackupInfo[] = [];
    for (const o of listing) {
      const id = backupIdOfCatalogKey(o.path);
      if (!id) continue;
      seen.add(o.path);
      const hit = this.backups.get(o.path);
      if (hit && hit.size === o.size && hit.mtimeMs === o.mtimeMs) {
        out.push(hit.value);
        continue;
      }
      signal?.throwIfAborted();
      const info = await readBackupInfo(this.repo, id);
      this.backups.set(o.path, { size: o.size, mtimeMs: o.mtimeMs, value: info });
      out.push(info);
    }
    for (const k of [...this.backups.keys()]) if (!seen.has(k)) this.backups.delete(k);
    return out;
  }

  private async summary(d: { id: string; o: ObjectInfo }): Promise<DrillSummary> {
    const hit = this.drills.get(d.o.path);
    if (hit && hit.size === d.o.size && hit.mtimeMs === d.o.mtimeMs) return hit.value;
    const value = await readDrillSummary(this.repo, d.o.path, d.id);
    this.drills.set(d.o.path, { size: d.o.size, mtimeMs: d.o.mtimeMs, value });
    return value;
  }

  private async drillFacts(listing: Array<{ id: string; o: ObjectInfo }>, signal?: AbortSignal): Promise<DrillFacts> {
    const keys = new Set(listing.map((d) => d.o.path));
    for (const k of [...this.drills.keys()]) if (!keys.has(k)) this.drills.delete(k);
    const newest = listing[0];
    if (!newest) return { count: 0 };
    const facts: DrillFacts = { count: listing.length, last: await this.summary(newest) };
    // The newest drill that passed: walk back from the newest, reading a bounded number of
    // reports per refresh; what was read stays cached, so a long run of failures is walked
    // over a few refreshes rather than in one.
    let reads = 0;
    for (const d of listing) {
      const cached = this.drills.has(d.o.path);
      if (!cached && reads >= DRILL_READS_PER_REFRESH) break;
      signal?.throwIfAborted();
      if (!cached) reads++;
      const s = await this.summary(d);
      if (s.result === 'passed') {
        const t = drillTimeMs(s);
        if (t !== undefined) facts.lastPassedMs = t;
        break;
      }
    }
    return facts;
  }
}
