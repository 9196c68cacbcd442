// lz4-napi returns every compressed frame and decoded block in a buffer of its own; V8 lets up
// to 64 MiB of such unreachable buffers pile up per thread before collecting them. The lz4 codec
// reports them to src/common/gc-budget.ts, which collects after GARBAGE_BUDGET bytes: a long
// stream through the codec stays well below V8's own threshold (bench/results/memory.md).
import { createHash } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { GARBAGE_BUDGET } from '../../src/common/gc-budget.js';
import { loadCodec } from '../../src/io/codec.js';

const MiB = 1024 * 1024;

function pseudoRandom(size: number, seed = 0x2545f491): Buffer {
  const out = Buffer.allocUnsafe(size);
  let x = seed;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

describe('garbage budget of the lz4 codec', () => {
  it('keeps the buffers of a 160 MiB round trip within one budget (+8 MiB in flight), every byte intact', async () => {
    expect(GARBAGE_BUDGET).toBeLessThanOrEqual(16 * MiB);
    const lz4 = await loadCodec('lz4');
    const chunk = pseudoRandom(MiB); // incompressible: frames as large as the blocks
    const chunks = 160;
    const want = createHash('sha256');
    for (let i = 0; i < chunks; i++) want.update(chunk);
    const got = createHash('sha256');
    let bytes = 0;
    let peak = 0;
    const sample = () => (peak = Math.max(peak, process.memoryUsage().arrayBuffers));
    async function* source(): AsyncGenerator<Buffer> {
      for (let i = 0; i < chunks; i++) {
        sample();
        yield chunk; // the same bytes each time: the input itself allocates nothing
      }
    }
    await pipeline(
      Readable.from(source(), { objectMode: false }),
      lz4.compressor(),
      lz4.decompressor({ contentChecksums: true }),
      new Writable({
        write(c: Buffer, _e, cb) {
          got.update(c);
          bytes += c.length;
          sample();
          cb();
        },
      }),
    );
    expect(bytes).toBe(chunks * MiB);
    expect(got.digest('hex')).toBe(want.digest('hex'));
    // One budget of dropped frames and blocks plus the few in flight; V8 alone collected only
    // after 27 MiB here (and 64-70 MiB in a restore worker thread, whose heap is quieter).
    expect(peak).toBeLessThan(GARBAGE_BUDGET + 8 * MiB);
  });
});
