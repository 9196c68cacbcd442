/**
 * Buffers a producer hands to a store for good, whose memory the store frees as soon as it has
 * written them instead of leaving it to the garbage collector. A full-path wal-push compresses a
 * segment into sixteen lz4 outputs; V8 promotes them while they are being written and frees
 * them only in a full collection, which a one-file call never runs, so all of them stayed
 * resident until it exited (~6 MiB for a 16 MiB pgbench segment; bench/results/memory.md).
 *
 * Freeing detaches the buffer's ArrayBuffer (`ArrayBuffer.prototype.transfer(0)`): V8 drops its
 * backing store at once and the memory's owner frees it (lz4-napi's allocator: at the next turn
 * of the event loop). Afterwards every view of that ArrayBuffer reads as empty, so only the
 * producer that owns the whole ArrayBuffer may mark a view of it (an lz4 output, a buffer of
 * Buffer.allocUnsafeSlow; never a slice of Node's shared pool or of a pooled buffer), and only
 * when nothing but the store reads the view afterwards. A store that never calls `written` (the
 * cloud SDKs may keep a part to retry it) leaves the buffer to the collector, as before.
 * A view of a pooled buffer can be handed over too (releaseOnceWritten): the store's `written`
 * then hands the buffer back to its pool instead.
 */
import { releaseBuffer } from './buffer-pool.js';

const FREE: unique symbol = Symbol('pgark.free-once-written');

type Marked = Buffer & { [FREE]?: () => void };

/** Free the memory of `view`'s ArrayBuffer now (the caller owns all of it and is done with it). */
export function freeNow(view: Buffer): void {
  const ab = view.buffer;
  if (!(ab instanceof ArrayBuffer)) return;
  try {
    (ab as ArrayBuffer & { transfer(length?: number): ArrayBuffer }).transfer(0);
  } catch {
    // Not detachable: the collector frees it.
  }
}

/**
 * Mark `view` (whose whole ArrayBuffer the caller owns) to be freed by the store that writes it
 * (`written`). Returns `view`.
 */
export function freeOnceWritten(view: Buffer): Buffer {
  (view as Marked)[FREE] = () => freeNow(view);
  return view;
}

/**
 * Mark `view` (of the pooled buffer `owner`, which the caller no longer reads) to go back to its
 * pool once a store has written it (`written`). Returns `view`.
 */
export function releaseOnceWritten(view: Buffer, owner: Buffer): Buffer {
  (view as Marked)[FREE] = () => releaseBuffer(owner);
  return view;
}

/**
 * A store has written `buf` and holds it no longer: frees it or hands it back to its pool if
 * its producer marked it (freeOnceWritten, releaseOnceWritten).
 */
export function written(buf: Buffer): void {
  const marked = buf as Marked;
  const free = marked[FREE];
  if (free === undefined) return;
  delete marked[FREE];
  free();
}

/** True while `buf` is marked and not yet written. */
export function isFreedOnceWritten(buf: Buffer): boolean {
  return (buf as Marked)[FREE] !== undefined;
}
