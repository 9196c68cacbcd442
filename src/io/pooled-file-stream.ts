/**
 * A file as a stream of whole pooled chunks (the last one may be shorter). The lz4 compressor
 * hands each whole chunk back to the pool once its frame is compressed, so pushing a 16 MiB WAL
 * segment cycles through a few 1 MiB buffers instead of allocating sixteen that wait for the
 * garbage collector (peak RSS of a wal-push call; bench/results/startup.md). Other consumers
 * simply drop the chunks, as with fs.createReadStream.
 */
import { readSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { releaseBuffer, SliceTracker, type BufferPool } from './buffer-pool.js';

/** Fills `buf` from `position` until it is full or the file ends; returns the bytes read. */
export async function readInto(fh: FileHandle, buf: Buffer, position: number): Promise<number> {
  let got = 0;
  while (got < buf.length) {
    const { bytesRead } = await fh.read(buf, got, buf.length - got, position + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return got;
}

/** readInto, synchronously on the calling thread (no thread-pool hop). */
export function readIntoSync(fd: number, buf: Buffer, position: number): number {
  let got = 0;
  while (got < buf.length) {
    const n = readSync(fd, buf, got, buf.length - got, position + got);
    if (n === 0) break;
    got += n;
  }
  return got;
}

/**
 * The bytes of a file from `position` to `end` (exclusive; undefined: to the end of the file) as
 * pooled chunks: whole pool buffers, the last, shorter one a copy so its buffer goes back at once.
 * Reads a path it opens itself, or a handle it is given; closes the handle when done or destroyed.
 */
class PooledFileStream extends Readable {
  /** Set by openPath when the stream reads a path it opens itself. */
  fh: FileHandle | undefined;
  readonly path: string | undefined;

  constructor(source: string | FileHandle, private readonly pool: BufferPool, private position: number, private readonly end: number | undefined, private readonly lendLast = false, private readonly blocking = false) {
    // One chunk read ahead at most: the consumer holds the rest. Blocking: none (a chunk read
    // ahead would be read on the same thread anyway, only earlier, and hold one more buffer).
    // A stream given a handle has no construct step: with a high-water mark of 0, Readable
    // would not call _read after it (the first read() came before and found it unconstructed).
    super({ highWaterMark: blocking ? 0 : 1, ...(typeof source === 'string' ? { construct: openPath } : {}) });
    if (typeof source === 'string') this.path = source;
    else this.fh = source;
  }

  override _read(): void {
    const fh = this.fh;
    if (fh === undefined) return;
    const left = this.end === undefined ? Infinity : this.end - this.position;
    if (left <= 0) {
      this.push(null);
      return;
    }
    const buf = this.pool.acquire();
    const want = Math.min(buf.length, left);
    const into = want === buf.length ? buf : buf.subarray(0, want);
    if (this.blocking) {
      // Read now, push a microtask later: pushed from within _read, the chunk would join the one
      // Readable.read() is about to return (it returns everything buffered, concatenated into a
      // fresh buffer: a copy, and neither pooled buffer would go back to the pool).
      let got: number;
      try {
        got = readIntoSync(fh.fd, into, this.position);
      } catch (err) {
        releaseBuffer(buf);
        queueMicrotask(() => this.destroy(err as Error));
        return;
      }
      queueMicrotask(() => this.delivered(buf, got));
      return;
    }
    readInto(fh, into, this.position).then((got) => this.delivered(buf, got), (err: Error) => {
      releaseBuffer(buf);
      this.destroy(err);
    });
  }

  /** `got` bytes were read into `buf` at the stream's position: pushed (and the end, if it is). */
  private delivered(buf: Buffer, got: number): void {
    this.position += got;
    if (got === buf.length) {
      this.push(buf);
      return;
    }
    // Short: the file or the range ended. With `lendLast`, a chunk at least half the buffer is
    // handed out as a pooled view (its release hands the buffer back: a consumer that
    // releases, object-reader.ts, copies nothing; one that does not pins at most twice its
    // bytes until it drops them); otherwise its bytes are copied out of the pooled buffer.
    if (this.lendLast && got * 2 >= buf.length) {
      const t = new SliceTracker(buf);
      const view = t.slice(0, got);
      t.done();
      this.push(view);
      this.push(null);
      return;
    }
    const rest = got > 0 ? Buffer.from(buf.subarray(0, got)) : undefined;
    releaseBuffer(buf);
    if (rest) this.push(rest);
    this.push(null);
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    const fh = this.fh;
    this.fh = undefined;
    if (!fh) return callback(err);
    fh.close().then(() => callback(err), (closeErr: Error) => callback(err ?? closeErr));
  }
}

/** The construct step of a stream that reads a path: opens it. */
function openPath(this: Readable, callback: (err?: Error | null) => void): void {
  const stream = this as PooledFileStream;
  open(stream.path!, 'r').then((fh) => {
    stream.fh = fh;
    callback();
  }, callback);
}

export function pooledFileStream(path: string, pool: BufferPool): Readable {
  return new PooledFileStream(path, pool, 0, undefined);
}

/**
 * The bytes of an open file from `start` (to `end`, exclusive, or its end), as pooled chunks;
 * closes `fh` when done or destroyed. `lendLast`: a last, short chunk of at least half a buffer
 * is a pooled view too (for consumers that release what they are done with), not a copy.
 * `blocking`: each chunk is read synchronously when the stream is asked for it (the caller's
 * thread has nothing else to do meanwhile: restore's lanes), without a hop to libuv's thread
 * pool and back per chunk.
 */
export function pooledRangeStream(fh: FileHandle, pool: BufferPool, start: number, end: number | undefined, lendLast = false, blocking = false): Readable {
  return new PooledFileStream(fh, pool, start, end, lendLast, blocking);
}
