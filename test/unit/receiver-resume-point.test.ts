import { describe, expect, it } from 'vitest';
import { followsHistoryPath, ReceiverPositionError, resumePoint, timelineSpans, type ResumeInput } from '../../src/receiver/resume-point.js';
import { parseTimelineHistory, type TimelineHistory } from '../../src/wal/timeline-history.js';

const SEG = 16 * 1024 * 1024;

/** Timeline 1 alone (no history file). */
const H1 = parseTimelineHistory('', 1);
/** 00000002.history: timeline 1 until 0/3000158. */
const H2 = parseTimelineHistory('1\t0/3000158\tno recovery target specified\n', 2);
/** 00000003.history: 1 until 0/3000158, 2 until 0/5000028. */
const H3 = parseTimelineHistory('1\t0/3000158\tno recovery target specified\n2\t0/5000028\tno recovery target specified\n', 3);
/** 00000005.history: timeline 4 (and 3) never existed in this line; 2 was left at an LSN in a segment's middle. */
/** 00000003.history of issue 14: timeline 2 left 1 at 0/3018CB0, timeline 3 forked from 1 lower, at 0/3018C48. */
const H3DOWN = parseTimelineHistory('1\t0/3018CB0\tno recovery target specified\n2\t0/3018C48\tat restore point "rp"\n', 3);
const H5 = parseTimelineHistory('1\t0/3000158\ta\n2\t1/20000\tb\n4\t1/20000\tc\n', 5);

const stored = (entries: [number, bigint][]) => new Map(entries);

function input(history: TimelineHistory, ends: [number, bigint][], fallback: bigint, walSegmentSize = SEG): ResumeInput {
  return { history, stored: stored(ends), walSegmentSize, fallback: { lsn: fallback } };
}

describe('timelineSpans', () => {
  it.each<[string, TimelineHistory, [number, bigint, bigint | undefined][]]>([
    ['timeline 1', H1, [[1, 0n, undefined]]],
    ['timeline 2', H2, [[1, 0n, 0x3000158n], [2, 0x3000158n, undefined]]],
    ['timeline 3', H3, [[1, 0n, 0x3000158n], [2, 0x3000158n, 0x5000028n], [3, 0x5000028n, undefined]]],
    // Timeline 4 holds no WAL on this path: never a place to start or resume.
    ['equal switch points', H5, [[1, 0n, 0x3000158n], [2, 0x3000158n, 0x100020000n], [5, 0x100020000n, undefined]]],
    ['decreasing switch points', H3DOWN, [[1, 0n, 0x3018c48n], [3, 0x3018c48n, undefined]]],
  ])('%s', (_label, history, spans) => {
    expect(timelineSpans(history).map((s) => [s.timeline, s.begin, s.end])).toEqual(spans);
  });
});

