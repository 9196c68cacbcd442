/**
 * io/codecs/lz4-block.ts: byte-exact against a byte-by-byte reference decoder on hand-built
 * blocks (every literal length, offset and match length around the 8-byte-step paths' edges,
 * with no room to spare after the output and with room), against lz4-napi's encoder for many
 * sizes and repeat periods, and malformed blocks refused with a clear error, writing nothing
 * outside the range given.
 */
import lz4 from 'lz4-napi';
import { describe, expect, it } from 'vitest';
import { decodeLz4BlockInto, warmUpLz4Decoder } from '../../src/io/codecs/lz4-block.js';
import { pseudoRandom } from '../helpers/bytes.js';
import { block, reference, type Seq } from '../helpers/lz4-blocks.js';

/** Decode into a guarded buffer with `slack` bytes of room after the output; checks the guards. */
function decode(src: Buffer, history: Buffer, expectedSize: number, slack: number): Buffer {
  const guard = 64;
  const dst = Buffer.alloc(guard + history.length + expectedSize + slack + guard, 0xee);
  history.copy(dst, guard);
  const dStart = guard + history.length;
  const dLimit = dStart + expectedSize + slack;
  const n = decodeLz4BlockInto(src, 0, src.length, dst, dStart, dLimit);
  expect(dst.subarray(0, guard).every((b) => b === 0xee)).toBe(true);
  expect(dst.subarray(guard, dStart).equals(history)).toBe(true);
  expect(dst.subarray(dLimit).every((b) => b === 0xee)).toBe(true);
  return dst.subarray(dStart, dStart + n);
}

const text = (n: number, seed: number): Buffer => Buffer.from(Array.from({ length: n }, (_, i) => 0x41 + ((i * 7 + seed * 13) % 26)));

