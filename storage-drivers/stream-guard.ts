/**
 * Body streams of remote stores fail after get() has returned (a connection cut mid-download).
 * `guardStream` makes such failures StorageErrors (transient) naming the object, without the
 * raw transport error text that may carry a signed URL, and makes a body that ends short of
 * its announced length an error instead of a silent short read.
 */
import { PassThrough, type Readable } from 'node:stream';
import { causeText, PgarkError, StorageError } from '../src/common/errors.js';

/** Remove anything that looks like a URL query (signatures, SAS tokens) from a message. */
export function scrubUrls(text: string): string {
  return text.replace(/(https?:\/\/[^\s?'"]*)\?[^\s'"]*/g, '$1?…');
}

export function guardStream(body: Readable, o: { driver: string; what: string; expectedBytes?: number | undefined }): Readable {
  const out = new PassThrough({ highWaterMark: 1024 * 1024 });
  let seen = 0;
  let failed = false;
  const fail = (err: unknown): void => {
    if (failed) return;
    failed = true;
    const mapped = err instanceof PgarkError
      ? err
      : new StorageError(o.driver, `unable to read ${o.what}: ${scrubUrls(causeText(err))}`, { transient: true });
    body.destroy();
    out.destroy(mapped);
  };
  body.on('data', (chunk: Buffer) => {
    seen += chunk.length;
    if (!out.write(chunk)) {
      body.pause();
      out.once('drain', () => body.resume());
    }
  });
  body.on('end', () => {
    if (o.expectedBytes !== undefined && seen !== o.expectedBytes) {
      fail(new StorageError(o.driver, `unable to read ${o.what}: the connection ended after ${seen} of ${o.expectedBytes} bytes`, { transient: true }));
      return;
    }
    out.end();
  });
  body.on('error', fail);
  body.on('close', () => {
    if (!body.readableEnded && !failed && !out.destroyed) fail(new Error('connection closed before the end of the object'));
  });
  // A consumer that stops early releases the connection.
  out.on('close', () => {
    if (!body.destroyed) body.destroy();
  });
  return out;
}
