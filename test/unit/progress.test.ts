import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { formatBytes, formatDuration, Progress } from '../../src/common/progress.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/** A writable collecting everything written, and a clock the test moves. */
function setup(o: { tty: boolean; totalBytes: number; intervalMs?: number; columns?: number }) {
  const chunks: string[] = [];
  const out = new Writable({
    write(chunk: Buffer | string, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
    decodeStrings: false,
  });
  if (o.columns !== undefined) Object.assign(out, { columns: o.columns });
  let t = 1_000_000;
  const clock = {
    now: () => t,
    advance: (ms: number) => {
      t += ms;
    },
  };
  const p = new Progress({ what: 'backup', totalBytes: o.totalBytes, out, tty: o.tty, now: clock.now, intervalMs: o.intervalMs });
  const text = () => chunks.join('');
  const jsonLines = () =>
    text()
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { p, clock, chunks, text, jsonLines };
}

describe('formatBytes', () => {
  it.each([
    [0, '0 B'],
    [512, '512 B'],
    [1023, '1023 B'],
    [1024, '1.0 KiB'],
    [1536, '1.5 KiB'],
    [45.3 * MiB, '45.3 MiB'],
    [180 * MiB, '180 MiB'],
    [1.2 * GiB, '1.2 GiB'],
    [2.6 * GiB, '2.6 GiB'],
    [1023.9 * MiB, '1.0 GiB'],
    [3 * 1024 * GiB, '3.0 TiB'],
    [-2048, '-2.0 KiB'],
  ])('%d -> %s', (n, s) => {
    expect(formatBytes(n)).toBe(s);
  });
});

describe('formatDuration', () => {
  it.each([
    [0, '0:00'],
    [8, '0:08'],
    [7.2, '0:08'],
    [59, '0:59'],
    [60, '1:00'],
    [3599, '59:59'],
    [3600, '1:00:00'],
    [3 * 3600 + 5 * 60 + 9, '3:05:09'],
    [-1, '--:--'],
    [Infinity, '--:--'],
  ])('%d s -> %s', (sec, s) => {
    expect(formatDuration(sec)).toBe(s);
  });
});

describe('Progress, JSON lines', () => {
  it('emits at most one line per interval, with the documented shape', () => {
    const { p, clock, jsonLines } = setup({ tty: false, totalBytes: 1000 * MiB, intervalMs: 2000 });
    // 10 MiB every 100 ms = 100 MiB/s, for 5 s.
    for (let i = 0; i < 50; i++) {
      clock.advance(100);
      p.add(10 * MiB);
    }
    const lines = jsonLines();
    // Lines at 2.0 s and 4.0 s, nothing in between.
    expect(lines).toHaveLength(2);
    const first = lines[0]!;
    expect(Object.keys(first)).toEqual(['progress', 'bytes', 'total', 'percent', 'rateBytesPerSec', 'etaSec', 'elapsedSec']);
    expect(first).toEqual({
      progress: 'backup',
      bytes: 200 * MiB,
      total: 1000 * MiB,
      percent: 20,
      rateBytesPerSec: 100 * MiB,
      etaSec: 8,
      elapsedSec: 2,
    });
    expect(lines[1]).toMatchObject({ bytes: 400 * MiB, percent: 40, rateBytesPerSec: 100 * MiB, etaSec: 6, elapsedSec: 4 });
  });

  it('uses the default interval of 2000 ms', () => {
    const { p, clock, jsonLines } = setup({ tty: false, totalBytes: 100 });
    clock.advance(1999);
    p.add(1);
    expect(jsonLines()).toHaveLength(0);
    clock.advance(1);
    p.add(1);
    expect(jsonLines()).toHaveLength(1);
  });

  it('percent has one decimal; ETA follows the recent rate, not the average', () => {
    const { p, clock, jsonLines } = setup({ tty: false, totalBytes: 1000, intervalMs: 1000 });
    // 10 s at 100 B/s, then the speed drops to 10 B/s.
    for (let i = 0; i < 10; i++) {
      clock.advance(1000);
      p.add(i < 4 ? 100 : 10);
    }
    const last = jsonLines().at(-1)!;
    expect(last.bytes).toBe(460);
    expect(last.percent).toBe(46);
    // The window (last 5 s) only saw 10 B/s: 540 B left -> 54 s, not 540/46 s.
    expect(last.rateBytesPerSec).toBe(10);
    expect(last.etaSec).toBe(54);

    const q = setup({ tty: false, totalBytes: 3000, intervalMs: 1000 });
    q.clock.advance(1000);
    q.p.add(1353);
    expect(q.jsonLines()[0]!.percent).toBe(45.1);
  });

  it('reports null rate and ETA when unknown, null total and percent without a total', () => {
    const { p, clock, jsonLines } = setup({ tty: false, totalBytes: 0, intervalMs: 500 });
    clock.advance(500);
    p.add(100); // 500 ms of samples: too short for a rate
    expect(jsonLines()[0]).toMatchObject({ bytes: 100, total: null, percent: null, rateBytesPerSec: null, etaSec: null });
    clock.advance(1500);
    p.add(100);
    expect(jsonLines()[1]).toMatchObject({ bytes: 200, total: null, percent: null, rateBytesPerSec: 100, etaSec: null });
  });

  it('setTotal changes percent and ETA; bytes past the total cap percent at 100 and ETA at 0', () => {
    const { p, clock, jsonLines } = setup({ tty: false, totalBytes: 1000, intervalMs: 1000 });
    clock.advance(1000);
    p.add(500);
    p.setTotal(2000);
    clock.advance(1000);
    p.add(500);
    expect(jsonLines()[1]).toMatchObject({ bytes: 1000, total: 2000, percent: 50, rateBytesPerSec: 500, etaSec: 2 });
    p.setTotal(800);
    clock.advance(1000);
    p.add(1);
    expect(jsonLines()[2]).toMatchObject({ total: 800, percent: 100, etaSec: 0 });
  });

  it('phase() emits a phase line at once, regardless of the interval', () => {
    const { p, clock, jsonLines } = setup({ tty: false, totalBytes: 1000 });
    clock.advance(10);
    p.phase('waiting for WAL');
    p.phase('writing manifest');
    expect(jsonLines()).toEqual([
      { progress: 'backup', phase: 'waiting for WAL' },
      { progress: 'backup', phase: 'writing manifest' },
    ]);
  });

  it('finish() emits done:true with the summary fields, once; later calls are ignored', () => {
    const { p, clock, jsonLines } = setup({ tty: false, totalBytes: 1000, intervalMs: 10_000 });
    clock.advance(2000);
    p.add(1000);
    clock.advance(2000);
    p.finish({ backupId: '20260101-000000F', files: 12, done: 'ignored', progress: 'ignored' });
    p.finish({ again: true });
    p.add(5);
    p.phase('late');
    const lines = jsonLines();
    expect(lines).toHaveLength(1);
    expect(lines[0]).toEqual({
      progress: 'backup',
      done: true,
      bytes: 1000,
      total: 1000,
      percent: 100,
      rateBytesPerSec: 250, // average over the whole run
      etaSec: 0,
      elapsedSec: 4,
      backupId: '20260101-000000F',
      files: 12,
    });
  });

  it('finish() without a summary', () => {
    const { p, clock, jsonLines } = setup({ tty: false, totalBytes: 0 });
    clock.advance(100);
    p.finish();
    expect(jsonLines()).toEqual([
      { progress: 'backup', done: true, bytes: 0, total: null, percent: null, rateBytesPerSec: 0, etaSec: 0, elapsedSec: 0.1 },
    ]);
  });
});

describe('Progress, terminal', () => {
  it('redraws one line with \\r and clear-to-end-of-line, at most 10 times per second', () => {
    const { p, clock, chunks, text } = setup({ tty: true, totalBytes: 2.6 * GiB });
    p.add(1); // first add draws at once
    expect(chunks).toHaveLength(1);
    for (let i = 0; i < 100; i++) {
      clock.advance(10); // 1 s in 10 ms steps
      p.add(1);
    }
    expect(chunks).toHaveLength(11);
    for (const c of chunks) {
      expect(c.startsWith('\r')).toBe(true);
      expect(c.endsWith('\x1b[K')).toBe(true);
      expect(c).not.toContain('\n');
    }
    expect(text()).toContain('backup [....................]   0%');
  });

  it('shows bar, percent, sizes, rate and ETA', () => {
    const { p, clock, chunks } = setup({ tty: true, totalBytes: 2.6 * GiB });
    p.add(0);
    expect(chunks.at(-1)).toContain('ETA --:--'); // no rate yet
    // 180 MiB/s for ~6.8 s (1.2 GiB).
    const step = (180 * MiB) / 10;
    let done = 0;
    while (done + step <= 1.2 * GiB) {
      clock.advance(100);
      p.add(step);
      done += step;
    }
    const line = chunks.at(-1)!;
    expect(line).toMatch(/^\rbackup \[#{9}\.{11}\]  4[56]%  1\.[12] GiB \/ 2\.6 GiB  180 MiB\/s  ETA 0:0[78]\x1b\[K$/);
  });

  it('without a total: sizes and rate, no bar', () => {
    const { p, clock, chunks } = setup({ tty: true, totalBytes: 0 });
    clock.advance(2000);
    p.add(2 * MiB);
    expect(chunks.at(-1)).toBe('\rbackup 2.0 MiB  1.0 MiB/s  ETA --:--\x1b[K');
  });

  it('fits the line into the terminal width', () => {
    const { p, chunks } = setup({ tty: true, totalBytes: 100, columns: 30 });
    p.add(1);
    expect(chunks[0]).toBe(`\r${'backup [....................]   1%'.slice(0, 29)}\x1b[K`);
  });

  it('phase() prints on its own line and redraws the bar below it', () => {
    const { p, clock, text } = setup({ tty: true, totalBytes: 100 });
    p.add(10);
    clock.advance(10);
    p.phase('waiting for WAL');
    expect(text()).toContain('\r\x1b[Kbackup: waiting for WAL\n\rbackup [##');
    // Before any bar: just the phase line.
    const q = setup({ tty: true, totalBytes: 100 });
    q.p.phase('checkpoint');
    expect(q.text()).toBe('\r\x1b[Kbackup: checkpoint\n');
  });

  it('finish() prints a final line with the average rate and elapsed time, then a newline', () => {
    const { p, clock, chunks, text } = setup({ tty: true, totalBytes: 100 * MiB });
    for (let i = 0; i < 10; i++) {
      clock.advance(1000);
      p.add(10 * MiB);
    }
    p.finish({ files: 3 });
    const last = chunks.at(-1)!;
    expect(last).toBe('\rbackup [####################] 100%  100 MiB / 100 MiB  10.0 MiB/s  in 0:10\x1b[K\n');
    p.finish();
    expect(chunks.at(-1)).toBe(last);
    expect(text().endsWith('\n')).toBe(true);
  });
});
