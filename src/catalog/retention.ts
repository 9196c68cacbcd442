/**
 * Retention rules of `pgark expire` (pure logic, no I/O).
 *
 * planRetention() decides, from the catalog entries of a stanza, which backups are kept and
 * which are expired, and from which WAL segment on the archive must be kept. The caller
 * deletes; nothing here touches storage.
 *
 * RULES (the README quotes this block)
 *
 *  0. Order. Backups are ordered by start LSN, then start time; never by id or name. (Two
 *     entries with the same start LSN and start time cannot come from one cluster; they are
 *     ordered by stop LSN then id only so that the result is deterministic.) "Oldest" and
 *     "newest" below refer to this order unless "by stop" is said.
 *
 *  1. A policy must set at least one rule (retain-full, retain-window, retain-daily,
 *     retain-weekly, retain-monthly). A policy with no rule is an error, never "expire
 *     everything". Counts must be positive integers, the window a positive duration.
 *
 *  2. retain-full N: the newest N full backups are kept, and every incremental whose chain
 *     root (chain[0], or the full reached through its parent links) is one of them.
 *
 *  3. retain-window W: every point in time inside [now-W, now] stays restorable. Kept: every
 *     backup whose stop time is >= now-W, plus the newest backup whose stop time is < now-W
 *     (it covers the start of the window; a backup stopping exactly at now-W is inside the
 *     window and does not replace it, because its recorded stop time is not an exact
 *     consistency point). When no backup stopped before now-W, nothing extra is kept and a
 *     warning says that the start of the window is not restorable.
 *
 *  4. retain-daily/weekly/monthly N (grandfather-father-son): backups are grouped by the UTC
 *     calendar day / ISO-8601 week (Monday to Sunday, week-numbering year) / UTC calendar
 *     month of their stop time. For each of the N newest periods THAT HAVE a backup, the
 *     newest backup by stop time of that period is kept. Periods without any backup do not
 *     count against N: with retain-daily 7 and backups on only 3 of the last 7 days, the 7
 *     newest days that have a backup are used, however far back they are. This way a pause
 *     in backups (an outage, a holiday) never lets retention eat the last good backups.
 *     The current time does not matter to these rules.
 *
 *  5. Pinned backups are always kept ('pinned'). A pin naming a backup that does not exist
 *     is reported as a warning.
 *
 *  6. The newest backup is always kept ('newest backup'), whatever the policy.
 *
 *  7. An incremental whose parent is missing from the catalog (an orphan) is kept and
 *     reported as a warning; it is never silently expired.
 *
 *  8. A kept backup keeps its whole ancestor chain: its parent ('parent of <child>'), the
 *     parent's parent, ... up to the full backup. When a backup's `chain` does not match its
 *     parent links, a warning is given and every backup named in its chain is kept too
 *     ('in chain of <id>').
 *
 *  9. Every other backup is expired. The expire list puts dependents before their parents
 *     (newest first otherwise), so deleting in list order never leaves an incremental
 *     without its parent, even if interrupted. A kept backup never depends on an expired one.
 *
 * 10. WAL: walKeepFrom is the start WAL file of the oldest kept backup (or its walRange.first
 *     if that is an older segment). Every WAL segment whose segment NUMBER is >= that
 *     segment's number, on any timeline, is kept; .partial and .backup files follow the
 *     segment they belong to; .history files are always kept; files that are not WAL file
 *     names are never removed. walKeepFrom is null only when there are no backups.
 *
 * Keep reasons appear in this order: pinned, newest backup, retain-full, retain-window,
 * retain-daily, retain-weekly, retain-monthly, orphan, then the chain reasons (parent of,
 * in chain of) of the newest dependents first.
 */
import { InvalidInputError, NotFoundError } from '../common/errors.js';
import { classifyWalFileName, escapeForMessage, parseLsn, parseSegmentName, segmentsPerXLogId } from '../wal/segment-name.js';
import type { BackupInfo } from './backup-info.js';

export interface RetentionPolicy {
  /** Keep the newest N full backups (and their incrementals). */
  retainFull?: number;
  /** Keep every point in time of the last W milliseconds restorable. */
  retainWindowMs?: number;
  /** Keep the newest backup of each of the last N UTC days that have a backup. */
  retainDaily?: number;
  /** Keep the newest backup of each of the last N ISO weeks that have a backup. */
  retainWeekly?: number;
  /** Keep the newest backup of each of the last N UTC months that have a backup. */
  retainMonthly?: number;
}

