import { describe, expect, it } from 'vitest';
import { mergeFrom, pieceChain, type PieceRange } from '../../src/wal/received-pieces.js';

type Range = [number, number];

const pieces = (ranges: readonly Range[]): PieceRange[] => ranges.map(([start, end]) => ({ start, end }));
const ranges = (ps: readonly PieceRange[]): Range[] => ps.map((p) => [p.start, p.end]);
/** A contiguous chain from 0 with these piece sizes. */
const chainOfSizes = (sizes: readonly number[]): PieceRange[] => {
  let pos = 0;
  return sizes.map((s) => ({ start: pos, end: (pos += s) }));
};

/** Deterministic PRNG (mulberry32), so that a failure can be replayed. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('pieceChain', () => {
  it.each<[string, Range[], number, Range[]]>([
    ['no pieces', [], 0, []],
    ['one piece from 0', [[0, 100]], 100, [[0, 100]]],
    ['nothing at offset 0', [[10, 20], [20, 30]], 0, []],
    ['contiguous, listed in order', [[0, 10], [10, 25], [25, 26]], 26, [[0, 10], [10, 25], [25, 26]]],
    ['contiguous, listed out of order', [[25, 26], [0, 10], [10, 25]], 26, [[0, 10], [10, 25], [25, 26]]],
    ['hole after the first piece', [[0, 10], [11, 20], [20, 30]], 10, [[0, 10]]],
    ['hole later on', [[0, 10], [10, 20], [30, 40], [40, 50]], 20, [[0, 10], [10, 20]]],
    ['piece beyond the end that overlaps it', [[0, 10], [5, 15]], 10, [[0, 10]]],
    // A merge stored [0,30) but the pieces it replaces are not deleted yet.
    ['whole merge not yet deleted', [[0, 10], [10, 20], [20, 30], [0, 30]], 30, [[0, 30]]],
    ['merge listed first', [[0, 30], [0, 10], [10, 20], [20, 30]], 30, [[0, 30]]],
    ['tail merge not yet deleted', [[0, 10], [10, 20], [20, 30], [10, 30], [30, 35]], 35, [[0, 10], [10, 30], [30, 35]]],
    ['two generations of merges', [[0, 4], [4, 6], [6, 7], [4, 7], [0, 7], [7, 9]], 9, [[0, 7], [7, 9]]],
    ['merge plus pieces written after it', [[0, 10], [10, 20], [0, 20], [20, 21], [21, 22]], 22, [[0, 20], [20, 21], [21, 22]]],
    ['exact duplicates', [[0, 10], [0, 10], [10, 20], [10, 20]], 20, [[0, 10], [10, 20]]],
    ['duplicate of a merged piece', [[0, 20], [0, 20], [0, 10]], 20, [[0, 20]]],
    ['shorter piece at the same start', [[0, 5], [0, 10], [10, 12]], 12, [[0, 10], [10, 12]]],
  ])('%s', (_label, input, end, chain) => {
    const r = pieceChain(pieces(input));
    expect(r.end).toBe(end);
    expect(ranges(r.chain)).toEqual(chain);
  });

  it('returns the input objects themselves (with their extra fields)', () => {
    const a = { start: 0, end: 8, key: 'a' };
    const b = { start: 8, end: 16, key: 'b' };
    const stale = { start: 0, end: 4, key: 'stale' };
    const r = pieceChain([b, stale, a]);
    expect(r.chain).toHaveLength(2);
    expect(r.chain[0]).toBe(a);
    expect(r.chain[1]).toBe(b);
    expect(r.end).toBe(16);
  });

  it('keeps the first of exact duplicates', () => {
    const first = { start: 0, end: 8, key: 'first' };
    const second = { start: 0, end: 8, key: 'second' };
    expect(pieceChain([first, second]).chain[0]).toBe(first);
  });

  it('does not modify its input', () => {
    const input = pieces([[10, 20], [0, 10], [0, 5]]);
    const copy = structuredClone(input);
    pieceChain(input);
    expect(input).toEqual(copy);
  });
});

describe('mergeFrom', () => {
  it.each<[string, number[], number, number | undefined]>([
    ['empty chain', [], 4, undefined],
    ['one piece', [10], 0, undefined],
    ['two pieces, maxPieces 0: never merges fewer than three', [10, 10], 0, undefined],
    ['three pieces, maxPieces 0', [10, 10, 10], 0, 0],
    ['at maxPieces', [1, 1, 1, 1], 4, undefined],
    ['equal sizes one over maxPieces: everything', [1, 1, 1, 1, 1], 4, 0],
    ['big first piece stays', [100, 1, 1, 1, 1], 4, 1],
    ['last two when the one before is larger than both', [100, 50, 20, 1, 1], 4, 3],
    ['the tail grows while earlier pieces are not larger', [100, 3, 2, 1, 1], 4, 1],
    ['earlier piece equal to the tail is taken', [100, 4, 2, 1, 1], 4, 1],
    ['earlier piece one byte larger than the tail stops it', [100, 5, 2, 1, 1], 4, 2],
    ['last two even when the second to last is large', [100, 40, 1], 2, 1],
    ['increasing sizes: everything', [1, 2, 3, 4, 5], 4, 0],
    ['decreasing sizes, each larger than the rest: last two', [16, 8, 4, 2, 1], 4, 3],
  ])('%s', (_label, sizes, maxPieces, expected) => {
    expect(mergeFrom(chainOfSizes(sizes), maxPieces)).toBe(expected);
  });

  it('the merged tail is never next to an earlier piece it could have taken', () => {
    const rnd = mulberry32(42);
    for (let round = 0; round < 2000; round++) {
      const sizes = Array.from({ length: 3 + Math.floor(rnd() * 20) }, () => 1 + Math.floor(rnd() * 2 ** (rnd() * 16)));
      const chain = chainOfSizes(sizes);
      const maxPieces = Math.floor(rnd() * 20);
      const from = mergeFrom(chain, maxPieces);
      if (sizes.length <= Math.max(2, maxPieces)) {
        expect(from).toBeUndefined();
        continue;
      }
      expect(from).toBeDefined();
      const minTail = Math.max(2, Math.ceil(maxPieces / 2));
      expect(from).toBeLessThanOrEqual(sizes.length - minTail);
      const tail = sizes.slice(from).reduce((a, b) => a + b, 0);
      if (from! > 0) expect(sizes[from! - 1]).toBeGreaterThan(tail);
      // Every piece taken besides the last minTail was not larger than what followed it.
      for (let i = from!; i < sizes.length - minTail; i++) {
        expect(sizes[i]).toBeLessThanOrEqual(sizes.slice(i + 1).reduce((a, b) => a + b, 0));
      }
    }
  });
});

/**
 * A writer appending pieces and merging whenever mergeFrom says so, as SegmentWriter does. The
 * merged piece is stored before the pieces it replaces are deleted, and deletes may lag: `stored`
 * holds every piece ever written that is not deleted yet, and pieceChain over it must always give
 * the writer's own chain.
 */
