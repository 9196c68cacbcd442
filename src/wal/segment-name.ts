/**
 * WAL segment names, segment numbers and LSNs (PostgreSQL 13+ semantics).
 * Pure functions, no I/O.
 *
 * A segment is identified by its timeline and absolute segment number
 * (XLogSegNo). Its file name is `%08X%08X%08X` of timeline, log and seg where
 * log = segno / segsPerXLogId, seg = segno % segsPerXLogId and
 * segsPerXLogId = 0x100000000 / walSegmentSize.
 */
import { InvalidInputError } from '../common/errors.js';
import { escapeForMessage } from '../common/message-text.js';
import { HEX8, isSegmentName, SEGMENT_FIELDS } from '../pg/wal-names.js';

export interface SegmentId {
  timeline: number;
  /** Absolute segment number (XLogSegNo). */
  segno: bigint;
}

export const MIN_WAL_SEGMENT_SIZE = 1024 * 1024;
export const MAX_WAL_SEGMENT_SIZE = 1024 * 1024 * 1024;
const MAX_UINT32 = 0xffffffff;
const MAX_UINT64 = (1n << 64n) - 1n;

/** Power of two between 1 MiB and 1 GiB inclusive (IsValidWalSegSize). */
export function isValidWalSegmentSize(n: number): boolean {
  return (
    Number.isInteger(n) &&
    n >= MIN_WAL_SEGMENT_SIZE &&
    n <= MAX_WAL_SEGMENT_SIZE &&
    (n & (n - 1)) === 0
  );
}

function checkSegmentSize(walSegmentSize: number): bigint {
  if (!isValidWalSegmentSize(walSegmentSize)) {
    throw new InvalidInputError(
      `invalid WAL segment size ${String(walSegmentSize)}: must be a power of two between 1MiB and 1GiB`,
    );
  }
  return BigInt(walSegmentSize);
}

/** XLogSegmentsPerXLogId: 0x100000000 / walSegmentSize. */
export function segmentsPerXLogId(walSegmentSize: number): bigint {
  return 0x100000000n / checkSegmentSize(walSegmentSize);
}

function checkTimeline(timeline: number): void {
  if (!Number.isInteger(timeline) || timeline < 1 || timeline > MAX_UINT32) {
    throw new InvalidInputError(`invalid timeline ${String(timeline)}: must be an integer in 1..4294967295`);
  }
}

function checkSegno(segno: bigint, walSegmentSize: number): void {
  const maxSegno = MAX_UINT64 / checkSegmentSize(walSegmentSize);
  if (segno < 0n || segno > maxSegno) {
    throw new InvalidInputError(`invalid WAL segment number ${segno.toString()}: out of range`);
  }
}

function hex8(n: number | bigint): string {
  return n.toString(16).toUpperCase().padStart(8, '0');
}

/** Parse a 24-character uppercase hex segment file name. */
export function parseSegmentName(name: string, walSegmentSize: number): SegmentId {
  const perId = segmentsPerXLogId(walSegmentSize);
  if (!isSegmentName(name)) {
    assertWalFileName(name); // throws with a precise reason for non-WAL names
    throw invalidName(name, 'not a WAL segment name (expected 24 uppercase hex digits)');
  }
  const timeline = Number.parseInt(name.slice(0, 8), 16);
  const log = BigInt(`0x${name.slice(8, 16)}`);
  const seg = BigInt(`0x${name.slice(16, 24)}`);
  if (timeline === 0) throw invalidName(name, 'timeline 0 is not valid');
  if (seg >= perId) {
    throw invalidName(
      name,
      `segment part ${hex8(seg)} is out of range for wal_segment_size ${String(walSegmentSize)} (max ${hex8(perId - 1n)})`,
    );
  }
  return { timeline, segno: log * perId + seg };
}

/** XLogFileName: the 24-character file name of a segment. */
export function segmentName(id: SegmentId, walSegmentSize: number): string {
  const perId = segmentsPerXLogId(walSegmentSize);
  checkTimeline(id.timeline);
  checkSegno(id.segno, walSegmentSize);
  return hex8(id.timeline) + hex8(id.segno / perId) + hex8(id.segno % perId);
}

/** The following segment on the same timeline. */
export function nextSegment(id: SegmentId, walSegmentSize: number): SegmentId {
  const next = { timeline: id.timeline, segno: id.segno + 1n };
  checkSegno(next.segno, walSegmentSize);
  return next;
}

/** The preceding segment on the same timeline; throws for segment 0. */
export function prevSegment(id: SegmentId, walSegmentSize: number): SegmentId {
  checkSegmentSize(walSegmentSize);
  if (id.segno <= 0n) {
    throw new InvalidInputError(`invalid WAL segment number ${id.segno.toString()}: no previous segment`);
  }
  return { timeline: id.timeline, segno: id.segno - 1n };
}

/** First LSN in the segment (XLogSegNoOffsetToRecPtr with offset 0). */
export function segmentStartLsn(id: SegmentId, walSegmentSize: number): bigint {
  checkSegno(id.segno, walSegmentSize);
  return id.segno * BigInt(walSegmentSize);
}

/** The segment containing `lsn` (XLByteToSeg). */
export function lsnToSegment(lsn: bigint, timeline: number, walSegmentSize: number): SegmentId {
  const size = checkSegmentSize(walSegmentSize);
  checkTimeline(timeline);
  checkLsn(lsn);
  return { timeline, segno: lsn / size };
}

