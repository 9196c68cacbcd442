/**
 * The one line format of everything pgark logs (pure), on stderr and in the log file alike:
 *
 *   2026-12-07T00:30:00.123Z ERROR pgark-backup[4711]: [2] unable to parse '/etc/pgark/pgark.conf:3': ...
 *   <time, UTC>              <lvl> pgark-<command>[<pid>]: <message>
 *
 * The level is padded to five characters (ERROR, WARN, INFO, DEBUG, TRACE); the command is the
 * command path joined by '-' (`wal-push`, `repo-create`, `sets-subscribe`), or absent before the
 * command is known (`pgark[4711]`). A message of several lines (a stack trace) becomes several
 * lines, each with the full prefix, so that every line can be grepped by pid or command. The
 * error that ends a command carries its exit code first (`[2] ...`), as pgBackRest's do.
 * Secrets: messages are built from redacted values; as a last line of defence the formatter
 * masks what looks like one (password=, a URL's user:password@, a SAS signature, a token).
 */
export const LOG_LEVELS = ['off', 'error', 'warn', 'info', 'debug', 'trace'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export type LineLevel = Exclude<LogLevel, 'off'>;

export function isLogLevel(s: string): s is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(s);
}

/** Whether a line of `level` is written where `threshold` is the configured level. */
export function levelEnabled(level: LineLevel, threshold: LogLevel): boolean {
  return threshold !== 'off' && LOG_LEVELS.indexOf(level) <= LOG_LEVELS.indexOf(threshold);
}

/** The lower (less verbose) of two levels. */
export function minLevel(a: LogLevel, b: LogLevel): LogLevel {
  return LOG_LEVELS.indexOf(a) <= LOG_LEVELS.indexOf(b) ? a : b;
}

const SECRET_PATTERNS: ReadonlyArray<[RegExp, string]> = [
  // key=value secrets in conninfo strings and query strings
  [/\b(password|passwd|passphrase|secret|token|sig|signature|AccountKey|SharedAccessSignature|X-Amz-Signature|X-Amz-Credential)=("[^"]*"|'[^']*'|[^\s&;'"]+)/gi, '$1=***'],
  // scheme://user:password@host
  [/\b([a-z][a-z0-9+.-]*:\/\/[^\s/:@]+):[^\s/@]+@/gi, '$1:***@'],
];

/** The message with anything that looks like a secret masked. */
export function maskSecrets(message: string): string {
  let m = message;
  for (const [re, to] of SECRET_PATTERNS) m = m.replace(re, to);
  return m;
}

/** The lines pgark writes for one message (each ends with '\n'). */
export function formatLogLines(time: Date, level: LineLevel, command: string | undefined, pid: number, message: string): string {
  const prefix = `${time.toISOString()} ${level.toUpperCase().padEnd(5)} pgark${command ? `-${command}` : ''}[${pid}]: `;
  return maskSecrets(message)
    .replace(/\r\n?/g, '\n')
    .replace(/\n+$/, '')
    .split('\n')
    .map((l) => `${prefix}${l}\n`)
    .join('');
}

/** Parses one line of the format above (tests, tools): undefined when it is not one. */
export function parseLogLine(line: string): { time: string; level: LineLevel; command: string | undefined; pid: number; message: string } | undefined {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) (ERROR|WARN |INFO |DEBUG|TRACE) pgark(?:-([a-z0-9-]+))?\[(\d+)\]: (.*)$/.exec(line);
  if (!m) return undefined;
  return { time: m[1]!, level: m[2]!.trim().toLowerCase() as LineLevel, command: m[3], pid: Number(m[4]), message: m[5]! };
}

/** Seconds with millisecond precision, for phase durations ("1.234s"). */
export function formatSeconds(ms: number): string {
  return `${(ms / 1000).toFixed(3)}s`;
}
