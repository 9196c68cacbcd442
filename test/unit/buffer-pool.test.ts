import { describe, expect, it } from 'vitest';
import { BufferPool, isPooled, releaseBuffer, SliceTracker } from '../../src/io/buffer-pool.js';

describe('BufferPool', () => {
  it('hands a released buffer out again, once', () => {
    const pool = new BufferPool(1024, 4);
    const a = pool.acquire();
    expect(a.length).toBe(1024);
    expect(isPooled(a)).toBe(true);
    releaseBuffer(a);
    releaseBuffer(a); // a second release is ignored
    expect(isPooled(a)).toBe(false);
    const b = pool.acquire();
    expect(b).toBe(a);
    const c = pool.acquire();
    expect(c).not.toBe(a);
  });

  it('keeps at most `max` free buffers', () => {
    const pool = new BufferPool(16, 1);
    const a = pool.acquire();
    const b = pool.acquire();
    releaseBuffer(a);
    releaseBuffer(b);
    expect(pool.acquire()).toBe(a);
    expect(pool.acquire()).not.toBe(b);
  });

  it('ignores buffers that are not pooled', () => {
    expect(() => releaseBuffer(Buffer.alloc(4))).not.toThrow();
  });
});

describe('SliceTracker', () => {
  it('returns the buffer only after done() and every slice released, in any order', () => {
    const pool = new BufferPool(64, 4);
    const buf = pool.acquire();
    const t = new SliceTracker(buf);
    const s1 = t.slice(0, 8);
    const s2 = t.slice(16, 32);
    expect(s2.length).toBe(16);
    releaseBuffer(s1);
    t.done();
    expect(isPooled(buf)).toBe(true); // s2 still out
    releaseBuffer(s2);
    releaseBuffer(s2);
    expect(isPooled(buf)).toBe(false);
    expect(pool.acquire()).toBe(buf);
  });

  it('with no slices, done() returns the buffer', () => {
    const pool = new BufferPool(64, 4);
    const buf = pool.acquire();
    new SliceTracker(buf).done();
    expect(pool.acquire()).toBe(buf);
  });
});
