/**
 * Start a detached pgark worker (look-ahead pushes, prefetch) that outlives this process.
 * Settings travel by environment (config/settings-transport.ts), never argv.
 */
import type * as ChildProcess from 'node:child_process';
import { settingsEnv, type WorkerSettings } from '../config/settings-transport.js';
import { log } from '../common/log.js';

/** The allocator settings bin/pgark.js gives a one-file wal-push / wal-fetch. */
const MIMALLOC_ONE_FILE = ['MIMALLOC_PURGE_DELAY', 'MIMALLOC_EAGER_COMMIT', 'MIMALLOC_ARENA_EAGER_COMMIT'];

export function workerEnv(settings: WorkerSettings): NodeJS.ProcessEnv {
  // Every setting given by flag or environment, drivers' included, and the config file in use
  // (config/settings-transport.ts); secrets are inherited with the rest of the environment.
  const env: NodeJS.ProcessEnv = { ...process.env, ...settingsEnv(settings) };
  // bin/pgark.js narrowed libuv's pool for this one-file call; a worker moves many files at once.
  if (env.PGARK_UV_THREADPOOL_SIZE_SET) {
    delete env.UV_THREADPOOL_SIZE;
    delete env.PGARK_UV_THREADPOOL_SIZE_SET;
  }
  // Likewise lz4-napi's allocator settings (bin/pgark.js), when pgark set them.
  if (env.PGARK_MIMALLOC_SET) {
    for (const k of MIMALLOC_ONE_FILE) delete env[k];
    delete env.PGARK_MIMALLOC_SET;
  }
  return env;
}

/** The worker's pid, or undefined when it could not be started (the caller carries on). */
export function spawnWorker(args: string[], settings: WorkerSettings): number | undefined {
  const entry = process.argv[1];
  if (!entry) return undefined;
  try {
    // Loaded here, not at start-up: most calls start no worker (~2.5 MiB of peak RSS, bench/results/memory.md).
    const { spawn } = process.getBuiltinModule('node:child_process') as typeof ChildProcess;
    const child = spawn(process.execPath, [entry, ...args], { detached: true, stdio: 'ignore', env: workerEnv(settings) });
    child.on('error', (err) => log.warn(`unable to start worker '${args[0]}': ${err.message}`));
    child.unref();
    return child.pid;
  } catch (err) {
    log.warn(`unable to start worker '${args[0]}': ${(err as Error).message}`);
    return undefined;
  }
}
