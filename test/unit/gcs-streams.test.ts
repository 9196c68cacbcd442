import { PassThrough, Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { StorageError } from '../../src/common/errors.js';
import { idleGuard, raceAbort, readHead } from '../../storage-drivers/gcs/streams.js';
import { forEachLimit } from '../../storage-drivers/limit.js';

const timeoutError = () => new StorageError('gcs', 'no data', { transient: true });

async function drain(r: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

describe('idleGuard', () => {
  it('passes data through', async () => {
    expect((await drain(idleGuard(Readable.from([Buffer.from('ab'), Buffer.from('c')]), 1000, timeoutError))).toString()).toBe('abc');
  });

  it('fails when the source stalls while the consumer waits', async () => {
    const src = new PassThrough();
    src.write('first');
    const out = idleGuard(src, 100, timeoutError);
    const started = Date.now();
    await expect(drain(out)).rejects.toThrow('no data');
    expect(Date.now() - started).toBeLessThan(2000);
    expect(src.destroyed).toBe(true);
  });

  it('does not fail while the consumer is slow', async () => {
    const src = Readable.from((function* () {
      for (let i = 0; i < 40; i++) yield Buffer.alloc(64 * 1024, i);
    })());
    const out = idleGuard(src, 100, timeoutError);
    const chunks: Buffer[] = [];
    await new Promise((r) => setTimeout(r, 300));
    for await (const c of out) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).length).toBe(40 * 64 * 1024);
  });

  it('maps source errors and premature closes', async () => {
    const src = new PassThrough();
    const out = idleGuard(src, 1000, timeoutError, (e) => new StorageError('gcs', `mapped: ${(e as Error).message}`, { transient: true }));
    setImmediate(() => src.destroy(new Error('boom')));
    await expect(drain(out)).rejects.toThrow('mapped: boom');
    const src2 = new PassThrough();
    const out2 = idleGuard(src2, 1000, timeoutError, (e) => new StorageError('gcs', `mapped: ${(e as Error).message}`));
    setImmediate(() => src2.destroy());
    await expect(drain(out2)).rejects.toThrow('mapped: connection closed before the end of the object');
  });

  it('destroys the source when the consumer stops early', async () => {
    const src = new PassThrough();
    src.write(Buffer.alloc(10));
    const out = idleGuard(src, 1000, timeoutError);
    for await (const _ of out) break;
    expect(src.destroyed).toBe(true);
  });
});

describe('readHead', () => {
  it('reads a short body to its end', async () => {
    const head = await readHead(Readable.from([Buffer.from('ab'), 'cd', new Uint8Array([101])]), 10);
    expect(head.ended).toBe(true);
    expect(Buffer.concat(head.chunks).toString()).toBe('abcde');
    expect(head.size).toBe(5);
  });

  it('stops once past the limit and leaves the rest to read', async () => {
    const head = await readHead(Readable.from([Buffer.alloc(4), Buffer.alloc(4), Buffer.alloc(4), Buffer.alloc(4)]), 8);
    expect(head.ended).toBe(false);
    expect(head.size).toBe(12);
    const r = await head.rest.next();
    expect((r.value as Buffer).length).toBe(4);
    expect((await head.rest.next()).done).toBe(true);
  });

  it('a body of exactly the limit is whole', async () => {
    const head = await readHead(Readable.from([Buffer.alloc(4), Buffer.alloc(4)]), 8);
    expect(head.ended).toBe(true);
  });
});

describe('raceAbort and forEachLimit', () => {
  it('rejects on abort while the work goes on', async () => {
    const ac = new AbortController();
    const p = raceAbort(new Promise((r) => setTimeout(() => r('late'), 200)), ac.signal);
    ac.abort();
    await expect(p).rejects.toThrow(/abort/i);
    await expect(raceAbort(Promise.resolve(1), ac.signal)).rejects.toThrow(/abort/i);
    expect(await raceAbort(Promise.resolve(2), undefined)).toBe(2);
  });

  it('runs at most `limit` at once and stops after a failure', async () => {
    let running = 0;
    let peak = 0;
    const seen: number[] = [];
    await forEachLimit([...Array(20).keys()], 4, async (i) => {
      running++;
      peak = Math.max(peak, running);
      await new Promise((r) => setTimeout(r, 5));
      seen.push(i);
      running--;
    });
    expect(peak).toBe(4);
    expect(seen).toHaveLength(20);
    await expect(forEachLimit([1, 2, 3], 1, async (i) => { if (i === 2) throw new Error('stop'); })).rejects.toThrow('stop');
  });
});
