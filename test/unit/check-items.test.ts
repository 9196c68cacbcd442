/**
 * The items of `pgark check` (src/ops/check-items.ts): each fact -> OK, WARNING or CRITICAL with
 * its reason; the run's status and Nagios exit code; the human report.
 */
import { describe, expect, it } from 'vitest';
import {
  archiveCommandItem, archiveModeItem, archiverItem, backupAgeItem, briefOf, checkExitCode, formatAge, formatCheckReport, formatPerfData, missingRanges,
  nagiosSummary, overallStatus, receiverItem, slotItem, walContinuityItem, walRoundTripItem, type ArchiverSample, type CheckItem, type PerfDatum, type SlotRow,
} from '../../src/ops/check-items.js';

const H = 3600_000;
const target = { repo: '/var/lib/pgark', stanza: 'main' };

describe('status and exit code', () => {
  const item = (status: CheckItem['status']): CheckItem => ({ name: 'x', status, detail: '' });
  it.each([
    [[], 'OK', 0],
    [['OK', 'OK'], 'OK', 0],
    [['OK', 'WARNING'], 'WARNING', 1],
    [['WARNING', 'CRITICAL', 'OK'], 'CRITICAL', 2],
    [['UNKNOWN'], 'UNKNOWN', 3],
    [['WARNING', 'UNKNOWN', 'OK'], 'UNKNOWN', 3],
    [['UNKNOWN', 'CRITICAL'], 'CRITICAL', 2],
  ] as const)('%j -> %s (exit %d)', (statuses, status, code) => {
    const s = overallStatus(statuses.map(item));
    expect(s).toBe(status);
    expect(checkExitCode(s)).toBe(code);
  });

  it('prints the plugin summary and perfdata first, then one line per item', () => {
    expect(formatCheckReport([
      { name: 'repository', status: 'OK', detail: 'fine' },
      { name: 'archive_command', status: 'CRITICAL', detail: 'does not run pgark' },
    ], [{ label: 'archived', value: 3, uom: 'c', min: 0 }])).toBe(
      'PGARK CRITICAL - 1 critical, 1 ok: archive_command: does not run pgark | archived=3c;;;0\n' +
      '[OK] repository: fine\n[CRITICAL] archive_command: does not run pgark\n');
  });

  it('a pipe or line break in a detail cannot end the status text or the first line early', () => {
    const out = formatCheckReport([{ name: 'archive_command', status: 'CRITICAL', detail: "archive_command 'gzip < %p | cat > /x/%f' does not run pgark\nsecond" }]);
    const lines = out.split('\n');
    expect(lines[0]).toBe("PGARK CRITICAL - 1 critical: archive_command: archive_command 'gzip < %p / cat > /x/%f' does not run pgark second");
    expect(lines[1]).toBe("[CRITICAL] archive_command: archive_command 'gzip < %p / cat > /x/%f' does not run pgark second");
    expect(out).not.toContain('|');
  });

  it.each([[0, '0s'], [59_400, '59s'], [90_000, '1m30s'], [26 * H + 5 * 60_000, '26h05m'], [80 * H, '3d08h']])('formatAge(%d) = %s', (ms, text) => {
    expect(formatAge(ms)).toBe(text);
  });
});

