/**
 * io/codecs/lz4-block-wasm.ts: the WebAssembly decoder gives the same bytes as a byte-by-byte
 * reference and as lz4-napi's encoder's input (every literal length, offset and match length
 * around its 8- and 16-byte steps, history of linked blocks, blocks that fill the output to the
 * byte), and the same verdict and error as the JavaScript decoder (lz4-block.ts) on malformed and
 * random blocks. object-reader.ts decodes restore's blocks with it.
 */
import lz4 from 'lz4-napi';
import { describe, expect, it } from 'vitest';
import { decodeLz4BlockInto } from '../../src/io/codecs/lz4-block.js';
import { Lz4WasmDecoder } from '../../src/io/codecs/lz4-block-wasm.js';
import { pseudoRandom } from '../helpers/bytes.js';
import { block, reference, type Seq } from '../helpers/lz4-blocks.js';

const text = (n: number, seed: number): Buffer => Buffer.from(Array.from({ length: n }, (_, i) => 0x41 + ((i * 7 + seed * 13) % 26)));

/** The JavaScript decoder's result for the same block: its bytes, or its error. */
function js(src: Buffer, history: Buffer, capacity: number): Buffer | Error {
  const dst = Buffer.alloc(history.length + capacity + 16);
  history.copy(dst, 0);
  try {
    const n = decodeLz4BlockInto(src, 0, src.length, dst, history.length, history.length + capacity);
    return Buffer.from(dst.subarray(history.length, history.length + n));
  } catch (err) {
    return err as Error;
  }
}

function wasm(d: Lz4WasmDecoder, src: Buffer, history: Buffer): Buffer | Error {
  try {
    return Buffer.from(d.decode(src, history.length > 0 ? history : undefined));
  } catch (err) {
    return err as Error;
  }
}

const decoder = (capacity: number): Lz4WasmDecoder => {
  const d = Lz4WasmDecoder.create(capacity);
  if (d === undefined) throw new Error('WebAssembly SIMD unavailable');
  return d;
};

