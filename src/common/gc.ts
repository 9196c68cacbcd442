/**
 * Prompt collection of dead I/O buffers. Large Buffers live outside the JavaScript heap, and a
 * thread that allocates hundreds of MiB of them per second can hold many dead ones before the
 * engine decides to collect; a young-generation collection every few dozen MiB of I/O keeps the
 * resident size near what is really in use. Falls back to nothing when the runtime refuses.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

type GcFn = (o?: { type?: 'minor' | 'major'; execution?: 'sync' | 'async' }) => void;

let gcFn: GcFn | null | undefined;

function load(): GcFn | null {
  try {
    setFlagsFromString('--expose-gc');
    return runInNewContext('gc') as GcFn;
  } catch {
    return null;
  }
}

/** Call after every `everyBytes` of buffers handled: collects when that much has gone through. */
export class GcPacer {
  private since = 0;
  constructor(private readonly everyBytes = 64 * 1024 * 1024) {}

  add(bytes: number): void {
    this.since += bytes;
    if (this.since < this.everyBytes) return;
    this.since = 0;
    gcFn ??= load();
    gcFn?.({ type: 'major' });
  }
}
