/**
 * Several repositories per stanza (issue 18 item 2), on repositories in memory: wal-push stores
 * to every required repository and succeeds only when each has the file; an async one that
 * cannot take it gets a backlog record in the first repository and is filled by a later call;
 * wal-fetch reads the first repository that has the file and answers "missing" only when every
 * repository said so (an unreachable one is never counted as missing).
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { NotFoundError, StorageError } from '../../../src/common/errors.js';
import { backlogKey, walKey } from '../../../src/repo/layout.js';
import { readAll } from '../../../src/repo/object-stream.js';
import { RepoSet, type RepoSetMember } from '../../../src/repo/repo-set.js';
import { backlogNames, backlogSummary } from '../../../src/wal/wal-backlog.js';
import { fetchDecision, walFetchFromSet, type FetchOutcome } from '../../../src/wal/wal-fetch-set.js';
import { walPushToSet } from '../../../src/wal/wal-push-set.js';
import type { StorageDriver } from '../../../storage-drivers/types.js';
import { allKeys, memoryRepo, type MemoryRepo } from '../../helpers/memory-repo.js';
import { fakeSegment } from '../../helpers/wal-bytes.js';
import { switchable } from '../../helpers/switchable-driver.js';

const SEG = 1024 * 1024;
const SYSID = 7000000000000000001n;
const S1 = '000000010000000000000001';
const S2 = '000000010000000000000002';
const S3 = '000000010000000000000003';

let r1: MemoryRepo;
let r2: MemoryRepo;
let d2: StorageDriver & { down: boolean };
let dir: string;
let pgWal: string;

beforeEach(async () => {
  r1 = memoryRepo();
  r2 = memoryRepo({ wrap: (d) => (d2 = switchable(d)) });
  dir = await mkdtemp(join(tmpdir(), 'pgark-unit-repo-set-'));
  pgWal = join(dir, 'data', 'pg_wal');
  await mkdir(join(pgWal, 'archive_status'), { recursive: true });
});

afterEach(async () => {
  r1.drop();
  r2.drop();
  await rm(dir, { recursive: true, force: true });
});

function set(mode2: 'required' | 'async'): RepoSet {
  const members: RepoSetMember[] = [
    { name: 'repo', mode: 'required', repo: r1.repo },
    { name: 'repo2', mode: mode2, repo: r2.repo },
  ];
  return new RepoSet(members);
}

async function segmentFile(name: string, segno: bigint): Promise<{ path: string; bytes: Buffer }> {
  const bytes = fakeSegment(segno, { walSegmentSize: SEG, systemIdentifier: SYSID });
  const path = join(pgWal, name);
  await writeFile(path, bytes);
  return { path, bytes };
}

const pushSettings = () => r1.settings({ 'push-ahead': '0', codec: 'lz4' });
const stored = async (m: MemoryRepo, name: string): Promise<Buffer> => readAll(await m.repo.getObject(walKey('main', name)), 2 * SEG);

describe('wal-push to several repositories', () => {
  it('stores in every required repository', async () => {
    const { path, bytes } = await segmentFile(S1, 1n);
    const r = await walPushToSet(set('required'), pushSettings(), path);
    expect(r.repos).toEqual([{ repo: 'repo', status: 'stored' }, { repo: 'repo2', status: 'stored' }]);
    expect((await stored(r1, S1)).equals(bytes)).toBe(true);
    expect((await stored(r2, S1)).equals(bytes)).toBe(true);
    // Each repository has its own stanza, of the same cluster.
    expect((await r2.repo.requireStanza()).systemIdentifier).toBe(SYSID.toString());
  });

  it('fails while a required repository is unreachable (PostgreSQL keeps the file), and succeeds once it is back', async () => {
    const { path, bytes } = await segmentFile(S1, 1n);
    d2.down = true;
    await expect(walPushToSet(set('required'), pushSettings(), path)).rejects.toThrow(/repo2: .*ECONNREFUSED.*not reported as archived/);
    expect(await allKeys(r1.driver, 'main/backlog/')).toEqual([]);
    d2.down = false;
    const r = await walPushToSet(set('required'), pushSettings(), path);
    // Stored in repo by the failed call already: found identical now.
    expect(r.repos).toEqual([{ repo: 'repo', status: 'exists' }, { repo: 'repo2', status: 'stored' }]);
    expect((await stored(r2, S1)).equals(bytes)).toBe(true);
  });

  it('an unreachable async repository gets a backlog (archiving goes on), filled by a later call that reaches it', async () => {
    const s1 = await segmentFile(S1, 1n);
    const s2 = await segmentFile(S2, 2n);
    d2.down = true;
    expect((await walPushToSet(set('async'), pushSettings(), s1.path)).repos).toEqual([{ repo: 'repo', status: 'stored' }, { repo: 'repo2', status: 'backlog' }]);
    expect((await walPushToSet(set('async'), pushSettings(), s2.path)).repos[1]).toEqual({ repo: 'repo2', status: 'backlog' });
    expect(await backlogNames(r1.repo, 'repo2')).toEqual([S1, S2]);
    expect(await backlogSummary(r1.repo)).toEqual([{ repo: 'repo2', files: 2, oldest: S1 }]);
    const rec = JSON.parse((await readAll(await r1.repo.getObject(backlogKey('main', 'repo2', S1)), 4096)).toString()) as { reason: string };
    expect(rec.reason).toMatch(/ECONNREFUSED/);
    // PostgreSQL may recycle S1 and S2 now: the backlog is filled from the first repository.
    await rm(s1.path);
    await rm(s2.path);
    d2.down = false;
    const s3 = await segmentFile(S3, 3n);
    expect((await walPushToSet(set('async'), pushSettings(), s3.path)).repos[1]).toEqual({ repo: 'repo2', status: 'stored' });
    expect(await backlogNames(r1.repo, 'repo2')).toEqual([]);
    expect(await backlogSummary(r1.repo)).toEqual([]);
    for (const s of [s1, s2, s3]) expect((await stored(r2, s === s1 ? S1 : s === s2 ? S2 : S3)).equals(s.bytes)).toBe(true);
  });

  it('a backlog file that conflicts with what repo2 holds does not hold up the rest of the backlog', async () => {
    const s1 = await segmentFile(S1, 1n);
    const s2 = await segmentFile(S2, 2n);
    d2.down = true;
    await walPushToSet(set('async'), pushSettings(), s1.path);
    await walPushToSet(set('async'), pushSettings(), s2.path);
    d2.down = false;
    // Something else put a different S1 into repo2 meanwhile.
    const meta = await r1.repo.requireStanza();
    await r2.repo.ensureStanza({ systemIdentifier: meta.systemIdentifier, pgVersion: meta.pgVersion, walSegmentSize: meta.walSegmentSize }, 'lz4', 'test');
    const other = await segmentFile(S1, 1n);
    const { pushWalFile } = await import('../../../src/wal/push-file.js');
    await pushWalFile(r2.repo, { path: other.path, name: S1, size: SEG }, { codec: 'none' });
    const s3 = await segmentFile(S3, 3n);
    await walPushToSet(set('async'), pushSettings(), s3.path);
    // S2 filled; S1 stays in the backlog (and repo2's S1 unchanged) for a person to look at.
    expect(await backlogNames(r1.repo, 'repo2')).toEqual([S1]);
    expect((await stored(r2, S2)).equals(s2.bytes)).toBe(true);
    expect((await stored(r2, S1)).equals(other.bytes)).toBe(true);
    expect(s1.bytes.equals(other.bytes)).toBe(false);
  });

  it('an async repository that could not even be opened gets a backlog too', async () => {
    const { path } = await segmentFile(S1, 1n);
    const s = new RepoSet([{ name: 'repo', mode: 'required', repo: r1.repo }, { name: 'repo2', mode: 'async', repo: undefined, openError: new StorageError('s3', 'unreachable') }]);
    expect((await walPushToSet(s, pushSettings(), path)).repos[1]).toEqual({ repo: 'repo2', status: 'backlog' });
    expect(await backlogNames(r1.repo, 'repo2')).toEqual([S1]);
  });
});

describe('wal-fetch from several repositories', () => {
  const M = (repo: string): FetchOutcome => ({ repo, answer: 'missing' });
  const R = (repo: string): FetchOutcome => ({ repo, answer: 'restored' });
  const F = (repo: string): FetchOutcome => ({ repo, answer: 'failed', error: new StorageError('s3', `${repo} down`) });
  it.each([
    ['first has it', [R('repo')], 'restored repo'],
    ['second has it', [M('repo'), R('repo2')], 'restored repo2'],
    ['first unreachable, second has it', [F('repo'), R('repo2')], 'restored repo2'],
    ['every one missing', [M('repo'), M('repo2'), M('repo3')], 'missing'],
    ['missing, and one unreachable: not missing', [M('repo'), F('repo2')], 'failed repo2'],
    ['unreachable first, missing second: not missing', [F('repo'), M('repo2')], 'failed repo'],
    ['all unreachable', [F('repo'), F('repo2')], 'failed repo'],
  ] as const)('%s', (_n, outcomes, want) => {
    const d = fetchDecision(outcomes);
    expect(d.answer === 'missing' ? 'missing' : `${d.answer} ${d.repo}`).toBe(want);
  });

  async function pushBoth(name: string, segno: bigint): Promise<Buffer> {
    const { path, bytes } = await segmentFile(name, segno);
    await walPushToSet(set('required'), pushSettings(), path);
    await rm(path);
    return bytes;
  }

  it('reads the second repository when the first lacks the file or is unreachable; missing only when all say so', async () => {
    const b1 = await pushBoth(S1, 1n);
    const b2 = await pushBoth(S2, 2n);
    await r1.repo.delete([walKey('main', S1)]);
    const dest = join(pgWal, 'RECOVERYXLOG');
    const fs = r1.settings({ prefetch: '0' });
    expect(await walFetchFromSet(set('required'), fs, S1, dest, join(dir, 'data'))).toMatchObject({ status: 'restored', repo: 'repo2' });
    expect((await readFile(dest)).equals(b1)).toBe(true);
    expect(await walFetchFromSet(set('required'), fs, S2, dest, join(dir, 'data'))).toMatchObject({ status: 'restored', repo: 'repo' });
    expect((await readFile(dest)).equals(b2)).toBe(true);
    // Every repository says missing: missing.
    expect((await walFetchFromSet(set('required'), fs, S3, dest, join(dir, 'data'))).status).toBe('missing');
    // repo2 unreachable: S1 (only in repo2) is not "missing" but an error.
    d2.down = true;
    await expect(walFetchFromSet(set('required'), fs, S1, dest, join(dir, 'data'))).rejects.toThrow(/repo2: .*ECONNREFUSED.*not reporting it as missing/);
    await expect(walFetchFromSet(set('required'), fs, S3, dest, join(dir, 'data'))).rejects.toBeInstanceOf(StorageError);
    // ... while what repo has is still served.
    expect(await walFetchFromSet(set('required'), fs, S2, dest, join(dir, 'data'))).toMatchObject({ status: 'restored', repo: 'repo' });
    // Lazy (wal-fetch's set): repo2 is opened only when repo lacks the file.
    let opened = 0;
    const lazy = () => new RepoSet([
      { name: 'repo', mode: 'required', repo: r1.repo },
      { name: 'repo2', mode: 'required', repo: undefined, open: async () => { opened++; throw new StorageError('s3', 'repo2 is down'); } },
    ]);
    expect(await walFetchFromSet(lazy(), fs, S2, dest, join(dir, 'data'))).toMatchObject({ status: 'restored', repo: 'repo' });
    expect(opened).toBe(0);
    await expect(walFetchFromSet(lazy(), fs, S3, dest, join(dir, 'data'))).rejects.toThrow(/repo2: repo2 is down/);
    expect(opened).toBe(1);
    // A repository that could not be opened counts as unreachable, not missing.
    const unopened = new RepoSet([{ name: 'repo', mode: 'required', repo: r1.repo }, { name: 'repo2', mode: 'required', repo: undefined, openError: new NotFoundError('x', 'marker missing') }]);
    await expect(walFetchFromSet(unopened, fs, S3, dest, join(dir, 'data'))).rejects.toThrow(/marker missing/);
  });
});
