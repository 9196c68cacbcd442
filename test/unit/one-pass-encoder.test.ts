// The one-pass object encoder (src/repo/one-pass-encoder.ts) writes exactly the bytes of the
// stream pipeline it replaces (encodeObject of the same raw bytes: HashTap, the lz4 codec's
// chunked compressor, Framer), whatever the sizes of the pieces it is handed (whole pooled MiBs,
// a bundle's small files, a block delta's 8 KiB runs, a short last read), and hands every pooled
// buffer back.
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { BufferPool, isPooled, releaseBuffer, SliceTracker } from '../../src/io/buffer-pool.js';
import { decodeObject, encodeObject, readAll } from '../../src/repo/object-stream.js';
import { encodeOnePass } from '../../src/repo/one-pass-encoder.js';

const MiB = 1024 * 1024;

/** Repeating bytes: compresses well. */
function compressible(n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + (i >> 9)) & 0x3f;
  return b;
}

function mixed(n: number): Buffer {
  const b = compressible(n);
  randomBytes(Math.floor(n / 2)).copy(b, Math.floor(n / 3));
  return b;
}

/** `raw` cut at the given sizes (cycled), the last piece whatever is left. */
function cut(raw: Buffer, sizes: number[]): Buffer[] {
  const out: Buffer[] = [];
  let pos = 0;
  for (let i = 0; pos < raw.length; i++) {
    const n = Math.min(sizes[i % sizes.length]!, raw.length - pos);
    out.push(raw.subarray(pos, pos + n));
    pos += n;
  }
  return out;
}

const INPUTS: Array<[string, () => Buffer]> = [
  ['compressible, 3 MiB + 12345 bytes', () => compressible(3 * MiB + 12345)],
  ['incompressible (stored frames), 2 MiB + 17 bytes', () => randomBytes(2 * MiB + 17)],
  ['mixed, exactly 4 MiB', () => mixed(4 * MiB)],
  ['compressible, 1 MiB - 1 byte', () => compressible(MiB - 1)],
  ['small, 100 bytes', () => randomBytes(100)],
  ['empty', () => Buffer.alloc(0)],
];

const CUTS: Array<[string, number[]]> = [
  ['whole MiBs (own file)', [MiB]],
  ['bundle-like files', [100, 70000, 3 * MiB, 8192, 1, MiB, 512 * 1024]],
  ['block-delta runs', [8192, 3 * 8192, 8192 * 17]],
  ['a whole MiB at an unaligned offset', [5000, MiB, MiB - 5000]],
];

async function viaPipeline(pieces: Buffer[], codec: 'lz4' | 'none') {
  const { stream, done } = await encodeObject(Readable.from(pieces.map((p) => Buffer.from(p)), { objectMode: false }), codec);
  const bytes = await readAll(stream, 64 * MiB);
  return { bytes, result: await done };
}

async function viaOnePass(pieces: Buffer[], codec: 'lz4' | 'none', pooled: BufferPool, lastFlag: boolean) {
  const handed: Buffer[] = [];
  const { stream, done } = await encodeOnePass(codec, 'test object', async function* (enc) {
    for (let i = 0; i < pieces.length; i++) {
      const p = pieces[i]!;
      // Whole MiBs as pooled buffers (compressed in place), shorter pieces as releasable slices
      // of one, longer ones as buffers of their own.
      let piece: Buffer;
      if (p.length > MiB) {
        piece = Buffer.from(p);
      } else {
        const buf = pooled.acquire();
        p.copy(buf);
        const tracker = new SliceTracker(buf);
        piece = p.length === MiB ? buf : tracker.slice(0, p.length);
        if (p.length !== MiB) tracker.done();
      }
      handed.push(piece);
      enc.add(piece, lastFlag && i === pieces.length - 1);
      yield* enc.drain();
    }
  });
  const bytes = await readAll(stream, 64 * MiB);
  const result = await done;
  return { bytes, result, handed };
}