describe('Nagios summary line and perfdata', () => {
  const i = (name: string, status: CheckItem['status'], detail: string): CheckItem => ({ name, status, detail });
  const okItems = (n: number) => Array.from({ length: n }, (_, k) => i(`ok${k}`, 'OK', 'fine'));
  it.each([
    ['all OK', okItems(10), [], 'PGARK OK - 10 ok'],
    ['no backup yet', [...okItems(9), i('backups', 'WARNING', 'none yet (no backup in the stanza: take one with pgark backup)')], [],
      'PGARK WARNING - 1 warning, 9 ok: backups: none yet'],
    ['issue example', [...okItems(8), i('backups', 'CRITICAL', 'none yet (no backup in the stanza)'), i('wal_continuity', 'CRITICAL', 'not tried: there is no backup')], [],
      'PGARK CRITICAL - 2 critical, 8 ok: backups: none yet; wal_continuity: not tried: there is no backup'],
    ['worst first, failures before not tried', [i('wal_round_trip', 'CRITICAL', 'not tried: archive_mode is off'), i('slot s', 'WARNING', 'x'), i('archive_mode', 'CRITICAL', 'archive_mode is off: nothing is archived (pgark setup sets it)')], [],
      'PGARK CRITICAL - 2 critical, 1 warning: archive_mode: archive_mode is off: nothing is archived; wal_round_trip: not tried: archive_mode is off; slot s: x'],
    ['stays within NRPE 2\'s 1024 bytes', [1, 2, 3, 4].map((k) => i(`receiver receiver-${k}`, 'CRITICAL', 'y'.repeat(300))),
      [1, 2, 3, 4, 5, 6, 7].map((k) => ({ label: `metric_number_${k}`, value: 1234567890, uom: 's', warn: 1234567, crit: 12345678, min: 0 })),
      expect.stringMatching(/^PGARK CRITICAL - 4 critical: receiver receiver-1: y{159}…; .*; and 1 more \| metric_number_1=1234567890s;1234567;12345678;0 .*metric_number_7=\S+$/)],
    ['at most 3 listed', [1, 2, 3, 4, 5, 6].map((k) => i(`c${k}`, 'CRITICAL', 'bad')), [], 'PGARK CRITICAL - 6 critical: c1: bad; c2: bad; c3: bad; and 3 more'],
    ['unknown', [i('configuration', 'UNKNOWN', "unable to read config file '/etc/pgark/pgark.conf': EACCES")], [],
      "PGARK UNKNOWN - 1 unknown: configuration: unable to read config file '/etc/pgark/pgark.conf': EACCES"],
    ['with perfdata', okItems(2), [{ label: 'backup_age', value: 3600, uom: 's', warn: 93600, crit: 180000, min: 0 }, { label: 'archive_lag_segments', value: 0, uom: '', min: 0 }],
      'PGARK OK - 2 ok | backup_age=3600s;93600;180000;0 archive_lag_segments=0;;;0'],
  ] as [string, CheckItem[], PerfDatum[], unknown][])('%s', (_what, items, perf, line) => {
    const summary = nagiosSummary(items, perf);
    expect(summary).toEqual(line);
    expect(Buffer.byteLength(summary)).toBeLessThan(1024);
  });

  it.each([
    [[], ''],
    [[{ label: 'archived', value: 12, uom: 'c' }], 'archived=12c'],
    [[{ label: 'archive_lag', value: 0, uom: 's', min: 0 }], 'archive_lag=0s;;;0'],
    [[{ label: 'backup_age', value: 1.23456, uom: 's', warn: 10, crit: 20, min: 0, max: 100 }], 'backup_age=1.235s;10;20;0;100'],
    [[{ label: 'x', value: 5, uom: '', crit: 7 }], 'x=5;;7'],
    [[{ label: 'with space', value: -1, uom: '' }], "'with space'=-1"],
    [[{ label: 'a', value: 1, uom: 's' }, { label: 'b', value: 2, uom: 'c' }], 'a=1s b=2c'],
  ] as [PerfDatum[], string][])('formatPerfData %j -> %s', (perf, text) => {
    expect(formatPerfData(perf)).toBe(text);
  });

  it.each([["it's"], ['a=b'], ['']])('formatPerfData refuses the label %j', (label) => {
    expect(() => formatPerfData([{ label, value: 1, uom: '' }])).toThrow(/invalid perfdata label/);
  });

  it('formatPerfData refuses a value that is not finite', () => {
    expect(() => formatPerfData([{ label: 'x', value: Number.NaN, uom: '' }])).toThrow(/no finite value/);
  });

  it.each([
    ['none yet (no backup in the stanza: take one with pgark backup)', 'none yet'],
    ['1 segment(s) missing between A and B since backup X: C; a restore cannot replay', '1 segment(s) missing between A and B since backup X: C'],
    ['x'.repeat(160), 'x'.repeat(160)],
    ['x'.repeat(200), `${'x'.repeat(159)}…`],
  ])('briefOf(%j) = %j', (detail, brief) => {
    expect(briefOf(i('n', 'CRITICAL', detail))).toBe(brief);
  });
});

