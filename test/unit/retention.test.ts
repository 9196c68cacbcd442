import { describe, expect, it } from 'vitest';
import type { BackupInfo } from '../../src/catalog/backup-info.js';
import {
  EXPIRE_REASON,
  checkDelete,
  isoWeekKey,
  parseDuration,
  parseRetentionCount,
  planRetention,
  walRemovable,
  type RetentionPlan,
  type RetentionPolicy,
} from '../../src/catalog/retention.js';
import { InvalidInputError, NotFoundError } from '../../src/common/errors.js';
import { formatLsn, lsnToSegment, parseLsn, segmentName } from '../../src/wal/segment-name.js';

const MiB = 1024 * 1024;
const SEG = 16 * MiB;
const SEC = 1000;
const MIN = 60 * SEC;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
const NOW = new Date('2026-11-30T12:00:00.000Z');
const NO_PINS: ReadonlySet<string> = new Set();

// ---------------------------------------------------------------------------
// Factory
// ---------------------------------------------------------------------------

interface Spec {
  id: string;
  /** Parent backup (makes an incremental). */
  parent?: BackupInfo;
  /** Start LSN 'X/Y'. */
  lsn: string;
  /** Stop time (ISO); start time is 10 minutes earlier unless `start` is given. */
  stop: string;
  start?: string;
  tl?: number;
  walRangeFirst?: string;
}

function wal(lsn: string, tl: number): string {
  return segmentName(lsnToSegment(parseLsn(lsn), tl, SEG), SEG);
}

function mk(s: Spec): BackupInfo {
  const tl = s.tl ?? 1;
  const stopLsn = formatLsn(parseLsn(s.lsn) + 0x100000n);
  const start = s.start ?? new Date(Date.parse(s.stop) - 10 * MIN).toISOString();
  const b: BackupInfo = {
    format: 1,
    id: s.id,
    type: s.parent ? 'incr' : 'full',
    chain: s.parent ? [...s.parent.chain, s.id] : [s.id],
    start: { time: start, lsn: s.lsn, timeline: tl, walFile: wal(s.lsn, tl) },
    stop: { time: s.stop, lsn: stopLsn, timeline: tl, walFile: wal(stopLsn, tl) },
    walRange: { first: s.walRangeFirst ?? wal(s.lsn, tl), last: wal(stopLsn, tl) },
    walStored: false,
    pgVersion: 17,
    systemIdentifier: '7000000000000000001',
    dataChecksums: true,
    fromStandby: false,
    size: { original: 1, stored: 1, files: 1, objects: 1 },
    durationMs: 10 * MIN,
    checksumFailures: 0,
    codec: 'zstd',
    manifest: { key: `backup/${s.id}/manifest`, sha256: '0'.repeat(64), size: 1 },
    pgarkVersion: '0.1.0',
    host: 'db1',
  };
  if (s.parent) b.parent = s.parent.id;
  return b;
}

/**
 * A series of backups, one WAL segment apart in LSN order equal to list order:
 * [id, stop time, parent id?]. Parent ids refer to earlier entries.
 */
function series(rows: Array<[string, string, string?]>): BackupInfo[] {
  const out: BackupInfo[] = [];
  rows.forEach(([id, stop, parentId], i) => {
    const parent = parentId === undefined ? undefined : out.find((b) => b.id === parentId);
    if (parentId !== undefined && parent === undefined) throw new Error(`test bug: no ${parentId}`);
    out.push(mk({ id, stop, lsn: formatLsn(BigInt(i + 2) * BigInt(SEG) + 0x28n), ...(parent ? { parent } : {}) }));
  });
  return out;
}

function keepIds(p: RetentionPlan): string[] {
  return p.keep.map((k) => k.id);
}
function expireIds(p: RetentionPlan): string[] {
  return p.expire.map((e) => e.id);
}
function plan(backups: BackupInfo[], policy: RetentionPolicy, pins: ReadonlySet<string> = NO_PINS, now = NOW): RetentionPlan {
  return planRetention(backups, pins, policy, now, SEG);
}
function shuffled<T>(xs: T[]): T[] {
  // deterministic: reverse, then rotate by 2
  const r = [...xs].reverse();
  return [...r.slice(2), ...r.slice(0, 2)];
}

// ---------------------------------------------------------------------------
// Policy validation
// ---------------------------------------------------------------------------

