/**
 * Write a put body to an open SFTP handle with up to `depth` WRITE requests of at most `chunk`
 * bytes in flight. Small stream chunks are coalesced; memory stays within depth x chunk plus
 * one pending chunk.
 */
import { addAbortSignal, type Readable } from 'node:stream';
import type { Session } from './connection.js';

export interface WriteOptions {
  session: Session;
  handle: Buffer;
  chunk: number;
  depth: number;
  signal?: AbortSignal;
}

/** Returns the number of bytes written. Errors of the body stream are rethrown as they are. */
export async function writeBody(body: Readable | Buffer, o: WriteOptions): Promise<number> {
  const inFlight = new Set<Promise<void>>();
  let failure: { err: unknown } | undefined;
  let pos = 0;

  const send = async (data: Buffer): Promise<void> => {
    for (let off = 0; off < data.length; off += o.chunk) {
      const piece = data.subarray(off, Math.min(data.length, off + o.chunk));
      while (inFlight.size >= o.depth) await Promise.race(inFlight);
      if (failure) throw failure.err;
      o.signal?.throwIfAborted();
      const at = pos;
      pos += piece.length;
      const p: Promise<void> = o.session
        .run<void>(null, (sftp, cb) => sftp.write(o.handle, piece, 0, piece.length, at, (err) => cb(err)))
        .catch((err: unknown) => {
          failure ??= { err };
        })
        .finally(() => inFlight.delete(p));
      inFlight.add(p);
    }
  };

  try {
    if (Buffer.isBuffer(body)) {
      await send(body);
    } else {
      // Aborting destroys the body, which makes the loop below throw the AbortError.
      if (o.signal) addAbortSignal(o.signal, body);
      let parts: Buffer[] = [];
      let partsLen = 0;
      for await (const c of body) {
        const buf: Buffer = typeof c === 'string' ? Buffer.from(c) : (c as Buffer);
        if (buf.length === 0) continue;
        parts.push(buf);
        partsLen += buf.length;
        if (partsLen >= o.chunk) {
          const all = parts.length === 1 ? buf : Buffer.concat(parts, partsLen);
          const whole = all.length - (all.length % o.chunk);
          await send(all.subarray(0, whole));
          parts = whole < all.length ? [all.subarray(whole)] : [];
          partsLen = all.length - whole;
        }
      }
      if (partsLen > 0) await send(parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts, partsLen));
    }
  } finally {
    await Promise.all(inFlight);
  }
  if (failure) throw failure.err;
  return pos;
}
