/**
 * LZ4 block decoding in JavaScript, into a buffer the caller owns
 * (https://github.com/lz4/lz4/blob/dev/doc/lz4_Block_format.md). lz4-napi returns every decoded
 * block in a fresh buffer allocated by its own allocator; a reader that decodes into one reused
 * buffer produces no garbage and keeps no allocator memory (bench/results/restore.md: as fast as
 * the native block decoder on pgbench data, faster on incompressible data, where literals are
 * copied with one memcpy). Every offset and length is checked: a corrupt block throws, it never
 * reads or writes outside the given ranges.
 *
 * Short runs (most of a PostgreSQL page's sequences: 0-1 literal bytes, 8 or 64-127 match bytes)
 * are copied 8 bytes a step through DataView's 64-bit loads and stores, which TurboFan compiles to
 * plain moves, instead of byte by byte or through copyWithin (a C++ call costing ~100 ns each):
 * the last step may write up to 7 bytes past the run (never at or past the limit), which later
 * sequences overwrite, as the reference decoder's "wild copy" does (bench/results/codecs.md,
 * bench/lz4-decode.mjs).
 */

/** Runs up to this long are copied 8 bytes a step; longer ones with TypedArray.set / copyWithin (a memmove). */
const SHORT = 256;
/** Runs shorter than this that cannot be copied 8 bytes a step (near the end, or an overlapping match) go byte by byte. */
const BULK = 16;

class BlockError extends Error {}

/**
 * Decode the block `src[start, end)` into `dst` from `dStart`, writing nothing at or past `dLimit`.
 * Bytes of `dst` before `dStart` (from `dStart - window`, at most 64 KiB) are the history matches
 * may reach back into (linked blocks: the previous output); `dst[0, dStart)` must hold it.
 * Returns the number of bytes decoded, n; bytes of `dst` from `dStart + n` up to `dLimit` may
 * have been overwritten too (at most 8).
 */
export function decodeLz4BlockInto(src: Uint8Array, start: number, end: number, dst: Uint8Array, dStart: number, dLimit: number): number {
  if (end > src.length || dLimit > dst.length || start < 0 || dStart < 0 || start > end || dStart > dLimit) throw new BlockError('bad block bounds');
  const sv = new DataView(src.buffer, src.byteOffset, src.length);
  const dv = new DataView(dst.buffer, dst.byteOffset, dst.length);
  // An 8-byte step reads and writes up to 8 bytes past the run: only where that stays inside the ranges.
  const sWild = end - 8;
  const dWild = dLimit - 8;
  let s = start;
  let d = dStart;
  for (;;) {
    if (s >= end) throw new BlockError('block ends inside a sequence');
    const token = src[s++]!;
    let lit = token >>> 4;
    if (lit === 15) {
      let b: number;
      do {
        if (s >= end) throw new BlockError('block ends inside a literal length');
        b = src[s++]!;
        lit += b;
      } while (b === 255);
    }
    if (lit > 0) {
      if (lit > end - s) throw new BlockError('literals run past the end of the block');
      if (lit > dLimit - d) throw new BlockError('decoded block larger than the frame allows');
      if (lit <= SHORT && s + lit <= sWild && d + lit <= dWild) {
        const e = d + lit;
        let i = s;
        do {
          dv.setBigUint64(d, sv.getBigUint64(i, true), true);
          d += 8;
          i += 8;
        } while (d < e);
        d = e;
      } else {
        if (lit < BULK) for (let i = 0; i < lit; i++) dst[d + i] = src[s + i]!;
        else dst.set(src.subarray(s, s + lit), d);
        d += lit;
      }
      s += lit;
    }
    // The last sequence has literals only.
    if (s === end) return d - dStart;
    if (end - s < 2) throw new BlockError('block ends inside a match offset');
    const off = src[s]! | (src[s + 1]! << 8);
    s += 2;
    if (off === 0 || off > d) throw new BlockError(`match offset ${off} points before the start of the output`);
    let ml = (token & 15) + 4;
    if ((token & 15) === 15) {
      let b: number;
      do {
        if (s >= end) throw new BlockError('block ends inside a match length');
        b = src[s++]!;
        ml += b;
      } while (b === 255);
    }
    if (ml > dLimit - d) throw new BlockError('decoded block larger than the frame allows');
    let m = d - off;
    if (off >= 8 && ml <= SHORT && d + ml <= dWild) {
      // Each step reads 8 bytes that are already final (off >= 8: they end at or before the step's
      // own start); what the last step writes past the match is overwritten later.
      const e = d + ml;
      do {
        dv.setBigUint64(d, dv.getBigUint64(m, true), true);
        d += 8;
        m += 8;
      } while (d < e);
      d = e;
    } else if (ml < BULK) {
      // Byte by byte also repeats an overlapping match (offset < length) correctly.
      const e = d + ml;
      while (d < e) dst[d++] = dst[m++]!;
    } else if (off >= ml) {
      dst.copyWithin(d, m, m + ml);
      d += ml;
    } else {
      // Overlapping: the `off` bytes before d repeat; copy what is already written, doubling.
      const e = d + ml;
      while (d < e) {
        const k = Math.min(d - m, e - d);
        dst.copyWithin(d, m, m + k);
        d += k;
      }
    }
  }
}