describe('policy validation', () => {
  it('refuses a policy with no rule, even with no backups', () => {
    expect(() => plan([], {})).toThrow(InvalidInputError);
    expect(() => plan(series([['F1', '2026-11-01T00:00:00Z']]), {})).toThrow(
      'no retention policy: set retain-full, retain-window or retain-daily/weekly/monthly',
    );
    expect(() =>
      plan([], { retainFull: undefined, retainWindowMs: undefined, retainDaily: undefined }),
    ).toThrow('no retention policy');
  });

  it.each<[RetentionPolicy, string]>([
    [{ retainFull: 0 }, 'invalid retain-full 0: expected a positive integer'],
    [{ retainFull: -1 }, 'invalid retain-full -1'],
    [{ retainFull: 1.5 }, 'invalid retain-full 1.5'],
    [{ retainDaily: 0 }, 'invalid retain-daily 0'],
    [{ retainWeekly: Number.NaN }, 'invalid retain-weekly NaN'],
    [{ retainMonthly: -3 }, 'invalid retain-monthly -3'],
    [{ retainWindowMs: 0 }, 'invalid retain-window 0: expected a positive duration'],
    [{ retainWindowMs: -5 }, 'invalid retain-window -5'],
    [{ retainWindowMs: Number.POSITIVE_INFINITY }, 'invalid retain-window Infinity'],
    [{ retainFull: 2, retainDaily: 0 }, 'invalid retain-daily 0'],
  ])('rejects %j', (policy, message) => {
    expect(() => plan([], policy)).toThrow(InvalidInputError);
    expect(() => plan([], policy)).toThrow(message);
  });

  it('an empty catalog with a policy plans nothing', () => {
    expect(plan([], { retainFull: 1 })).toEqual({ keep: [], expire: [], walKeepFrom: null, warnings: [] });
  });

  it('refuses duplicate ids and bad LSNs / times / segment size', () => {
    const [a] = series([['A', '2026-11-01T00:00:00Z']]);
    if (a === undefined) throw new Error('test bug');
    expect(() => plan([a, { ...a }], { retainFull: 1 })).toThrow('backup A appears twice in the catalog');
    expect(() => plan([{ ...a, start: { ...a.start, lsn: 'zz' } }], { retainFull: 1 })).toThrow(
      "backup A: invalid LSN 'zz'",
    );
    expect(() => plan([{ ...a, stop: { ...a.stop, time: 'yesterday' } }], { retainFull: 1 })).toThrow(
      "backup A: invalid stop time 'yesterday'",
    );
    expect(() => planRetention([a], NO_PINS, { retainFull: 1 }, NOW, 3 * MiB)).toThrow('invalid WAL segment size');
    expect(() => planRetention([a], NO_PINS, { retainFull: 1 }, new Date('nope'), SEG)).toThrow('invalid current time');
  });
});

// ---------------------------------------------------------------------------
// retain-full
// ---------------------------------------------------------------------------

describe('retain-full', () => {
  const backups = series([
    ['F1', '2026-11-01T01:00:00Z'],
    ['I1a', '2026-11-02T01:00:00Z', 'F1'],
    ['F2', '2026-11-08T01:00:00Z'],
    ['I2a', '2026-11-09T01:00:00Z', 'F2'],
    ['I2b', '2026-11-10T01:00:00Z', 'I2a'],
    ['F3', '2026-11-15T01:00:00Z'],
    ['I3a', '2026-11-16T01:00:00Z', 'F3'],
  ]);

  it('keeps the newest N fulls and every incremental of their chains', () => {
    const p = plan(backups, { retainFull: 2 });
    expect(p.keep).toEqual([
      { id: 'F2', reasons: ['retain-full (2 of 2)', 'parent of I2a'] },
      { id: 'I2a', reasons: ['retain-full (chain of F2)', 'parent of I2b'] },
      { id: 'I2b', reasons: ['retain-full (chain of F2)'] },
      { id: 'F3', reasons: ['retain-full (1 of 2)', 'parent of I3a'] },
      { id: 'I3a', reasons: ['newest backup', 'retain-full (chain of F3)'] },
    ]);
    expect(p.expire).toEqual([
      { id: 'I1a', reason: EXPIRE_REASON },
      { id: 'F1', reason: EXPIRE_REASON },
    ]);
    expect(p.walKeepFrom).toEqual({ segment: '000000010000000000000004', backup: 'F2' });
    expect(p.warnings).toEqual([]);
  });

  it.each<[number, string[], string[]]>([
    [1, ['F3', 'I3a'], ['I2b', 'I2a', 'F2', 'I1a', 'F1']],
    [2, ['F2', 'I2a', 'I2b', 'F3', 'I3a'], ['I1a', 'F1']],
    [3, ['F1', 'I1a', 'F2', 'I2a', 'I2b', 'F3', 'I3a'], []],
    [10, ['F1', 'I1a', 'F2', 'I2a', 'I2b', 'F3', 'I3a'], []],
  ])('retain-full %i keeps %j, expires %j', (n, keep, expire) => {
    const p = plan(backups, { retainFull: n });
    expect(keepIds(p)).toEqual(keep);
    expect(expireIds(p)).toEqual(expire);
  });

  it('does not depend on the order of the input array', () => {
    expect(plan(shuffled(backups), { retainFull: 2 })).toEqual(plan(backups, { retainFull: 2 }));
    expect(plan([...backups].reverse(), { retainDaily: 3, retainWindowMs: 10 * DAY })).toEqual(
      plan(backups, { retainDaily: 3, retainWindowMs: 10 * DAY }),
    );
  });
});

