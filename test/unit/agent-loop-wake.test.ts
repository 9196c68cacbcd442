// The agent's loop sleeps between rounds until woken (src/agent/loop-wake.ts). A wake that comes
// while the loop is in a round (a segment completed meanwhile) must not be lost: before, it was a
// no-op and the freed job slot waited for the next wake-up or --poll-ms.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { LoopWake } from '../../src/agent/loop-wake.js';

const POLL_MS = 60_000;

/** Whether `p` has settled after the pending timers up to `ms` ran (fake timers). */
async function settledWithin(p: Promise<void>, ms: number): Promise<boolean> {
  let done = false;
  void p.then(() => (done = true));
  await vi.advanceTimersByTimeAsync(ms);
  return done;
}

describe('LoopWake', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('a wake during a round makes the next sleep return at once', async () => {
    const loop = new LoopWake();
    loop.beginRound();
    loop.wake(); // a segment completed while the round was listing or locking
    expect(await settledWithin(loop.sleep(POLL_MS, new AbortController().signal), 0)).toBe(true);
  });

  it('a wake while asleep ends the sleep', async () => {
    const loop = new LoopWake();
    loop.beginRound();
    const sleeping = loop.sleep(POLL_MS, new AbortController().signal);
    expect(await settledWithin(sleeping, 1000)).toBe(false);
    loop.wake();
    expect(await settledWithin(sleeping, 0)).toBe(true);
  });

  it('without a wake it sleeps pollMs; a wake before the round began is spent by that round', async () => {
    const loop = new LoopWake();
    loop.wake();
    loop.beginRound(); // this round sees what that wake was about
    const sleeping = loop.sleep(POLL_MS, new AbortController().signal);
    expect(await settledWithin(sleeping, POLL_MS - 1)).toBe(false);
    expect(await settledWithin(sleeping, 1)).toBe(true);
  });

  it('a wake after the sleep ended counts for the next round only once', async () => {
    const loop = new LoopWake();
    loop.beginRound();
    const first = loop.sleep(POLL_MS, new AbortController().signal);
    loop.wake();
    expect(await settledWithin(first, 0)).toBe(true);
    loop.beginRound();
    expect(await settledWithin(loop.sleep(POLL_MS, new AbortController().signal), 1000)).toBe(false);
  });

  it('stopping the agent ends the sleep, and a stopped agent does not sleep', async () => {
    const loop = new LoopWake();
    const stop = new AbortController();
    loop.beginRound();
    const sleeping = loop.sleep(POLL_MS, stop.signal);
    stop.abort();
    expect(await settledWithin(sleeping, 0)).toBe(true);
    loop.beginRound();
    expect(await settledWithin(loop.sleep(POLL_MS, stop.signal), 0)).toBe(true);
  });
});
