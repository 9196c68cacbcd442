/**
 * Restore of a tiny synthetic backup from a repository in memory (issue 15 item 7): planRestore
 * over the chain's manifests and the restore task (runRestoreTask) write back, byte for byte,
 * what a full and a block-incremental backup copied; a damaged object is refused. No
 * PostgreSQL, no CLI, no repository on disk.
 */
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IntegrityError } from '../../../src/common/errors.js';
import { dataObjectKey } from '../../../src/repo/layout.js';
import { readAll } from '../../../src/repo/object-stream.js';
import { backupDirectory, readTree, restoreInto, type BackedUp } from '../../helpers/memory-backup.js';
import { memoryRepo, type MemoryRepo } from '../../helpers/memory-repo.js';
import { EXCLUDED, pages, setPageLsn, syntheticFiles, writeFiles } from '../../helpers/synthetic-pgdata.js';

const F = '20261201-010000F';
const I = '20261201-020000I';
const SIZES = { bundleLimit: 2 * 8192, partSize: 4 * 8192 };
const copied = (p: string): boolean => p !== 'postmaster.pid' && !p.startsWith('pg_wal/');

let m: MemoryRepo;
let dir: string;
let pgdata: string;
let full: BackedUp;
let incr: BackedUp;
let atFull: Map<string, Buffer>;
let atIncr: Map<string, Buffer>;

beforeAll(async () => {
  m = memoryRepo();
  dir = await mkdtemp(join(tmpdir(), 'pgark-unit-restore-'));
  pgdata = join(dir, 'data');
  await writeFiles(pgdata, { ...syntheticFiles(0x1000000n), ...EXCLUDED });
  full = await backupDirectory(m, pgdata, { id: F, startLsn: '0/2000028', ...SIZES });
  atFull = await readTree(pgdata, copied);
  // Changes the incremental backup stores: a page written, a page appended (in a file stored in
  // parts, so one part is rebuilt from layers), a small file rewritten, a file removed, one added.
  const rel = await readFile(join(pgdata, 'base/1/2619'));
  pages(1, 0x3000000n).copy(rel, 4 * 8192);
  setPageLsn(rel, 4, 0x3000000n);
  await writeFile(join(pgdata, 'base/1/2619'), Buffer.concat([rel, pages(1, 0x3000100n)]));
  await writeFile(join(pgdata, 'base/1/112'), 'rewritten');
  await rm(join(pgdata, 'base/1/3456'));
  await writeFile(join(pgdata, 'base/1/16500'), 'new table');
  incr = await backupDirectory(m, pgdata, { id: I, startLsn: '0/4000028', parent: { manifest: full.manifest, startLsn: '0/2000028' }, ...SIZES });
  atIncr = await readTree(pgdata, copied);
});

afterAll(async () => {
  m.drop();
  await rm(dir, { recursive: true, force: true });
});

function expectSameTree(got: Map<string, Buffer>, want: Map<string, Buffer>): void {
  expect([...got.keys()]).toEqual([...want.keys()]);
  for (const [p, b] of want) expect(got.get(p)!.equals(b), p).toBe(true);
}

describe('restore from a repository in memory', () => {
  it('writes back the full backup byte for byte, without the excluded files', async () => {
    const target = join(dir, 'restore-full');
    const r = await restoreInto(m, [full.manifest], target);
    expectSameTree(await readTree(target), atFull);
    expect(r.results.reduce((n, x) => n + x.written, 0)).toBe(atFull.size + 1); // base/1/2619 is written in 2 pieces
    expect((await stat(join(target, 'pg_wal'))).isDirectory()).toBe(true);
    expect(((await stat(join(target, 'global/pg_control'))).mode & 0o777).toString(8)).toBe('600');
  });

  it('writes back the incremental backup from the layers of its chain', async () => {
    const target = join(dir, 'restore-incr');
    const r = await restoreInto(m, [full.manifest, incr.manifest], target);
    expect(r.tasks.some((t) => t.kind === 'rebuild')).toBe(true);
    expectSameTree(await readTree(target), atIncr);
  });

  it('refuses a damaged object instead of writing wrong bytes', async () => {
    const e = full.manifest.files.get('base/1/1259')!;
    const key = dataObjectKey('main', F, e.object!.n);
    const original = await readAll(await m.driver.get(key), 1 << 20);
    const damaged = Buffer.from(original);
    const mid = damaged.length >> 1;
    damaged[mid] = damaged[mid]! ^ 0x01;
    await m.driver.put(key, damaged);
    try {
      await expect(restoreInto(m, [full.manifest], join(dir, 'restore-damaged'))).rejects.toBeInstanceOf(IntegrityError);
    } finally {
      await m.driver.put(key, original);
    }
  });
});
