/**
 * Backup planning and copy into a repository in memory (issue 15 item 7): walkDataDirectory,
 * planTasks and the copy task (runBackupTask) of a tiny synthetic data directory, full and
 * block-incremental, without PostgreSQL, the CLI or a repository on disk.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dataObjectKey, manifestKey } from '../../../src/repo/layout.js';
import { readAll } from '../../../src/repo/object-stream.js';
import { backupDirectory, type BackedUp } from '../../helpers/memory-backup.js';
import { FILE_COST } from '../../../src/backup/tasks.js';
import { allKeys, memoryRepo, type MemoryRepo } from '../../helpers/memory-repo.js';
import { EXCLUDED, pages, setPageLsn, syntheticFiles, writeFiles } from '../../helpers/synthetic-pgdata.js';

const F = '20261201-010000F';
const I = '20261201-020000I';
const LOW = 0x1000000n; // page LSN before the full backup started
const F_START = '0/2000028';
const I_START = '0/4000028';
const SIZES = { bundleLimit: 2 * 8192, partSize: 4 * 8192 };

let m: MemoryRepo;
let dir: string;
let pgdata: string;
let full: BackedUp;

beforeAll(async () => {
  m = memoryRepo();
  dir = await mkdtemp(join(tmpdir(), 'pgark-unit-backup-'));
  pgdata = join(dir, 'data');
  await writeFiles(pgdata, { ...syntheticFiles(LOW), ...EXCLUDED });
  full = await backupDirectory(m, pgdata, { id: F, startLsn: F_START, ...SIZES });
});

afterAll(async () => {
  m.drop();
  await rm(dir, { recursive: true, force: true });
});

describe('a full backup into a repository in memory', () => {
  it('plans an object of its own for a large file, parts for a larger one, a bundle for the small ones; costliest first', () => {
    const summary = full.tasks.map((t) => `${t.own ? 'own' : 'bundle'}: ${t.files.map((f) => (f.part ? `${f.path}@${f.part.start}` : f.path)).join(' ')}`);
    expect([...summary].sort()).toEqual([
      'bundle: PG_VERSION base/1/112 base/1/3456 base/1/PG_VERSION global/pg_control postgresql.conf',
      'own: base/1/1259',
      'own: base/1/2619@0',
      'own: base/1/2619@32768',
    ]);
    expect(full.tasks.map((t) => t.n)).toEqual([0, 1, 2, 3]);
    const costs = full.tasks.map((t) => t.cost);
    expect(costs).toEqual([...costs].sort((a, b) => b - a));
    expect(full.tasks.map((t) => t.cost - t.bytes)).toEqual(full.tasks.map((t) => t.files.length * FILE_COST));
  });

  it('stores one object per task and the manifest, nothing of the excluded files', async () => {
    const keys = await allKeys(m.driver, `main/backup/${F}/`);
    expect(keys).toEqual([...full.tasks.map((t) => dataObjectKey('main', F, t.n)), manifestKey('main', F)].sort());
    expect([...full.manifest.files.keys()]).not.toContain('postmaster.pid');
    expect([...full.manifest.files.keys()].filter((p) => p.startsWith('pg_wal/'))).toEqual([]);
    expect(full.manifest.dirs.map((d) => d.path)).toContain('pg_wal');
  });

  it('records where each file is: whole objects, bundle offsets, parts', () => {
    const f = full.manifest.files;
    expect(f.get('base/1/1259')).toMatchObject({ size: 3 * 8192, object: { backup: F, offset: 0 } });
    expect(f.get('base/1/2619')!.parts!.map((p) => [p.start, p.size, p.object?.backup])).toEqual([[0, 32768, F], [32768, 16384, F]]);
    expect(f.get('base/1/3456')).toMatchObject({ size: 0 });
    expect(f.get('base/1/3456')!.object).toBeUndefined();
    expect(f.get('base/1/112')!.object).toMatchObject({ backup: F });
  });

  it('stores the bytes of a bundled file at its offset in the bundle object', async () => {
    const e = full.manifest.files.get('base/1/112')!;
    const bundle = await readAll(await m.repo.getObject(dataObjectKey('main', F, e.object!.n)), 1 << 20);
    const local = await readFile(join(pgdata, 'base/1/112'));
    expect(bundle.subarray(e.object!.offset, e.object!.offset + e.size).equals(local)).toBe(true);
  });
});

describe('a block-incremental backup on it', () => {
  let incr: BackedUp;
  beforeAll(async () => {
    // One page of base/1/1259 written after the full backup started, one page appended; a small file changed.
    const rel = await readFile(join(pgdata, 'base/1/1259'));
    const changed = pages(1, 0x3000000n);
    changed.copy(rel, 1 * 8192);
    setPageLsn(rel, 1, 0x3000000n);
    await writeFile(join(pgdata, 'base/1/1259'), Buffer.concat([rel, pages(1, 0x3000100n)]));
    await writeFile(join(pgdata, 'base/1/112'), 'changed');
    incr = await backupDirectory(m, pgdata, { id: I, startLsn: I_START, parent: { manifest: full.manifest, startLsn: F_START }, ...SIZES });
  });

  it('stores only the changed and appended blocks of a relation file, as a delta', () => {
    const e = incr.manifest.files.get('base/1/1259')!;
    expect(e.size).toBe(4 * 8192);
    expect(e.delta?.blocks).toEqual([[1, 1], [3, 1]]); // [first block, count]
    expect(e.object).toBeUndefined();
    const stats = incr.results.reduce((s, r) => ({ changed: s.changed + r.changedBlocks, reused: s.reused + r.reusedBlocks }), { changed: 0, reused: 0 });
    // base/1/1259: blocks 1 and 3 changed, 0 and 2 reused; base/1/2619: its 6 blocks reused.
    expect(stats).toEqual({ changed: 2, reused: 8 });
  });

  it('refers to the parent for unchanged small files and stores changed ones', () => {
    const f = incr.manifest.files;
    expect(f.get('PG_VERSION')!.object!.backup).toBe(F);
    expect(f.get('global/pg_control')!.object!.backup).toBe(F);
    expect(f.get('base/1/112')!.object!.backup).toBe(I);
    expect(f.get('base/1/112')!.size).toBe(7);
  });
});
