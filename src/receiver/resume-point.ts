/**
 * Where a receiver resumes streaming (pure): right after the WAL already stored, on the
 * server's timeline history, so that nothing is received twice and nothing is skipped.
 */
import { PgarkError } from '../common/errors.js';
import { formatLsn } from '../wal/segment-name.js';
import { historySpans, type TimelineHistory, type TimelineSpan } from '../wal/timeline-history.js';

export class ReceiverPositionError extends PgarkError {}

/** What the repository holds per timeline: the end LSN of stored WAL (complete or received). */
export type StoredEnds = ReadonlyMap<number, bigint>;

export interface ResumeInput {
  /** The server's current timeline and its history (parents empty on timeline 1). */
  history: TimelineHistory;
  stored: StoredEnds;
  walSegmentSize: number;
  /** Where the server would start when nothing is stored: the slot's restart point, else its current WAL position. */
  fallback: { lsn: bigint; timeline?: number | undefined };
}

export interface ResumePoint {
  timeline: number;
  lsn: bigint;
  /** 'stored': right after stored WAL; 'server': nothing usable stored, started at the segment of `fallback`. */
  from: 'stored' | 'server';
  /** Stored WAL beyond a switch point of the history (not part of the server's history); kept as it is. */
  divergedTimelines: number[];
}

/**
 * The parts of the LSN space each timeline holds in the server's history, ascending and
 * contiguous, as PostgreSQL places an LSN on a timeline (tliOfPointInHistory). A timeline whose
 * part is empty (a later one forked at a lower switch point) is not in the list: the receiver
 * never starts or resumes on it.
 */
export function timelineSpans(history: TimelineHistory): TimelineSpan[] {
  return historySpans(history);
}

export function resumePoint(input: ResumeInput): ResumePoint {
  const { history, stored } = input;
  const newestStored = Math.max(0, ...stored.keys());
  if (newestStored > history.timeline) {
    throw new ReceiverPositionError(
      `the repository holds WAL of timeline ${newestStored}, newer than the server's timeline ${history.timeline}: ` +
      'the server is not on the newest timeline (an old primary after a failover?); point the receiver at the current primary',
    );
  }
  const spans = timelineSpans(history);
  const diverged: number[] = [];
  for (let i = spans.length - 1; i >= 0; i--) {
    const span = spans[i]!;
    const end = stored.get(span.timeline);
    if (end === undefined || end < span.begin) continue;
    if (span.end !== undefined && end >= span.end) {
      // All of this timeline's part of the history is stored: go on at the switch point on the
      // next timeline (whose own WAL, if any, was checked first and found missing or older).
      if (end > span.end) diverged.push(span.timeline);
      const next = spans[i + 1]!;
      return { timeline: next.timeline, lsn: span.end, from: 'stored', divergedTimelines: diverged };
    }
    return { timeline: span.timeline, lsn: end, from: 'stored', divergedTimelines: diverged };
  }
  const seg = BigInt(input.walSegmentSize);
  const lsn = (input.fallback.lsn / seg) * seg;
  const span = spans.find((s) => lsn >= s.begin && (s.end === undefined || lsn < s.end));
  if (!span) throw new ReceiverPositionError(`start position ${formatLsn(lsn)} is not in the server's timeline history`);
  return { timeline: span.timeline, lsn, from: 'server', divergedTimelines: diverged };
}

/**
 * When the server ends the stream of `ended` at `nextStart` naming `next` (it names the switch
 * point written for `ended`, tliSwitchPoint, and the entry after it), is that the path of
 * `history`? Yes when `ended` holds the path up to `nextStart` (or holds nothing: left where it
 * began) and `next` takes over there (or holds nothing either: its stream ends at once, naming
 * the one after it). Not when a later timeline forked lower (switch points that decrease): then
 * `ended` leaves the path earlier, and the receiver must place itself again (resumePoint).
 */
export function followsHistoryPath(history: TimelineHistory, ended: number, next: number, nextStart: bigint): boolean {
  const path = historySpans(history);
  /** The ancestor entry of `t` is [previous switch point, own switch point) and both are `at`. */
  const emptyAt = (t: number, at: bigint): boolean => {
    const i = history.parents.findIndex((p) => p.timeline === t);
    return i >= 0 && history.parents[i]!.switchLsn === at && (i === 0 ? 0n : history.parents[i - 1]!.switchLsn) === at;
  };
  const endedOk = path.some((s) => s.timeline === ended && s.end === nextStart) || emptyAt(ended, nextStart);
  const nextOk = path.some((s) => s.timeline === next && s.begin === nextStart) || emptyAt(next, nextStart);
  return endedOk && nextOk;
}
