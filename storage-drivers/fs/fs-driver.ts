/**
 * Local filesystem driver: `file:///abs/path` or a bare absolute path. Atomicity comes from
 * writing a temp file next to the final name, fsyncing it, then rename (plain put) or link
 * (ifAbsent, which fails atomically with EEXIST), then fsyncing the directory.
 */
import { link, open, readdir, rename, rmdir, stat, unlink, opendir, type FileHandle } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import { addAbortSignal, Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { AlreadyExistsError, causeText, ConfigError, NotFoundError } from '../../src/common/errors.js';
import { written } from '../../src/io/free-once-written.js';
import { checkKey, checkRange, listStart } from '../keys.js';
import { redactLocation } from '../registry.js';
import { forEachLimit } from '../limit.js';
import { countRequest } from '../request-stats.js';
import type { DriverOptions, GetOptions, InPlaceFile, ObjectInfo, Op, PutOptions, StorageDriver, StorageFeature } from '../types.js';
import { ensureDir, fsyncDir, removeEmptyDirs } from './dirs.js';
import { errnoOf, fsError } from './errors.js';
import { isStaleTempName, isTempName, removeStaleTemps, tempPathFor } from './temp.js';
import { putSmallSync, SMALL_PUT_MAX } from './small-put.js';
import { createInPlaceFile } from './in-place-file.js';
import { pooledRangeStream } from './pooled-read.js';

const DELETE_CONCURRENCY = 16;
/** A concurrent delete may remove the directory between our mkdir and open; retry that race. */
const OPEN_TEMP_ATTEMPTS = 5;

export async function createDriver(url: URL, _options: DriverOptions): Promise<StorageDriver> {
  if (url.protocol !== 'file:') throw new ConfigError(`unsupported repository scheme '${url.protocol}' for the fs driver`);
  let root: string;
  try {
    root = fileURLToPath(url);
  } catch (err) {
    throw new ConfigError(`invalid repository '${redactLocation(url.href)}': ${causeText(err)}`);
  }
  return new FsDriver(resolve(root));
}

export class FsDriver implements StorageDriver {
  readonly name = 'fs';
  readonly features: ReadonlySet<StorageFeature> = new Set<StorageFeature>(['atomicRename', 'fsync', 'rangeRead', 'conditionalPut']);
  readonly location: string;

  constructor(private readonly root: string) {
    this.location = root;
  }

  async stat(path: string, o: Op = {}): Promise<ObjectInfo | null> {
    checkKey(path);
    o.signal?.throwIfAborted();
    countRequest('head');
    return this.statFile(path);
  }

  async *list(prefix: string, o: Op = {}): AsyncGenerator<ObjectInfo> {
    const { dirKey, namePrefix } = listStart(prefix);
    yield* this.walk(dirKey, namePrefix, o.signal);
  }

  async get(path: string, o: GetOptions = {}): Promise<Readable> {
    checkKey(path);
    const { offset, length } = checkRange(path, o);
    o.signal?.throwIfAborted();

    // Open first so a missing key rejects here, not later as a stream error.
    countRequest('get');
    let fh: FileHandle;
    try {
      fh = await open(this.fullPath(path), 'r');
    } catch (err) {
      if (isMissing(err)) throw new NotFoundError(path);
      throw fsError('read', path, err);
    }
    try {
      if (!(await fh.stat()).isFile()) throw new NotFoundError(path);
    } catch (err) {
      await fh.close();
      throw fsError('read', path, err);
    }
    if (length === 0) {
      await fh.close();
      return emptyStream();
    }
    // 1 MiB reads: objects are read whole and sequentially; 64 KiB chunks cost per-chunk overhead
    // downstream. Into pooled buffers a reader may hand back (pooled-read.ts).
    const stream = pooledRangeStream(fh, offset, length === undefined ? undefined : offset + length, o.blocking === true);
    return o.signal ? addAbortSignal(o.signal, stream) : stream;
  }

  async put(path: string, body: Readable | Buffer, o: PutOptions = {}): Promise<{ size: number }> {
    checkKey(path);
    const { signal } = o;
    signal?.throwIfAborted();
    const finalPath = this.fullPath(path);
    const tmp = tempPathFor(finalPath);
    countRequest('put');
    // Errors raised by the caller's body stream are theirs: pass them through unwrapped.
    let bodyError: unknown;
    if (!Buffer.isBuffer(body)) body.on('error', (err) => (bodyError ??= err));

    if (Buffer.isBuffer(body) && body.length <= SMALL_PUT_MAX && !signal) {
      try {
        putSmallSync(path, finalPath, tmp, body, !!o.ifAbsent, OPEN_TEMP_ATTEMPTS);
        return { size: body.length };
      } catch (err) {
        if (err instanceof AlreadyExistsError) throw err;
        throw fsError('write', path, err);
      }
    }
    let tmpExists = false;
    try {
      // Fail fast without consuming the body; link() below is what makes ifAbsent atomic.
      if (o.ifAbsent && (await this.statFile(path))) throw new AlreadyExistsError(path);
      const fh = await this.openTemp(tmp);
      tmpExists = true;
      let size: number;
      try {
        await writeBody(fh, body, signal);
        await fh.sync();
        size = (await fh.stat()).size;
      } finally {
        await fh.close();
      }
      signal?.throwIfAborted();

      if (o.ifAbsent) {
        try {
          await link(tmp, finalPath);
        } catch (err) {
          if (errnoOf(err) === 'EEXIST') throw new AlreadyExistsError(path);
          throw err;
        }
        tmpExists = false;
        // Committed: a leftover temp under our live pid is harmless and swept after we exit.
        await unlink(tmp).catch(() => {});
      } else {
        await rename(tmp, finalPath);
        tmpExists = false;
      }
      await fsyncDir(dirname(finalPath));
      await removeStaleTemps(finalPath);
      return { size };
    } catch (err) {
      if (tmpExists) await unlink(tmp).catch(() => {});
      // A failed put never consumes the rest of the body; release whatever feeds it.
      if (!Buffer.isBuffer(body) && !body.destroyed) body.destroy();
      if (err === bodyError) throw err;
      throw fsError('write', path, err);
    }
  }

  async createInPlace(path: string, size: number): Promise<InPlaceFile> {
    checkKey(path);
    countRequest('put');
    try {
      return await createInPlaceFile(path, this.fullPath(path), size);
    } catch (err) {
      if (err instanceof AlreadyExistsError) throw err;
      throw fsError('write', path, err);
    }
  }

  async delete(paths: string[], o: Op = {}): Promise<void> {
    for (const p of paths) checkKey(p);
    countRequest('delete', paths.length);
    const parents = new Set<string>();
    await forEachLimit(paths, DELETE_CONCURRENCY, async (p) => {
      o.signal?.throwIfAborted();
      const full = this.fullPath(p);
      try {
        await unlink(full);
      } catch (err) {
        // EISDIR: the key names a directory, which is not an object, so it is "missing".
        if (!isMissing(err) && errnoOf(err) !== 'EISDIR') throw fsError('delete', p, err);
      }
      parents.add(dirname(full));
    });
    // Deepest first, so a parent is tried only after its emptied children are gone.
    const ordered = [...parents].sort((a, b) => b.split(sep).length - a.split(sep).length);
    const done = new Set<string>();
    for (const dir of ordered) await removeEmptyDirs(this.root, dir, done);
  }

  async sweep(prefix: string, o: Op = {}): Promise<number> {
    if (prefix !== '') checkKey(prefix.replace(/\/$/, ''));
    const start = this.fullPath(prefix.replace(/\/$/, ''));
    let removed = 0;
    const dirs: string[] = [];
    const visit = async (dir: string): Promise<void> => {
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch (err) {
        if (isMissing(err) || errnoOf(err) === 'ENOTDIR') return;
        throw fsError('list', dir, err);
      }
      dirs.push(dir);
      for (const e of entries) {
        o.signal?.throwIfAborted();
        const full = join(dir, e.name);
        if (e.isDirectory()) await visit(full);
        else if (isTempName(e.name) && isStaleTempName(e.name)) {
          await unlink(full).then(() => removed++, () => undefined);
        }
      }
    };
    await visit(start);
    // Deepest first; a directory that is not empty simply stays.
    for (const dir of dirs.sort((a, b) => b.split(sep).length - a.split(sep).length)) {
      if (dir !== this.root) await rmdir(dir).catch(() => undefined);
    }
    return removed;
  }

  async close(): Promise<void> {}

  private fullPath(key: string): string {
    return key === '' ? this.root : join(this.root, key);
  }

  private async statFile(key: string): Promise<ObjectInfo | null> {
    try {
      const st = await stat(this.fullPath(key));
      return st.isFile() ? { path: key, size: st.size, mtimeMs: st.mtimeMs } : null;
    } catch (err) {
      if (isMissing(err)) return null;
      throw fsError('stat', key, err);
    }
  }

  private async *walk(dirKey: string, namePrefix: string, signal: AbortSignal | undefined): AsyncGenerator<ObjectInfo> {
    countRequest('list');
    let dir;
    try {
      dir = await opendir(this.fullPath(dirKey));
    } catch (err) {
      if (isMissing(err)) return;
      throw fsError('list', dirKey, err);
    }
    // for-await closes the Dir on completion, error, or an early break by the consumer.
    for await (const entry of dir) {
      signal?.throwIfAborted();
      if (!entry.name.startsWith(namePrefix) || isTempName(entry.name)) continue;
      const key = dirKey === '' ? entry.name : `${dirKey}/${entry.name}`;
      if (entry.isDirectory()) {
        yield* this.walk(key, '', signal);
      } else if (entry.isFile() || entry.isSymbolicLink()) {
        // null when deleted since readdir, or a symlink to a directory (not followed: loops).
        const info = await this.statFile(key);
        if (info) yield info;
      }
    }
  }

  private async openTemp(tmp: string): Promise<FileHandle> {
    for (let attempt = 1; ; attempt++) {
      try {
        await ensureDir(dirname(tmp));
        const fh = await open(tmp, 'wx', 0o600);
        await fh.chmod(0o600).catch(async (err: unknown) => {
          await fh.close();
          throw err;
        });
        return fh;
      } catch (err) {
        if (errnoOf(err) !== 'ENOENT' || attempt >= OPEN_TEMP_ATTEMPTS) throw err;
      }
    }
  }
}

async function writeBody(fh: FileHandle, body: Readable | Buffer, signal: AbortSignal | undefined): Promise<void> {
  if (Buffer.isBuffer(body)) {
    await fh.writeFile(body, signal ? { signal } : {});
    return;
  }
  // Aborting destroys the body, which makes the loop below throw the AbortError.
  if (signal) addAbortSignal(signal, body);
  for await (const chunk of body) {
    const buf: Buffer = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    for (let done = 0; done < buf.length; ) done += (await fh.write(buf, done, buf.length - done)).bytesWritten;
    // Written: a buffer its producer handed over for good is freed now, not when collected.
    written(buf);
  }
}

function isMissing(err: unknown): boolean {
  const code = errnoOf(err);
  return code === 'ENOENT' || code === 'ENOTDIR';
}

function emptyStream(): Readable {
  return new Readable({
    read() {
      this.push(null);
    },
  });
}
