/**
 * pgark's log: lines in one format (common/log-format.ts) to stderr and, with `log-file`, appended
 * to a file. Levels: error < warn < info < debug < trace. Never log secrets.
 *
 * - stderr gets lines up to its level: `log-level-stderr` when set, else `log-level` without a
 *   log file and the lower of `log-level` and `warn` with one (a scheduled job's mail or journal
 *   carries the problems; the file carries the detail).
 * - the log file gets lines up to `log-level`. It is opened for appending (O_APPEND: the lines of
 *   concurrent pgark processes do not tear), created 0600, its missing directories 0700. If it
 *   cannot be opened, one warning says so on stderr and the command goes on (a log file must not
 *   stop archiving).
 * - the error that ends a command (reportFailure) is written whatever the levels, to stderr and
 *   to the file.
 * Writes are synchronous, so nothing is lost when the process exits right after.
 */
import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { formatLogLines, formatSeconds, isLogLevel, levelEnabled, LOG_LEVELS, minLevel, type LineLevel, type LogLevel } from './log-format.js';

export { isLogLevel, LOG_LEVELS, type LogLevel };

let stderrLevel: LogLevel = 'warn';
let fileLevel: LogLevel = 'off';
let file: { path: string; fd: number } | undefined;
let command: string | undefined;

/** The level of every destination (no log file): the behaviour before log files. */
export function setLogLevel(level: LogLevel): void {
  stderrLevel = level;
  fileLevel = file ? level : 'off';
}

/** The command named in each line (`backup`, `repo-create`). */
export function setLogCommand(name: string | undefined): void {
  command = name;
}

export interface LogDestinations {
  level: LogLevel;
  /** stderr's own level (log-level-stderr); default: see the header. */
  stderrLevel?: LogLevel | undefined;
  /** Absolute path of the log file, or none. */
  file?: string | undefined;
}

/** Where lines go (from the resolved settings). Opens the log file when it changes. */
export function setLogDestinations(d: LogDestinations): void {
  if (file && file.path !== d.file) {
    closeSync(file.fd);
    file = undefined;
  }
  if (d.file && !file) {
    try {
      mkdirSync(dirname(d.file), { recursive: true, mode: 0o700 });
      file = { path: d.file, fd: openSync(d.file, 'a', 0o600) };
    } catch (err) {
      stderrLevel = d.stderrLevel ?? d.level;
      fileLevel = 'off';
      write('warn', `unable to open log file '${d.file}': ${(err as Error).message}; logging to stderr only`);
      return;
    }
  }
  fileLevel = file ? d.level : 'off';
  stderrLevel = d.stderrLevel ?? (file ? minLevel(d.level, 'warn') : d.level);
}

/** What a worker thread needs to log like this thread (common/worker-pool.ts passes it on). */
export interface LogState {
  command: string | undefined;
  destinations: LogDestinations;
}
export function logState(): LogState {
  return { command, destinations: { level: file ? fileLevel : stderrLevel, stderrLevel, file: file?.path } };
}
export function applyLogState(s: LogState): void {
  setLogCommand(s.command);
  setLogDestinations(s.destinations);
}

function enabled(level: LineLevel): boolean {
  return levelEnabled(level, stderrLevel) || (file !== undefined && levelEnabled(level, fileLevel));
}

function emit(level: LineLevel, message: string, force: boolean): void {
  const toStderr = force || levelEnabled(level, stderrLevel);
  const toFile = file !== undefined && (force || levelEnabled(level, fileLevel));
  if (!toStderr && !toFile) return;
  const text = formatLogLines(new Date(), level, command, process.pid, message);
  if (toStderr) process.stderr.write(text);
  if (toFile) {
    try {
      writeSync(file!.fd, text);
    } catch {
      // A full or vanished log file must not fail the command: stderr still has what matters.
    }
  }
}

function write(level: LineLevel, message: string | (() => string)): void {
  if (!enabled(level)) return;
  emit(level, typeof message === 'function' ? message() : message, false);
}

/**
 * The error that ends a command: `[<exit code>] <message>`, written whatever the log levels
 * (every error path of the CLI and of bin/pgark.js prints through this format).
 */
export function reportFailure(exitCode: number, message: string): void {
  emit('error', `[${exitCode}] ${message}`, true);
}

/** A line that is shown whatever the level (a server's start notice, a signal that stops a command). */
export function notice(level: 'info' | 'warn', message: string): void {
  emit(level, message, true);
}

export const log = {
  error: (msg: string) => write('error', msg),
  warn: (msg: string) => write('warn', msg),
  info: (msg: string) => write('info', msg),
  debug: (msg: string) => write('debug', msg),
  /** Per-file and per-object decisions; pass a function when building the message costs. */
  trace: (msg: string | (() => string)) => write('trace', msg),
  enabled,
};

/**
 * Where time went, at debug level: `lap(name)` ends the phase that began at the previous lap
 * (or at creation) and logs `<what>: <name> took 1.234s`; `done()` logs every phase and the
 * total on one line. Free when debug is off (two clock reads per phase).
 */
export class PhaseTimer {
  private readonly phases: Array<[string, number]> = [];
  private readonly t0 = performance.now();
  private last = this.t0;
  constructor(private readonly what: string) {}

  lap(name: string, detail?: string): void {
    const now = performance.now();
    const ms = now - this.last;
    this.last = now;
    this.phases.push([name, ms]);
    if (enabled('debug')) log.debug(`${this.what}: ${name} took ${formatSeconds(ms)}${detail ? ` (${detail})` : ''}`);
  }

  done(detail?: string): void {
    const total = performance.now() - this.t0;
    if (enabled('debug')) log.debug(`${this.what}: done in ${formatSeconds(total)}${detail ? ` (${detail})` : ''}: ${this.phases.map(([n, ms]) => `${n} ${formatSeconds(ms)}`).join(', ')}`);
  }
}
