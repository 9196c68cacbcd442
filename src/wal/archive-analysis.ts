/**
 * Pure analysis of an archive listing: per timeline the contiguous ranges of segments, the
 * gaps inside them, partial and backup files, history files and fork points.
 */
import type { ObjectInfo } from '../../storage-drivers/types.js';
import { walNameOfKey } from '../repo/layout.js';
import { formatLsn, parseSegmentName, segmentName, type SegmentId, lsnToSegment } from './segment-name.js';
import type { TimelineHistory } from './timeline-history.js';

export interface SegmentRange {
  first: string;
  last: string;
  count: number;
}

export interface TimelineReport {
  timeline: number;
  ranges: SegmentRange[];
  /** Missing segments between the first and last archived one, as ranges. */
  gaps: SegmentRange[];
  segments: number;
  partials: string[];
  backupFiles: string[];
  history: boolean;
  /** Where this timeline forked from its parent (from its history file). */
  fork?: { parent: number; lsn: string; segment: string };
  storedBytes: number;
  lastModified?: string;
}

export interface ArchiveReport {
  timelines: TimelineReport[];
  totalSegments: number;
  totalStoredBytes: number;
  gapCount: number;
  lastModified?: string;
}

function emptyTimeline(timeline: number): TimelineReport {
  return { timeline, ranges: [], gaps: [], segments: 0, partials: [], backupFiles: [], history: false, storedBytes: 0 };
}

/**
 * `boundaries`: byte positions where a new cluster's WAL begins after `pgark stanza-upgrade`. The
 * hole between the old cluster's last archived segment and such a boundary (its unarchived tail,
 * and what pg_upgrade skipped) is not a gap; a hole after the boundary is.
 */
export function analyseArchive(objects: ObjectInfo[], walSegmentSize: number, histories: Map<number, TimelineHistory>, boundaries: readonly bigint[] = []): ArchiveReport {
  const boundarySegnos = boundaries.map((b) => b / BigInt(walSegmentSize));
  const byTl = new Map<number, { tl: TimelineReport; segnos: bigint[] }>();
  const get = (t: number) => {
    let e = byTl.get(t);
    if (!e) byTl.set(t, (e = { tl: emptyTimeline(t), segnos: [] }));
    return e;
  };
  let lastMs = 0;
  for (const o of objects) {
    const name = walNameOfKey(o.path);
    if (!name) continue;
    const e = get(Number.parseInt(name.slice(0, 8), 16));
    e.tl.storedBytes += o.size;
    const ms = o.mtimeMs;
    if (ms > lastMs) lastMs = ms;
    if (!e.tl.lastModified || ms > Date.parse(e.tl.lastModified)) e.tl.lastModified = new Date(ms).toISOString();
    if (name.endsWith('.history')) e.tl.history = true;
    else if (name.endsWith('.partial')) e.tl.partials.push(name);
    else if (name.endsWith('.backup')) e.tl.backupFiles.push(name);
    else e.segnos.push(parseSegmentName(name, walSegmentSize).segno);
  }
  const name = (timeline: number, segno: bigint) => segmentName({ timeline, segno } as SegmentId, walSegmentSize);
  const timelines: TimelineReport[] = [];
  let totalSegments = 0;
  let totalStoredBytes = 0;
  let gapCount = 0;
  for (const t of [...byTl.keys()].sort((a, b) => a - b)) {
    const { tl, segnos } = byTl.get(t)!;
    segnos.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    let start: bigint | undefined;
    let prev: bigint | undefined;
    const close = () => {
      if (start !== undefined && prev !== undefined) tl.ranges.push({ first: name(t, start), last: name(t, prev), count: Number(prev - start + 1n) });
    };
    for (const s of segnos) {
      if (prev !== undefined && s === prev) continue;
      if (prev !== undefined && s !== prev + 1n) {
        close();
        const p = prev;
        const u = boundarySegnos.filter((b) => b > p && b <= s).pop();
        const from = u ?? prev + 1n;
        if (from < s) tl.gaps.push({ first: name(t, from), last: name(t, s - 1n), count: Number(s - from) });
        start = s;
      } else if (start === undefined) {
        start = s;
      }
      prev = s;
    }
    close();
    tl.segments = new Set(segnos).size;
    tl.partials.sort();
    tl.backupFiles.sort();
    const h = histories.get(t);
    const parent = h?.parents[h.parents.length - 1];
    if (parent) {
      const seg = lsnToSegment(parent.switchLsn, t, walSegmentSize);
      tl.fork = { parent: parent.timeline, lsn: formatLsn(parent.switchLsn), segment: segmentName(seg, walSegmentSize) };
    }
    totalSegments += tl.segments;
    totalStoredBytes += tl.storedBytes;
    gapCount += tl.gaps.length;
    timelines.push(tl);
  }
  const report: ArchiveReport = { timelines, totalSegments, totalStoredBytes, gapCount };
  if (lastMs > 0) report.lastModified = new Date(lastMs).toISOString();
  return report;
}
