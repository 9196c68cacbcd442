/**
 * Timeline history files (`<TLI>.history`), read by the rules of PostgreSQL's
 * readTimeLineHistory (src/backend/access/transam/timeline.c). Each line that is not blank and
 * does not start with '#' (after leading whitespace) is `<parentTLI>\t<switchpoint LSN>\t<reason>`:
 * WAL on parentTLI is valid up to (not including) the switchpoint, where the next timeline
 * takes over. PostgreSQL requires only that the timeline IDs increase and stay below the
 * file's own timeline; switch points need not increase (a PITR to a point before a later switch
 * writes a history whose switch points decrease), and the reason is free text.
 * Which timeline an LSN belongs to follows tliOfPointInHistory, where the newest entry wins.
 * Pure functions, no I/O.
 */
import { InvalidInputError } from '../common/errors.js';
import { escapeForMessage, formatLsn } from './segment-name.js';

export interface TimelineHistoryEntry {
  /** An ancestor timeline. */
  timeline: number;
  /** Where the history left this ancestor: the first LSN that belongs to a later timeline. */
  switchLsn: bigint;
  reason: string;
}

export interface TimelineHistory {
  /** The timeline this history file describes (from its file name). */
  timeline: number;
  /** Ancestors, oldest first, as written in the file. */
  parents: TimelineHistoryEntry[];
}

/** A part of the LSN space and the timeline that holds it in a history. */
export interface TimelineSpan {
  timeline: number;
  begin: bigint;
  /** The switch point to the next span; undefined for the history's own timeline. */
  end: bigint | undefined;
}

const MAX_UINT32 = 0xffffffffn;

function fail(timeline: number, lineNo: number | null, why: string): never {
  const where = lineNo === null ? '' : ` line ${String(lineNo)}`;
  throw new InvalidInputError(`invalid timeline history for timeline ${String(timeline)}${where}: ${why}`);
}

/** C isspace() in the "C" locale. */
const isSpace = (c: string | undefined): boolean => c === ' ' || c === '\t' || c === '\n' || c === '\v' || c === '\f' || c === '\r';
const isDigit = (c: string | undefined): boolean => c !== undefined && c >= '0' && c <= '9';
const isHex = (c: string | undefined): boolean => c !== undefined && /^[0-9A-Fa-f]$/.test(c);

interface ParsedLine {
  tli: string;
  hi?: string;
  lo?: string;
  rest: string;
}

/**
 * sscanf(line, "%u\t%X/%X") as PostgreSQL calls it: a '\t' in the format matches any run of
 * whitespace (also none), %u and %X skip leading whitespace, the '/' must follow the first hex
 * number directly, and the rest of the line is ignored (it is the reason). Signs and 0x
 * prefixes, which scanf would also take but PostgreSQL never writes, are not accepted.
 */
function scanLine(line: string): ParsedLine | undefined {
  let i = 0;
  const skipSpace = () => {
    while (isSpace(line[i])) i++;
  };
  const run = (ok: (c: string | undefined) => boolean): string => {
    const start = i;
    while (ok(line[i])) i++;
    return line.slice(start, i);
  };
  skipSpace();
  const tli = run(isDigit);
  if (tli === '') return undefined;
  skipSpace();
  const hi = run(isHex);
  if (hi === '' || line[i] !== '/') return { tli, rest: '' };
  i++;
  skipSpace();
  const lo = run(isHex);
  if (lo === '') return { tli, rest: '' };
  return { tli, hi, lo, rest: line.slice(i) };
}

/**
 * Parse and validate the text of the history file of `timeline`, accepting what PostgreSQL
 * accepts: timeline IDs strictly increase and are all below `timeline`; switch LSNs carry no
 * order; blank lines and '#' comments are skipped. Throws InvalidInputError otherwise (also for
 * timeline 0 and numbers that do not fit in 32 bits, which PostgreSQL never writes).
 */
