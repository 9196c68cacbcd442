/**
 * runRestore makes the restored names durable, not only the bytes: every directory of the backup
 * is fsynced after its files and before pg_control gets its name (restore.ts syncDirectories),
 * as PostgreSQL's fsync_pgdata and pgBackRest's restore do. fsyncDir is observed through a
 * wrapper (the real one still runs); the restore runs on this thread (--jobs 2, a small restore:
 * restore.ts lanesHere), from a repository in memory.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

const synced: Array<{ dir: string; controlThere: boolean }> = [];
let watchControl = '';
vi.mock('../../../src/common/fs-atomic.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../../src/common/fs-atomic.js')>();
  return {
    ...real,
    fsyncDir: async (dir: string) => {
      synced.push({ dir: dir.replace(/\/$/, ''), controlThere: watchControl !== '' && existsSync(watchControl) });
      await real.fsyncDir(dir);
    },
  };
});

const { runRestore } = await import('../../../src/restore/restore.js');
const { HOLD_BACK } = await import('../../../src/restore/restore-clean.js');
const { backupDirectory } = await import('../../helpers/memory-backup.js');
const { memoryRepo, SEG } = await import('../../helpers/memory-repo.js');
const { EXCLUDED, syntheticFiles, writeFiles } = await import('../../helpers/synthetic-pgdata.js');

let dir: string;
let m: ReturnType<typeof memoryRepo>;
let dirs: string[];

beforeAll(async () => {
  m = memoryRepo();
  await m.repo.ensureStanza({ systemIdentifier: '7000000000000000001', pgVersion: 150000, walSegmentSize: SEG }, 'lz4', 'backup');
  dir = await mkdtemp(join(tmpdir(), 'pgark-unit-restore-durable-'));
  await writeFiles(join(dir, 'data'), { ...syntheticFiles(0x1000000n), ...EXCLUDED });
  const full = await backupDirectory(m, join(dir, 'data'), { id: '20261201-010000F', startLsn: '0/2000028', bundleLimit: 2 * 8192, partSize: 4 * 8192 });
  dirs = full.manifest.dirs.map((d) => d.path);
});

afterAll(async () => {
  m.drop();
  await rm(dir, { recursive: true, force: true });
});

describe('restore durability', () => {
  it('fsyncs every directory of the backup before pg_control has its name', async () => {
    const target = join(dir, 'restored');
    watchControl = join(target, HOLD_BACK);
    const owner = process.getuid?.() === 0 ? { owner: process.env['PGARK_TEST_PG_USER'] || 'postgres' } : {};
    await runRestore(m.repo, { ...m.settings(), jobs: 2, jobsExplicit: true }, {
      ref: 'latest', pgdata: target, target: {}, standby: false, keepArchive: false, tablespaceMap: [], jobs: 2, delta: false, force: false, progress: false, ...owner,
    });
    expect(existsSync(watchControl)).toBe(true);
    expect(dirs.length).toBeGreaterThan(3);
    const before = new Set(synced.filter((s) => !s.controlThere).map((s) => s.dir));
    for (const d of dirs) expect(before.has(join(target, d).replace(/\/$/, '')), d).toBe(true);
    expect(before.has(target)).toBe(true);
  });
});
