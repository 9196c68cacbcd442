/** How command actions end the process with a chosen exit code (shared by the command groups). */
import { createRequire } from 'node:module';

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
