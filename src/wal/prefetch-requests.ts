/**
 * Requests to a running prefetch worker (pure: names only). The shell client bin/pgark-wal-fetch
 * answers restore_command calls for segments the worker has not put in the prefetch area, and
 * for timeline history files, without starting Node: it leaves `<name>.want-<pid>` (its own pid)
 * in the prefetch area and waits for the worker's answer beside it:
 *
 *   `<name>.got-<pid>`   the file, verified against the repository (moved to %p by the client)
 *   `<name>.none-<pid>`  the repository answered "not archived" (the client exits 1)
 *   `<name>.fail-<pid>`  anything else (the client runs the full `pgark wal-fetch`, which reports
 *                        the failure with its own exit code)
 *
 * Each answer is decided after the request appeared (a fresh look at the repository), so "not
 * archived" is as exact as the full path's. Only the worker holding SERVE_LOCK answers, and the
 * client asks only when SERVE_ARGS holds exactly its own options (the words after %f %p), so a
 * changed restore_command is never answered from another repository.
 */
import { HEX8, isHistoryName, isSegmentName, SEGMENT_HEX } from '../pg/wal-names.js';

/** The worker that answers requests (a pid lock, src/common/pid-lock.ts). */
export const SERVE_LOCK = 'serve.lock';
/** The restore_command options (after %f %p) the serving worker was started with, one line. */
export const SERVE_ARGS = 'serve.args';

export type RequestFile = { kind: 'want' | 'got' | 'none' | 'fail'; name: string; pid: number };

const REQUEST_RE = new RegExp(`^(${SEGMENT_HEX}|${HEX8}\\.history)\\.(want|got|none|fail)-([1-9][0-9]{0,9})$`);

/** A request or answer file of the prefetch area, or undefined for any other entry. */
export function parseRequestFile(entry: string): RequestFile | undefined {
  const m = REQUEST_RE.exec(entry);
  if (!m) return undefined;
  const name = m[1]!;
  if (!isSegmentName(name) && !isHistoryName(name)) return undefined;
  return { kind: m[2] as RequestFile['kind'], name, pid: Number(m[3]) };
}

export function requestFileName(kind: RequestFile['kind'], name: string, pid: number): string {
  return `${name}.${kind}-${pid}`;
}

/**
 * The SERVE_ARGS line of a `pgark wal-fetch <name> <dest> [options]` command line (process.argv
 * after the runtime and script), as the shell client joins "$@" after its two positionals with
 * single spaces; undefined when the options are not after the positionals or a word holds a
 * newline (the client could not compare it), so no request is ever answered for that call.
 */
export function serveArgsLine(args: readonly string[], name: string, dest: string): string | undefined {
  if (args[0] !== 'wal-fetch' || args[1] !== name || args[2] !== dest) return undefined;
  const opts = args.slice(3);
  if (opts.some((a) => a.includes('\n'))) return undefined;
  return opts.join(' ');
}
