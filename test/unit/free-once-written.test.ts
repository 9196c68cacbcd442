// Buffers handed to a store for good (src/io/free-once-written.ts): the fs driver frees a marked
// buffer as soon as it has written it, and leaves every other buffer alone.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { freeNow, freeOnceWritten, isFreedOnceWritten, written } from '../../src/io/free-once-written.js';
import { FsDriver } from '../../storage-drivers/fs/fs-driver.js';

const dir = mkdtempSync(join(tmpdir(), 'pgark-free-once-written-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function own(n: number, fill: number): Buffer {
  return Buffer.allocUnsafeSlow(n).fill(fill);
}

describe('freeOnceWritten / written', () => {
  it('written() frees a marked buffer (every view of it reads empty) and ignores unmarked ones', () => {
    const a = own(64 * 1024, 1);
    const view = a.subarray(4);
    freeOnceWritten(view);
    expect(isFreedOnceWritten(view)).toBe(true);
    const b = own(64 * 1024, 2);
    written(b);
    expect(b.length).toBe(64 * 1024);
    written(view);
    expect(isFreedOnceWritten(view)).toBe(false);
    expect(view.length).toBe(0);
    expect(a.length).toBe(0);
    expect(a.buffer.byteLength).toBe(0);
    written(view); // again: nothing left to do
  });

  it('freeNow() frees at once', () => {
    const a = own(8192, 3);
    freeNow(a);
    expect(a.length).toBe(0);
  });
});

describe('fs driver put', () => {
  it('frees the marked chunks once written, keeps the others, and stores every byte', async () => {
    const driver = new FsDriver(dir);
    const marked = [own(300_000, 7), own(1024 * 1024, 8)].map((b) => freeOnceWritten(b));
    const plain = own(100_000, 9);
    const expected = Buffer.concat([marked[0]!, plain, marked[1]!]);
    // As the one-pass encoder hands them out: one at a time, from an async generator.
    async function* chunks(): AsyncGenerator<Buffer> {
      for (const c of [marked[0]!, plain, marked[1]!]) yield c;
    }
    await driver.put('a/object', Readable.from(chunks(), { objectMode: false, highWaterMark: 1 }), { ifAbsent: true });
    expect(readFileSync(join(dir, 'a/object')).equals(expected)).toBe(true);
    expect(marked.map((b) => b.length)).toEqual([0, 0]);
    expect(plain.length).toBe(100_000);
  });
});
