/**
 * runPool after a failure: the tasks other workers are running end by themselves (bounded)
 * before the workers are terminated, so a half-written object's cleanup is not cut off (a failed
 * backup on a full disk left the fs driver's temp files behind). Needs `npm run build` (the
 * pool and the worker are the built dist/ modules).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseLogLine } from '../../src/common/log-format.js';

// The built pool (dist/): its threads start through dist/src/common/worker-entry.js, and the
// fixture imports the built modules too, so the log settings are the built log module's.
const built = (m: string) => new URL(`../../dist/src/common/${m}.js`, import.meta.url).href;
const { runLanes, runPool, startThreads, stopThreads } = (await import(built('worker-pool'))) as typeof import('../../src/common/worker-pool.js');
const { setLogCommand, setLogDestinations } = (await import(built('log'))) as typeof import('../../src/common/log.js');

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

  it('with a local task the calling thread is one of the jobs: count - 1 threads, every task run once', async () => {
    const byWhom: string[] = [];
    const tasks = [1, 2, 3, 4, 5, 6].map((i) => ({ slow: join(dir, `local-${i}`) }));
    const local = async (_init: unknown, task: unknown, progress: (n: number) => void) => {
      await new Promise((r) => setTimeout(r, 100));
      progress(1);
      return `local ${(task as { slow: string }).slow}`;
    };
    let progressed = 0;
    await runPool(script, 2, {}, tasks, (n) => (progressed += n), (r, t) => byWhom.push(r === 'ok' ? `thread ${(t as { slow: string }).slow}` : (r as string)), local);
    expect(byWhom).toHaveLength(6);
    expect(new Set(byWhom.map((w) => w.split(' ')[1])).size).toBe(6);
    // Both the calling thread and the one worker thread ran tasks.
    expect(byWhom.some((w) => w.startsWith('local'))).toBe(true);
    expect(byWhom.some((w) => w.startsWith('thread'))).toBe(true);
    expect(progressed).toBe(byWhom.filter((w) => w.startsWith('local')).length);
    // Only the tasks the worker thread ran wrote their files.
    for (const w of byWhom) expect(existsSync(w.split(' ')[1]!)).toBe(w.startsWith('thread'));
  });

  it('with a local task and count 1 no worker thread starts; a local failure stops the pool with its own error', async () => {
    const seen: unknown[] = [];
    const failing = async (_init: unknown, task: unknown) => {
      seen.push(task);
      if (task === 'fail') throw Object.assign(new Error('local task failed on purpose'), { exitCode: 42 });
      return 'local';
    };
    const done: unknown[] = [];
    // A worker thread would write the marker of {slow}: none may start with count 1.
    const marker = join(dir, 'never-written');
    await runPool(script, 1, {}, [{ slow: marker }, 'x'], () => undefined, (r) => done.push(r), failing);
    expect(done).toEqual(['local', 'local']);
    expect(existsSync(marker)).toBe(false);
    const err = await runPool(script, 1, {}, ['a', 'fail', 'b'], () => undefined, () => undefined, failing).catch((e: unknown) => e);
    expect((err as Error).message).toBe('local task failed on purpose');
    expect((err as { exitCode: number }).exitCode).toBe(42);
    // Nothing after the failed task was started.
    expect(seen.slice(-2)).toEqual(['a', 'fail']);
  });

  it('a local lane failure lets the worker\'s task in flight finish before the pool returns', async () => {
    const marker = join(dir, 'slow-after-local-failure');
    let localRuns = 0;
    const local = async () => {
      localRuns++;
      throw new Error('local task failed on purpose');
    };
    // The worker thread takes the first task (the slow one), this thread the next, which fails.
    await expect(runPool(script, 2, {}, [{ slow: marker }, 'first', 'x2', 'x3'], () => undefined, () => undefined, local)).rejects.toThrow(/local task failed/);
    expect(existsSync(marker)).toBe(true);
    expect(localRuns).toBe(1); // nothing taken after the failure
  });

  it('threads started before the init is known (startThreads) get it with their first task; the ones not needed are terminated', async () => {
    const started = startThreads(script, 3);
    const exits = started.workers.map((w) => new Promise<number>((r) => w.once('exit', r)));
    const answers: unknown[] = [];
    // Two tasks, count 3 with a local job: one thread is used, the other two are not.
    const local = async (i: unknown) => ({ local: i });
    await runPool(script, 3, { pgdata: '/x' }, ['init', 'init'], () => undefined, (r) => answers.push(r), local, started);
    expect(answers).toHaveLength(2);
    expect(answers.filter((a) => (a as { init?: unknown }).init !== undefined)).toEqual([{ init: { pgdata: '/x' } }]);
    expect(answers.filter((a) => (a as { local?: unknown }).local !== undefined)).toEqual([{ local: { pgdata: '/x' } }]);
    // Every thread started early has ended (a thread left running would keep the process alive).
    await Promise.all(exits);
    expect(started.workers).toEqual([]);
  });

  it('a thread started early that failed to start fails the pool instead of waiting for it; stopThreads ends unused ones', async () => {
    const broken = startThreads(new URL('../fixtures/no-such-pool-worker.mjs', import.meta.url), 1);
    await new Promise((r) => broken.workers[0]!.once('exit', r));
    await expect(runPool(script, 2, {}, [{ slow: join(dir, 'never') }, 'x'], () => undefined, () => undefined, async () => 'local', broken)).rejects.toThrow(/no-such-pool-worker|Cannot find module/);
    const unused = startThreads(script, 2);
    const exits = unused.workers.map((w) => new Promise<number>((r) => w.once('exit', r)));
    await stopThreads(unused);
    await Promise.all(exits);
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

describe('runLanes', () => {
  it('runs every task once, in order of taking, with at most `lanes` in flight on this thread', async () => {
    let inFlight = 0;
    let most = 0;
    const done: Array<[number, number]> = [];
    await runLanes(2, [1, 2, 3, 4, 5], async (t) => {
      most = Math.max(most, ++inFlight);
      await new Promise((r) => setTimeout(r, 5 * t));
      inFlight--;
      return t * 10;
    }, (r, t) => done.push([t, r]));
    expect(done.map(([t]) => t).sort()).toEqual([1, 2, 3, 4, 5]);
    for (const [t, r] of done) expect(r).toBe(t * 10);
    expect(most).toBe(2);
  });

  it('after a failure takes no new task, lets the task in flight end, then throws the first error', async () => {
    const started: string[] = [];
    const ended: string[] = [];
    const err = await runLanes(2, ['slow', 'fail', 'never'], async (t) => {
      started.push(t);
      if (t === 'fail') throw new Error('lane task failed on purpose');
      await new Promise((r) => setTimeout(r, 50));
      ended.push(t);
      return t;
    }, () => undefined).catch((e: unknown) => e);
    expect((err as Error).message).toBe('lane task failed on purpose');
    expect(started).toEqual(['slow', 'fail']);
    expect(ended).toEqual(['slow']);
  });

  it('more lanes than tasks, and no tasks', async () => {
    const seen: number[] = [];
    await runLanes(4, [7], async (t) => t, (r) => seen.push(r));
    await runLanes(2, [], async (t: number) => t, (r) => seen.push(r));
    expect(seen).toEqual([7]);
  });

  it('an error thrown by the result callback fails the run too', async () => {
    await expect(runLanes(1, [1, 2], async (t) => t, (r) => {
      if (r === 1) throw new Error('fold failed');
    })).rejects.toThrow('fold failed');
  });
});
