/**
 * A pool of worker threads that run tasks of one kind (backup copy, restore, verify).
 * Tasks are handed out one at a time as workers become free; the first failure stops the pool.
 *
 * Protocol (worker side: see serveWorker): the worker receives `{ init }` through workerData,
 * then `{ task }` messages; it answers `{ progress: bytes }`, `{ done: result }` or
 * `{ error: { message, exitCode, name } }`.
 */
import { getCompileCacheDir } from 'node:module';
import { Worker, parentPort, workerData } from 'node:worker_threads';
import { ExitCode, exitCodeOf, PgarkError } from './errors.js';
import { ignoreKnownSdkRaces } from './sdk-races.js';
import { applyLogState, logState, type LogState } from './log.js';

export class RemoteError extends PgarkError {
  override readonly exitCode: number;
  constructor(message: string, exitCode: number, name: string) {
    super(message);
    this.exitCode = exitCode;
    this.name = name;
  }
}

interface WorkerMessage<R> {
  progress?: number;
  done?: R;
  error?: { message: string; exitCode: number; name: string };
}

/**
 * The worker's task function, run on the calling thread as one of the `count` jobs (runPool's
 * `local`): one worker thread fewer, so one V8 isolate fewer to start and keep in memory, when the
 * calling thread has nothing else to do while the pool runs (restore).
 */
export type LocalTask<I, T, R> = (init: I, task: T, progress: (bytes: number) => void) => Promise<R>;

/** Built next to this module (dist/); the threads' scripts are loaded by it. */
const WORKER_ENTRY = new URL('./worker-entry.js', import.meta.url);

export async function runPool<I, T, R>(
  script: URL,
  count: number,
  init: I,
  tasks: readonly T[],
  onProgress: (bytes: number) => void,
  onDone: (result: R, task: T) => void,
  local?: LocalTask<I, T, R>,
  started?: StartedThreads,
): Promise<void> {
  if (tasks.length === 0 || started?.failure) {
    await stopThreads(started);
    if (started?.failure) throw started.failure;
    return;
  }
  const workers: Worker[] = [];
  // Workers still running a task: they settle (done, error or exit) before the pool terminates them.
  const busy = new Map<Worker | 'local', Promise<void>>();
  const settlers = new Map<Worker, () => void>();
  let next = 0;
  let failed: Error | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      const jobs = Math.min(count, tasks.length);
      const threads = local ? jobs - 1 : jobs;
      const compileCacheDir = getCompileCacheDir();
      let running = jobs;
      const fail = (err: Error) => {
        if (failed) return;
        failed = err;
        reject(err);
      };
      for (let i = 0; i < threads; i++) {
        // A thread started early (startThreads) gets the init with its first task.
        const early = started?.workers[i];
        const w = early ?? newThread(script, init, compileCacheDir);
        workers.push(w);
        let lateInit = early !== undefined;
        let current: T | undefined;
        const give = () => {
          if (failed) return;
          if (next >= tasks.length) {
            current = undefined;
            void w.terminate();
            if (--running === 0) resolve();
            return;
          }
          current = tasks[next++]!;
          busy.set(w, new Promise<void>((r) => settlers.set(w, r)));
          w.postMessage(lateInit ? { task: current, init } : { task: current });
          lateInit = false;
        };
        const settle = () => {
          settlers.get(w)?.();
          settlers.delete(w);
          busy.delete(w);
        };
        w.on('message', (m: WorkerMessage<R>) => {
          if (m.progress === undefined) settle();
          if (m.progress !== undefined) onProgress(m.progress);
          else if (m.done !== undefined) {
            try {
              onDone(m.done, current!);
            } catch (err) {
              fail(err as Error);
              return;
            }
            give();
          } else if (m.error) fail(new RemoteError(m.error.message, m.error.exitCode, m.error.name));
        });
        w.on('error', (err) => fail(err));
        if (early && started.exited) fail(new PgarkError(`worker thread exited (code ${started.exited.code}) before its first task`));
        w.on('exit', (code) => {
          settle();
          if (current !== undefined && !failed) fail(new PgarkError(`worker thread exited (code ${code}) during a task`));
        });
        give();
      }
      if (local) {
        // This thread's job, started after the threads so that they start up meanwhile.
        const mine = (async () => {
          while (!failed && next < tasks.length) {
            const task = tasks[next++]!;
            onDone(await local(init, task, onProgress), task);
          }
        })().then(() => {
          if (!failed && --running === 0) resolve();
        }, (err: unknown) => fail(err instanceof Error ? err : new Error(String(err))));
        busy.set('local', mine);
      }
    });
  } finally {
    // After a failure the other workers' tasks get a bounded time to end by themselves (on a full
    // disk they fail at once), so that a store's own cleanup of a half-written object (the fs
    // driver's temp file) runs instead of being cut off by terminate().
    if (failed && busy.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([Promise.all(busy.values()), new Promise<void>((r) => (timer = setTimeout(r, SETTLE_AFTER_FAILURE_MS)))]);
      clearTimeout(timer);
    }
    await Promise.all(workers.map((w) => w.terminate()));
    if (started) await stopThreads(started);
  }
}

