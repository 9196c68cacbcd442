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
