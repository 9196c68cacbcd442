// PGARK_LZ4_BLOCK_KIB=64 (io/codecs/lz4.ts: frames of 64 KiB blocks, the memory trade of
// docs/OPERATIONS.md "Memory"): the frame layout it writes, read back by our decoder, `lz4 -d`
// and lz4-napi; and every check of the one-pass encoder (byte-identical to the stream pipeline,
// buffers handed back) run again with it. The setting is read when io/codecs/lz4.ts loads, so it
// is set before anything imports it (this file runs in its own process: vitest's forks pool).
import { spawnSync } from 'node:child_process';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { pseudoRandom } from '../helpers/bytes.js';

process.env.PGARK_LZ4_BLOCK_KIB = '64';
await import('./one-pass-encoder.test.js');

const KiB = 1024;
const MiB = 1024 * KiB;

function compressible(n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + (i >> 9)) & 0x3f;
  return b;
}

describe('lz4 frames with PGARK_LZ4_BLOCK_KIB=64', () => {
  it('are one frame per 1 MiB chunk of independent blocks of at most 64 KiB (BD 64 KiB), incompressible blocks stored as they are; our decoder, lz4 -d and lz4-napi read them', async () => {
    const { loadCodec } = await import('../../src/io/codec.js');
    const { LZ4_BLOCK } = await import('../../src/io/codecs/lz4.js');
    expect(LZ4_BLOCK).toBe(64 * KiB);
    const codec = await loadCodec('lz4');
    const input = Buffer.concat([compressible(MiB), pseudoRandom(MiB, 11), compressible(333_333)]);
    const chunks: Buffer[] = [];
    await pipeline(Readable.from([input]), codec.compressor(), new Writable({ write(c: Buffer, _e, cb) { chunks.push(Buffer.from(c)); cb(); } }));
    const packed = Buffer.concat(chunks);
    const frames: Array<{ at: number; end: number; blocks: Array<{ raw: boolean; size: number }> }> = [];
    let pos = 0;
    while (pos < packed.length) {
      const at = pos;
      expect(packed.readUInt32LE(pos)).toBe(0x184d2204);
      expect(packed[pos + 4]).toBe(0x60); // version 01, independent blocks, no checksums, no content size
      expect(packed[pos + 5]).toBe(0x40); // 64 KiB block maximum
      pos += 7;
      const blocks: Array<{ raw: boolean; size: number }> = [];
      for (let field = packed.readUInt32LE(pos); field !== 0; field = packed.readUInt32LE(pos)) {
        const size = field & 0x7fffffff;
        expect(size).toBeLessThanOrEqual(64 * KiB);
        blocks.push({ raw: (field & 0x80000000) !== 0, size });
        pos += 4 + size;
      }
      pos += 4; // end mark
      frames.push({ at, end: pos, blocks });
    }
    expect(pos).toBe(packed.length);
    expect(frames.map((f) => f.blocks.length)).toEqual([16, 16, 6]);
    expect(frames[0]!.blocks.every((b) => !b.raw)).toBe(true);
    expect(frames[1]!.blocks.every((b) => b.raw && b.size === 64 * KiB)).toBe(true);
    expect(frames[2]!.blocks.every((b) => !b.raw)).toBe(true);
    const out: Buffer[] = [];
    await pipeline(Readable.from([packed]), codec.decompressor(), new Writable({ write(c: Buffer, _e, cb) { out.push(Buffer.from(c)); cb(); } }));
    expect(Buffer.concat(out).equals(input)).toBe(true);
    const lz4cli = spawnSync('lz4', ['-d', '-c'], { input: packed, maxBuffer: 64 * MiB });
    if (lz4cli.error) throw new Error(`the lz4 command is needed for this test (apt-get install lz4): ${lz4cli.error.message}`);
    expect(lz4cli.stdout.equals(input)).toBe(true);
    const lz4napi = (await import('lz4-napi')).default;
    frames.forEach((f, i) => {
      expect(lz4napi.decompressFrameSync(packed.subarray(f.at, f.end)).equals(input.subarray(i * MiB, Math.min(input.length, (i + 1) * MiB)))).toBe(true);
    });
  });
});
