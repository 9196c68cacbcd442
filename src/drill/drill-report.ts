/**
 * The report of one DR drill (pure): its JSON shape (stored at `<stanza>/drill/<id>.json` and
 * read by `pgark drills`, `pgark info` and the metrics), validation, the human rendering, the
 * drill target (`--target`), and the RTO/RPO arithmetic.
 */
import { IntegrityError, InvalidInputError } from '../common/errors.js';
import type { RecoveryTarget } from '../restore/recovery-target.js';
import { escapeForMessage } from '../wal/segment-name.js';

export const DRILL_REPORT_FORMAT = 1;

export type DrillTargetKind = 'latest' | 'time' | 'name' | 'lsn' | 'xid' | 'immediate';

export interface DrillTarget {
  kind: DrillTargetKind;
  value?: string;
}

export interface DrillCheck {
  name: string;
  ok: boolean;
  skipped?: boolean;
  detail: string;
}

export interface DrillReport {
  /** Report format; absent in nothing pgark writes, tolerated when reading. */
  format?: number;
  id: string;
  stanza: string;
  host: string;
  startedAt: string;
  finishedAt: string;
  backup?: { id: string; type: string; stopTime?: string };
  target: DrillTarget;
  result: 'passed' | 'failed';
  failure?: string;
  phases: { restoreSec: number; replaySec?: number; promoteSec?: number; checksSec?: number };
  /** restore + replay + promote, when all three happened. */
  rtoSec?: number;
  rpo: { lastReplayedCommit?: string; newestArchivedCommit?: string; seconds?: number; note?: string };
  timeline?: number;
  reachedLsn?: string;
  /** The server log line that ended recovery ("recovery stopping ...", "redo done at ..."). */
  recoveryEnd?: string;
  checks: DrillCheck[];
  tables?: Array<{ database: string; table: string; rows: number }>;
  /** Tables not counted because of the bound on counted tables. */
  tablesNotCounted?: number;
  pgVersion?: number;
  /** Scratch data directory, when it was kept (--keep). */
  kept?: { pgdata: string; socketDir: string; port: number };
}

const KINDS: readonly DrillTargetKind[] = ['latest', 'time', 'name', 'lsn', 'xid', 'immediate'];

/**
 * `--target` text: `latest` (replay the whole archive), `immediate` (stop at consistency), or
 * `time=<timestamp>`, `name=<restore point>`, `lsn=<X/Y>`, `xid=<xid>`.
 */
export function parseDrillTarget(spec: string): DrillTarget {
  const bad = (why: string) => new InvalidInputError(`invalid --target '${escapeForMessage(spec)}': ${why} (latest, immediate, time=..., name=..., lsn=... or xid=...)`);
  const s = spec.trim();
  if (s === 'latest' || s === 'immediate') return { kind: s };
  const eq = s.indexOf('=');
  if (eq < 0) {
    if ((KINDS as readonly string[]).includes(s)) throw bad(`'${s}' needs a value: ${s}=<value>`);
    throw bad('unknown target');
  }
  const kind = s.slice(0, eq).trim();
  const value = s.slice(eq + 1).trim();
  if (kind !== 'time' && kind !== 'name' && kind !== 'lsn' && kind !== 'xid') throw bad(`unknown target kind '${kind}'`);
  if (value === '') throw bad('empty value');
  return { kind, value };
}

/** The drill's target flags, spelt as restore's: --target-time, --target-name, --target-lsn, --target-xid, --target-immediate. */
export interface DrillTargetFlags {
  targetTime?: string;
  targetName?: string;
  targetLsn?: string;
  targetXid?: string;
  targetImmediate?: boolean;
}

