/**
 * Lz4FrameParser's buffers on restore's read path (object-reader.ts): an uncompressed block that
 * spans input chunks is passed on as views of those chunks (no gathering copy, no block-sized
 * accumulator), and the accumulator that compressed blocks spanning chunks are gathered in is
 * one buffer for blocks of one size class and moves from a parser that is done to the next.
 * Frames are built by hand (frame format: magic, FLG, BD, header checksum, blocks, end mark).
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Lz4FrameParser } from '../../src/io/codecs/lz4-frame-decoder.js';
import { xxh32 } from '../../src/io/codecs/xxhash32.js';

const MiB = 1024 * 1024;

/** One frame of the given blocks (raw: stored uncompressed), independent blocks, 4 MiB maximum. */
function frame(blocks: Array<{ data: Buffer; raw: boolean }>, blockChecksum = false): Buffer {
  const flg = 0x60 | (blockChecksum ? 0x10 : 0);
  const bd = 0x70;
  const hc = (xxh32(Buffer.from([flg, bd])) >>> 8) & 0xff;
  const parts: Buffer[] = [Buffer.from([0x04, 0x22, 0x4d, 0x18, flg, bd, hc])];
  for (const b of blocks) {
    const size = Buffer.alloc(4);
    size.writeUInt32LE((b.data.length | (b.raw ? 0x80000000 : 0)) >>> 0);
    parts.push(size, b.data);
    if (blockChecksum) {
      const c = Buffer.alloc(4);
      c.writeUInt32LE(xxh32(b.data));
      parts.push(c);
    }
  }
  parts.push(Buffer.alloc(4));
  return Buffer.concat(parts);
}

/** Cuts `bytes` into chunks of `size`, each its own buffer (as reads hand them over). */
function chunks(bytes: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += size) out.push(Buffer.from(bytes.subarray(i, i + size)));
  return out;
}

/** A "decoder" for test blocks: the compressed bytes are the content (copied into a fresh buffer). */
function recordingDecoder(seen: Buffer[]) {
  return (block: Buffer): Buffer => {
    seen.push(block);
    return Buffer.from(block);
  };
}

function run(p: Lz4FrameParser, input: Buffer[]): Array<{ out: Buffer; copy: Buffer; from: number }> {
  const got: Array<{ out: Buffer; copy: Buffer; from: number }> = [];
  input.forEach((c, i) => {
    p.feed(c);
    for (let o = p.next(); o !== null; o = p.next()) got.push({ out: o, copy: Buffer.from(o), from: i });
  });
  p.end();
  return got;
}

describe('Lz4FrameParser (borrowRaw)', () => {
  it('an uncompressed block spanning three input chunks comes out as views of each chunk, bytes exact', () => {
    const data = randomBytes(MiB);
    const input = chunks(frame([{ data, raw: true }]), 400 * 1024);
    expect(input.length).toBe(3);
    const got = run(new Lz4FrameParser(() => {
      throw new Error('no compressed block here');
    }, false, false, true), input);
    expect(Buffer.concat(got.map((g) => g.copy)).equals(data)).toBe(true);
    // One piece per chunk the block spans, each a view of that chunk's memory: nothing gathered.
    expect(got.length).toBe(3);
    for (const g of got) expect(g.out.buffer).toBe(input[g.from]!.buffer);
  });

  it('raw and compressed blocks mixed, in every chunking, give the blocks in order', () => {
    const blocks = [{ data: randomBytes(300_000), raw: true }, { data: randomBytes(200_000), raw: false }, { data: randomBytes(5), raw: true }, { data: randomBytes(70_000), raw: false }];
    const bytes = Buffer.concat([frame(blocks), frame([{ data: randomBytes(1000), raw: true }])]);
    const want = Buffer.concat([...blocks.map((b) => b.data), bytes.subarray(bytes.length - 1004, bytes.length - 4)]);
    for (const size of [1, 7, 4096, 65_536, 299_999, 300_011, 1 << 20]) {
      const got = run(new Lz4FrameParser(recordingDecoder([]), false, false, true), chunks(bytes, size));
      expect(Buffer.concat(got.map((g) => g.copy)).equals(want)).toBe(true);
    }
  });

  it('with block checksums a raw block is still gathered whole and checked; a corrupt one is refused', () => {
    const data = randomBytes(500_000);
    const bytes = frame([{ data, raw: true }], true);
    const got = run(new Lz4FrameParser(recordingDecoder([]), false, false, true), chunks(bytes, 100_000));
    expect(got.length).toBe(1);
    expect(got[0]!.copy.equals(data)).toBe(true);
    const bad = Buffer.from(bytes);
    bad[300_000]! ^= 1;
    expect(() => run(new Lz4FrameParser(recordingDecoder([]), false, false, true), chunks(bad, 100_000))).toThrow(/block checksum mismatch/);
  });

  it('input that ends inside a raw block is truncated', () => {
    const bytes = frame([{ data: randomBytes(10_000), raw: true }]);
    expect(() => run(new Lz4FrameParser(recordingDecoder([]), false, false, true), chunks(bytes.subarray(0, 5000), 1000))).toThrow(/truncated input/);
  });
});

describe('Lz4FrameParser accumulator', () => {
  // Compressed blocks of one size class (~0.9 MiB, as 1 MiB of poorly compressible data gives),
  // each larger than the one before and each spanning two 1 MiB input chunks.
  const blocks = [900_000, 910_000, 920_000, 930_000].map((n) => ({ data: randomBytes(n), raw: false }));
  const bytes = frame(blocks);

  it('is one buffer for growing blocks of one size class, not one per larger block', () => {
    const seen: Buffer[] = [];
    const input = chunks(bytes, MiB);
    const got = run(new Lz4FrameParser(recordingDecoder(seen), false, false, true), input);
    expect(Buffer.concat(got.map((g) => g.copy)).equals(Buffer.concat(blocks.map((b) => b.data)))).toBe(true);
    // Blocks handed to the decoder from the accumulator (the three that span two chunks, not
    // views of one chunk), each larger than the last: all in one buffer.
    const gathered = seen.filter((b) => !input.some((c) => c.buffer === b.buffer));
    expect(gathered.map((b) => b.length)).toEqual([910_000, 920_000, 930_000]);
    expect(new Set(gathered.map((b) => b.buffer)).size).toBe(1);
  });

  it('moves from a parser that is done to the next (takeAccumulator / useAccumulator)', () => {
    const seenA: Buffer[] = [];
    const a = new Lz4FrameParser(recordingDecoder(seenA), false, false, true);
    run(a, chunks(bytes, MiB));
    const acc = a.takeAccumulator();
    expect(acc).toBeDefined();
    const seenB: Buffer[] = [];
    const b = new Lz4FrameParser(recordingDecoder(seenB), false, false, true);
    b.useAccumulator(acc);
    const input = chunks(bytes, MiB);
    const got = run(b, input);
    expect(Buffer.concat(got.map((g) => g.copy)).equals(Buffer.concat(blocks.map((x) => x.data)))).toBe(true);
    const gathered = seenB.filter((x) => !input.some((c) => c.buffer === x.buffer));
    expect(gathered.length).toBe(3);
    expect(gathered.every((x) => x.buffer === acc!.buffer)).toBe(true);
  });
});
