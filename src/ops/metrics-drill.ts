/**
 * The read side of stored drill reports (pure): what `pgark metrics` and `pgark info` need of a
 * report written by `pgark drill` at `<stanza>/drill/<id>.json`. Parsing is defensive: a field
 * that is missing or of the wrong type is left out (shown as unknown), never an error, so a
 * report from an older or newer pgark, or a damaged one, never breaks monitoring.
 */

/** A drill report as far as monitoring needs it; every field but `id` may be unknown. */
export interface DrillSummary {
  id: string;
  result?: 'passed' | 'failed';
  failure?: string;
  startedAt?: string;
  finishedAt?: string;
  target?: { kind: string; value?: string };
  backup?: { id: string; type?: string };
  phases: { restoreSec?: number; replaySec?: number; promoteSec?: number; checksSec?: number };
  rtoSec?: number;
  rpo: { seconds?: number; note?: string; lastReplayedCommit?: string; newestArchivedCommit?: string };
  checks?: { total: number; failed: number; skipped: number };
  /** Why the report could not be read or parsed at all (then everything else is unknown). */
  unreadable?: string;
}

const DRILL_ID_RE = /^(\d{4})(\d{2})(\d{2})-(\d{2})(\d{2})(\d{2})D$/;

/** The drill id of a key under `<stanza>/drill/`, or undefined for anything else. */
export function drillIdOfKey(key: string): string | undefined {
  const m = /\/drill\/(\d{8}-\d{6}D)\.json$/.exec(key);
  return m?.[1];
}

/** The UTC start time an id encodes (ids are drillIdFor(start)), in ms; NaN if malformed. */
export function drillIdTimeMs(id: string): number {
  const m = DRILL_ID_RE.exec(id);
  if (!m) return Number.NaN;
  return Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : undefined);
const time = (v: unknown): string | undefined => {
  const s = str(v);
  return s !== undefined && !Number.isNaN(Date.parse(s)) ? s : undefined;
};
const obj = (v: unknown): Record<string, unknown> | undefined =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;

/** Drop undefined members so JSON output and equality checks stay small. */
function compact<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

/** Summarise the JSON text of a stored report. Never throws. */
export function summariseDrillReport(id: string, json: string): DrillSummary {
  let v: unknown;
  try {
    v = JSON.parse(json);
  } catch (err) {
    return { id, phases: {}, rpo: {}, unreadable: `invalid JSON: ${(err as Error).message}` };
  }
  const r = obj(v);
  if (!r) return { id, phases: {}, rpo: {}, unreadable: 'not a JSON object' };
  const result = r.result === 'passed' || r.result === 'failed' ? r.result : undefined;
  const target = obj(r.target);
  const backup = obj(r.backup);
  const phases = obj(r.phases) ?? {};
  const rpo = obj(r.rpo) ?? {};
  const checks = Array.isArray(r.checks) ? r.checks.map(obj).filter((c): c is Record<string, unknown> => c !== undefined) : undefined;
  return compact<DrillSummary>({
    id,
    result,
    failure: str(r.failure),
    startedAt: time(r.startedAt),
    finishedAt: time(r.finishedAt),
    target: target && str(target.kind) ? compact({ kind: str(target.kind)!, value: str(target.value) }) : undefined,
    backup: backup && str(backup.id) ? compact({ id: str(backup.id)!, type: str(backup.type) }) : undefined,
    phases: compact({ restoreSec: num(phases.restoreSec), replaySec: num(phases.replaySec), promoteSec: num(phases.promoteSec), checksSec: num(phases.checksSec) }),
    rtoSec: num(r.rtoSec),
    rpo: compact({ seconds: num(rpo.seconds), note: str(rpo.note), lastReplayedCommit: time(rpo.lastReplayedCommit), newestArchivedCommit: time(rpo.newestArchivedCommit) }),
    checks: checks
      ? { total: checks.length, failed: checks.filter((c) => c.ok === false && c.skipped !== true).length, skipped: checks.filter((c) => c.skipped === true).length }
      : undefined,
  });
}

/** When the drill ended (or started, or the time its id encodes), in ms; undefined if unknown. */
export function drillTimeMs(s: DrillSummary): number | undefined {
  for (const t of [s.finishedAt, s.startedAt]) if (t !== undefined) return Date.parse(t);
  const fromId = drillIdTimeMs(s.id);
  return Number.isNaN(fromId) ? undefined : fromId;
}

/** `45 s`, `12 min`, `2 h`, `3 d` (rounded down; negative clock skew reads as 0 s). */
export function formatAgo(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.floor(s / 60)} min`;
  if (s < 172_800) return `${Math.floor(s / 3600)} h`;
  return `${Math.floor(s / 86_400)} d`;
}

const sec = (n: number): string => (Math.round(n * 10) / 10).toFixed(1);

/**
 * One line for `pgark info`, e.g. `20261123-101500D: passed, RTO 12.3 s (restore 4.1, replay 6.0,
 * promote 2.2), RPO 0 s, 2 h ago` or `20261123-101500D: FAILED: <reason>, 3 d ago`.
 */
export function formatDrillLine(s: DrillSummary, nowMs: number): string {
  const t = drillTimeMs(s);
  const ago = t === undefined ? 'time unknown' : `${formatAgo((nowMs - t) / 1000)} ago`;
  if (s.unreadable) return `${s.id}: report unreadable (${s.unreadable}), ${ago}`;
  const parts: string[] = [];
  if (s.result === 'failed') parts.push(`FAILED: ${s.failure ?? 'no reason recorded'}`);
  else parts.push(s.result ?? 'result unknown');
  const p = s.phases;
  const phaseText = [['restore', p.restoreSec], ['replay', p.replaySec], ['promote', p.promoteSec]]
    .filter((x): x is [string, number] => x[1] !== undefined).map(([n, v]) => `${n} ${sec(v)}`).join(', ');
  if (s.rtoSec !== undefined) parts.push(`RTO ${sec(s.rtoSec)} s${phaseText ? ` (${phaseText})` : ''}`);
  else if (s.result !== 'failed' || phaseText) parts.push(`RTO unknown${phaseText ? ` (${phaseText})` : ''}`);
  if (s.rpo.seconds !== undefined) parts.push(`RPO ${Number.isInteger(s.rpo.seconds) ? s.rpo.seconds : sec(s.rpo.seconds)} s`);
  else if (s.result !== 'failed') parts.push(`RPO unknown${s.rpo.note ? ` (${s.rpo.note})` : ''}`);
  if (s.checks && s.checks.failed > 0 && s.result !== 'failed') parts.push(`${s.checks.failed} check(s) failed`);
  parts.push(ago);
  return `${s.id}: ${parts.join(', ')}`;
}