describe('archiving', () => {
  it.each([
    ['off', false, 'CRITICAL', /archive_mode is off/],
    ['on', false, 'OK', /^on$/],
    ['on', true, 'OK', /standby archives only once promoted/],
    ['always', true, 'OK', /always/],
  ] as const)('archive_mode %s (standby %s) -> %s', (mode, standby, status, detail) => {
    const i = archiveModeItem(mode, standby);
    expect(i.status).toBe(status);
    expect(i.detail).toMatch(detail);
  });

  it.each([
    ['pgark wal-push %p --repo /var/lib/pgark', 'OK', /runs pgark wal-push for repository/],
    ['pgark wal-push %p --repo /var/lib/pgark --stanza other', 'CRITICAL', /uses stanza 'other', not 'main'/],
    ['/bin/true', 'CRITICAL', /'\/bin\/true' does not run pgark/],
    ['', 'CRITICAL', /empty/],
    ['pgark wal-push %p', 'WARNING', /cannot tell/],
  ] as const)('archive_command %j -> %s', (cmd, status, detail) => {
    const i = archiveCommandItem(cmd, undefined, target);
    expect(i).toMatchObject({ name: 'archive_command', status });
    expect(i.detail).toMatch(detail);
  });

  it('archive_library wins over archive_command', () => {
    expect(archiveCommandItem('pgark wal-push %p --repo /var/lib/pgark', 'basic_archive', target)).toMatchObject({ status: 'CRITICAL', detail: expect.stringMatching(/archive_library 'basic_archive' is set/) });
  });

  const t = (iso: string) => Date.parse(iso);
  const ok: ArchiverSample = { archivedCount: 10, lastArchivedWal: '00000001000000000000000A', lastArchivedTime: t('2026-01-01T10:00:00Z'), failedCount: 0, lastFailedWal: null, lastFailedTime: null };
  it.each([
    ['no failures', ok, ok, 'OK', /10 segment\(s\) archived, the last 00000001000000000000000A at 2026-01-01T10:00:00Z$/],
    ['nothing yet', { ...ok, archivedCount: 0, lastArchivedWal: null, lastArchivedTime: null }, undefined, 'OK', /nothing archived yet/],
    ['old failures, archived since', { ...ok, failedCount: 3, lastFailedWal: '000000010000000000000005', lastFailedTime: t('2026-01-01T09:00:00Z') }, undefined, 'OK', /3 failure\(s\) .* none since 2026-01-01T09:00:00Z/],
    ['last attempt failed', { ...ok, failedCount: 1, lastFailedWal: '00000001000000000000000B', lastFailedTime: t('2026-01-01T10:05:00Z') }, undefined, 'CRITICAL', /the last archive attempt failed: 00000001000000000000000B at 2026-01-01T10:05:00Z; last success: 00000001000000000000000A/],
    ['failing during the check', ok, { ...ok, failedCount: 2, lastFailedWal: '00000001000000000000000B', lastFailedTime: t('2026-01-01T09:59:00Z') }, 'CRITICAL', /failed 2 time\(s\) during the check, the last on 00000001000000000000000B/],
    ['never archived, failing', { ...ok, archivedCount: 0, lastArchivedWal: null, lastArchivedTime: null, failedCount: 4, lastFailedWal: '000000010000000000000001', lastFailedTime: t('2026-01-01T10:00:00Z') }, undefined, 'CRITICAL', /last success: never/],
  ] as const)('%s', (_what, before, after, status, detail) => {
    const i = archiverItem(before, after);
    expect(i.status).toBe(status);
    expect(i.detail).toMatch(detail);
  });

  it('WAL round trip', () => {
    expect(walRoundTripItem('000000010000000000000007', 1234, 60)).toEqual({ name: 'wal_round_trip', status: 'OK', detail: '000000010000000000000007 reached the repository 1.2s after pg_switch_wal()', seconds: 1.2 });
    expect(walRoundTripItem('000000010000000000000007', undefined, 5)).toMatchObject({ status: 'CRITICAL', detail: expect.stringMatching(/did not reach the repository within 5s/) });
  });
});

