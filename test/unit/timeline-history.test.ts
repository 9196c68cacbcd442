import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../src/common/errors.js';
import { forkPoint, historySpans, isInHistory, parseTimelineHistory, timelineOfLsn, type TimelineHistory } from '../../src/wal/timeline-history.js';

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

  // What PostgreSQL's readTimeLineHistory accepts: sscanf(line, "%u\t%X/%X"), the rest of the
  // line ignored; timeline IDs strictly increasing and below the file's timeline; no rule on
  // the switch points.
  it.each([
    ['single line', '1\t0/3000158\tno recovery target specified\n', 2, [[1, 0x3000158n, 'no recovery target specified']]],
    ['comments, blank lines, CRLF', '# comment\r\n\r\n  \n1\t0/A0000A0\tx\r\n# another\n', 2, [[1, 0xa0000a0n, 'x']]],
    ['indented comment and whitespace-only lines', ' \t# indented\n\t\n\f\v\n1\t0/1\tx\n', 2, [[1, 1n, 'x']]],
    ['missing reason', '1\t0/3000158\n', 2, [[1, 0x3000158n, '']]],
    ['no newline at the end', '1\t0/3000158\tx', 2, [[1, 0x3000158n, 'x']]],
    ['spaces instead of tabs', '1 0/3000158   reason with  spaces ', 2, [[1, 0x3000158n, 'reason with  spaces']]],
    ['leading whitespace', '  1\t0/3000158\tx\n', 2, [[1, 0x3000158n, 'x']]],
    ['whitespace after the slash (%X skips it)', '1\t0/ 3000158\tx\n', 2, [[1, 0x3000158n, 'x']]],
    ['no separator before the reason', '1\t0/3000158xyz\n', 2, [[1, 0x3000158n, 'xyz']]],
    ['lowercase hex, leading zeros', '1\t00000000/0000000003000158\tx\n', 2, [[1, 0x3000158n, 'x']]],
    ['reason with tabs, quotes and #', '1\t0/3000158\tat restore point "a\tb # c"\n', 2, [[1, 0x3000158n, 'at restore point "a\tb # c"']]],
    ['skipped timelines', '1\t0/3000158\ta\n3\t0/4000000\tb\n', 7, [[1, 0x3000158n, 'a'], [3, 0x4000000n, 'b']]],
    ['equal switch LSNs', '1\t0/3000158\ta\n2\t0/3000158\tb\n', 3, [[1, 0x3000158n, 'a'], [2, 0x3000158n, 'b']]],
    // PITR to a restore point on timeline 1, read from a timeline-2 segment, then promote:
    // PostgreSQL writes 00000003.history with a lower switch point for timeline 2 (issue 14).
    ['decreasing switch LSNs (PITR before a later switch)', '1\t0/3018CB0\tno recovery target specified\n\n2\t0/3018C48\tat restore point "rp"\n', 3,
      [[1, 0x3018cb0n, 'no recovery target specified'], [2, 0x3018c48n, 'at restore point "rp"']]],
    ['switch LSNs decreasing over several timelines', '1\t5/0\ta\n2\t4/0\tb\n5\t3/0\tc\n', 6, [[1, 0x500000000n, 'a'], [2, 0x400000000n, 'b'], [5, 0x300000000n, 'c']]],
    ['largest values', '4294967294\tFFFFFFFF/FFFFFFFF\tx\n', 4294967295, [[4294967294, 0xffffffffffffffffn, 'x']]],
    ['empty file', '', 1, []],
    ['only comments', '# nothing\n', 5, []],
  ] as const)('accepts %s', (_label, text, timeline, parents) => {
    const h = parseTimelineHistory(text, timeline);
    expect(h.timeline).toBe(timeline);
    expect(h.parents.map((p) => [p.timeline, p.switchLsn, p.reason])).toEqual(parents);
  });

  // What PostgreSQL refuses (FATAL in readTimeLineHistory), and what it never writes.
  it.each([
    ['garbage', 'hello world\n', 2, /line 1: syntax error in history file: 'hello world' \(expected a numeric timeline ID\)/],
    ['missing LSN', '1\n', 2, /syntax error in history file: '1' \(expected a write-ahead log switchpoint location/],
    ['missing low half', '1\t0/\treason\n', 2, /syntax error.*switchpoint location/],
    ['bad LSN', '1\t0/XYZ\treason\n', 2, /syntax error/],
    ['LSN without slash', '1\t3000158\treason\n', 2, /syntax error/],
    ['space before the slash', '1\t0 /3000158\treason\n', 2, /syntax error/],
    ['timeline and LSN run together', '10/3000158\treason\n', 12, /syntax error.*switchpoint location/],
    ['LSN too long', '1\t0/123456789\treason\n', 2, /switchpoint 0\/123456789 is out of range/],
    ['negative timeline', '-1\t0/3000158\treason\n', 2, /syntax error.*numeric timeline ID/],
    ['timeline 0', '0\t0/3000158\treason\n', 2, /timeline 0 is out of range/],
    ['huge timeline', '4294967296\t0/3000158\treason\n', 5, /out of range/],
    ['decreasing timelines', '2\t0/3000158\ta\n1\t0/4000000\tb\n', 3, /line 2: invalid data in history file: .*timeline IDs must be in increasing sequence/],
    ['repeated timeline', '1\t0/3000158\ta\n1\t0/4000000\tb\n', 3, /increasing sequence/],
    ['parent equals timeline', '1\t0/3000158\ta\n2\t0/4000000\tb\n', 2, /line 2: .*timeline IDs must be less than child timeline's ID: 2 is not less than 2/],
    ['parent above timeline', '3\t0/3000158\ta\n', 2, /must be less than child timeline's ID/],
    ['a bad line after good ones', '1\t0/3000158\ta\n\nx\n', 3, /line 3: syntax error/],
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

describe('a history whose switch points decrease (PITR to a point before a later switch)', () => {
  // 00000003.history as PostgreSQL 15 wrote it in issue 14's scenario: timeline 2 forked from 1
  // at 0/3018CB0; a copy recovered along timeline 2 to a restore point that lies on timeline 1
  // before that fork (0/3018C48) and promoted to timeline 3.
  const h3 = parseTimelineHistory('1\t0/3018CB0\tno recovery target specified\n2\t0/3018C48\tat restore point "rp"\n', 3);

  it.each([
    [0n, 1],
    [0x3018c47n, 1],
    // tliOfPointInHistory: the newest entry holding the LSN wins; timeline 2's entry
    // [0/3018CB0, 0/3018C48) is empty, timeline 3 starts at 0/3018C48.
    [0x3018c48n, 3],
    [0x3018cafn, 3],
    [0x3018cb0n, 3],
    [0x4000000n, 3],
  ])('LSN %s is on timeline %s', (lsn, tli) => {
    expect(timelineOfLsn(h3, lsn)).toBe(tli);
  });

  it('spans leave out timeline 2 and stay contiguous', () => {
    expect(historySpans(h3)).toEqual([
      { timeline: 1, begin: 0n, end: 0x3018c48n },
      { timeline: 3, begin: 0x3018c48n, end: undefined },
    ]);
  });

  it('forkPoint is the switch point written for the timeline (tliSwitchPoint)', () => {
    expect(forkPoint(h3, 1)).toBe(0x3018cb0n);
    expect(forkPoint(h3, 2)).toBe(0x3018c48n);
    expect(forkPoint(h3, 3)).toBeNull();
  });

  it.each<[string, string, number, [number, bigint, bigint | undefined][]]>([
    ['increasing', '1\t0/3000158\ta\n2\t0/5000000\tb\n', 3, [[1, 0n, 0x3000158n], [2, 0x3000158n, 0x5000000n], [3, 0x5000000n, undefined]]],
    ['equal switch points: the middle timeline holds nothing', '1\t0/3000158\ta\n2\t1/20000\tb\n4\t1/20000\tc\n', 5,
      [[1, 0n, 0x3000158n], [2, 0x3000158n, 0x100020000n], [5, 0x100020000n, undefined]]],
    ['a low last switch point hides every earlier timeline above it', '1\t5/0\ta\n2\t6/0\tb\n3\t4/0\tc\n', 4, [[1, 0n, 0x400000000n], [4, 0x400000000n, undefined]]],
    ['down then up', '1\t5/0\ta\n2\t3/0\tb\n3\t4/0\tc\n', 4, [[1, 0n, 0x300000000n], [3, 0x300000000n, 0x400000000n], [4, 0x400000000n, undefined]]],
  ])('spans: %s', (_label, text, tl, spans) => {
    expect(historySpans(parseTimelineHistory(text, tl)).map((s) => [s.timeline, s.begin, s.end])).toEqual(spans);
  });

  it('historySpans places every LSN where tliOfPointInHistory does (random histories)', () => {
    let seed = 14;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    for (let round = 0; round < 500; round++) {
      const n = rand(6);
      const parents = Array.from({ length: n }, (_, i) => ({ timeline: i + 1, switchLsn: BigInt(rand(8)) * 0x100n, reason: '' }));
      const h: TimelineHistory = { timeline: n + 1, parents };
      const spans = historySpans(h);
      expect(spans[0]!.begin).toBe(0n);
      expect(spans[spans.length - 1]!.end).toBeUndefined();
      for (let i = 1; i < spans.length; i++) expect(spans[i]!.begin).toBe(spans[i - 1]!.end);
      for (let lsn = 0n; lsn <= 0x900n; lsn += 0x80n) {
        const span = spans.find((s) => lsn >= s.begin && (s.end === undefined || lsn < s.end));
        expect(span?.timeline, `history ${JSON.stringify(parents.map((p) => [p.timeline, p.switchLsn.toString(16)]))} at ${lsn.toString(16)}`).toBe(timelineOfLsn(h, lsn));
      }
    }
  });
});
