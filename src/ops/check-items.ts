/**
 * The items of `pgark check` (pure): each turns facts gathered by check.ts into OK, WARNING or
 * CRITICAL with a reason, Nagios-style. The run's status is the worst item's; its exit code is
 * 0 (OK), 1 (WARNING), 2 (CRITICAL) or 3 (UNKNOWN: pgark itself could not check, e.g. bad usage
 * or an unreadable configuration) — the monitoring convention, not pgark's other codes.
 * The report's first line is the plugin output a monitoring system reads (status, a brief list
 * of what is not OK, then `|` and performance data); the items follow as long output.
 */
import { classifyCommand, type ConfigHint } from './archive-command.js';
import { normArchiveMode } from './setup-plan.js';
import { formatBytes } from '../common/progress.js';
import { isStaleReceiverStatus } from '../wal/receiver-statuses.js';

export type CheckStatus = 'OK' | 'WARNING' | 'CRITICAL' | 'UNKNOWN';

export interface CheckItem {
  name: string;
  status: CheckStatus;
  detail: string;
  /** How long the item took to pass (the WAL round trip). */
  seconds?: number;
}

/** Exit codes of the Monitoring Plugins convention. */
const CODE: Record<CheckStatus, 0 | 1 | 2 | 3> = { OK: 0, WARNING: 1, CRITICAL: 2, UNKNOWN: 3 };
/** Which status wins: CRITICAL over UNKNOWN over WARNING over OK. */
const SEVERITY: Record<CheckStatus, number> = { OK: 0, WARNING: 1, UNKNOWN: 2, CRITICAL: 3 };

export function overallStatus(items: readonly CheckItem[]): CheckStatus {
  return items.reduce<CheckStatus>((worst, i) => (SEVERITY[i.status] > SEVERITY[worst] ? i.status : worst), 'OK');
}

export function checkExitCode(status: CheckStatus): 0 | 1 | 2 | 3 {
  return CODE[status];
}

/** One performance datum: 'label'=value[UOM];[warn];[crit];[min];[max] (Monitoring Plugins guidelines). */
export interface PerfDatum {
  label: string;
  value: number;
  /** '' (a number, a gauge), 's' (seconds) or 'c' (a continuous counter). */
  uom: '' | 's' | 'c';
  warn?: number;
  crit?: number;
  min?: number;
  max?: number;
}

const numText = (n: number) => (Number.isInteger(n) ? String(n) : String(Math.round(n * 1000) / 1000));

/**
 * Performance data as the guidelines define it: space-separated `label=value[UOM];warn;crit;min;max`,
 * trailing empty fields left out, labels quoted when they hold anything but [A-Za-z0-9_.-].
 */
export function formatPerfData(perf: readonly PerfDatum[]): string {
  return perf.map((p) => {
    if (p.label.includes('=') || p.label.includes("'") || p.label === '') throw new Error(`invalid perfdata label '${p.label}'`);
    if (!Number.isFinite(p.value)) throw new Error(`perfdata '${p.label}' has no finite value`);
    const label = /^[A-Za-z0-9_.-]+$/.test(p.label) ? p.label : `'${p.label}'`;
    const fields = [`${label}=${numText(p.value)}${p.uom}`, ...[p.warn, p.crit, p.min, p.max].map((v) => (v === undefined ? '' : numText(v)))];
    while (fields[fields.length - 1] === '') fields.pop();
    return fields.join(';');
  }).join(' ');
}

/** Plugin output may not contain '|' outside the perfdata separator, nor line breaks in the first line. */
const pluginText = (s: string) => s.replace(/\|/g, '/').replace(/[\r\n]+/g, ' ');

/** The short reason of an item for the first line: its detail up to the first '; ' or ' (', at most 160 characters. */
export function briefOf(item: CheckItem): string {
  let s = item.detail;
  for (const sep of ['; ', ' (']) {
    const at = s.indexOf(sep);
    if (at > 0) s = s.slice(0, at);
  }
  return s.length > 160 ? `${s.slice(0, 159)}…` : s;
}

/** Items listed on the first line; with the perfdata it stays within NRPE 2's 1024 bytes. */
const SUMMARY_LISTED = 3;

/**
 * The first line: `PGARK CRITICAL - 2 critical, 8 ok: backups: none yet; wal_continuity: ...`
 * (counts worst first, then the items that are not OK, worst first, at most 3) and, when there is
 * performance data, ` | ` and the data.
 */
