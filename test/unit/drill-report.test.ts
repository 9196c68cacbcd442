import { describe, expect, it } from 'vitest';
import { IntegrityError, InvalidInputError } from '../../src/common/errors.js';
import {
  describeTarget,
  drillTargetFlags,
  drillTargetOf,
  formatDrillList,
  formatDrillReport,
  formatSeconds,
  isoMicros,
  parseDrillReport,
  parseDrillTarget,
  recoveryTargetOf,
  rpoOf,
  rtoOf,
  secondsBetween,
  type DrillReport,
} from '../../src/drill/drill-report.js';
import { validateTarget } from '../../src/restore/recovery-conf.js';

const passed: DrillReport = {
  format: 1,
  id: '20261123-162000D',
  stanza: 'main',
  host: 'db1',
  startedAt: '2026-11-23T16:20:00.000Z',
  finishedAt: '2026-11-23T16:21:30.000Z',
  backup: { id: '20261123-020000F', type: 'full', stopTime: '2026-11-23T02:10:00.000Z' },
  target: { kind: 'latest' },
  result: 'passed',
  phases: { restoreSec: 60.5, replaySec: 20.25, promoteSec: 0.25, checksSec: 9 },
  rtoSec: 81,
  rpo: { lastReplayedCommit: '2026-11-23T16:19:58.000001Z', newestArchivedCommit: '2026-11-23T16:19:58.000001Z', seconds: 0 },
  timeline: 2,
  reachedLsn: '0/5000000',
  checks: [
    { name: 'pg_amcheck', ok: true, skipped: true, detail: 'skipped: pg_amcheck not found' },
    { name: 'table counts', ok: true, detail: '1 table(s) in 1 database(s), 5 rows' },
  ],
  tables: [{ database: 'postgres', table: 'public.t', rows: 5 }],
};

describe('parseDrillTarget', () => {
  it.each([
    ['latest', { kind: 'latest' }],
    [' immediate ', { kind: 'immediate' }],
    ['time=2026-11-23 16:20:00+00', { kind: 'time', value: '2026-11-23 16:20:00+00' }],
    ['name=before_upgrade', { kind: 'name', value: 'before_upgrade' }],
    ['lsn=0/3000060', { kind: 'lsn', value: '0/3000060' }],
    ['xid=743', { kind: 'xid', value: '743' }],
    ['name=a=b', { kind: 'name', value: 'a=b' }],
  ])('%j', (spec, want) => {
    expect(parseDrillTarget(spec)).toEqual(want);
  });

  it.each([
    ['time', /'time' needs a value/],
    ['yesterday', /unknown target/],
    ['when=now', /unknown target kind 'when'/],
    ['lsn=', /empty value/],
    ['latest=1', /unknown target kind 'latest'/],
  ])('refuses %j', (spec, re) => {
    expect(() => parseDrillTarget(spec)).toThrow(InvalidInputError);
    expect(() => parseDrillTarget(spec)).toThrow(re);
  });
});

describe('recoveryTargetOf', () => {
  it.each([
    [{ kind: 'latest' }, false, {}],
    [{ kind: 'immediate' }, false, { immediate: true, action: 'promote' }],
    [{ kind: 'time', value: '2026-11-23 16:20:00+00' }, false, { time: '2026-11-23 16:20:00+00', action: 'promote' }],
    [{ kind: 'lsn', value: '0/3000060' }, true, { lsn: '0/3000060', action: 'promote', exclusive: true }],
    [{ kind: 'name', value: 'p1' }, false, { name: 'p1', action: 'promote' }],
    [{ kind: 'xid', value: '743' }, false, { xid: '743', action: 'promote' }],
  ] as const)('%j exclusive=%s', (t, exclusive, want) => {
    const r = recoveryTargetOf(t, exclusive);
    expect(r).toEqual(want);
    expect(validateTarget(r)).toEqual(want); // what restore accepts
  });

  it('refuses --target-exclusive without a time, lsn or xid', () => {
    expect(() => recoveryTargetOf({ kind: 'name', value: 'p' }, true)).toThrow(/--target-exclusive applies/);
    expect(() => recoveryTargetOf({ kind: 'latest' }, true)).toThrow(/--target-exclusive applies/);
  });

  it('leaves value checks to restore', () => {
    expect(() => validateTarget(recoveryTargetOf({ kind: 'lsn', value: 'nope' }))).toThrow(/--target-lsn/);
  });

  it('describes a target', () => {
    expect(describeTarget({ kind: 'latest' })).toBe('latest');
    expect(describeTarget({ kind: 'name', value: 'p1' })).toBe('name p1');
  });
});

