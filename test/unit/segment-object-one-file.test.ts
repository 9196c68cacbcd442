// A full-path wal-push (one file per process) compresses lz4 on its own thread
// (src/io/codecs/lz4-thread.ts): the same object bytes as on the threadpool, one frame and one
// read buffer in flight, and each frame's body freed by the fs driver as soon as it is written
// (src/io/free-once-written.ts), so the call does not keep every lz4 output until it exits.
// The setting is process-wide: this file turns it on for its own module instance only.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import lz4 from 'lz4-napi';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { BufferPool, RELEASE } from '../../src/io/buffer-pool.js';
import { compressLz4OnCallingThread, lz4OnCallingThread } from '../../src/io/codecs/lz4-thread.js';
import { decodeObject, readAll } from '../../src/repo/object-stream.js';
import { encodeSegmentObject } from '../../src/wal/segment-object.js';
import { FsDriver } from '../../storage-drivers/fs/fs-driver.js';
import { fakeSegment } from '../helpers/wal-bytes.js';

const MiB = 1024 * 1024;
const dir = mkdtempSync(join(tmpdir(), 'pgark-segment-one-file-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Every page header valid; the first `share` of it compresses, the rest is random (stored frames). */
function mixedSegment(segno: bigint, size: number, share = 0.5): Buffer {
  const seg = fakeSegment(segno, { walSegmentSize: size });
  for (let page = 0; page < size * share; page += 8192) {
    for (let i = page + (page === 0 ? 40 : 24); i < page + 8192; i++) seg[i] = (i * 31 + (i >> 9)) & 0x3f;
  }
  return seg;
}

/** A pool that counts its buffers out at once. */
class CountingPool extends BufferPool {
  out = 0;
  maxOut = 0;
  override acquire(): Buffer {
    const buf = super.acquire();
    this.maxOut = Math.max(this.maxOut, ++this.out);
    const release = (buf as Buffer & { [RELEASE]: () => void })[RELEASE];
    (buf as Buffer & { [RELEASE]: () => void })[RELEASE] = () => {
      this.out--;
      release();
    };
    return buf;
  }
}

async function objectBytes(path: string, name: string, size: number, pool: BufferPool): Promise<Buffer> {
  const { stream, done } = await encodeSegmentObject(path, { name, size }, 'lz4', pool);
  const bytes = await readAll(stream, 64 * MiB);
  await done;
  return bytes;
}

describe('one-file call: lz4 on the calling thread', () => {
  const name = '000000010000000000000003';
  const raw = mixedSegment(3n, 4 * MiB);
  const path = join(dir, name);
  writeFileSync(path, raw);

  it('writes the same bytes as on the threadpool', async () => {
    expect(lz4OnCallingThread()).toBe(false);
    const pooled = await objectBytes(path, name, raw.length, new BufferPool(MiB, 8));
    compressLz4OnCallingThread();
    const sync = vi.spyOn(lz4, 'compressSync');
    const async = vi.spyOn(lz4, 'compress');
    try {
      const inline = await objectBytes(path, name, raw.length, new BufferPool(MiB, 8));
      expect(inline.equals(pooled)).toBe(true);
      expect(sync).toHaveBeenCalled();
      expect(async).not.toHaveBeenCalled();
      const decoded = await decodeObject(Readable.from([inline]), name);
      expect((await readAll(decoded, 64 * MiB)).equals(raw)).toBe(true);
      await decoded.verified;
    } finally {
      sync.mockRestore();
      async.mockRestore();
    }
  });

  it('compressible WAL: one read buffer at a time (a frame is compressed when add returns)', async () => {
    compressLz4OnCallingThread();
    const p = join(dir, 'compressible');
    writeFileSync(p, mixedSegment(5n, 4 * MiB, 1));
    const pool = new CountingPool(MiB, 8);
    const { stream, done } = await encodeSegmentObject(p, { name: '000000010000000000000005', size: 4 * MiB }, 'lz4', pool);
    await readAll(stream, 64 * MiB);
    await done;
    expect(pool.maxOut).toBe(1);
    expect(pool.out).toBe(0);
  });

  it('the fs driver frees each compressed body and hands each stored one back to its pool once written; the object decodes to the segment', async () => {
    compressLz4OnCallingThread();
    const pool = new CountingPool(MiB, 8);
    const { stream, done } = await encodeSegmentObject(path, { name, size: raw.length }, 'lz4', pool);
    const handed: Buffer[] = [];
    async function* recorded(): AsyncGenerator<Buffer> {
      for await (const c of stream) {
        handed.push(c as Buffer);
        yield c as Buffer;
      }
    }
    const driver = new FsDriver(dir);
    await driver.put('repo/object', Readable.from(recorded(), { objectMode: false, highWaterMark: 1 }), { ifAbsent: true });
    await done;
    // Each of the 4 frames: its head (lead, frame header, block size: not freed) and its body;
    // then the trailer. The 2 compressed bodies were freed; the 2 stored ones were the read
    // buffers themselves (no copy), back in the pool once written.
    expect(handed.filter((c) => c.length === 0)).toHaveLength(2);
    expect(handed.filter((c) => c.length === MiB)).toHaveLength(2);
    expect(handed.filter((c) => c.length !== 0 && c.length !== MiB).reduce((n, c) => n + c.length, 0)).toBeLessThan(1024);
    expect(pool.out).toBe(0);
    // The next MiB is read while a stored one is being written: at most two read buffers out at once.
    expect(pool.maxOut).toBeLessThanOrEqual(2);
    const stored = readFileSync(join(dir, 'repo/object'));
    const decoded = await decodeObject(Readable.from([stored]), name);
    expect((await readAll(decoded, 64 * MiB)).equals(raw)).toBe(true);
    await decoded.verified;
  });
});
