import { getDefaultHighWaterMark, Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { blockId, newPutId, readBlocks, type Block } from '../../storage-drivers/azure/azure-blocks.js';
import { requestKind } from '../../storage-drivers/azure/azure-http.js';
import { parseAzureSettings } from '../../storage-drivers/azure/azure-settings.js';
import { ConfigError } from '../../src/common/errors.js';

async function collect(body: Iterable<unknown> | AsyncIterable<unknown>, size: number): Promise<Array<{ len: number; last: boolean; data: Buffer }>> {
  const out: Array<{ len: number; last: boolean; data: Buffer }> = [];
  for await (const b of readBlocks(body, size) as AsyncIterable<Block>) out.push({ len: b.data.length, last: b.last, data: b.data });
  return out;
}

const bytes = (n: number, seed = 0): Buffer => Buffer.from(Array.from({ length: n }, (_, i) => (i * 7 + seed) & 0xff));

describe('readBlocks', () => {
  it('yields one empty last block for an empty body', async () => {
    expect((await collect([], 4)).map(({ len, last }) => ({ len, last }))).toEqual([{ len: 0, last: true }]);
    expect((await collect(Readable.from([]), 4)).map(({ len, last }) => ({ len, last }))).toEqual([{ len: 0, last: true }]);
  });

  it('yields a body shorter than a block as one last block', async () => {
    expect((await collect([bytes(3)], 4)).map(({ len, last }) => ({ len, last }))).toEqual([{ len: 3, last: true }]);
  });

  it('recognises a body of exactly one block as the last block', async () => {
    expect((await collect([bytes(2), bytes(2)], 4)).map(({ len, last }) => ({ len, last }))).toEqual([{ len: 4, last: true }]);
    expect((await collect([bytes(4), Buffer.alloc(0)], 4)).map(({ len, last }) => ({ len, last }))).toEqual([{ len: 4, last: true }]);
  });

  it('cuts exact blocks across chunk boundaries and keeps the bytes in order', async () => {
    const data = bytes(23);
    const chunks = [data.subarray(0, 5), data.subarray(5, 6), data.subarray(6, 16), data.subarray(16)];
    const blocks = await collect(chunks, 4);
    expect(blocks.map((b) => b.len)).toEqual([4, 4, 4, 4, 4, 3]);
    expect(blocks.map((b) => b.last)).toEqual([false, false, false, false, false, true]);
    expect(Buffer.concat(blocks.map((b) => b.data))).toEqual(data);
  });

  it('ends with a full last block when the body is a multiple of the block size', async () => {
    const blocks = await collect([bytes(6), bytes(6)], 4);
    expect(blocks.map((b) => [b.len, b.last])).toEqual([[4, false], [4, false], [4, true]]);
  });

  it('accepts strings and Uint8Arrays, refuses other chunks', async () => {
    const blocks = await collect(['ab', new Uint8Array([99, 100])], 8);
    expect(blocks[0]?.data.toString()).toBe('abcd');
    await expect(collect([{ not: 'bytes' }], 8)).rejects.toThrow(TypeError);
  });

  it('reads the body only as blocks are taken', async () => {
    let pulled = 0;
    const body = new Readable({
      read() {
        pulled++;
        this.push(Buffer.alloc(1024));
      },
    });
    const gen = readBlocks(body, 8192);
    await gen.next();
    await new Promise((r) => setTimeout(r, 50));
    // Two blocks plus the stream's own buffer (16 KiB before Node 22, 64 KiB since), not the endless body.
    expect(pulled * 1024).toBeLessThanOrEqual(2 * 8192 + getDefaultHighWaterMark(false) + 1024);
    await gen.return(undefined);
    expect(body.destroyed).toBe(true);
  });

  it('passes the body error through', async () => {
    const boom = new Error('boom');
    const body = new Readable({
      read() {
        this.destroy(boom);
      },
    });
    await expect(collect(body, 8)).rejects.toBe(boom);
  });
});

describe('block ids', () => {
  it('are base64 of one length per put and unique per put', () => {
    const a = newPutId();
    const b = newPutId();
    expect(a).toMatch(/^[0-9a-f]{16}$/);
    expect(a).not.toBe(b);
    const ids = [0, 1, 99, 49_999].map((i) => blockId(a, i));
    expect(new Set(ids.map((id) => id.length)).size).toBe(1);
    expect(Buffer.from(ids[2] as string, 'base64').toString()).toBe(`${a}-000099`);
    expect(blockId(a, 1)).not.toBe(blockId(b, 1));
  });
});

describe('requestKind', () => {
  it.each([
    ['HEAD', '/acct/cont/key', 'head'],
    ['GET', '/acct/cont/key', 'get'],
    ['GET', '/acct/cont?restype=container&comp=list&prefix=p%2F&maxresults=1000', 'list'],
    ['GET', '/acct/cont/key?comp=blocklist&blocklisttype=committed', 'other'],
    ['PUT', '/acct/cont/key', 'put'],
    ['PUT', '/acct/cont/key?comp=block&blockid=YWJj', 'put'],
    ['PUT', '/acct/cont/key?comp=blocklist', 'other'],
    ['PUT', '/acct/cont?restype=container', 'other'],
    ['DELETE', '/acct/cont/key', 'delete'],
    ['POST', '/acct/cont?restype=container&comp=batch', 'other'],
  ])('%s %s -> %s', (method, path, kind) => {
    expect(requestKind(method, path)).toBe(kind);
  });
});

describe('parseAzureSettings', () => {
  it('applies the schema defaults when unset', () => {
    expect(parseAzureSettings({})).toEqual({ endpoint: undefined, blockSize: 8 * 1024 * 1024, timeoutMs: 60_000 });
    expect(parseAzureSettings()).toEqual({ endpoint: undefined, blockSize: 8 * 1024 * 1024, timeoutMs: 60_000 });
  });
  it('reads the settings', () => {
    expect(parseAzureSettings({ 'azure-endpoint': ' http://127.0.0.1:1/a ', 'azure-block-size': '1', 'storage-timeout': '2' })).toEqual({
      endpoint: 'http://127.0.0.1:1/a',
      blockSize: 1024 * 1024,
      timeoutMs: 2000,
    });
  });
  it.each([
    [{ 'azure-block-size': '0' }, /expected 1\.\.4000/],
    [{ 'azure-block-size': '4001' }, /expected 1\.\.4000/],
    [{ 'azure-block-size': '1.5' }, /expected an integer/],
    [{ 'storage-timeout': 'soon' }, /expected an integer/],
  ])('rejects %j', (settings, message) => {
    expect(() => parseAzureSettings(settings)).toThrow(ConfigError);
    expect(() => parseAzureSettings(settings)).toThrow(message);
  });
});
