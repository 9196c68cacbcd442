/**
 * lz4 blocks built by hand for the decoders' tests (test/unit/lz4-block.test.ts,
 * lz4-block-wasm.test.ts): sequences encoded as the format says, with any offsets and lengths,
 * and the obvious byte-at-a-time decoder to compare with.
 */

export interface Seq {
  lit: Buffer;
  /** Absent in the last sequence. */
  off?: number;
  ml?: number;
}

/** An lz4 length field's extra bytes (after the 4-bit nibble reached 15). */
function lengthBytes(rest: number): number[] {
  const out: number[] = [];
  while (rest >= 255) {
    out.push(255);
    rest -= 255;
  }
  out.push(rest);
  return out;
}

/** Encode sequences as an lz4 block (the format, not a compressor: any offsets and lengths). */
export function block(seqs: Seq[]): Buffer {
  const out: number[] = [];
  for (const q of seqs) {
    const l = q.lit.length;
    const m = q.ml === undefined ? 0 : q.ml - 4;
    out.push((Math.min(l, 15) << 4) | (q.ml === undefined ? 0 : Math.min(m, 15)));
    if (l >= 15) out.push(...lengthBytes(l - 15));
    out.push(...q.lit);
    if (q.ml === undefined) continue;
    out.push(q.off! & 0xff, q.off! >> 8);
    if (m >= 15) out.push(...lengthBytes(m - 15));
  }
  return Buffer.from(out);
}

/** The obvious decoder: one byte at a time. */
export function reference(seqs: Seq[], history: Buffer): Buffer {
  const out = [...history];
  for (const q of seqs) {
    out.push(...q.lit);
    if (q.ml === undefined) continue;
    for (let i = 0; i < q.ml; i++) out.push(out[out.length - q.off!]!);
  }
  return Buffer.from(out.slice(history.length));
}