describe('RTO and RPO arithmetic', () => {
  it('seconds between two instants, ms precision, never negative', () => {
    expect(secondsBetween(1000, 3500)).toBe(2.5);
    expect(secondsBetween(1000, 1001)).toBe(0.001);
    expect(secondsBetween(2000, 1000)).toBe(0);
  });

  it.each([
    [{ restoreSec: 10 }, undefined],
    [{ restoreSec: 10, replaySec: 5 }, undefined],
    [{ restoreSec: 10.1, replaySec: 5.2, promoteSec: 0.3 }, 15.6],
    [{ restoreSec: 0, replaySec: 0, promoteSec: 0, checksSec: 99 }, 0],
  ])('rto of %j', (phases, want) => {
    expect(rtoOf(phases)).toBe(want);
  });

  it.each([
    ['2026-11-23T16:20:00Z', 1795450800000000n],
    ['2026-11-23T16:20:00.5Z', 1795450800500000n],
    ['2026-11-23T16:20:00.000001Z', 1795450800000001n],
    ['2026-11-23T16:20:00.123456Z', 1795450800123456n],
  ])('isoMicros(%s)', (text, want) => {
    expect(isoMicros(text)).toBe(want);
  });

  it.each(['2026-11-23 16:20:00', '2026-11-23T16:20:00+01:00', '2026-11-23T16:20:00.1234567Z', 'x'])('isoMicros refuses %j', (t) => {
    expect(() => isoMicros(t)).toThrow(InvalidInputError);
  });

  it.each([
    ['equal', { lastReplayedCommit: '2026-11-23T16:20:00.000001Z', newestArchivedCommit: '2026-11-23T16:20:00.000001Z' }, 0, undefined],
    ['behind by 90.5 s', { lastReplayedCommit: '2026-11-23T16:18:30.000000Z', newestArchivedCommit: '2026-11-23T16:20:00.500000Z' }, 90.5, undefined],
    ['one microsecond', { lastReplayedCommit: '2026-11-23T16:20:00.000000Z', newestArchivedCommit: '2026-11-23T16:20:00.000001Z' }, 0.000001, undefined],
    ['replayed newer than found', { lastReplayedCommit: '2026-11-23T16:20:01Z', newestArchivedCommit: '2026-11-23T16:20:00Z' }, 0, /newer than the newest/],
    ['nothing replayed: from the backup stop', { newestArchivedCommit: '2026-11-23T16:20:00Z', backupStopTime: '2026-11-23T16:10:00.000Z' }, 600, /measured from the backup stop/],
    ['nothing replayed, commit before the backup stop', { newestArchivedCommit: '2026-11-23T16:00:00Z', backupStopTime: '2026-11-23T16:10:00.000Z' }, 0, /backup stop/],
    ['no archived commit', { lastReplayedCommit: '2026-11-23T16:20:00Z', newestNote: 'pg_waldump not found' }, undefined, /^unknown: pg_waldump not found$/],
    ['no archived commit, no reason', { lastReplayedCommit: '2026-11-23T16:20:00Z' }, undefined, /^unknown: no commit found/],
  ] as Array<[string, Parameters<typeof rpoOf>[0], number | undefined, RegExp | undefined]>)('rpo: %s', (_name, input, seconds, note) => {
    const r = rpoOf(input);
    expect(r.seconds).toBe(seconds);
    if (note) expect(r.note).toMatch(note);
    else expect(r.note).toBeUndefined();
    expect(r.lastReplayedCommit).toBe(input.lastReplayedCommit);
    expect(r.newestArchivedCommit).toBe(input.newestArchivedCommit);
  });
});