export function parseTimelineHistory(text: string, timeline: number): TimelineHistory {
  if (!Number.isInteger(timeline) || timeline < 1 || timeline > Number(MAX_UINT32)) {
    throw new InvalidInputError(`invalid timeline ${String(timeline)}: must be an integer in 1..4294967295`);
  }
  const parents: TimelineHistoryEntry[] = [];
  let lastLine = 0;
  text.split('\n').forEach((line, index) => {
    const lineNo = index + 1;
    let p = 0;
    while (isSpace(line[p])) p++;
    if (p === line.length || line[p] === '#') return;
    const shown = `'${escapeForMessage(line.trim())}'`;
    const m = scanLine(line);
    if (!m) fail(timeline, lineNo, `syntax error in history file: ${shown} (expected a numeric timeline ID)`);
    if (m.hi === undefined || m.lo === undefined) {
      fail(timeline, lineNo, `syntax error in history file: ${shown} (expected a write-ahead log switchpoint location after the timeline ID)`);
    }
    const tli = BigInt(m.tli);
    if (tli < 1n || tli > MAX_UINT32) fail(timeline, lineNo, `invalid data in history file: ${shown} (timeline ${m.tli} is out of range 1..4294967295)`);
    const hi = BigInt(`0x${m.hi}`);
    const lo = BigInt(`0x${m.lo}`);
    if (hi > MAX_UINT32 || lo > MAX_UINT32) fail(timeline, lineNo, `invalid data in history file: ${shown} (switchpoint ${m.hi}/${m.lo} is out of range)`);
    const prev = parents[parents.length - 1];
    if (prev && Number(tli) <= prev.timeline) {
      fail(timeline, lineNo, `invalid data in history file: ${shown} (timeline IDs must be in increasing sequence: ${m.tli} after ${String(prev.timeline)})`);
    }
    parents.push({ timeline: Number(tli), switchLsn: (hi << 32n) | lo, reason: m.rest.trim() });
    lastLine = lineNo;
  });
  const last = parents[parents.length - 1];
  if (last && last.timeline >= timeline) {
    fail(timeline, lastLine, `invalid data in history file (timeline IDs must be less than child timeline's ID: ${String(last.timeline)} is not less than ${String(timeline)})`);
  }
  return { timeline, parents };
}

/**
 * The entries of PostgreSQL's history list, oldest first: an ancestor runs from the previous
 * switch point (0 for the first) to its own; the history's own timeline from the last switch
 * point on (end undefined). With decreasing switch points an entry can be empty or inverted.
 */
function rawEntries(history: TimelineHistory): TimelineSpan[] {
  const out: TimelineSpan[] = [];
  let begin = 0n;
  for (const p of history.parents) {
    out.push({ timeline: p.timeline, begin, end: p.switchLsn });
    begin = p.switchLsn;
  }
  out.push({ timeline: history.timeline, begin, end: undefined });
  return out;
}

/**
 * The timeline an LSN belongs to in this history: PostgreSQL's tliOfPointInHistory, which looks
 * at the newest entry first and takes the first whose [begin, end) holds the LSN (an LSN of 0
 * there means "unbounded").
 */
export function timelineOfLsn(history: TimelineHistory, lsn: bigint): number {
  const entries = rawEntries(history);
  for (let i = entries.length - 1; i >= 0; i--) {
    const e = entries[i]!;
    if ((e.begin === 0n || e.begin <= lsn) && (e.end === undefined || e.end === 0n || lsn < e.end)) return e.timeline;
  }
  // Cannot happen: the first entry starts at 0 and the last has no end in between ends the gaps.
  throw new InvalidInputError(`timeline history of timeline ${String(history.timeline)} is not contiguous at ${formatLsn(lsn)}`);
}

/**
 * The parts of the LSN space each timeline holds in this history, ascending, contiguous from 0,
 * without empty parts: the same answer as timelineOfLsn for every LSN. A timeline's part ends at
 * the lowest switch point at or after its entry (a later timeline that forked lower takes over
 * there); a timeline whose part is empty is left out (its WAL is not on this history's path).
 */
export function historySpans(history: TimelineHistory): TimelineSpan[] {
  const entries = rawEntries(history);
  const out: TimelineSpan[] = [];
  let lowest: bigint | undefined;
  for (let i = entries.length - 1; i >= 0; i--) {
    const e = entries[i]!;
    if (e.end !== undefined) lowest = lowest === undefined || e.end < lowest ? e.end : lowest;
    if (lowest === undefined || e.begin < lowest) out.push({ timeline: e.timeline, begin: e.begin, end: lowest });
  }
  return out.reverse();
}

/**
 * The LSN at which the history left `timeline` (PostgreSQL's tliSwitchPoint: the switch point
 * written for it, whatever the later ones are), or null when `timeline` is the history's own
 * timeline. Throws InvalidInputError when `timeline` is not part of this history.
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
