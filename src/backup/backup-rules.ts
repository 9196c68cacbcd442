/**
 * The decisions `pgark backup` makes from what it read (pure): the label, the type and parent,
 * the id, the WAL the backup needs, and the multi-part file entries put back together.
 */
import { ConfigError, InvalidInputError } from '../common/errors.js';
import { backupIdFor } from '../repo/layout.js';
import { lsnToSegment, parseLsn, parseSegmentName, segmentName } from '../wal/segment-name.js';
import type { BackupInfo } from '../catalog/backup-info.js';
import { partsDigest, type FileEntry } from '../catalog/manifest.js';

const LABEL_MAX = 200;

/** --label: at most LABEL_MAX characters on one line. */
export function checkLabel(label: string | undefined): void {
  if (label !== undefined && (label.length > LABEL_MAX || /[\n\r\0]/.test(label))) {
    throw new InvalidInputError(`invalid --label: at most ${LABEL_MAX} characters on one line`);
  }
}

export interface TypeChoice {
  type: 'full' | 'incr';
  /** The backup an incremental builds on. */
  parent?: BackupInfo;
  /** Why auto took a full backup. */
  note?: string;
}

/**
 * Full or incremental: auto is incremental on the newest backup unless there is none, its chain
 * is at incr-chain-max, or it is on another timeline than the cluster; incr refuses then.
 */
export function chooseBackupType(asked: 'full' | 'incr' | 'auto', newest: BackupInfo | undefined, timeline: number, incrChainMax: number, systemIdentifier?: string): TypeChoice {
  if (asked === 'full') return { type: 'full' };
  const why = !newest ? 'there is no backup to build on'
    : newest.chain.length - 1 >= incrChainMax ? `the chain of ${newest.id} already has ${newest.chain.length - 1} incremental backups (incr-chain-max ${incrChainMax})`
    : systemIdentifier !== undefined && newest.systemIdentifier !== systemIdentifier ? `the newest backup ${newest.id} is of system ${newest.systemIdentifier}, the cluster before stanza-upgrade`
    : newest.stop.timeline !== timeline ? `the newest backup ${newest.id} is on timeline ${newest.stop.timeline}, the cluster on ${timeline}`
    : undefined;
  if (why && asked === 'incr') throw new ConfigError(`cannot take an incremental backup: ${why} (use --type full or auto)`);
  if (why) return { type: 'full', note: `taking a full backup: ${why}` };
  return { type: 'incr', parent: newest! };
}

/**
 * The id of a backup started at `now`. Ids sort by time and are never reused, not even the id of
 * an interrupted run whose objects were just removed: a new id is later than every one in `taken`
 * (committed and stale), a second at a time.
 */
export function nextBackupId(now: Date, type: 'full' | 'incr', taken: readonly string[]): string {
  const last = [...taken].sort().pop();
  let when = now;
  let id = backupIdFor(when, type);
  while (last !== undefined && id.slice(0, 15) <= last.slice(0, 15)) {
    when = new Date(when.getTime() + 1000);
    id = backupIdFor(when, type);
  }
  return id;
}

/** The WAL segments a backup needs: from the start segment (backup_label) to the one holding the last byte before the stop LSN. */
export function walNeeded(startWalFile: string, stopLsn: string, stopTimeline: number, walSegmentSize: number): string[] {
  const firstSeg = parseSegmentName(startWalFile, walSegmentSize);
  const lastSeg = lsnToSegment(parseLsn(stopLsn) - 1n, stopTimeline, walSegmentSize);
  const names: string[] = [];
  for (let s = firstSeg.segno; s <= lastSeg.segno; s++) names.push(segmentName({ timeline: stopTimeline, segno: s }, walSegmentSize));
  return names;
}

/** Merge an entry a worker reported into the files so far: parts of one file copied by several workers join one entry. */
export function mergeEntry(files: Map<string, FileEntry>, e: FileEntry): void {
  const had = files.get(e.path);
  if (e.parts && had?.parts) {
    had.parts.push(...e.parts);
    had.size = Math.max(had.size, e.size);
    if (e.checksumFailures) had.checksumFailures = [...(had.checksumFailures ?? []), ...e.checksumFailures];
  } else files.set(e.path, e);
}

/** Multi-part entries once every part is in: parts in order (empty ones dropped), size, digest, failures sorted. */
export function finishParts(files: Iterable<FileEntry>): void {
  for (const e of files) {
    if (!e.parts) continue;
    e.parts = e.parts.filter((p) => p.size > 0).sort((x, y) => x.start - y.start);
    const lastPart = e.parts[e.parts.length - 1];
    e.size = lastPart ? lastPart.start + lastPart.size : 0;
    e.sha256 = partsDigest(e.parts);
    if (e.checksumFailures) e.checksumFailures.sort((x, y) => x - y);
  }
}