export function nagiosSummary(items: readonly CheckItem[], perf: readonly PerfDatum[] = [], status: CheckStatus = overallStatus(items)): string {
  const order: CheckStatus[] = ['CRITICAL', 'UNKNOWN', 'WARNING', 'OK'];
  const counts = order.map((s) => [s, items.filter((i) => i.status === s).length] as const).filter(([, n]) => n > 0).map(([s, n]) => `${n} ${s.toLowerCase()}`);
  // Worst first; within a status, the items that failed before those not tried because of them.
  const notTried = (i: CheckItem) => (i.detail.startsWith('not tried: ') ? 1 : 0);
  const bad = order.slice(0, 3).flatMap((s) => items.filter((i) => i.status === s).sort((a, b) => notTried(a) - notTried(b)));
  const listed = bad.slice(0, SUMMARY_LISTED).map((i) => `${i.name}: ${briefOf(i)}`);
  if (bad.length > SUMMARY_LISTED) listed.push(`and ${bad.length - SUMMARY_LISTED} more`);
  const text = pluginText(`PGARK ${status} - ${counts.join(', ') || 'nothing checked'}${listed.length ? `: ${listed.join('; ')}` : ''}`);
  return perf.length > 0 ? `${text} | ${formatPerfData(perf)}` : text;
}

/** The whole report: the summary line, then one line per item (long output). */
export function formatCheckReport(items: readonly CheckItem[], perf: readonly PerfDatum[] = [], status: CheckStatus = overallStatus(items)): string {
  const lines = [nagiosSummary(items, perf, status), ...items.map((i) => pluginText(`[${i.status}] ${i.name}: ${i.detail}`))];
  return lines.join('\n') + '\n';
}

/** 45s, 12m30s, 26h05m, 3d02h. */
export function formatAge(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  if (s < 72 * 3600) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  return `${Math.floor(s / 86400)}d${String(Math.floor((s % 86400) / 3600)).padStart(2, '0')}h`;
}

// ---------------------------------------------------------------------------
// Archiving
// ---------------------------------------------------------------------------

export function archiveModeItem(mode: string, inRecovery: boolean): CheckItem {
  const m = normArchiveMode(mode);
  if (m === 'off') return { name: 'archive_mode', status: 'CRITICAL', detail: 'archive_mode is off: nothing is archived (pgark setup sets it)' };
  if (m === 'always') return { name: 'archive_mode', status: 'OK', detail: 'always' };
  if (m === 'on') {
    return { name: 'archive_mode', status: 'OK', detail: inRecovery ? 'on (a standby archives only once promoted; the primary archives now)' : 'on' };
  }
  return { name: 'archive_mode', status: 'CRITICAL', detail: `unexpected archive_mode '${mode}'` };
}

export function archiveCommandItem(command: string, archiveLibrary: string | undefined, target: { repo: string; stanza: string }, hint?: ConfigHint): CheckItem {
  const name = 'archive_command';
  if (archiveLibrary) {
    return { name, status: 'CRITICAL', detail: `archive_library '${archiveLibrary}' is set: PostgreSQL uses it instead of archive_command (pgark setup --force clears it)` };
  }
  const c = classifyCommand(command, 'wal-push', target, hint);
  const status: CheckStatus = c.verdict === 'ours' ? 'OK' : c.verdict === 'unknown' ? 'WARNING' : 'CRITICAL';
  return { name, status, detail: c.reason };
}

/** One pg_stat_archiver sample (times in ms since the epoch). */
export interface ArchiverSample {
  archivedCount: number;
  lastArchivedWal: string | null;
  lastArchivedTime: number | null;
  failedCount: number;
  lastFailedWal: string | null;
  lastFailedTime: number | null;
}

const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z');

/** pg_stat_archiver before and (when the check waited for WAL) after: failing now, or fine. */
export function archiverItem(before: ArchiverSample, after: ArchiverSample = before): CheckItem {
  const name = 'archiver';
  const lastOk = after.lastArchivedWal && after.lastArchivedTime !== null ? `${after.lastArchivedWal} at ${iso(after.lastArchivedTime)}` : 'never';
  if (after.failedCount > before.failedCount) {
    return { name, status: 'CRITICAL', detail: `archive_command failed ${after.failedCount - before.failedCount} time(s) during the check, the last on ${after.lastFailedWal ?? '?'}` + (after.lastFailedTime !== null ? ` at ${iso(after.lastFailedTime)}` : '') + `; last success: ${lastOk} (see the server log)` };
  }
  if (after.lastFailedTime !== null && (after.lastArchivedTime === null || after.lastFailedTime > after.lastArchivedTime)) {
    return { name, status: 'CRITICAL', detail: `the last archive attempt failed: ${after.lastFailedWal ?? '?'} at ${iso(after.lastFailedTime)}; last success: ${lastOk} (see the server log)` };
  }
  const past = after.failedCount > 0 ? `; ${after.failedCount} failure(s) since the statistics were reset, none since ${after.lastFailedTime !== null ? iso(after.lastFailedTime) : '?'}` : '';
  return { name, status: 'OK', detail: after.archivedCount > 0 ? `${after.archivedCount} segment(s) archived, the last ${lastOk}${past}` : `nothing archived yet${past}` };
}

