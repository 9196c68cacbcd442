/**
 * Returns the memory of large short-lived buffers early. Each V8 isolate (the main thread and
 * every worker thread) lets up to 64 MiB of unreachable ArrayBuffer memory (lz4-napi's decoded
 * and encoded 1 MiB chunks, allocated outside pgark's buffer pools) pile up before it collects
 * them: a restore with two workers peaked at 247 MiB RSS, most of it garbage
 * (bench/results/memory.md). A stage that drops such buffers reports their size here; after
 * GARBAGE_BUDGET bytes the thread runs a full garbage collection, which frees them. Each
 * collection costs ~10 ms of CPU even with pgark's small heaps: 16 MiB cut a restore's peak by
 * ~80 MiB for ~15% more CPU, 32 MiB by ~40 MiB for a few percent, which is the default here.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** Bytes of dropped buffers a thread lets accumulate between collections (docs/OPERATIONS.md, Memory). */
export const GARBAGE_BUDGET = 32 * 1024 * 1024;

type GcFunction = (o?: { type?: 'major' | 'minor' }) => void;

let gcFn: GcFunction | null | undefined;
let dropped = 0;
let budget = GARBAGE_BUDGET;
let collection: 'major' | 'minor' = 'major';
/** With minor collections: every n-th one is a full one (0: never). */
let majorEvery = 0;
let minorCount = 0;

/**
 * This thread's budget and kind of collection instead of GARBAGE_BUDGET and a full one. A
 * full-path wal-push or wal-fetch moves one 16 MiB file: with 32 MiB nothing is ever collected
 * before it exits, so every buffer it drops counts in its peak RSS. It uses SINGLE_FILE_BUDGET
 * with minor collections (bench/results/memory.md): on S3 a wal-fetch peaks ~9 MiB lower for
 * the same CPU; full collections every 4 MiB would save 2-8 MiB on a file system too, but cost
 * 20-30% more CPU per call (~25 ms each, 60 with the S3 SDK's modules in the heap).
 */
export function setGarbageBudget(bytes: number, type: 'major' | 'minor' = 'major', fullEvery = 0): void {
  budget = bytes;
  collection = type;
  majorEvery = fullEvery;
  minorCount = 0;
}

/** The budget of a process that moves one file (wal-push, wal-fetch), with minor collections. */
export const SINGLE_FILE_BUDGET = 4 * 1024 * 1024;

/**
 * The budget of a backup thread, which compresses with lz4 without pause: lz4-napi's blocks die
 * young, so a minor collection every 16 MiB of them frees them for a fraction of a full one's
 * CPU; every 8th is a full one, for what a minor one promoted (bench/results/backup.md). The
 * agent takes minor collections only (agent.ts: V8 starts its own full ones during a drain).
 */
export function setCompressorBudget(): void {
  setGarbageBudget(16 * 1024 * 1024, 'minor', 8);
}

/** V8's gc(), made reachable once per thread (null if this V8 refuses: then V8 alone decides). */
function gc(): GcFunction | null {
  if (gcFn === undefined) {
    try {
      setFlagsFromString('--expose-gc');
      gcFn = runInNewContext('gc') as GcFunction;
    } catch {
      gcFn = null;
    }
  }
  return gcFn;
}

/** `bytes` of buffers became (or become once their consumer is done with them) garbage. */
export function noteGarbage(bytes: number): void {
  dropped += bytes;
  if (dropped < budget) return;
  dropped = 0;
  let type = collection;
  if (type === 'minor' && majorEvery > 0 && ++minorCount >= majorEvery) {
    minorCount = 0;
    type = 'major';
  }
  gc()?.({ type });
}
