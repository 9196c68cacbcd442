// Repository.putObject reports why a put failed, not the encoder's AbortError that follows it
// (issue 14 item 8): the driver's error wins, a transient one is retried, and an error of the
// source (a local file that cannot be read) is reported as itself; the same for putPlainEncoded.
import { Readable } from 'node:stream';
import { setImmediate as tick } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { ExitCode, exitCodeOf, StorageError } from '../../src/common/errors.js';
import { Repository } from '../../src/repo/repository.js';
import type { PutOptions, StorageDriver } from '../../storage-drivers/types.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BufferPool } from '../../src/io/buffer-pool.js';
import { encodeSegmentObject } from '../../src/wal/segment-object.js';
import { fakeSegment } from '../helpers/wal-bytes.js';

/** Bytes that do not compress away, so the encoder has a stream to feed for a while. */
function source(size = 4 * 1024 * 1024): Readable {
  let left = size;
  let x = 12345;
  return new Readable({
    read() {
      if (left <= 0) return void this.push(null);
      const b = Buffer.alloc(Math.min(65536, left));
      for (let i = 0; i < b.length; i++) b[i] = (x = (x * 1103515245 + 12345) & 0x7fffffff) >> 16;
      left -= b.length;
      this.push(b);
    },
  });
}

type PutFn = (path: string, body: Readable | Buffer, o?: PutOptions) => Promise<{ size: number }>;

function fakeDriver(put: PutFn): StorageDriver & { puts: number } {
  const d = {
    name: 'fake',
    location: 'fake://repo',
    puts: 0,
    put: async (path: string, body: Readable | Buffer, o?: PutOptions) => {
      d.puts++;
      return put(path, body, o);
    },
    stat: async () => null,
    close: async () => undefined,
  };
  return d as unknown as StorageDriver & { puts: number };
}

/** A put that reads a little, then drops the body the way drivers do on failure and rejects with `err` a moment later. */
function failingPut(err: () => Error): PutFn {
  return async (_path, body) => {
    const stream = body as Readable;
    for await (const _ of stream) break; // one chunk; breaking destroys the body: the encoder aborts
    await tick();
    await tick();
    throw err();
  };
}

const policy = { attempts: 3, budgetMs: 10_000, baseDelayMs: 1 };
const enospc = () => new StorageError('fake', "unable to write 'main/x': ENOSPC: no space left on device, write", { transient: false });

describe('Repository.putObject keeps the cause of a failed put', () => {
  it('ENOSPC from the driver wins over the encoder abort (exit 10, not 13)', async () => {
    const driver = fakeDriver(failingPut(enospc));
    const err = await new Repository(driver, 'main', policy).putObject('main/x', () => source(), { codec: 'lz4' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageError);
    expect((err as Error).message).toMatch(/ENOSPC/);
    expect(exitCodeOf(err)).toBe(ExitCode.STORAGE);
    expect(driver.puts).toBe(1);
  });

  it('a transient error is retried and the retry succeeds', async () => {
    let n = 0;
    const driver = fakeDriver(async (path, body, o) => {
      if (++n === 1) return failingPut(() => new StorageError('fake', 'connection reset', { transient: true }))(path, body, o);
      let size = 0;
      for await (const c of body as Readable) size += (c as Buffer).length;
      return { size };
    });
    const r = await new Repository(driver, 'main', policy).putObject('main/x', () => source(), { codec: 'lz4' });
    expect(driver.puts).toBe(2);
    expect(r.rawSize).toBe(4 * 1024 * 1024);
  });

  it('the error of the source is reported as itself (a system error: exit 14)', async () => {
    const eacces = Object.assign(new Error("EACCES: permission denied, open '/pg_wal/x'"), { code: 'EACCES', syscall: 'open', errno: -13 });
    const driver = fakeDriver(async (_p, body) => {
      for await (const _ of body as Readable) void _;
      return { size: 0 };
    });
    const failing = () => new Readable({ read() { this.destroy(eacces); } });
    const err = await new Repository(driver, 'main', policy).putObject('main/x', failing, { codec: 'lz4' }).catch((e: unknown) => e);
    expect(err).toBe(eacces);
    expect(exitCodeOf(err)).toBe(ExitCode.SYSTEM);
  });

  it('an error that is neither pgark\'s nor a system error stays internal', () => {
    expect(exitCodeOf(new TypeError('x is undefined'))).toBe(ExitCode.INTERNAL);
    expect(exitCodeOf(Object.assign(new Error('aborted'), { name: 'AbortError', code: 'ABORT_ERR' }))).toBe(ExitCode.INTERNAL);
  });
});

describe('Repository.putPlainEncoded (the one-pass segment encoder) keeps the cause the same way', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pgark-put-plain-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const MiB = 1024 * 1024;
  const pool = new BufferPool(MiB, 4);
  const name = '000000010000000000000003';
  const path = join(dir, name);
  writeFileSync(path, fakeSegment(3n, { walSegmentSize: 4 * MiB }));
  const open = (p = path) => () => encodeSegmentObject(p, { name, size: 4 * MiB }, 'lz4', pool);

  it('ENOSPC from the driver wins over the encoder abort', async () => {
    const driver = fakeDriver(failingPut(enospc));
    const err = await new Repository(driver, 'main', policy).putPlainEncoded('main/x', open()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageError);
    expect((err as Error).message).toMatch(/ENOSPC/);
    expect(driver.puts).toBe(1);
  });

  it('a transient error is retried with a fresh encoder, and the retry stores every byte', async () => {
    let n = 0;
    const driver = fakeDriver(async (p, body, o) => {
      if (++n === 1) return failingPut(() => new StorageError('fake', 'connection reset', { transient: true }))(p, body, o);
      let size = 0;
      for await (const c of body as Readable) size += (c as Buffer).length;
      return { size };
    });
    const r = await new Repository(driver, 'main', policy).putPlainEncoded('main/x', open());
    expect(driver.puts).toBe(2);
    expect(r?.rawSize).toBe(4 * MiB);
    expect(r?.storedSize).toBeGreaterThan(4 * MiB); // random bytes: stored frames
  });

  it("the encoder's own read error is reported as itself, not as the driver's wrapping of it", async () => {
    const driver = fakeDriver(async (_p, body) => {
      try {
        for await (const _ of body as Readable) void _;
      } catch (err) {
        throw new StorageError('fake', `upload failed: ${(err as Error).message}`, { transient: false });
      }
      return { size: 0 };
    });
    const err = await new Repository(driver, 'main', policy).putPlainEncoded('main/x', open(join(dir, 'gone'))).catch((e: unknown) => e);
    expect((err as NodeJS.ErrnoException).code).toBe('ENOENT');
    expect(exitCodeOf(err)).toBe(ExitCode.SYSTEM);
  });
});