// ---------------------------------------------------------------------------
// retain-window
// ---------------------------------------------------------------------------

describe('retain-window', () => {
  // now = 2026-11-30T12:00Z, window 1 day: cutoff = 2026-11-29T12:00:00.000Z
  const cutoff = '2026-11-29T12:00:00.000Z';
  const inside = `retain-window (stopped at or after ${cutoff})`;
  const cover = `retain-window (covers the window start ${cutoff})`;

  it.each<[string, Array<[string, string, string?]>, Array<[string, string[]]>, string[]]>([
    [
      'a backup stopping exactly at now-W is inside; the newest before it still covers the start',
      [
        ['A', '2026-11-27T12:00:00Z'],
        ['B', '2026-11-28T12:00:00Z'],
        ['C', '2026-11-29T12:00:00.000Z'],
        ['D', '2026-11-30T00:00:00Z'],
      ],
      [
        ['B', [cover]],
        ['C', [inside]],
        ['D', ['newest backup', inside]],
      ],
      ['A'],
    ],
    [
      'a backup stopping 1 ms before now-W is the cover',
      [
        ['A', '2026-11-27T12:00:00Z'],
        ['B', '2026-11-28T12:00:00Z'],
        ['C', '2026-11-29T11:59:59.999Z'],
        ['D', '2026-11-30T00:00:00Z'],
      ],
      [
        ['C', [cover]],
        ['D', ['newest backup', inside]],
      ],
      ['B', 'A'],
    ],
    [
      'the cover is an incremental: its chain is kept',
      [
        ['F1', '2026-11-20T00:00:00Z'],
        ['I1', '2026-11-27T00:00:00Z', 'F1'],
        ['I2', '2026-11-28T00:00:00Z', 'I1'],
        ['F2', '2026-11-28T06:00:00Z'],
        ['I3', '2026-11-30T00:00:00Z', 'F2'],
      ],
      [
        ['F2', [cover, 'parent of I3']],
        ['I3', ['newest backup', inside]],
      ],
      ['I2', 'I1', 'F1'],
    ],
    [
      'the cover is an incremental of an older full',
      [
        ['F1', '2026-11-20T00:00:00Z'],
        ['I1', '2026-11-27T00:00:00Z', 'F1'],
        ['I2', '2026-11-29T00:00:00Z', 'I1'],
        ['F2', '2026-11-30T06:00:00Z'],
      ],
      [
        ['F1', ['parent of I1']],
        ['I1', ['parent of I2']],
        ['I2', [cover]],
        ['F2', ['newest backup', inside]],
      ],
      [],
    ],
  ])('%s', (_name, rows, keep, expire) => {
    const p = plan(series(rows), { retainWindowMs: DAY });
    expect(p.keep).toEqual(keep.map(([id, reasons]) => ({ id, reasons })));
    expect(expireIds(p)).toEqual(expire);
    expect(p.warnings).toEqual([]);
  });

  it('with no backup before the window keeps everything and warns', () => {
    const p = plan(
      series([
        ['A', '2026-11-29T12:00:00.001Z'],
        ['B', '2026-11-30T00:00:00Z'],
      ]),
      { retainWindowMs: DAY },
    );
    expect(p.keep).toEqual([
      { id: 'A', reasons: [inside] },
      { id: 'B', reasons: ['newest backup', inside] },
    ]);
    expect(p.expire).toEqual([]);
    expect(p.warnings).toEqual([
      `retain-window: no backup stopped before ${cutoff}; points in time before 2026-11-29T12:00:00.001Z are not restorable`,
    ]);
  });

  it('a window behind every backup keeps only the newest (the cover)', () => {
    const p = plan(
      series([
        ['A', '2026-10-01T00:00:00Z'],
        ['B', '2026-10-02T00:00:00Z'],
      ]),
      { retainWindowMs: DAY },
    );
    expect(p.keep).toEqual([{ id: 'B', reasons: ['newest backup', cover] }]);
    expect(expireIds(p)).toEqual(['A']);
  });
});

// ---------------------------------------------------------------------------
// Grandfather-father-son
// ---------------------------------------------------------------------------

