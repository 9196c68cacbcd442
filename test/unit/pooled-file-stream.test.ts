import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BufferPool, isPooled, releaseBuffer } from '../../src/io/buffer-pool.js';
import { pooledFileStream, pooledRangeStream } from '../../src/io/pooled-file-stream.js';

const dir = mkdtempSync(join(tmpdir(), 'pgark-pooled-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, size: number): { path: string; bytes: Buffer } {
  const bytes = Buffer.alloc(size);
  for (let i = 0; i < size; i++) bytes[i] = (i * 31 + (i >> 10)) & 0xff;
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return { path, bytes };
}

describe('pooledFileStream', () => {
  it.each([0, 1, 1000, 1024, 4096, 2500])('reads a %i-byte file in whole pooled chunks, the last one copied', async (size) => {
    const { path, bytes } = file(`f${size}`, size);
    const pool = new BufferPool(1024, 4);
    const chunks: Buffer[] = [];
    for await (const c of pooledFileStream(path, pool)) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).equals(bytes)).toBe(true);
    expect(chunks.map((c) => c.length)).toEqual([...Array(Math.floor(size / 1024)).fill(1024), ...(size % 1024 ? [size % 1024] : [])]);
    expect(chunks.map(isPooled)).toEqual(chunks.map((c) => c.length === 1024));
  });

  it('reuses a chunk the consumer released', async () => {
    const { path, bytes } = file('reuse', 8 * 1024);
    const pool = new BufferPool(1024, 4);
    const seen = new Set<ArrayBufferLike>();
    const out: Buffer[] = [];
    for await (const c of pooledFileStream(path, pool)) {
      out.push(Buffer.from(c as Buffer));
      seen.add((c as Buffer).buffer);
      releaseBuffer(c as Buffer);
    }
    expect(Buffer.concat(out).equals(bytes)).toBe(true);
    expect(seen.size).toBeLessThanOrEqual(3);
  });

  it('fails with the open error for a missing file', async () => {
    const read = async () => {
      for await (const _ of pooledFileStream(join(dir, 'missing'), new BufferPool(1024))) void _;
    };
    await expect(read()).rejects.toMatchObject({ code: 'ENOENT' });
  });

  describe('blocking (synchronous reads, restore)', () => {
    // Each chunk read synchronously is pushed a microtask later: pushed from within _read, it
    // would join the chunk Readable.read() returns (one fresh concatenated buffer of both, no
    // longer pooled, so the pool allocates anew for every read).
    it.each([
      [0, 0, undefined],
      [10 * 1024 + 300, 0, undefined],
      [10 * 1024 + 300, 1500, 9000],
      [4096, 0, 4096],
    ])('a %i-byte file from %i to %s: the same bytes, one pool buffer per chunk, none read ahead', async (size, start, end) => {
      const { path, bytes } = file(`b${size}-${start}`, size);
      const pool = new BufferPool(1024, 4);
      const seen = new Set<ArrayBufferLike>();
      const out: Buffer[] = [];
      const lengths: number[] = [];
      for await (const c of pooledRangeStream(await open(path, 'r'), pool, start, end, true, true)) {
        const b = c as Buffer;
        lengths.push(b.length);
        out.push(Buffer.from(b));
        if (isPooled(b)) seen.add(b.buffer);
        releaseBuffer(b);
      }
      const want = bytes.subarray(start, end ?? size);
      expect(Buffer.concat(out).equals(want)).toBe(true);
      expect(lengths.every((n) => n <= 1024)).toBe(true);
      expect(lengths.length).toBe(Math.ceil(want.length / 1024));
      // No chunk read ahead: the one in use, released before the next is read, is the only one.
      expect(seen.size).toBeLessThanOrEqual(1);
    });

    it('a read error destroys the stream with it', async () => {
      const { path } = file('b-closed', 4096);
      const fh = await open(path, 'r');
      const s = pooledRangeStream(fh, new BufferPool(1024, 4), 0, undefined, true, true);
      await fh.close(); // the handle's descriptor is gone: readSync fails
      const read = async () => {
        for await (const _ of s) void _;
      };
      await expect(read()).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
    });
  });
});
