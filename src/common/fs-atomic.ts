/** Local file helpers: hash a file, write a stream atomically (temp, fsync, rename, fsync dir). */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

export async function sha256File(path: string): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 })) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { sha256: hash.digest('hex'), size };
}

export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Temp name beside `dest`; recognisable so that stale ones can be cleaned up. */
export function tempPathFor(dest: string): string {
  return join(dirname(dest), `.${basename(dest)}.pgark-tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
}

/**
 * Write `source` to `dest` so that `dest` either keeps its old state or has the complete new
 * content: temp file in the same directory, fsync, rename, fsync of the directory. The chunks are
 * taken one at a time and each written before the next is asked for (no stream stages holding
 * chunks of their own: a restored WAL segment passes as 1 MiB blocks, bench/results/memory.md).
 */
export async function writeFileAtomic(dest: string, source: AsyncIterable<Buffer> | Iterable<Buffer>, mode = 0o600): Promise<number> {
  const tmp = tempPathFor(dest);
  let size = 0;
  try {
    const fh = await open(tmp, 'wx', mode);
    try {
      for await (const chunk of source) {
        for (let off = 0; off < chunk.length; ) off += (await fh.write(chunk, off, chunk.length - off)).bytesWritten;
        size += chunk.length;
      }
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, dest);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  await fsyncDir(dirname(dest));
  return size;
}

/** writeFileAtomic for a small text (configuration files, signal files). */
export async function writeTextAtomic(dest: string, text: string, mode = 0o600): Promise<void> {
  await writeFileAtomic(dest, [Buffer.from(text, 'utf8')], mode);
}