function simulate(sizes: readonly number[], maxPieces: number, opts: { lagDeletes?: boolean } = {}) {
  // Plain checks (not expect) inside the loop: it runs tens of thousands of times.
  const check = (ok: boolean, what: () => string) => {
    if (!ok) throw new Error(`after ${merges} merges at ${pos}: ${what()}`);
  };
  let chain: PieceRange[] = [];
  let stored: PieceRange[] = [];
  let pending: PieceRange[] = [];
  let pos = 0;
  let rewritten = 0;
  let merges = 0;
  let maxAfterAppend = 0;
  let maxAfterMerge = 0;
  for (const s of sizes) {
    const piece = { start: pos, end: pos + s };
    pos += s;
    chain.push(piece);
    stored.push(piece);
    maxAfterAppend = Math.max(maxAfterAppend, chain.length);
    const from = mergeFrom(chain, maxPieces);
    if (from !== undefined) {
      check(Number.isInteger(from) && from >= 0 && from <= chain.length - 2, () => `mergeFrom returned ${from} for ${chain.length} pieces`);
      const old = chain.slice(from);
      const merged = { start: old[0]!.start, end: old[old.length - 1]!.end };
      rewritten += merged.end - merged.start;
      merges += 1;
      chain = [...chain.slice(0, from), merged];
      stored.push(merged);
      maxAfterMerge = Math.max(maxAfterMerge, chain.length);
      // The merged piece is smaller than the piece it stopped at (else it would have taken it).
      const before = chain[from - 1];
      check(!before || before.end - before.start > merged.end - merged.start, () => `merge [${merged.start},${merged.end}) stopped at a piece not larger`);
      if (opts.lagDeletes) {
        // Delete the previous round's replaced pieces only now.
        stored = stored.filter((p) => !pending.includes(p));
        pending = old;
      } else {
        stored = stored.filter((p) => !old.includes(p));
      }
    }
    // The chain stays contiguous from 0 up to what was appended, and short.
    check(chain[0]!.start === 0, () => 'chain does not start at 0');
    for (let i = 1; i < chain.length; i++) check(chain[i]!.start === chain[i - 1]!.end, () => `chain not contiguous at ${i}`);
    check(chain[chain.length - 1]!.end === pos, () => 'chain does not end at the appended end');
    check(chain.length <= Math.max(2, maxPieces), () => `${chain.length} pieces after a merge round`);
    // What a reader listing the stored pieces sees is the writer's chain.
    const seen = pieceChain(stored);
    check(seen.end === pos && seen.chain.length === chain.length && seen.chain.every((p, i) => p.start === chain[i]!.start && p.end === chain[i]!.end),
      () => `pieceChain ${JSON.stringify(ranges(seen.chain))} is not the writer's ${JSON.stringify(ranges(chain))}`);
  }
  return { total: pos, rewritten, merges, maxAfterAppend, maxAfterMerge, pieces: chain.length, n: sizes.length };
}

