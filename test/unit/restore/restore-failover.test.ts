/**
 * A restore worker's failover between repositories (restore-sources.ts): objects gone from the
 * chosen repository, or damaged there, are read from the next one holding the same backup; the
 * bytes written are still checked against the manifest; progress counts each byte once.
 * Two repositories in memory hold the same backup (every object of the first copied as stored
 * into the second).
 */
import { mkdtemp, mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IntegrityError } from '../../../src/common/errors.js';
import { dataObjectKey } from '../../../src/repo/layout.js';
import { readAll } from '../../../src/repo/object-stream.js';
import { planRestore } from '../../../src/restore/plan.js';
import { createPartFiles, finishPartFiles, layOut } from '../../../src/restore/restore.js';
import { closeRestoreSources, runRestoreTask, type RestoreWorkerInit } from '../../../src/restore/restore-worker.js';
import { runLanes } from '../../../src/common/worker-pool.js';
import { backupDirectory, readTree, type BackedUp } from '../../helpers/memory-backup.js';
import { memoryRepo, type MemoryRepo } from '../../helpers/memory-repo.js';
import { EXCLUDED, syntheticFiles, writeFiles } from '../../helpers/synthetic-pgdata.js';

const F = '20261201-010000F';
const SIZES = { bundleLimit: 2 * 8192, partSize: 4 * 8192 };
const copied = (p: string): boolean => p !== 'postmaster.pid' && !p.startsWith('pg_wal/');

let m1: MemoryRepo;
let m2: MemoryRepo;
let dir: string;
let pgdata: string;
let b1: BackedUp;
let want: Map<string, Buffer>;
let n = 0;

beforeAll(async () => {
  m1 = memoryRepo();
  m2 = memoryRepo();
  dir = await mkdtemp(join(tmpdir(), 'pgark-unit-failover-'));
  pgdata = join(dir, 'data');
  await writeFiles(pgdata, { ...syntheticFiles(0x1000000n), ...EXCLUDED });
  b1 = await backupDirectory(m1, pgdata, { id: F, startLsn: '0/2000028', ...SIZES });
  // repo2: every object copied as stored (what pgark copy does between two plain repositories).
  for await (const o of m1.driver.list('')) await m2.driver.put(o.path, await readAll(await m1.driver.get(o.path), 1 << 26));
  want = await readTree(pgdata, copied);
});

afterAll(async () => {
  m1.drop();
  m2.drop();
  await rm(dir, { recursive: true, force: true });
});

/** Restore b1's manifest reading repo (m1) first, then repo2 (m2) when `fallback`; `lanes`: that many tasks at once on this thread (runLanes). */
async function restore(fallback: boolean, lanes = 1): Promise<{ target: string; reported: number; total: number }> {
  const target = join(dir, `restore-${++n}`);
  const init: RestoreWorkerInit = {
    settings: m1.settings(), repoName: 'repo', fallbacks: fallback ? [{ name: 'repo2', settings: m2.settings() }] : [],
    pgdata: target, tablespaces: {}, holdBack: {}, delta: false,
  };
  await mkdir(target, { recursive: true, mode: 0o700 });
  await layOut(init, b1.manifest);
  const { tasks, multi } = planRestore([b1.manifest]);
  await createPartFiles(init, multi);
  let reported = 0;
  try {
    await runLanes(lanes, tasks, (t) => runRestoreTask(init, t, (bytes) => (reported += bytes)), () => undefined);
  } finally {
    await closeRestoreSources();
  }
  await finishPartFiles(init, multi);
  return { target, reported, total: tasks.reduce((s, t) => s + t.bytes, 0) };
}

/** The objects of the backup, largest first. */
async function objectKeys(): Promise<string[]> {
  const keys: Array<{ key: string; size: number }> = [];
  for await (const o of m1.driver.list(dataObjectKey('main', F, 0).replace(/0$/, ''))) keys.push({ key: o.path, size: o.size });
  expect(keys.length).toBeGreaterThan(1);
  return keys.sort((a, b) => b.size - a.size).map((k) => k.key);
}

describe('restore worker failover', () => {
  it('an object gone from repo is read from repo2', async () => {
    const [key] = await objectKeys();
    const original = await readAll(await m1.driver.get(key!), 1 << 24);
    await m1.driver.delete([key!]);
    try {
      const r = await restore(true);
      expect(await readTree(r.target, copied)).toEqual(want);
      expect(r.reported).toBe(r.total);
      // Without a fallback the same restore fails.
      await expect(restore(false)).rejects.toThrow(/no such object/);
    } finally {
      await m1.driver.put(key!, original);
    }
  });

  it('a damaged object in repo is read from repo2 and verified; damaged in both, the restore fails', async () => {
    const [key] = await objectKeys();
    const original = await readAll(await m1.driver.get(key!), 1 << 24);
    const damaged = Buffer.from(original);
    damaged[damaged.length >> 1] = damaged[damaged.length >> 1]! ^ 0x01;
    await m1.driver.put(key!, damaged);
    try {
      const r = await restore(true);
      expect(await readTree(r.target, copied)).toEqual(want);
      // The bytes read before the damage showed are counted once.
      expect(r.reported).toBe(r.total);
      await m2.driver.put(key!, damaged);
      await expect(restore(true)).rejects.toBeInstanceOf(IntegrityError);
    } finally {
      await m1.driver.put(key!, original);
      await m2.driver.put(key!, original);
    }
  });

  it('two lanes on one thread whose first objects are both gone from repo move to repo2 once and finish there', async () => {
    // The first two tasks (largest first) are read at the same time by the two lanes.
    const { tasks } = planRestore([b1.manifest]);
    const keys = tasks.slice(0, 2).map((t) => (t.kind === 'object' ? dataObjectKey('main', t.backup, t.n) : undefined));
    expect(keys.every((k) => k !== undefined)).toBe(true);
    const originals = await Promise.all(keys.map(async (k) => readAll(await m1.driver.get(k!), 1 << 24)));
    await m1.driver.delete(keys as string[]);
    try {
      const r = await restore(true, 2);
      expect(await readTree(r.target, copied)).toEqual(want);
      expect(r.reported).toBe(r.total);
    } finally {
      for (const [i, k] of keys.entries()) await m1.driver.put(k!, originals[i]!);
    }
  });
});
