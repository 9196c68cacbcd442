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

export async function withRetry<T>(what: string, policy: RetryPolicy, fn: (attempt: number) => Promise<T>): Promise<T> {
  const start = Date.now();
  const base = policy.baseDelayMs ?? 200;
  const max = policy.maxDelayMs ?? 5000;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (!isTransient(err) || attempt >= policy.attempts) throw err;
      const delay = Math.min(max, base * 2 ** (attempt - 1)) * (0.5 + Math.random() / 2);
      if (Date.now() - start + delay > policy.budgetMs) throw err;
      log.warn(`${what} failed (attempt ${attempt}/${policy.attempts}), retrying in ${Math.round(delay)} ms: ${(err as Error).message}`);
      await sleep(delay);
    }
  }
}