describe('isoWeekKey', () => {
  it.each([
    ['2024-12-27T12:00:00Z', '2024-W52'],
    ['2024-12-30T00:00:00Z', '2025-W01'],
    ['2025-12-28T23:59:59.999Z', '2025-W52'],
    ['2025-12-29T00:00:00Z', '2026-W01'],
    ['2026-01-01T12:00:00Z', '2026-W01'],
    ['2026-01-05T00:00:00Z', '2026-W02'],
    ['2026-11-29T23:00:00Z', '2026-W48'],
    ['2026-11-30T01:00:00Z', '2026-W49'],
    ['2026-12-31T00:00:00Z', '2026-W53'],
    ['2027-01-03T23:59:59Z', '2026-W53'],
    ['2027-01-04T00:00:00Z', '2027-W01'],
    ['2021-01-03T00:00:00Z', '2020-W53'],
    ['2021-01-04T00:00:00Z', '2021-W01'],
  ])('%s is in %s', (time, key) => {
    expect(isoWeekKey(Date.parse(time))).toBe(key);
  });
});

describe('retain-daily / weekly / monthly', () => {
  it('daily: the newest backup (by stop) of each of the last N days that have one; empty days do not count', () => {
    const backups = series([
      ['d25', '2026-11-25T10:00:00Z'],
      ['d27a', '2026-11-27T01:00:00Z'],
      ['d27b', '2026-11-27T23:59:59.999Z'],
      ['d28', '2026-11-28T00:00:00Z'],
      // no backup on the 29th
      ['d30a', '2026-11-30T01:00:00Z'],
      ['d30b', '2026-11-30T02:00:00Z'],
    ]);
    const p = plan(backups, { retainDaily: 3 });
    expect(p.keep).toEqual([
      { id: 'd27b', reasons: ['retain-daily 2026-11-27'] },
      { id: 'd28', reasons: ['retain-daily 2026-11-28'] },
      { id: 'd30b', reasons: ['newest backup', 'retain-daily 2026-11-30'] },
    ]);
    expect(expireIds(p)).toEqual(['d30a', 'd27a', 'd25']);
  });

  it('daily: the newest of a day is by stop time, not by start LSN', () => {
    // X started first (lower LSN) but stopped after Y on the same day.
    const x = mk({ id: 'X', lsn: '0/2000028', start: '2026-11-28T01:00:00Z', stop: '2026-11-28T09:00:00Z' });
    const y = mk({ id: 'Y', lsn: '0/3000028', start: '2026-11-28T02:00:00Z', stop: '2026-11-28T03:00:00Z' });
    const z = mk({ id: 'Z', lsn: '0/4000028', stop: '2026-11-29T03:00:00Z' });
    const p = plan([z, y, x], { retainDaily: 2 });
    expect(p.keep).toEqual([
      { id: 'X', reasons: ['retain-daily 2026-11-28'] },
      { id: 'Z', reasons: ['newest backup', 'retain-daily 2026-11-29'] },
    ]);
    expect(expireIds(p)).toEqual(['Y']);
  });

  it('weekly: ISO weeks across a year boundary', () => {
    const backups = series([
      ['w2024-52', '2024-12-27T12:00:00Z'], // 2024-W52
      ['w2025-01', '2024-12-30T12:00:00Z'], // 2025-W01
      ['sun', '2025-12-28T12:00:00Z'], // 2025-W52
      ['mon', '2025-12-29T12:00:00Z'], // 2026-W01
      ['thu', '2026-01-01T12:00:00Z'], // 2026-W01
      ['next-mon', '2026-01-05T12:00:00Z'], // 2026-W02
    ]);
    const p = plan(backups, { retainWeekly: 3 }, NO_PINS, new Date('2026-01-06T00:00:00Z'));
    expect(p.keep).toEqual([
      { id: 'sun', reasons: ['retain-weekly 2025-W52'] },
      { id: 'thu', reasons: ['retain-weekly 2026-W01'] },
      { id: 'next-mon', reasons: ['newest backup', 'retain-weekly 2026-W02'] },
    ]);
    expect(expireIds(p)).toEqual(['mon', 'w2025-01', 'w2024-52']);

    // with 4 weeks, the 2024-12-30 backup counts for 2025-W01 (not 2024)
    expect(keepIds(plan(backups, { retainWeekly: 4 }))).toEqual(['w2025-01', 'sun', 'thu', 'next-mon']);
    expect(keepIds(plan(backups, { retainWeekly: 5 }))).toEqual(['w2024-52', 'w2025-01', 'sun', 'thu', 'next-mon']);
  });

  it('monthly: across a year boundary, months without backups do not count', () => {
    const backups = series([
      ['sep', '2025-09-15T00:00:00Z'],
      // no backup in October
      ['nov', '2025-11-30T23:59:59Z'],
      ['dec-a', '2025-12-01T00:00:00Z'],
      ['dec-b', '2025-12-31T23:59:59.999Z'],
      ['jan', '2026-01-01T00:00:00Z'],
    ]);
    const p = plan(backups, { retainMonthly: 3 });
    expect(p.keep).toEqual([
      { id: 'nov', reasons: ['retain-monthly 2025-11'] },
      { id: 'dec-b', reasons: ['retain-monthly 2025-12'] },
      { id: 'jan', reasons: ['newest backup', 'retain-monthly 2026-01'] },
    ]);
    expect(expireIds(p)).toEqual(['dec-a', 'sep']);
    expect(keepIds(plan(backups, { retainMonthly: 4 }))).toEqual(['sep', 'nov', 'dec-b', 'jan']);
  });

  it('combined daily + weekly + monthly, with incrementals keeping their chains', () => {
    const backups = series([
      ['F-oct', '2026-10-20T01:00:00Z'],
      ['I-oct', '2026-10-31T01:00:00Z', 'F-oct'],
      ['F-nov', '2026-11-16T01:00:00Z'], // Mon, 2026-W47
      ['I-nov1', '2026-11-22T01:00:00Z', 'F-nov'], // Sun, 2026-W47
      ['I-nov2', '2026-11-28T01:00:00Z', 'I-nov1'], // Sat, 2026-W48
      ['I-nov3', '2026-11-29T01:00:00Z', 'I-nov2'], // Sun, 2026-W48
      ['I-nov4', '2026-11-30T01:00:00Z', 'I-nov3'], // Mon, 2026-W49
    ]);
    const p = plan(backups, { retainDaily: 2, retainWeekly: 2, retainMonthly: 2 });
    expect(p.keep).toEqual([
      { id: 'F-oct', reasons: ['parent of I-oct'] },
      { id: 'I-oct', reasons: ['retain-monthly 2026-10'] },
      { id: 'F-nov', reasons: ['parent of I-nov1'] },
      { id: 'I-nov1', reasons: ['parent of I-nov2'] },
      { id: 'I-nov2', reasons: ['parent of I-nov3'] },
      { id: 'I-nov3', reasons: ['retain-daily 2026-11-29', 'retain-weekly 2026-W48', 'parent of I-nov4'] },
      {
        id: 'I-nov4',
        reasons: ['newest backup', 'retain-daily 2026-11-30', 'retain-weekly 2026-W49', 'retain-monthly 2026-11'],
      },
    ]);
    expect(p.expire).toEqual([]);
    expect(p.walKeepFrom).toEqual({ segment: '000000010000000000000002', backup: 'F-oct' });
  });
});

