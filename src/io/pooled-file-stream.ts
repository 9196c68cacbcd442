/**
 * A file as a stream of whole pooled chunks (the last one may be shorter). The lz4 compressor
 * hands each whole chunk back to the pool once its frame is compressed, so pushing a 16 MiB WAL
 * segment cycles through a few 1 MiB buffers instead of allocating sixteen that wait for the
 * garbage collector (peak RSS of a wal-push call; bench/results/startup.md). Other consumers
 * simply drop the chunks, as with fs.createReadStream.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { releaseBuffer, type BufferPool } from './buffer-pool.js';

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

class PooledFileStream extends Readable {
  private fh: FileHandle | undefined;
  private position = 0;

  constructor(private readonly path: string, private readonly pool: BufferPool) {
    // One chunk read ahead at most: the consumer holds the rest.
    super({ highWaterMark: 1 });
  }

  override _construct(callback: (err?: Error | null) => void): void {
    open(this.path, 'r').then((fh) => {
      this.fh = fh;
      callback();
    }, callback);
  }

  override _read(): void {
    const buf = this.pool.acquire();
    readInto(this.fh!, buf, this.position).then((got) => {
      this.position += got;
      if (got === buf.length) {
        this.push(buf);
        return;
      }
      // A short read is the end of the file: its bytes are copied out of the pooled buffer.
      const rest = got > 0 ? Buffer.from(buf.subarray(0, got)) : undefined;
      releaseBuffer(buf);
      if (rest) this.push(rest);
      this.push(null);
    }, (err: Error) => {
      releaseBuffer(buf);
      this.destroy(err);
    });
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    const fh = this.fh;
    this.fh = undefined;
    if (!fh) return callback(err);
    fh.close().then(() => callback(err), (closeErr: Error) => callback(err ?? closeErr));
  }
}

export function pooledFileStream(path: string, pool: BufferPool): Readable {
  return new PooledFileStream(path, pool);
}
