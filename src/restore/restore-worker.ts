/**
 * Worker thread of `pgark restore`: writes files from objects, checking every byte against the
 * manifest's sha256 before the file counts as restored. With --delta a file that already has the
 * manifest's size and sha256 is left alone, and an object none of whose files need writing is
 * not read at all.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { chmod, open, stat, utimes, type FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { IntegrityError, isNodeError } from '../common/errors.js';
import { serveWorker } from '../common/worker-pool.js';
import type { Settings } from '../config/resolve.js';
import { dataObjectKey } from '../repo/layout.js';
import type { Repository } from '../repo/repository.js';
import { blockLength, layerBlocks, type Layer, type RestoreFile, type RestoreTask } from './plan.js';
import { targetPath, type PathMapping } from './restore-worker-paths.js';

export interface RestoreWorkerInit extends PathMapping {
  settings: Settings;
  delta: boolean;
}

export interface RestoreTaskResult {
  written: number;
  skipped: number;
  bytes: number;
}

let repoPromise: Promise<Repository> | undefined;
function repository(init: RestoreWorkerInit): Promise<Repository> {
  repoPromise ??= import('../cli/context.js').then((m) => m.openRepository(init.settings));
  return repoPromise;
}

/** Reads exact byte counts from a stream. */
class ExactReader {
  private readonly it: AsyncIterator<Buffer>;
  private buf: Buffer = Buffer.alloc(0);
  private pos = 0;
  constructor(stream: Readable, private readonly where: string) {
    this.it = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  }

  /** Up to `n` bytes as one or more slices, exactly `n` unless the stream ends (then IntegrityError). */
  async *take(n: number): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (this.pos >= this.buf.length) {
        const r = await this.it.next();
        if (r.done) throw new IntegrityError(`unable to restore from '${this.where}': object ends ${left} bytes early`);
        this.buf = r.value;
        this.pos = 0;
      }
      const k = Math.min(left, this.buf.length - this.pos);
      yield this.buf.subarray(this.pos, this.pos + k);
      this.pos += k;
      left -= k;
    }
  }

  async skip(n: number): Promise<void> {
    for await (const _ of this.take(n)) void _;
  }

  async close(): Promise<void> {
    await this.it.return?.();
  }
}

async function sameContent(path: string, f: RestoreFile): Promise<boolean> {
  try {
    const st = await stat(path);
    if (!st.isFile() || st.size !== f.size) return false;
  } catch (err) {
    if (isNodeError(err, 'ENOENT') || isNodeError(err, 'ENOTDIR')) return false;
    throw err;
  }
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 })) h.update(chunk as Buffer);
  return h.digest('hex') === f.sha256;
}

class FileWriter {
  private readonly hash = createHash('sha256');
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private written = 0;
  private constructor(private readonly fh: FileHandle, private readonly abs: string, private readonly f: RestoreFile) {}

  static async open(abs: string, f: RestoreFile): Promise<FileWriter> {
    return new FileWriter(await open(abs, 'w', 0o600), abs, f);
  }

  async write(chunk: Buffer): Promise<void> {
    this.hash.update(chunk);
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    if (this.pendingBytes >= 1024 * 1024) await this.flush();
  }

  private async flush(): Promise<void> {
    if (this.pendingBytes === 0) return;
    const data = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    let off = 0;
    while (off < data.length) {
      const { bytesWritten } = await this.fh.write(data, off, data.length - off, this.written + off);
      off += bytesWritten;
    }
    this.written += data.length;
  }

  async finish(where: string): Promise<void> {
    try {
      await this.flush();
      const sha = this.hash.digest('hex');
      if (this.written !== this.f.size || sha !== this.f.sha256) {
        throw new IntegrityError(`restored '${this.f.path}' does not match the manifest (${this.written} bytes, sha256 ${sha.slice(0, 16)}…; expected ${this.f.size} bytes, ${this.f.sha256.slice(0, 16)}…) from ${where}`);
      }
      await this.fh.sync();
    } finally {
      await this.fh.close();
    }
    if ((this.f.mode & 0o7777) !== 0o600) await chmod(this.abs, this.f.mode & 0o7777);
    await utimes(this.abs, new Date(this.f.mtimeMs), new Date(this.f.mtimeMs));
  }

  async abandon(): Promise<void> {
    await this.fh.close().catch(() => undefined);
  }
}