export interface RetentionPlan {
  /** Kept backups, oldest first (start LSN order), each with why. */
  keep: Array<{ id: string; reasons: string[] }>;
  /** Expired backups in deletion order: dependents before their parents. */
  expire: Array<{ id: string; reason: string }>;
  /** WAL older than `segment` (by segment number, any timeline) may be removed. */
  walKeepFrom: { segment: string; backup: string } | null;
  warnings: string[];
}

export const EXPIRE_REASON = 'not kept by any retention rule';

// ---------------------------------------------------------------------------
// Parsing of settings
// ---------------------------------------------------------------------------

const DURATION_UNITS = [
  ['w', 7 * 24 * 3600 * 1000],
  ['d', 24 * 3600 * 1000],
  ['h', 3600 * 1000],
  ['m', 60 * 1000],
  ['s', 1000],
] as const;

const DURATION_RE = /^(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/;

/**
 * Parse a duration such as '7d', '12h', '30m', '2w', '90s' or '1d12h' into milliseconds.
 * Units: w, d, h, m, s (lowercase), each at most once, largest first. Must be > 0.
 */
export function parseDuration(text: string): number {
  const bad = (why: string): InvalidInputError =>
    new InvalidInputError(
      `invalid duration '${escapeForMessage(String(text))}': ${why} (examples: 7d, 12h, 30m, 2w, 90s, 1d12h)`,
    );
  if (typeof text !== 'string') throw bad('not a string');
  const t = text.trim();
  if (t === '') throw bad('empty');
  const m = DURATION_RE.exec(t);
  if (!m) {
    throw bad('expected <number><unit> parts with units w, d, h, m, s, each at most once, largest first');
  }
  let ms = 0;
  DURATION_UNITS.forEach(([, unitMs], i) => {
    const part = m[i + 1];
    if (part !== undefined) ms += Number(part) * unitMs;
  });
  if (!Number.isSafeInteger(ms)) throw bad('too large');
  if (ms <= 0) throw bad('must be greater than zero');
  return ms;
}

/** Parse a retention count setting: a positive integer. */
export function parseRetentionCount(text: string, settingName: string): number {
  const t = typeof text === 'string' ? text.trim() : '';
  const n = /^\d+$/.test(t) ? Number(t) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new InvalidInputError(
      `invalid ${settingName} '${escapeForMessage(String(text))}': expected a positive integer`,
    );
  }
  return n;
}

function checkPolicy(policy: RetentionPolicy): void {
  const p = policy ?? {};
  const counts = [
    ['retain-full', p.retainFull],
    ['retain-daily', p.retainDaily],
    ['retain-weekly', p.retainWeekly],
    ['retain-monthly', p.retainMonthly],
  ] as const;
  if (counts.every(([, v]) => v === undefined) && p.retainWindowMs === undefined) {
    throw new InvalidInputError('no retention policy: set retain-full, retain-window or retain-daily/weekly/monthly');
  }
  for (const [name, v] of counts) {
    if (v !== undefined && !(Number.isSafeInteger(v) && v >= 1)) {
      throw new InvalidInputError(`invalid ${name} ${String(v)}: expected a positive integer`);
    }
  }
  const w = p.retainWindowMs;
  if (w !== undefined && !(typeof w === 'number' && Number.isFinite(w) && w > 0)) {
    throw new InvalidInputError(`invalid retain-window ${String(w)}: expected a positive duration`);
  }
}

// ---------------------------------------------------------------------------
// Catalog graph
// ---------------------------------------------------------------------------

interface Node {
  b: BackupInfo;
  /** Position in the canonical order (0 = oldest). */
  pos: number;
  startLsn: bigint;
  stopLsn: bigint;
  startMs: number;
  stopMs: number;
  /** Backups this one needs, present in the catalog, with the reason text to give them. */
  deps: Array<{ id: string; how: 'parent' | 'chain' }>;
  /** Direct dependents present in the catalog (reverse of deps). */
  dependents: string[];
}

interface Graph {
  /** Canonical order, oldest first. */
  order: Node[];
  byId: Map<string, Node>;
  /** Per-backup warnings in canonical order. */
  warnings: string[];
  /** Incrementals whose parent is missing, with the missing id. */
  orphans: Map<string, string>;
}

function timeMs(b: BackupInfo, which: 'start' | 'stop'): number {
  const ms = Date.parse(b[which].time);
  if (Number.isNaN(ms)) {
    throw new InvalidInputError(`backup ${b.id}: invalid ${which} time '${escapeForMessage(String(b[which].time))}'`);
  }
  return ms;
}

