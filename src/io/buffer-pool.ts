/**
 * Reuse of 1 MiB I/O buffers. Fresh large buffers cost page faults and garbage-collector work
 * on every allocation; a producer that knows when a consumer is done with a buffer can recycle
 * it instead. A pooled buffer carries a `RELEASE` function: the stage that last needs the bytes
 * (e.g. the lz4 compressor, once a frame is compressed) calls `releaseBuffer(buf)`; a buffer
 * that is never released is simply garbage-collected, so forgetting is safe, releasing early is not.
 */
export const RELEASE: unique symbol = Symbol('pgark.buffer-release');

type Releasable = Buffer & { [RELEASE]?: () => void };

export class BufferPool {
  private readonly free: Buffer[] = [];
  constructor(readonly size: number, private readonly max = 16) {}

  acquire(): Buffer {
    const buf = (this.free.pop() ?? Buffer.allocUnsafeSlow(this.size)) as Releasable;
    let released = false;
    buf[RELEASE] = () => {
      if (released) return;
      released = true;
      delete buf[RELEASE];
      if (this.free.length < this.max) this.free.push(buf);
    };
    return buf;
  }
}

/** Hand a buffer back to its pool (no-op for other buffers). */
export function releaseBuffer(buf: Buffer): void {
  (buf as Releasable)[RELEASE]?.();
}

/** True when `buf` came from a pool and has not been released yet. */
export function isPooled(buf: Buffer): boolean {
  return (buf as Releasable)[RELEASE] !== undefined;
}

/**
 * Slices of a pooled buffer handed to consumers one by one: the buffer goes back to its pool
 * when the producer is done slicing (`done()`) and every slice has been released.
 */
export class SliceTracker {
  private holds = 1;
  constructor(private readonly parent: Buffer) {}

  slice(start: number, end: number): Buffer {
    const view = this.parent.subarray(start, end) as Releasable;
    this.holds++;
    let released = false;
    view[RELEASE] = () => {
      if (released) return;
      released = true;
      delete view[RELEASE];
      this.drop();
    };
    return view;
  }

  done(): void {
    this.drop();
  }

  private drop(): void {
    if (--this.holds === 0) releaseBuffer(this.parent);
  }
}
