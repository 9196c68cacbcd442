import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../src/common/errors.js';
import { forkPoint, isInHistory, parseTimelineHistory, timelineOfLsn } from '../../src/wal/timeline-history.js';

/** 00000004.history as PostgreSQL writes it after three promotions / PITRs. */
const HISTORY_4 = [
  '1\t0/3000158\tno recovery target specified',
  '',
  '2\t0/5000000\tat restore point "before_upgrade"',
  '3\t16/B374D848\tbefore 2024-05-01 12:00:00.000001+00',
  '',
].join('\n');

describe('parseTimelineHistory', () => {
  it('parses real-looking content', () => {
    expect(parseTimelineHistory(HISTORY_4, 4)).toEqual({
      timeline: 4,
      parents: [
        { timeline: 1, switchLsn: 0x3000158n, reason: 'no recovery target specified' },
        { timeline: 2, switchLsn: 0x5000000n, reason: 'at restore point "before_upgrade"' },
        { timeline: 3, switchLsn: 0x16b374d848n, reason: 'before 2024-05-01 12:00:00.000001+00' },
      ],
    });
  });

  it.each([
    ['single line', '1\t0/3000158\tno recovery target specified\n', 2, [[1, 0x3000158n, 'no recovery target specified']]],
    ['comments, blank lines, CRLF', '# comment\r\n\r\n  \n1\t0/A0000A0\tx\r\n# another\n', 2, [[1, 0xa0000a0n, 'x']]],
    ['missing reason', '1\t0/3000158\n', 2, [[1, 0x3000158n, '']]],
    ['spaces instead of tabs', '1 0/3000158   reason with  spaces ', 2, [[1, 0x3000158n, 'reason with  spaces']]],
    ['skipped timelines', '1\t0/3000158\ta\n3\t0/4000000\tb\n', 7, [[1, 0x3000158n, 'a'], [3, 0x4000000n, 'b']]],
    ['equal switch LSNs', '1\t0/3000158\ta\n2\t0/3000158\tb\n', 3, [[1, 0x3000158n, 'a'], [2, 0x3000158n, 'b']]],
    ['empty file', '', 1, []],
  ] as const)('accepts %s', (_label, text, timeline, parents) => {
    const h = parseTimelineHistory(text, timeline);
    expect(h.timeline).toBe(timeline);
    expect(h.parents.map((p) => [p.timeline, p.switchLsn, p.reason])).toEqual(parents);
  });

  it.each([
    ['garbage', 'hello world\n', 2, /line 1: syntax error/],
    ['missing LSN', '1\n', 2, /syntax error/],
    ['bad LSN', '1\t0/XYZ\treason\n', 2, /syntax error/],
    ['LSN too long', '1\t0/123456789\treason\n', 2, /syntax error/],
    ['negative timeline', '-1\t0/3000158\treason\n', 2, /syntax error/],
    ['timeline 0', '0\t0/3000158\treason\n', 2, /out of range/],
    ['huge timeline', '4294967296\t0/3000158\treason\n', 5, /out of range/],
    ['decreasing timelines', '2\t0/3000158\ta\n1\t0/4000000\tb\n', 3, /line 2: timeline IDs must be in increasing sequence/],
    ['repeated timeline', '1\t0/3000158\ta\n1\t0/4000000\tb\n', 3, /increasing sequence/],
    ['decreasing LSNs', '1\t0/4000000\ta\n2\t0/3000158\tb\n', 3, /switch LSN 0\/3000158 is before the previous one 0\/4000000/],
    ['parent equals timeline', '1\t0/3000158\ta\n2\t0/4000000\tb\n', 2, /parent timeline 2 must be less than 2/],
    ['parent above timeline', '3\t0/3000158\ta\n', 2, /must be less than/],
  ])('rejects %s', (_label, text, timeline, why) => {
    expect(() => parseTimelineHistory(text, timeline)).toThrow(InvalidInputError);
    expect(() => parseTimelineHistory(text, timeline)).toThrow(why);
  });

  it('rejects an invalid own timeline', () => {
    expect(() => parseTimelineHistory('', 0)).toThrow(InvalidInputError);
    expect(() => parseTimelineHistory('', 2 ** 32)).toThrow(InvalidInputError);
  });

  it('does not echo control characters from bad lines', () => {
    expect(() => parseTimelineHistory('\x1b[2J\t0/1\n', 2)).toThrow(/\\x1b\[2J/);
  });
});

describe('timelineOfLsn / forkPoint', () => {
  const h = parseTimelineHistory(HISTORY_4, 4);

  it.each([
    [0n, 1],
    [0x3000157n, 1],
    [0x3000158n, 2], // the switch point itself belongs to the next timeline
    [0x4ffffffn, 2],
    [0x5000000n, 3],
    [0x16b374d847n, 3],
    [0x16b374d848n, 4],
    [0xffffffffffffffffn, 4],
  ])('LSN %s is on timeline %s', (lsn, tli) => {
    expect(timelineOfLsn(h, lsn)).toBe(tli);
  });

  it('a history without parents is all one timeline', () => {
    expect(timelineOfLsn(parseTimelineHistory('', 1), 0x123n)).toBe(1);
  });

  it.each([
    [1, 0x3000158n],
    [2, 0x5000000n],
    [3, 0x16b374d848n],
    [4, null],
  ])('forkPoint(timeline %s) = %s', (tli, lsn) => {
    expect(forkPoint(h, tli)).toBe(lsn);
  });

  it('forkPoint rejects timelines outside the history', () => {
    const skipping = parseTimelineHistory('1\t0/3000158\ta\n3\t0/4000000\tb\n', 7);
    expect(() => forkPoint(skipping, 2)).toThrow(InvalidInputError);
    expect(() => forkPoint(skipping, 8)).toThrow(/timeline 8 is not in the history of timeline 7/);
    expect(isInHistory(skipping, 3)).toBe(true);
    expect(isInHistory(skipping, 2)).toBe(false);
    expect(isInHistory(skipping, 7)).toBe(true);
  });
});
