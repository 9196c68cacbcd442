/**
 * The StorageDriver conformance suite (see storage-drivers/types.ts). Every driver runs it:
 *
 *   storageConformance('fs', async () => ({ driver, cleanup }));
 *
 * Tests use only the contract, so they hold for filesystems and object stores alike. Each test
 * writes under its own unique prefix, so one driver instance serves the whole suite.
 */
import { createHash, randomBytes } from 'node:crypto';
import { PassThrough, Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AlreadyExistsError, InvalidInputError, NotFoundError, StorageError } from '../../src/common/errors.js';
import { FaultProxy } from '../helpers/fault-proxy.js';
import type { ObjectInfo, StorageDriver } from '../../storage-drivers/types.js';

export type MakeDriver = () => Promise<{ driver: StorageDriver; cleanup: () => Promise<void> }>;

/** What a network driver adds so the suite can inject faults and check for leaked secrets. */
export interface ConformanceOptions {
  /** The loopback TCP server the driver talks to; the fault tests put a proxy in front of it. */
  upstream?: { host: string; port: number };
  /**
   * Open another driver on the same store whose connections go to 127.0.0.1:`port` (the fault
   * proxy) instead of `upstream`, with `settings` merged over its driver settings (the fault
   * tests pass a short `storage-timeout`).
   */
  openVia?: (port: number, settings: Record<string, string>) => Promise<StorageDriver>;
  /** 'http' when the driver speaks HTTP/1.1 to upstream (the proxy can answer 500s/503s). */
  protocol?: 'http' | 'ssh';
  /** Strings (keys, passwords, tokens) that must never appear in an error message or in log output. */
  secrets?: string[];
  /**
   * The store is the test process's own memory (the memory driver): the 160 MiB round trip still
   * runs, but its RSS bound (streaming keeps memory below the object's size) cannot hold.
   */
  holdsObjectsInMemory?: boolean;
}

const KiB = 1024;
const MiB = 1024 * KiB;

export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks);
}

export async function listAll(driver: StorageDriver, prefix: string): Promise<ObjectInfo[]> {
  const out: ObjectInfo[] = [];
  for await (const info of driver.list(prefix)) out.push(info);
  return out;
}

async function listKeys(driver: StorageDriver, prefix: string): Promise<string[]> {
  return (await listAll(driver, prefix)).map((i) => i.path).sort();
}

/** Deterministic pseudo-random bytes: `count` chunks of `size`, derived from `seed`. */
function* patternChunks(seed: string, count: number, size: number): Generator<Buffer> {
  for (let i = 0; i < count; i++) {
    const block = createHash('sha256').update(`${seed}:${i}`).digest();
    yield Buffer.alloc(size, block);
  }
}

function sha256(buf: Buffer): string {
  return createHash('sha256').update(buf).digest('hex');
}

/** A body that yields `chunk` every `delayMs` forever; `onRead` counts pulls. */
export function endlessStream(chunk: Buffer, delayMs: number, onRead?: (n: number) => void): Readable {
  let reads = 0;
  return new Readable({
    read() {
      onRead?.(++reads);
      setTimeout(() => {
        if (!this.destroyed) this.push(chunk);
      }, delayMs);
    },
  });
}

/** A body that yields `goodChunks` chunks and then fails. */
function failingStream(goodChunks: number, chunk: Buffer): Readable {
  let sent = 0;
  return new Readable({
    read() {
      if (sent++ < goodChunks) setImmediate(() => this.push(chunk));
      else setImmediate(() => this.destroy(new Error('source failed midway')));
    },
  });
}