/** The target those flags name: at most one of them; none is `latest` (the end of the archive). */
export function drillTargetOf(f: DrillTargetFlags): DrillTarget {
  const given = ([['time', f.targetTime], ['name', f.targetName], ['lsn', f.targetLsn], ['xid', f.targetXid]] as const)
    .filter((e): e is readonly ['time' | 'name' | 'lsn' | 'xid', string] => e[1] !== undefined);
  const flags = [...given.map(([k]) => `--target-${k}`), ...(f.targetImmediate ? ['--target-immediate'] : [])];
  if (flags.length > 1) throw new InvalidInputError(`one recovery target at most: ${flags.join(' and ')} given`);
  if (f.targetImmediate) return { kind: 'immediate' };
  const first = given[0];
  if (!first) return { kind: 'latest' };
  const value = first[1].trim();
  if (value === '') throw new InvalidInputError(`invalid --target-${first[0]}: empty value`);
  return { kind: first[0], value };
}

/** The flags that name a target (the inverse of drillTargetOf; the deprecated --target KIND=VALUE becomes these). */
export function drillTargetFlags(t: DrillTarget): DrillTargetFlags {
  switch (t.kind) {
    case 'latest':
      return {};
    case 'immediate':
      return { targetImmediate: true };
    case 'time':
      return { targetTime: t.value };
    case 'name':
      return { targetName: t.value };
    case 'lsn':
      return { targetLsn: t.value };
    case 'xid':
      return { targetXid: t.value };
  }
}

/**
 * The recovery target a drill passes to restore: nothing for `latest` (recovery replays the
 * whole archive and promotes at its end), else the target with action promote.
 */
export function recoveryTargetOf(t: DrillTarget, exclusive = false): RecoveryTarget {
  if (exclusive && t.kind !== 'time' && t.kind !== 'lsn' && t.kind !== 'xid') {
    throw new InvalidInputError('--target-exclusive applies to time=, lsn= and xid= targets only');
  }
  switch (t.kind) {
    case 'latest':
      return {};
    case 'immediate':
      return { immediate: true, action: 'promote' };
    default:
      return { [t.kind]: t.value, action: 'promote', ...(exclusive ? { exclusive: true } : {}) };
  }
}

export function describeTarget(t: DrillTarget): string {
  return t.value === undefined ? t.kind : `${t.kind} ${t.value}`;
}

/** Seconds with millisecond precision. */
export function secondsBetween(startMs: number, endMs: number): number {
  return Math.round(Math.max(0, endMs - startMs)) / 1000;
}

/** RTO = restore + replay + promote, when all three phases happened. */
export function rtoOf(p: DrillReport['phases']): number | undefined {
  if (p.replaySec === undefined || p.promoteSec === undefined) return undefined;
  return Math.round((p.restoreSec + p.replaySec + p.promoteSec) * 1000) / 1000;
}

const ISO_MICRO_RE = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,6}))?Z$/;

/** Microseconds since the epoch of an ISO UTC timestamp with up to 6 fraction digits. */
export function isoMicros(text: string): bigint {
  const m = ISO_MICRO_RE.exec(text);
  const ms = m ? Date.parse(`${m[1]}Z`) : Number.NaN;
  if (!m || Number.isNaN(ms)) throw new InvalidInputError(`invalid timestamp '${escapeForMessage(text)}': expected YYYY-MM-DDTHH:MM:SS[.ffffff]Z`);
  return BigInt(ms) * 1000n + BigInt((m[2] ?? '').padEnd(6, '0'));
}

/**
 * The achieved RPO: the newest commit in the archive minus the last commit replayed, in seconds
 * (microsecond precision). 0 when the copy holds the newest commit. When no commit was replayed
 * (none since the backup), the backup's stop time stands for the copy's newest data.
 */
