/**
 * runPool after a failure: the tasks other workers are running end by themselves (bounded)
 * before the workers are terminated, so a half-written object's cleanup is not cut off (a failed
 * backup on a full disk left the fs driver's temp files behind). Needs `npm run build` (the
 * worker imports dist/).
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runPool } from '../../src/common/worker-pool.js';

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
});