describe('lz4 block decoder (8-byte steps)', () => {
  it('matches the reference for every offset 1-20 (overlapping or not) and match lengths around the step edges', () => {
    const lengths = [4, 5, 7, 8, 9, 15, 16, 17, 18, 19, 23, 24, 25, 63, 64, 65, 127, 128, 255, 256, 257, 300, 1000];
    const offsets = [...Array.from({ length: 20 }, (_, i) => i + 1), 31, 64, 255, 256, 300];
    for (const off of offsets) {
      for (const ml of lengths) {
        const seqs: Seq[] = [{ lit: text(Math.max(off, 20), off), off, ml }, { lit: text(3, ml) }];
        const want = reference(seqs, Buffer.alloc(0));
        for (const slack of [0, 3, 7, 8, 64]) {
          const got = decode(block(seqs), Buffer.alloc(0), want.length, slack);
          expect(got.equals(want), `off ${off} ml ${ml} slack ${slack}`).toBe(true);
        }
      }
    }
  });

  it('matches the reference for every literal length 0-300 and near the end of the output', () => {
    for (let lit = 0; lit <= 300; lit += lit < 40 ? 1 : 13) {
      // A match after the literals, then a final literal run of every short length.
      for (const tail of [0, 1, 5, 7, 8, 9, 16, 17]) {
        const seqs: Seq[] = [{ lit: text(8, lit) }, { lit: text(lit, tail), off: 8, ml: 12 }, { lit: text(tail, 1) }];
        // The first sequence carries a match too (only the last has none).
        seqs[0] = { lit: text(8, lit), off: 3, ml: 4 };
        const want = reference(seqs, Buffer.alloc(0));
        for (const slack of [0, 8, 40]) {
          const got = decode(block(seqs), Buffer.alloc(0), want.length, slack);
          expect(got.equals(want), `lit ${lit} tail ${tail} slack ${slack}`).toBe(true);
        }
      }
    }
  });

  it('matches reaching into the history (linked blocks), overlapping the new output', () => {
    const history = pseudoRandom(65536);
    for (const off of [1, 7, 8, 9, 100, 4096, 65535]) {
      for (const ml of [4, 8, 17, 200, 5000]) {
        const seqs: Seq[] = [{ lit: Buffer.alloc(0), off, ml }, { lit: text(2, off) }];
        const want = reference(seqs, history);
        expect(decode(block(seqs), history, want.length, 0).equals(want), `off ${off} ml ${ml}`).toBe(true);
      }
    }
  });

  it('same bytes as lz4-napi for many sizes and repeat periods', () => {
    const noise = pseudoRandom(200_000);
    const sizes = [0, 1, 7, 8, 9, 15, 16, 17, 63, 64, 65, 100, 1000, 4095, 4096, 65535, 65536, 65537, 200_000];
    for (const period of [1, 2, 3, 4, 5, 7, 8, 9, 12, 16, 17, 33, 100, 1000]) {
      const unit = noise.subarray(0, period);
      for (const size of sizes) {
        // A repeating pattern with a little noise every 4 KiB, as in PostgreSQL pages.
        const data = Buffer.alloc(size);
        for (let i = 0; i < size; i++) data[i] = (i & 4095) < 3 ? noise[(i * 31) % noise.length]! : unit[i % period]!;
        const compressed = lz4.compressSync(data); // lz4_flex's layout: 4 bytes of decoded size, then the block
        for (const slack of [0, 8]) {
          const got = decode(compressed.subarray(4), Buffer.alloc(0), size, slack);
          expect(got.equals(data), `period ${period} size ${size} slack ${slack}`).toBe(true);
        }
      }
    }
  });

  const malformed: Array<[string, Buffer, RegExp]> = [
    ['empty block', Buffer.alloc(0), /ends inside a sequence/],
    ['literals cut short', block([{ lit: text(40, 1) }]).subarray(0, 30), /literals run past the end/],
    ['literal length cut short', Buffer.from([0xf0, 255, 255]), /ends inside a literal length/],
    ['offset 0', block([{ lit: text(10, 1), off: 0, ml: 20 }, { lit: text(1, 1) }]), /offset 0/],
    ['offset before the output', block([{ lit: text(10, 1), off: 11, ml: 20 }, { lit: text(1, 1) }]), /offset 11 points before/],
    ['offset cut short', block([{ lit: text(10, 1), off: 5, ml: 20 }]).subarray(0, 12), /ends inside a match offset/],
    ['match length cut short', Buffer.concat([block([{ lit: text(10, 1), off: 5, ml: 100 }]).subarray(0, 13)]), /ends inside a match length/],
    ['match past the end of the output', block([{ lit: text(10, 1), off: 5, ml: 200 }, { lit: text(1, 1) }]), /larger than the frame allows/],
    ['literals past the end of the output', block([{ lit: text(150, 1) }]), /larger than the frame allows/],
    ['ends after a match (no last literals)', block([{ lit: text(10, 1), off: 5, ml: 20 }]), /ends inside a sequence/],
  ];

  it.each(malformed)('%s: refused, nothing written past the limit', (_name, src, error) => {
    // Output from 0 (no history: bytes before dStart would be history matches may reach).
    const dst = Buffer.alloc(128 + 64, 0xee);
    expect(() => decodeLz4BlockInto(src, 0, src.length, dst, 0, 128)).toThrow(error);
    expect(dst.subarray(128).every((b) => b === 0xee)).toBe(true);
    // The same block inside a larger source buffer: nothing past `end` is read as the block.
    const padded = Buffer.concat([Buffer.from([0x11, 0x22]), src, Buffer.alloc(64, 0x44)]);
    expect(() => decodeLz4BlockInto(padded, 2, 2 + src.length, dst, 0, 128)).toThrow(error);
  });

  it('refuses bounds outside the buffers', () => {
    const src = block([{ lit: text(10, 1) }]);
    const dst = Buffer.alloc(100);
    expect(() => decodeLz4BlockInto(src, -1, src.length, dst, 0, 100)).toThrow(/bad block bounds/);
    expect(() => decodeLz4BlockInto(src, 0, src.length + 1, dst, 0, 100)).toThrow(/bad block bounds/);
    expect(() => decodeLz4BlockInto(src, 0, src.length, dst, -5, 100)).toThrow(/bad block bounds/);
    expect(() => decodeLz4BlockInto(src, 0, src.length, dst, 0, 101)).toThrow(/bad block bounds/);
    expect(decodeLz4BlockInto(src, 0, src.length, dst, 0, 100)).toBe(10);
  });

  it('decodes a view into a larger ArrayBuffer (byteOffset) without touching the bytes around it', () => {
    const big = Buffer.alloc(4096, 0xee);
    const view = big.subarray(1000, 2000);
    const seqs: Seq[] = [{ lit: text(30, 2), off: 9, ml: 300 }, { lit: text(5, 2) }];
    const want = reference(seqs, Buffer.alloc(0));
    const srcBig = Buffer.alloc(4096, 0x11);
    const b = block(seqs);
    b.copy(srcBig, 777);
    const n = decodeLz4BlockInto(srcBig.subarray(777, 777 + b.length), 0, b.length, view, 0, want.length);
    expect(view.subarray(0, n).equals(want)).toBe(true);
    expect(big.subarray(0, 1000).every((x) => x === 0xee)).toBe(true);
    expect(big.subarray(1000 + want.length).every((x) => x === 0xee)).toBe(true);
  });

  it('random bytes as blocks: an error or bytes within the limit, never a write past it', () => {
    const noise = pseudoRandom(1 << 16);
    for (let i = 0; i < 2000; i++) {
      const at = (i * 7919) % (noise.length - 600);
      const src = noise.subarray(at, at + 1 + (i % 512));
      const limit = (i * 131) % 700;
      const dst = Buffer.alloc(32 + limit + 64, 0xee);
      dst.fill(0x55, 0, 32); // history the matches may reach
      let n = -1;
      try {
        n = decodeLz4BlockInto(src, 0, src.length, dst, 32, 32 + limit);
      } catch (err) {
        expect((err as Error).message).toMatch(/block|offset|literal|match|frame/);
      }
      expect(n).toBeLessThanOrEqual(limit);
      expect(dst.subarray(32 + limit).every((b) => b === 0xee)).toBe(true);
    }
  });

  it('the warm-up (restore threads) decodes its own block correctly, once per thread', () => {
    expect(() => warmUpLz4Decoder()).not.toThrow();
    expect(() => warmUpLz4Decoder()).not.toThrow();
  });
});
