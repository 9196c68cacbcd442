/**
 * worker-entry.ts: runPool's worker threads use Node's compile cache when the main thread does
 * (Node does not carry it into worker threads: each worker compiled its modules anew on every
 * run). Runs the built entry (dist/, as the CLI does) in a worker thread with restore's worker as
 * its script and checks that the main thread's cache directory gets the worker's modules.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { afterAll, describe, expect, it } from 'vitest';

const ENTRY = resolve('dist/src/common/worker-entry.js');
const SCRIPT = pathToFileURL(resolve('dist/src/restore/restore-worker.js')).href;

/** Starts the entry, runs one empty task through it (its modules are loaded then), stops it; returns the files in HOME's compile cache. */
async function cachedFiles(compileCache: boolean): Promise<number> {
  const home = mkdtempSync(join(tmpdir(), 'pgark-entry-'));
  dirs.push(home);
  const env: Record<string, string> = { ...(process.env as Record<string, string>), HOME: home };
  delete env.XDG_CACHE_HOME;
  delete env.NODE_COMPILE_CACHE;
  delete env.NODE_DISABLE_COMPILE_CACHE;
  // What the main thread passes: Node's versioned subdirectory of the directory it enabled.
  const compileCacheDir = compileCache ? join(home, '.cache', 'pgark', 'compile-cache', 'v-node') : undefined;
  const w = new Worker(pathToFileURL(ENTRY), {
    env,
    workerData: { script: SCRIPT, compileCacheDir, init: { pgdata: join(home, 'pgdata'), tablespaces: {}, delta: false }, log: { command: 'restore', destinations: { level: 'error', stderrLevel: 'error' } } },
  });
  const answer = await new Promise<unknown>((res, rej) => {
    w.once('message', res);
    w.once('error', rej);
    w.postMessage({ task: { kind: 'empty', pieces: [] } });
  });
  expect(answer).toEqual({ done: { written: 0, skipped: 0, bytes: 0 } });
  await w.terminate();
  const dir = join(home, '.cache', 'pgark', 'compile-cache');
  if (!existsSync(dir)) return 0;
  let n = 0;
  for (const d of readdirSync(dir)) n += readdirSync(join(dir, d)).length;
  return n;
}

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('worker entry', () => {
  it.skipIf(!existsSync(ENTRY))('enables the compile cache in the worker thread only when the main thread runs with it', async () => {
    expect(await cachedFiles(false)).toBe(0);
    expect(await cachedFiles(true)).toBeGreaterThan(5);
  });
});
