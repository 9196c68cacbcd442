/**
 * The plan of `pgark setup` (pure): from the server's settings (pg_settings, plus what the
 * configuration files say now, from pg_file_settings) and what pgark needs, decide per setting
 * whether nothing is to be done, a value must be written with ALTER SYSTEM, the files already
 * hold it and only a reload/restart is missing, or ALTER SYSTEM cannot help (set on the
 * server's command line).
 *
 * Rules: archive_mode on ('always' is kept); archive_command pgark wal-push for this repository
 * and stanza (an equivalent pgark command, e.g. the shell client, is kept); archive_library
 * empty (PostgreSQL 15+: it would take precedence); wal_level at least replica ('logical' is
 * kept); max_wal_senders at least 10 (never lowered); archive_timeout when asked;
 * restore_command pgark wal-fetch for standbys. A value pgark would replace that it did not
 * write (a non-empty command that is not pgark for this repository and stanza) is named with
 * where it is set, and needs --force.
 */
import { classifyCommand, redactCommand, type CommandTarget } from './archive-command.js';

/** One row of pg_settings, with the value the configuration files give now. */
export interface ServerSetting {
  name: string;
  /** The running value, in the setting's base unit (pg_settings.setting). */
  setting: string;
  unit: string | null;
  /** pg_settings.context: 'postmaster' needs a restart, 'sighup' a reload. */
  context: string;
  pendingRestart: boolean;
  /** pg_settings.source: 'default', 'configuration file', 'command line', ... */
  source: string;
  sourcefile: string | null;
  sourceline: number | null;
  /** The last assignment in the configuration files (pg_file_settings), if any. */
  file?: { value: string; sourcefile: string; sourceline: number } | undefined;
}

export interface SetupWanted extends CommandTarget {
  archiveCommand: string;
  /** Set restore_command (the server is a standby, or --standby). */
  restoreCommand?: string | undefined;
  /** Set archive_timeout to this many seconds (setup --server-archive-timeout). */
  archiveTimeoutSec?: number | undefined;
}

export type SetupAction = 'none' | 'set' | 'pending' | 'blocked';

export interface PlannedSetting {
  name: string;
  /** The running value as PostgreSQL shows it (with its unit). */
  running: string;
  /** The value the configuration files give (the running one when they set none). */
  configured: string;
  /** The value pgark writes (action 'set') or keeps (shown with credentials masked). */
  target: string;
  /** none: fine as it is; set: ALTER SYSTEM SET target; pending: the files hold it, a reload/restart is missing; blocked: ALTER SYSTEM cannot override it. */
  action: SetupAction;
  apply: 'reload' | 'restart';
  note?: string;
  /** A value pgark replaces that it did not write: what, where, and why it is not pgark's. */
  replacing?: { value: string; where: string; reason: string };
}

export interface SetupPlan {
  items: PlannedSetting[];
  /** Items to write with ALTER SYSTEM. */
  writes: PlannedSetting[];
  /** Writes that replace a value pgark did not write (need --force). */
  foreign: PlannedSetting[];
  blocked: PlannedSetting[];
  /** After the writes: a restart / reload is needed for everything to take effect. */
  restartNeeded: boolean;
  reloadNeeded: boolean;
}

const BOOL_ON = new Set(['on', 'true', 'yes', '1', 't', 'y']);
const BOOL_OFF = new Set(['off', 'false', 'no', '0', 'f', 'n']);

/** archive_mode as 'on', 'off' or 'always' (PostgreSQL accepts boolean spellings for it). */
export function normArchiveMode(v: string): string {
  const x = v.trim().toLowerCase();
  if (BOOL_ON.has(x)) return 'on';
  if (BOOL_OFF.has(x)) return 'off';
  return x;
}

/** wal_level with the old aliases (archive, hot_standby = replica). */
export function normWalLevel(v: string): string {
  const x = v.trim().toLowerCase();
  return x === 'archive' || x === 'hot_standby' ? 'replica' : x;
}

