/**
 * walPush and walFetch on a repository in memory (issue 15 item 7): the archive_command and
 * restore_command paths without the CLI and without a repository on disk. Only pg_wal (where
 * PostgreSQL's files are) is a local directory.
 */
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ArchiveMismatchError, ClusterMismatchError, IntegrityError } from '../../../src/common/errors.js';
import { walKey } from '../../../src/repo/layout.js';
import { readAll } from '../../../src/repo/object-stream.js';
import { walFetch } from '../../../src/wal/wal-fetch.js';
import { walPush } from '../../../src/wal/wal-push.js';
import { allKeys, memoryRepo, type MemoryRepo } from '../../helpers/memory-repo.js';
import { fakeSegment } from '../../helpers/wal-bytes.js';

const SEG = 1024 * 1024;
const SYSID = 7000000000000000001n;
const S1 = '000000010000000000000001';
const S2 = '000000010000000000000002';
let m: MemoryRepo;
let dir: string;
let pgWal: string;

beforeEach(async () => {
  m = memoryRepo();
  dir = await mkdtemp(join(tmpdir(), 'pgark-unit-wal-'));
  pgWal = join(dir, 'data', 'pg_wal');
  await mkdir(join(pgWal, 'archive_status'), { recursive: true });
});

afterEach(async () => {
  m.drop();
  await rm(dir, { recursive: true, force: true });
});

async function segmentFile(name: string, segno: bigint, systemIdentifier = SYSID): Promise<{ path: string; bytes: Buffer }> {
  const bytes = fakeSegment(segno, { walSegmentSize: SEG, systemIdentifier });
  const path = join(pgWal, name);
  await writeFile(path, bytes);
  return { path, bytes };
}

/** Buffer.equals: vitest's toEqual compares a 1 MiB buffer element by element (seconds). */
const sameBytes = (a: Buffer, b: Buffer): boolean => a.length === b.length && a.equals(b);

const pushSettings = () => m.settings({ 'push-ahead': '0', codec: 'lz4' });
const fetchSettings = () => m.settings({ prefetch: '0' });

describe('walPush into a repository in memory', () => {
  it('creates the stanza from the segment and stores it, checksummed and compressed', async () => {
    const { path, bytes } = await segmentFile(S1, 1n);
    expect(await walPush(m.repo, pushSettings(), path)).toEqual({ name: S1, status: 'stored', queuedAhead: [] });
    const meta = await m.repo.requireStanza();
    expect(meta).toMatchObject({ systemIdentifier: SYSID.toString(), walSegmentSize: SEG, codec: 'lz4' });
    expect(sameBytes(await readAll(await m.repo.getObject(walKey('main', S1)), 2 * SEG), bytes)).toBe(true);
    // Random bytes do not compress: what matters is that the object is the encoded form, not the raw file.
    expect((await m.driver.stat(walKey('main', S1)))!.size).not.toBe(SEG);
  });

  it('answers a second push of the same file as already archived', async () => {
    const { path } = await segmentFile(S1, 1n);
    await walPush(m.repo, pushSettings(), path);
    expect((await walPush(m.repo, pushSettings(), path)).status).toBe('exists');
  });

  it('refuses a different file under an archived name and leaves the archived copy unchanged', async () => {
    const { path, bytes } = await segmentFile(S1, 1n);
    await walPush(m.repo, pushSettings(), path);
    const stored = await m.driver.stat(walKey('main', S1));
    await segmentFile(S1, 1n); // new random record bytes, same headers
    await expect(walPush(m.repo, pushSettings(), path)).rejects.toBeInstanceOf(ArchiveMismatchError);
    expect(await m.driver.stat(walKey('main', S1))).toEqual(stored);
    expect(sameBytes(await readAll(await m.repo.getObject(walKey('main', S1)), 2 * SEG), bytes)).toBe(true);
  });

  it('refuses a segment of another cluster and stores nothing', async () => {
    await walPush(m.repo, pushSettings(), (await segmentFile(S1, 1n)).path);
    const before = await allKeys(m.driver, 'main/wal/');
    const other = await segmentFile(S2, 2n, 7000000000000000002n);
    await expect(walPush(m.repo, pushSettings(), other.path)).rejects.toBeInstanceOf(ClusterMismatchError);
    expect(await allKeys(m.driver, 'main/wal/')).toEqual(before);
  });
});

describe('walFetch from a repository in memory', () => {
  it('restores an archived segment byte for byte', async () => {
    const { path, bytes } = await segmentFile(S1, 1n);
    await walPush(m.repo, pushSettings(), path);
    const dest = join(dir, 'restore', 'pg_wal', 'RECOVERYXLOG');
    await mkdir(join(dir, 'restore', 'pg_wal'), { recursive: true });
    const r = await walFetch(m.repo, fetchSettings(), S1, dest, join(dir, 'restore'));
    expect(r).toMatchObject({ status: 'restored', source: 'repository', prefetch: [] });
    expect(sameBytes(await readFile(dest), bytes)).toBe(true);
  });

  it('answers a segment that is not archived as missing', async () => {
    await walPush(m.repo, pushSettings(), (await segmentFile(S1, 1n)).path);
    const dest = join(pgWal, 'RECOVERYXLOG');
    expect((await walFetch(m.repo, fetchSettings(), S2, dest, join(dir, 'data'))).status).toBe('missing');
    await expect(stat(dest)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('refuses a damaged object and writes nothing at the destination', async () => {
    const { path } = await segmentFile(S1, 1n);
    await walPush(m.repo, pushSettings(), path);
    const key = walKey('main', S1);
    const raw = await readAll(await m.driver.get(key), 4 * SEG);
    const mid = raw.length >> 1;
    raw[mid] = raw[mid]! ^ 0xff;
    await m.driver.put(key, raw);
    const dest = join(pgWal, 'RECOVERYXLOG');
    await expect(walFetch(m.repo, fetchSettings(), S1, dest, join(dir, 'data'))).rejects.toBeInstanceOf(IntegrityError);
    await expect(stat(dest)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