function checkLsn(lsn: bigint): void {
  if (lsn < 0n || lsn > MAX_UINT64) {
    throw new InvalidInputError(`invalid LSN ${lsn.toString()}: out of range`);
  }
}

const LSN_RE = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/;

/** Parse `%X/%X` (as pg_lsn_in: 1-8 hex digits on each side, any case). */
export function parseLsn(text: string): bigint {
  const m = LSN_RE.exec(text);
  if (!m || m[1] === undefined || m[2] === undefined) {
    throw new InvalidInputError(`invalid LSN '${escapeForMessage(text)}': expected the form XXXXXXXX/XXXXXXXX`);
  }
  return (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`);
}

/** Format as PostgreSQL does: `%X/%X`, uppercase, no padding. */
export function formatLsn(lsn: bigint): string {
  checkLsn(lsn);
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}

// ---------------------------------------------------------------------------
// File name classification
// ---------------------------------------------------------------------------

interface SegmentParts {
  timeline: number;
  /** Middle 8 hex digits (XLogId). */
  log: number;
  /** Last 8 hex digits (segment within the XLogId). */
  seg: number;
  /** The 24-character segment name part. */
  segmentName: string;
}

export type WalFileName =
  | ({ kind: 'segment' } & SegmentParts)
  | ({ kind: 'partial' } & SegmentParts)
  | { kind: 'history'; timeline: number }
  | ({ kind: 'backup'; /** Byte offset of the backup start within the segment. */ offset: number } & SegmentParts);

/** Longest valid name: `<24>.<8>.backup`. */
const MAX_WAL_FILE_NAME_LENGTH = 40;
/** With the smallest segment size (1 MiB) there are 4096 segments per XLogId. */
const MAX_SEG_PART = 0x100000000 / MIN_WAL_SEGMENT_SIZE - 1;

const NAME_RES = {
  segment: new RegExp(`^${SEGMENT_FIELDS}$`),
  partial: new RegExp(`^${SEGMENT_FIELDS}\\.partial$`),
  history: new RegExp(`^(${HEX8})\\.history$`),
  backup: new RegExp(`^${SEGMENT_FIELDS}\\.(${HEX8})\\.backup$`),
} as const;

type Inspection = { ok: true; value: WalFileName } | { ok: false; why: string };

function inspectWalFileName(name: string): Inspection {
  if (typeof name !== 'string' || name.length === 0) return { ok: false, why: 'empty name' };
  if (name.length > MAX_WAL_FILE_NAME_LENGTH) return { ok: false, why: 'name too long' };
  if (name.includes('/') || name.includes('\\')) return { ok: false, why: 'contains a path separator' };
  if (name.includes('..')) return { ok: false, why: "contains '..'" };
  if (/[\x00-\x1f\x7f]/.test(name)) return { ok: false, why: 'contains control characters' };

  let m = NAME_RES.history.exec(name);
  if (m) {
    const timeline = Number.parseInt(m[1] ?? '', 16);
    if (timeline === 0) return { ok: false, why: 'timeline 0 is not valid' };
    return { ok: true, value: { kind: 'history', timeline } };
  }
  for (const kind of ['segment', 'partial', 'backup'] as const) {
    m = NAME_RES[kind].exec(name);
    if (!m) continue;
    const timeline = Number.parseInt(m[1] ?? '', 16);
    const log = Number.parseInt(m[2] ?? '', 16);
    const seg = Number.parseInt(m[3] ?? '', 16);
    if (timeline === 0) return { ok: false, why: 'timeline 0 is not valid' };
    if (seg > MAX_SEG_PART) return { ok: false, why: `segment part ${hex8(seg)} is out of range for any wal_segment_size` };
    const parts: SegmentParts = { timeline, log, seg, segmentName: name.slice(0, 24) };
    if (kind === 'backup') {
      const offset = Number.parseInt(m[4] ?? '', 16);
      if (offset >= MAX_WAL_SEGMENT_SIZE) return { ok: false, why: 'backup offset is out of range' };
      return { ok: true, value: { kind, offset, ...parts } };
    }
    return { ok: true, value: { kind, ...parts } };
  }
  if (/[a-f]/.test(name) && hexUppercased(name) !== name && inspectWalFileName(hexUppercased(name)).ok) {
    return { ok: false, why: 'hex digits must be uppercase' };
  }
  return { ok: false, why: 'not a PostgreSQL WAL segment, partial, history or backup history file name' };
}

const NAME_SUFFIXES = new Set(['partial', 'history', 'backup']);

/** Uppercase every dot-separated part except the fixed suffixes. */
function hexUppercased(name: string): string {
  return name
    .split('.')
    .map((part) => (NAME_SUFFIXES.has(part) ? part : part.toUpperCase()))
    .join('.');
}

/**
 * Classify a file name as one PostgreSQL puts in the WAL archive, or null.
 * Only exact PostgreSQL names are accepted (uppercase hex, no paths).
 */
export function classifyWalFileName(name: string): WalFileName | null {
  const r = inspectWalFileName(name);
  return r.ok ? r.value : null;
}

/** Like classifyWalFileName but throws InvalidInputError explaining why. */
export function assertWalFileName(name: string): WalFileName {
  const r = inspectWalFileName(name);
  if (!r.ok) throw invalidName(name, r.why);
  return r.value;
}

function invalidName(name: string, why: string): InvalidInputError {
  return new InvalidInputError(`invalid WAL file name '${escapeForMessage(name)}': ${why}`);
}

/** Re-exported for the many callers that import it from here; its home is common/message-text.ts. */
export { escapeForMessage };
