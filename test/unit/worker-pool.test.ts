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
