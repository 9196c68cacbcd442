/**
 * The recovery configuration `pgark restore` writes into a restored data directory (pure).
 * PostgreSQL 13+: recovery settings are ordinary GUCs, appended to postgresql.auto.conf, and
 * recovery is requested by an empty `recovery.signal` (archive recovery, then promotion) or
 * `standby.signal` (a standby that keeps replaying).
 *
 * Values are written exactly as the user gave them (a target time is checked, never reformatted);
 * anything PostgreSQL would read differently from what the user meant is rejected instead.
 */
import { InvalidInputError } from '../common/errors.js';
import { assertNoPassword } from '../pg/conninfo.js';
import { escapeForMessage, parseLsn } from '../wal/segment-name.js';

/** Command-line flags the messages of this module name; the CLI must use the same spellings. */
export const RESTORE_FLAGS = {
  time: '--target-time',
  xid: '--target-xid',
  name: '--target-name',
  lsn: '--target-lsn',
  immediate: '--target-immediate',
  exclusive: '--target-exclusive',
  action: '--target-action',
  timeline: '--target-timeline',
  standby: '--standby',
  primaryConninfo: '--primary-conninfo',
  primarySlotName: '--primary-slot-name',
  repo: '--repo',
  stanza: '--stanza',
  config: '--config',
} as const;

export interface RecoveryTarget {
  /**
   * recovery_target_time: PostgreSQL timestamptz text or ISO-8601, kept as given. The zone must
   * be a numeric offset or a full zone name: PostgreSQL parses the value before it loads
   * timezone_abbreviations and refuses to start on 'Z', 'CEST', 'PST' and the like. Without a
   * zone the server's TimeZone applies. Dates like 01/02/2026 (DateStyle-dependent) are refused.
   */
  time?: string;
  /** recovery_target_xid: decimal, 32-bit xid or 64-bit full xid (epoch << 32 | xid). */
  xid?: string;
  /** recovery_target_name: a restore point created with pg_create_restore_point(). */
  name?: string;
  /** recovery_target_lsn: X/Y hex. */
  lsn?: string;
  /** recovery_target = 'immediate': stop as soon as the backup is consistent. */
  immediate?: boolean;
  /** recovery_target_inclusive = false: stop just before the target (time, xid, lsn only). */
  exclusive?: boolean;
  action?: 'promote' | 'pause' | 'shutdown';
  /** recovery_target_timeline: 'latest' | 'current' | a decimal timeline ID. */
  timeline?: string;
}

type TargetKind = 'time' | 'xid' | 'name' | 'lsn' | 'immediate';
const TARGET_KINDS: readonly TargetKind[] = ['time', 'xid', 'name', 'lsn', 'immediate'];
const ACTIONS: ReadonlySet<string> = new Set(['promote', 'pause', 'shutdown']);

/** NAMEDATALEN - 1 (PostgreSQL's MAXFNAMELEN check on recovery_target_name). */
const MAX_RESTORE_POINT_NAME_BYTES = 63;
const MAX_UINT64 = (1n << 64n) - 1n;
const MAX_UINT32 = 0xffffffffn;
/** FirstNormalTransactionId: 0, 1 and 2 are never assigned to a transaction. */
const FIRST_NORMAL_XID = 3n;

const UNSAFE_CHARS = /[\0\n\r]/;

function targetKinds(t: RecoveryTarget): TargetKind[] {
  return TARGET_KINDS.filter((k) => (k === 'immediate' ? t.immediate === true : t[k] !== undefined));
}

/**
 * Check a recovery target and return a copy holding only the fields that are set (an `immediate`
 * or `exclusive` of false is dropped). Throws InvalidInputError naming the flag.
 */
