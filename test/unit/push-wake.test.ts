// The records directory's wake-up FIFO (src/wal/push-wake.ts): made 0600 once, a wake-up reaches a
// reader as one newline, and without a reader (or without the FIFO) it costs nothing and never blocks.
import { spawn } from 'node:child_process';
import { lstatSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ensurePushWake, pushWakePath, wakePushWaiters } from '../../src/wal/push-wake.js';

const dir = mkdtempSync(join(tmpdir(), 'pgark-push-wake-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('push records wake-up FIFO', () => {
  it('is made once, 0600, and a wake-up without a reader is a no-op', () => {
    expect(ensurePushWake(dir)).toBe(true);
    const st = lstatSync(pushWakePath(dir));
    expect(st.isFIFO()).toBe(true);
    expect(st.mode & 0o777).toBe(0o600);
    expect(ensurePushWake(dir)).toBe(true); // exists: kept
    wakePushWaiters(dir); // no reader: ENXIO, returns at once
    wakePushWaiters(join(dir, 'missing')); // no FIFO
  });

  it('reaches a reader blocked on it as a newline', async () => {
    // As bin/pgark-wal-push waits: read-write first (never blocks), then the read end; a timer
    // holds the only other write end.
    const reader = spawn('/bin/sh', ['-c', 'exec 3<>"$1"; exec 4<"$1"; sleep 5 4<&- & t=$!; exec 3>&-; read -r x <&4 && echo "woken[$x]"; kill $t', 'sh', pushWakePath(dir)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    reader.stdout.on('data', (d: Buffer) => (out += d));
    const done = new Promise((r) => reader.on('exit', r));
    // Wake until it is reading (the shell needs a moment to open the FIFO).
    const until = Date.now() + 10_000;
    while (!out && Date.now() < until) {
      wakePushWaiters(dir);
      await new Promise((r) => setTimeout(r, 20));
    }
    await done;
    expect(out).toBe('woken[]\n');
  });

  it('is not made over another file', () => {
    const d = mkdtempSync(join(dir, 'x-'));
    writeFileSync(pushWakePath(d), 'not a fifo');
    expect(ensurePushWake(d)).toBe(false);
    wakePushWaiters(d); // writes into it at most; never blocks
    expect(readFileSync(pushWakePath(d), 'utf8').length).toBeGreaterThan(0);
  });
});
