/**
 * The `pgark setup` planner (src/ops/setup-plan.ts): from pg_settings rows plus the values in
 * the configuration files, what is written, what only waits for a reload/restart, what is kept,
 * what replaces a value pgark did not write, and what ALTER SYSTEM cannot change.
 */
import { describe, expect, it } from 'vitest';
import { alterSystemSql, describeReplacement, normArchiveMode, normWalLevel, planSetup, sqlLiteral, timeSettingSeconds, type ServerSetting, type SetupWanted } from '../../src/ops/setup-plan.js';

const OURS = "'/usr/bin/node' '/opt/pgark/bin/pgark.js' wal-push %p --repo '/var/lib/pgark' --stanza 'main'";
const OURS_FETCH = "'/usr/bin/node' '/opt/pgark/bin/pgark.js' wal-fetch %f %p --repo '/var/lib/pgark' --stanza 'main'";
const wanted: SetupWanted = { repo: '/var/lib/pgark', stanza: 'main', archiveCommand: OURS };

type RowSpec = Partial<ServerSetting> & { fileValue?: string; fileAt?: string };

function row(name: string, setting: string, o: RowSpec = {}): ServerSetting {
  const context = o.context ?? (['archive_command', 'archive_library', 'archive_timeout', 'restore_command'].includes(name) ? 'sighup' : 'postmaster');
  const { fileValue, fileAt, ...rest } = o;
  const [file, line] = (fileAt ?? '/data/postgresql.auto.conf:3').split(':');
  return {
    name, setting, unit: name === 'archive_timeout' ? 's' : null, context, pendingRestart: false, source: 'default', sourcefile: null, sourceline: null,
    ...(fileValue !== undefined ? { file: { value: fileValue, sourcefile: file!, sourceline: Number(line) } } : {}),
    ...rest,
  };
}

/** A fresh PostgreSQL 15 initdb: archiving off, replica, 10 senders. */
function fresh(over: Record<string, RowSpec & { setting?: string }> = {}): ServerSetting[] {
  const base: Record<string, string> = {
    archive_mode: 'off', archive_command: '', archive_library: '', wal_level: 'replica', max_wal_senders: '10', archive_timeout: '0', restore_command: '',
  };
  return Object.entries(base).map(([n, v]) => row(n, over[n]?.setting ?? v, over[n] ?? {}));
}

const summary = (rows: ServerSetting[], w: SetupWanted = wanted) =>
  Object.fromEntries(planSetup(rows, w).items.map((i) => [i.name, `${i.action}:${i.target}`]));