// ---------------------------------------------------------------------------
// pins, newest, orphans
// ---------------------------------------------------------------------------

describe('pins, newest, orphans', () => {
  const backups = series([
    ['F1', '2026-11-01T00:00:00Z'],
    ['I1a', '2026-11-02T00:00:00Z', 'F1'],
    ['I1b', '2026-11-03T00:00:00Z', 'I1a'],
    ['I1c', '2026-11-04T00:00:00Z', 'I1b'],
    ['F2', '2026-11-10T00:00:00Z'],
  ]);

  it('a pinned incremental keeps its whole chain; missing pins are reported', () => {
    const p = plan(backups, { retainFull: 1 }, new Set(['I1b', 'gone']));
    expect(p.keep).toEqual([
      { id: 'F1', reasons: ['parent of I1a'] },
      { id: 'I1a', reasons: ['parent of I1b'] },
      { id: 'I1b', reasons: ['pinned'] },
      { id: 'F2', reasons: ['newest backup', 'retain-full (1 of 1)'] },
    ]);
    expect(p.expire).toEqual([{ id: 'I1c', reason: EXPIRE_REASON }]);
    expect(p.warnings).toEqual(['pinned backup gone does not exist']);
    expect(p.walKeepFrom).toEqual({ segment: '000000010000000000000002', backup: 'F1' });
  });

  it('a pinned full keeps nothing but itself', () => {
    const p = plan(backups, { retainFull: 1 }, new Set(['F1']));
    expect(keepIds(p)).toEqual(['F1', 'F2']);
    expect(expireIds(p)).toEqual(['I1c', 'I1b', 'I1a']);
  });

  it('the newest backup is kept whatever the policy, with its chain', () => {
    // I1 continues F1's chain after F2 was taken: retain-full 1 keeps F2 only,
    // but I1 is the newest backup.
    const rows: Array<[string, string, string?]> = [
      ['F1', '2026-11-01T00:00:00Z'],
      ['F2', '2026-11-10T00:00:00Z'],
      ['I1', '2026-11-11T00:00:00Z', 'F1'],
    ];
    const p = plan(series(rows), { retainFull: 1 });
    expect(p.keep).toEqual([
      { id: 'F1', reasons: ['parent of I1'] },
      { id: 'F2', reasons: ['retain-full (1 of 1)'] },
      { id: 'I1', reasons: ['newest backup'] },
    ]);
    expect(p.expire).toEqual([]);
  });

  it('an orphan incremental is kept and reported, its dependents follow the policy', () => {
    const f0 = mk({ id: 'F0', lsn: '0/2000028', stop: '2026-11-01T00:00:00Z' });
    const orphan = mk({ id: 'I0', parent: f0, lsn: '0/3000028', stop: '2026-11-02T00:00:00Z' });
    const child = mk({ id: 'I0c', parent: orphan, lsn: '0/4000028', stop: '2026-11-03T00:00:00Z' });
    const f1 = mk({ id: 'F1', lsn: '0/5000028', stop: '2026-11-10T00:00:00Z' });
    const p = plan([f1, child, orphan], { retainFull: 1 }); // F0 is gone
    expect(p.keep).toEqual([
      { id: 'I0', reasons: ['orphan: parent F0 is missing'] },
      { id: 'F1', reasons: ['newest backup', 'retain-full (1 of 1)'] },
    ]);
    expect(p.expire).toEqual([{ id: 'I0c', reason: EXPIRE_REASON }]);
    expect(p.warnings).toEqual([
      'incremental backup I0: its parent F0 is missing from the catalog; it is kept but cannot be restored (delete it explicitly once investigated)',
    ]);
    expect(p.walKeepFrom).toEqual({ segment: '000000010000000000000003', backup: 'I0' });
  });

  it('a chain that disagrees with the parent links keeps what it names and warns', () => {
    const [f1, f2, i2] = series([
      ['F1', '2026-11-01T00:00:00Z'],
      ['F2', '2026-11-10T00:00:00Z'],
      ['I2', '2026-11-11T00:00:00Z', 'F2'],
    ]);
    if (f1 === undefined || f2 === undefined || i2 === undefined) throw new Error('test bug');
    const bad = { ...i2, chain: ['F1', 'I2'] };
    const p = plan([f1, f2, bad], { retainFull: 1 });
    expect(p.keep).toEqual([
      { id: 'F1', reasons: ['in chain of I2'] },
      { id: 'F2', reasons: ['retain-full (1 of 1)', 'parent of I2'] },
      { id: 'I2', reasons: ['newest backup', 'retain-full (chain of F2)'] },
    ]);
    expect(p.warnings).toEqual([
      'backup I2: its chain [F1, I2] does not match its parent links [F2, I2]; every backup named in either is kept with it',
    ]);
  });
});

