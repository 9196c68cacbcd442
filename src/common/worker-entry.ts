/**
 * Entry of every worker thread runPool starts (worker-pool.ts). Node's compile cache (enabled by
 * bin/pgark.js for the main thread, in a directory bin/compile-cache.cjs checked) does not carry
 * over into worker threads, so each worker parsed and compiled its script and everything it
 * imports anew on every run (bench/results/restore.md). When the main thread runs with the cache,
 * the worker enables the same directory before it loads its script.
 */
import { enableCompileCache } from 'node:module';
import { dirname } from 'node:path';
import { workerData } from 'node:worker_threads';

const data = workerData as { script: string; compileCacheDir?: string };
if (data.compileCacheDir !== undefined) {
  try {
    // getCompileCacheDir() names Node's versioned subdirectory of the directory that was enabled.
    enableCompileCache(dirname(data.compileCacheDir));
  } catch {
    // Without the cache the worker only starts slower.
  }
}
await import(data.script);
