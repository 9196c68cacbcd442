/**
 * How the agent's loop sleeps between its rounds: until it is woken (a segment completed,
 * archive_status changed), `pollMs` passed or the agent is stopped. A wake that comes while the
 * loop is in a round, not asleep, is kept: the next sleep returns at once, so the job slot of a
 * segment that completed during a round is filled by another round at once, not after pollMs.
 */
export class LoopWake {
  private woken = false;
  private endSleep: (() => void) | undefined;

  /** The start of a round: it sees everything that happened so far, so earlier wakes are spent. */
  beginRound(): void {
    this.woken = false;
  }

  wake(): void {
    if (this.endSleep) this.endSleep();
    else this.woken = true;
  }

  /** Until woken, `ms` passed or `signal` aborted; at once when woken since beginRound(). */
  async sleep(ms: number, signal: AbortSignal): Promise<void> {
    if (this.woken || signal.aborted) return;
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        this.endSleep = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.endSleep = done;
      signal.addEventListener('abort', done);
    });
  }
}
