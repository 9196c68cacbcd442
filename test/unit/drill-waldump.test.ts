import { describe, expect, it } from 'vitest';
import { lastCommit, newerCommit, parseWaldumpCommitLine, parseWaldumpCommits } from '../../src/drill/waldump-commits.js';
import { newestSegments } from '../../src/drill/rpo.js';

// Lines as pg_waldump 15 prints them (TZ=UTC).
const COMMIT = 'rmgr: Transaction len (rec/tot):     34/    34, tx:        727, lsn: 0/0062CD58, prev 0/0062CD18, desc: COMMIT 2026-11-23 21:06:32.019508 UTC';
const COMMIT_INVAL = 'rmgr: Transaction len (rec/tot):    405/   405, tx:        725, lsn: 0/0062CA18, prev 0/0062C9D0, desc: COMMIT 2026-11-23 21:06:32.018198 UTC; inval msgs: catcache 80 catcache 79 snapshot 2608 relcache 16387';
const PREPARE = 'rmgr: Transaction len (rec/tot):    242/   242, tx:        726, lsn: 0/0062CBF0, prev 0/0062CBB0, desc: PREPARE gid p1: 2026-11-23 21:06:32.019097 UTC';
const COMMIT_PREPARED = 'rmgr: Transaction len (rec/tot):     42/    42, tx:          0, lsn: 0/0062CCE8, prev 0/0062CBF0, desc: COMMIT_PREPARED 726: 2026-11-23 21:06:32.019290 UTC';
const ABORT = 'rmgr: Transaction len (rec/tot):     34/    34, tx:        728, lsn: 0/0062CE00, prev 0/0062CD58, desc: ABORT 2026-11-23 21:06:33.000000 UTC';
const END = 'pg_waldump: error: error in WAL record at 0/62CD58: invalid record length at 0/62CD80: wanted 24, got 0';

describe('pg_waldump commit records', () => {
  it.each([
    [COMMIT, { lsn: '0/0062CD58', time: '2026-11-23T21:06:32.019508Z' }],
    [COMMIT_INVAL, { lsn: '0/0062CA18', time: '2026-11-23T21:06:32.018198Z' }],
    [COMMIT_PREPARED, { lsn: '0/0062CCE8', time: '2026-11-23T21:06:32.019290Z' }],
    [COMMIT.replace('.019508 UTC', ' UTC'), { lsn: '0/0062CD58', time: '2026-11-23T21:06:32.000000Z' }],
    [COMMIT.replace('UTC', 'GMT'), { lsn: '0/0062CD58', time: '2026-11-23T21:06:32.019508Z' }],
  ])('reads %s', (line, want) => {
    expect(parseWaldumpCommitLine(line)).toEqual(want);
  });

  it.each([
    ['a prepare', PREPARE],
    ['an abort', ABORT],
    ['the end-of-WAL error', END],
    ['a commit in another time zone (never guessed)', COMMIT.replace('UTC', 'CET')],
    ['a commit in a zone abbreviation that merely starts like UTC', COMMIT.replace('UTC', 'UTCX')],
    ['another resource manager', 'rmgr: Heap        len (rec/tot):     59/    59, tx:        727, lsn: 0/0062CD18, prev 0/0062CCE8, desc: INSERT off 2 flags 0x00'],
  ])('ignores %s', (_n, line) => {
    expect(parseWaldumpCommitLine(line)).toBeUndefined();
  });

  it('finds the newest commit of an output', () => {
    const out = [COMMIT_INVAL, PREPARE, COMMIT_PREPARED, COMMIT, ABORT, END].join('\n');
    expect(parseWaldumpCommits(out)).toHaveLength(3);
    expect(lastCommit(out)).toEqual({ lsn: '0/0062CD58', time: '2026-11-23T21:06:32.019508Z' });
    expect(lastCommit(`${ABORT}\n${END}`)).toBeUndefined();
  });

  it('compares LSNs as numbers, not text', () => {
    const a = { lsn: '0/FFFFFF00', time: '2026-11-23T00:00:00.000000Z' };
    const b = { lsn: '1/00000010', time: '2026-11-23T00:00:01.000000Z' };
    const c = { lsn: '0/0A000000', time: '2026-11-23T00:00:02.000000Z' };
    expect(newerCommit(newerCommit(newerCommit(undefined, a), b), c)).toBe(b);
  });
});

describe('newestSegments', () => {
  const MB16 = 16 * 1024 * 1024;
  const tl = (timeline: number, ranges: Array<[string, string]>) => ({ timeline, ranges: ranges.map(([first, last]) => ({ first, last })) });

  it('walks the newest timeline back from its newest segment, across gaps, up to the bound', () => {
    const r = newestSegments([
      tl(1, [['000000010000000000000001', '000000010000000000000009']]),
      tl(2, [['000000020000000000000008', '000000020000000000000009'], ['00000002000000000000000B', '000000020000000100000000']]),
    ], [], MB16, 5);
    expect(r.timeline).toBe(2);
    expect(r.names).toEqual(['000000020000000100000000', '0000000200000000000000FF', '0000000200000000000000FE', '0000000200000000000000FD', '0000000200000000000000FC']);
    expect(r.receivedOnly).toBeUndefined();
  });

  it('continues into an older range when the newest one is short', () => {
    const r = newestSegments([tl(1, [['000000010000000000000001', '000000010000000000000002'], ['000000010000000000000005', '000000010000000000000005']])], [], MB16, 8);
    expect(r.names).toEqual(['000000010000000000000005', '000000010000000000000002', '000000010000000000000001']);
  });

  it('puts a partly received segment newer than the archive first', () => {
    const r = newestSegments([tl(1, [['000000010000000000000001', '000000010000000000000003']])], [
      { segment: '000000010000000000000004', bytes: 8192, archived: false },
      { segment: '000000010000000000000003', bytes: MB16, archived: true },
      { segment: '000000010000000000000005', bytes: 0, archived: false },
    ], MB16, 3);
    expect(r).toEqual({ timeline: 1, names: ['000000010000000000000004', '000000010000000000000003', '000000010000000000000002'], receivedOnly: '000000010000000000000004' });
  });

  it('a timeline known only from received WAL is the newest', () => {
    const r = newestSegments([tl(1, [['000000010000000000000001', '000000010000000000000003']])], [
      { segment: '000000020000000000000003', bytes: 100, archived: false },
    ], MB16, 3);
    expect(r).toEqual({ timeline: 2, names: ['000000020000000000000003'], receivedOnly: '000000020000000000000003' });
  });

  it('nothing archived: nothing to read', () => {
    expect(newestSegments([], [], MB16)).toEqual({ names: [] });
    expect(newestSegments([tl(1, [])], [{ segment: '000000010000000000000001', bytes: 0, archived: false }], MB16)).toEqual({ names: [] });
  });
});
