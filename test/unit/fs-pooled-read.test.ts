/**
 * The fs driver's pooled object reads (storage-drivers/fs/pooled-read.ts) and the object reader
 * handing its stored chunks back (src/repo/object-reader.ts): the exact bytes of every range
 * around the 1 MiB chunk size; full chunks come from the thread's pool and a released one is the
 * next read's buffer; the object reader releases every pooled chunk once it is used up, and
 * reads right even when the producer reuses each released buffer at once.
 */
import { randomBytes } from 'node:crypto';
import { open, writeFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { BufferPool, isPooled, RELEASE, releaseBuffer, SliceTracker } from '../../src/io/buffer-pool.js';
import type { CodecName } from '../../src/io/codec.js';
import { openObjectReader } from '../../src/repo/object-reader.js';
import { encodeObject, readAll } from '../../src/repo/object-stream.js';
import { FsDriver } from '../../storage-drivers/fs/fs-driver.js';
import { pooledRangeStream, READ_CHUNK } from '../../storage-drivers/fs/pooled-read.js';

const MiB = 1024 * 1024;
const dir = await mkdtemp(join(tmpdir(), 'pgark-pooled-read-'));
afterAll(() => rm(dir, { recursive: true, force: true }));

async function collect(s: Readable): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for await (const c of s) out.push(Buffer.from(c as Buffer));
  return out;
}

describe('pooledRangeStream', () => {
  const sizes = [0, 1, READ_CHUNK - 1, READ_CHUNK, READ_CHUNK + 1, 3 * READ_CHUNK + 5];
  for (const size of sizes) {
    it(`a ${size}-byte file: whole, and ranges across the chunk size`, async () => {
      const data = randomBytes(size);
      const path = join(dir, `f${size}`);
      await writeFile(path, data);
      const ranges: Array<[number, number | undefined]> = [
        [0, undefined],
        [Math.min(7, size), undefined],
        [0, Math.min(READ_CHUNK, size)],
        [Math.min(READ_CHUNK - 3, size), Math.min(READ_CHUNK + 9, size)],
        [Math.max(0, size - 10), size],
        [0, size + 100], // past the end: the file's bytes
      ];
      for (const [start, end] of ranges) {
        const got = Buffer.concat(await collect(pooledRangeStream(await open(path, 'r'), start, end)));
        expect(got.equals(data.subarray(start, end === undefined ? size : Math.min(end, size)))).toBe(true);
      }
    });
  }

  it('full chunks come from the pool and a released one is read into again; the last, short chunk is a copy', async () => {
    const path = join(dir, 'pool');
    const data = randomBytes(8 * READ_CHUNK + 100);
    await writeFile(path, data);
    const seen: Buffer[] = [];
    const copies: Buffer[] = [];
    for await (const c of pooledRangeStream(await open(path, 'r'), 0, undefined)) {
      const b = c as Buffer;
      seen.push(b);
      copies.push(Buffer.from(b));
      releaseBuffer(b);
    }
    expect(Buffer.concat(copies).equals(data)).toBe(true);
    expect(seen.map((b) => b.length)).toEqual([...Array(8).fill(READ_CHUNK), 100]);
    // Nine reads through a few buffers (one read ahead), not a fresh buffer per read.
    expect(new Set(seen.slice(0, 8).map((b) => b.buffer)).size).toBeLessThanOrEqual(3);
    // The short last chunk (under half a buffer) is its own copy: the pooled buffer it was read into went back at once.
    expect(seen.slice(0, 8).some((b) => b.buffer === seen[8]!.buffer)).toBe(false);
  });

  it('a last chunk of at least half a buffer is a pooled view, not a copy; released, its buffer is read into again', async () => {
    const path = join(dir, 'lend');
    const data = randomBytes(2 * READ_CHUNK + READ_CHUNK / 2 + 1);
    await writeFile(path, data);
    const first: Buffer[] = [];
    const copies: Buffer[] = [];
    for await (const c of pooledRangeStream(await open(path, 'r'), 0, undefined)) {
      first.push(c as Buffer);
      copies.push(Buffer.from(c as Buffer));
    }
    expect(Buffer.concat(copies).equals(data)).toBe(true);
    const last = first[2]!;
    expect(last.length).toBe(READ_CHUNK / 2 + 1);
    expect(isPooled(last)).toBe(true);
    expect(last.buffer.byteLength).toBeGreaterThanOrEqual(READ_CHUNK);
    for (const b of first) releaseBuffer(b);
    // The released buffers are the next reads' buffers.
    const again: Buffer[] = [];
    for await (const c of pooledRangeStream(await open(path, 'r'), 0, READ_CHUNK)) again.push(c as Buffer);
    expect(first.map((b) => b.buffer)).toContain(again[0]!.buffer);
    expect(again[0]!.equals(data.subarray(0, READ_CHUNK))).toBe(true);
  });
});

