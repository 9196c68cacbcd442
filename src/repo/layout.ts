/**
 * Repository keys (pure). Everything of a stanza lives under `<stanza>/`:
 *
 *   <stanza>/stanza.json                              stanza metadata (binds it to one cluster)
 *   <stanza>/wal/<TLI>/<TLI>.history                  timeline history files
 *   <stanza>/wal/<TLI>/<TLI><LOG>/<segment>           WAL segments (24 hex digits)
 *   <stanza>/wal/<TLI>/<TLI><LOG>/<segment>.partial   partial segments
 *   <stanza>/wal/<TLI>/<TLI><LOG>/<segment>.<off>.backup   backup history files
 *   <stanza>/log/wal/<YYYY-MM-DD>/<time>-<pid>-<rand>     WAL audit trail, one object per call
 *   <stanza>/probe/<host>-<pid>-<rand>                probe objects of check-repo (deleted at once)
 *
 * A timeline's whole WAL is one prefix listing: `<stanza>/wal/<TLI>/`.
 */
import { InvalidInputError } from '../common/errors.js';
import { HEX8, isArchivedWalName, isHistoryName, isSegmentName, SEGMENT_HEX, segmentOfArchivedName } from '../pg/wal-names.js';

export function stanzaMetaKey(stanza: string): string {
  return `${stanza}/stanza.json`;
}

/** A probe object of `pgark check-repo`; `name` is host, pid and a random part. */
export function probeKey(stanza: string, name: string): string {
  return `${stanza}/probe/${name}`;
}

export function walPrefix(stanza: string, timeline?: number): string {
  return timeline === undefined ? `${stanza}/wal/` : `${stanza}/wal/${hex8(timeline)}/`;
}

export function hex8(n: number): string {
  return n.toString(16).toUpperCase().padStart(8, '0');
}

/** Key of an archived WAL file (segment, partial, history or backup history) by its name. */
export function walKey(stanza: string, name: string): string {
  if (isHistoryName(name)) return `${stanza}/wal/${name.slice(0, 8)}/${name}`;
  if (segmentOfArchivedName(name) !== undefined) {
    return `${stanza}/wal/${name.slice(0, 8)}/${name.slice(0, 16)}/${name}`;
  }
  throw new InvalidInputError(`invalid WAL file name '${name.slice(0, 64)}'`);
}

/** The WAL file name of a key under walPrefix, or undefined for anything else. */
export function walNameOfKey(key: string): string | undefined {
  const base = key.slice(key.lastIndexOf('/') + 1);
  return isArchivedWalName(base) ? base : undefined;
}

export function auditPrefix(stanza: string, day?: string): string {
  return day ? `${stanza}/log/wal/${day}/` : `${stanza}/log/wal/`;
}

export function auditKey(stanza: string, when: Date, pid: number, rand: string): string {
  const iso = when.toISOString(); // 2026-11-23T11:28:18.123Z
  const day = iso.slice(0, 10);
  const time = iso.slice(11, 23).replace(/:/g, '');
  return `${auditPrefix(stanza, day)}${time}-${pid}-${rand}`;
}

// ---------------------------------------------------------------------------
// Backups
//
//   <stanza>/catalog/<id>.json          catalog entry: the commit point of a backup
//   <stanza>/backup/<id>/manifest       file manifest (NDJSON, compressed)
//   <stanza>/backup/<id>/data/<n>       data objects: bundles of small files, or one large file
//   <stanza>/pin/<id>                   present while a backup is kept (pgark keep)
//   <stanza>/lock/backup                lock held by a running backup or expire
//   <stanza>/verify/<id>.json           objects already verified (incremental verify)
// ---------------------------------------------------------------------------

const BACKUP_ID_RE = /^\d{8}-\d{6}[FI]$/;

export function isBackupId(id: string): boolean {
  return BACKUP_ID_RE.test(id);
}

export function catalogPrefix(stanza: string): string {
  return `${stanza}/catalog/`;
}

export function catalogKey(stanza: string, id: string): string {
  return `${catalogPrefix(stanza)}${id}.json`;
}

export function backupIdOfCatalogKey(key: string): string | undefined {
  const m = /\/catalog\/(\d{8}-\d{6}[FI])\.json$/.exec(key);
  return m?.[1];
}

export function backupPrefix(stanza: string, id?: string): string {
  return id === undefined ? `${stanza}/backup/` : `${stanza}/backup/${id}/`;
}

export function manifestKey(stanza: string, id: string): string {
  return `${backupPrefix(stanza, id)}manifest`;
}

export function dataObjectKey(stanza: string, id: string, n: number): string {
  return `${backupPrefix(stanza, id)}data/${n}`;
}

export function pinPrefix(stanza: string): string {
  return `${stanza}/pin/`;
}

export function pinKey(stanza: string, id: string): string {
  return `${pinPrefix(stanza)}${id}`;
}

export function lockKey(stanza: string, name: string): string {
  return `${stanza}/lock/${name}`;
}

export function verifyStateKey(stanza: string, id: string): string {
  return `${stanza}/verify/${id}.json`;
}

/** Backup id for a start time: YYYYMMDD-HHMMSS (UTC) + F (full) or I (incremental). Ids sort by time. */
export function backupIdFor(when: Date, type: 'full' | 'incr'): string {
  const iso = when.toISOString();
  return `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}-${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}${type === 'full' ? 'F' : 'I'}`;
}