describe('one-pass object encoder', () => {
  const pool = new BufferPool(MiB, 4);
  for (const codec of ['lz4', 'none'] as const) {
    for (const [what, make] of INPUTS) {
      for (const [how, sizes] of CUTS) {
        it(`${codec}, ${what}, ${how}: the stream pipeline's bytes, and they decode to the input`, async () => {
          const raw = make();
          const pieces = cut(raw, sizes);
          const a = await viaPipeline(pieces, codec);
          for (const lastFlag of [false, true]) {
            const b = await viaOnePass(pieces, codec, pool, lastFlag);
            expect(b.bytes.equals(a.bytes)).toBe(true);
            expect(b.result).toEqual(a.result);
            expect(b.result.sha256).toBe(createHash('sha256').update(raw).digest('hex'));
            expect(b.result.storedSize).toBe(b.bytes.length);
            // Every pooled buffer and slice went back.
            expect(b.handed.filter((h) => isPooled(h))).toEqual([]);
          }
          const decoded = await decodeObject(Readable.from([a.bytes]), 'test object');
          expect((await readAll(decoded, 64 * MiB)).equals(raw)).toBe(true);
          await decoded.verified;
        });
      }
    }
  }

  // A block delta hands over each read's runs of changed blocks at once (addRuns): the same
  // bytes as the pipeline given each run as a piece, mixed with whole pieces (add) before,
  // between and after, and every read buffer goes back to its pool.
  const BLOCK = 8192;
  const MASKS: Array<[string, (block: number) => boolean]> = [
    ['every block changed', () => true],
    ['no block changed', () => false],
    ['every third block', (b) => b % 3 === 0],
    ['runs across read boundaries', (b) => b % 128 > 100 || b % 128 < 5],
    ['scattered (37 %)', (b) => (b * 2654435761) % 100 < 37],
  ];
  for (const codec of ['lz4', 'none'] as const) {
    for (const [what, changed] of MASKS) {
      it(`${codec}, addRuns, ${what}: the stream pipeline's bytes of the same runs`, async () => {
        const file = mixed(3 * MiB + 5 * BLOCK + 100); // a short last read and a short last block
        const before = compressible(70000);
        const after = randomBytes(3000);
        const expected: Buffer[] = [before];
        const reads: Array<{ buf: Buffer; runs: number[] }> = [];
        for (let pos = 0; pos < file.length; pos += MiB) {
          const buf = pool.acquire();
          const got = file.copy(buf, 0, pos, pos + MiB);
          const runs: number[] = [];
          for (let off = 0; off < got; off += BLOCK) {
            if (!changed((pos + off) / BLOCK)) continue;
            const end = Math.min(off + BLOCK, got);
            if (runs.length > 0 && runs[runs.length - 1] === off) runs[runs.length - 1] = end;
            else runs.push(off, end);
          }
          for (let i = 0; i < runs.length; i += 2) expected.push(file.subarray(pos + runs[i]!, pos + runs[i + 1]!));
          reads.push({ buf, runs });
        }
        expected.push(after);
        const a = await viaPipeline(expected, codec);
        const { stream, done } = await encodeOnePass(codec, 'delta object', async function* (enc) {
          enc.add(Buffer.from(before));
          yield* enc.drain();
          for (const r of reads) {
            if (r.runs.length > 0) enc.addRuns(r.buf, r.runs);
            else releaseBuffer(r.buf);
            yield* enc.drain();
          }
          enc.add(Buffer.from(after));
          yield* enc.drain();
        });
        const bytes = await readAll(stream, 64 * MiB);
        expect(bytes.equals(a.bytes)).toBe(true);
        expect(await done).toEqual(a.result);
        expect((await done).sha256).toBe(createHash('sha256').update(Buffer.concat(expected)).digest('hex'));
        expect(reads.filter((r) => isPooled(r.buf))).toEqual([]);
      });
    }
  }

  it('a failing source fails the stream and `done`, and still hands its buffers back', async () => {
    const buf = pool.acquire();
    compressible(MiB).copy(buf);
    const { stream, done } = await encodeOnePass('lz4', 'failing object', async function* (enc) {
      enc.add(buf);
      yield* enc.drain();
      throw new Error('read failed');
    });
    await expect(readAll(stream, 64 * MiB)).rejects.toThrow('read failed');
    await expect(done).rejects.toThrow('read failed');
    expect(isPooled(buf)).toBe(false);
  });

  it('refuses bytes added after the last', async () => {
    const { stream, done } = await encodeOnePass('lz4', 'x', async function* (enc) {
      enc.add(Buffer.from('a'), true);
      enc.add(Buffer.from('b'));
      yield* enc.drain();
    });
    await expect(readAll(stream, MiB)).rejects.toThrow('bytes added after the last');
    await expect(done).rejects.toThrow();
  });
});