describe('backups and WAL continuity', () => {
  const now = Date.parse('2026-01-02T12:00:00Z');
  const at = (hoursAgo: number) => ({ id: '20260101-000000F', stopTime: new Date(now - hoursAgo * H).toISOString() });
  it.each([
    [undefined, 'WARNING', /^none yet \(no backup/],
    [at(1), 'OK', /finished 1h00m ago$/],
    [at(30), 'WARNING', /30h00m ago \(warning above 26h00m\)/],
    [at(60), 'CRITICAL', /60h00m ago \(critical above 50h00m\)/],
  ])('%j', (b, status, detail) => {
    const i = backupAgeItem(b, now, 26 * H, 50 * H);
    expect(i.status).toBe(status);
    expect(i.detail).toMatch(detail);
  });

  it('no backup yet is CRITICAL when told so (--if-no-backup critical); the age thresholds are unchanged', () => {
    expect(backupAgeItem(undefined, now, 26 * H, 50 * H, 'CRITICAL').status).toBe('CRITICAL');
    expect(backupAgeItem(at(1), now, 26 * H, 50 * H, 'CRITICAL').status).toBe('OK');
  });

  it.each([
    [[1, 2, 3], 1, 3, []],
    [[1, 3], 1, 3, [[2, 2]]],
    [[5], 1, 5, [[1, 4]]],
    [[1, 2], 1, 4, [[3, 4]]],
    [[0, 2, 5, 9], 1, 9, [[1, 1], [3, 4], [6, 8]]],
  ])('missingRanges(%j, %s, %s) = %j', (present, from, to, expected) => {
    const got = missingRanges(new Set(present.map(BigInt)), BigInt(from), BigInt(to)).map((r) => [Number(r.first), Number(r.last)]);
    expect(got).toEqual(expected);
  });

  const name = (s: bigint) => `00000001000000000000${s.toString(16).toUpperCase().padStart(4, '0')}`;
  const base = { backupId: 'B1', walStored: false, name };
  it.each([
    ['complete', { from: 3n, present: new Set([1n, 2n, 3n, 4n, 5n]) }, 'OK', /000000010000000000000003\.\.000000010000000000000005 \(3 segment\(s\)\) archived without a gap since backup B1/],
    ['one missing', { from: 3n, present: new Set([3n, 5n, 6n]) }, 'CRITICAL', /1 segment\(s\) missing between 000000010000000000000003 and 000000010000000000000006 since backup B1: 000000010000000000000004;/],
    ['the start missing', { from: 3n, present: new Set([4n, 5n]) }, 'CRITICAL', /: 000000010000000000000003;/],
    ['a range missing', { from: 1n, present: new Set([1n, 9n]) }, 'CRITICAL', /7 segment\(s\) missing .*: 000000010000000000000002\.\.000000010000000000000008;/],
    ['nothing archived', { from: 3n, present: new Set([1n]) }, 'CRITICAL', /none of the WAL of backup B1 from 000000010000000000000003 on is archived/],
    ['stored with the backup, nothing after', { from: 3n, present: new Set<bigint>(), walStored: true }, 'OK', /holds its own WAL/],
  ])('%s', (_what, x, status, detail) => {
    const i = walContinuityItem({ ...base, ...x });
    expect(i.status).toBe(status);
    expect(i.detail).toMatch(detail);
  });

  it('lists at most five missing ranges', () => {
    const present = new Set([0n, 2n, 4n, 6n, 8n, 10n, 12n, 14n]);
    const i = walContinuityItem({ ...base, from: 0n, present });
    expect(i.detail).toMatch(/7 segment\(s\) missing/);
    expect(i.detail).toMatch(/and 2 more range\(s\)/);
  });
});

describe('receiver and slot', () => {
  const now = Date.parse('2026-01-02T12:00:00Z');
  const ago = (s: number) => new Date(now - s * 1000).toISOString();
  it.each([
    [{ state: 'streaming', updatedAt: ago(5), lagBytes: 2048, lagSeconds: 0.4 }, 'OK', /streaming, lag 2\.0 KiB \/ 0s, status 5s old/],
    [{ state: 'streaming', updatedAt: ago(300) }, 'CRITICAL', /not running: its last status \(streaming\) is 5m00s old/],
    [{ state: 'retrying', updatedAt: ago(5), lastError: 'connection refused' }, 'WARNING', /retrying: connection refused/],
    [{ state: 'stopped', updatedAt: ago(3600) }, 'WARNING', /stopped 1h00m ago \(a clean stop\)/],
    [{ state: 'failed', updatedAt: ago(60), lastError: 'slot does not exist' }, 'CRITICAL', /failed 1m00s ago: slot does not exist/],
    [{ state: 'streaming', updatedAt: 'garbage' }, 'CRITICAL', /no valid updatedAt/],
  ])('%j', (s, status, detail) => {
    const i = receiverItem({ name: 'r1', ...s }, now);
    expect(i.name).toBe('receiver r1');
    expect(i.status).toBe(status);
    expect(i.detail).toMatch(detail);
  });

  const slot: SlotRow = { slotType: 'physical', active: true, restartLsn: '0/3000000', walStatus: 'reserved', retainedBytes: 1024 };
  it.each([
    [slot, true, 'OK', /active, retains 1\.0 KiB/],
    [undefined, true, 'CRITICAL', /does not exist/],
    [undefined, false, 'WARNING', /named by receiver 'r1' but not on this server/],
    [{ ...slot, active: false, retainedBytes: 5 * 1024 ** 2 }, true, 'CRITICAL', /not active: .* retains 5\.0 MiB/],
    [{ ...slot, retainedBytes: 2 * 1024 ** 3 }, true, 'WARNING', /retains 2\.0 GiB of WAL \(warning above 1\.0 GiB\)/],
    [{ ...slot, walStatus: 'lost' }, true, 'CRITICAL', /wal_status lost/],
    [{ ...slot, walStatus: 'unreserved' }, true, 'CRITICAL', /unreserved/],
    [{ ...slot, slotType: 'logical' }, true, 'CRITICAL', /logical slot/],
    [{ ...slot, restartLsn: null, retainedBytes: null }, true, 'OK', /retains nothing yet/],
  ])('%j (required %s) -> %s', (row, required, status, detail) => {
    const i = slotItem('s1', row, required, undefined, 'r1');
    expect(i.name).toBe('slot s1');
    expect(i.status).toBe(status);
    expect(i.detail).toMatch(detail);
  });
});
