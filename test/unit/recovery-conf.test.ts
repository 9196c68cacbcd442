import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, InvalidInputError } from '../../src/common/errors.js';
import { buildRestoreCommand } from '../../src/common/self-command.js';
import {
  mergeAutoConf,
  quoteGucValue,
  recoverySettings,
  signalFile,
  validateTarget,
  type RecoveryTarget,
} from '../../src/restore/recovery-conf.js';

/**
 * Reads a configuration file the way PostgreSQL's guc-file.l does (one assignment per line,
 * `name [=] value [# comment]`, quoted strings with '' and backslash escapes), returning every
 * assignment in order. Used to check what PostgreSQL would actually see.
 */
function pgConfAssignments(text: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/^[ \t\r\f]+/, '');
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?)[ \t\r\f]*=?[ \t\r\f]*(.*)$/s.exec(line);
    if (!m) throw new Error(`syntax error: ${raw}`);
    const [, name, rest] = m as unknown as [string, string, string];
    let value: string;
    let tail: string;
    if (rest.startsWith("'")) {
      let i = 1;
      value = '';
      for (;;) {
        const c = rest[i];
        if (c === undefined) throw new Error(`unterminated string: ${raw}`);
        if (c === "'" && rest[i + 1] === "'") (value += "'"), (i += 2);
        else if (c === "'") break;
        else if (c === '\\') {
          const n = rest[i + 1] ?? '';
          value += ({ b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' } as Record<string, string>)[n] ?? n;
          i += 2;
        } else (value += c), (i += 1);
      }
      tail = rest.slice(i + 1);
    } else {
      const v = /^[^\s#']*/.exec(rest)![0];
      value = v;
      tail = rest.slice(v.length);
    }
    if (!/^[ \t\r\f]*(#.*)?$/s.test(tail)) throw new Error(`syntax error after value: ${raw}`);
    out.push([name.toLowerCase(), value]);
  }
  return out;
}

/** PostgreSQL's restore_command placeholder expansion. */
function expandPercent(cmd: string, f: string, p: string): string {
  return cmd.replace(/%(.)/g, (all, c: string) => (c === 'f' ? f : c === 'p' ? p : c === '%' ? '%' : all));
}

const tmpDirs: string[] = [];
afterAll(() => {
  for (const d of tmpDirs) rmSync(d, { recursive: true, force: true });
});

describe('validateTarget', () => {
  it.each<[string, RecoveryTarget, RecoveryTarget]>([
    ['no target', {}, {}],
    ['pg timestamptz', { time: '2026-11-23 16:20:00+00' }, { time: '2026-11-23 16:20:00+00' }],
    ['microseconds', { time: '2026-11-23 16:20:00.123456+00' }, { time: '2026-11-23 16:20:00.123456+00' }],
    ['ISO-8601 +00', { time: '2026-11-23T16:20:00+00' }, { time: '2026-11-23T16:20:00+00' }],
    ['ISO-8601 no seconds', { time: '2026-11-23T16:20' }, { time: '2026-11-23T16:20' }],
    ['ISO-8601 offset', { time: '2026-11-23T16:20:00.5+05:30' }, { time: '2026-11-23T16:20:00.5+05:30' }],
    ['compact offset', { time: '2026-11-23 16:20:00-0800' }, { time: '2026-11-23 16:20:00-0800' }],
    ['zone name', { time: '2026-11-23 16:20:00 Europe/Berlin' }, { time: '2026-11-23 16:20:00 Europe/Berlin' }],
    ['offset with seconds', { time: '2026-11-23 16:20:00+05:30:15' }, { time: '2026-11-23 16:20:00+05:30:15' }],
    ['zone name lower case', { time: '2026-11-23 16:20 europe/berlin' }, { time: '2026-11-23 16:20 europe/berlin' }],
    ['Etc zone', { time: '2026-11-23 16:20 Etc/GMT+5' }, { time: '2026-11-23 16:20 Etc/GMT+5' }],
    ['zone UTC', { time: '2026-11-23 16:20:00 UTC' }, { time: '2026-11-23 16:20:00 UTC' }],
    ['zone Zulu', { time: '2026-11-23 16:20 Zulu' }, { time: '2026-11-23 16:20 Zulu' }],
    ['hour 24', { time: '2026-11-23 24:00:00+00' }, { time: '2026-11-23 24:00:00+00' }],
    ['no zone (server TimeZone)', { time: '2026-11-23 16:20:00' }, { time: '2026-11-23 16:20:00' }],
    ['date only', { time: '2026-11-23' }, { time: '2026-11-23' }],
    ['leap day', { time: '2028-02-29 00:00:00+00' }, { time: '2028-02-29 00:00:00+00' }],
    ['postgres style', { time: 'Mon Nov 23 16:20:00 2026 UTC' }, { time: 'Mon Nov 23 16:20:00 2026 UTC' }],
    ['rfc 2822', { time: 'Mon, 23 Nov 2026 16:20:00 +0100' }, { time: 'Mon, 23 Nov 2026 16:20:00 +0100' }],
    ['month name, 12-hour clock', { time: 'November 23, 2026 4:20 PM EST' }, { time: 'November 23, 2026 4:20 PM EST' }],
    ['month name, zone name', { time: '23 Nov 2026 16:20 America/New_York' }, { time: '23 Nov 2026 16:20 America/New_York' }],
    ['time kept with spaces', { time: ' 2026-11-23 16:20:00+00 ' }, { time: ' 2026-11-23 16:20:00+00 ' }],
    ['xid 32-bit', { xid: '123456' }, { xid: '123456' }],
    ['xid 64-bit full', { xid: '18446744073709551615' }, { xid: '18446744073709551615' }],
    ['name', { name: 'before upgrade' }, { name: 'before upgrade' }],
    ['name 63 bytes', { name: 'x'.repeat(63) }, { name: 'x'.repeat(63) }],
    ['lsn', { lsn: '0/1A2B3C4D' }, { lsn: '0/1A2B3C4D' }],
    ['lsn lower case kept', { lsn: 'a/ff' }, { lsn: 'a/ff' }],
    ['immediate', { immediate: true }, { immediate: true }],
    ['false flags dropped', { immediate: false, exclusive: false, xid: '1000' }, { xid: '1000' }],
    ['exclusive time', { time: '2026-11-23 16:20:00+00', exclusive: true }, { time: '2026-11-23 16:20:00+00', exclusive: true }],
    ['exclusive lsn', { lsn: '1/0', exclusive: true, action: 'promote' }, { lsn: '1/0', exclusive: true, action: 'promote' }],
    ['action', { name: 'rp', action: 'shutdown' }, { name: 'rp', action: 'shutdown' }],
    ['action with immediate', { immediate: true, action: 'pause' }, { immediate: true, action: 'pause' }],
    ['timeline latest', { timeline: 'latest' }, { timeline: 'latest' }],
    ['timeline current', { timeline: 'current' }, { timeline: 'current' }],
    ['timeline number', { xid: '9999', timeline: '3' }, { xid: '9999', timeline: '3' }],
  ])('accepts %s', (_, t, expected) => {
    expect(validateTarget(t)).toEqual(expected);
  });

  it.each<[string, RecoveryTarget, string | RegExp]>([
    ['time + xid', { time: '2026-11-23 16:20:00+00', xid: '1000' }, '--target-time and --target-xid cannot be used together: choose one recovery target'],
    ['name + lsn', { name: 'a', lsn: '0/1' }, '--target-name and --target-lsn cannot be used together: choose one recovery target'],
    ['xid + immediate', { xid: '1000', immediate: true }, '--target-xid and --target-immediate cannot be used together: choose one recovery target'],
    ['three targets', { time: '2026-11-23', name: 'a', immediate: true }, '--target-time and --target-name cannot be used together: choose one recovery target'],
    ['garbage time', { time: 'yesterday-ish' }, /^invalid --target-time 'yesterday-ish': expected a timestamp/],
    ['Date.parse would accept', { time: 'x 2026' }, /^invalid --target-time 'x 2026': expected a timestamp/],
    ['bare number', { time: '1' }, /^invalid --target-time '1': expected a timestamp/],
    ['now', { time: 'now' }, "invalid --target-time 'now': not a fixed point in time"],
    ['epoch', { time: 'Epoch' }, "invalid --target-time 'Epoch': not a fixed point in time"],
    ['empty time', { time: '' }, "invalid --target-time '': the time is empty"],
    ['bad month', { time: '2026-13-01 00:00:00+00' }, "invalid --target-time '2026-13-01 00:00:00+00': month out of range"],
    ['Nov 31', { time: '2026-11-31 00:00:00+00' }, "invalid --target-time '2026-11-31 00:00:00+00': day out of range for the month"],
    ['Nov 31 textual', { time: 'Nov 31 2026 10:00 UTC' }, "invalid --target-time 'Nov 31 2026 10:00 UTC': day out of range for the month"],
    ['Feb 29 non-leap', { time: '2026-02-29' }, "invalid --target-time '2026-02-29': day out of range for the month"],
    ['hour 25', { time: '2026-11-23 25:00:00+00' }, "invalid --target-time '2026-11-23 25:00:00+00': time of day out of range"],
    ['offset 16h', { time: '2026-11-23 10:00:00+16' }, "invalid --target-time '2026-11-23 10:00:00+16': time zone offset out of range"],
    ['unknown zone', { time: '2026-11-23 10:00:00 Mars/Olympus' }, "invalid --target-time '2026-11-23 10:00:00 Mars/Olympus': unknown time zone 'Mars/Olympus': use a numeric UTC offset such as +00 or +05:30, or a full zone name such as Europe/Berlin"],
    ['ISO-8601 Z (PostgreSQL refuses to start)', { time: '2026-11-23T16:20:00Z' }, "invalid --target-time '2026-11-23T16:20:00Z': PostgreSQL does not accept 'Z' in a recovery target time: use a numeric UTC offset such as +00 or +05:30, or a full zone name such as Europe/Berlin"],
    ['ISO-8601 z with fraction', { time: '2026-11-23T16:20:00.123z' }, /^invalid --target-time '2026-11-23T16:20:00.123z': PostgreSQL does not accept 'Z'/],
    ['zone abbreviation', { time: '2026-11-23 16:20 CEST' }, "invalid --target-time '2026-11-23 16:20 CEST': time zone abbreviations such as 'CEST' are not accepted by PostgreSQL in a recovery target time: use a numeric UTC offset such as +00 or +05:30, or a full zone name such as Europe/Berlin"],
    ['zone abbreviation, textual date', { time: 'Nov 23 2026 16:20 PST' }, /^invalid --target-time 'Nov 23 2026 16:20 PST': time zone abbreviations such as 'PST'/],
    ['DateStyle ambiguity', { time: '01/02/2026 10:00' }, /ambiguous date order .* write the date as YYYY-MM-DD$/],
    ['newline in time', { time: '2026-11-23\n10:00' }, /contains a NUL, carriage return or newline$/],
    ['xid hex', { xid: '0x10' }, "invalid --target-xid '0x10': expected a decimal transaction ID"],
    ['xid negative', { xid: '-5' }, "invalid --target-xid '-5': expected a decimal transaction ID"],
    ['xid octal-looking', { xid: '0100' }, /^invalid --target-xid '0100': leading zeros are not allowed/],
    ['xid too big', { xid: '18446744073709551616' }, "invalid --target-xid '18446744073709551616': out of range for a 64-bit transaction ID"],
    ['xid special', { xid: '2' }, /^invalid --target-xid '2': not a normal transaction ID/],
    ['full xid special', { xid: String(2n ** 32n + 1n) }, /^invalid --target-xid '4294967297': not a normal transaction ID/],
    ['lsn', { lsn: '12345' }, /^invalid --target-lsn '12345': expected the form X\/Y/],
    ['lsn too long', { lsn: '123456789/0' }, /^invalid --target-lsn '123456789\/0'/],
    ['empty name', { name: '' }, "invalid --target-name '': the restore point name is empty"],
    ['long name', { name: 'é'.repeat(32) }, /: 64 bytes long, at most 63 allowed$/],
    ['exclusive alone', { exclusive: true }, '--target-exclusive cannot be used without a recovery target: it applies to --target-time, --target-xid or --target-lsn only'],
    ['exclusive + name', { name: 'rp', exclusive: true }, '--target-exclusive cannot be used with --target-name: it applies to --target-time, --target-xid or --target-lsn only'],
    ['exclusive + immediate', { immediate: true, exclusive: true }, /^--target-exclusive cannot be used with --target-immediate/],
    ['action alone', { action: 'promote' }, /^--target-action needs a recovery target \(--target-time, --target-xid, --target-name, --target-lsn, --target-immediate\)/],
    ['action unknown', { xid: '1000', action: 'stop' as 'pause' }, "invalid --target-action 'stop': expected promote, pause or shutdown"],
    ['timeline 0', { timeline: '0' }, /^invalid --target-timeline '0': expected a positive number/],
    ['timeline octal', { timeline: '010' }, /^invalid --target-timeline '010'/],
    ['timeline word', { timeline: 'newest' }, /^invalid --target-timeline 'newest': expected 'latest', 'current' or a timeline ID/],
    ['timeline huge', { timeline: '4294967296' }, "invalid --target-timeline '4294967296': out of range for a timeline ID"],
  ])('rejects %s', (_, t, message) => {
    let err: unknown;
    try {
      validateTarget(t);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InvalidInputError);
    if (typeof message === 'string') expect((err as Error).message).toBe(message);
    else expect((err as Error).message).toMatch(message);
  });
});

describe('quoteGucValue', () => {
  it.each([
    ['', "''"],
    ['plain', "'plain'"],
    ["it's", "'it''s'"],
    ["''", "''''''"],
    ['back\\slash', "'back\\\\slash'"],
    ["'\\''", "'''\\\\'''''"],
    ['with # hash and = sign', "'with # hash and = sign'"],
    ['100%', "'100%'"],
    ['tab\there', "'tab\there'"],
    ['ünïcode', "'ünïcode'"],
  ])('%j -> %s', (v, quoted) => {
    expect(quoteGucValue(v)).toBe(quoted);
    expect(pgConfAssignments(`x = ${quoted}\n`)).toEqual([['x', v]]);
  });

  it.each(['a\nb', 'a\0b', 'a\rb'])('rejects %j', (v) => {
    expect(() => quoteGucValue(v)).toThrow(InvalidInputError);
    expect(() => quoteGucValue(v)).toThrow(/cannot contain a NUL, carriage return or newline/);
  });
});

describe('signalFile', () => {
  it('names the signal file', () => {
    expect(signalFile(true)).toBe('standby.signal');
    expect(signalFile(false)).toBe('recovery.signal');
  });
});

describe('recoverySettings', () => {
  const rc = "'/usr/bin/node' '/opt/pgark/bin/pgark.js' wal-fetch %f %p --repo '/var/lib/pgark' --stanza 'main'";
  it.each<[string, Parameters<typeof recoverySettings>[0], Array<[string, string]>]>([
    ['to the end of WAL', { restoreCommand: rc, target: {}, standby: false, keepArchive: false }, [
      ['restore_command', rc],
      ['archive_mode', 'off'],
      ['archive_command', ''],
    ]],
    ['keeping the archive', { restoreCommand: rc, target: {}, standby: false, keepArchive: true }, [['restore_command', rc]]],
    ['immediate', { restoreCommand: rc, target: { immediate: true, action: 'promote' }, standby: false, keepArchive: true }, [
      ['restore_command', rc],
      ['recovery_target', 'immediate'],
      ['recovery_target_action', 'promote'],
    ]],
    ['every option', {
      restoreCommand: rc,
      target: { time: '2026-11-23 16:20:00.123456+00', exclusive: true, action: 'shutdown', timeline: '2' },
      standby: false,
      keepArchive: false,
    }, [
      ['restore_command', rc],
      ['recovery_target_time', '2026-11-23 16:20:00.123456+00'],
      ['recovery_target_inclusive', 'false'],
      ['recovery_target_action', 'shutdown'],
      ['recovery_target_timeline', '2'],
      ['archive_mode', 'off'],
      ['archive_command', ''],
    ]],
    ['xid', { restoreCommand: rc, target: { xid: '4294967300' }, standby: false, keepArchive: true }, [
      ['restore_command', rc],
      ['recovery_target_xid', '4294967300'],
    ]],
    ['name', { restoreCommand: rc, target: { name: "it's" }, standby: false, keepArchive: true }, [
      ['restore_command', rc],
      ['recovery_target_name', "it's"],
    ]],
    ['lsn', { restoreCommand: rc, target: { lsn: '16/B374D848' }, standby: false, keepArchive: true }, [
      ['restore_command', rc],
      ['recovery_target_lsn', '16/B374D848'],
    ]],
    ['standby with primary', {
      restoreCommand: rc,
      target: { timeline: 'latest' },
      standby: true,
      primaryConninfo: "host=db1 user=replicator application_name='clone 1'",
      primarySlotName: 'clone_1',
      keepArchive: false,
    }, [
      ['restore_command', rc],
      ['recovery_target_timeline', 'latest'],
      ['primary_conninfo', "host=db1 user=replicator application_name='clone 1'"],
      ['primary_slot_name', 'clone_1'],
      ['archive_mode', 'off'],
      ['archive_command', ''],
    ]],
    ['archive-only standby', { restoreCommand: rc, target: {}, standby: true, keepArchive: true }, [['restore_command', rc]]],
  ])('%s', (_, o, expected) => {
    expect(recoverySettings(o)).toEqual(expected);
  });

  it.each<[string, Parameters<typeof recoverySettings>[0], string | RegExp]>([
    ['conflicting targets', { restoreCommand: rc, target: { lsn: '0/1', immediate: true }, standby: false, keepArchive: true }, /^--target-lsn and --target-immediate cannot be used together/],
    ['conninfo without standby', { restoreCommand: rc, target: {}, standby: false, primaryConninfo: 'host=x', keepArchive: true }, /^--primary-conninfo needs --standby/],
    ['slot without standby', { restoreCommand: rc, target: {}, standby: false, primarySlotName: 's', keepArchive: true }, /^--primary-slot-name needs --standby/],
    ['slot without conninfo', { restoreCommand: rc, target: {}, standby: true, primarySlotName: 's', keepArchive: true }, /^--primary-slot-name needs --primary-conninfo/],
    ['bad slot', { restoreCommand: rc, target: {}, standby: true, primaryConninfo: 'host=x', primarySlotName: 'Bad-Slot', keepArchive: true }, /^invalid --primary-slot-name 'Bad-Slot'/],
    ['empty restore_command', { restoreCommand: ' ', target: {}, standby: false, keepArchive: true }, 'restore_command is empty'],
  ])('rejects %s', (_, o, message) => {
    expect(() => recoverySettings(o)).toThrow(InvalidInputError);
    expect(() => recoverySettings(o)).toThrow(message);
  });

  // It would be written into postgresql.auto.conf, which the next backup copies (issue 14, item 7).
  it.each(["host=db1 user=replicator password='se cret'", 'postgresql://replicator:secret@db1/postgres'])('refuses a primary_conninfo with a password: %s', (conninfo) => {
    const o = { restoreCommand: rc, target: {}, standby: true, primaryConninfo: conninfo, keepArchive: false };
    expect(() => recoverySettings(o)).toThrow(ConfigError);
    expect(() => recoverySettings(o)).toThrow(/^--primary-conninfo must not contain a password .*\.pgpass/);
  });
});

describe('mergeAutoConf', () => {
  const stamp = '20261123-162000F';
  const header = '# Do not edit this file manually!\n# It will be overwritten by the ALTER SYSTEM command.\n';
  const settings: Array<[string, string]> = [
    ['restore_command', "'/usr/bin/node' '/opt/pg ark/pgark.js' wal-fetch %f %p --repo '/srv/it'\\''s 100%%' --stanza 'main'"],
    ['recovery_target_time', '2026-11-23 16:20:00+00'],
    ['recovery_target_action', 'promote'],
    ['primary_conninfo', "host=db1 password='x''y'"],
    ['archive_mode', 'off'],
    ['archive_command', ''],
  ];
  const block =
    `# Recovery settings written by pgark restore ${stamp}\n` +
    "restore_command = '''/usr/bin/node'' ''/opt/pg ark/pgark.js'' wal-fetch %f %p --repo ''/srv/it''\\\\''''s 100%%'' --stanza ''main'''\n" +
    "recovery_target_time = '2026-11-23 16:20:00+00'\n" +
    "recovery_target_action = 'promote'\n" +
    "primary_conninfo = 'host=db1 password=''x''''y'''\n" +
    "archive_mode = 'off'\n" +
    "archive_command = ''\n";

  it.each<[string, string, string]>([
    ['an empty file', '', block],
    ['the ALTER SYSTEM header only', header, header + block],
    ['a file without a final newline', `${header}work_mem = '64MB'`, `${header}work_mem = '64MB'\n${block}`],
    [
      'existing settings in every spelling',
      header +
        "restore_command = 'cp /old/%f %p'\n" +
        "Restore_Command='cp /old2/%f %p'\n" +
        "  PRIMARY_CONNINFO 'host=old'\n" +
        "\tprimary_slot_name = 'old_slot'\n" +
        "recovery_target_name = 'stale'\n" +
        "recovery_target_inclusive = 'false'\n" +
        "recovery_end_command = 'echo done'\n" +
        "archive_command = 'pgark wal-push %p'   # production\n" +
        'archive_mode=on\n' +
        "archive_library = 'basic_archive'\n" +
        "archive_cleanup_command = 'pg_archivecleanup /archive %r'\n" +
        "restore_command_timeout = '5'\n" +
        "shared_buffers = '1GB'\n" +
        "# restore_command = 'a comment stays as it is'\n" +
        "include_if_exists = 'restore_command.conf'\n" +
        '\n' +
        "work_mem = '64MB' # keep\n",
      header +
        `# pgark restore ${stamp}: restore_command = 'cp /old/%f %p'\n` +
        `# pgark restore ${stamp}: Restore_Command='cp /old2/%f %p'\n` +
        `# pgark restore ${stamp}:   PRIMARY_CONNINFO 'host=old'\n` +
        `# pgark restore ${stamp}: \tprimary_slot_name = 'old_slot'\n` +
        `# pgark restore ${stamp}: recovery_target_name = 'stale'\n` +
        `# pgark restore ${stamp}: recovery_target_inclusive = 'false'\n` +
        `# pgark restore ${stamp}: recovery_end_command = 'echo done'\n` +
        `# pgark restore ${stamp}: archive_command = 'pgark wal-push %p'   # production\n` +
        `# pgark restore ${stamp}: archive_mode=on\n` +
        `# pgark restore ${stamp}: archive_library = 'basic_archive'\n` +
        `# pgark restore ${stamp}: archive_cleanup_command = 'pg_archivecleanup /archive %r'\n` +
        "restore_command_timeout = '5'\n" +
        "shared_buffers = '1GB'\n" +
        "# restore_command = 'a comment stays as it is'\n" +
        "include_if_exists = 'restore_command.conf'\n" +
        '\n' +
        "work_mem = '64MB' # keep\n" +
        block,
    ],
    [
      'CRLF line endings',
      "restore_command = 'old'\r\nwork_mem = '1MB'\r\n",
      `# pgark restore ${stamp}: restore_command = 'old'\r\nwork_mem = '1MB'\r\n${block}`,
    ],
  ])('%s', (_, existing, expected) => {
    const merged = mergeAutoConf(existing, settings, stamp);
    expect(merged).toBe(expected);
    const effective = pgConfAssignments(merged);
    for (const [name, value] of settings) {
      expect(effective.filter(([n]) => n === name)).toEqual([[name, value]]);
    }
    for (const name of ['recovery_target_name', 'recovery_target_inclusive', 'primary_slot_name', 'archive_library', 'archive_cleanup_command', 'recovery_end_command']) {
      expect(effective.filter(([n]) => n === name)).toEqual([]);
    }
  });

  it('leaves groups it does not set alone', () => {
    const existing = "primary_conninfo = 'host=db1'\nprimary_slot_name = 's1'\narchive_command = 'x'\nrecovery_target_timeline = '3'\nrestore_command = 'old'\n";
    expect(mergeAutoConf(existing, [['recovery_target_lsn', '0/5']], 'S')).toBe(
      "primary_conninfo = 'host=db1'\nprimary_slot_name = 's1'\narchive_command = 'x'\n" +
        "# pgark restore S: recovery_target_timeline = '3'\n# pgark restore S: restore_command = 'old'\n" +
        "# Recovery settings written by pgark restore S\nrecovery_target_lsn = '0/5'\n",
    );
    expect(mergeAutoConf(existing, [['primary_slot_name', 's2']], 'S')).toBe(
      "# pgark restore S: primary_conninfo = 'host=db1'\n# pgark restore S: primary_slot_name = 's1'\narchive_command = 'x'\nrecovery_target_timeline = '3'\nrestore_command = 'old'\n" +
        "# Recovery settings written by pgark restore S\nprimary_slot_name = 's2'\n",
    );
  });

  it('is stable when run again over its own output', () => {
    const once = mergeAutoConf("restore_command = 'old'\n", settings, 'A');
    const twice = mergeAutoConf(once, settings, 'B');
    const effective = pgConfAssignments(twice);
    for (const [name, value] of settings) expect(effective.filter(([n]) => n === name)).toEqual([[name, value]]);
    expect(twice.startsWith("# pgark restore A: restore_command = 'old'\n# Recovery settings written by pgark restore A\n# pgark restore B: restore_command = ")).toBe(true);
  });

  it('works with recoverySettings output end to end', () => {
    const s = recoverySettings({ restoreCommand: 'x %f %p', target: { xid: '1000', exclusive: true }, standby: false, keepArchive: false });
    expect(mergeAutoConf('', s, 'S')).toBe(
      '# Recovery settings written by pgark restore S\n' +
        "restore_command = 'x %f %p'\nrecovery_target_xid = '1000'\nrecovery_target_inclusive = 'false'\narchive_mode = 'off'\narchive_command = ''\n",
    );
  });

  it.each<[string, Array<[string, string]>, string, RegExp]>([
    ['newline in a value', [['restore_command', 'a\nb']], 'S', /cannot contain a NUL, carriage return or newline/],
    ['newline in the stamp', [['restore_command', 'a']], 'S\nx', /^invalid stamp/],
    ['a duplicate setting', [['restore_command', 'a'], ['RESTORE_COMMAND', 'b']], 'S', /given twice/],
    ['a bad name', [['restore command', 'a']], 'S', /^invalid setting name/],
  ])('rejects %s', (_, s, st, message) => {
    expect(() => mergeAutoConf('', s, st)).toThrow(InvalidInputError);
    expect(() => mergeAutoConf('', s, st)).toThrow(message);
  });
});

describe('buildRestoreCommand', () => {
  it.each<[string, Parameters<typeof buildRestoreCommand>[0], string]>([
    ['plain', { node: '/usr/bin/node', script: '/opt/pgark/bin/pgark.js', repo: '/var/lib/pgark', stanza: 'main' },
      "'/usr/bin/node' '/opt/pgark/bin/pgark.js' wal-fetch %f %p --repo '/var/lib/pgark' --stanza 'main'"],
    ['config', { node: 'node', script: '/opt/pgark/bin/pgark.js', repo: 'file:///var/lib/pgark', stanza: 'main', config: '/etc/pgark/pgark.conf' },
      "'node' '/opt/pgark/bin/pgark.js' wal-fetch %f %p --repo 'file:///var/lib/pgark' --stanza 'main' --config '/etc/pgark/pgark.conf'"],
    ['spaces', { node: '/opt/my node/node', script: '/opt/pg ark/pgark.js', repo: '/srv/back ups', stanza: 'main' },
      "'/opt/my node/node' '/opt/pg ark/pgark.js' wal-fetch %f %p --repo '/srv/back ups' --stanza 'main'"],
    ['single quotes', { node: '/usr/bin/node', script: "/opt/o'brien/pgark.js", repo: "/srv/it's", stanza: "a'b" },
      "'/usr/bin/node' '/opt/o'\\''brien/pgark.js' wal-fetch %f %p --repo '/srv/it'\\''s' --stanza 'a'\\''b'"],
    ['percent', { node: '/usr/bin/node', script: '/opt/100%/pgark.js', repo: '/srv/%f%p', stanza: 'main', config: '/etc/%%.conf' },
      "'/usr/bin/node' '/opt/100%%/pgark.js' wal-fetch %f %p --repo '/srv/%%f%%p' --stanza 'main' --config '/etc/%%%%.conf'"],
    ['shell metacharacters', { node: '/usr/bin/node', script: '/opt/$(rm -rf x)/`x`/pgark.js', repo: '/srv/a;b|c&d', stanza: 'm"n\\' },
      "'/usr/bin/node' '/opt/$(rm -rf x)/`x`/pgark.js' wal-fetch %f %p --repo '/srv/a;b|c&d' --stanza 'm\"n\\'"],
    ['extra arguments', { node: '/usr/bin/node', script: '/p.js', repo: '/r', stanza: 's', extra: ['--jobs', '2', "--x='y'"] },
      "'/usr/bin/node' '/p.js' wal-fetch %f %p --repo '/r' --stanza 's' '--jobs' '2' '--x='\\''y'\\'''"],
  ])('%s', (_, o, expected) => {
    expect(buildRestoreCommand(o)).toBe(expected);
  });

  it.each<[string, Parameters<typeof buildRestoreCommand>[0], RegExp]>([
    ['newline in repo', { node: '/n', script: '/s', repo: '/r\nx', stanza: 's' }, /^invalid --repo '\/r\\x0ax' for restore_command: contains a NUL/],
    ['NUL in stanza', { node: '/n', script: '/s', repo: '/r', stanza: 'a\0' }, /^invalid --stanza/],
    ['newline in config', { node: '/n', script: '/s', repo: '/r', stanza: 's', config: '/c\n' }, /^invalid --config/],
    ['newline in extra', { node: '/n', script: '/s', repo: '/r', stanza: 's', extra: ['a\nb'] }, /^invalid restore_command argument/],
    ['relative config', { node: '/n', script: '/s', repo: '/r', stanza: 's', config: 'pgark.conf' }, /^invalid --config 'pgark.conf' for restore_command: must be an absolute path/],
    ['relative repo', { node: '/n', script: '/s', repo: 'backups', stanza: 's' }, /^invalid --repo 'backups' .*must be an absolute path/],
    ['relative script', { node: '/n', script: 'bin/pgark.js', repo: '/r', stanza: 's' }, /^invalid pgark script/],
    ['empty stanza', { node: '/n', script: '/s', repo: '/r', stanza: '' }, /^invalid --stanza for restore_command: empty/],
  ])('rejects %s', (_, o, message) => {
    expect(() => buildRestoreCommand(o)).toThrow(InvalidInputError);
    expect(() => buildRestoreCommand(o)).toThrow(message);
  });

  it('survives the config file, % expansion and /bin/sh with every argument intact', () => {
    const dir = mkdtempSync(join(tmpdir(), "pgark rc it's 100% $x "));
    tmpDirs.push(dir);
    const script = join(dir, 'print argv.mjs');
    writeFileSync(script, 'process.stdout.write(JSON.stringify(process.argv.slice(2)))\n');
    const o = { node: process.execPath, script, repo: `${dir}/re'po %p`, stanza: 'st "a" \\ $HOME', config: `${dir}/c%%f.conf`, extra: ['--x', "'"] };
    const conf = mergeAutoConf('', [['restore_command', buildRestoreCommand(o)]], 'S');
    const [[, fromConf] = ['', '']] = pgConfAssignments(conf);
    const cmd = expandPercent(fromConf, '000000010000000000000001', 'pg_wal/RECOVERYXLOG');
    const r = spawnSync('/bin/sh', ['-c', cmd], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toEqual([
      'wal-fetch', '000000010000000000000001', 'pg_wal/RECOVERYXLOG',
      '--repo', o.repo, '--stanza', o.stanza, '--config', o.config, '--x', "'",
    ]);
  });
});