let warm = false;

/**
 * For a thread about to decode many blocks (restore): decodes, a few times, a block whose sequences
 * take every path above (8-byte steps, byte loops, set, copyWithin, overlapping doubling, length
 * extensions, the end of the output), checked against the bytes it must give. V8 optimises the
 * decoder after a few blocks; a path those blocks never took then has no type feedback and
 * costs a deoptimisation and a recompile the first time a later block takes it (restore of
 * pgbench s10: 8 deoptimisations and 19 compiles of the decoder without this, 1-3 and 9-12
 * with it; bench/results/restore.md). ~2 ms of CPU, once per thread: not worth it for a process
 * that decodes one file (wal-fetch). It also stops the caller at once if this decoder were ever wrong.
 */
export function warmUpLz4Decoder(): void {
  if (warm) return;
  warm = true;
  const out: number[] = [];
  const block: number[] = [];
  const lengthExtension = (rest: number): void => {
    for (; rest >= 255; rest -= 255) block.push(255);
    block.push(rest);
  };
  const sequence = (lit: number, off: number, ml: number): void => {
    const litBytes = Array.from({ length: lit }, (_, i) => (i * 31 + out.length * 7 + 11) & 0xff);
    block.push((Math.min(lit, 15) << 4) | (off === 0 ? 0 : Math.min(ml - 4, 15)));
    if (lit >= 15) lengthExtension(lit - 15);
    block.push(...litBytes);
    out.push(...litBytes);
    if (off === 0) return;
    block.push(off & 0xff, off >> 8);
    if (ml - 4 >= 15) lengthExtension(ml - 19);
    for (let i = 0; i < ml; i++) out.push(out[out.length - off]!);
  };
  // lit, offset, match length (offset 0: the last sequence, literals only)
  const shape: Array<[number, number, number]> = [
    [1, 1, 300], [20, 8, 20], [300, 400, 300], [2, 3, 10], [9, 64, 100], [0, 5, 40], [40, 1000, 2000], [1, 9, 8], [3, 0, 0],
  ];
  for (const [lit, off, ml] of shape) sequence(lit, off, ml);
  // Buffers, as every caller passes: feedback for another map would deoptimise the first real call.
  const src = Buffer.from(block);
  const want = Buffer.from(out);
  const dst = Buffer.alloc(want.length);
  // V8 gives a function its feedback vector only after a few calls (lazy feedback allocation).
  for (let round = 0; round < 4; round++) {
    dst.fill(0);
    const n = decodeLz4BlockInto(src, 0, src.length, dst, 0, dst.length);
    if (n !== want.length || !dst.equals(want)) throw new Error('lz4 block decoder self-check failed');
  }
}
