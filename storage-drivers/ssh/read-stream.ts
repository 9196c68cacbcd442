/**
 * A Readable over an open SFTP file handle: reads [start, end) with up to `depth` READ requests
 * of `chunk` bytes in flight, issued only while the consumer wants data, so memory stays within
 * depth x chunk plus the stream's buffer. Ends at `end` or at the end of the file, whichever
 * comes first. The handle is closed when the stream ends or is destroyed.
 */
import { Readable } from 'node:stream';
import type { Session } from './connection.js';

export interface ReadStreamOptions {
  session: Session;
  handle: Buffer;
  start: number;
  /** Exclusive; Infinity reads to the end of the file. */
  end: number;
  chunk: number;
  depth: number;
  /** Wraps a failure into the error the consumer sees. */
  wrapError: (err: unknown) => Error;
}

interface InFlight {
  pos: number;
  len: number;
  result: Promise<Buffer>;
}

export class SftpReadStream extends Readable {
  private next: number;
  private readonly queue: InFlight[] = [];
  private pumping = false;
  private handleOpen = true;

  constructor(private readonly o: ReadStreamOptions) {
    super({ highWaterMark: o.chunk * 2 });
    this.next = o.start;
  }

  override _read(): void {
    if (!this.pumping) void this.pump();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.queue.length = 0;
    this.closeHandle();
    cb(err);
  }

  private closeHandle(): void {
    if (!this.handleOpen) return;
    this.handleOpen = false;
    const { session, handle } = this.o;
    // Not awaited: a dead connection fails it at once, a stalled one when storage-timeout ends it.
    session.run<void>('other', (sftp, cb) => sftp.close(handle, cb)).catch(() => undefined);
  }

  private fill(): void {
    while (this.queue.length < this.o.depth && this.next < this.o.end) {
      const pos = this.next;
      const len = Math.min(this.o.chunk, this.o.end - pos);
      this.next += len;
      const result = this.readAt(pos, len);
      result.catch(() => undefined); // handled when it reaches the head of the queue
      this.queue.push({ pos, len, result });
    }
  }

  private readAt(pos: number, len: number): Promise<Buffer> {
    const buf = Buffer.allocUnsafe(len);
    return this.o.session
      .run<number>(null, (sftp, cb) => sftp.read(this.o.handle, buf, 0, len, pos, (err, bytesRead) => cb(err, bytesRead)))
      .then((n) => (n === len ? buf : buf.subarray(0, n)));
  }

  private async pump(): Promise<void> {
    this.pumping = true;
    try {
      for (;;) {
        this.fill();
        const head = this.queue[0];
        if (!head) {
          this.finish();
          return;
        }
        const data = await head.result;
        if (this.destroyed) return;
        this.queue.shift();
        if (data.length < head.len) {
          // End of file, or a short read: what was requested after it is void.
          this.queue.length = 0;
          if (data.length === 0) {
            this.finish();
            return;
          }
          this.next = head.pos + data.length;
        }
        if (!this.push(data)) return;
      }
    } catch (err) {
      if (!this.destroyed) this.destroy(this.o.wrapError(err));
    } finally {
      this.pumping = false;
    }
  }

  private finish(): void {
    this.closeHandle();
    this.push(null);
  }
}