describe('parseDrillReport', () => {
  it('round-trips a report', () => {
    expect(parseDrillReport(JSON.stringify(passed), 'k')).toEqual(passed);
    const failed: DrillReport = { ...passed, result: 'failed', failure: 'restore of backup x failed: boom', phases: { restoreSec: 1 }, rtoSec: undefined, rpo: { note: 'not measured' }, checks: [] };
    expect(parseDrillReport(JSON.stringify(failed), 'k')).toEqual(JSON.parse(JSON.stringify(failed)));
  });

  it('accepts a report without a format (written by another tool version) and unknown extra fields', () => {
    const { format: _f, ...rest } = passed;
    expect(parseDrillReport(JSON.stringify({ ...rest, extra: 1 }), 'k').id).toBe(passed.id);
  });

  const broken: Array<[string, unknown, RegExp]> = [
    ['not JSON', '{', /invalid JSON/],
    ['an array', [], /not an object/],
    ['a future format', { ...passed, format: 2 }, /format 2 is not supported/],
    ['no id', { ...passed, id: undefined }, /id missing/],
    ['a bad id', { ...passed, id: '20261123-162000F' }, /invalid id/],
    ['a bad time', { ...passed, startedAt: 'soon' }, /startedAt is not a time/],
    ['a bad result', { ...passed, result: 'ok' }, /result/],
    ['a bad target', { ...passed, target: { kind: 'tomorrow' } }, /invalid target/],
    ['bad phases', { ...passed, phases: { replaySec: 1 } }, /invalid phases/],
    ['a bad rpo', { ...passed, rpo: { seconds: 'zero' } }, /invalid rpo/],
    ['bad checks', { ...passed, checks: [{ name: 'x', ok: 'yes', detail: '' }] }, /invalid checks/],
    ['bad tables', { ...passed, tables: [{ database: 'd', table: 't', rows: '5' }] }, /invalid tables/],
    ['a bad backup', { ...passed, backup: { id: 1 } }, /invalid backup/],
  ];
  it.each(broken)('refuses %s, naming where', (_n, v, re) => {
    const text = typeof v === 'string' ? v : JSON.stringify(v);
    expect(() => parseDrillReport(text, 'main/drill/x.json')).toThrow(IntegrityError);
    expect(() => parseDrillReport(text, 'main/drill/x.json')).toThrow(/main\/drill\/x\.json/);
    expect(() => parseDrillReport(text, 'main/drill/x.json')).toThrow(re);
  });
});