async function openSlice(repo: Repository, init: RestoreWorkerInit, backup: string, n: number, offset: number): Promise<ExactReader> {
  const key = dataObjectKey(init.settings.stanza, backup, n);
  const r = new ExactReader(await repo.getObject(key), key);
  if (offset > 0) await r.skip(offset);
  return r;
}

export async function runRestoreTask(init: RestoreWorkerInit, task: RestoreTask, progress: (bytes: number) => void): Promise<RestoreTaskResult> {
  const res: RestoreTaskResult = { written: 0, skipped: 0, bytes: 0 };
  if (task.kind === 'empty') {
    for (const f of task.files) {
      const w = await FileWriter.open(targetPath(init, f.path), f);
      await w.finish('an empty file');
      res.written++;
    }
    return res;
  }
  const repo = await repository(init);
  if (task.kind === 'object') {
    const needed = new Set<string>();
    for (const f of task.files) {
      if (init.delta && (await sameContent(targetPath(init, f.path), f))) {
        res.skipped++;
        progress(f.size);
      } else needed.add(f.path);
    }
    if (needed.size === 0) return res;
    const key = dataObjectKey(init.settings.stanza, task.backup, task.n);
    const reader = await openSlice(repo, init, task.backup, task.n, 0);
    try {
      let pos = 0;
      for (const f of task.files) {
        if (!needed.has(f.path)) continue;
        if (f.offset < pos) throw new IntegrityError(`manifest places '${f.path}' inside another file of object '${key}'`);
        await reader.skip(f.offset - pos);
        const w = await FileWriter.open(targetPath(init, f.path), f);
        try {
          for await (const chunk of reader.take(f.size)) {
            await w.write(chunk);
            progress(chunk.length);
          }
        } catch (err) {
          await w.abandon();
          throw err;
        }
        await w.finish(`object '${key}'`);
        pos = f.offset + f.size;
        res.written++;
        res.bytes += f.size;
      }
    } finally {
      await reader.close();
    }
    return res;
  }
  // Rebuild a file from layers.
  const f = task.file;
  const abs = targetPath(init, f.path);
  if (init.delta && (await sameContent(abs, f))) {
    progress(f.size);
    return { written: 0, skipped: 1, bytes: 0 };
  }
  const bs = task.blockSize;
  const layers = task.layers;
  const readers: ExactReader[] = [];
  const iters: Array<{ layer: Layer; blocks: Generator<number>; next: IteratorResult<number> }> = [];
  try {
    for (const l of layers) {
      if (l.n < 0) {
        readers.push(null as unknown as ExactReader);
        const blocks = layerBlocks({ ...l, size: 0 } as Layer, bs);
        iters.push({ layer: l, blocks, next: blocks.next() });
        continue;
      }
      readers.push(await openSlice(repo, init, l.backup, l.n, l.offset));
      const blocks = layerBlocks(l, bs);
      iters.push({ layer: l, blocks, next: blocks.next() });
    }
    const w = await FileWriter.open(abs, f);
    try {
      const nblocks = Math.ceil(f.size / bs);
      for (let b = 0; b < nblocks; b++) {
        let provider = -1;
        for (let i = iters.length - 1; i >= 0; i--) {
          const it = iters[i]!;
          if (!it.next.done && it.next.value === b) {
            if (provider < 0) provider = i;
          }
        }
        if (provider < 0) throw new IntegrityError(`unable to rebuild '${f.path}': no backup in the chain holds block ${b}`);
        for (let i = 0; i < iters.length; i++) {
          const it = iters[i]!;
          if (it.next.done || it.next.value !== b) continue;
          const len = blockLength(b, it.layer.size, bs);
          if (i === provider) {
            const want = blockLength(b, f.size, bs);
            if (len !== want) throw new IntegrityError(`unable to rebuild '${f.path}': block ${b} is ${len} bytes in backup '${it.layer.backup}', ${want} expected`);
            for await (const chunk of readers[i]!.take(len)) {
              await w.write(chunk);
              progress(chunk.length);
            }
          } else {
            await readers[i]!.skip(len);
          }
          it.next = it.blocks.next();
        }
      }
      await w.finish(`backups ${[...new Set(layers.map((l) => l.backup))].join(', ')}`);
    } catch (err) {
      await w.abandon();
      throw err;
    }
    return { written: 1, skipped: 0, bytes: f.size };
  } finally {
    for (const r of readers) await r?.close();
  }
}

serveWorker<RestoreWorkerInit, RestoreTask, RestoreTaskResult>(runRestoreTask);
