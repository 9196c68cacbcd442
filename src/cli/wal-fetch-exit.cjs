'use strict';
// wal-fetch's exit codes, the one place they are written (bin/pgark.js reads this file, copied to
// dist/src/cli/ by tsc, before the CLI loads; src/cli/exit.ts is the TypeScript door to it). PostgreSQL reads restore_command's
// exit code: 0 restored, 1..125 "not archived" (recovery ends there, or a standby keeps waiting),
// above 125 "stop recovery". wal-fetch exits 1 only when the archive answered that the file is
// not there; every other failure N (storage unreachable, checksum mismatch, bad usage, an
// internal error) exits WAL_FETCH_FATAL_BASE + N, so that PostgreSQL stops rather than promotes
// early.

const WAL_FETCH_FATAL_BASE = 200;
/** pgark's internal-error code (src/common/errors.ts ExitCode.INTERNAL). */
const INTERNAL = 13;

/** The exit code of a wal-fetch that failed with pgark exit code `code` (already fatal codes stay). */
function walFetchFatalCode(code) {
  return Number.isInteger(code) && code > 125 ? code : WAL_FETCH_FATAL_BASE + (Number.isInteger(code) && code > 0 ? code : INTERNAL);
}

/** The exit code for an unexpected crash (uncaught exception) of the command `argv` runs. */
function crashExitCode(argv) {
  return argv.includes('wal-fetch') ? walFetchFatalCode(INTERNAL) : INTERNAL;
}

module.exports = { WAL_FETCH_FATAL_BASE, walFetchFatalCode, crashExitCode };
