/**
 * runPool after a failure: the tasks other workers are running end by themselves (bounded)
 * before the workers are terminated, so a half-written object's cleanup is not cut off (a failed
 * backup on a full disk left the fs driver's temp files behind). Needs `npm run build` (the
 * worker imports dist/).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runPool } from '../../src/common/worker-pool.js';
import { setLogCommand, setLogDestinations } from '../../src/common/log.js';
import { parseLogLine } from '../../src/common/log-format.js';

const dir = mkdtempSync(join(tmpdir(), 'pgark-pool-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const script = new URL('../fixtures/pool-worker.mjs', import.meta.url);

describe('runPool', () => {
  it('lets the tasks in flight finish before terminating the workers after a failure', async () => {
    const marker = join(dir, 'slow-done');
    const tasks: unknown[] = [{ slow: marker }, 'fail'];
    await expect(runPool(script, 2, {}, tasks, () => undefined, () => undefined)).rejects.toThrow(/failed on purpose/);
    expect(existsSync(marker)).toBe(true);
  });

  it('runs every task when none fails', async () => {
    const done: unknown[] = [];
    const tasks = [1, 2, 3].map((i) => ({ slow: join(dir, `ok-${i}`) }));
    await runPool(script, 2, {}, tasks, () => undefined, (r) => done.push(r));
    expect(done).toEqual(['ok', 'ok', 'ok']);
  });

  it('a local lane (this thread) shares the tasks with the workers: every task runs once', async () => {
    const done: unknown[] = [];
    const ran: number[] = [];
    const tasks = [1, 2, 3, 4, 5, 6].map((i) => ({ slow: join(dir, `lane-${i}`), i }));
    const local = async (t: { slow: string; i: number }) => {
      ran.push(t.i);
      await new Promise((r) => setTimeout(r, 50));
      return `local ${t.i}`;
    };
    await runPool(script, 2, {}, tasks, () => undefined, (r) => done.push(r), local);
    expect(done).toHaveLength(6);
    expect(ran.length).toBeGreaterThan(0); // the local lane took tasks
    expect(done.filter((d) => d === 'ok').length).toBe(6 - ran.length); // the worker the rest
    for (const t of tasks) expect(existsSync(t.slow) || ran.includes(t.i)).toBe(true);
  });

  it('with one job and a local lane no worker starts; a local failure fails the pool', async () => {
    const done: unknown[] = [];
    await runPool(script, 1, {}, ['a', 'b'], () => undefined, (r) => done.push(r), async (t) => `local ${String(t)}`);
    expect(done).toEqual(['local a', 'local b']);
    await expect(runPool(script, 1, {}, ['a'], () => undefined, () => undefined, async () => {
      throw new Error('local lane failed');
    })).rejects.toThrow(/local lane failed/);
  });

  it('a local lane failure lets the worker\'s task in flight finish before the pool returns', async () => {
    const marker = join(dir, 'slow-after-local-failure');
    let localRuns = 0;
    const local = async () => {
      localRuns++;
      throw new Error('local task failed on purpose');
    };
    await expect(runPool(script, 2, {}, ['first', { slow: marker }, 'x2', 'x3'], () => undefined, () => undefined, local)).rejects.toThrow(/local task failed/);
    expect(existsSync(marker)).toBe(true);
    expect(localRuns).toBe(1); // nothing taken after the failure
  });

  it('worker threads log like the thread that started the pool: command, levels, log file', async () => {
    const file = join(dir, 'threads.log');
    setLogCommand('backup');
    setLogDestinations({ level: 'debug', stderrLevel: 'off', file });
    try {
      await runPool(script, 2, {}, [{ warn: 'from thread 1' }, { warn: 'from thread 2' }], () => undefined, () => undefined);
    } finally {
      setLogDestinations({ level: 'warn' });
      setLogCommand(undefined);
    }
    const lines = readFileSync(file, 'utf8').trimEnd().split('\n').map((l) => parseLogLine(l)!);
    expect(lines.map((l) => `${l.level} ${l.command} ${l.pid === process.pid} ${l.message}`).sort()).toEqual([
      'debug backup true from thread 1 (debug)', 'debug backup true from thread 2 (debug)', 'warn backup true from thread 1', 'warn backup true from thread 2',
    ]);
  });
});
