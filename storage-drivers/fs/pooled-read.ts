/**
 * The fs driver's object reads: 1 MiB reads into buffers from this thread's pool instead of a
 * fresh 1 MiB buffer per read (fs.createReadStream). A reader that is done with a chunk hands it
 * back (`releaseBuffer`, src/io/buffer-pool.ts; src/repo/object-reader.ts does for restore and
 * wal-fetch), so a restore cycles through a few buffers where it dropped every one it read and
 * left them to the garbage collector (~9 MiB less peak RSS per restore, fewer forced
 * collections: bench/results/memory.md). A consumer that never releases simply drops them, as
 * before. Full chunks are handed out as they are; the last, shorter one is a copy, so the pooled
 * buffer goes back at once.
 */
import type { FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { BufferPool, releaseBuffer } from '../../src/io/buffer-pool.js';
import { readInto } from '../../src/io/pooled-file-stream.js';

export const READ_CHUNK = 1024 * 1024;

/** This thread's read buffers (module state is per thread: each worker isolate has its own). */
const pool = new BufferPool(READ_CHUNK, 4);

class PooledRangeStream extends Readable {
  private fh: FileHandle | undefined;

  /** `end`: exclusive; undefined reads to the end of the file. */
  constructor(fh: FileHandle, private position: number, private readonly end: number | undefined) {
    // One chunk read ahead at most: the consumer holds the rest.
    super({ highWaterMark: 1 });
    this.fh = fh;
  }

  override _read(): void {
    const fh = this.fh;
    if (fh === undefined) return;
    const want = this.end === undefined ? READ_CHUNK : Math.min(READ_CHUNK, this.end - this.position);
    if (want <= 0) {
      this.push(null);
      return;
    }
    const buf = pool.acquire();
    readInto(fh, want === READ_CHUNK ? buf : buf.subarray(0, want), this.position).then(
      (got) => {
        this.position += got;
        if (got === READ_CHUNK) {
          this.push(buf);
          return;
        }
        const rest = got > 0 ? Buffer.from(buf.subarray(0, got)) : undefined;
        releaseBuffer(buf);
        if (rest !== undefined) this.push(rest);
        // Fewer bytes than asked: the file ended; else the range is done.
        if (got < want || (this.end !== undefined && this.position >= this.end)) this.push(null);
      },
      (err: Error) => {
        releaseBuffer(buf);
        this.destroy(err);
      },
    );
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    const fh = this.fh;
    this.fh = undefined;
    if (!fh) return callback(err);
    fh.close().then(() => callback(err), (closeErr: Error) => callback(err ?? closeErr));
  }
}

/** The bytes of an open file from `start` (to `end`, exclusive, or its end), as pooled chunks; closes `fh` when done or destroyed. */
export function pooledRangeStream(fh: FileHandle, start: number, end: number | undefined): Readable {
  return new PooledRangeStream(fh, start, end);
}