/** A worker thread running `script`; `init` undefined: it comes with the first task (startThreads). */
function newThread(script: URL, init: unknown, compileCacheDir: string | undefined): Worker {
  // The thread logs like this one: same command, levels and log file (its own descriptor, O_APPEND).
  // A small young generation: the threads allocate few JS objects (their data is in
  // buffers), and V8's default (16 MiB of semi-spaces per thread) was idle memory.
  // Through worker-entry.ts: the thread uses this thread's compile cache before it loads `script`.
  return new Worker(WORKER_ENTRY, {
    workerData: { init, log: logState(), script: script.href, compileCacheDir },
    resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_GENERATION_MB },
  });
}

/**
 * Worker threads started before the pool's init is known (restore: while it reads the backup's
 * manifests), so that their start-up (an isolate, the script's modules: ~0.1-0.2 s of CPU) runs
 * on a core the calling thread leaves idle meanwhile instead of after it. runPool takes them as
 * its first threads (`started`) and hands each its init with its first task; whatever happens,
 * runPool or stopThreads terminates them.
 */
export interface StartedThreads {
  workers: Worker[];
  /** The first error or early exit of one of them (runPool then fails with it). */
  failure?: Error;
  exited?: { code: number };
}

export function startThreads(script: URL, count: number): StartedThreads {
  const compileCacheDir = getCompileCacheDir();
  const started: StartedThreads = { workers: [] };
  for (let i = 0; i < count; i++) {
    const w = newThread(script, undefined, compileCacheDir);
    w.on('error', (err) => (started.failure ??= err));
    w.once('exit', (code) => (started.exited ??= { code }));
    started.workers.push(w);
  }
  return started;
}

/** Terminates threads startThreads started (those runPool did not take, or all when it never ran). */
export async function stopThreads(started: StartedThreads | undefined): Promise<void> {
  if (!started) return;
  const ws = started.workers;
  started.workers = [];
  await Promise.all(ws.map((w) => w.terminate()));
}

/**
 * Run `tasks` in `lanes` concurrent loops on this thread, in order, without worker threads (a
 * pool's alternative when a thread's isolate costs more than it brings: restore and backup at
 * --jobs <= 2). After a failure no lane takes a new task; the tasks in flight end by themselves
 * (a store removes what it half wrote), then the first error is thrown.
 */
export async function runLanes<T, R>(lanes: number, tasks: readonly T[], run: (task: T) => Promise<R>, done: (result: R, task: T) => void): Promise<void> {
  let next = 0;
  let failed: { err: unknown } | undefined;
  await Promise.all(Array.from({ length: Math.max(1, Math.min(lanes, tasks.length)) }, async () => {
    while (!failed && next < tasks.length) {
      const task = tasks[next++]!;
      try {
        done(await run(task), task);
      } catch (err) {
        failed ??= { err };
      }
    }
  }));
  if (failed) throw failed.err;
}

/** Young generation of each worker thread (docs/OPERATIONS.md, Memory). */
export const WORKER_YOUNG_GENERATION_MB = 2;

/** How long the pool waits, after one task failed, for the tasks in flight to end by themselves. */
const SETTLE_AFTER_FAILURE_MS = 10_000;

/**
 * Worker side: run `handle` for each task with the pool's init data. Off a worker thread (a
 * unit test importing the worker module to call its task function directly) there is nothing
 * to serve.
 */
export function serveWorker<I, T, R>(handle: (init: I, task: T, progress: (bytes: number) => void) => Promise<R>): void {
  const port = parentPort;
  if (!port) return;
  ignoreKnownSdkRaces();
  const data = workerData as { init: I; log: LogState };
  applyLogState(data.log);
  let init = data.init;
  port.on('message', (m: { task: T; init?: I }) => {
    // A thread started before the init was known (startThreads) gets it with its first task.
    if (m.init !== undefined) init = m.init;
    handle(init, m.task, (bytes) => port.postMessage({ progress: bytes })).then(
      (done) => port.postMessage({ done }),
      (err: unknown) => {
        const e = err instanceof Error ? err : new Error(String(err));
        const code = exitCodeOf(err);
        port.postMessage({ error: { message: code === ExitCode.INTERNAL && e.stack ? e.stack : e.message, exitCode: code, name: e.name } });
      },
    );
  });
}