describe('resumePoint', () => {
  it.each<[string, ResumeInput, { timeline: number; lsn: bigint; from: 'stored' | 'server'; divergedTimelines: number[] }]>([
    // Nothing stored: the fallback, rounded down to its segment, on the timeline of that point.
    ['nothing stored, timeline 1', input(H1, [], 0x1_2345_6789n), { timeline: 1, lsn: 0x1_2300_0000n, from: 'server', divergedTimelines: [] }],
    ['nothing stored, fallback on a segment start', input(H1, [], 0x5000000n), { timeline: 1, lsn: 0x5000000n, from: 'server', divergedTimelines: [] }],
    ['nothing stored, fallback 0', input(H1, [], 0n), { timeline: 1, lsn: 0n, from: 'server', divergedTimelines: [] }],
    ['nothing stored, fallback on the server timeline', input(H2, [], 0x4000010n), { timeline: 2, lsn: 0x4000000n, from: 'server', divergedTimelines: [] }],
    ['nothing stored, fallback before the switch point', input(H2, [], 0x2ffffffn), { timeline: 1, lsn: 0x2000000n, from: 'server', divergedTimelines: [] }],
    // The segment start of 0/3000200 is 0/3000000, before the switch at 0/3000158: timeline 1.
    ['nothing stored, segment start falls before the switch point', input(H2, [], 0x3000200n), { timeline: 1, lsn: 0x3000000n, from: 'server', divergedTimelines: [] }],
    // With 1 MiB segments 0/3100200 rounds to 0/3100000 (timeline 2), with 16 MiB to 0/3000000 (timeline 1).
    ['nothing stored, 1 MiB segments', input(H2, [], 0x3100200n, 1024 * 1024), { timeline: 2, lsn: 0x3100000n, from: 'server', divergedTimelines: [] }],
    ['nothing stored, 16 MiB segments', input(H2, [], 0x3100200n), { timeline: 1, lsn: 0x3000000n, from: 'server', divergedTimelines: [] }],
    ['nothing stored, middle timeline of three', input(H3, [], 0x4abcdefn), { timeline: 2, lsn: 0x4000000n, from: 'server', divergedTimelines: [] }],
    ['nothing stored, third timeline, segment start before its switch point', input(H3, [], 0x5000100n), { timeline: 2, lsn: 0x5000000n, from: 'server', divergedTimelines: [] }],
    ['nothing stored, third timeline', input(H3, [], 0x6000100n), { timeline: 3, lsn: 0x6000000n, from: 'server', divergedTimelines: [] }],
    ['nothing stored, fallback far on the third timeline', input(H3, [], 0x7_0100_0000n), { timeline: 3, lsn: 0x7_0100_0000n, from: 'server', divergedTimelines: [] }],

    // Stored on the server's timeline.
    ['stored on timeline 1', input(H1, [[1, 0x2000123n]], 0x9000000n), { timeline: 1, lsn: 0x2000123n, from: 'stored', divergedTimelines: [] }],
    ['stored on timeline 1 ahead of the fallback', input(H1, [[1, 0x9000000n]], 0x1000000n), { timeline: 1, lsn: 0x9000000n, from: 'stored', divergedTimelines: [] }],
    ['stored on the server timeline', input(H2, [[2, 0x4000400n]], 0n), { timeline: 2, lsn: 0x4000400n, from: 'stored', divergedTimelines: [] }],
    ['stored on the server timeline exactly from its switch point', input(H2, [[2, 0x3000158n]], 0n), { timeline: 2, lsn: 0x3000158n, from: 'stored', divergedTimelines: [] }],
    ['stored on the server timeline wins over the parent', input(H2, [[1, 0x3000158n], [2, 0x6000000n]], 0n), { timeline: 2, lsn: 0x6000000n, from: 'stored', divergedTimelines: [] }],
    ['stored on the server timeline wins over a diverged parent', input(H2, [[1, 0x3800000n], [2, 0x6000000n]], 0n), { timeline: 2, lsn: 0x6000000n, from: 'stored', divergedTimelines: [] }],

    // Stored only on the parent.
    ['stored on the parent below the switch point', input(H2, [[1, 0x2000100n]], 0x9000000n), { timeline: 1, lsn: 0x2000100n, from: 'stored', divergedTimelines: [] }],
    ['stored on the parent one byte below the switch point', input(H2, [[1, 0x3000157n]], 0n), { timeline: 1, lsn: 0x3000157n, from: 'stored', divergedTimelines: [] }],
    ['stored on the parent exactly up to the switch point', input(H2, [[1, 0x3000158n]], 0n), { timeline: 2, lsn: 0x3000158n, from: 'stored', divergedTimelines: [] }],
    ['stored on the parent beyond the switch point', input(H2, [[1, 0x4000000n]], 0n), { timeline: 2, lsn: 0x3000158n, from: 'stored', divergedTimelines: [1] }],
    ['stored on the parent one byte beyond the switch point', input(H2, [[1, 0x3000159n]], 0n), { timeline: 2, lsn: 0x3000158n, from: 'stored', divergedTimelines: [1] }],
    // The child's stored WAL ends before the child began (only part of its first segment's copy
    // of the parent's bytes): the parent's is what counts.
    ['child stored below its begin, parent below the switch', input(H2, [[1, 0x3000100n], [2, 0x3000080n]], 0n), { timeline: 1, lsn: 0x3000100n, from: 'stored', divergedTimelines: [] }],
    ['child stored below its begin, parent up to the switch', input(H2, [[1, 0x3000158n], [2, 0x3000080n]], 0n), { timeline: 2, lsn: 0x3000158n, from: 'stored', divergedTimelines: [] }],

    // Three timelines.
    ['three: stored on the grandparent only', input(H3, [[1, 0x1000000n]], 0x9000000n), { timeline: 1, lsn: 0x1000000n, from: 'stored', divergedTimelines: [] }],
    ['three: grandparent up to its switch point', input(H3, [[1, 0x3000158n]], 0n), { timeline: 2, lsn: 0x3000158n, from: 'stored', divergedTimelines: [] }],
    ['three: grandparent beyond both switch points', input(H3, [[1, 0x8000000n]], 0n), { timeline: 2, lsn: 0x3000158n, from: 'stored', divergedTimelines: [1] }],
    ['three: parent below its switch point', input(H3, [[1, 0x3000158n], [2, 0x4000000n]], 0n), { timeline: 2, lsn: 0x4000000n, from: 'stored', divergedTimelines: [] }],
    ['three: parent up to its switch point', input(H3, [[1, 0x3000158n], [2, 0x5000028n]], 0n), { timeline: 3, lsn: 0x5000028n, from: 'stored', divergedTimelines: [] }],
    ['three: parent beyond its switch point', input(H3, [[1, 0x3000158n], [2, 0x6000000n]], 0n), { timeline: 3, lsn: 0x5000028n, from: 'stored', divergedTimelines: [2] }],
    ['three: all timelines, server timeline wins', input(H3, [[1, 0x3000158n], [2, 0x5000028n], [3, 0x7000000n]], 0n), { timeline: 3, lsn: 0x7000000n, from: 'stored', divergedTimelines: [] }],
    ['three: a timeline not in the history is ignored', input(parseTimelineHistory('1\t0/3000158\tx\n', 3), [[1, 0x3000100n], [2, 0x9000000n]], 0n), { timeline: 1, lsn: 0x3000100n, from: 'stored', divergedTimelines: [] }],

    // Equal switch points: timeline 4 covers no WAL at all.
    ['equal switch points: parent up to the switch', input(H5, [[2, 0x100020000n]], 0n), { timeline: 5, lsn: 0x100020000n, from: 'stored', divergedTimelines: [] }],

    // Decreasing switch points (issue 14): timeline 3 forked from timeline 1 at 0/3018C48, below
    // where timeline 2 had left timeline 1 (0/3018CB0). Timeline 2 is not on the path: its WAL
    // is ignored, and timeline 1 hands over to 3 at 0/3018C48 (a START_REPLICATION on timeline 2
    // at 0/3018CB0 would be refused by the server).
    ['decreasing: grandparent up to its own switch point', input(H3DOWN, [[1, 0x3018cb0n]], 0n), { timeline: 3, lsn: 0x3018c48n, from: 'stored', divergedTimelines: [1] }],
    ['decreasing: grandparent up to the lower switch point', input(H3DOWN, [[1, 0x3018c48n]], 0n), { timeline: 3, lsn: 0x3018c48n, from: 'stored', divergedTimelines: [] }],
    ['decreasing: grandparent below it', input(H3DOWN, [[1, 0x3018000n]], 0n), { timeline: 1, lsn: 0x3018000n, from: 'stored', divergedTimelines: [] }],
    ['decreasing: WAL of timeline 2 is not on the path', input(H3DOWN, [[1, 0x3018000n], [2, 0x5000000n]], 0n), { timeline: 1, lsn: 0x3018000n, from: 'stored', divergedTimelines: [] }],
    ['decreasing: own timeline stored', input(H3DOWN, [[1, 0x3018cb0n], [2, 0x5000000n], [3, 0x4000100n]], 0n), { timeline: 3, lsn: 0x4000100n, from: 'stored', divergedTimelines: [] }],
    ['decreasing: nothing stored, fallback in the fork segment', input(H3DOWN, [], 0x3018d00n), { timeline: 1, lsn: 0x3000000n, from: 'server', divergedTimelines: [] }],
    ['decreasing: nothing stored, fallback after it', input(H3DOWN, [], 0x4000010n), { timeline: 3, lsn: 0x4000000n, from: 'server', divergedTimelines: [] }],
    ['equal switch points: nothing stored, fallback at the switch segment', input(H5, [], 0x100020000n), { timeline: 2, lsn: 0x100000000n, from: 'server', divergedTimelines: [] }],
    ['equal switch points: nothing stored, fallback after the switch segment', input(H5, [], 0x101000010n), { timeline: 5, lsn: 0x101000000n, from: 'server', divergedTimelines: [] }],
  ])('%s', (_label, inp, expected) => {
    expect(resumePoint(inp)).toEqual(expected);
  });

  it.each<[string, ResumeInput, RegExp]>([
    ['stored WAL on a timeline newer than the server', input(H2, [[3, 0x5000000n]], 0n), /timeline 3, newer than the server's timeline 2/],
    ['newer timeline next to older ones', input(H1, [[1, 0x1000000n], [2, 0x2000000n]], 0n), /timeline 2, newer than the server's timeline 1/],
    ['newer timeline with nothing usable', input(H3, [[7, 0n]], 0n), /timeline 7, newer than the server's timeline 3/],
  ])('refuses %s', (_label, inp, message) => {
    expect(() => resumePoint(inp)).toThrow(ReceiverPositionError);
    expect(() => resumePoint(inp)).toThrow(message);
  });

  it('ignores the fallback timeline: the point is placed in the history', () => {
    const r = resumePoint({ history: H2, stored: new Map(), walSegmentSize: SEG, fallback: { lsn: 0x3000200n, timeline: 2 } });
    expect(r).toEqual({ timeline: 1, lsn: 0x3000000n, from: 'server', divergedTimelines: [] });
  });

  it('resumes exactly where stored WAL ends on every timeline of a long history', () => {
    // 1..6, each left at a segment and a half further on.
    const lines = [1, 2, 3, 4, 5].map((t) => `${t}\t0/${(t * 0x1800000).toString(16).toUpperCase()}\tx`);
    const h = parseTimelineHistory(lines.join('\n'), 6);
    const spans = timelineSpans(h);
    for (const span of spans) {
      const mid = span.end === undefined ? span.begin + 0x100n : (span.begin + span.end) / 2n;
      expect(resumePoint(input(h, [[span.timeline, mid]], 0n))).toEqual({ timeline: span.timeline, lsn: mid, from: 'stored', divergedTimelines: [] });
      if (span.end !== undefined) {
        const next = spans[spans.indexOf(span) + 1]!;
        expect(resumePoint(input(h, [[span.timeline, span.end]], 0n))).toEqual({ timeline: next.timeline, lsn: span.end, from: 'stored', divergedTimelines: [] });
      }
    }
  });
});

describe('followsHistoryPath (the server ended a timeline and named the next)', () => {
  it.each<[string, TimelineHistory, number, number, bigint, boolean]>([
    ['timeline 1 ends at its switch point, 2 next', H2, 1, 2, 0x3000158n, true],
    ['three timelines, 2 ends, 3 next', H3, 2, 3, 0x5000028n, true],
    ['wrong switch point', H3, 2, 3, 0x5000000n, false],
    ['wrong next timeline', H3, 1, 3, 0x3000158n, false],
    // The server (on timeline 3 of H3DOWN) ends timeline 1 at 0/3018CB0 and names 2: not the
    // path, which leaves 1 at 0/3018C48 for 3. A START_REPLICATION on 2 there would be refused.
    ['decreasing: 1 ends at its own switch point, 2 next', H3DOWN, 1, 2, 0x3018cb0n, false],
    ['decreasing: 1 ends at the lower switch point, 3 next', H3DOWN, 1, 3, 0x3018c48n, true],
    ['decreasing: a timeline not on the path', H3DOWN, 2, 3, 0x3018c48n, false],
    ['equal switch points: 2 then the empty 4 (its stream ends at once, naming 5)', H5, 2, 4, 0x100020000n, true],
    ['equal switch points: then the empty 4 ends, 5 next', H5, 4, 5, 0x100020000n, true],
    ['equal switch points: 1 cannot end there', H5, 1, 2, 0x100020000n, false],
    ['equal switch points: 2 then 5', H5, 2, 5, 0x100020000n, true],
  ])('%s', (_label, history, ended, next, nextStart, expected) => {
    expect(followsHistoryPath(history, ended, next, nextStart)).toBe(expected);
  });
});