describe('lz4 block decoder in WebAssembly', () => {
  it('is available (Node 24 has WebAssembly SIMD)', () => {
    expect(Lz4WasmDecoder.create(65536)).toBeDefined();
  });

  it('matches the reference for offsets 1-40 (overlapping or not) and match lengths around the 8- and 16-byte steps', () => {
    const d = decoder(8192);
    const lengths = [4, 5, 7, 8, 9, 15, 16, 17, 18, 19, 23, 24, 25, 31, 32, 33, 63, 64, 65, 127, 128, 255, 256, 257, 300, 1000, 5000];
    const offsets = [...Array.from({ length: 40 }, (_, i) => i + 1), 64, 128, 255, 256, 300];
    for (const off of offsets) {
      for (const ml of lengths) {
        const seqs: Seq[] = [{ lit: text(Math.max(off, 20), off), off, ml }, { lit: text(3, ml) }];
        const want = reference(seqs, Buffer.alloc(0));
        expect(wasm(d, block(seqs), Buffer.alloc(0)), `off ${off} ml ${ml}`).toEqual(want);
      }
    }
  });

  it('matches the reference for every literal length 0-300 and tails of every short length', () => {
    const d = decoder(4096);
    for (let lit = 0; lit <= 300; lit += lit < 40 ? 1 : 13) {
      for (const tail of [0, 1, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33]) {
        const seqs: Seq[] = [{ lit: text(8, lit), off: 3, ml: 4 }, { lit: text(lit, tail), off: 8, ml: 12 }, { lit: text(tail, 1) }];
        const want = reference(seqs, Buffer.alloc(0));
        expect(wasm(d, block(seqs), Buffer.alloc(0)), `lit ${lit} tail ${tail}`).toEqual(want);
      }
    }
  });

  it('matches reaching into the history (linked blocks), overlapping the new output', () => {
    const d = decoder(8192);
    for (const history of [pseudoRandom(65536), pseudoRandom(70000), pseudoRandom(300)]) {
      const kept = history.subarray(Math.max(0, history.length - 65536));
      for (const off of [1, 7, 8, 9, 15, 16, 17, 100, 299, 4096, 65535]) {
        if (off > kept.length) continue;
        for (const ml of [4, 8, 17, 200, 5000]) {
          const seqs: Seq[] = [{ lit: Buffer.alloc(0), off, ml }, { lit: text(2, off) }];
          expect(wasm(d, block(seqs), history), `history ${history.length} off ${off} ml ${ml}`).toEqual(reference(seqs, kept));
        }
      }
    }
  });

  it('same bytes as lz4-napi for many sizes and repeat periods, up to exactly the capacity', () => {
    const noise = pseudoRandom(200_000);
    const sizes = [1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 1000, 4095, 4096, 65535, 65536, 65537, 200_000];
    const d = decoder(200_000);
    // A decoder whose capacity is the block's decoded size: the output ends at the limit.
    const exact = new Map(sizes.map((size) => [size, decoder(size)]));
    const same = (got: Buffer | Error, want: Buffer): boolean => got instanceof Buffer && got.equals(want);
    for (const period of [1, 2, 3, 4, 5, 7, 8, 9, 12, 15, 16, 17, 33, 100, 128, 1000]) {
      const unit = noise.subarray(0, period);
      for (const size of sizes) {
        const data = Buffer.alloc(size);
        for (let i = 0; i < size; i++) data[i] = (i & 4095) < 3 ? noise[(i * 31) % noise.length]! : unit[i % period]!;
        const compressed = lz4.compressSync(data).subarray(4); // lz4_flex: 4 bytes of decoded size, then the block
        expect(same(wasm(d, compressed, Buffer.alloc(0)), data), `period ${period} size ${size}`).toBe(true);
        expect(same(wasm(exact.get(size)!, compressed, Buffer.alloc(0)), data), `period ${period} size ${size} at capacity`).toBe(true);
      }
    }
  });

  const malformed: Array<[string, Buffer]> = [
    ['empty block', Buffer.alloc(0)],
    ['literals cut short', block([{ lit: text(40, 1) }]).subarray(0, 30)],
    ['literal length cut short', Buffer.from([0xf0, 255, 255])],
    ['offset 0', block([{ lit: text(10, 1), off: 0, ml: 20 }, { lit: text(1, 1) }])],
    ['offset before the output', block([{ lit: text(10, 1), off: 11, ml: 20 }, { lit: text(1, 1) }])],
    ['offset cut short', block([{ lit: text(10, 1), off: 5, ml: 20 }]).subarray(0, 12)],
    ['match length cut short', block([{ lit: text(10, 1), off: 5, ml: 100 }]).subarray(0, 13)],
    ['match past the end of the output', block([{ lit: text(10, 1), off: 5, ml: 200 }, { lit: text(1, 1) }])],
    ['literals past the end of the output', block([{ lit: text(150, 1) }])],
    ['ends after a match (no last literals)', block([{ lit: text(10, 1), off: 5, ml: 20 }])],
  ];

  it.each(malformed)('%s: refused with the JavaScript decoder\'s error', (_name, src) => {
    const want = js(src, Buffer.alloc(0), 128);
    expect(want).toBeInstanceOf(Error);
    const got = wasm(decoder(128), src, Buffer.alloc(0));
    expect(got).toBeInstanceOf(Error);
    expect((got as Error).message).toBe((want as Error).message);
  });

  it("a block larger than lz4's worst case for its capacity: the JavaScript decoder's verdict", () => {
    const big = block([{ lit: pseudoRandom(100) }]); // 102 bytes
    expect(wasm(decoder(100), big, Buffer.alloc(0))).toEqual(pseudoRandom(100));
    // Capacity 50: at most 66 bytes of block; this one is decoded (and refused) by JavaScript.
    const want = js(big, Buffer.alloc(0), 50);
    expect(want).toBeInstanceOf(Error);
    expect((wasm(decoder(50), big, Buffer.alloc(0)) as Error).message).toBe((want as Error).message);
  });

  it('random bytes as blocks, with and without history: the same bytes or the same error as the JavaScript decoder', () => {
    const noise = pseudoRandom(1 << 16);
    const history = Buffer.alloc(32, 0x55);
    const decoders = new Map<number, Lz4WasmDecoder>();
    for (let i = 0; i < 3000; i++) {
      const at = (i * 7919) % (noise.length - 600);
      const src = noise.subarray(at, at + 1 + (i % 512));
      const capacity = 1 + ((i * 131) % 700);
      const d = decoders.get(capacity) ?? decoder(capacity);
      decoders.set(capacity, d);
      const h = i % 2 === 0 ? history : Buffer.alloc(0);
      const want = js(src, h, capacity);
      const got = wasm(d, src, h);
      if (want instanceof Error) expect(got instanceof Error ? got.message : 'decoded', `case ${i}`).toBe(want.message);
      else expect(got, `case ${i}`).toEqual(want);
    }
  });

  it('decodes block after block into its memory: each view holds its block until the next decode', () => {
    const d = decoder(65536);
    const datas = [Buffer.alloc(65536, 7), pseudoRandom(65536), Buffer.from('x'.repeat(1000))];
    for (const data of datas) {
      const view = d.decode(lz4.compressSync(data).subarray(4), undefined);
      expect(view.equals(data)).toBe(true);
    }
  });
});

describe('lz4-block-wasm-bytes.ts, the generated module', () => {
  it('is what wabt assembles from the WebAssembly text in scripts/lz4-block-wasm.mjs (regenerate with `node scripts/lz4-block-wasm.mjs`)', async () => {
    const { assembleLz4BlockWasm } = (await import(new URL('../../scripts/lz4-block-wasm.mjs', import.meta.url).href)) as { assembleLz4BlockWasm: () => Promise<string> };
    const { LZ4_BLOCK_WASM } = await import('../../src/io/codecs/lz4-block-wasm-bytes.js');
    expect(LZ4_BLOCK_WASM).toBe(await assembleLz4BlockWasm());
  });
});