describe('planSetup', () => {
  it('a fresh cluster: archive_mode and archive_command are written, the rest is fine', () => {
    const plan = planSetup(fresh(), wanted);
    expect(summary(fresh())).toEqual({
      archive_mode: 'set:on', archive_command: `set:${OURS}`, archive_library: 'none:', wal_level: 'none:replica', max_wal_senders: 'none:10',
    });
    expect(plan.writes.map((i) => [i.name, i.apply])).toEqual([['archive_mode', 'restart'], ['archive_command', 'reload']]);
    expect(plan.restartNeeded).toBe(true);
    expect(plan.reloadNeeded).toBe(true);
    expect(plan.foreign).toEqual([]);
  });

  it('written but not applied yet: pending, nothing to write (idempotent before the restart)', () => {
    const rows = fresh({ archive_mode: { fileValue: 'on' }, archive_command: { fileValue: OURS } });
    const plan = planSetup(rows, wanted);
    expect(plan.writes).toEqual([]);
    expect(plan.items.filter((i) => i.action === 'pending').map((i) => [i.name, i.apply])).toEqual([['archive_mode', 'restart'], ['archive_command', 'reload']]);
    expect(plan.restartNeeded).toBe(true);
  });

  it('applied: nothing to do at all', () => {
    const rows = fresh({ archive_mode: { setting: 'on', fileValue: 'on' }, archive_command: { setting: OURS, fileValue: OURS } });
    const plan = planSetup(rows, wanted);
    expect(plan.items.every((i) => i.action === 'none')).toBe(true);
    expect(plan.restartNeeded || plan.reloadNeeded).toBe(false);
  });

  it.each([
    ['wal_level', 'minimal', 'set:replica'],
    ['wal_level', 'logical', 'none:logical'],
    ['wal_level', 'hot_standby', 'none:hot_standby'],
    ['max_wal_senders', '0', 'set:10'],
    ['max_wal_senders', '5', 'set:10'],
    ['max_wal_senders', '32', 'none:32'],
    ['archive_mode', 'always', 'none:always'],
    ['archive_mode', 'true', 'none:true'],
    ['archive_mode', 'off', 'set:on'],
  ])('%s = %s -> %s (values pgark would lower are kept)', (name, value, expected) => {
    const rows = fresh({ [name]: { setting: value } });
    expect(summary(rows)[name]).toBe(expected);
  });

  it('says why a higher value is kept', () => {
    const plan = planSetup(fresh({ max_wal_senders: { setting: '32' }, wal_level: { setting: 'logical' } }), wanted);
    expect(plan.items.find((i) => i.name === 'max_wal_senders')!.note).toMatch(/kept 32: .*never lowers/);
    expect(plan.items.find((i) => i.name === 'wal_level')!.note).toMatch(/kept 'logical'/);
  });

  it('a foreign archive_command is replaced only when named, with where it is set', () => {
    const rows = fresh({
      archive_mode: { setting: 'on' },
      archive_command: { setting: 'cp %p /mnt/%f', source: 'configuration file', sourcefile: '/etc/postgresql/15/main/postgresql.conf', sourceline: 250, fileValue: 'cp %p /mnt/%f', fileAt: '/etc/postgresql/15/main/postgresql.conf:250' },
    });
    const plan = planSetup(rows, wanted);
    expect(plan.foreign.map((i) => i.name)).toEqual(['archive_command']);
    expect(describeReplacement(plan.foreign[0]!)).toBe(
      "replacing archive_command 'cp %p /mnt/%f' set in /etc/postgresql/15/main/postgresql.conf:250 (archive_command 'cp %p /mnt/%f' does not run pgark)");
  });

  it('masks credentials in a foreign command it shows', () => {
    const cmd = 'AWS_SECRET_ACCESS_KEY=abc123 aws s3 cp %p s3://b/%f';
    const plan = planSetup(fresh({ archive_command: { setting: cmd, fileValue: cmd } }), wanted);
    expect(JSON.stringify(plan)).not.toContain('abc123');
    expect(describeReplacement(plan.foreign[0]!)).toMatch(/^replacing archive_command 'AWS_SECRET_ACCESS_KEY=\*\*\* aws s3 cp %p s3:\/\/b\/%f' set in /);
    expect(plan.writes.find((i) => i.name === 'archive_command')!.target).toBe(OURS);
  });

  it.each([
    ["'/usr/bin/node' '/opt/pgark/bin/pgark.js' wal-push %p --repo '/var/lib/pgark' --stanza 'other'", /uses stanza 'other', not 'main'/],
    ["pgark wal-push %p --repo /srv/elsewhere", /archives to repository '\/srv\/elsewhere'/],
    ['pgark wal-push %p', /cannot tell/],
  ])('pgark for another repository or stanza (or unknown) is foreign too: %s', (cmd, reason) => {
    const plan = planSetup(fresh({ archive_command: { setting: cmd, fileValue: cmd } }), wanted);
    expect(plan.foreign[0]?.replacing?.reason).toMatch(reason);
    expect(plan.foreign[0]?.replacing?.where).toBe('/data/postgresql.auto.conf:3');
  });

  it('an equivalent pgark command for this repository and stanza is kept', () => {
    const shellClient = '/opt/pgark/bin/pgark-wal-push %p --repo /var/lib/pgark --stanza main';
    const plan = planSetup(fresh({ archive_mode: { setting: 'on' }, archive_command: { setting: shellClient, fileValue: shellClient } }), wanted);
    const item = plan.items.find((i) => i.name === 'archive_command')!;
    expect(item).toMatchObject({ action: 'none', target: shellClient });
    expect(item.note).toMatch(/equivalent pgark command/);
    expect(plan.writes).toEqual([]);
  });

  it('an empty archive_command is not foreign', () => {
    expect(planSetup(fresh(), wanted).items.find((i) => i.name === 'archive_command')!.replacing).toBeUndefined();
  });

  it('archive_library set is foreign and cleared; absent before PostgreSQL 15 it is skipped', () => {
    const plan = planSetup(fresh({ archive_library: { setting: 'basic_archive', fileValue: 'basic_archive', fileAt: '/data/postgresql.conf:12' } }), wanted);
    expect(plan.foreign.find((i) => i.name === 'archive_library')).toMatchObject({ target: '', replacing: { value: 'basic_archive', where: '/data/postgresql.conf:12' } });
    const pg14 = fresh().filter((r) => r.name !== 'archive_library');
    expect(planSetup(pg14, wanted).items.map((i) => i.name)).not.toContain('archive_library');
    expect(() => planSetup(fresh().filter((r) => r.name !== 'wal_level'), wanted)).toThrow(/wal_level/);
  });

  it.each([
    ['0', undefined, 'set:60'],
    ['60', undefined, 'none:60'],
    ['30', '1min', 'pending:1min'],
    ['60', '60s', 'none:60s'],
    ['60', '2min', 'set:60'],
  ])('archive_timeout %s (file %s) with --archive-timeout 60 -> %s', (running, file, expected) => {
    const rows = fresh({ archive_timeout: { setting: running, ...(file !== undefined ? { fileValue: file } : {}) } });
    expect(summary(rows, { ...wanted, archiveTimeoutSec: 60 }).archive_timeout).toBe(expected);
  });

  it('archive_timeout is left alone without --archive-timeout', () => {
    expect(summary(fresh({ archive_timeout: { setting: '5' } }))).not.toHaveProperty('archive_timeout');
  });

  it('restore_command for a standby: written, foreign ones named, ours kept', () => {
    const w = { ...wanted, restoreCommand: OURS_FETCH };
    expect(summary(fresh(), w).restore_command).toBe(`set:${OURS_FETCH}`);
    const foreign = planSetup(fresh({ restore_command: { setting: 'cp /mnt/%f %p', fileValue: 'cp /mnt/%f %p' } }), w);
    expect(foreign.foreign.map((i) => i.name)).toEqual(['restore_command']);
    const ours = 'pgark wal-fetch %f %p --repo /var/lib/pgark';
    expect(summary(fresh({ restore_command: { setting: ours } }), w).restore_command).toBe(`none:${ours}`);
    expect(summary(fresh())).not.toHaveProperty('restore_command');
  });

  it('a value from the server command line cannot be changed with ALTER SYSTEM', () => {
    const plan = planSetup(fresh({ archive_mode: { setting: 'off', source: 'command line' } }), wanted);
    expect(plan.blocked.map((i) => i.name)).toEqual(['archive_mode']);
    expect(plan.blocked[0]!.note).toMatch(/command line/);
    // Fine on the command line: nothing to do.
    expect(planSetup(fresh({ wal_level: { setting: 'replica', source: 'command line' } }), wanted).blocked).toEqual([]);
  });

  it('a file value that would undo a good running value is written again', () => {
    const rows = fresh({ archive_mode: { setting: 'on', fileValue: 'off' } });
    expect(summary(rows).archive_mode).toBe('set:on');
  });
});

