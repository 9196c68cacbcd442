/**
 * In-memory driver: `memory://<name>`, for unit tests and embedding. A store lives in the memory
 * of the thread that made it with createMemoryStore(name) and is gone when that thread ends.
 *
 * Opening a name no store was made for is a ConfigError: a `pgark` command given a memory://
 * repository refuses (nothing could outlive the process), and a worker thread, which has its
 * own memory, cannot write into an empty store of its own that nobody will ever read.
 *
 * Objects are kept as the chunks their put received (copied: a producer may reuse its buffers),
 * and committed at the end of the put, so readers see the whole object or none, and of racing
 * put-if-absent calls exactly one wins.
 */
import { Readable } from 'node:stream';
import { AlreadyExistsError, ConfigError, NotFoundError } from '../../src/common/errors.js';
import { checkKey, checkPrefix, checkRange } from '../keys.js';
import { countRequest } from '../request-stats.js';
import type { DriverOptions, GetOptions, ObjectInfo, Op, PutOptions, StorageDriver, StorageFeature } from '../types.js';

interface StoredObject {
  readonly chunks: readonly Buffer[];
  readonly size: number;
  readonly mtimeMs: number;
}

/** A store: key -> object. */
type Store = Map<string, StoredObject>;

const stores = new Map<string, Store>();

/** Largest piece a get yields. */
const READ_CHUNK = 1024 * 1024;
/** Keys per list request counted (an object store's page). */
const LIST_PAGE = 1000;

const NAME = /^[A-Za-z0-9._-]{1,100}$/;

function checkName(name: string): string {
  if (!NAME.test(name)) throw new ConfigError(`invalid memory store name '${name}': use 1-100 letters, digits, '.', '_' or '-'`);
  return name;
}

/** Make an empty store `name` in this thread and return a driver on it. */
export function createMemoryStore(name: string): MemoryDriver {
  if (stores.has(checkName(name))) throw new ConfigError(`memory store '${name}' already exists in this thread`);
  const store: Store = new Map();
  stores.set(name, store);
  return new MemoryDriver(name, store);
}

/** Forget store `name` and its objects (drivers still open on it keep a store nobody else sees). */
export function dropMemoryStore(name: string): void {
  stores.delete(name);
}

/** `memory://<name>`: a driver on the store createMemoryStore(name) made in this thread. */
export async function createDriver(url: URL, _options: DriverOptions): Promise<StorageDriver> {
  if (url.protocol !== 'memory:') throw new ConfigError(`unsupported repository scheme '${url.protocol}' for the memory driver`);
  if (url.username || url.password || url.port || url.search || url.hash || (url.pathname !== '' && url.pathname !== '/')) {
    throw new ConfigError(`invalid memory repository '${url.protocol}//${url.host}': expected memory://<name> and nothing else`);
  }
  const name = checkName(url.hostname);
  const store = stores.get(name);
  if (!store) {
    throw new ConfigError(
      `no memory store '${name}' in this process: memory:// repositories exist only inside the program (a test) that created them, ` +
      'and would vanish at exit; use a path or a storage URL for a real repository',
    );
  }
  return new MemoryDriver(name, store);
}

export class MemoryDriver implements StorageDriver {
  readonly name = 'memory';
  readonly features: ReadonlySet<StorageFeature> = new Set<StorageFeature>(['rangeRead', 'conditionalPut']);
  readonly location: string;

  constructor(storeName: string, private readonly store: Store) {
    this.location = `memory://${storeName}`;
  }

  async stat(path: string, o: Op = {}): Promise<ObjectInfo | null> {
    checkKey(path);
    o.signal?.throwIfAborted();
    countRequest('head');
    const obj = this.store.get(path);
    return obj ? { path, size: obj.size, mtimeMs: obj.mtimeMs } : null;
  }

  async *list(prefix: string, o: Op = {}): AsyncGenerator<ObjectInfo> {
    checkPrefix(prefix);
    o.signal?.throwIfAborted();
    // A snapshot, in key order: what a put or delete does meanwhile is seen by the next listing.
    const found: ObjectInfo[] = [];
    for (const [path, obj] of this.store) {
      if (path.startsWith(prefix)) found.push({ path, size: obj.size, mtimeMs: obj.mtimeMs });
    }
    found.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    for (let i = 0; i < found.length || i === 0; i += LIST_PAGE) {
      countRequest('list');
      for (const info of found.slice(i, i + LIST_PAGE)) {
        o.signal?.throwIfAborted();
        yield info;
      }
    }
  }

  async get(path: string, o: GetOptions = {}): Promise<Readable> {
    checkKey(path);
    const { offset, length } = checkRange(path, o);
    o.signal?.throwIfAborted();
    countRequest('get');
    const obj = this.store.get(path);
    if (!obj) throw new NotFoundError(path);
    const end = length === undefined ? obj.size : Math.min(obj.size, offset + length);
    const stream = Readable.from(slices(obj.chunks, offset, end), { objectMode: false });
    if (o.signal) {
      const signal = o.signal;
      const onAbort = (): void => {
        stream.destroy(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      stream.once('close', () => signal.removeEventListener('abort', onAbort));
    }
    return stream;
  }

  async put(path: string, body: Readable | Buffer, o: PutOptions = {}): Promise<{ size: number }> {
    checkKey(path);
    const { signal } = o;
    if (signal?.aborted) {
      if (!Buffer.isBuffer(body)) body.destroy();
      signal.throwIfAborted();
    }
    countRequest('put');
    const chunks = Buffer.isBuffer(body) ? [Buffer.from(body)] : await collect(body, signal);
    signal?.throwIfAborted();
    if (o.ifAbsent && this.store.has(path)) throw new AlreadyExistsError(path);
    const size = chunks.reduce((n, c) => n + c.length, 0);
    this.store.set(path, { chunks, size, mtimeMs: Date.now() });
    return { size };
  }

  async delete(paths: string[], o: Op = {}): Promise<void> {
    for (const p of paths) checkKey(p);
    o.signal?.throwIfAborted();
    countRequest('delete', paths.length);
    for (const p of paths) this.store.delete(p);
  }

  async close(): Promise<void> {}
}

/** Copies of the bytes [start, end) of `chunks`, at most READ_CHUNK each. */
function* slices(chunks: readonly Buffer[], start: number, end: number): Generator<Buffer> {
  let pos = 0;
  for (const c of chunks) {
    const from = Math.max(start, pos);
    const to = Math.min(end, pos + c.length);
    for (let at = from; at < to; at += READ_CHUNK) yield Buffer.from(c.subarray(at - pos, Math.min(to, at + READ_CHUNK) - pos));
    pos += c.length;
    if (pos >= end) return;
  }
}

/** Read `body` to its end as copied chunks; an abort of `signal` destroys it and rejects. */
async function collect(body: Readable, signal: AbortSignal | undefined): Promise<Buffer[]> {
  const chunks: Buffer[] = [];
  const onAbort = (): void => {
    body.destroy(signal?.reason instanceof Error ? signal.reason : new Error('aborted'));
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    for await (const c of body) chunks.push(typeof c === 'string' ? Buffer.from(c) : Buffer.from(c as Uint8Array));
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
  return chunks;
}