describe('object reader with pooled stored chunks', () => {
  async function stored(data: Buffer, codec: CodecName): Promise<Buffer> {
    const { stream, done } = await encodeObject(Readable.from([data]), codec);
    const [out] = await Promise.all([readAll(stream), done]);
    return out;
  }

  for (const codec of ['none', 'lz4'] as CodecName[]) {
    it(`${codec}: every pooled chunk goes back once used up, and one reused buffer reads right`, async () => {
      const data = Buffer.concat([randomBytes(MiB + 333), Buffer.alloc(2 * MiB, 7), randomBytes(4321)]);
      const obj = await stored(data, codec);
      // A producer with a pool of one: each chunk is copied into the buffer released last (a
      // release before the reader is done with the bytes would corrupt what it returns).
      // A released buffer is scribbled over at once, so bytes returned from one released too
      // early differ. The last, short chunk is a pooled view (as the fs driver lends it).
      const pool = new BufferPool(256 * 1024, 1);
      const handed: Buffer[] = [];
      const scribbled = (b: Buffer): Buffer => {
        const release = (b as Buffer & { [RELEASE]?: () => void })[RELEASE]!;
        (b as Buffer & { [RELEASE]?: () => void })[RELEASE] = () => {
          b.fill(0xee);
          release();
        };
        return b;
      };
      async function* producer(): AsyncGenerator<Buffer> {
        for (let i = 0; i < obj.length; i += 256 * 1024) {
          const piece = obj.subarray(i, i + 256 * 1024);
          const b = scribbled(pool.acquire());
          piece.copy(b);
          let chunk = b;
          if (piece.length < pool.size) {
            const t = new SliceTracker(b);
            chunk = t.slice(0, piece.length);
            t.done();
          }
          handed.push(chunk);
          yield chunk;
        }
      }
      const r = await openObjectReader(Readable.from(producer(), { highWaterMark: 1 }), 'stanza/x/data/1');
      const parts: Buffer[] = [];
      for (let c = await r.next(); c !== null; c = await r.next()) parts.push(Buffer.from(c));
      expect(Buffer.concat(parts).equals(data)).toBe(true);
      expect(r.trailer?.rawSize).toBe(data.length);
      expect(handed.length).toBeGreaterThan(4);
      expect(handed[handed.length - 1]!.length).toBeLessThan(pool.size);
      // Every chunk goes back, the first one (read for the header: openStoredHead hands it to
      // the reader instead of putting a copy back) and the last, short one included.
      expect(handed.filter((b) => isPooled(b))).toEqual([]);
      // The buffers were reused (one pool slot), not all fresh ones.
      expect(new Set(handed.map((b) => b.buffer)).size).toBeLessThan(handed.length);
    });
  }

  it('closed before the end (a bundle read up to its last needed file), the chunk in use goes back', async () => {
    const data = randomBytes(3 * MiB);
    const obj = await stored(data, 'none');
    // A pool that keeps nothing: a released buffer is never handed out again, so each one shows whether it was released.
    const pool = new BufferPool(MiB, 0);
    const handed: Buffer[] = [];
    async function* producer(): AsyncGenerator<Buffer> {
      for (let i = 0; i < obj.length; i += MiB) {
        const piece = obj.subarray(i, i + MiB);
        const b = piece.length === MiB ? pool.acquire() : Buffer.from(piece);
        piece.copy(b);
        handed.push(b);
        yield b;
      }
    }
    const r = await openObjectReader(Readable.from(producer(), { highWaterMark: 1 }), 'stanza/x/data/2');
    const c1 = Buffer.from((await r.next())!);
    const c2 = Buffer.from((await r.next())!);
    expect(Buffer.concat([c1, c2]).equals(data.subarray(0, c1.length + c2.length))).toBe(true);
    expect(isPooled(handed[1]!)).toBe(true);
    await r.close();
    // The first chunk (the header's) went back when used up, the second, in use, at close.
    expect(isPooled(handed[0]!)).toBe(false);
    expect(isPooled(handed[1]!)).toBe(false);
  });

  it('through the fs driver: the same bytes and trailer as stored', async () => {
    const driver = new FsDriver(dir);
    const data = Buffer.concat([randomBytes(2 * MiB + 17), Buffer.alloc(MiB, 1)]);
    for (const codec of ['none', 'lz4'] as CodecName[]) {
      await driver.put(`obj-${codec}`, await stored(data, codec));
      const r = await openObjectReader(await driver.get(`obj-${codec}`), `obj-${codec}`);
      const parts: Buffer[] = [];
      for (let c = await r.next(); c !== null; c = await r.next()) parts.push(Buffer.from(c));
      expect(Buffer.concat(parts).equals(data)).toBe(true);
      expect(r.trailer?.rawSize).toBe(data.length);
    }
    // The driver's reads are the pooled ones: full chunks a reader may hand back.
    const raw: Buffer[] = [];
    for await (const c of await driver.get('obj-none')) raw.push(c as Buffer);
    expect(raw.slice(0, 3).map((b) => [b.length, isPooled(b)])).toEqual([[READ_CHUNK, true], [READ_CHUNK, true], [READ_CHUNK, true]]);
  });
});