// ---------------------------------------------------------------------------
// Streamed WAL (pgark receive)
//
//   <stanza>/received/<TLI>/<segment>/<start>-<end>   pieces of a segment being received: the
//                                                      bytes [start, end) of the segment (8 hex
//                                                      digits each); deleted once the whole
//                                                      segment is stored under wal/
//   <stanza>/received/<TLI>/<segment>/<start>.journal.<nonce>
//                                                      a received-WAL journal (fs repositories:
//                                                      wal/received-journal.ts), from offset
//                                                      <start>; deleted like the pieces
//   <stanza>/receiver/<name>.json                     status of a receiver (its application_name)
// ---------------------------------------------------------------------------

export function receivedPrefix(stanza: string, timeline?: number, segment?: string): string {
  if (timeline === undefined) return `${stanza}/received/`;
  return segment === undefined ? `${stanza}/received/${hex8(timeline)}/` : `${stanza}/received/${hex8(timeline)}/${segment}/`;
}

export function receivedPieceKey(stanza: string, segment: string, start: number, end: number): string {
  if (!isSegmentName(segment)) throw new InvalidInputError(`invalid WAL segment name '${segment.slice(0, 64)}'`);
  if (!(Number.isInteger(start) && Number.isInteger(end) && start >= 0 && end > start && end <= 0xffffffff)) {
    throw new InvalidInputError(`invalid received piece range ${start}-${end}`);
  }
  return `${receivedPrefix(stanza, Number.parseInt(segment.slice(0, 8), 16), segment)}${hex8(start)}-${hex8(end)}`;
}

export interface ReceivedPieceRef {
  segment: string;
  timeline: number;
  start: number;
  end: number;
}

const RECEIVED_PIECE_KEY = new RegExp(`/received/(${HEX8})/(${SEGMENT_HEX})/(${HEX8})-(${HEX8})$`);

/** The piece a key under receivedPrefix names, or undefined for anything else. */
export function receivedPieceOfKey(key: string): ReceivedPieceRef | undefined {
  const m = RECEIVED_PIECE_KEY.exec(key);
  if (!m || m[2]!.slice(0, 8) !== m[1]) return undefined;
  const start = Number.parseInt(m[3]!, 16);
  const end = Number.parseInt(m[4]!, 16);
  if (end <= start) return undefined;
  return { segment: m[2]!, timeline: Number.parseInt(m[1]!, 16), start, end };
}

const RECEIVED_JOURNAL_KEY = new RegExp(`/received/(${HEX8})/(${SEGMENT_HEX})/(${HEX8})\\.journal\\.([0-9a-f]{16})$`);

/** A received-WAL journal's key (wal/received-journal.ts): its first record is at `start`; `nonce` is 16 hex digits. */
export function receivedJournalKey(stanza: string, segment: string, start: number, nonce: string): string {
  if (!isSegmentName(segment)) throw new InvalidInputError(`invalid WAL segment name '${segment.slice(0, 64)}'`);
  if (!(Number.isInteger(start) && start >= 0 && start <= 0xffffffff) || !/^[0-9a-f]{16}$/.test(nonce)) {
    throw new InvalidInputError(`invalid received journal start ${start} or nonce`);
  }
  return `${receivedPrefix(stanza, Number.parseInt(segment.slice(0, 8), 16), segment)}${hex8(start)}.journal.${nonce}`;
}

/** The journal a key under receivedPrefix names (`start`: its first record's offset), or undefined. */
export function receivedJournalOfKey(key: string): { segment: string; timeline: number; start: number } | undefined {
  const m = RECEIVED_JOURNAL_KEY.exec(key);
  if (!m || m[2]!.slice(0, 8) !== m[1]) return undefined;
  return { segment: m[2]!, timeline: Number.parseInt(m[1]!, 16), start: Number.parseInt(m[3]!, 16) };
}

/** The segment a received piece or journal key belongs to, or undefined for anything else. */
export function receivedSegmentOfKey(key: string): string | undefined {
  return (receivedPieceOfKey(key) ?? receivedJournalOfKey(key))?.segment;
}

export function receiverStatusPrefix(stanza: string): string {
  return `${stanza}/receiver/`;
}

export function receiverStatusKey(stanza: string, name: string): string {
  if (!/^[A-Za-z0-9_.-]{1,63}$/.test(name)) throw new InvalidInputError(`invalid receiver name '${name.slice(0, 64)}': letters, digits, '_', '.' and '-' only`);
  return `${receiverStatusPrefix(stanza)}${name}.json`;
}

// ---------------------------------------------------------------------------
// DR drills (pgark drill)
//
//   <stanza>/drill/<id>.json      the report of one drill; ids (YYYYMMDD-HHMMSSD, UTC start) sort by time
// ---------------------------------------------------------------------------

export function drillPrefix(stanza: string): string {
  return `${stanza}/drill/`;
}

export function drillKey(stanza: string, id: string): string {
  if (!/^\d{8}-\d{6}D$/.test(id)) throw new InvalidInputError(`invalid drill id '${id.slice(0, 40)}'`);
  return `${drillPrefix(stanza)}${id}.json`;
}

/** Drill id for a start time: YYYYMMDD-HHMMSS (UTC) + D. */
export function drillIdFor(when: Date): string {
  return backupIdFor(when, 'full').slice(0, 15) + 'D';
}

// ---------------------------------------------------------------------------
// Backlog of an asynchronous further repository (repo2, repo3 with repoN-mode=async), kept in
// the first repository:
//
//   <stanza>/backlog/<repoN>/<WAL file name>   a WAL file repoN has not taken yet (small JSON:
//                                               when and why); removed once repoN holds it
// ---------------------------------------------------------------------------

export function backlogPrefix(stanza: string, repoName?: string): string {
  return repoName === undefined ? `${stanza}/backlog/` : `${stanza}/backlog/${repoName}/`;
}

export function backlogKey(stanza: string, repoName: string, walName: string): string {
  return `${backlogPrefix(stanza, repoName)}${walName}`;
}