export function validateTarget(t: RecoveryTarget): RecoveryTarget {
  const kinds = targetKinds(t);
  if (kinds.length > 1) {
    const [a, b] = kinds as [TargetKind, TargetKind];
    throw new InvalidInputError(`${RESTORE_FLAGS[a]} and ${RESTORE_FLAGS[b]} cannot be used together: choose one recovery target`);
  }
  const kind = kinds[0];
  const out: RecoveryTarget = {};

  if (t.time !== undefined) {
    checkTargetTime(t.time);
    out.time = t.time;
  }
  if (t.xid !== undefined) {
    checkTargetXid(t.xid);
    out.xid = t.xid;
  }
  if (t.name !== undefined) {
    checkTargetName(t.name);
    out.name = t.name;
  }
  if (t.lsn !== undefined) {
    if (UNSAFE_CHARS.test(t.lsn)) throw new InvalidInputError(`invalid ${RESTORE_FLAGS.lsn} '${escapeForMessage(t.lsn)}': expected the form X/Y (hexadecimal)`);
    try {
      parseLsn(t.lsn);
    } catch {
      throw new InvalidInputError(`invalid ${RESTORE_FLAGS.lsn} '${escapeForMessage(t.lsn)}': expected the form X/Y (hexadecimal, as pg_current_wal_lsn() shows it)`);
    }
    out.lsn = t.lsn;
  }
  if (t.immediate === true) out.immediate = true;

  if (t.exclusive === true) {
    if (kind !== 'time' && kind !== 'xid' && kind !== 'lsn') {
      const with_ = kind === undefined ? 'without a recovery target' : `with ${RESTORE_FLAGS[kind]}`;
      throw new InvalidInputError(`${RESTORE_FLAGS.exclusive} cannot be used ${with_}: it applies to ${RESTORE_FLAGS.time}, ${RESTORE_FLAGS.xid} or ${RESTORE_FLAGS.lsn} only`);
    }
    out.exclusive = true;
  }

  if (t.action !== undefined) {
    if (!ACTIONS.has(t.action)) {
      throw new InvalidInputError(`invalid ${RESTORE_FLAGS.action} '${escapeForMessage(String(t.action))}': expected promote, pause or shutdown`);
    }
    if (kind === undefined) {
      throw new InvalidInputError(
        `${RESTORE_FLAGS.action} needs a recovery target (${TARGET_KINDS.map((k) => RESTORE_FLAGS[k]).join(', ')}): without one, recovery replays all WAL and has no target to act on`,
      );
    }
    out.action = t.action;
  }

  if (t.timeline !== undefined) {
    checkTargetTimeline(t.timeline);
    out.timeline = t.timeline;
  }
  return out;
}

function checkTargetXid(xid: string): void {
  const bad = (why: string) => new InvalidInputError(`invalid ${RESTORE_FLAGS.xid} '${escapeForMessage(xid)}': ${why}`);
  if (!/^[0-9]+$/.test(xid)) throw bad('expected a decimal transaction ID');
  // PostgreSQL parses the value with base 0: a leading 0 would make it octal.
  if (xid.length > 1 && xid.startsWith('0')) throw bad('leading zeros are not allowed (PostgreSQL would read the number as octal)');
  if (xid.length > 20 || BigInt(xid) > MAX_UINT64) throw bad('out of range for a 64-bit transaction ID');
  if ((BigInt(xid) & MAX_UINT32) < FIRST_NORMAL_XID) throw bad('not a normal transaction ID (its low 32 bits must be 3 or more)');
}

function checkTargetName(name: string): void {
  const bad = (why: string) => new InvalidInputError(`invalid ${RESTORE_FLAGS.name} '${escapeForMessage(name)}': ${why}`);
  if (name.length === 0) throw bad('the restore point name is empty');
  if (UNSAFE_CHARS.test(name)) throw bad('contains a NUL, carriage return or newline');
  const bytes = Buffer.byteLength(name, 'utf8');
  if (bytes > MAX_RESTORE_POINT_NAME_BYTES) throw bad(`${bytes} bytes long, at most ${MAX_RESTORE_POINT_NAME_BYTES} allowed`);
}

