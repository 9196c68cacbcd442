/**
 * Known, harmless races inside dependencies that surface as unhandled promise rejections.
 *
 * teeny-request (the HTTP layer of @google-cloud/storage, through retry-request) pipes a
 * download's response into its request stream from a 'response' listener without checking that
 * retry-request has not already destroyed that stream, which it does when it retries a 503. Since
 * Node 22, `stream.pipeline` into a destroyed stream throws ERR_STREAM_UNABLE_TO_PIPE at once;
 * the throw happens inside a promise callback of the SDK, so it is an unhandled rejection,
 * although the retry goes on and the download succeeds. Unfiltered it would end the process
 * (bin/pgark.js's handler: exit 13, 213 for wal-fetch) or a worker thread. The same predicate is
 * written in bin/pgark.js (which runs before any compiled module) and vitest.config.ts.
 */
export function isKnownSdkRace(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const e = err as { code?: unknown; stack?: unknown };
  return e.code === 'ERR_STREAM_UNABLE_TO_PIPE' && typeof e.stack === 'string' && e.stack.includes('teeny-request');
}

let installed = false;

/**
 * In a worker thread: ignore the known races, keep every other unhandled rejection fatal (it is
 * rethrown, so the thread ends with it as it would without a handler).
 */
export function ignoreKnownSdkRaces(): void {
  if (installed) return;
  installed = true;
  process.on('unhandledRejection', (reason) => {
    if (isKnownSdkRace(reason)) return;
    throw reason;
  });
}
