/** Retry with exponential backoff and jitter, for transient errors only, within a time budget. */
import { setTimeout as sleep } from 'node:timers/promises';
import { PgarkError } from './errors.js';
import { log } from './log.js';

export interface RetryPolicy {
  /** Attempts in total, including the first. */
  attempts: number;
  /** Give up when the next wait would pass this many ms since the start. */
  budgetMs: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
}

export function isTransient(err: unknown): boolean {
  return err instanceof PgarkError ? err.transient : false;
}

/**
 * How long to wait before attempt `attempt + 1` after `err` failed attempt `attempt` of an
 * operation started at `startedAt` (ms since epoch), or undefined to give up: the error is not
 * transient, the attempts are used up, or the wait would pass the budget.
 */
export function retryDelayMs(err: unknown, attempt: number, policy: RetryPolicy, startedAt: number): number | undefined {
  if (!isTransient(err) || attempt >= policy.attempts) return undefined;
  const base = policy.baseDelayMs ?? 200;
  const max = policy.maxDelayMs ?? 5000;
  const delay = Math.min(max, base * 2 ** (attempt - 1)) * (0.5 + Math.random() / 2);
  if (Date.now() - startedAt + delay > policy.budgetMs) return undefined;
  return delay;
}

/** Log the retry of `what` and wait `delay` ms; an abort of `signal` ends the wait with its reason. */
export async function waitToRetry(what: string, err: unknown, attempt: number, policy: RetryPolicy, delay: number, signal?: AbortSignal): Promise<void> {
  log.warn(`${what} failed (attempt ${attempt}/${policy.attempts}), retrying in ${Math.round(delay)} ms: ${(err as Error).message}`);
  await sleep(delay, undefined, signal ? { signal } : undefined);
}

/** Run `fn` until it succeeds or fails for good; `signal` stops further attempts and waits. */
export async function withRetry<T>(what: string, policy: RetryPolicy, fn: (attempt: number) => Promise<T>, signal?: AbortSignal): Promise<T> {
  const start = Date.now();
  for (let attempt = 1; ; attempt++) {
    signal?.throwIfAborted();
    try {
      return await fn(attempt);
    } catch (err) {
      const delay = retryDelayMs(err, attempt, policy, start);
      if (delay === undefined) throw err;
      await waitToRetry(what, err, attempt, policy, delay, signal);
    }
  }
}
