import { execFileSync, spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { isProcessAlive } from '../../src/common/process.js';

describe('isProcessAlive', () => {
  it('is true for this process and a running child', () => {
    expect(isProcessAlive(process.pid)).toBe(true);
    const child = spawn('sleep', ['5']);
    try {
      expect(isProcessAlive(child.pid!)).toBe(true);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('is false for a process that exited, reaped or left a zombie', async () => {
    // An orphan: whether init reaps it (gone) or not (zombie), it must count as dead.
    const pid = Number(execFileSync('sh', ['-c', 'sleep 0.05 >/dev/null 2>&1 & echo $!']).toString());
    await sleep(400);
    expect(isProcessAlive(pid)).toBe(false);
    expect(isProcessAlive(999_999_999)).toBe(false);
  });
});
