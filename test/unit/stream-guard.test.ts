import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { IntegrityError, StorageError } from '../../src/common/errors.js';
import { guardStream, scrubUrls } from '../../storage-drivers/stream-guard.js';

async function drain(r: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

function failingAfter(chunks: Buffer[], err: Error): Readable {
  let i = 0;
  return new Readable({
    read() {
      if (i < chunks.length) this.push(chunks[i++]);
      else this.destroy(err);
    },
  });
}

describe('guardStream', () => {
  const o = { driver: 's3', what: "'main/wal/x' from s3://b/p" };

  it('passes a complete body through unchanged', async () => {
    const body = Readable.from([Buffer.from('abc'), Buffer.from('def')]);
    expect((await drain(guardStream(body, { ...o, expectedBytes: 6 }))).toString()).toBe('abcdef');
  });

  it('turns a transport error into a transient StorageError without the URL query', async () => {
    const err = Object.assign(new Error('socket hang up at https://acct.blob.core.windows.net/c/k?sv=2024&sig=SECRET'), { code: 'ECONNRESET' });
    const p = drain(guardStream(failingAfter([Buffer.from('abc')], err), o));
    const e = await p.catch((x: unknown) => x);
    expect(e).toBeInstanceOf(StorageError);
    expect((e as StorageError).transient).toBe(true);
    expect((e as Error).message).toMatch(/^unable to read 'main\/wal\/x' from s3:\/\/b\/p: ECONNRESET: socket hang up/);
    expect((e as Error).message).not.toContain('SECRET');
  });

  it('keeps pgark errors as they are', async () => {
    const e = await drain(guardStream(failingAfter([], new IntegrityError('bad')), o)).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(IntegrityError);
  });

  it('refuses a body that ends short of its announced length', async () => {
    const e = await drain(guardStream(Readable.from([Buffer.from('abc')]), { ...o, expectedBytes: 10 })).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(StorageError);
    expect((e as Error).message).toMatch(/ended after 3 of 10 bytes/);
  });

  it('scrubs queries from URLs in messages', () => {
    expect(scrubUrls('GET https://h/p?X-Amz-Signature=abc failed; http://h2/x?sig=1&se=2 too')).toBe('GET https://h/p?… failed; http://h2/x?… too');
  });
});
