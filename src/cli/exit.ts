/** How command actions end the process with a chosen exit code (shared by the command groups). */

/** wal-fetch's contract with PostgreSQL: 1 = not archived; >125 = stop recovery. */
export const WAL_FETCH_FATAL_BASE = 200;

/** Thrown by a command action to exit with `exitCode` without printing anything further. */
export class ExitWith extends Error {
  constructor(readonly exitCode: number) {
    super(`exit ${exitCode}`);
  }
}

/** `pgark check` is a monitoring plugin: pgark's own failures there (bad usage too) are UNKNOWN. */
export const CHECK_UNKNOWN = 3;
