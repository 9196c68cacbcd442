/** Human-readable formatting and parsing for CLI output (pure). */
import { ConfigError } from '../common/errors.js';

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(1)} ${units[i]}`;
}

/** `2h`, `30m`, `3d`, `1w` before now, or an ISO date/time. */
export function parseSince(text: string, now: Date = new Date()): Date {
  const m = /^(\d+)([smhdw])$/.exec(text);
  if (m) {
    const mult = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 }[m[2] as 's' | 'm' | 'h' | 'd' | 'w'];
    return new Date(now.getTime() - Number(m[1]) * mult * 1000);
  }
  const d = new Date(text);
  if (Number.isNaN(d.getTime())) throw new ConfigError(`invalid --since '${text}': expected a duration like 2h or 3d, or an ISO date`);
  return d;
}
