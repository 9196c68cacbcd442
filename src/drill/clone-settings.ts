/**
 * What `pgark clone` adds to a restored standby (pure): the apply delay (`--delay`, PostgreSQL
 * units or pgark's 7d style), the port, and the check that primary_conninfo holds no password.
 */
import { InvalidInputError } from '../common/errors.js';
import { parseDuration } from '../catalog/retention.js';
import { escapeForMessage } from '../wal/segment-name.js';

/** recovery_min_apply_delay is an int in milliseconds. */
export const MAX_APPLY_DELAY_MS = 2_147_483_647;

const PG_UNIT_MS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, min: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * `--delay` in milliseconds: PostgreSQL's time units (`500ms`, `30s`, `15min`, `1h`, `2d`) or
 * pgark's durations (`30m`, `1h30m`, `1w`, `1d12h`). A bare number is refused: PostgreSQL would
 * read it as milliseconds, which is rarely what was meant. `0` means no delay.
 */
export function parseApplyDelay(text: string): number {
  const t = text.trim();
  const bad = (why: string) => new InvalidInputError(`invalid --delay '${escapeForMessage(text)}': ${why} (examples: 1h, 30min, 30m, 90s, 1d12h)`);
  if (t === '0') return 0;
  if (/^\d+$/.test(t)) throw bad('give a unit');
  let ms: number;
  const pg = /^(\d+)\s*(us|ms|s|min|h|d)$/.exec(t);
  if (pg) ms = Math.round(Number(pg[1]) * PG_UNIT_MS[pg[2]!]!);
  else {
    try {
      ms = parseDuration(t);
    } catch {
      throw bad('expected a number with a unit');
    }
  }
  if (!Number.isSafeInteger(ms) || ms > MAX_APPLY_DELAY_MS) throw bad(`at most ${MAX_APPLY_DELAY_MS} ms (about 24 days)`);
  return ms;
}

/** The delay as PostgreSQL reads it, in the largest unit that divides it. */
export function formatApplyDelay(ms: number): string {
  if (ms === 0) return '0';
  for (const [unit, size] of [['d', 86_400_000], ['h', 3_600_000], ['min', 60_000], ['s', 1000]] as const) {
    if (ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

export function parsePort(text: string, flag = '--port'): number {
  if (!/^\d{1,5}$/.test(text.trim()) || Number(text) < 1 || Number(text) > 65535) {
    throw new InvalidInputError(`invalid ${flag} '${escapeForMessage(text)}': expected a TCP port number between 1 and 65535`);
  }
  return Number(text);
}

/** Settings written after the recovery settings: the apply delay and the port, when given. */
export function cloneSettings(o: { delayMs?: number | undefined; port?: number | undefined }): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  if (o.delayMs !== undefined) out.push(['recovery_min_apply_delay', formatApplyDelay(o.delayMs)]);
  if (o.port !== undefined) out.push(['port', String(o.port)]);
  return out;
}