// ---------------------------------------------------------------------------
// Ordering and expire order
// ---------------------------------------------------------------------------

describe('ordering', () => {
  it('orders by start LSN (numerically), not by id or start time', () => {
    // ids sort z < m < a reversed; start times are skewed (clock jumped back);
    // '0/10000028' > '0/9000028' numerically but not as text.
    const a = mk({ id: 'zzz', lsn: '0/2000028', start: '2026-11-20T00:00:00Z', stop: '2026-11-20T00:10:00Z' });
    const b = mk({ id: 'mmm', lsn: '0/9000028', start: '2026-11-19T00:00:00Z', stop: '2026-11-19T00:10:00Z' });
    const c = mk({ id: 'aaa', lsn: '0/10000028', start: '2026-11-18T00:00:00Z', stop: '2026-11-18T00:10:00Z' });
    const d = mk({ id: '000', lsn: '1/28', start: '2026-11-01T00:00:00Z', stop: '2026-11-01T00:10:00Z' });
    for (const input of [[a, b, c, d], [d, c, b, a], [b, d, a, c]]) {
      const p = plan(input, { retainFull: 2 });
      expect(p.keep).toEqual([
        { id: 'aaa', reasons: ['retain-full (2 of 2)'] },
        { id: '000', reasons: ['newest backup', 'retain-full (1 of 2)'] },
      ]);
      expect(expireIds(p)).toEqual(['mmm', 'zzz']);
      expect(p.walKeepFrom).toEqual({ segment: '000000010000000000000010', backup: 'aaa' });
    }
  });

  it('equal start LSNs are ordered by start time', () => {
    const a = mk({ id: 'b-later', lsn: '0/2000028', start: '2026-11-20T00:00:01Z', stop: '2026-11-20T00:10:00Z' });
    const b = mk({ id: 'a-earlier', lsn: '0/2000028', start: '2026-11-20T00:00:00Z', stop: '2026-11-20T00:10:00Z' });
    expect(plan([a, b], { retainFull: 1 }).keep).toEqual([
      { id: 'b-later', reasons: ['newest backup', 'retain-full (1 of 1)'] },
    ]);
    expect(plan([b, a], { retainFull: 1 }).expire).toEqual([{ id: 'a-earlier', reason: EXPIRE_REASON }]);
  });

  it('expire lists dependents before their parents', () => {
    const backups = series([
      ['F1', '2026-11-01T00:00:00Z'],
      ['I1', '2026-11-02T00:00:00Z', 'F1'],
      ['I2', '2026-11-03T00:00:00Z', 'I1'],
      ['I3', '2026-11-04T00:00:00Z', 'F1'], // a second branch on F1
      ['F2', '2026-11-05T00:00:00Z'],
      ['J1', '2026-11-06T00:00:00Z', 'F2'],
      ['F3', '2026-11-07T00:00:00Z'],
    ]);
    const p = plan(backups, { retainFull: 1 });
    expect(expireIds(p)).toEqual(['J1', 'F2', 'I3', 'I2', 'I1', 'F1']);
    // invariant: nothing is expired before one of its expired dependents
    const pos = new Map(expireIds(p).map((id, i) => [id, i]));
    for (const b of backups) {
      if (b.parent !== undefined && pos.has(b.id) && pos.has(b.parent)) {
        expect(pos.get(b.id)).toBeLessThan(pos.get(b.parent) as number);
      }
    }
  });

  it('an incremental whose LSN is (wrongly) below its parent still comes first', () => {
    const f = mk({ id: 'F', lsn: '0/5000028', stop: '2026-11-05T00:00:00Z' });
    const i = mk({ id: 'I', parent: f, lsn: '0/3000028', stop: '2026-11-03T00:00:00Z' });
    const n = mk({ id: 'N', lsn: '0/9000028', stop: '2026-11-09T00:00:00Z' });
    expect(expireIds(plan([f, i, n], { retainFull: 1 }))).toEqual(['I', 'F']);
  });
});

