/**
 * runBackup's steps that talk to the repository (src/backup/backup.ts), on a repository in
 * memory (issue 15 item 7): removing what interrupted runs left, the extra object with
 * backup_label and tablespace_map, the manifest, the commit point under the lock, and the wait
 * for the backup's WAL. No PostgreSQL, no CLI, no repository on disk. (The copy itself, with
 * the fold of the workers' results, is in backup-memory.test.ts through test/helpers/memory-backup.ts.)
 */
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { commitBackup, emptyCopy, removeStale, storeExtras, storeManifest, waitForWal } from '../../../src/backup/backup.js';
import { listBackups, readManifest } from '../../../src/catalog/catalog.js';
import { catalogKey, dataObjectKey, manifestKey, pinKey, walKey } from '../../../src/repo/layout.js';
import { readAll } from '../../../src/repo/object-stream.js';
import { syntheticServer } from '../../helpers/memory-backup.js';
import { allKeys, backupEntry, memoryRepo, storeBackup, type MemoryRepo } from '../../helpers/memory-repo.js';
import { writeFiles } from '../../helpers/synthetic-pgdata.js';

const A = '20261201-010000F';
const B = '20261201-020000F';
const C = '20261201-030000F';
const SEG1 = '000000010000000000000002';
const SEG2 = '000000010000000000000003';

let m: MemoryRepo;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pgark-unit-backup-steps-'));
  await writeFiles(join(dir, 'data'), { PG_VERSION: '15\n' });
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('removeStale', () => {
  beforeAll(() => {
    m = memoryRepo();
  });
  afterAll(() => m.drop());

  it('removes every object of a backup that never committed, and only those', async () => {
    const a = backupEntry({ id: A, lsn: '0/2000028', stop: '2026-12-01T01:10:00Z' });
    await storeBackup(m.repo, a);
    await storeBackup(m.repo, backupEntry({ id: B, lsn: '0/4000028', stop: '2026-12-01T02:10:00Z' }), { objects: 3, committed: false });
    const notes: string[] = [];
    expect(await removeStale(m.repo, await listBackups(m.repo), notes)).toEqual([B]);
    expect(notes).toEqual([`removed 4 objects of backup ${B}, which never committed (interrupted run)`]);
    expect(await allKeys(m.driver, `main/backup/${B}/`)).toEqual([]);
    expect(await allKeys(m.driver, `main/backup/${A}/`)).toEqual([dataObjectKey('main', A, 0), dataObjectKey('main', A, 1), manifestKey('main', A)]);
    expect(await removeStale(m.repo, await listBackups(m.repo), notes)).toEqual([]);
  });
});

describe('storeExtras and storeManifest', () => {
  beforeAll(() => {
    m = memoryRepo();
  });
  afterAll(() => m.drop());

  it('stores backup_label and tablespace_map in object n, at their offsets, and lists them in the manifest', async () => {
    const pgdata = join(dir, 'data');
    const server = syntheticServer(pgdata);
    const copied = emptyCopy();
    const label = 'START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n';
    const spcmap = '16400 /srv/ts1\n';
    await storeExtras(m.repo, server, A, 7, { labelFile: label, spcmapFile: spcmap }, [], copied);
    expect(copied.stats.objects).toBe(1);
    expect([...copied.files.values()].map((e) => [e.path, e.size, e.object])).toEqual([
      ['backup_label', label.length, { backup: A, n: 7, offset: 0 }],
      ['tablespace_map', spcmap.length, { backup: A, n: 7, offset: label.length }],
    ]);
    const body = await readAll(await m.repo.getObject(dataObjectKey('main', A, 7)));
    expect(body.toString()).toBe(label + spcmap);
    expect(copied.files.get('backup_label')!.sha256).toBe(createHash('sha256').update(label).digest('hex'));

    const ref = await storeManifest(m.repo, server, { id: A, type: 'full', parent: undefined }, { dirs: [{ t: 'dir', path: 'base', mode: 0o700 }], links: [] }, true, copied);
    expect(ref.key).toBe(manifestKey('main', A));
    const manifest = await readManifest(m.repo, { ...backupEntry({ id: A, lsn: '0/2000028', stop: '2026-12-01T01:10:00Z' }), manifest: ref });
    expect(manifest.header).toMatchObject({ id: A, type: 'full', pgVersion: 150000, pgdata, blockSize: 8192 });
    expect(manifest.header.owner).toBeDefined();
    // --store-wal: pg_wal is listed even though the walk left it out.
    expect(manifest.dirs.map((d) => d.path)).toEqual(['base', 'pg_wal']);
    expect([...manifest.files.keys()]).toEqual(['backup_label', 'tablespace_map']);
  });

  it('a catalog entry whose checksum does not match the stored manifest is refused', async () => {
    const ref = await storeManifest(m.repo, syntheticServer(join(dir, 'data')), { id: B, type: 'full', parent: undefined }, { dirs: [], links: [] }, false, emptyCopy());
    await expect(readManifest(m.repo, { ...backupEntry({ id: B, lsn: '0/4000028', stop: '2026-12-01T02:10:00Z' }), manifest: { ...ref, sha256: '0'.repeat(64) } })).rejects.toThrow(/is not the manifest the catalog entry/);
  });
});

describe('commitBackup', () => {
  beforeAll(() => {
    m = memoryRepo();
  });
  afterAll(() => m.drop());

  it('writes no catalog entry when the backup lock was taken over', async () => {
    const info = backupEntry({ id: A, lsn: '0/2000028', stop: '2026-12-01T01:10:00Z' });
    await expect(commitBackup(m.repo, { lost: true }, info, true)).rejects.toThrow(/backup lock was taken over/);
    expect(await m.repo.stat(catalogKey('main', A))).toBe(null);
    expect(await m.repo.stat(pinKey('main', A))).toBe(null);
  });

  it('pins (--keep) before the catalog entry, and commits once', async () => {
    const info = backupEntry({ id: B, lsn: '0/4000028', stop: '2026-12-01T02:10:00Z' });
    await commitBackup(m.repo, { lost: false }, info, true);
    expect(JSON.parse(await m.repo.getJson(pinKey('main', B)))).toMatchObject({ id: B, by: 'backup --keep' });
    expect((await listBackups(m.repo)).map((b) => b.id)).toEqual([B]);
    // The catalog entry is written only if absent: a second commit of the same id fails.
    await expect(commitBackup(m.repo, { lost: false }, info, false)).rejects.toThrow();
    await commitBackup(m.repo, { lost: false }, backupEntry({ id: C, lsn: '0/6000028', stop: '2026-12-01T03:10:00Z' }), false);
    expect(await m.repo.stat(pinKey('main', C))).toBe(null);
  });
});

describe('waitForWal', () => {
  beforeAll(async () => {
    m = memoryRepo();
    await m.repo.putSmallObject(walKey('main', SEG1), Buffer.from('segment'));
  });
  afterAll(() => m.drop());

  it('returns once every segment is in the repository', async () => {
    await waitForWal(m.repo, [SEG1], 0, false);
  });

  it('names the missing segments at archive-timeout, with the hint for a primary or a standby', async () => {
    await expect(waitForWal(m.repo, [SEG1, SEG2], 0, false)).rejects.toThrow(new RegExp(`within 0s \\(archive-timeout\\): missing ${SEG2}; check archive_command`));
    await expect(waitForWal(m.repo, [SEG2], 0, true)).rejects.toThrow(/missing 000000010000000000000003; on a standby, the primary archives the last segment/);
  });
});
