/**
 * Timeline history files (`<TLI>.history`), as read by PostgreSQL's
 * readTimeLineHistory. Each non-blank, non-comment line is
 * `<parentTLI>\t<switchpoint LSN>\t<reason>`: WAL on parentTLI is valid up to
 * (not including) the switchpoint, where the next timeline takes over.
 * Pure functions, no I/O.
 */
import { InvalidInputError } from '../common/errors.js';
import { escapeForMessage, formatLsn, parseLsn } from './segment-name.js';

export interface TimelineHistoryEntry {
  /** An ancestor timeline. */
  timeline: number;
  /** First LSN that is no longer on this ancestor (belongs to the next timeline). */
  switchLsn: bigint;
  reason: string;
}

export interface TimelineHistory {
  /** The timeline this history file describes (from its file name). */
  timeline: number;
  /** Ancestors, oldest first. */
  parents: TimelineHistoryEntry[];
}

const MAX_TIMELINE = 0xffffffff;
/** `<tli><ws><hi>/<lo>` optionally followed by whitespace and a free-text reason. */
const LINE_RE = /^(\d+)\s+([0-9A-Fa-f]{1,8}\/[0-9A-Fa-f]{1,8})(?:\s+(.*))?$/;

function fail(timeline: number, lineNo: number | null, why: string): never {
  const where = lineNo === null ? '' : ` line ${String(lineNo)}`;
  throw new InvalidInputError(`invalid timeline history for timeline ${String(timeline)}${where}: ${why}`);
}

/**
 * Parse and validate the text of the history file of `timeline`.
 * Timelines must strictly increase and stay below `timeline`; switch LSNs must
 * not decrease.
 */
export function parseTimelineHistory(text: string, timeline: number): TimelineHistory {
  if (!Number.isInteger(timeline) || timeline < 1 || timeline > MAX_TIMELINE) {
    throw new InvalidInputError(`invalid timeline ${String(timeline)}: must be an integer in 1..4294967295`);
  }
  const parents: TimelineHistoryEntry[] = [];
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, index) => {
    const lineNo = index + 1;
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const m = LINE_RE.exec(line);
    if (!m || m[1] === undefined || m[2] === undefined) {
      fail(timeline, lineNo, `syntax error in '${escapeForMessage(line)}' (expected '<timeline>\\t<LSN>\\t<reason>')`);
    }
    const tli = Number(m[1]);
    if (!Number.isSafeInteger(tli) || tli < 1 || tli > MAX_TIMELINE) {
      fail(timeline, lineNo, `timeline ${escapeForMessage(m[1])} is out of range`);
    }
    const switchLsn = parseLsn(m[2]);
    const prev = parents[parents.length - 1];
    if (prev && tli <= prev.timeline) {
      fail(timeline, lineNo, `timeline IDs must be in increasing sequence (${String(tli)} after ${String(prev.timeline)})`);
    }
    if (prev && switchLsn < prev.switchLsn) {
      fail(
        timeline,
        lineNo,
        `switch LSN ${formatLsn(switchLsn)} is before the previous one ${formatLsn(prev.switchLsn)}`,
      );
    }
    if (tli >= timeline) {
      fail(timeline, lineNo, `parent timeline ${String(tli)} must be less than ${String(timeline)}`);
    }
    parents.push({ timeline: tli, switchLsn, reason: (m[3] ?? '').trim() });
  });
  return { timeline, parents };
}

/**
 * The timeline an LSN belongs to in this history (tliOfPointInHistory):
 * ancestor i covers [switchLsn(i-1), switchLsn(i)); the history's own timeline
 * covers everything from the last switch point on.
 */
export function timelineOfLsn(history: TimelineHistory, lsn: bigint): number {
  for (const entry of history.parents) {
    if (lsn < entry.switchLsn) return entry.timeline;
  }
  return history.timeline;
}

/**
 * The LSN at which the history left `timeline` (tliSwitchPoint), or null when
 * `timeline` is the history's own timeline (it has not been left). Throws
 * InvalidInputError when `timeline` is not part of this history.
 */
export function forkPoint(history: TimelineHistory, timeline: number): bigint | null {
  if (timeline === history.timeline) return null;
  const entry = history.parents.find((e) => e.timeline === timeline);
  if (!entry) {
    throw new InvalidInputError(
      `timeline ${String(timeline)} is not in the history of timeline ${String(history.timeline)}`,
    );
  }
  return entry.switchLsn;
}

/** True when `timeline` is the history's timeline or one of its ancestors. */
export function isInHistory(history: TimelineHistory, timeline: number): boolean {
  return timeline === history.timeline || history.parents.some((e) => e.timeline === timeline);
}