/** Piece sizes up to a whole 16 MiB segment, the domain SegmentWriter uses mergeFrom in. */
const SEGMENT = 16 * 1024 * 1024;
function fillSegment(next: () => number, segment = SEGMENT): number[] {
  const out: number[] = [];
  let total = 0;
  while (total < segment) {
    const s = Math.min(Math.max(1, Math.floor(next())), segment - total);
    out.push(s);
    total += s;
  }
  return out;
}

describe('mergeFrom in a writer', () => {
  // The bound on rewritten bytes: a piece taken into a merge besides the last ceil(maxPieces/2)
  // ends up in a piece at least twice its size, so through those merges each byte is rewritten
  // at most log2(n) times; the merges of the tail that the count limit forces add little as long
  // as maxPieces is about log2(n) or more (SegmentWriter uses 16, and pieces stay inside one
  // segment). Assert rewritten <= total * (log2(n) + 2), and that merges are rare: at most one
  // per ceil(maxPieces/2) - 1 appended pieces (each merge removes at least that many).
  const bound = (n: number) => Math.log2(Math.max(2, n)) + 2;

  const cases: [string, () => number[], number][] = [
    ['equal sizes (100 B)', () => fillSegment(() => 100, 2_000_000), 16],
    ['equal sizes (8 KiB), whole segment', () => fillSegment(() => 8192), 16],
    ['one huge first piece, then tiny ones', () => [SEGMENT - 40_000, ...Array<number>(40_000).fill(1)], 16],
    ['one huge first piece, then small random ones', () => {
      const rnd = mulberry32(3);
      return [SEGMENT / 2, ...fillSegment(() => 1 + rnd() * 300, SEGMENT / 2)];
    }, 16],
    ['increasing sizes', () => Array.from({ length: 5000 }, (_, i) => i + 1), 16],
    ['decreasing sizes', () => Array.from({ length: 5000 }, (_, i) => 5000 - i), 16],
    ['each piece half of what is left of the segment, then 1-byte pieces', () => {
      let left = SEGMENT;
      const big = Array.from({ length: 16 }, () => {
        const s = Math.floor(left / 2);
        left -= s;
        return s;
      });
      return [...big, ...Array<number>(left).fill(1)];
    }, 16],
    ['uniform random sizes 1..8192 (seed 1)', () => {
      const rnd = mulberry32(1);
      return fillSegment(() => 1 + rnd() * 8192);
    }, 16],
    ['log-uniform random sizes 1 B..64 KiB (seed 2)', () => {
      const rnd = mulberry32(2);
      return fillSegment(() => 2 ** (rnd() * 16));
    }, 16],
    ['small commits 60..600 B (seed 5), maxPieces 16', () => {
      const rnd = mulberry32(5);
      return fillSegment(() => 60 + rnd() * 540, 4 * 1024 * 1024);
    }, 16],
    ['uniform random sizes (seed 9), maxPieces 12', () => {
      const rnd = mulberry32(9);
      return Array.from({ length: 3000 }, () => 1 + Math.floor(rnd() * 1000));
    }, 12],
  ];

  it.each(cases)('%s', (_label, makeSizes, maxPieces) => {
    const sizes = makeSizes();
    const r = simulate(sizes, maxPieces);
    expect(r.maxAfterAppend).toBeLessThanOrEqual(maxPieces + 1);
    expect(r.maxAfterMerge).toBeLessThanOrEqual(maxPieces);
    expect(r.rewritten).toBeLessThanOrEqual(r.total * bound(r.n));
    if (r.n > maxPieces) expect(r.merges).toBeGreaterThan(0);
    expect(r.merges).toBeLessThanOrEqual(Math.ceil(r.n / (Math.max(2, Math.ceil(maxPieces / 2)) - 1)));
  });

  it('pieceChain follows the writer while deletes of replaced pieces lag a merge behind', () => {
    const rnd = mulberry32(11);
    const r = simulate(Array.from({ length: 1500 }, () => 1 + Math.floor(rnd() * 2 ** (rnd() * 12))), 6, { lagDeletes: true });
    expect(r.merges).toBeGreaterThan(100);
    expect(r.pieces).toBeLessThanOrEqual(6);
  });

  it('one huge first piece, then tiny ones: the huge piece is never rewritten', () => {
    const tiny = 40_000;
    const r = simulate([SEGMENT - tiny, ...Array<number>(tiny).fill(1)], 16);
    expect(r.merges).toBeGreaterThan(1000);
    // Only the tiny pieces are rewritten, each about log2(their number) times at most.
    expect(r.rewritten).toBeLessThanOrEqual(tiny * bound(tiny));
  });

  it('a first piece a little larger than the rest is merged once the tail catches up', () => {
    const r = simulate([1000, ...Array<number>(3000).fill(1)], 16);
    expect(r.maxAfterMerge).toBeLessThanOrEqual(16);
    expect(r.rewritten).toBeLessThanOrEqual(r.total * bound(r.n));
    expect(r.pieces).toBeLessThan(16);
  });

  it('with no maxPieces limit reached nothing is rewritten', () => {
    const r = simulate(Array<number>(16).fill(7), 16);
    expect(r.merges).toBe(0);
    expect(r.rewritten).toBe(0);
    expect(r.pieces).toBe(16);
  });

  it('maxPieces below 2 still keeps the chain at two pieces at most', () => {
    for (const maxPieces of [0, 1, 2]) {
      const rnd = mulberry32(maxPieces + 20);
      const r = simulate(Array.from({ length: 200 }, () => 1 + Math.floor(rnd() * 100)), maxPieces);
      expect(r.pieces).toBeLessThanOrEqual(2);
      expect(r.maxAfterAppend).toBeLessThanOrEqual(3);
    }
  });
});

describe('pieceChain with pieces from two writers', () => {
  it.each([
    { pieces: [[0, 20], [0, 10], [10, 40]], end: 40, chain: [[0, 10], [10, 40]] },
    { pieces: [[0, 10], [10, 40], [0, 20], [20, 50]], end: 50, chain: [[0, 20], [20, 50]] },
    { pieces: [[0, 30], [0, 10], [10, 30]], end: 30, chain: [[0, 30]] },
    { pieces: [[0, 5], [5, 5], [5, 9]], end: 9, chain: [[0, 5], [5, 9]] },
  ])('$pieces -> $end', ({ pieces, end, chain }) => {
    const r = pieceChain(pieces.map(([start, e]) => ({ start: start!, end: e! })));
    expect(r.end).toBe(end);
    expect(r.chain.map((p) => [p.start, p.end])).toEqual(chain);
  });
});
