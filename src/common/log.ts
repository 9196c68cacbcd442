/** Logging to stderr. Levels: error < warn < info < debug. Never log secrets. */
export const LOG_LEVELS = ['off', 'error', 'warn', 'info', 'debug'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

let current: LogLevel = 'warn';
let prefix = 'pgark';

export function setLogLevel(level: LogLevel): void {
  current = level;
}

export function setLogPrefix(p: string): void {
  prefix = p;
}

export function isLogLevel(s: string): s is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(s);
}

function enabled(level: LogLevel): boolean {
  return LOG_LEVELS.indexOf(level) <= LOG_LEVELS.indexOf(current) && current !== 'off';
}

function write(level: LogLevel, msg: string): void {
  if (!enabled(level)) return;
  process.stderr.write(`${new Date().toISOString()} ${prefix}[${process.pid}] ${level.toUpperCase()}: ${msg}\n`);
}

export const log = {
  error: (msg: string) => write('error', msg),
  warn: (msg: string) => write('warn', msg),
  info: (msg: string) => write('info', msg),
  debug: (msg: string) => write('debug', msg),
  enabled,
};
