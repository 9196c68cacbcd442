/**
 * Counts of the requests drivers make to their stores, by kind. Request counts are money on
 * object stores, so pgark can report them: with PGARK_STORAGE_STATS=1 a process prints one JSON
 * line `{"pgarkStorageRequests":{...}}` to stderr when it exits (bench/ and tests read it).
 *
 * Drivers call countRequest once per request they send (retries count again); the filesystem
 * driver counts its system calls the same way so the numbers compare. Worker threads (backup
 * and restore copy in them) forward their counts to the main thread over a BroadcastChannel,
 * so the line covers the whole process. Detached helper processes (wal-push look-ahead,
 * wal-fetch prefetch) report for themselves, on their own stderr.
 */
import type * as WorkerThreads from 'node:worker_threads';

export type RequestKind = 'list' | 'head' | 'get' | 'put' | 'delete' | 'other';

const CHANNEL = 'pgark-request-stats';
const counts: Record<RequestKind, number> = { list: 0, head: 0, get: 0, put: 0, delete: 0, other: 0 };
const enabled = process.env.PGARK_STORAGE_STATS === '1';
// node:worker_threads only when counting: a one-file wal-push / wal-fetch would load it for nothing (~1.7 MiB of peak RSS).
const threads = enabled ? (process.getBuiltinModule('node:worker_threads') as typeof WorkerThreads) : undefined;
const isMainThread = threads?.isMainThread ?? true;
let channel: WorkerThreads.BroadcastChannel | undefined;
let reporting = false;

function startReporting(): void {
  if (reporting || !enabled || !isMainThread) return;
  reporting = true;
  channel = new threads!.BroadcastChannel(CHANNEL);
  channel.unref();
  channel.onmessage = (e: unknown) => {
    const [kind, n] = (e as { data: [RequestKind, number] }).data;
    if (kind in counts) counts[kind] += n;
  };
  process.once('exit', () => {
    process.stderr.write(`${JSON.stringify({ pgarkStorageRequests: requestCounts() })}\n`);
  });
}
// The main thread listens from the start, so counts from workers are not missed.
startReporting();

export function countRequest(kind: RequestKind, n = 1): void {
  counts[kind] += n;
  if (enabled && !isMainThread) {
    if (!channel) {
      channel = new threads!.BroadcastChannel(CHANNEL);
      channel.unref();
    }
    channel.postMessage([kind, n]);
  }
}

export function requestCounts(): Record<RequestKind, number> {
  return { ...counts };
}

export function resetRequestCounts(): void {
  for (const k of Object.keys(counts) as RequestKind[]) counts[k] = 0;
}