const TIME_UNITS_MS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, min: 60_000, h: 3_600_000, d: 86_400_000 };

/** A time setting (`60`, `60s`, `1min`, `1 h`) in seconds; a bare number is in `baseUnit`. undefined when unreadable. */
export function timeSettingSeconds(v: string, baseUnit: string | null): number | undefined {
  const m = /^\s*(-?\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(v);
  if (!m) return undefined;
  const unit = m[2] ? m[2] : (baseUnit ?? 's');
  const ms = TIME_UNITS_MS[unit];
  if (ms === undefined) return undefined;
  return (Number(m[1]) * ms) / 1000;
}

/** An integer setting; undefined when unreadable. */
function intSetting(v: string): number | undefined {
  return /^\s*\d+\s*$/.test(v) ? Number(v) : undefined;
}

/** The running value with its unit when that is a plain unit (60s, 5min); block-sized units are left out. */
function display(row: ServerSetting): string {
  return row.unit && /^-?\d+$/.test(row.setting) && /^[a-z]+$/i.test(row.unit) ? `${row.setting}${row.unit}` : row.setting;
}

/** Where the configured value comes from, for messages: `file:line`, or the source. */
export function settingOrigin(row: ServerSetting): string {
  if (row.file) return `${row.file.sourcefile}:${row.file.sourceline}`;
  if (row.sourcefile) return `${row.sourcefile}:${row.sourceline ?? '?'}`;
  return row.source === 'default' ? 'the built-in default' : `the ${row.source}`;
}

interface Rule {
  name: string;
  target: string;
  /** The value meets what pgark needs; a note says why a different value is kept. */
  check: (v: string, row: ServerSetting) => { ok: boolean; note?: string };
  /** A non-empty value that fails `check` is someone else's (commands, archive_library). */
  foreign?: (v: string) => string | undefined;
}

function rules(w: SetupWanted): Rule[] {
  const target: CommandTarget = { repo: w.repo, stanza: w.stanza };
  const command = (name: 'archive_command' | 'restore_command', wanted: string, sub: 'wal-push' | 'wal-fetch'): Rule => ({
    name,
    target: wanted,
    check: (v) => {
      if (v === wanted) return { ok: true };
      const c = classifyCommand(v, sub, target);
      return c.verdict === 'ours' ? { ok: true, note: `kept an equivalent pgark command: ${c.reason}` } : { ok: false };
    },
    foreign: (v) => (v.trim() === '' ? undefined : classifyCommand(v, sub, target).reason),
  });
  const out: Rule[] = [
    {
      name: 'archive_mode',
      target: 'on',
      check: (v) => {
        const m = normArchiveMode(v);
        return m === 'always' ? { ok: true, note: "kept 'always': it archives on a standby too" } : { ok: m === 'on' };
      },
    },
    command('archive_command', w.archiveCommand, 'wal-push'),
    {
      name: 'archive_library',
      target: '',
      check: (v) => ({ ok: v === '' }),
      foreign: (v) => (v === '' ? undefined : `archive_library '${v}' is set: PostgreSQL would use it instead of archive_command`),
    },
    {
      name: 'wal_level',
      target: 'replica',
      check: (v) => {
        const l = normWalLevel(v);
        return l === 'logical' ? { ok: true, note: "kept 'logical': it includes replica" } : { ok: l === 'replica' };
      },
    },
    {
      name: 'max_wal_senders',
      target: '10',
      check: (v) => {
        const n = intSetting(v);
        if (n === undefined) return { ok: false };
        return n > 10 ? { ok: true, note: `kept ${n}: at least 10, and pgark never lowers it` } : { ok: n === 10 };
      },
    },
  ];
  if (w.archiveTimeoutSec !== undefined) {
    const want = w.archiveTimeoutSec;
    out.push({ name: 'archive_timeout', target: String(want), check: (v, row) => ({ ok: timeSettingSeconds(v, row.unit) === want }) });
  }
  if (w.restoreCommand !== undefined) out.push(command('restore_command', w.restoreCommand, 'wal-fetch'));
  return out;
}

/**
 * Plan the settings. `rows` must hold a row for each setting the server has (archive_library
 * is absent before PostgreSQL 15 and is then skipped; any other missing row is an error the
 * caller reports).
 */
export function planSetup(rows: readonly ServerSetting[], wanted: SetupWanted): SetupPlan {
  const byName = new Map(rows.map((r) => [r.name, r]));
  const items: PlannedSetting[] = [];
  for (const rule of rules(wanted)) {
    const row = byName.get(rule.name);
    if (!row) {
      if (rule.name === 'archive_library') continue;
      throw new Error(`setting '${rule.name}' is missing from pg_settings`);
    }
    const configured = row.file?.value ?? row.setting;
    const apply = row.context === 'postmaster' ? 'restart' : 'reload';
    // Values pgark did not write are shown with inline credentials masked.
    const shown = (v: string) => (rule.foreign ? redactCommand(v) : v);
    const base = { name: rule.name, running: shown(display(row)), configured: shown(configured), apply } as const;
    const conf = rule.check(configured, row);
    const run = rule.check(row.setting, row);
    if (conf.ok) {
      const note = conf.note;
      if (run.ok) items.push({ ...base, target: base.configured, action: 'none', ...(note ? { note } : {}) });
      else if (row.source === 'command line') {
        items.push({ ...base, target: base.configured, action: 'blocked', note: "set on the server's command line (-c or postmaster.opts), which overrides every configuration file: ALTER SYSTEM cannot change it" });
      } else {
        items.push({ ...base, target: base.configured, action: 'pending', note: `the configuration files already hold it; ${apply} to apply` + (note ? ` (${note})` : '') });
      }
      continue;
    }
    if (row.source === 'command line') {
      items.push({ ...base, target: rule.target, action: 'blocked', note: "set on the server's command line (-c or postmaster.opts), which overrides every configuration file: ALTER SYSTEM cannot change it" });
      continue;
    }
    const why = rule.foreign?.(configured);
    items.push({ ...base, target: rule.target, action: 'set', ...(why ? { replacing: { value: base.configured, where: settingOrigin(row), reason: why } } : {}) });
  }
  const writes = items.filter((i) => i.action === 'set');
  const effective = items.filter((i) => i.action === 'set' || i.action === 'pending');
  return {
    items,
    writes,
    foreign: writes.filter((i) => i.replacing),
    blocked: items.filter((i) => i.action === 'blocked'),
    restartNeeded: effective.some((i) => i.apply === 'restart'),
    reloadNeeded: effective.some((i) => i.apply === 'reload'),
  };
}

/** `replacing archive_command 'cp %p /mnt/%f' set in /etc/postgresql/15/main/postgresql.conf:250 (...)`. */
export function describeReplacement(i: PlannedSetting): string {
  if (!i.replacing) return '';
  return `replacing ${i.name} '${i.replacing.value}' set in ${i.replacing.where} (${i.replacing.reason})`;
}

/**
 * A value as an SQL string literal for ALTER SYSTEM (which takes no bind parameters): E'...'
 * with backslashes and quotes escaped, independent of standard_conforming_strings. PostgreSQL
 * refuses newlines in ALTER SYSTEM values, and a NUL cannot be sent: both are rejected here.
 */
export function sqlLiteral(v: string): string {
  if (/[\0\n\r]/.test(v)) throw new RangeError('a setting value cannot contain a NUL, carriage return or newline');
  return `E'${v.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

/** The ALTER SYSTEM statement for one planned write (names come from the fixed rule list). */
export function alterSystemSql(i: PlannedSetting): string {
  if (!/^[a-z_]+$/.test(i.name)) throw new RangeError(`invalid setting name '${i.name}'`);
  return `ALTER SYSTEM SET ${i.name} = ${sqlLiteral(i.target)}`;
}
