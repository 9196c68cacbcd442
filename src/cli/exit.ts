/** How command actions end the process with a chosen exit code (shared by the command groups). */
import { createRequire } from 'node:module';
import { ExitCode, exitCodeOf } from '../common/errors.js';
import { reportFailure } from '../common/log.js';

interface WalFetchExitModule {
  WAL_FETCH_FATAL_BASE: number;
  walFetchFatalCode(code: number): number;
  crashExitCode(argv: readonly string[]): number;
}

/**
 * wal-fetch's exit-code mapping, written once in wal-fetch-exit.cjs next to this file (CommonJS:
 * bin/pgark.js uses it before the CLI loads; tsc copies it to dist/src/cli/, allowJs).
 */
function loadWalFetchExit(): WalFetchExitModule {
  return createRequire(import.meta.url)('./wal-fetch-exit.cjs') as WalFetchExitModule;
}

let walFetchExitModule: WalFetchExitModule | undefined;
const walFetchExitTable = (): WalFetchExitModule => (walFetchExitModule ??= loadWalFetchExit());

/** wal-fetch's contract with PostgreSQL: 1 = not archived; >125 = stop recovery (fatal codes are this + N). */
export const walFetchFatalBase = (): number => walFetchExitTable().WAL_FETCH_FATAL_BASE;

/** The exit code of a wal-fetch that failed with pgark exit code `code`: above 125, so recovery stops. */
export const walFetchFatalCode = (code: number): number => walFetchExitTable().walFetchFatalCode(code);

/** Thrown by a command action to exit with `exitCode` without printing anything further. */
export class ExitWith extends Error {
  constructor(readonly exitCode: number) {
    super(`exit ${exitCode}`);
  }
}

/** `pgark check` is a monitoring plugin: pgark's own failures there (bad usage too) are UNKNOWN. */
export const CHECK_UNKNOWN = 3;

/**
 * A command action's failure: reported once (log line with its exit code) unless it is an
 * ExitWith, which says the action already did; returns the exit code (main.ts, wal-call.ts).
 */
export function reportActionError(err: unknown): number {
  if (err instanceof ExitWith) return err.exitCode;
  const code = exitCodeOf(err);
  const msg = err instanceof Error ? err.message : String(err);
  reportFailure(code, code === ExitCode.INTERNAL ? `internal error: ${err instanceof Error && err.stack ? err.stack : msg}` : msg);
  return code;
}