describe('human text', () => {
  it.each([
    [0, '0s'],
    [0.25, '0.3s'],
    [9.94, '9.9s'],
    [12.4, '12s'],
    [75, '1m15s'],
    [3599.6, '1h00m00s'],
    [4000, '1h06m40s'],
  ])('formatSeconds(%s) = %s', (s, want) => {
    expect(formatSeconds(s)).toBe(want);
  });

  it('renders a passed report', () => {
    const t = formatDrillReport(passed);
    expect(t).toMatch(/^drill 20261123-162000D PASSED {2}\(stanza main, host db1\)/);
    expect(t).toMatch(/backup {4}20261123-020000F \(full, stopped 2026-11-23T02:10:00.000Z\)/);
    expect(t).toMatch(/RTO {7}1m21s {2}\(restore 1m01s, replay 20s, promote 0.3s; checks 9s\)/);
    expect(t).toMatch(/RPO {7}0s {2}\(last replayed commit 2026-11-23T16:19:58.000001Z, newest archived commit 2026-11-23T16:19:58.000001Z\)/);
    expect(t).toMatch(/SKIPPED pg_amcheck: skipped: pg_amcheck not found/);
    expect(t).toMatch(/ok {6}table counts/);
    expect(t).toMatch(/postgres\.public\.t {2}5/);
    expect(t).not.toMatch(/failure/);
  });

  it('renders a failed report with its failure first and unmeasured phases', () => {
    const t = formatDrillReport({ ...passed, result: 'failed', failure: 'restore of backup x failed: damaged', phases: { restoreSec: 3 }, rtoSec: undefined,
      rpo: { note: 'not measured: the copy was not promoted' }, checks: [], tables: undefined, timeline: undefined, reachedLsn: undefined });
    const lines = t.split('\n');
    expect(lines[0]).toMatch(/FAILED/);
    expect(lines[1]).toBe('  failure   restore of backup x failed: damaged');
    expect(t).toMatch(/RTO {7}not measured {2}\(restore 3s, replay -, promote -; checks -\)/);
    expect(t).toMatch(/RPO {7}unknown\n {12}not measured: the copy was not promoted/);
    expect(t).not.toMatch(/reached/);
  });

  it('lists reports, one line each', () => {
    const failed = { ...passed, id: '20261124-162000D', result: 'failed' as const, failure: 'check failed: sql (c.sql:2) SELECT\n false: returned false', rtoSec: undefined, rpo: {} };
    const lines = formatDrillList([failed, passed]).split('\n');
    expect(lines[0]).toMatch(/^id\s+result\s+target\s+backup\s+RTO\s+RPO\s+failure$/);
    expect(lines[1]).toMatch(/^20261124-162000D\s+failed\s+latest\s+20261123-020000F\s+-\s+unknown\s+check failed: sql \(c\.sql:2\) SELECT false: returned false$/);
    expect(lines[2]).toMatch(/^20261123-162000D\s+passed\s+latest\s+20261123-020000F\s+1m21s\s+0s$/);
  });
});

describe('drillTargetOf (the drill flags spelt as restore\'s)', () => {
  it.each<[Parameters<typeof drillTargetOf>[0], ReturnType<typeof drillTargetOf>]>([
    [{}, { kind: 'latest' }],
    [{ targetImmediate: true }, { kind: 'immediate' }],
    [{ targetTime: ' 2026-11-23 16:20:00+00 ' }, { kind: 'time', value: '2026-11-23 16:20:00+00' }],
    [{ targetName: 'before_migration' }, { kind: 'name', value: 'before_migration' }],
    [{ targetLsn: '0/5000000' }, { kind: 'lsn', value: '0/5000000' }],
    [{ targetXid: '123' }, { kind: 'xid', value: '123' }],
  ])('%j -> %j, and back', (flags, want) => {
    expect(drillTargetOf(flags)).toEqual(want);
    expect(drillTargetOf(drillTargetFlags(want))).toEqual(want);
  });

  it.each<[Parameters<typeof drillTargetOf>[0], RegExp]>([
    [{ targetTime: '2026-11-23', targetLsn: '0/1' }, /one recovery target at most: --target-time and --target-lsn given/],
    [{ targetXid: '1', targetImmediate: true }, /--target-xid and --target-immediate/],
    [{ targetName: '  ' }, /invalid --target-name: empty value/],
  ])('%j is refused', (flags, why) => {
    expect(() => drillTargetOf(flags)).toThrow(InvalidInputError);
    expect(() => drillTargetOf(flags)).toThrow(why);
  });

  it('every old --target spelling maps onto the flags', () => {
    for (const spec of ['latest', 'immediate', 'time=2026-11-23 16:20:00+00', 'name=n', 'lsn=0/1', 'xid=7']) {
      expect(drillTargetOf(drillTargetFlags(parseDrillTarget(spec)))).toEqual(parseDrillTarget(spec));
    }
  });
});
