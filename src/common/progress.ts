/**
 * Progress reporting for long jobs (backup, restore, verify), written to stderr.
 *
 * On a terminal: one line redrawn in place (at most ~10 times per second):
 *
 *   backup [########............]  45%  1.2 GiB / 2.6 GiB  180 MiB/s  ETA 0:08
 *
 * Otherwise: JSON lines, at most one per `intervalMs` plus one at finish():
 *
 *   {"progress":"backup","bytes":…,"total":…,"percent":45.1,"rateBytesPerSec":…,"etaSec":…,"elapsedSec":…}
 *
 * The rate is measured over a sliding window of the last few seconds, so the ETA follows the
 * current speed rather than the average since the start. Unknown values (no total yet, not
 * enough samples for a rate) are '--' on a terminal and null in JSON.
 */

export interface ProgressOptions {
  /** What is running: 'backup', 'restore', 'verify'. */
  what: string;
  /** Expected total; 0 when unknown (no bar, no percent, no ETA). */
  totalBytes: number;
  /** Usually process.stderr. */
  out: NodeJS.WritableStream;
  /** Redraw one line in place (terminal) instead of writing JSON lines. */
  tty: boolean;
  /** Clock in ms; injectable for tests. Default Date.now. */
  now?: () => number;
  /** Minimum ms between JSON lines (not on a terminal). Default 2000. */
  intervalMs?: number;
}

/** Minimum ms between redraws on a terminal. */
const TTY_REDRAW_MS = 100;
/** The rate is measured over this many ms of recent samples. */
const RATE_WINDOW_MS = 5000;
/** No rate (and no ETA) until samples span at least this many ms. */
const MIN_RATE_SPAN_MS = 1000;
/** Samples closer together than this are merged. */
const SAMPLE_STEP_MS = 100;
const BAR_WIDTH = 20;

interface Sample {
  t: number;
  bytes: number;
}

export class Progress {
  private readonly what: string;
  private readonly out: NodeJS.WritableStream;
  private readonly tty: boolean;
  private readonly now: () => number;
  private readonly intervalMs: number;
  private readonly start: number;
  private total: number;
  private bytes = 0;
  private samples: Sample[];
  private lastEmit: number;
  /** A progress line is on screen (tty) and not terminated by '\n'. */
  private lineShown = false;
  private finished = false;

  constructor(o: ProgressOptions) {
    this.what = o.what;
    this.out = o.out;
    this.tty = o.tty;
    this.now = o.now ?? Date.now;
    this.intervalMs = o.intervalMs ?? 2000;
    this.total = sane(o.totalBytes);
    this.start = this.now();
    this.samples = [{ t: this.start, bytes: 0 }];
    // A terminal shows the bar on the first add(); JSON waits a full interval.
    this.lastEmit = this.tty ? -Infinity : this.start;
  }

  /** Count `bytes` more as done; redraws or emits when the rate limit allows. */
  add(bytes: number): void {
    if (this.finished) return;
    this.bytes += sane(bytes);
    const t = this.now();
    this.sample(t);
    if (t - this.lastEmit >= (this.tty ? TTY_REDRAW_MS : this.intervalMs)) this.emit(t);
  }

  /** Change the expected total (e.g. when the size estimate is refined). */
  setTotal(bytes: number): void {
    this.total = sane(bytes);
  }

  /** Report a phase ('waiting for WAL'): its own line on a terminal, a JSON line otherwise. */
  phase(text: string): void {
    if (this.finished) return;
    if (this.tty) {
      const hadLine = this.lineShown;
      this.write(`\r\x1b[K${this.what}: ${text}\n`);
      this.lineShown = false;
      if (hadLine) this.emit(this.now());
    } else {
      this.write(JSON.stringify({ progress: this.what, phase: text }) + '\n');
    }
  }

  /**
   * Print the final state: on a terminal a last line (average rate, elapsed time) and '\n';
   * otherwise a JSON line with "done":true and the `summary` fields. Later calls do nothing.
   */
  finish(summary?: Record<string, unknown>): void {
    if (this.finished) return;
    this.finished = true;
    const t = this.now();
    const elapsedMs = t - this.start;
    const avgRate = elapsedMs > 0 ? (this.bytes * 1000) / elapsedMs : null;
    if (this.tty) {
      const line = this.ttyLine(avgRate, `in ${formatDuration(elapsedMs / 1000)}`);
      this.write(`\r${this.fit(line)}\x1b[K\n`);
      this.lineShown = false;
    } else {
      const doc: Record<string, unknown> = { progress: this.what, done: true, ...this.stats(t, avgRate, 0), ...summary };
      doc.progress = this.what;
      doc.done = true;
      this.write(JSON.stringify(doc) + '\n');
    }
  }