async function putMany(driver: StorageDriver, keys: string[], concurrency: number): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < keys.length) {
      const key = keys[next++] as string;
      await driver.put(key, Buffer.from(key));
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function storageConformance(name: string, makeDriver: MakeDriver, options: ConformanceOptions = {}): void {
  describe(`storage conformance: ${name}`, () => {
    let driver: StorageDriver;
    let cleanup: () => Promise<void> = async () => {};
    let seq = 0;
    const runId = randomBytes(4).toString('hex');
    /** A fresh prefix (ending in '/') for one test. */
    const fresh = (): string => `conf-${runId}-${++seq}/`;

    beforeAll(async () => {
      ({ driver, cleanup } = await makeDriver());
    });
    afterAll(async () => {
      await driver?.close();
      await cleanup();
    });

    describe('put and get', () => {
      it('round-trips a Buffer body and reports its size', async () => {
        const key = `${fresh()}a/b/obj`;
        const data = randomBytes(1000);
        expect(await driver.put(key, data)).toEqual({ size: 1000 });
        expect(await readAll(await driver.get(key))).toEqual(data);
      });

      it('round-trips a Readable body', async () => {
        const key = `${fresh()}stream`;
        const parts = [randomBytes(10), randomBytes(20000), randomBytes(3)];
        expect(await driver.put(key, Readable.from(parts))).toEqual({ size: 20013 });
        expect(await readAll(await driver.get(key))).toEqual(Buffer.concat(parts));
      });

      it('stores empty objects from a Buffer and from a Readable', async () => {
        const p = fresh();
        expect(await driver.put(`${p}empty-buf`, Buffer.alloc(0))).toEqual({ size: 0 });
        expect(await driver.put(`${p}empty-stream`, Readable.from([]))).toEqual({ size: 0 });
        for (const key of [`${p}empty-buf`, `${p}empty-stream`]) {
          expect((await driver.stat(key))?.size).toBe(0);
          expect((await readAll(await driver.get(key))).length).toBe(0);
        }
      });

      it('streams a 5 MiB object written in 64 KiB chunks', async () => {
        const key = `${fresh()}big`;
        const expected = Buffer.concat([...patternChunks(key, 80, 64 * KiB)]);
        expect(await driver.put(key, Readable.from(patternChunks(key, 80, 64 * KiB)))).toEqual({ size: 5 * MiB });
        expect((await driver.stat(key))?.size).toBe(5 * MiB);
        const got = await readAll(await driver.get(key));
        expect(got.length).toBe(5 * MiB);
        expect(sha256(got)).toBe(sha256(expected));
      });

      it('replaces an existing object on a plain put', async () => {
        const key = `${fresh()}obj`;
        await driver.put(key, Buffer.from('first version, longer'));
        await driver.put(key, Buffer.from('second'));
        expect((await readAll(await driver.get(key))).toString()).toBe('second');
        expect((await driver.stat(key))?.size).toBe(6);
      });

      it('creates a new object with ifAbsent', async () => {
        const key = `${fresh()}new`;
        expect(await driver.put(key, Buffer.from('x'), { ifAbsent: true })).toEqual({ size: 1 });
        expect((await readAll(await driver.get(key))).toString()).toBe('x');
      });

      it('rejects ifAbsent on an existing key with AlreadyExistsError and keeps the original', async () => {
        const key = `${fresh()}obj`;
        await driver.put(key, Buffer.from('original'));
        await expect(driver.put(key, Buffer.from('intruder'), { ifAbsent: true })).rejects.toBeInstanceOf(AlreadyExistsError);
        await expect(driver.put(key, Readable.from([Buffer.from('intruder')]), { ifAbsent: true })).rejects.toBeInstanceOf(
          AlreadyExistsError,
        );
        expect((await readAll(await driver.get(key))).toString()).toBe('original');
      });

      it('lets exactly one of several concurrent ifAbsent puts win', async () => {
        const key = `${fresh()}contested`;
        const bodies = Array.from({ length: 8 }, (_, i) => Buffer.alloc(64 * KiB + i, 65 + i));
        const results = await Promise.allSettled(bodies.map((b) => driver.put(key, b, { ifAbsent: true })));
        const winners = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
        expect(winners).toHaveLength(1);
        for (const r of results) {
          if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(AlreadyExistsError);
        }
        const winner = bodies[winners[0] as number] as Buffer;
        expect(await readAll(await driver.get(key))).toEqual(winner);
      });
    });

    describe('ranged get', () => {
      const data = Buffer.from('0123456789abcdefghij');
      let key: string;
      beforeAll(async () => {
        key = `${fresh()}ranged`;
        await driver.put(key, data);
      });
      const range = async (offset?: number, length?: number): Promise<string> =>
        (await readAll(await driver.get(key, { offset, length }))).toString();

      it('reads from an offset to the end', async () => {
        expect(await range(5)).toBe('56789abcdefghij');
        expect(await range(0)).toBe(data.toString());
      });
      it('reads offset + length', async () => {
        expect(await range(3, 4)).toBe('3456');
        expect(await range(0, 1)).toBe('0');
        expect(await range(19, 1)).toBe('j');
      });
      it('returns the bytes that exist when the range runs past the end', async () => {
        expect(await range(15, 100)).toBe('fghij');
        expect(await range(20)).toBe('');
        expect(await range(1000)).toBe('');
        expect(await range(1000, 10)).toBe('');
      });
    });

    describe('missing objects', () => {
      it('get rejects with NotFoundError', async () => {
        const p = fresh();
        await expect(driver.get(`${p}nope`)).rejects.toBeInstanceOf(NotFoundError);
        await expect(driver.get(`${p}deep/er/nope`, { offset: 5, length: 3 })).rejects.toBeInstanceOf(NotFoundError);
      });
      it('stat returns null', async () => {
        expect(await driver.stat(`${fresh()}nope`)).toBeNull();
      });
      it('a key that is only a prefix of other keys is not an object', async () => {
        const p = fresh();
        await driver.put(`${p}dir/child`, Buffer.from('c'));
        expect(await driver.stat(`${p}dir`)).toBeNull();
        await expect(driver.get(`${p}dir`)).rejects.toBeInstanceOf(NotFoundError);
      });
    });

    describe('stat', () => {
      it('returns path, size and mtime', async () => {
        const key = `${fresh()}x/obj`;
        const before = Date.now();
        await driver.put(key, Buffer.alloc(1234, 1));
        const info = await driver.stat(key);
        expect(info).not.toBeNull();
        expect(info?.path).toBe(key);
        expect(info?.size).toBe(1234);
        expect(Number.isFinite(info?.mtimeMs)).toBe(true);
        // Generous bound: remote stores have their own clocks.
        expect(Math.abs((info?.mtimeMs ?? 0) - before)).toBeLessThan(10 * 60_000);
      });
    });

    describe('list', () => {
      let p: string;
      const rel = (keys: string[]): string[] => keys.map((k) => k.slice(p.length));
      beforeAll(async () => {
        p = fresh();
        for (const k of ['dir/a', 'dir/sub/b', 'dir/sub/deeper/c', 'dir2/d', 'dirx', 'other/e', 'wal/000000010000000000000001', 'wal/000000010000000000000002', 'wal/000000010000000000000010', 'wal/000000020000000000000001']) {
          await driver.put(p + k, Buffer.from(k));
        }
      });

      it('yields every object under a directory prefix, recursively, and nothing else', async () => {
        expect(rel(await listKeys(driver, `${p}dir/`))).toEqual(['dir/a', 'dir/sub/b', 'dir/sub/deeper/c']);
      });
      it('treats the prefix as a plain string, also mid-name', async () => {
        expect(rel(await listKeys(driver, `${p}wal/00000001000000000000000`))).toEqual([
          'wal/000000010000000000000001',
          'wal/000000010000000000000002',
        ]);
        expect(rel(await listKeys(driver, `${p}wal/0000000`))).toHaveLength(4);
        expect(rel(await listKeys(driver, `${p}di`))).toEqual(['dir/a', 'dir/sub/b', 'dir/sub/deeper/c', 'dir2/d', 'dirx']);
        expect(rel(await listKeys(driver, `${p}dir`))).toEqual(['dir/a', 'dir/sub/b', 'dir/sub/deeper/c', 'dir2/d', 'dirx']);
      });
      it('yields an object whose key equals the prefix', async () => {
        expect(rel(await listKeys(driver, `${p}dirx`))).toEqual(['dirx']);
        expect(rel(await listKeys(driver, `${p}wal/000000010000000000000010`))).toEqual(['wal/000000010000000000000010']);
      });
      it('yields nothing for a missing prefix', async () => {
        expect(await listKeys(driver, `${p}nope/`)).toEqual([]);
        expect(await listKeys(driver, `${p}nope/deep/er`)).toEqual([]);
        expect(await listKeys(driver, `${p}wal/9`)).toEqual([]);
        expect(await listKeys(driver, `${fresh()}`)).toEqual([]);
      });
      it('reports sizes and paths that match stat', async () => {
        for (const info of await listAll(driver, `${p}dir/`)) {
          const st = await driver.stat(info.path);
          expect(st?.size).toBe(info.size);
          expect(info.size).toBe(info.path.slice(p.length).length);
        }
      });
    });

    describe('delete', () => {
      it('deletes existing keys and ignores missing ones', async () => {
        const p = fresh();
        await driver.put(`${p}a/1`, Buffer.from('1'));
        await driver.put(`${p}a/2`, Buffer.from('2'));
        await driver.put(`${p}b/3`, Buffer.from('3'));
        await driver.delete([`${p}a/1`, `${p}missing`, `${p}a/missing/too`, `${p}b/3`]);
        expect(await driver.stat(`${p}a/1`)).toBeNull();
        await expect(driver.get(`${p}b/3`)).rejects.toBeInstanceOf(NotFoundError);
        expect(await listKeys(driver, p)).toEqual([`${p}a/2`]);
      });
      it('accepts an empty list', async () => {
        await driver.delete([]);
      });
      it('allows re-creating a deleted key, also with ifAbsent', async () => {
        const key = `${fresh()}x/y/z`;
        await driver.put(key, Buffer.from('old'));
        await driver.delete([key]);
        expect(await listKeys(driver, key)).toEqual([]);
        await driver.put(key, Buffer.from('new'), { ifAbsent: true });
        expect((await readAll(await driver.get(key))).toString()).toBe('new');
      });
    });

    describe('key validation', () => {
      const invalid = ['../x', '/abs', 'a//b', 'a/./b', 'a/../b', 'a/', ''];
      it.each(invalid)('rejects %j with InvalidInputError', async (bad) => {
        await expect(driver.put(bad, Buffer.from('x'))).rejects.toBeInstanceOf(InvalidInputError);
        await expect(driver.put(bad, Buffer.from('x'), { ifAbsent: true })).rejects.toBeInstanceOf(InvalidInputError);
        await expect(driver.get(bad)).rejects.toBeInstanceOf(InvalidInputError);
        await expect(driver.stat(bad)).rejects.toBeInstanceOf(InvalidInputError);
        await expect(driver.delete([bad])).rejects.toBeInstanceOf(InvalidInputError);
      });
      it.each(['../x', '/abs', 'a//b', 'a/./b', '..'])('rejects list prefix %j with InvalidInputError', async (bad) => {
        await expect(listAll(driver, bad)).rejects.toBeInstanceOf(InvalidInputError);
      });
    });

    describe('all-or-nothing put', () => {
      it('leaves no object when the body stream fails midway', async () => {
        const p = fresh();
        await expect(driver.put(`${p}broken`, failingStream(4, Buffer.alloc(64 * KiB, 7)))).rejects.toThrow();
        expect(await driver.stat(`${p}broken`)).toBeNull();
        await expect(driver.get(`${p}broken`)).rejects.toBeInstanceOf(NotFoundError);
        expect(await listKeys(driver, p)).toEqual([]);
      });

      it('keeps the previous object when a replacing put fails midway', async () => {
        const key = `${fresh()}obj`;
        await driver.put(key, Buffer.from('intact'));
        await expect(driver.put(key, failingStream(2, Buffer.alloc(64 * KiB, 7)))).rejects.toThrow();
        expect((await readAll(await driver.get(key))).toString()).toBe('intact');
      });

      it('leaves no object when the put is aborted', async () => {
        const p = fresh();
        const ac = new AbortController();
        const body = endlessStream(Buffer.alloc(64 * KiB, 1), 2, (n) => {
          if (n === 5) ac.abort();
        });
        await expect(driver.put(`${p}aborted`, body, { signal: ac.signal })).rejects.toThrow();
        expect(await driver.stat(`${p}aborted`)).toBeNull();
        expect(await listKeys(driver, p)).toEqual([]);
      });

      it('rejects a put whose signal is already aborted', async () => {
        const p = fresh();
        const ac = new AbortController();
        ac.abort();
        await expect(driver.put(`${p}pre`, Buffer.from('x'), { signal: ac.signal })).rejects.toThrow();
        await expect(driver.put(`${p}pre`, Readable.from([Buffer.from('x')]), { signal: ac.signal })).rejects.toThrow();
        expect(await driver.stat(`${p}pre`)).toBeNull();
      });

      it('does not expose an object while its put is in progress', async () => {
        const p = fresh();
        const body = new PassThrough();
        const put = driver.put(`${p}pending`, body);
        body.write(Buffer.alloc(256 * KiB, 3));
        await sleep(200);
        expect(await driver.stat(`${p}pending`)).toBeNull();
        expect(await listKeys(driver, p)).toEqual([]);
        await expect(driver.get(`${p}pending`)).rejects.toBeInstanceOf(NotFoundError);
        body.end(Buffer.alloc(1, 4));
        expect(await put).toEqual({ size: 256 * KiB + 1 });
        expect(await listKeys(driver, p)).toEqual([`${p}pending`]);
      });
    });

    describe('large listings', () => {
      it('lists 1500 objects under nested prefixes completely', async () => {
        const p = fresh();
        const keys = Array.from({ length: 1500 }, (_, i) => `${p}${i % 3}/${i % 7}/obj-${String(i).padStart(5, '0')}`);
        await putMany(driver, keys, 32);
        const listed = await listKeys(driver, p);
        expect(listed).toHaveLength(1500);
        expect(listed).toEqual([...keys].sort());
        expect(await listKeys(driver, `${p}1/`)).toHaveLength(500);
        expect(await listKeys(driver, `${p}1/3/obj-0`)).toEqual(keys.filter((k) => k.startsWith(`${p}1/3/`)).sort());
      });
    });

    describe('large objects', () => {
      it('streams a 160 MiB object in and out with bounded memory', { timeout: 180_000 }, async () => {
        const key = `${fresh()}huge`;
        const chunks = 160;
        const expected = createHash('sha256');
        for (const c of patternChunks(key, chunks, MiB)) expected.update(c);
        const sampler = rssSampler();
        try {
          expect(await driver.put(key, Readable.from(patternChunks(key, chunks, MiB)))).toEqual({ size: chunks * MiB });
          const got = createHash('sha256');
          let n = 0;
          for await (const c of await driver.get(key)) {
            got.update(c as Buffer);
            n += (c as Buffer).length;
          }
          expect(n).toBe(chunks * MiB);
          expect(got.digest('hex')).toBe(expected.digest('hex'));
        } finally {
          sampler.stop();
        }
        // The whole object would be 160 MiB; streaming keeps the growth to buffers and parts.
        console.log(`${name}: RSS growth over a 160 MiB round trip: ${sampler.growthMiB().toFixed(1)} MiB`);
        if (!options.holdsObjectsInMemory) expect(sampler.growthMiB()).toBeLessThan(RSS_GROWTH_LIMIT_MIB);
        await driver.delete([key]);
      });

      // Larger than any driver's default part/block/chunk size, so the failure lands in the
      // middle of a multipart, staged-block or resumable upload.
      it('leaves nothing visible when a 40 MiB upload fails after 36 MiB', { timeout: 120_000 }, async () => {
        const p = fresh();
        await expect(driver.put(`${p}big-broken`, failingStream(36, Buffer.alloc(MiB, 9)))).rejects.toThrow();
        expect(await driver.stat(`${p}big-broken`)).toBeNull();
        expect(await listKeys(driver, p)).toEqual([]);
      });

      it('leaves nothing visible when a large upload is aborted after 36 MiB', { timeout: 120_000 }, async () => {
        const p = fresh();
        const ac = new AbortController();
        const body = endlessStream(Buffer.alloc(MiB, 5), 1, (n) => {
          if (n === 36) ac.abort();
        });
        await expect(driver.put(`${p}big-aborted`, body, { signal: ac.signal })).rejects.toThrow();
        expect(await driver.stat(`${p}big-aborted`)).toBeNull();
        expect(await listKeys(driver, p)).toEqual([]);
      });
    });

    const { upstream, openVia } = options;
    if (upstream && openVia) faultTests(() => driver, fresh, { ...options, upstream, openVia });
    if (options.secrets?.length) secretTests(() => driver, fresh, options.secrets);
  });
}

/**
 * Bound for the RSS growth of the 160 MiB round trip (the whole test process, with any
 * in-process server): less than the object. RSS includes garbage the collector has not returned
 * yet, so it varies from run to run: measured 0-62 MiB, and 98 MiB once for s3 (16 MiB parts,
 * up to 3 in memory) under CI load.
 */
const RSS_GROWTH_LIMIT_MIB = 128;

function rssSampler(): { stop: () => void; growthMiB: () => number } {
  const base = process.memoryUsage.rss();
  let peak = base;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss());
  }, 20);
  return {
    stop: () => {
      peak = Math.max(peak, process.memoryUsage.rss());
      clearInterval(timer);
    },
    growthMiB: () => (peak - base) / MiB,
  };
}

