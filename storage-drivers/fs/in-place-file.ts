/**
 * A preallocated file overwritten in place (the fs driver's createInPlace): created like a
 * put (temp file of zeros, fsync, link so an existing file is never replaced, fsync of the
 * directory), then written with pwrite and made durable with fdatasync alone: its blocks are
 * allocated and written once, so a write inside them changes no metadata and the sync costs
 * no journal commit of the filesystem (what pg_receivewal does with its `.partial` segment).
 * Used for pgark receive's received-WAL journal (src/wal/received-journal.ts).
 */
import { closeSync, fdatasyncSync, writeSync, writevSync } from 'node:fs';
import { link, open, unlink, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { AlreadyExistsError } from '../../src/common/errors.js';
import type { InPlaceFile } from '../types.js';
import { ensureDir, fsyncDir } from './dirs.js';
import { errnoOf } from './errors.js';
import { tempPathFor } from './temp.js';

const ZEROS = Buffer.alloc(1024 * 1024);

async function writeZeros(fh: FileHandle, from: number, to: number): Promise<void> {
  for (let pos = from; pos < to; ) {
    const n = Math.min(ZEROS.length, to - pos);
    const { bytesWritten } = await fh.write(ZEROS, 0, n, pos);
    pos += bytesWritten;
  }
}

/** Create `finalPath` holding `size` zero bytes, durably; AlreadyExistsError when it exists. `key` names it in errors. */
export async function createInPlaceFile(key: string, finalPath: string, size: number): Promise<InPlaceFile> {
  await ensureDir(dirname(finalPath));
  const tmp = tempPathFor(finalPath);
  let fh: FileHandle | undefined = await open(tmp, 'wx+', 0o600);
  let linked = false;
  try {
    await writeZeros(fh, 0, size);
    await fh.sync();
    try {
      await link(tmp, finalPath);
    } catch (err) {
      if (errnoOf(err) === 'EEXIST') throw new AlreadyExistsError(key);
      throw err;
    }
    linked = true;
    await unlink(tmp).catch(() => undefined);
    await fsyncDir(dirname(finalPath));
    const file = new FsInPlaceFile(fh, size);
    fh = undefined;
    return file;
  } finally {
    if (fh) {
      await fh.close().catch(() => undefined);
      if (!linked) await unlink(tmp).catch(() => undefined);
    }
  }
}

class FsInPlaceFile implements InPlaceFile {
  constructor(private fh: FileHandle | undefined, private allocated: number) {}

  private get fd(): number {
    if (!this.fh) throw new Error('in-place file is closed');
    return this.fh.fd;
  }

  get size(): number {
    return this.allocated;
  }

  async grow(size: number): Promise<void> {
    if (size <= this.allocated) return;
    await writeZeros(this.fh!, this.allocated, size);
    this.allocated = size;
  }

  writeSync(buffers: readonly Buffer[], pos: number): void {
    const total = buffers.reduce((n, b) => n + b.length, 0);
    // At or below the end: in place, or extending the file (no hole).
    if (pos > this.allocated) throw new RangeError(`in-place write at ${pos}, past the end of the file (${this.allocated} bytes)`);
    this.allocated = Math.max(this.allocated, pos + total);
    let done = writevSync(this.fd, buffers as Buffer[], pos);
    // A short writev (rare): the rest one buffer at a time.
    for (let i = 0, off = 0; done < total && i < buffers.length; off += buffers[i]!.length, i++) {
      const b = buffers[i]!;
      if (done >= off + b.length) continue;
      for (let k = done - off; k < b.length; ) {
        const n = writeSync(this.fd, b, k, b.length - k, pos + off + k);
        k += n;
        done += n;
      }
    }
  }

  datasyncSync(): void {
    fdatasyncSync(this.fd);
  }

  async datasync(): Promise<void> {
    await this.fh!.datasync();
  }

  async close(): Promise<void> {
    const fh = this.fh;
    this.fh = undefined;
    if (!fh) return;
    try {
      await fh.close();
    } catch {
      closeSync(fh.fd);
    }
  }
}
