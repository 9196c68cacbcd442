/**
 * Streams that check WAL bytes as they pass (segment-check.ts): the stream errors instead of
 * ending when the bytes are not one whole WAL file, so a store or a local write fed by it never
 * completes with them.
 */
import { pipeline, Transform, type Readable, type TransformCallback } from 'node:stream';
import { SegmentChecker, SegmentShapeError, type SegmentCheckTarget } from './segment-check.js';

class CheckTap extends Transform {
  constructor(private readonly checker: SegmentChecker, private readonly onRefused?: (err: SegmentShapeError) => void) {
    super();
  }
  private refuse(err: unknown, cb: TransformCallback): void {
    if (err instanceof SegmentShapeError) this.onRefused?.(err);
    cb(err as Error);
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    try {
      this.checker.update(chunk);
    } catch (err) {
      return this.refuse(err, cb);
    }
    cb(null, chunk);
  }
  override _flush(cb: TransformCallback): void {
    try {
      this.checker.finish();
    } catch (err) {
      return this.refuse(err, cb);
    }
    cb();
  }
}

/**
 * `source` through a SegmentChecker for `target`; errors of `source` reach the returned stream
 * too. `onRefused` is called, before the stream errors, when the checker refuses the bytes (so
 * that a caller can tell a refused file from a failed read or store, whichever error wins).
 */
export function checkedWalStream(source: Readable, target: SegmentCheckTarget, onRefused?: (err: SegmentShapeError) => void): Readable {
  const tap = new CheckTap(new SegmentChecker(target), onRefused);
  return pipeline(source, tap, () => undefined);
}