// ---------------------------------------------------------------------------
// Backups and WAL continuity
// ---------------------------------------------------------------------------

export interface NewestBackup {
  id: string;
  /** ISO time the backup stopped. */
  stopTime: string;
}

/** `noBackup`: the status of a stanza without any backup (--if-no-backup; WARNING unless told otherwise). */
export function backupAgeItem(newest: NewestBackup | undefined, nowMs: number, warnMs: number, critMs: number, noBackup: 'WARNING' | 'CRITICAL' = 'WARNING'): CheckItem {
  const name = 'backups';
  if (!newest) return { name, status: noBackup, detail: 'none yet (no backup in the stanza: take one with pgark backup)' };
  const age = nowMs - Date.parse(newest.stopTime);
  const text = `newest backup ${newest.id} finished ${formatAge(age)} ago`;
  if (age > critMs) return { name, status: 'CRITICAL', detail: `${text} (critical above ${formatAge(critMs)})` };
  if (age > warnMs) return { name, status: 'WARNING', detail: `${text} (warning above ${formatAge(warnMs)})` };
  return { name, status: 'OK', detail: text };
}

/** A run of missing segments, by segment number. */
export interface MissingRange {
  first: bigint;
  last: bigint;
}

/** Segment numbers in [from, to] that are not in `present`, as ranges (cost: the present ones, not the span). */
export function missingRanges(present: ReadonlySet<bigint>, from: bigint, to: bigint): MissingRange[] {
  const inside = [...present].filter((s) => s >= from && s <= to).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const out: MissingRange[] = [];
  let next = from;
  for (const s of inside) {
    if (s > next) out.push({ first: next, last: s - 1n });
    next = s + 1n;
  }
  if (next <= to) out.push({ first: next, last: to });
  return out;
}

export interface ContinuityInput {
  backupId: string;
  /** First segment the continuity runs from (the backup's start, or after its stored WAL). */
  from: bigint;
  /** The backup stored its own WAL (--store-wal), so `from` is past it. */
  walStored: boolean;
  /** Segment numbers archived on the backup's timeline. */
  present: ReadonlySet<bigint>;
  /** Segment number -> name on the backup's timeline. */
  name: (segno: bigint) => string;
}

const MAX_LISTED = 5;

export function walContinuityItem(x: ContinuityInput): CheckItem {
  const name = 'wal_continuity';
  let newest: bigint | undefined;
  for (const s of x.present) if (s >= x.from && (newest === undefined || s > newest)) newest = s;
  if (newest === undefined) {
    if (x.walStored) return { name, status: 'OK', detail: `backup ${x.backupId} holds its own WAL; nothing archived after it yet` };
    return { name, status: 'CRITICAL', detail: `none of the WAL of backup ${x.backupId} from ${x.name(x.from)} on is archived` };
  }
  const missing = missingRanges(x.present, x.from, newest);
  if (missing.length === 0) {
    const count = newest - x.from + 1n;
    return { name, status: 'OK', detail: `${x.name(x.from)}..${x.name(newest)} (${count} segment(s)) archived without a gap since backup ${x.backupId}` };
  }
  const total = missing.reduce((n, r) => n + (r.last - r.first + 1n), 0n);
  const listed = missing.slice(0, MAX_LISTED).map((r) => (r.first === r.last ? x.name(r.first) : `${x.name(r.first)}..${x.name(r.last)}`));
  const more = missing.length > MAX_LISTED ? ` and ${missing.length - MAX_LISTED} more range(s)` : '';
  return {
    name,
    status: 'CRITICAL',
    detail: `${total} segment(s) missing between ${x.name(x.from)} and ${x.name(newest)} since backup ${x.backupId}: ${listed.join(', ')}${more}; ` +
      'a restore from this backup cannot replay past the first one (take a new backup)',
  };
}

// ---------------------------------------------------------------------------
// WAL round trip
// ---------------------------------------------------------------------------

