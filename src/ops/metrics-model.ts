/**
 * What `pgark metrics` knows (pure): the facts read from the repository and from
 * pg_stat_archiver, and the arithmetic that turns listings and catalog entries into them.
 * Times are kept as timestamps (ms); ages are computed when a scrape renders them, so cached
 * facts keep ageing between refreshes.
 */
import type { BackupInfo } from '../catalog/backup-info.js';
import type { ObjectInfo } from '../../storage-drivers/types.js';
import { walNameOfKey } from '../repo/layout.js';
import { parseLsn, parseSegmentName, segmentStartLsn } from '../wal/segment-name.js';
import type { DrillSummary } from './metrics-drill.js';
import { isSegmentName, segmentOfArchivedName } from '../pg/wal-names.js';

export interface BackupFacts {
  count: number;
  /** The newest backup by start LSN (then start time), as `pgark list` orders them. */
  last?: { id: string; type: string; startMs: number; stopMs: number; durationSec: number; originalBytes: number; storedBytes: number };
  /** Stop time of the newest full backup. */
  lastFullStopMs?: number;
  /** Start time of the oldest backup: the earliest point in time a restore can reach. */
  oldestStartMs?: number;
}

export interface WalFacts {
  /** Whole segments archived (not .partial, .history or .backup files). */
  segments: number;
  /** Stored (compressed) bytes of every WAL object, history and backup files included. */
  storedBytes: number;
  /** The newest archived whole segment: highest timeline, then highest segment number. */
  newest?: { name: string; timeline: number; endLsn: number; mtimeMs: number };
}

export interface DrillFacts {
  count: number;
  last?: DrillSummary;
  /** When the newest drill that passed ended; undefined if none passed (among those read). */
  lastPassedMs?: number;
}

export interface RepositoryFacts {
  backups: BackupFacts;
  wal: WalFacts;
  drills: DrillFacts;
  /** The backlog of each async further repository (wal/wal-backlog.ts); oldestMs NaN when empty. */
  backlog?: Array<{ repo: string; files: number; oldestMs: number }>;
}

/** One row of pg_stat_archiver plus the server's current WAL file. */
export interface ArchiverFacts {
  archivedCount: number;
  failedCount: number;
  lastArchivedWal?: string;
  lastArchivedMs?: number;
  lastFailedWal?: string;
  lastFailedMs?: number;
  inRecovery: boolean;
  /** Completed segments not archived yet (see pendingSegments); undefined when it cannot be told. */
  pendingSegments?: number;
}

/** Numeric value of a `X/Y` LSN text (precise up to 2^53, i.e. 8 PiB of WAL). */
export function lsnNumber(lsn: string): number {
  return Number(parseLsn(lsn));
}

/** Backup facts from the catalog entries (any order). */
export function summariseBackups(infos: readonly BackupInfo[]): BackupFacts {
  if (infos.length === 0) return { count: 0 };
  const byStart = [...infos].sort((a, b) => {
    const x = parseLsn(a.start.lsn);
    const y = parseLsn(b.start.lsn);
    return x !== y ? (x < y ? -1 : 1) : Date.parse(a.start.time) - Date.parse(b.start.time);
  });
  const b = byStart[byStart.length - 1]!;
  const fulls = byStart.filter((x) => x.type === 'full');
  const lastFull = fulls[fulls.length - 1];
  return {
    count: infos.length,
    last: {
      id: b.id, type: b.type, startMs: Date.parse(b.start.time), stopMs: Date.parse(b.stop.time),
      durationSec: b.durationMs / 1000, originalBytes: b.size.original, storedBytes: b.size.stored,
    },
    ...(lastFull ? { lastFullStopMs: Date.parse(lastFull.stop.time) } : {}),
    oldestStartMs: Math.min(...infos.map((x) => Date.parse(x.start.time))),
  };
}

/** WAL facts from one listing of `<stanza>/wal/`. */
export function summariseWal(objects: readonly ObjectInfo[], walSegmentSize: number): WalFacts {
  let segments = 0;
  let storedBytes = 0;
  let newest: { name: string; o: ObjectInfo } | undefined;
  for (const o of objects) {
    const name = walNameOfKey(o.path);
    if (!name) continue;
    storedBytes += o.size;
    if (!isSegmentName(name)) continue;
    segments++;
    // Fixed-width hex: the name order is timeline, then segment number.
    if (!newest || name > newest.name) newest = { name, o };
  }
  if (!newest) return { segments, storedBytes };
  const id = parseSegmentName(newest.name, walSegmentSize);
  return {
    segments, storedBytes,
    newest: { name: newest.name, timeline: id.timeline, endLsn: Number(segmentStartLsn(id, walSegmentSize)) + walSegmentSize, mtimeMs: newest.o.mtimeMs },
  };
}

/**
 * Completed segments the archiver has not archived yet: those after `lastArchivedWal` and before
 * the segment holding `currentLsn` (the insert position: that segment is being written, so not
 * complete; right after a switch it is the new, empty segment). Compared by segment number, so a
 * timeline switch in between does not count as a backlog. Undefined when it cannot be told:
 * nothing archived yet, the last archived file is a history file, or a name does not parse. A
 * `.partial` file counts as its segment, and so does a `.backup` file, although it names the
 * segment its backup started in: right after a backup the count can be high until the next
 * segment is archived.
 */
export function pendingSegments(lastArchivedWal: string | undefined, currentLsn: bigint | undefined, walSegmentSize: number): number | undefined {
  if (!lastArchivedWal || currentLsn === undefined) return undefined;
  const last = segmentOfArchivedName(lastArchivedWal);
  if (!last) return undefined;
  try {
    const a = parseSegmentName(last, walSegmentSize).segno;
    const c = currentLsn / BigInt(walSegmentSize);
    return c - a - 1n > 0n ? Number(c - a - 1n) : 0;
  } catch {
    return undefined;
  }
}
