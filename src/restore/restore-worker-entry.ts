/**
 * Entry of restore's worker threads. Node's compile cache (enabled by bin/pgark.js for the main
 * thread, in a directory bin/compile-cache.cjs checked) does not carry over into worker threads,
 * so each worker parsed and compiled restore-worker.ts and everything it imports anew on every
 * restore (bench/results/restore.md). When the main thread runs with the cache, the worker enables
 * the same directory before it loads the worker's modules.
 */
import { enableCompileCache } from 'node:module';
import { dirname } from 'node:path';
import { workerData } from 'node:worker_threads';

const data = workerData as { init?: { compileCacheDir?: string } } | undefined;
const dir = data?.init?.compileCacheDir;
if (dir !== undefined) {
  try {
    // getCompileCacheDir() names Node's versioned subdirectory of the directory that was enabled.
    enableCompileCache(dirname(dir));
  } catch {
    // Without the cache the worker only starts slower.
  }
}
await import('./restore-worker.js');
