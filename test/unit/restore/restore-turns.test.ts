/**
 * A restore lane gives the event loop a turn every TURN_BYTES it writes (restore-worker.ts
 * EventLoopTurns). Its reads and writes are synchronous, so without the turns a whole task ran in
 * microtasks: on the main thread, which runs a lane and hands the worker threads their tasks, a
 * worker thread that finished waited for the main thread's task to end before it got its next one.
 * Here a file of 3 x TURN_BYTES and a page is restored by one task on this thread, from a
 * repository on disk (the fs driver's blocking reads, as restore's lanes read), while a chain of
 * setImmediate callbacks counts the turns the event loop takes while the file is partly written.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { planRestore } from '../../../src/restore/plan.js';
import { layOut } from '../../../src/restore/restore.js';
import { EventLoopTurns, runRestoreTask, TURN_BYTES, type RestoreWorkerInit } from '../../../src/restore/restore-worker.js';
import { backupDirectory } from '../../helpers/memory-backup.js';
import { allKeys, memoryRepo } from '../../helpers/memory-repo.js';
import { resolveSettings } from '../../../src/config/resolve.js';
import { closeRestoreSources } from '../../../src/restore/restore-worker.js';
import { writeFiles } from '../../helpers/synthetic-pgdata.js';

const MIB = 1024 * 1024;
const m = memoryRepo();
let dir = '';

afterAll(async () => {
  await closeRestoreSources();
  m.drop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('EventLoopTurns', () => {
  it.each([
    // every, writes, the writes after which a turn is due
    [10, [4, 4, 4, 4, 4, 4], [3, 6]],
    [10, [10, 1, 9, 20, 0], [1, 3, 4]],
    [10, [3, 3, 3], []],
  ])('every %d bytes, writes %j: turns after writes %j', (every, writes, want) => {
    const t = new EventLoopTurns(every);
    expect(writes.map((b, i) => (t.due(b) ? i + 1 : 0)).filter((i) => i > 0)).toEqual(want);
  });
});

describe('a restore task on this thread', () => {
  it('lets the event loop turn while it writes, not only when it ends', async () => {
    dir = await mkdtemp(join(tmpdir(), 'pgark-unit-restore-turns-'));
    const pgdata = join(dir, 'data');
    const big = randomBytes(3 * TURN_BYTES + 4096);
    await writeFiles(pgdata, { PG_VERSION: '15\n', 'global/pg_control': Buffer.alloc(8192, 1), 'base/1/16384': big });
    const full = await backupDirectory(m, pgdata, { id: '20261201-010000F', startLsn: '0/2000028', partSize: 64 * MIB });
    const { tasks } = planRestore([full.manifest]);
    const task = tasks.find((t) => t.kind === 'object' && t.pieces.some((p) => p.path === 'base/1/16384'))!;
    // The backup's objects copied into a repository directory (the fs driver's layout: one file per key).
    const repoDir = join(dir, 'repo');
    for (const key of await allKeys(m.driver)) {
      const chunks: Buffer[] = [];
      for await (const c of await m.driver.get(key)) chunks.push(c as Buffer);
      await mkdir(dirname(join(repoDir, key)), { recursive: true });
      await writeFile(join(repoDir, key), Buffer.concat(chunks));
    }
    const target = join(dir, 'restore');
    const init: RestoreWorkerInit = { settings: resolveSettings({ repo: repoDir, stanza: 'main' }, {}), pgdata: target, tablespaces: {}, holdBack: {}, delta: false };
    await layOut(init, full.manifest);
    // Turns taken while the file is partly written (opening the repository and the object, and
    // the fsync at the end, take turns of their own).
    const file = join(target, 'base/1/16384');
    let turns = 0;
    let running = true;
    const count = (): void => {
      if (!running) return;
      const size = existsSync(file) ? statSync(file).size : 0;
      if (size > 0 && size < big.length) turns++;
      setImmediate(count);
    };
    setImmediate(count);
    const r = await runRestoreTask(init, task, () => undefined);
    running = false;
    expect(r.bytes).toBeGreaterThanOrEqual(big.length);
    expect((await readFile(join(target, 'base/1/16384'))).equals(big)).toBe(true);
    // A turn after each TURN_BYTES written, before the last bytes are.
    expect(turns).toBeGreaterThanOrEqual(2);
  });
});