// ---------------------------------------------------------------------------
// WAL
// ---------------------------------------------------------------------------

describe('walKeepFrom and walRemovable', () => {
  it('walKeepFrom is the start WAL file of the oldest kept backup, across a timeline switch', () => {
    const f1 = mk({ id: 'F1', lsn: '0/3000028', stop: '2026-11-01T00:00:00Z', tl: 1 });
    const f2 = mk({ id: 'F2', lsn: '0/5000028', stop: '2026-11-02T00:00:00Z', tl: 2 });
    const i2 = mk({ id: 'I2', parent: f2, lsn: '0/7000028', stop: '2026-11-03T00:00:00Z', tl: 2 });
    expect(plan([i2, f1, f2], { retainFull: 1 }).walKeepFrom).toEqual({
      segment: '000000020000000000000005',
      backup: 'F2',
    });
    expect(plan([i2, f1, f2], { retainFull: 2 }).walKeepFrom).toEqual({
      segment: '000000010000000000000003',
      backup: 'F1',
    });
  });

  it('walKeepFrom uses walRange.first when it is an older segment', () => {
    const f = mk({ id: 'F', lsn: '0/5000028', stop: '2026-11-01T00:00:00Z', walRangeFirst: '000000010000000000000004' });
    expect(plan([f], { retainFull: 1 }).walKeepFrom).toEqual({ segment: '000000010000000000000004', backup: 'F' });
  });

  const keep = '000000020000000000000005';
  it.each<[string, boolean]>([
    ['000000010000000000000004', true],
    ['000000010000000000000005', false],
    ['000000010000000000000006', false],
    ['000000020000000000000004', true],
    ['000000020000000000000005', false],
    ['000000030000000000000003', true],
    ['000000030000000000000005', false],
    ['000000010000000000000000', true],
    ['000000010000000000000004.partial', true],
    ['000000010000000000000005.partial', false],
    ['000000010000000000000003.00000028.backup', true],
    ['000000020000000000000005.00000028.backup', false],
    ['00000001.history', false],
    ['00000002.history', false],
    ['00000003.history', false],
    ['000000010000000000000004.tmp', false],
    ['00000001000000000000000a', false],
    ['pgark.lock', false],
    ['', false],
    ['../000000010000000000000001', false],
  ])('%s removable before %s: %s', (name, expected) => {
    expect(walRemovable(name, keep, SEG)).toBe(expected);
  });

  it.each<[string, string, number, boolean]>([
    ['0000000100000000000000FF', '000000010000000100000002', SEG, true],
    ['000000010000000100000001', '000000010000000100000002', SEG, true],
    ['000000010000000100000002', '000000010000000100000002', SEG, false],
    ['000000020000000200000000', '000000010000000100000002', SEG, false],
    // 1 GiB segments: 4 per XLogId; 0/3 is segment 3, 1/2 is segment 6
    ['000000010000000000000003', '000000010000000100000002', 1024 * MiB, true],
    ['000000010000000100000003', '000000010000000100000002', 1024 * MiB, false],
    ['0000000100000000000000FF', '000000010000000100000002', 1024 * MiB, false], // not a segment at this size
  ])('walRemovable(%s, %s, %i) = %s', (name, keepFrom, size, expected) => {
    expect(walRemovable(name, keepFrom, size)).toBe(expected);
  });

  it('rejects an invalid keepFrom', () => {
    expect(() => walRemovable('000000010000000000000001', '00000002.history', SEG)).toThrow(InvalidInputError);
    expect(() => walRemovable('000000010000000000000001', 'nope', SEG)).toThrow(InvalidInputError);
  });
});

