/**
 * The fs driver's object reads: 512 KiB reads into buffers from this thread's pool instead of a
 * fresh buffer per read (fs.createReadStream). A reader that is done with a chunk hands it
 * back (`releaseBuffer`, src/io/buffer-pool.ts; src/repo/object-reader.ts does for restore and
 * wal-fetch), so a restore cycles through a few buffers where it dropped every one it read and
 * left them to the garbage collector (~9 MiB less peak RSS per restore, fewer forced
 * collections: bench/results/memory.md). A consumer that never releases simply drops them, as
 * before. Full chunks are handed out as they are; the last, shorter one too (a pooled view) when
 * it fills at least half a buffer, else it is a copy, so the pooled buffer goes back at once.
 */
import type { FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { BufferPool } from '../../src/io/buffer-pool.js';
import { pooledRangeStream as rangeStream } from '../../src/io/pooled-file-stream.js';

/**
 * 512 KiB: a lane holds two of them (the chunk in use and the one read ahead). Against 1 MiB
 * reads this measured 1.5-3 MiB less peak RSS at `restore --jobs 2` and the same CPU and wall
 * (bench/results/restore.md, "Buffers in flight per lane"): a stored lz4 block that spans two
 * reads is gathered by the object reader (one buffer per thread, reused), an uncompressed one
 * is passed on piece by piece.
 */
export const READ_CHUNK = 512 * 1024;

/** This thread's read buffers (module state is per thread: each worker isolate has its own). */
const pool = new BufferPool(READ_CHUNK, 4);

/**
 * The bytes of an open file from `start` (to `end`, exclusive, or its end), as pooled chunks;
 * closes `fh` when done or destroyed. `blocking`: read synchronously (GetOptions.blocking).
 */
export function pooledRangeStream(fh: FileHandle, start: number, end: number | undefined, blocking = false): Readable {
  return rangeStream(fh, pool, start, end, true, blocking);
}