  /** Bytes per second over the recent window; null until enough time has passed. */
  private rate(t: number): number | null {
    this.prune(t);
    const first = this.samples[0]!;
    const span = t - first.t;
    if (span < MIN_RATE_SPAN_MS) return null;
    return ((this.bytes - first.bytes) * 1000) / span;
  }

  private sample(t: number): void {
    const last = this.samples[this.samples.length - 1]!;
    if (this.samples.length > 1 && t - last.t < SAMPLE_STEP_MS) last.bytes = this.bytes;
    else this.samples.push({ t, bytes: this.bytes });
    this.prune(t);
  }

  /** Drop samples older than the window, keeping the newest one at or before its start. */
  private prune(t: number): void {
    while (this.samples.length > 1 && this.samples[1]!.t <= t - RATE_WINDOW_MS) this.samples.shift();
  }

  private eta(rate: number | null): number | null {
    if (this.total <= 0) return null;
    const left = this.total - this.bytes;
    if (left <= 0) return 0;
    if (rate === null || rate <= 0) return null;
    return left / rate;
  }

  private percent(): number | null {
    if (this.total <= 0) return null;
    return Math.min(100, (this.bytes / this.total) * 100);
  }

  private stats(t: number, rate: number | null, eta: number | null) {
    const percent = this.percent();
    return {
      bytes: this.bytes,
      total: this.total > 0 ? this.total : null,
      percent: percent === null ? null : Math.round(percent * 10) / 10,
      rateBytesPerSec: rate === null ? null : Math.round(rate),
      etaSec: eta === null ? null : Math.ceil(eta),
      elapsedSec: Math.round((t - this.start) / 100) / 10,
    };
  }

  private emit(t: number): void {
    this.lastEmit = t;
    const rate = this.rate(t);
    const eta = this.eta(rate);
    if (this.tty) {
      this.write(`\r${this.fit(this.ttyLine(rate, `ETA ${eta === null ? '--:--' : formatDuration(eta)}`))}\x1b[K`);
      this.lineShown = true;
    } else {
      this.write(JSON.stringify({ progress: this.what, ...this.stats(t, rate, eta) }) + '\n');
    }
  }

  private ttyLine(rate: number | null, tail: string): string {
    const parts = [this.what];
    const percent = this.percent();
    if (percent !== null) {
      const filled = Math.min(BAR_WIDTH, Math.floor((percent / 100) * BAR_WIDTH));
      parts.push(`[${'#'.repeat(filled)}${'.'.repeat(BAR_WIDTH - filled)}] ${`${Math.floor(percent)}%`.padStart(4)}`);
      parts.push(`${formatBytes(this.bytes)} / ${formatBytes(this.total)}`);
    } else {
      parts.push(formatBytes(this.bytes));
    }
    parts.push(rate === null ? '-- B/s' : `${formatBytes(rate)}/s`);
    parts.push(tail);
    return parts[0] + ' ' + parts.slice(1).join('  ');
  }

  /** Keep the line narrower than the terminal: a wrapped line cannot be redrawn with '\r'. */
  private fit(line: string): string {
    const columns = (this.out as { columns?: unknown }).columns;
    return typeof columns === 'number' && columns > 1 && line.length >= columns ? line.slice(0, columns - 1) : line;
  }

  private write(s: string): void {
    try {
      this.out.write(s);
    } catch {
      // Progress output must never fail the job (closed stderr, EPIPE).
    }
  }
}

function sane(n: number): number {
  return Number.isFinite(n) && n > 0 ? n : 0;
}

const UNITS = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];

/** 512 B, 1.2 KiB, 45.3 MiB, 180 MiB, 2.6 GiB (binary units; one decimal below 100). */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n)) return '-- B';
  if (n < 0) return `-${formatBytes(-n)}`;
  if (n < 1024) return `${Math.round(n)} B`;
  let value = n / 1024;
  let unit = 0;
  // Move up a unit when rounding would print 1024.
  while (value >= 1023.5 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  const text = value < 99.95 ? value.toFixed(1) : Math.round(value).toString();
  return `${text} ${UNITS[unit]}`;
}

/** m:ss below an hour, h:mm:ss above (seconds rounded up: an ETA never shows 0 too early). */
export function formatDuration(sec: number): string {
  if (!Number.isFinite(sec) || sec < 0) return '--:--';
  const total = Math.ceil(sec - 1e-9);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const ss = String(s).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}