/** Every string a failed operation can show a user: message, causes' messages, code. */
function errorTexts(err: unknown): string {
  const out: string[] = [];
  for (let e: unknown = err, depth = 0; e !== undefined && e !== null && depth < 5; depth++) {
    if (e instanceof Error) {
      out.push(e.message, String((e as NodeJS.ErrnoException).code ?? ''), e.stack ?? '');
      e = e.cause;
    } else {
      out.push(String(e));
      break;
    }
  }
  return out.join('\n');
}

/** Run `op` and return what it threw (or undefined when it succeeded). */
async function outcome(op: () => Promise<unknown>): Promise<unknown> {
  try {
    await op();
    return undefined;
  } catch (err) {
    return err;
  }
}

type FaultOptions = ConformanceOptions & Required<Pick<ConformanceOptions, 'upstream' | 'openVia'>>;

function faultTests(direct: () => StorageDriver, fresh: () => string, o: FaultOptions): void {
  describe('faults injected by a proxy', () => {
    let proxy: FaultProxy;
    let via: StorageDriver;
    const errors: unknown[] = [];
    const body = Buffer.alloc(4 * MiB);
    for (let i = 0; i < body.length; i += 32) createHash('sha256').update(String(i)).digest().copy(body, i);

    beforeAll(async () => {
      proxy = await FaultProxy.start(o.upstream);
      via = await o.openVia(proxy.port, { 'storage-timeout': '2' });
    });
    afterAll(async () => {
      await via?.close();
      await proxy?.stop();
      // Nothing an error said may carry a secret.
      for (const secret of o.secrets ?? []) {
        for (const err of errors) expect(errorTexts(err)).not.toContain(secret);
      }
    });

    /** A failure must be a StorageError that says what failed; record it for the secret check. */
    const expectClearFailure = (err: unknown): void => {
      errors.push(err);
      expect(err).toBeInstanceOf(StorageError);
      expect((err as Error).message.length).toBeGreaterThan(10);
    };

    it('works through the proxy when nothing is injected', async () => {
      const key = `${fresh()}plain`;
      await via.put(key, Buffer.from('through the proxy'));
      expect((await readAll(await via.get(key))).toString()).toBe('through the proxy');
      expect(proxy.connections).toBeGreaterThan(0);
    });

    it('a connection cut mid-download gives the whole object after a retry or a clear error, never a short read', async () => {
      const key = `${fresh()}cut-get`;
      await direct().put(key, body);
      for (const afterBytes of [100, 64 * KiB, 2 * MiB]) {
        proxy.inject({ kind: 'drop', direction: 'down', afterBytes, connections: 1 });
        const err = await outcome(async () => {
          const got = await readAll(await via.get(key));
          expect(sha256(got)).toBe(sha256(body));
        });
        proxy.clear();
        if (err !== undefined) expectClearFailure(err);
      }
      expect((await readAll(await via.get(key))).length).toBe(body.length);
    });

    it('a connection cut mid-upload leaves the whole object or none, and a retry stores it', async () => {
      const p = fresh();
      for (const [i, afterBytes] of [200, 256 * KiB, 3 * MiB].entries()) {
        const key = `${p}cut-put-${i}`;
        proxy.inject({ kind: 'drop', direction: 'up', afterBytes, connections: 1 });
        const err = await outcome(() => via.put(key, Readable.from([body.subarray(0, 2 * MiB), body.subarray(2 * MiB)])));
        proxy.clear();
        const st = await direct().stat(key);
        if (err !== undefined) {
          expectClearFailure(err);
          if (st) expect(sha256(await readAll(await direct().get(key)))).toBe(sha256(body));
        } else {
          expect(st?.size).toBe(body.length);
        }
        await via.put(key, body);
        expect(sha256(await readAll(await direct().get(key)))).toBe(sha256(body));
      }
    });

    it('recovers after every connection is dropped (as when the server restarts)', async () => {
      const key = `${fresh()}after-drop`;
      await via.put(key, Buffer.from('before'));
      proxy.dropAll();
      const err = await outcome(() => via.stat(key));
      if (err !== undefined) expectClearFailure(err);
      expect((await via.stat(key))?.size).toBe(6);
    });

    it('a stalled connection ends within the storage timeout as a transient error, and the next operation reconnects', { timeout: 120_000 }, async () => {
      const key = `${fresh()}stalled`;
      await direct().put(key, Buffer.from('stall'));
      proxy.stall();
      const started = Date.now();
      const results = await Promise.all([outcome(() => via.stat(key)), outcome(async () => readAll(await via.get(key)))]);
      const elapsed = Date.now() - started;
      proxy.release();
      for (const err of results) {
        expect(err).toBeDefined();
        expectClearFailure(err);
        expect((err as StorageError).transient).toBe(true);
      }
      // 2 s timeout per attempt, a few attempts: bounded, not hanging.
      expect(elapsed).toBeLessThan(60_000);
      expect((await readAll(await via.get(key))).toString()).toBe('stall');
    });

    if (o.protocol === 'http') {
      it('retries a 503 on reads and writes', async () => {
        const key = `${fresh()}retried`;
        await via.put(key, Buffer.from('v1'));
        for (const op of [() => via.stat(key), async () => readAll(await via.get(key)), () => listAll(via, key), () => via.put(key, Buffer.from('v2'))]) {
          const before = proxy.injectedErrors;
          proxy.inject({ kind: 'httpError', status: 503, requests: 1 });
          await op();
          proxy.clear();
          expect(proxy.injectedErrors).toBe(before + 1);
        }
        expect((await readAll(await direct().get(key))).toString()).toBe('v2');
      });

      it('gives up on persistent 500s with a transient StorageError naming the status', { timeout: 120_000 }, async () => {
        const key = `${fresh()}broken-server`;
        proxy.inject({ kind: 'httpError', status: 500, requests: 1000 });
        for (const op of [() => via.stat(key), () => via.put(key, Buffer.from('x')), async () => readAll(await via.get(key))]) {
          const err = await outcome(op);
          expectClearFailure(err);
          expect((err as StorageError).transient).toBe(true);
          expect((err as Error).message).toMatch(/500|InternalError|internal/i);
        }
        expect(proxy.injectedErrors).toBeGreaterThan(0);
        proxy.clear();
        expect(await direct().stat(key)).toBeNull();
      });
    }
  });
}

function secretTests(driver: () => StorageDriver, fresh: () => string, secrets: string[]): void {
  describe('secrets', () => {
    it('never appear in errors, locations or log output', async () => {
      const logged: string[] = [];
      const write = process.stderr.write.bind(process.stderr);
      process.stderr.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
        logged.push(String(chunk));
        return (write as (...a: unknown[]) => boolean)(chunk, ...rest);
      }) as typeof process.stderr.write;
      const errors: unknown[] = [];
      try {
        const p = fresh();
        await driver().put(`${p}exists`, Buffer.from('x'));
        errors.push(await outcome(() => driver().get(`${p}missing`)));
        errors.push(await outcome(() => driver().put(`${p}exists`, Buffer.from('y'), { ifAbsent: true })));
        errors.push(await outcome(() => driver().put('../bad', Buffer.from('y'))));
      } finally {
        process.stderr.write = write;
      }
      const text = [driver().location, ...logged, ...errors.map(errorTexts)].join('\n');
      for (const secret of secrets) expect(text).not.toContain(secret);
    });
  });
}
