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
import { escapeForMessage } from '../wal/segment-name.js';
import { RESTORE_FLAGS, UNSAFE_CHARS, validateTarget, type RecoveryTarget } from './recovery-target.js';

// The target's parsing and validation live in recovery-target.ts; these stay importable from here.
export { RESTORE_FLAGS, validateTarget, type RecoveryTarget };

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
