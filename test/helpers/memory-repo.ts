/**
 * Repositories in memory (storage-drivers/memory) for unit tests: no CLI, no disk, no server.
 * Each call makes a fresh store; `drop()` forgets it.
 */
import type { BackupInfo } from '../../src/catalog/backup-info.js';
import { resolveSettings, type FlagValues, type Settings } from '../../src/config/resolve.js';
import type { RetryPolicy } from '../../src/common/retry.js';
import { catalogKey, dataObjectKey, manifestKey } from '../../src/repo/layout.js';
import { Repository } from '../../src/repo/repository.js';
import { formatLsn, lsnToSegment, parseLsn, segmentName } from '../../src/wal/segment-name.js';
import { createMemoryStore, dropMemoryStore, type MemoryDriver } from '../../storage-drivers/memory/memory-driver.js';
import type { StorageDriver } from '../../storage-drivers/types.js';

let n = 0;

export interface MemoryRepo {
  repo: Repository;
  driver: MemoryDriver;
  /** memory://<name>: what settings give as `repo` to reach the same store. */
  location: string;
  /** Settings resolved from `flags` (nothing from the environment or a config file) with this repo and stanza. */
  settings: (flags?: FlagValues) => Settings;
  drop: () => void;
}

export function memoryRepo(o: { stanza?: string; policy?: RetryPolicy; wrap?: (d: MemoryDriver) => StorageDriver } = {}): MemoryRepo {
  const name = `unit-${process.pid}-${++n}`;
  const driver = createMemoryStore(name);
  const stanza = o.stanza ?? 'main';
  const repo = new Repository(o.wrap ? o.wrap(driver) : driver, stanza, o.policy ?? { attempts: 1, budgetMs: 0 });
  const location = `memory://${name}`;
  return {
    repo, driver, location,
    settings: (flags = {}) => resolveSettings({ repo: location, stanza, ...flags }, {}),
    drop: () => dropMemoryStore(name),
  };
}

/** Every key in the store, sorted. */
export async function allKeys(d: StorageDriver, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for await (const o of d.list(prefix)) out.push(o.path);
  return out.sort();
}

export const SEG = 16 * 1024 * 1024;

function walFileOf(lsn: string, tl: number): string {
  return segmentName(lsnToSegment(parseLsn(lsn), tl, SEG), SEG);
}

/** A catalog entry of a backup that started at `lsn` (16 MiB segments) and stopped at `stop`. */
export function backupEntry(s: { id: string; lsn: string; stop: string; parent?: BackupInfo; tl?: number; systemIdentifier?: string }): BackupInfo {
  const tl = s.tl ?? 1;
  const stopLsn = formatLsn(parseLsn(s.lsn) + 0x100000n);
  const b: BackupInfo = {
    format: 1,
    id: s.id,
    type: s.parent ? 'incr' : 'full',
    chain: s.parent ? [...s.parent.chain, s.id] : [s.id],
    start: { time: new Date(Date.parse(s.stop) - 600_000).toISOString(), lsn: s.lsn, timeline: tl, walFile: walFileOf(s.lsn, tl) },
    stop: { time: s.stop, lsn: stopLsn, timeline: tl, walFile: walFileOf(stopLsn, tl) },
    walRange: { first: walFileOf(s.lsn, tl), last: walFileOf(stopLsn, tl) },
    walStored: false,
    pgVersion: 150000,
    systemIdentifier: s.systemIdentifier ?? '7000000000000000001',
    dataChecksums: true,
    fromStandby: false,
    size: { original: 1, stored: 1, files: 1, objects: 1 },
    durationMs: 600_000,
    checksumFailures: 0,
    codec: 'none',
    manifest: { key: `main/backup/${s.id}/manifest`, sha256: '0'.repeat(64), size: 1 },
    pgarkVersion: '0.1.0',
    host: 'db1',
  };
  if (s.parent) b.parent = s.parent.id;
  return b;
}

/** Store a backup's data objects and manifest placeholder, and, unless `committed` is false, its catalog entry. */
export async function storeBackup(repo: Repository, info: BackupInfo, o: { objects?: number; committed?: boolean } = {}): Promise<void> {
  for (let i = 0; i < (o.objects ?? 2); i++) await repo.putSmallObject(dataObjectKey(repo.stanza, info.id, i), Buffer.from(`${info.id} object ${i}`));
  await repo.putSmallObject(manifestKey(repo.stanza, info.id), Buffer.from(`manifest of ${info.id}`));
  if (o.committed !== false) await repo.putJson(catalogKey(repo.stanza, info.id), info, true);
}
