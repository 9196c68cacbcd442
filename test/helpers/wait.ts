/** Bounded waiting and per-test directories for integration tests. */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { chownToRunAs } from './pg-cluster.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Poll `fn` until it returns true (a throw counts as false) or `timeoutMs` pass; then fail naming
 * `what`, with `output()` (a background process's log, say) appended.
 */
export async function waitUntil(what: string, fn: () => Promise<boolean>, timeoutMs = 60_000, output?: () => string, stepMs = 200): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await fn().catch(() => false)) return;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${output ? `\n--- output ---\n${output()}` : ''}`);
    await sleep(stepMs);
  }
}

/**
 * Poll `probe` every `stepMs` until it returns something other than undefined or false, and
 * return that; a throw fails at once. After `timeoutMs`, fail naming `what`.
 */
export async function waitFor<T>(probe: () => Promise<T | undefined | false> | T | undefined | false, what: string, timeoutMs = 10_000, stepMs = 20): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(stepMs);
  }
}

/** `parent/name`, created 0700 and owned by the PostgreSQL OS user (when running as root). */
export async function newUserDir(parent: string, name: string): Promise<string> {
  const d = join(parent, name);
  await mkdir(d, { mode: 0o700 });
  await chownToRunAs(d);
  return d;
}
