import { describe, expect, it } from 'vitest';
import { analyseArchive } from '../../src/wal/archive-analysis.js';
import { walKey, walNameOfKey, auditKey } from '../../src/repo/layout.js';
import { parseTimelineHistory } from '../../src/wal/timeline-history.js';

const MB16 = 16 * 1024 * 1024;
const obj = (name: string, size = 100, mtimeMs = 1_700_000_000_000) => ({ path: walKey('main', name), size, mtimeMs });

describe('layout', () => {
  it.each([
    ['000000010000000A000000FF', 'main/wal/00000001/000000010000000A/000000010000000A000000FF'],
    ['00000002.history', 'main/wal/00000002/00000002.history'],
    ['000000010000000000000003.partial', 'main/wal/00000001/0000000100000000/000000010000000000000003.partial'],
    ['000000010000000000000003.00000028.backup', 'main/wal/00000001/0000000100000000/000000010000000000000003.00000028.backup'],
  ])('%s -> %s', (name, key) => {
    expect(walKey('main', name)).toBe(key);
    expect(walNameOfKey(key)).toBe(name);
  });
  it('rejects anything else', () => {
    for (const bad of ['../x', 'main', '000000010000000000000003/..', '0000000100000000000000031']) expect(() => walKey('main', bad)).toThrow(/invalid WAL file name/);
    expect(walNameOfKey('main/wal/00000001/x.pgark-tmp-1-aa')).toBeUndefined();
  });
  it('audit keys sort by time within a day', () => {
    const a = auditKey('main', new Date('2026-11-23T09:05:01.002Z'), 7, 'aa');
    expect(a).toBe('main/log/wal/2026-11-23/090501.002-7-aa');
  });
});

describe('archive analysis', () => {
  it('finds ranges, gaps across a log boundary, partials and forks', () => {
    const names = ['0000000100000000000000FE', '0000000100000000000000FF', '000000010000000100000000', '000000010000000100000003',
      '000000010000000100000003.partial', '00000002.history', '000000020000000100000003', '000000020000000100000004',
      '000000010000000000000FE.00000028.backup'.replace('0000000FE', '00000000FE')];
    const histories = new Map([[2, parseTimelineHistory('1\t1/3000000\tno recovery target specified\n', 2)]]);
    const r = analyseArchive(names.map((n) => obj(n)), MB16, histories);
    expect(r.timelines.map((t) => t.timeline)).toEqual([1, 2]);
    const t1 = r.timelines[0]!;
    expect(t1.ranges).toEqual([
      { first: '0000000100000000000000FE', last: '000000010000000100000000', count: 3 },
      { first: '000000010000000100000003', last: '000000010000000100000003', count: 1 },
    ]);
    expect(t1.gaps).toEqual([{ first: '000000010000000100000001', last: '000000010000000100000002', count: 2 }]);
    expect(t1.partials).toEqual(['000000010000000100000003.partial']);
    expect(t1.backupFiles).toHaveLength(1);
    const t2 = r.timelines[1]!;
    expect(t2.gaps).toEqual([]);
    expect(t2.history).toBe(true);
    expect(t2.fork).toEqual({ parent: 1, lsn: '1/3000000', segment: '000000020000000100000003' });
    expect(r.gapCount).toBe(1);
    expect(r.totalSegments).toBe(6);
  });
  it('handles an empty archive and 1 GiB segments', () => {
    expect(analyseArchive([], MB16, new Map()).timelines).toEqual([]);
    const r = analyseArchive(['000000010000000000000003', '000000010000000100000000'].map((n) => obj(n)), 1024 * MB16 / 16, new Map());
    expect(r.timelines[0]!.gaps).toEqual([]);
  });
});
