/**
 * Pieces of a segment being received (pure). A piece holds the bytes [start, end) of one
 * segment; pieces are immutable objects, so a segment's received prefix is the chain of pieces
 * from offset 0, each starting where the previous one ends. Merged pieces overlap the ones they
 * replace until those are deleted: the chain always takes the longest piece at each offset.
 */
export interface PieceRange {
  start: number;
  end: number;
}

/**
 * The longest contiguous chain of pieces from offset 0, and where it ends (0 when none). At
 * each offset the piece leading furthest is taken, looking past its own end: a long piece with
 * nothing after it loses to a shorter one that later pieces continue (two writers of one segment).
 */
export function pieceChain<T extends PieceRange>(pieces: readonly T[]): { end: number; chain: T[] } {
  const byStart = new Map<number, T[]>();
  for (const p of pieces) {
    if (p.end <= p.start) continue;
    const list = byStart.get(p.start) ?? [];
    list.push(p);
    byStart.set(p.start, list);
  }
  // reach(pos): the furthest end of any chain from pos, and the piece to take there.
  const reach = new Map<number, { end: number; next?: T }>();
  const starts = [...byStart.keys()].sort((a, b) => b - a);
  for (const pos of starts) {
    let best: { end: number; next?: T } = { end: pos };
    for (const p of byStart.get(pos)!) {
      const end = reach.get(p.end)?.end ?? p.end;
      if (end > best.end || (end === best.end && best.next && p.end > best.next.end)) best = { end, next: p };
    }
    reach.set(pos, best);
  }
  const chain: T[] = [];
  let pos = 0;
  for (let r = reach.get(0); r?.next; r = reach.get(pos)) {
    chain.push(r.next);
    pos = r.next.end;
  }
  return { end: pos, chain };
}

/**
 * Which tail of the chain to merge into one piece, so that a segment received in many small
 * flushes (a synchronous standby stores each commit) stays a handful of objects.
 *
 * Nothing is merged while the chain has at most `maxPieces` pieces. Then the merged tail is the
 * last ceil(maxPieces / 2) pieces (at least two) plus every earlier piece not larger than the
 * tail so far. So a merge happens at most once per ~maxPieces/2 flushes, and a piece is
 * rewritten only into a piece at least twice its size: each byte is rewritten O(log n) times,
 * and the chain keeps sizes that fall geometrically.
 * Returns the index of the first piece of the tail, or undefined.
 */
export function mergeFrom(chain: readonly PieceRange[], maxPieces: number): number | undefined {
  const n = chain.length;
  if (n <= Math.max(2, maxPieces)) return undefined;
  let i = n - Math.max(2, Math.ceil(maxPieces / 2));
  let tail = 0;
  for (let j = i; j < n; j++) tail += size(chain[j]!);
  while (i > 0 && size(chain[i - 1]!) <= tail) {
    i -= 1;
    tail += size(chain[i]!);
  }
  return i;
}

function size(p: PieceRange): number {
  return p.end - p.start;
}