// ---------------------------------------------------------------------------
// Settings
// ---------------------------------------------------------------------------

describe('parseDuration', () => {
  it.each<[string, number]>([
    ['7d', 7 * DAY],
    ['12h', 12 * HOUR],
    ['30m', 30 * MIN],
    ['2w', 14 * DAY],
    ['90s', 90 * SEC],
    ['1d12h', 36 * HOUR],
    ['1w2d3h4m5s', 9 * DAY + 3 * HOUR + 4 * MIN + 5 * SEC],
    ['0d1h', HOUR],
    ['007d', 7 * DAY],
    [' 7d ', 7 * DAY],
  ])('%j = %i ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each<[string, string]>([
    ['', "invalid duration '': empty"],
    ['   ', 'empty'],
    ['7', 'expected <number><unit> parts'],
    ['d', 'expected <number><unit> parts'],
    ['7x', 'expected <number><unit> parts'],
    ['-1d', 'expected <number><unit> parts'],
    ['1.5d', 'expected <number><unit> parts'],
    ['7D', 'expected <number><unit> parts'],
    ['7 d', 'expected <number><unit> parts'],
    ['12h1d', 'largest first'],
    ['1d1d', 'each at most once'],
    ['1e3d', 'expected <number><unit> parts'],
    ['7days', 'expected <number><unit> parts'],
    ['0d', "invalid duration '0d': must be greater than zero"],
    ['0h0m', 'must be greater than zero'],
    ['99999999999999999w', 'too large'],
  ])('%j is refused (%s)', (text, message) => {
    expect(() => parseDuration(text)).toThrow(InvalidInputError);
    expect(() => parseDuration(text)).toThrow(message);
  });

  it('echoes untrusted text safely', () => {
    expect(() => parseDuration('7d\n')).not.toThrow(); // trimmed
    expect(() => parseDuration("x'\u0001")).toThrow("invalid duration 'x\\'\\x01'");
  });
});

describe('parseRetentionCount', () => {
  it.each<[string, number]>([
    ['1', 1],
    ['3', 3],
    [' 12 ', 12],
    ['0365', 365],
  ])('%j = %i', (text, n) => {
    expect(parseRetentionCount(text, 'retain-full')).toBe(n);
  });

  it.each(['0', '-1', '1.5', 'abc', '', '1e3', '+2', '99999999999999999999'])('%j is refused', (text) => {
    expect(() => parseRetentionCount(text, 'retain-daily')).toThrow(InvalidInputError);
    expect(() => parseRetentionCount(text, 'retain-daily')).toThrow(
      `invalid retain-daily '${text}': expected a positive integer`,
    );
  });
});

// ---------------------------------------------------------------------------
// checkDelete
// ---------------------------------------------------------------------------

describe('checkDelete', () => {
  const backups = series([
    ['F1', '2026-11-01T00:00:00Z'],
    ['I1', '2026-11-02T00:00:00Z', 'F1'],
    ['I2', '2026-11-03T00:00:00Z', 'I1'],
    ['I3', '2026-11-04T00:00:00Z', 'F1'],
    ['F2', '2026-11-10T00:00:00Z'],
  ]);
  const pins = new Set(['I3']);

  it.each<[string, RetentionPolicy | null, string[]]>([
    ['F1', null, ['backups depend on it: I1, I2, I3']],
    ['I1', null, ['backups depend on it: I2']],
    ['I2', null, []],
    ['F2', null, []],
    ['I3', null, ['it is pinned']],
    ['I2', { retainFull: 1 }, []],
    ['F2', { retainFull: 1 }, ['the retention policy keeps it: newest backup; retain-full (1 of 1)']],
    ['I3', { retainFull: 1 }, ['it is pinned']],
    [
      'F1',
      { retainFull: 1 },
      ['backups depend on it: I1, I2, I3', 'the retention policy keeps it: parent of I3'],
    ],
    [
      'I1',
      { retainFull: 2 },
      ['backups depend on it: I2', 'the retention policy keeps it: retain-full (chain of F1); parent of I2'],
    ],
    ['I2', { retainWindowMs: 30 * DAY }, ['the retention policy keeps it: retain-window (stopped at or after 2026-10-31T12:00:00.000Z)']],
  ])('delete %s with policy %j', (id, policy, expected) => {
    expect(checkDelete(id, backups, pins, policy, NOW, SEG)).toEqual(expected);
  });

  it('an unknown id is NotFoundError; an empty policy is the no-policy error', () => {
    expect(() => checkDelete('nope', backups, pins, null, NOW, SEG)).toThrow(NotFoundError);
    expect(() => checkDelete('F2', backups, pins, {}, NOW, SEG)).toThrow('no retention policy');
  });
});