export function walRoundTripItem(segment: string, arrivedMs: number | undefined, timeoutSec: number): CheckItem {
  const name = 'wal_round_trip';
  if (arrivedMs === undefined) {
    return { name, status: 'CRITICAL', detail: `switched to a new segment, but ${segment} did not reach the repository within ${timeoutSec}s` };
  }
  const seconds = Math.round(arrivedMs / 100) / 10;
  return { name, status: 'OK', detail: `${segment} reached the repository ${seconds}s after pg_switch_wal()`, seconds };
}

// ---------------------------------------------------------------------------
// Receiver and slot
// ---------------------------------------------------------------------------

export interface SlotRow {
  slotType: string;
  active: boolean;
  restartLsn: string | null;
  walStatus: string | null;
  /** Bytes of WAL between restart_lsn and the server's current position. */
  retainedBytes: number | null;
}

export const SLOT_RETAINED_WARN_BYTES = 1024 ** 3;

/**
 * A replication slot pgark receive streams from. `required`: named by --slot (missing is
 * critical); otherwise named by a receiver's status (it may be on another server).
 */
export function slotItem(slot: string, row: SlotRow | undefined, required: boolean, warnBytes = SLOT_RETAINED_WARN_BYTES, receiver?: string): CheckItem {
  const name = `slot ${slot}`;
  if (!row) {
    return required
      ? { name, status: 'CRITICAL', detail: 'does not exist on this server (pgark receive --create-slot creates it)' }
      : { name, status: 'WARNING', detail: `named by receiver '${receiver ?? '?'}' but not on this server (does it stream from another one?)` };
  }
  const retained = row.retainedBytes !== null ? formatBytes(row.retainedBytes) : 'nothing yet';
  if (row.slotType !== 'physical') return { name, status: 'CRITICAL', detail: `is a ${row.slotType} slot: pgark receive needs a physical one` };
  if (row.walStatus === 'lost') return { name, status: 'CRITICAL', detail: 'the WAL it needs was removed (wal_status lost): the receiver cannot resume, recreate the slot and take a backup' };
  if (row.walStatus === 'unreserved') return { name, status: 'CRITICAL', detail: `retains ${retained}, beyond max_slot_wal_keep_size: its WAL goes at the next checkpoint (wal_status unreserved)` };
  if (!row.active) return { name, status: 'CRITICAL', detail: `not active: no receiver is connected; it retains ${retained} of WAL on the server` };
  if (row.retainedBytes !== null && row.retainedBytes > warnBytes) {
    return { name, status: 'WARNING', detail: `active, but retains ${retained} of WAL (warning above ${formatBytes(warnBytes)}): the receiver falls behind` };
  }
  return { name, status: 'OK', detail: `active, retains ${retained}` };
}

/** The part of a receiver's status object (src/receiver/receiver-status.ts) check reads. */
export interface ReceiverStatusView {
  name: string;
  state: string;
  updatedAt: string;
  lagBytes?: number;
  lagSeconds?: number;
  lastError?: string;
  host?: string;
}


export function receiverItem(s: ReceiverStatusView, nowMs: number): CheckItem {
  const name = `receiver ${s.name}`;
  const updated = Date.parse(s.updatedAt);
  if (!Number.isFinite(updated)) return { name, status: 'CRITICAL', detail: 'its status object has no valid updatedAt' };
  const age = nowMs - updated;
  const where = s.host ? ` on ${s.host}` : '';
  const err = s.lastError ? `: ${s.lastError}` : '';
  const live = s.state === 'streaming' || s.state === 'connecting' || s.state === 'retrying';
  if (isStaleReceiverStatus(s, nowMs)) {
    return { name, status: 'CRITICAL', detail: `not running${where}: its last status (${s.state}) is ${formatAge(age)} old${err}` };
  }
  if (s.state === 'streaming') {
    const lag = s.lagBytes !== undefined ? `, lag ${formatBytes(s.lagBytes)}${s.lagSeconds !== undefined ? ` / ${Math.round(s.lagSeconds)}s` : ''}` : '';
    return { name, status: 'OK', detail: `streaming${where}${lag}, status ${formatAge(age)} old` };
  }
  if (live) return { name, status: 'WARNING', detail: `${s.state}${where}${err}` };
  if (s.state === 'stopped') return { name, status: 'WARNING', detail: `stopped${where} ${formatAge(age)} ago (a clean stop); restart it or remove its status object if it is retired` };
  return { name, status: 'CRITICAL', detail: `${s.state}${where} ${formatAge(age)} ago${err}` };
}
