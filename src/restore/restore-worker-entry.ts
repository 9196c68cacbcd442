/**
 * Entry of restore's worker threads. Node's compile cache (enabled by bin/pgark.js for the main
 * thread: bin/compile-cache.cjs) does not carry over into worker threads, so each worker parsed
 * and compiled restore-worker.ts and everything it imports anew on every restore (~0.2 s of CPU
 * per restore at `--jobs 2`, bench/results/restore.md). When the main thread runs with the cache,
 * the worker enables it too (same directory, same trust checks), then loads the worker's modules.
 */
import { createRequire } from 'node:module';
import { workerData } from 'node:worker_threads';

const data = workerData as { init?: { compileCache?: boolean } } | undefined;
if (data?.init?.compileCache === true) {
  try {
    // dist/src/restore/ -> the package's bin/ (installed next to dist/).
    (createRequire(import.meta.url)('../../../bin/compile-cache.cjs') as { enableCompileCache: () => unknown }).enableCompileCache();
  } catch {
    // Without the cache the worker only starts slower.
  }
}
await import('./restore-worker.js');
