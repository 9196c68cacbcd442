import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { PartReader } from '../../storage-drivers/s3/part-reader.js';
import { rangeHeader, rangeSkip } from '../../storage-drivers/s3/range.js';

async function readParts(reader: PartReader, size: number): Promise<number[]> {
  const sizes: number[] = [];
  for (;;) {
    const part = await reader.read(size);
    if (part.length === 0) return sizes;
    sizes.push(part.length);
  }
}

describe('PartReader', () => {
  it('cuts a stream into parts of exactly the part size, the last one shorter', async () => {
    const chunks = Array.from({ length: 10 }, (_, i) => Buffer.alloc(7, i));
    expect(await readParts(new PartReader(Readable.from(chunks)), 20)).toEqual([20, 20, 20, 10]);
  });

  it('keeps the bytes in order across chunk boundaries', async () => {
    const data = Buffer.from('abcdefghijklmnopqrstuvwxyz');
    const reader = new PartReader(Readable.from([data.subarray(0, 3), data.subarray(3, 11), data.subarray(11)]));
    const parts: string[] = [];
    for (let p = await reader.read(5); p.length > 0; p = await reader.read(5)) parts.push(p.toString());
    expect(parts).toEqual(['abcde', 'fghij', 'klmno', 'pqrst', 'uvwxy', 'z']);
  });

  it('splits a chunk larger than several parts', async () => {
    expect(await readParts(new PartReader(Readable.from([Buffer.alloc(47)])), 10)).toEqual([10, 10, 10, 10, 7]);
  });

  it('slices a Buffer body without copying', async () => {
    const data = Buffer.alloc(25, 1);
    const reader = new PartReader(data);
    const first = await reader.read(10);
    expect(first.buffer).toBe(data.buffer);
    expect(await reader.hasMore()).toBe(true);
    expect(await readParts(reader, 10)).toEqual([10, 5]);
    expect(await reader.hasMore()).toBe(false);
  });

  it('tells whether more bytes follow without losing them', async () => {
    const reader = new PartReader(Readable.from([Buffer.from('12345'), Buffer.alloc(0), Buffer.from('6')]));
    expect((await reader.read(5)).toString()).toBe('12345');
    expect(await reader.hasMore()).toBe(true);
    expect((await reader.read(5)).toString()).toBe('6');
    expect(await reader.hasMore()).toBe(false);
    expect((await reader.read(5)).length).toBe(0);
  });

  it('reports the end of a body that fills the part exactly', async () => {
    const reader = new PartReader(Readable.from([Buffer.alloc(10)]));
    expect((await reader.read(10)).length).toBe(10);
    expect(await reader.hasMore()).toBe(false);
  });

  it('handles empty bodies and string chunks', async () => {
    expect((await new PartReader(Readable.from([])).read(10)).length).toBe(0);
    expect(await new PartReader(Buffer.alloc(0)).hasMore()).toBe(false);
    expect((await new PartReader(Readable.from(['ab', 'c'])).read(10)).toString()).toBe('abc');
  });

  it('passes a body error to the caller', async () => {
    const failing = new Readable({
      read() {
        this.destroy(new Error('source failed'));
      },
    });
    await expect(new PartReader(failing).read(10)).rejects.toThrow('source failed');
  });

  it('reads only as far as the part being filled', async () => {
    let pulled = 0;
    const body = new Readable({
      highWaterMark: 1,
      read() {
        pulled++;
        this.push(Buffer.alloc(4));
      },
    });
    const reader = new PartReader(body);
    await reader.read(16);
    // 4 chunks make the part; the stream may read ahead a little, never far.
    expect(pulled).toBeLessThanOrEqual(6);
    body.destroy();
  });
});

describe('ranges', () => {
  it('builds Range headers', () => {
    expect(rangeHeader(0, undefined)).toBeUndefined();
    expect(rangeHeader(5, undefined)).toBe('bytes=5-');
    expect(rangeHeader(0, 1)).toBe('bytes=0-0');
    expect(rangeHeader(3, 4)).toBe('bytes=3-6');
  });

  it('says how many bytes of a response to skip', () => {
    expect(rangeSkip(206, 'bytes 3-6/20', 3)).toBe(0);
    expect(rangeSkip(206, 'bytes 0-19/20', 5)).toBe(5); // the store sent more than asked
    expect(rangeSkip(200, undefined, 7)).toBe(7); // the store ignored Range
    expect(rangeSkip(200, 'bytes 7-9/10', 7)).toBe(7);
    expect(rangeSkip(206, undefined, 7)).toBe(0);
    expect(rangeSkip(206, 'bytes 8-9/20', 5)).toBe(-1);
    expect(rangeSkip(206, 'garbage', 0)).toBe(-1);
  });
});