function checkTargetTimeline(tl: string): void {
  if (tl === 'latest' || tl === 'current') return;
  const bad = (why: string) => new InvalidInputError(`invalid ${RESTORE_FLAGS.timeline} '${escapeForMessage(tl)}': ${why}`);
  if (!/^[0-9]+$/.test(tl)) throw bad("expected 'latest', 'current' or a timeline ID (a positive decimal number)");
  if (tl.startsWith('0')) throw bad('expected a positive number without leading zeros (PostgreSQL would read a leading 0 as octal)');
  if (tl.length > 10 || BigInt(tl) > MAX_UINT32) throw bad('out of range for a timeline ID');
}

// ---------------------------------------------------------------------------
// Target time
// ---------------------------------------------------------------------------

/** Rejected by PostgreSQL's check_recovery_target_time (not a fixed point in time). */
const SPECIAL_TIMES = new Set(['now', 'today', 'tomorrow', 'yesterday', 'epoch', 'infinity', '-infinity', '+infinity', 'allballs']);

/** ISO-8601 / PostgreSQL numeric form: date, optional time, optional zone. */
const ISO_TIME_RE =
  /^(\d{4})-(\d{1,2})-(\d{1,2})(?:(?:T|[ \t]+)(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?)?(?:[ \t]*(?:(Z)|([+-])(\d{1,2})(?::(\d{2})(?::(\d{2}))?|(\d{2}))?|([A-Za-z][A-Za-z0-9_/+-]*)))?$/i;

const MONTHS = ['january', 'february', 'march', 'april', 'may', 'june', 'july', 'august', 'september', 'october', 'november', 'december'];
const WEEKDAYS = ['sunday', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday'];
/** A full name or its first three letters. */
const nameIndex = (names: string[], word: string) => names.findIndex((n) => word === n || word === n.slice(0, 3));

function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

/** Zone names without '/' that are tzdata zones (not abbreviations), compared lower-case. */
const PLAIN_ZONE_NAMES = new Set(
  ['UTC', 'UCT', 'GMT', 'GMT0', 'Zulu', 'Universal', 'Greenwich', 'EST', 'MST', 'HST', 'CET', 'EET', 'WET', 'MET', 'EST5EDT', 'CST6CDT', 'MST7MDT', 'PST8PDT'].map((z) =>
    z.toLowerCase(),
  ),
);

const ZONE_HINT = 'use a numeric UTC offset such as +00 or +05:30, or a full zone name such as Europe/Berlin';

/**
 * Why a zone name would fail, or undefined. PostgreSQL parses recovery_target_time at startup,
 * before it loads timezone_abbreviations: abbreviations (CEST, PST, Z) make it refuse to start.
 */
function zoneProblem(zone: string): string | undefined {
  if (zone.toLowerCase() === 'z') return `PostgreSQL does not accept 'Z' in a recovery target time: ${ZONE_HINT}`;
  if (!zone.includes('/')) {
    if (PLAIN_ZONE_NAMES.has(zone.toLowerCase())) return undefined;
    return `time zone abbreviations such as '${escapeForMessage(zone)}' are not accepted by PostgreSQL in a recovery target time: ${ZONE_HINT}`;
  }
  try {
    new Intl.DateTimeFormat('en', { timeZone: zone });
    return undefined;
  } catch {
    return `unknown time zone '${escapeForMessage(zone)}': ${ZONE_HINT}`;
  }
}

/** Why `text` is not an unambiguous point in time, or undefined when it is. */
function timeProblem(text: string): string | undefined {
  if (UNSAFE_CHARS.test(text)) return 'contains a NUL, carriage return or newline';
  const s = text.trim();
  if (s === '') return 'the time is empty';
  if (SPECIAL_TIMES.has(s.toLowerCase())) return 'not a fixed point in time';
  // DD/MM/YYYY or MM/DD/YYYY: PostgreSQL reads it according to DateStyle.
  if (/\d{1,4}[/.]\d{1,2}[/.]\d{1,4}/.test(s)) return 'ambiguous date order (it depends on DateStyle): write the date as YYYY-MM-DD';

  const m = ISO_TIME_RE.exec(s);
  if (m) {
    const [, y, mo, d, hh, mi, ss, , z, sign, oh, om, os, ocompact, zoneName] = m;
    const year = Number(y);
    const month = Number(mo);
    const day = Number(d);
    if (year < 1) return 'year out of range';
    if (month < 1 || month > 12) return 'month out of range';
    if (day < 1 || day > daysInMonth(year, month)) return 'day out of range for the month';
    if (hh !== undefined) {
      const h = Number(hh);
      const min = Number(mi);
      const sec = ss === undefined ? 0 : Number(ss);
      if (h > 24 || min > 59 || sec > 60 || (h === 24 && (min > 0 || sec > 0))) return 'time of day out of range';
    }
    if (z === undefined && sign !== undefined) {
      const offH = Number(oh);
      const offM = Number(om ?? ocompact ?? 0);
      const offS = Number(os ?? 0);
      if (offH > 15 || offM > 59 || offS > 59) return 'time zone offset out of range';
    }
    if (z !== undefined) return zoneProblem(z);
    if (zoneName !== undefined) return zoneProblem(zoneName);
    return undefined;
  }
  return textualTimeProblem(s);
}

/**
 * The fallback: a date with a month name (`Mon Nov 23 16:20:00 2026 UTC`,
 * `23 Nov 2026 16:20 +0100`, `November 23, 2026 4:20 PM EST`) that Date.parse reads too.
 * Every word must be a date part: Date.parse alone accepts text like `x 2026`.
 */
function textualTimeProblem(s: string): string | undefined {
  const unparsable = 'expected a timestamp such as 2026-11-23 16:20:00+00 (ISO-8601 or PostgreSQL timestamptz text)';
  let month: number | undefined;
  let day: number | undefined;
  let year: number | undefined;
  let time: string | undefined;
  let ampm = false;
  let zone: string | undefined;
  let weekday = false;
  for (const tok of s.split(/[\s,]+/).filter((x) => x !== '')) {
    const lower = tok.toLowerCase();
    const mIdx = nameIndex(MONTHS, lower);
    if (mIdx >= 0 && month === undefined) month = mIdx + 1;
    else if (!weekday && nameIndex(WEEKDAYS, lower) >= 0) weekday = true;
    else if (/^\d{4}$/.test(tok) && year === undefined) year = Number(tok);
    else if (/^\d{1,2}$/.test(tok) && day === undefined) day = Number(tok);
    else if (/^\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?$/.test(tok) && time === undefined) time = tok;
    else if ((lower === 'am' || lower === 'pm') && time !== undefined && !ampm) ampm = true;
    else if (zone === undefined && time !== undefined && /^(?:[a-z][a-z0-9_/+-]*|[+-]\d{2}:?\d{2})$/.test(lower)) zone = tok;
    else return unparsable;
  }
  if (month === undefined || day === undefined || year === undefined) return unparsable;
  if (year < 1) return 'year out of range';
  if (day < 1 || day > daysInMonth(year, month)) return 'day out of range for the month';
  if (time !== undefined) {
    const [h = 0, min = 0, sec = 0] = time.split(':').map(Number);
    if (ampm ? h < 1 || h > 12 : h > 23) return 'time of day out of range';
    if (min > 59 || sec > 60) return 'time of day out of range';
  }
  if (zone !== undefined && !/^[+-]/.test(zone)) {
    const problem = zoneProblem(zone);
    if (problem !== undefined) return problem;
  }
  // Date.parse knows few zone names; the zone was checked above.
  if (!Number.isFinite(Date.parse(zone === undefined || /^[+-]/.test(zone) ? s : s.replace(zone, '')))) return unparsable;
  return undefined;
}

function checkTargetTime(time: string): void {
  const problem = timeProblem(time);
  if (problem !== undefined) throw new InvalidInputError(`invalid ${RESTORE_FLAGS.time} '${escapeForMessage(time)}': ${problem}`);
}

// ---------------------------------------------------------------------------
// Configuration file text
// ---------------------------------------------------------------------------

/**
 * A string literal for a PostgreSQL configuration file, as ALTER SYSTEM writes it: in single
 * quotes, with `'` and `\` doubled (the file parser reads `\` as an escape character).
 * A NUL, carriage return or newline cannot be represented and is rejected.
 */
export function quoteGucValue(v: string): string {
  if (UNSAFE_CHARS.test(v)) {
    throw new InvalidInputError(`invalid setting value '${escapeForMessage(v)}': a configuration file value cannot contain a NUL, carriage return or newline`);
  }
  return `'${v.replace(/['\\]/g, (c) => c + c)}'`;
}

const SLOT_NAME_RE = /^[a-z0-9_]{1,63}$/;

/**
 * The settings to write, in order: restore_command; the target; recovery_target_inclusive;
 * recovery_target_action; recovery_target_timeline; for a standby primary_conninfo and
 * primary_slot_name; unless keepArchive, archive_mode = off and archive_command = '' so a
 * restored copy never archives into the source's archive. Unset options are left to
 * PostgreSQL's defaults (action pause, timeline latest).
 */
export function recoverySettings(o: {
  restoreCommand: string;
  target: RecoveryTarget;
  standby: boolean;
  primaryConninfo?: string;
  primarySlotName?: string;
  keepArchive: boolean;
}): Array<[string, string]> {
  const t = validateTarget(o.target);
  if (o.restoreCommand.trim() === '') throw new InvalidInputError('restore_command is empty');
  if (!o.standby) {
    if (o.primaryConninfo !== undefined) throw new InvalidInputError(`${RESTORE_FLAGS.primaryConninfo} needs ${RESTORE_FLAGS.standby}: only a standby connects to a primary`);
    if (o.primarySlotName !== undefined) throw new InvalidInputError(`${RESTORE_FLAGS.primarySlotName} needs ${RESTORE_FLAGS.standby}: only a standby connects to a primary`);
  }
  if (o.primarySlotName !== undefined) {
    if (!SLOT_NAME_RE.test(o.primarySlotName)) {
      throw new InvalidInputError(
        `invalid ${RESTORE_FLAGS.primarySlotName} '${escapeForMessage(o.primarySlotName)}': a replication slot name is 1 to 63 characters from a-z, 0-9 and _`,
      );
    }
    if (o.primaryConninfo === undefined) {
      throw new InvalidInputError(`${RESTORE_FLAGS.primarySlotName} needs ${RESTORE_FLAGS.primaryConninfo}: the slot is used on the connection to the primary`);
    }
  }
  if (o.primaryConninfo !== undefined && (o.primaryConninfo.trim() === '' || UNSAFE_CHARS.test(o.primaryConninfo))) {
    throw new InvalidInputError(`invalid ${RESTORE_FLAGS.primaryConninfo}: it is empty or contains a NUL, carriage return or newline`);
  }
  // It would be written into postgresql.auto.conf, which the next backup copies.
  assertNoPassword(o.primaryConninfo, RESTORE_FLAGS.primaryConninfo);

  const out: Array<[string, string]> = [['restore_command', o.restoreCommand]];
  if (t.immediate) out.push(['recovery_target', 'immediate']);
  if (t.time !== undefined) out.push(['recovery_target_time', t.time]);
  if (t.xid !== undefined) out.push(['recovery_target_xid', t.xid]);
  if (t.name !== undefined) out.push(['recovery_target_name', t.name]);
  if (t.lsn !== undefined) out.push(['recovery_target_lsn', t.lsn]);
  if (t.exclusive) out.push(['recovery_target_inclusive', 'false']);
  if (t.action !== undefined) out.push(['recovery_target_action', t.action]);
  if (t.timeline !== undefined) out.push(['recovery_target_timeline', t.timeline]);
  if (o.standby) {
    if (o.primaryConninfo !== undefined) out.push(['primary_conninfo', o.primaryConninfo]);
    if (o.primarySlotName !== undefined) out.push(['primary_slot_name', o.primarySlotName]);
  }
  if (!o.keepArchive) {
    out.push(['archive_mode', 'off']);
    out.push(['archive_command', '']);
  }
  return out;
}

/** guc-file.l: ID = {LETTER}{LETTER_OR_DIGIT}*, QUALIFIED_ID = {ID}.{ID}; bytes >= 0x80 are letters. */
const GUC_NAME_AT_LINE_START = /^[ \t\r\f]*([A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*(?:\.[A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?)/;
const GUC_NAME = /^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?$/;

const RECOVERY_GROUP = ['restore_command', 'recovery_end_command'];
const PRIMARY_GROUP = ['primary_conninfo', 'primary_slot_name'];
/** Everything that writes to (or deletes from) the source's archive. */
const ARCHIVE_GROUP = ['archive_mode', 'archive_command', 'archive_library', 'archive_cleanup_command'];

const isRecoveryTargetName = (n: string) => n === 'recovery_target' || n.startsWith('recovery_target_');

/**
 * The names whose existing assignments are commented out: every name we set, and with it
 * its whole group — restore_command or any recovery_target*: all recovery_target*,
 * restore_command and recovery_end_command (a stale target from the source would otherwise
 * stop, or conflict with, this recovery); primary_*: both; archive_mode/archive_command:
 * archive_mode, archive_command, archive_library and archive_cleanup_command.
 */
function supersededBy(settings: Array<[string, string]>): (name: string) => boolean {
  const names = new Set<string>();
  let targets = false;
  for (const [rawName] of settings) {
    const n = rawName.toLowerCase();
    names.add(n);
    if (n === 'restore_command' || isRecoveryTargetName(n)) {
      targets = true;
      for (const g of RECOVERY_GROUP) names.add(g);
    }
    if (PRIMARY_GROUP.includes(n)) for (const g of PRIMARY_GROUP) names.add(g);
    if (n === 'archive_mode' || n === 'archive_command') for (const g of ARCHIVE_GROUP) names.add(g);
  }
  return (name) => names.has(name) || (targets && isRecoveryTargetName(name));
}

/**
 * The new postgresql.auto.conf text: each line of `existing` that assigns a superseded setting
 * (see above; names compared case-insensitively, `name = value`, `name=value`, `name value`)
 * becomes `# pgark restore <stamp>: <line>`; every other byte is kept; then a block headed
 * `# Recovery settings written by pgark restore <stamp>` assigns each setting once.
 */
export function mergeAutoConf(existing: string, settings: Array<[string, string]>, stamp: string): string {
  if (UNSAFE_CHARS.test(stamp)) throw new InvalidInputError(`invalid stamp '${escapeForMessage(stamp)}': contains a NUL, carriage return or newline`);
  const seen = new Set<string>();
  for (const [name] of settings) {
    if (!GUC_NAME.test(name)) throw new InvalidInputError(`invalid setting name '${escapeForMessage(name)}'`);
    const lower = name.toLowerCase();
    if (seen.has(lower)) throw new InvalidInputError(`setting '${name}' given twice`);
    seen.add(lower);
  }
  const superseded = supersededBy(settings);

  const lines = existing.split('\n');
  // A trailing newline leaves an empty last element: it is the end of the file, not a line.
  const last = lines.pop() ?? '';
  const kept = lines.map((line) => commentIfSuperseded(line, superseded, stamp));
  let out = kept.map((l) => `${l}\n`).join('');
  if (last !== '') out += `${commentIfSuperseded(last, superseded, stamp)}\n`;

  out += `# Recovery settings written by pgark restore ${stamp}\n`;
  for (const [name, value] of settings) out += `${name} = ${quoteGucValue(value)}\n`;
  return out;
}

function commentIfSuperseded(line: string, superseded: (name: string) => boolean, stamp: string): string {
  const m = GUC_NAME_AT_LINE_START.exec(line);
  if (!m || m[1] === undefined) return line;
  const name = m[1].toLowerCase();
  if (name === 'include' || name === 'include_if_exists' || name === 'include_dir') return line;
  return superseded(name) ? `# pgark restore ${stamp}: ${line}` : line;
}

export function signalFile(standby: boolean): 'standby.signal' | 'recovery.signal' {
  return standby ? 'standby.signal' : 'recovery.signal';
}