describe('values', () => {
  it.each([
    ['60', 's', 60], ['60s', 's', 60], ['1min', 's', 60], ['1 h', 's', 3600], ['1500ms', 's', 1.5], ['2', 'min', 120], ['1d', 's', 86400],
    ['x', 's', undefined], ['5 parsecs', 's', undefined],
  ])('timeSettingSeconds(%s, %s) = %s', (v, unit, secs) => {
    expect(timeSettingSeconds(v, unit)).toBe(secs);
  });

  it.each([['ON', 'on'], ['yes', 'on'], ['0', 'off'], ['always', 'always']])('archive_mode %s -> %s', (v, n) => expect(normArchiveMode(v)).toBe(n));
  it.each([['archive', 'replica'], ['HOT_STANDBY', 'replica'], ['logical', 'logical']])('wal_level %s -> %s', (v, n) => expect(normWalLevel(v)).toBe(n));

  it.each([
    ["cp %p '/mnt/x'", "E'cp %p ''/mnt/x'''"],
    ['a\\b', "E'a\\\\b'"],
    ['', "E''"],
  ])('sqlLiteral(%j) = %s', (v, lit) => {
    expect(sqlLiteral(v)).toBe(lit);
  });

  it('refuses values ALTER SYSTEM cannot hold', () => {
    expect(() => sqlLiteral('a\nb')).toThrow(/newline/);
    expect(() => sqlLiteral('a\0b')).toThrow(/NUL/);
    expect(alterSystemSql({ name: 'archive_mode', running: 'off', configured: 'off', target: 'on', action: 'set', apply: 'restart' })).toBe("ALTER SYSTEM SET archive_mode = E'on'");
    expect(() => alterSystemSql({ name: 'x; DROP', running: '', configured: '', target: '', action: 'set', apply: 'reload' })).toThrow(/invalid setting name/);
  });
});
