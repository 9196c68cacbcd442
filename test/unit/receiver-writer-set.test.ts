/**
 * SegmentWriter with several repositories (issue 18 item 2), on repositories in memory: a flush
 * position moves only once the piece is durable in every required repository; a whole segment is
 * stored in each; an async repository gets a backlog record instead of pieces, filled behind by
 * the BacklogFiller once it is reachable. And the push record of a set names the set (with its
 * modes): a call with other repositories or modes never takes it.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { walKey } from '../../src/repo/layout.js';
import { readAll } from '../../src/repo/object-stream.js';
import { RepoSet } from '../../src/repo/repo-set.js';
import { SegmentWriter } from '../../src/receiver/segment-writer.js';
import { pushTarget } from '../../src/wal/fast-path.js';
import { backlogNames } from '../../src/wal/wal-backlog.js';
import { BacklogFiller, setPushTarget } from '../../src/wal/wal-push-set.js';
import type { StorageDriver } from '../../storage-drivers/types.js';
import { allKeys, memoryRepo, type MemoryRepo } from '../helpers/memory-repo.js';
import { switchable } from '../helpers/switchable-driver.js';
import { fakeWal } from '../helpers/wal-bytes.js';

const SEG = 1024 * 1024;
const SYSID = 7000000000000000001n;
const S4 = '000000010000000000000004';
const START = BigInt(SEG) * 4n;

let r1: MemoryRepo;
let r2: MemoryRepo;
let d2: StorageDriver & { down: boolean };
let dir: string;

beforeEach(async () => {
  r1 = memoryRepo();
  r2 = memoryRepo({ wrap: (d) => (d2 = switchable(d)) });
  dir = await mkdtemp(join(tmpdir(), 'pgark-unit-writer-set-'));
  const identity = { systemIdentifier: SYSID.toString(), pgVersion: 15, walSegmentSize: SEG };
  await r1.repo.ensureStanza(identity, 'lz4', 'test');
  await r2.repo.ensureStanza(identity, 'lz4', 'test');
});

afterEach(async () => {
  r1.drop();
  r2.drop();
  await rm(dir, { recursive: true, force: true });
});

function writerConfig(mode2: 'required' | 'async', filler?: BacklogFiller) {
  const set = new RepoSet([{ name: 'repo', mode: 'required', repo: r1.repo }, { name: 'repo2', mode: mode2, repo: r2.repo }]);
  return { set, cfg: { repo: r1.repo, codec: 'lz4' as const, walSegmentSize: SEG, spoolDir: join(dir, 'spool'), set, filler } };
}

const stored = async (m: MemoryRepo, name: string): Promise<Buffer> => readAll(await m.repo.getObject(walKey('main', name)), 2 * SEG);
const pieces = (m: MemoryRepo) => allKeys(m.driver, 'main/received/');

describe('SegmentWriter with several repositories', () => {
  it('repo2 required: the flush position covers only what both hold; the whole segment lands in both', async () => {
    const wal = fakeWal(START, SEG, { walSegmentSize: SEG, systemIdentifier: SYSID });
    const { cfg } = writerConfig('required');
    const w = await SegmentWriter.open(cfg, 1, START);
    await w.append(START, wal.subarray(0, 300_000));
    await w.flush();
    expect(w.flushLsn).toBe(START + 300_000n);
    expect(await pieces(r2)).toEqual(await pieces(r1));
    expect((await pieces(r2)).length).toBe(1);

    d2.down = true;
    await w.append(START + 300_000n, wal.subarray(300_000, 500_000));
    await expect(w.flush()).rejects.toThrow(/repo2: .*ECONNREFUSED.*not reported as archived/);
    // Stored in repo, not in repo2: not flushed.
    expect(w.flushLsn).toBe(START + 300_000n);
    d2.down = false;
    await w.flush();
    expect(w.flushLsn).toBe(START + 500_000n);

    await w.append(START + 500_000n, wal.subarray(500_000));
    expect((await stored(r1, S4)).equals(wal)).toBe(true);
    expect((await stored(r2, S4)).equals(wal)).toBe(true);
    await w.close();
    // The pieces of the whole segment are gone from both.
    expect(await pieces(r1)).toEqual([]);
    expect(await pieces(r2)).toEqual([]);
  });

  it('repo2 async and down: no pieces there, a backlog record for the segment, filled behind once it is back', async () => {
    const wal = fakeWal(START, SEG, { walSegmentSize: SEG, systemIdentifier: SYSID });
    const { set, cfg: base } = writerConfig('async');
    const filler = new BacklogFiller(set, join(dir, 'fill'), 16, 'test');
    const cfg = { ...base, filler };
    d2.down = true;
    const w = await SegmentWriter.open(cfg, 1, START);
    await w.append(START, wal.subarray(0, 200_000));
    await w.flush();
    expect(w.flushLsn).toBe(START + 200_000n);
    await w.append(START + 200_000n, wal.subarray(200_000));
    await filler.idle();
    expect(await backlogNames(r1.repo, 'repo2')).toEqual([S4]);
    expect((await stored(r1, S4)).equals(wal)).toBe(true);
    d2.down = false;
    expect(await pieces(r2)).toEqual([]);
    await expect(stored(r2, S4)).rejects.toThrow();
    filler.kick();
    await filler.idle();
    expect((await stored(r2, S4)).equals(wal)).toBe(true);
    expect(await backlogNames(r1.repo, 'repo2')).toEqual([]);
    await w.close();
  });
});

describe('setPushTarget', () => {
  const base = { repo: '/srv/repo', stanza: 'main' };
  const two = (mode: 'required' | 'async', location = 's3://b/x') => ({
    ...base, moreRepos: [{ name: 'repo2', location, mode, cipherKeyFile: undefined, cipherKeyEnv: undefined, retention: undefined, storeSettings: {} }],
  });
  it('is the one repository target with repo alone, and differs by each repository and mode of a set', () => {
    expect(setPushTarget({ ...base, moreRepos: [] })).toBe(pushTarget('/srv/repo', 'main'));
    const all = [setPushTarget({ ...base, moreRepos: [] }), setPushTarget(two('required')), setPushTarget(two('async')), setPushTarget(two('required', 's3://b/y'))];
    expect(new Set(all).size).toBe(all.length);
    for (const t of all) expect(t).toMatch(/^[0-9a-f]{16}$/);
  });
});
