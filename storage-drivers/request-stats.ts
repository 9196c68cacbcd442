/**
 * Counts of the requests drivers make to their stores, by kind. Request counts are money on
 * object stores, so pgark can report them: with PGARK_STORAGE_STATS=1 a process prints one JSON
 * line `{"pgarkStorageRequests":{...}}` to stderr when it exits (bench/ and tests read it).
 *
 * Drivers call countRequest once per request they send (retries count again); the filesystem
 * driver counts its system calls the same way so the numbers compare.
 */
export type RequestKind = 'list' | 'head' | 'get' | 'put' | 'delete' | 'other';

const counts: Record<RequestKind, number> = { list: 0, head: 0, get: 0, put: 0, delete: 0, other: 0 };
let reporting = false;

export function countRequest(kind: RequestKind, n = 1): void {
  counts[kind] += n;
  if (!reporting && process.env.PGARK_STORAGE_STATS === '1') {
    reporting = true;
    process.once('exit', () => {
      process.stderr.write(`${JSON.stringify({ pgarkStorageRequests: requestCounts() })}\n`);
    });
  }
}

export function requestCounts(): Record<RequestKind, number> {
  return { ...counts };
}

export function resetRequestCounts(): void {
  for (const k of Object.keys(counts) as RequestKind[]) counts[k] = 0;
}
