/** Local file helpers: hash a file, write a stream atomically (temp, fsync, rename, fsync dir). */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';

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
 * content: temp file in the same directory, fsync, rename, fsync of the directory.
 */
export async function writeFileAtomic(dest: string, source: Readable, mode = 0o600): Promise<number> {
  const tmp = tempPathFor(dest);
  let size = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      size += chunk.length;
      cb(null, chunk);
    },
  });
  try {
    await pipeline(source, counter, createWriteStream(tmp, { mode, flags: 'wx' }));
    const fh = await open(tmp, 'r+');
    try {
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
  await writeFileAtomic(dest, Readable.from([Buffer.from(text, 'utf8')]), mode);
}