export function rpoOf(o: { lastReplayedCommit?: string; newestArchivedCommit?: string; backupStopTime?: string; newestNote?: string }): DrillReport['rpo'] {
  const out: DrillReport['rpo'] = {};
  if (o.lastReplayedCommit !== undefined) out.lastReplayedCommit = o.lastReplayedCommit;
  if (o.newestArchivedCommit !== undefined) out.newestArchivedCommit = o.newestArchivedCommit;
  if (o.newestArchivedCommit === undefined) {
    out.note = `unknown: ${o.newestNote ?? 'no commit found in the newest archived WAL'}`;
    return out;
  }
  const newest = isoMicros(o.newestArchivedCommit);
  let reached: bigint;
  if (o.lastReplayedCommit !== undefined) reached = isoMicros(o.lastReplayedCommit);
  else if (o.backupStopTime !== undefined) {
    reached = BigInt(Date.parse(o.backupStopTime)) * 1000n;
    out.note = 'no transaction was replayed after the backup: measured from the backup stop time';
  } else {
    out.note = 'unknown: no transaction was replayed';
    return out;
  }
  const diff = newest - reached;
  if (diff < 0n && o.lastReplayedCommit !== undefined) {
    out.note = 'the copy holds a commit newer than the newest one found in the archive';
  }
  out.seconds = diff <= 0n ? 0 : Number(diff) / 1e6;
  return out;
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
const optStr = (v: unknown) => v === undefined || typeof v === 'string';
const optNum = (v: unknown) => v === undefined || (typeof v === 'number' && Number.isFinite(v));

/** Parse and validate a stored report. IntegrityError naming `where` when it is not one. */
export function parseDrillReport(json: string, where: string): DrillReport {
  let v: unknown;
  try {
    v = JSON.parse(json);
  } catch (err) {
    throw new IntegrityError(`unable to read '${where}': invalid JSON (${(err as Error).message})`);
  }
  const bad = (what: string) => new IntegrityError(`unable to read '${where}': not a drill report (${what})`);
  if (!isObj(v)) throw bad('not an object');
  if (v.format !== undefined && v.format !== DRILL_REPORT_FORMAT) {
    throw new IntegrityError(`unable to read '${where}': drill report format ${String(v.format)} is not supported by this pgark (supports ${DRILL_REPORT_FORMAT})`);
  }
  for (const k of ['id', 'stanza', 'host', 'startedAt', 'finishedAt'] as const) if (typeof v[k] !== 'string') throw bad(`${k} missing`);
  if (!/^\d{8}-\d{6}D$/.test(v.id as string)) throw bad('invalid id');
  for (const k of ['startedAt', 'finishedAt'] as const) if (Number.isNaN(Date.parse(v[k] as string))) throw bad(`${k} is not a time`);
  if (v.result !== 'passed' && v.result !== 'failed') throw bad('result is neither passed nor failed');
  if (!optStr(v.failure)) throw bad('failure is not text');
  const t = v.target;
  if (!isObj(t) || !(KINDS as readonly unknown[]).includes(t.kind) || !optStr(t.value)) throw bad('invalid target');
  if (v.backup !== undefined && (!isObj(v.backup) || typeof v.backup.id !== 'string' || typeof v.backup.type !== 'string' || !optStr(v.backup.stopTime))) throw bad('invalid backup');
  const p = v.phases;
  if (!isObj(p) || typeof p.restoreSec !== 'number' || !optNum(p.replaySec) || !optNum(p.promoteSec) || !optNum(p.checksSec)) throw bad('invalid phases');
  if (!optNum(v.rtoSec) || !optNum(v.timeline) || !optStr(v.reachedLsn)) throw bad('invalid rtoSec, timeline or reachedLsn');
  const r = v.rpo;
  if (!isObj(r) || !optStr(r.lastReplayedCommit) || !optStr(r.newestArchivedCommit) || !optNum(r.seconds) || !optStr(r.note)) throw bad('invalid rpo');
  if (!Array.isArray(v.checks) || !v.checks.every((c) => isObj(c) && typeof c.name === 'string' && typeof c.ok === 'boolean' && typeof c.detail === 'string' &&
    (c.skipped === undefined || typeof c.skipped === 'boolean'))) throw bad('invalid checks');
  if (v.tables !== undefined && (!Array.isArray(v.tables) || !v.tables.every((x) => isObj(x) && typeof x.database === 'string' && typeof x.table === 'string' && typeof x.rows === 'number'))) {
    throw bad('invalid tables');
  }
  return v as unknown as DrillReport;
}

/** 0.4 -> "0.4s", 75 -> "1m15s", 4000 -> "1h06m40s". */
export function formatSeconds(sec: number): string {
  if (sec < 60) return `${sec < 10 ? Math.round(sec * 10) / 10 : Math.round(sec)}s`;
  const s = Math.round(sec);
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m${String(s % 60).padStart(2, '0')}s`;
}

export function formatRpo(r: DrillReport['rpo']): string {
  if (r.seconds !== undefined) return formatSeconds(r.seconds);
  return 'unknown';
}

/** The human text of a report. */
export function formatDrillReport(r: DrillReport): string {
  const lines: string[] = [];
  lines.push(`drill ${r.id} ${r.result === 'passed' ? 'PASSED' : 'FAILED'}  (stanza ${r.stanza}, host ${r.host})`);
  if (r.failure) lines.push(`  failure   ${r.failure}`);
  lines.push(`  started   ${r.startedAt}  finished ${r.finishedAt}`);
  lines.push(`  backup    ${r.backup ? `${r.backup.id} (${r.backup.type}${r.backup.stopTime ? `, stopped ${r.backup.stopTime}` : ''})` : 'none'}`);
  lines.push(`  target    ${describeTarget(r.target)}${r.recoveryEnd ? `  (${r.recoveryEnd})` : ''}`);
  if (r.timeline !== undefined || r.reachedLsn !== undefined) lines.push(`  reached   ${r.reachedLsn ? `LSN ${r.reachedLsn}` : ''}${r.timeline !== undefined ? ` timeline ${r.timeline} after promotion` : ''}`.trimEnd());
  const ph = r.phases;
  const phase = (n: number | undefined) => (n === undefined ? '-' : formatSeconds(n));
  lines.push(`  RTO       ${r.rtoSec === undefined ? 'not measured' : formatSeconds(r.rtoSec)}  (restore ${phase(ph.restoreSec)}, replay ${phase(ph.replaySec)}, promote ${phase(ph.promoteSec)}; checks ${phase(ph.checksSec)})`);
  const rpo = r.rpo;
  const seen: string[] = [];
  if (rpo.lastReplayedCommit) seen.push(`last replayed commit ${rpo.lastReplayedCommit}`);
  if (rpo.newestArchivedCommit) seen.push(`newest archived commit ${rpo.newestArchivedCommit}`);
  lines.push(`  RPO       ${formatRpo(rpo)}${seen.length > 0 ? `  (${seen.join(', ')})` : ''}`);
  if (rpo.note) lines.push(`            ${rpo.note}`);
  for (const c of r.checks) lines.push(`  ${c.skipped ? 'SKIPPED' : c.ok ? 'ok     ' : 'FAILED '} ${c.name}: ${c.detail}`);
  if (r.tables && r.tables.length > 0) {
    lines.push(`  tables (${r.tables.length}${r.tablesNotCounted ? `, ${r.tablesNotCounted} more not counted` : ''}):`);
    for (const t of r.tables) lines.push(`    ${t.database}.${t.table}  ${t.rows}`);
  }
  return lines.join('\n');
}

/** One line per report for `pgark drills`, newest first (the caller sorts). */
export function formatDrillList(reports: readonly DrillReport[]): string {
  const rows = reports.map((r) => [r.id, r.result, describeTarget(r.target), r.backup?.id ?? '-', r.rtoSec === undefined ? '-' : formatSeconds(r.rtoSec),
    formatRpo(r.rpo), r.failure ? oneLine(r.failure, 100) : '']);
  const head = ['id', 'result', 'target', 'backup', 'RTO', 'RPO', 'failure'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((x) => x[i]!.length)));
  return [head, ...rows].map((x) => x.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}

/** Collapse whitespace and cut to `max` characters. */
export function oneLine(text: string, max: number): string {
  const s = text.replace(/\s+/g, ' ').trim();
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}
