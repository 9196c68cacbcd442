/** Stream helpers of the GCS driver: idle timeouts, reading a body's first chunk, limits. */
import { Readable } from 'node:stream';

/**
 * Pass `source` through, failing with `onIdle()` when the consumer is waiting for data and none
 * has arrived for `idleMs` (a stalled connection). A slow consumer is not a stall: the timer
 * runs only while the consumer asks for more. Destroying the result destroys `source`.
 */
export function idleGuard(source: Readable, idleMs: number, onIdle: () => Error, mapError: (err: unknown) => Error = (e) => e as Error): Readable {
  let timer: NodeJS.Timeout | undefined;
  const disarm = (): void => {
    if (timer) clearTimeout(timer);
    timer = undefined;
  };
  const arm = (): void => {
    disarm();
    timer = setTimeout(() => out.destroy(onIdle()), idleMs);
  };
  const out = new Readable({
    highWaterMark: 1024 * 1024,
    read() {
      arm();
      source.resume();
    },
    destroy(err, cb) {
      disarm();
      if (!source.destroyed) source.destroy();
      cb(err);
    },
  });
  source.on('data', (chunk: Buffer) => {
    if (out.push(chunk)) arm();
    else {
      disarm();
      source.pause();
    }
  });
  source.on('end', () => {
    disarm();
    out.push(null);
  });
  source.on('error', (err) => out.destroy(mapError(err)));
  source.on('close', () => {
    if (!source.readableEnded && !out.destroyed) out.destroy(mapError(Object.assign(new Error('connection closed before the end of the object'), { code: 'ERR_STREAM_PREMATURE_CLOSE' })));
  });
  source.pause();
  return out;
}

export interface BodyHead {
  /** Chunks read so far (in order). */
  chunks: Buffer[];
  size: number;
  /** True when the body ended within the limit. */
  ended: boolean;
  /** The iterator to continue reading from when it did not. */
  rest: AsyncIterator<unknown>;
}

/** Read `body` until it ends or more than `limit` bytes have arrived. */
export async function readHead(body: Readable, limit: number): Promise<BodyHead> {
  const rest = body[Symbol.asyncIterator]();
  const chunks: Buffer[] = [];
  let size = 0;
  while (size <= limit) {
    const r = await rest.next();
    if (r.done) return { chunks, size, ended: true, rest };
    const buf = toBuffer(r.value);
    if (buf.length === 0) continue;
    chunks.push(buf);
    size += buf.length;
  }
  return { chunks, size, ended: false, rest };
}

export function toBuffer(chunk: unknown): Buffer {
  if (Buffer.isBuffer(chunk)) return chunk;
  if (typeof chunk === 'string') return Buffer.from(chunk);
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  throw new TypeError('put body chunks must be Buffers, Uint8Arrays or strings');
}

export function abortReason(signal: AbortSignal): Error {
  const r: unknown = signal.reason;
  if (r instanceof Error) return r;
  const err = new Error('The operation was aborted');
  err.name = 'AbortError';
  return err;
}

/** Settle with `p`, or reject as soon as `signal` aborts (the work itself goes on to its end). */
export function raceAbort<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return p;
  if (signal.aborted) {
    p.catch(() => undefined);
    return Promise.reject(abortReason(signal));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(abortReason(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
