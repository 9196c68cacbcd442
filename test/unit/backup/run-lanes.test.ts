/** runLanes (backup.ts): --jobs lanes on the main thread. */
import { describe, expect, it } from 'vitest';
import { runLanes } from '../../../src/backup/backup.js';

const tick = () => new Promise<void>((r) => setImmediate(r));

describe('runLanes', () => {
  it('runs every task once, at most `lanes` at a time, taking them in order', async () => {
    let running = 0;
    let peak = 0;
    const started: number[] = [];
    const results: number[] = [];
    await runLanes(2, [1, 2, 3, 4, 5], async (t) => {
      started.push(t);
      peak = Math.max(peak, ++running);
      for (let i = 0; i < t; i++) await tick();
      running--;
      return t * 10;
    }, (r) => results.push(r));
    expect(started).toEqual([1, 2, 3, 4, 5]);
    expect(peak).toBe(2);
    expect(results.sort((a, b) => a - b)).toEqual([10, 20, 30, 40, 50]);
  });

  it('more lanes than tasks, and no tasks', async () => {
    const seen: number[] = [];
    await runLanes(4, [7], async (t) => t, (r) => seen.push(r));
    await runLanes(2, [], async (t: number) => t, (r) => seen.push(r));
    expect(seen).toEqual([7]);
  });

  it('after a failure takes no new task, lets the one in flight finish, and throws the first error', async () => {
    const started: number[] = [];
    const finished: number[] = [];
    const p = runLanes(2, [1, 2, 3, 4], async (t) => {
      started.push(t);
      if (t === 1) throw new Error('task 1 failed');
      for (let i = 0; i < 3; i++) await tick();
      finished.push(t);
      return t;
    }, () => undefined);
    await expect(p).rejects.toThrow('task 1 failed');
    expect(started).toEqual([1, 2]);
    expect(finished).toEqual([2]);
  });

  it('an error thrown by the result callback fails the run too', async () => {
    await expect(runLanes(1, [1, 2], async (t) => t, (r) => {
      if (r === 1) throw new Error('fold failed');
    })).rejects.toThrow('fold failed');
  });
});
