/**
 * Start a detached pgark worker (look-ahead pushes, prefetch) that outlives this process.
 * Settings travel by environment, never argv, so nothing secret shows in `ps`.
 */
import { spawn } from 'node:child_process';
import type { Settings } from '../config/resolve.js';
import { log } from './log.js';

export function workerEnv(settings: Settings): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PGARK_REPO: settings.repo,
    PGARK_STANZA: settings.stanza,
    PGARK_JOBS: String(settings.jobs),
    PGARK_PUSH_AHEAD: String(settings.pushAhead),
    PGARK_PREFETCH: String(settings.prefetch),
    PGARK_RETRIES: String(settings.retries),
    PGARK_RETRY_BUDGET: String(settings.retryBudgetSec),
    PGARK_LOG_LEVEL: settings.logLevel,
  };
  if (settings.codecExplicit) env.PGARK_CODEC = settings.codec;
  if (settings.compressLevel !== undefined) env.PGARK_COMPRESS_LEVEL = String(settings.compressLevel);
  if (settings.configPath) env.PGARK_CONFIG = settings.configPath;
  // bin/pgark.js narrowed libuv's pool for this one-file call; a worker moves many files at once.
  if (env.PGARK_UV_THREADPOOL_SIZE_SET) {
    delete env.UV_THREADPOOL_SIZE;
    delete env.PGARK_UV_THREADPOOL_SIZE_SET;
  }
  return env;
}

/** The worker's pid, or undefined when it could not be started (the caller carries on). */
export function spawnWorker(args: string[], settings: Settings): number | undefined {
  const entry = process.argv[1];
  if (!entry) return undefined;
  try {
    const child = spawn(process.execPath, [entry, ...args], { detached: true, stdio: 'ignore', env: workerEnv(settings) });
    child.on('error', (err) => log.warn(`unable to start worker '${args[0]}': ${err.message}`));
    child.unref();
    return child.pid;
  } catch (err) {
    log.warn(`unable to start worker '${args[0]}': ${(err as Error).message}`);
    return undefined;
  }
}