function lsnOf(b: BackupInfo, which: 'start' | 'stop'): bigint {
  try {
    return parseLsn(b[which].lsn);
  } catch (err) {
    throw new InvalidInputError(`backup ${b.id}: ${(err as Error).message}`);
  }
}

function compareNodes(a: Node, b: Node): number {
  if (a.startLsn !== b.startLsn) return a.startLsn < b.startLsn ? -1 : 1;
  if (a.startMs !== b.startMs) return a.startMs - b.startMs;
  if (a.stopLsn !== b.stopLsn) return a.stopLsn < b.stopLsn ? -1 : 1;
  return a.b.id < b.b.id ? -1 : a.b.id > b.b.id ? 1 : 0;
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function buildGraph(backups: readonly BackupInfo[]): Graph {
  const byId = new Map<string, Node>();
  for (const b of backups) {
    if (byId.has(b.id)) throw new InvalidInputError(`backup ${b.id} appears twice in the catalog`);
    byId.set(b.id, {
      b,
      pos: 0,
      startLsn: lsnOf(b, 'start'),
      stopLsn: lsnOf(b, 'stop'),
      startMs: timeMs(b, 'start'),
      stopMs: timeMs(b, 'stop'),
      deps: [],
      dependents: [],
    });
  }
  const order = [...byId.values()].sort(compareNodes);
  order.forEach((n, i) => {
    n.pos = i;
  });

  const warnings: string[] = [];
  const orphans = new Map<string, string>();
  for (const n of order) {
    const b = n.b;
    const chain = Array.isArray(b.chain) ? b.chain : [];
    let parentChain: readonly string[] | null = null;
    if (b.type === 'incr') {
      const parentId = typeof b.parent === 'string' ? b.parent : '';
      const parent = byId.get(parentId);
      if (parent === undefined || parentId === b.id) {
        const shown = parentId === '' ? '(none recorded)' : parentId;
        orphans.set(b.id, shown);
        warnings.push(
          `incremental backup ${b.id}: its parent ${shown} is missing from the catalog; ` +
            'it is kept but cannot be restored (delete it explicitly once investigated)',
        );
      } else {
        n.deps.push({ id: parentId, how: 'parent' });
        parentChain = Array.isArray(parent.b.chain) ? parent.b.chain : [];
      }
    }
    // The chain must be the parent's chain plus this backup (a full: just itself). When it
    // is not, keep whatever it names too: restore may follow either.
    const expected = b.type === 'full' ? [b.id] : parentChain === null ? null : [...parentChain, b.id];
    if (expected !== null && !sameList(chain, expected)) {
      warnings.push(
        `backup ${b.id}: its chain [${chain.join(', ')}] does not match its parent links ` +
          `[${expected.join(', ')}]; every backup named in either is kept with it`,
      );
      for (const id of chain) {
        if (id !== b.id && byId.has(id) && !n.deps.some((d) => d.id === id)) n.deps.push({ id, how: 'chain' });
      }
    }
  }
  for (const n of order) {
    for (const d of n.deps) byId.get(d.id)?.dependents.push(n.b.id);
  }
  return { order, byId, warnings, orphans };
}

/** The full backup ids at the root of a backup: chain[0] and the end of its parent links. */
function rootsOf(n: Node, g: Graph): Set<string> {
  const roots = new Set<string>();
  const c0 = Array.isArray(n.b.chain) ? n.b.chain[0] : undefined;
  if (c0 !== undefined) roots.add(c0);
  const seen = new Set<string>();
  let cur: Node | undefined = n;
  while (cur !== undefined && !seen.has(cur.b.id)) {
    seen.add(cur.b.id);
    if (cur.b.type === 'full') {
      roots.add(cur.b.id);
      break;
    }
    const p: { id: string; how: string } | undefined = cur.deps.find((d) => d.how === 'parent');
    cur = p === undefined ? undefined : g.byId.get(p.id);
  }
  return roots;
}

// ---------------------------------------------------------------------------
// Periods (UTC)
// ---------------------------------------------------------------------------

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

export function utcDayKey(ms: number): string {
  const d = new Date(ms);
  return `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1, 2)}-${pad(d.getUTCDate(), 2)}`;
}

export function utcMonthKey(ms: number): string {
  const d = new Date(ms);
  return `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1, 2)}`;
}

/** ISO-8601 week of the UTC date, e.g. '2026-W48' (week-numbering year). */
export function isoWeekKey(ms: number): string {
  const DAY = 86_400_000;
  const d = new Date(ms);
  const midnight = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
  const weekday = (d.getUTCDay() + 6) % 7; // Monday = 0
  const thursday = midnight + (3 - weekday) * DAY;
  const year = new Date(thursday).getUTCFullYear();
  const week = 1 + Math.floor((thursday - Date.UTC(year, 0, 1)) / (7 * DAY));
  return `${pad(year, 4)}-W${pad(week, 2)}`;
}

// ---------------------------------------------------------------------------
// Planning
// ---------------------------------------------------------------------------

/** Newest first by stop time; canonical order breaks ties. */
function newerByStop(a: Node, b: Node): number {
  if (a.stopMs !== b.stopMs) return b.stopMs - a.stopMs;
  return b.pos - a.pos;
}

export function planRetention(
  backups: BackupInfo[],
  pins: ReadonlySet<string>,
  policy: RetentionPolicy,
  now: Date,
  walSegmentSize: number,
): RetentionPlan {
  checkPolicy(policy);
  segmentsPerXLogId(walSegmentSize); // validates the size
  const nowMs = now instanceof Date ? now.getTime() : Number.NaN;
  if (Number.isNaN(nowMs)) throw new InvalidInputError('invalid current time');

  const g = buildGraph(backups);
  const warnings = [...g.warnings];
  const reasons = new Map<string, string[]>();
  const keep = (id: string, reason: string): void => {
    const list = reasons.get(id);
    if (list === undefined) reasons.set(id, [reason]);
    else if (!list.includes(reason)) list.push(reason);
  };

  // 5. pins
  for (const id of [...pins].sort()) {
    if (g.byId.has(id)) keep(id, 'pinned');
    else warnings.push(`pinned backup ${id} does not exist`);
  }

  // 6. newest
  const newest = g.order[g.order.length - 1];
  if (newest !== undefined) keep(newest.b.id, 'newest backup');

  // 2. retain-full
  if (policy.retainFull !== undefined) {
    const fulls = g.order.filter((n) => n.b.type === 'full').reverse();
    const kept = fulls.slice(0, policy.retainFull);
    kept.forEach((n, i) => keep(n.b.id, `retain-full (${i + 1} of ${policy.retainFull})`));
    const keptIds = new Set(kept.map((n) => n.b.id));
    for (const n of g.order) {
      if (n.b.type !== 'incr') continue;
      const root = [...rootsOf(n, g)].find((r) => keptIds.has(r));
      if (root !== undefined) keep(n.b.id, `retain-full (chain of ${root})`);
    }
  }

  // 3. retain-window
  if (policy.retainWindowMs !== undefined) {
    const cutoff = nowMs - policy.retainWindowMs;
    const cutoffText = new Date(cutoff).toISOString();
    let cover: Node | undefined;
    for (const n of g.order) {
      if (n.stopMs >= cutoff) keep(n.b.id, `retain-window (stopped at or after ${cutoffText})`);
      else cover = n; // canonical order: the last one is the newest
    }
    if (cover !== undefined) keep(cover.b.id, `retain-window (covers the window start ${cutoffText})`);
    else if (g.order.length > 0) {
      const first = [...g.order].sort(newerByStop).pop();
      warnings.push(
        `retain-window: no backup stopped before ${cutoffText}; points in time before ` +
          `${first === undefined ? '?' : new Date(first.stopMs).toISOString()} are not restorable`,
      );
    }
  }

  // 4. grandfather-father-son
  const gfs = [
    ['retain-daily', policy.retainDaily, utcDayKey],
    ['retain-weekly', policy.retainWeekly, isoWeekKey],
    ['retain-monthly', policy.retainMonthly, utcMonthKey],
  ] as const;
  for (const [name, count, keyOf] of gfs) {
    if (count === undefined) continue;
    const newestOfPeriod = new Map<string, Node>();
    for (const n of [...g.order].sort(newerByStop)) {
      const k = keyOf(n.stopMs);
      if (!newestOfPeriod.has(k)) newestOfPeriod.set(k, n);
    }
    const periods = [...newestOfPeriod.keys()].sort().reverse().slice(0, count);
    for (const k of periods) {
      const n = newestOfPeriod.get(k);
      if (n !== undefined) keep(n.b.id, `${name} ${k}`);
    }
  }

  // 7. orphans
  for (const [id, parent] of g.orphans) keep(id, `orphan: parent ${parent} is missing`);

  // 8. chains: newest dependents first
  for (const n of [...g.order].reverse()) {
    if (!reasons.has(n.b.id)) continue;
    const stack: Node[] = [n];
    const seen = new Set<string>();
    while (stack.length > 0) {
      const cur = stack.pop() as Node;
      if (seen.has(cur.b.id)) continue;
      seen.add(cur.b.id);
      for (const d of cur.deps) {
        const dn = g.byId.get(d.id);
        if (dn === undefined) continue;
        keep(d.id, d.how === 'parent' ? `parent of ${cur.b.id}` : `in chain of ${cur.b.id}`);
        stack.push(dn);
      }
    }
  }

  // 9. expire, dependents before parents
  const expire: Array<{ id: string; reason: string }> = [];
  const emitted = new Set<string>();
  const visit = (n: Node): void => {
    if (emitted.has(n.b.id) || reasons.has(n.b.id)) return;
    emitted.add(n.b.id); // before the children: guards against cycles
    const children = n.dependents
      .map((id) => g.byId.get(id))
      .filter((c): c is Node => c !== undefined)
      .sort((a, b) => b.pos - a.pos);
    for (const c of children) visit(c);
    expire.push({ id: n.b.id, reason: EXPIRE_REASON });
  };
  for (const n of [...g.order].reverse()) visit(n);

  // 10. WAL
  let walKeepFrom: RetentionPlan['walKeepFrom'] = null;
  const oldestKept = g.order.find((n) => reasons.has(n.b.id));
  if (oldestKept !== undefined) {
    let segment = oldestKept.b.start.walFile;
    const first = oldestKept.b.walRange?.first;
    if (typeof first === 'string' && first !== segment) {
      try {
        if (parseSegmentName(first, walSegmentSize).segno < parseSegmentName(segment, walSegmentSize).segno) segment = first;
      } catch {
        // an unparsable walRange.first is ignored; start.walFile is validated below
      }
    }
    parseSegmentName(segment, walSegmentSize); // throws InvalidInputError if corrupt
    walKeepFrom = { segment, backup: oldestKept.b.id };
  }

  return {
    keep: g.order.filter((n) => reasons.has(n.b.id)).map((n) => ({ id: n.b.id, reasons: reasons.get(n.b.id) ?? [] })),
    expire,
    walKeepFrom,
    warnings,
  };
}

// ---------------------------------------------------------------------------
// WAL removal and explicit deletes
// ---------------------------------------------------------------------------

/**
 * True when an archived WAL file may be removed given walKeepFrom's segment: only segment,
 * .partial and .backup file names whose segment number (any timeline) is lower than
 * keepFrom's. .history files and names that are not WAL file names: never.
 */
export function walRemovable(walFileName: string, keepFrom: string, walSegmentSize: number): boolean {
  const keepSegno = parseSegmentName(keepFrom, walSegmentSize).segno;
  const c = classifyWalFileName(walFileName);
  if (c === null || c.kind === 'history') return false;
  let segno: bigint;
  try {
    segno = parseSegmentName(c.segmentName, walSegmentSize).segno;
  } catch {
    return false; // segment part out of range for this segment size: not ours to judge
  }
  return segno < keepSegno;
}

/**
 * Reasons why deleting backup `id` would break something; empty = safe. Checks: backups that
 * depend on it (all descendants, named), a pin, and when `policy` is given, whether the
 * policy's plan keeps it (with the plan's reasons). Throws NotFoundError for an unknown id.
 */
export function checkDelete(
  id: string,
  backups: BackupInfo[],
  pins: ReadonlySet<string>,
  policy: RetentionPolicy | null,
  now: Date,
  walSegmentSize: number,
): string[] {
  const g = buildGraph(backups);
  const target = g.byId.get(id);
  if (target === undefined) throw new NotFoundError(id, `unable to find backup '${escapeForMessage(id)}'`);
  const out: string[] = [];

  const descendants = new Set<string>();
  const stack = [...target.dependents];
  while (stack.length > 0) {
    const d = stack.pop() as string;
    if (d === id || descendants.has(d)) continue;
    descendants.add(d);
    stack.push(...(g.byId.get(d)?.dependents ?? []));
  }
  if (descendants.size > 0) {
    const names = g.order.filter((n) => descendants.has(n.b.id)).map((n) => n.b.id);
    out.push(`backups depend on it: ${names.join(', ')}`);
  }
  const pinned = pins.has(id);
  if (pinned) out.push('it is pinned');
  if (policy !== null) {
    const plan = planRetention(backups, pins, policy, now, walSegmentSize);
    const kept = plan.keep.find((k) => k.id === id);
    const why = kept?.reasons.filter((r) => !(pinned && r === 'pinned')) ?? [];
    if (why.length > 0) out.push(`the retention policy keeps it: ${why.join('; ')}`);
  }
  return out;
}
