import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../src/common/errors.js';
import {
  receivedPieceKey,
  receivedPieceOfKey,
  receivedPrefix,
  receiverStatusKey,
  receiverStatusPrefix,
} from '../../src/repo/layout.js';

const SEG = '000000010000000000000003';

describe('receivedPrefix', () => {
  it.each<[string, number | undefined, string | undefined, string]>([
    ['all received WAL', undefined, undefined, 'main/received/'],
    ['one timeline', 1, undefined, 'main/received/00000001/'],
    ['a large timeline', 0xabc, undefined, 'main/received/00000ABC/'],
    ['one segment', 2, '000000020000000A000000FF', 'main/received/00000002/000000020000000A000000FF/'],
  ])('%s', (_label, timeline, segment, expected) => {
    expect(receivedPrefix('main', timeline, segment)).toBe(expected);
  });
});

describe('receivedPieceKey / receivedPieceOfKey', () => {
  it.each<[string, string, string, number, number, string]>([
    ['first piece', 'main', SEG, 0, 0x158, 'main/received/00000001/000000010000000000000003/00000000-00000158'],
    ['a later piece', 'main', SEG, 0x10000, 0x2a000, 'main/received/00000001/000000010000000000000003/00010000-0002A000'],
    ['up to the end of a 16 MiB segment', 'main', SEG, 0xfff000, 0x1000000, 'main/received/00000001/000000010000000000000003/00FFF000-01000000'],
    ['up to the end of a 1 GiB segment', 'main', '0000000200000007000000FF', 0, 0x40000000, 'main/received/00000002/0000000200000007000000FF/00000000-40000000'],
    ['largest range', 'main', SEG, 0, 0xffffffff, 'main/received/00000001/000000010000000000000003/00000000-FFFFFFFF'],
    ['one byte', 'main', SEG, 7, 8, 'main/received/00000001/000000010000000000000003/00000007-00000008'],
    ['large timeline', 'main', 'FFFFFFFE0000000000000001', 1, 2, 'main/received/FFFFFFFE/FFFFFFFE0000000000000001/00000001-00000002'],
    ['stanza with a path', 'a/b/c', SEG, 0, 1, 'a/b/c/received/00000001/000000010000000000000003/00000000-00000001'],
  ])('%s', (_label, stanza, segment, start, end, key) => {
    expect(receivedPieceKey(stanza, segment, start, end)).toBe(key);
    const timeline = Number.parseInt(segment.slice(0, 8), 16);
    expect(receivedPieceOfKey(key)).toEqual({ segment, timeline, start, end });
    expect(key.startsWith(receivedPrefix(stanza, timeline, segment))).toBe(true);
  });

  it('round trips many ranges', () => {
    const segments = ['000000010000000000000001', '0000000A0000001F000000C0', 'DEADBEEF00000000000000FF'];
    for (const segment of segments) {
      for (const [start, end] of [[0, 1], [0, 0x1000000], [0x123, 0x45678], [0xfffffffe, 0xffffffff], [0x1000, 0x1001]] as const) {
        const key = receivedPieceKey('s', segment, start, end);
        expect(receivedPieceOfKey(key)).toEqual({ segment, timeline: Number.parseInt(segment.slice(0, 8), 16), start, end });
      }
    }
  });

  it.each<[string, string, number, number, RegExp]>([
    ['segment name with lower-case hex', '0000000100000000000000ab', 0, 1, /invalid WAL segment name/],
    ['segment name too short', '00000001000000000000003', 0, 1, /invalid WAL segment name/],
    ['segment name too long', '0000000100000000000000030', 0, 1, /invalid WAL segment name/],
    ['partial segment name', `${SEG}.partial`, 0, 1, /invalid WAL segment name/],
    ['history file name', '00000002.history', 0, 1, /invalid WAL segment name/],
    ['empty segment name', '', 0, 1, /invalid WAL segment name/],
    ['end equal to start', SEG, 5, 5, /invalid received piece range 5-5/],
    ['end before start', SEG, 6, 5, /invalid received piece range 6-5/],
    ['negative start', SEG, -1, 5, /invalid received piece range/],
    ['fractional start', SEG, 0.5, 5, /invalid received piece range/],
    ['fractional end', SEG, 0, 5.5, /invalid received piece range/],
    ['NaN end', SEG, 0, Number.NaN, /invalid received piece range/],
    ['end beyond 32 bits', SEG, 0, 0x100000000, /invalid received piece range/],
  ])('receivedPieceKey rejects %s', (_label, segment, start, end, message) => {
    expect(() => receivedPieceKey('main', segment, start, end)).toThrow(InvalidInputError);
    expect(() => receivedPieceKey('main', segment, start, end)).toThrow(message);
  });

  it.each<[string, string]>([
    ['end equal to start', 'main/received/00000001/000000010000000000000003/00000010-00000010'],
    ['end before start', 'main/received/00000001/000000010000000000000003/00000010-0000000F'],
    ['timeline directory not the segment timeline', 'main/received/00000002/000000010000000000000003/00000000-00000010'],
    ['timeline directory of another case', 'main/received/0000000a/0000000A0000000000000003/00000000-00000010'],
    ['lower-case segment name', 'main/received/0000000A/0000000a0000000000000003/00000000-00000010'],
    ['lower-case range', 'main/received/00000001/000000010000000000000003/00000000-0000001a'],
    ['short segment name', 'main/received/00000001/00000001000000000000003/00000000-00000010'],
    ['short range', 'main/received/00000001/000000010000000000000003/0-10'],
    ['range with a suffix', 'main/received/00000001/000000010000000000000003/00000000-00000010.tmp'],
    ['no range', 'main/received/00000001/000000010000000000000003/'],
    ['segment prefix only', 'main/received/00000001/000000010000000000000003'],
    ['an archived segment key', 'main/wal/00000001/0000000100000000/000000010000000000000003'],
    ['not under received/', 'main/receivedx/00000001/000000010000000000000003/00000000-00000010'],
    ['a receiver status key', 'main/receiver/rx1.json'],
    ['empty', ''],
  ])('receivedPieceOfKey ignores %s', (_label, key) => {
    expect(receivedPieceOfKey(key)).toBeUndefined();
  });
});

describe('receiverStatusKey', () => {
  it.each<[string, string]>([
    ['rx1', 'main/receiver/rx1.json'],
    ['pgark_receive', 'main/receiver/pgark_receive.json'],
    ['host-1.example.com', 'main/receiver/host-1.example.com.json'],
    ['A', 'main/receiver/A.json'],
    ['x'.repeat(63), `main/receiver/${'x'.repeat(63)}.json`],
  ])('%j', (name, key) => {
    expect(receiverStatusKey('main', name)).toBe(key);
    expect(key.startsWith(receiverStatusPrefix('main'))).toBe(true);
  });

  it.each<[string, string]>([
    ['empty', ''],
    ['too long', 'x'.repeat(64)],
    ['slash', 'a/b'],
    ['backslash', 'a\\b'],
    ['space', 'a b'],
    ['newline', 'a\n'],
    ['colon', 'a:b'],
    ['non-ASCII letter', 'café'],
    ['star', '*'],
  ])('rejects %s', (_label, name) => {
    expect(() => receiverStatusKey('main', name)).toThrow(InvalidInputError);
    expect(() => receiverStatusKey('main', name)).toThrow(/invalid receiver name/);
  });
});
