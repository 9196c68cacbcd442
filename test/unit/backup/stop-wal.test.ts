/**
 * The backup's own store of its stop segments (src/backup/stop-wal.ts): when it may (a table of
 * refusals), when PostgreSQL's archiver counts a segment archived (a table), and the push
 * protocol on a repository in memory and a pg_wal directory on disk: a ready segment is stored
 * and recorded so that the fast path's takePushRecord answers, a segment that is not ready or
 * whose lock another live process holds is left alone, and a different archived copy is never
 * overwritten (nothing recorded).
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { archivedPerStatus, selfPushRefusal, StopWalPusher, waitForArchiver, type SelfPushFacts } from '../../../src/backup/stop-wal.js';
import { pushLockPath, pushRecordDir, pushTarget, takePushRecord } from '../../../src/wal/fast-path.js';
import { walKey } from '../../../src/repo/layout.js';
import { readAll } from '../../../src/repo/object-stream.js';
import { memoryRepo, type MemoryRepo } from '../../helpers/memory-repo.js';
import { fakeSegment } from '../../helpers/wal-bytes.js';

const SEG = 1024 * 1024;
const SYSID = 7000000000000000042n;
const at = (s: number) => new Date(Date.UTC(2026, 11, 7, 12, 0, s));

const ok: SelfPushFacts = {
  storeWal: false, fromStandby: false, archiveMode: 'on', moreRepos: 0, ownsWalDir: true, startTimeline: 1, stopTimeline: 1,
  archiver: { lastArchivedWal: '000000010000000000000004', lastArchivedAt: at(10), lastFailedAt: undefined }, lastArchivedInRepo: true,
};

describe('selfPushRefusal', () => {
  it.each<[string, Partial<SelfPushFacts>, RegExp | undefined]>([
    ['healthy archiving into this repository', {}, undefined],
    ['archive_mode always', { archiveMode: 'always' }, undefined],
    ['an old failure, a success since', { archiver: { ...ok.archiver, lastFailedAt: at(5) } }, undefined],
    ['--store-wal', { storeWal: true }, /--store-wal/],
    ['a standby', { fromStandby: true }, /standby/],
    ['archive_mode off (pgark receive)', { archiveMode: 'off' }, /archive_mode is off/],
    ['repo2 configured', { moreRepos: 1 }, /more than one repository/],
    ['run as another user than pg_wal\'s owner', { ownsWalDir: false }, /owner/],
    ['a timeline change', { stopTimeline: 2 }, /timeline/],
    ['nothing archived yet', { archiver: { lastArchivedWal: undefined, lastArchivedAt: undefined, lastFailedAt: undefined }, lastArchivedInRepo: undefined }, /archived nothing/],
    ['failing now', { archiver: { ...ok.archiver, lastFailedAt: at(11) } }, /failed more recently/],
    ['failed, never succeeded', { archiver: { lastArchivedWal: '000000010000000000000004', lastArchivedAt: undefined, lastFailedAt: at(1) } }, /failed more recently/],
    ['the last archived file elsewhere', { lastArchivedInRepo: false }, /not in this repository/],
  ])('%s', (_what, change, refused) => {
    const why = selfPushRefusal({ ...ok, ...change });
    if (refused) expect(why).toMatch(refused);
    else expect(why).toBeUndefined();
  });
});

describe('archivedPerStatus', () => {
  const N = '000000010000000000000005';
  it.each<[string, { done: boolean; ready: boolean }, string | undefined, boolean]>([
    ['.done', { done: true, ready: false }, undefined, true],
    ['.ready', { done: false, ready: true }, '000000010000000000000009', false],
    ['neither, the archiver past it', { done: false, ready: false }, '000000010000000000000006', true],
    ['neither, the archiver at it', { done: false, ready: false }, N, true],
    ['neither, the archiver at its backup history file', { done: false, ready: false }, `${N}.00000028.backup`, true],
    ['neither, the archiver before it', { done: false, ready: false }, '000000010000000000000004', false],
    ['neither, statistics reset', { done: false, ready: false }, undefined, false],
    ['neither, a later timeline\'s history file', { done: false, ready: false }, '00000002.history', false],
    ['neither, another timeline', { done: false, ready: false }, '000000020000000000000009', false],
  ])('%s', (_what, status, last, archived) => {
    expect(archivedPerStatus(N, status, last)).toBe(archived);
  });
});

describe('StopWalPusher', () => {
  let dir: string;
  let walDir: string;
  let m: MemoryRepo;
  const target = () => pushTarget(m.location, 'main');
  const segment = async (segno: bigint, ready: boolean): Promise<string> => {
    const name = `00000001${'0'.repeat(8)}${segno.toString(16).toUpperCase().padStart(8, '0')}`;
    await writeFile(join(walDir, name), fakeSegment(segno, { walSegmentSize: SEG, systemIdentifier: SYSID }));
    if (ready) await writeFile(join(walDir, 'archive_status', `${name}.ready`), '');
    return name;
  };
  const pusher = () => new StopWalPusher(m.repo, walDir, target(), 'lz4', undefined);

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pgark-unit-stop-wal-'));
    walDir = join(dir, 'pg_wal');
    await mkdir(join(walDir, 'archive_status'), { recursive: true });
    m = memoryRepo();
  });
  afterAll(async () => {
    m.drop();
    await rm(dir, { recursive: true, force: true });
  });

  it('stores a ready segment, records it for the fast path, and drops its lock', async () => {
    const name = await segment(0x10n, true);
    const p = pusher();
    await p.prelock(name);
    expect(existsSync(pushLockPath(walDir, name))).toBe(true);
    expect(await p.push([name])).toEqual([name]);
    expect(existsSync(pushLockPath(walDir, name))).toBe(false);
    expect(await m.repo.stat(walKey('main', name))).not.toBeNull();
    // Recorded: another store (a second backup, the agent) leaves it alone.
    expect(await pusher().push([name])).toEqual([]);
    // archive_command pointing at another repository does not take the record.
    expect(await takePushRecord(join(walDir, name), pushTarget('/elsewhere', 'main'), 0)).toBe(false);
  });

  it('a call for the same repository and stanza is answered from the record', async () => {
    const name = await segment(0x11n, true);
    expect(await pusher().push([name])).toEqual([name]);
    expect(await takePushRecord(join(walDir, name), target(), 0)).toBe(true);
  });

  it('leaves alone a segment that is not ready, or whose lock another live process holds', async () => {
    const notReady = await segment(0x12n, false);
    const locked = await segment(0x13n, true);
    await mkdir(pushRecordDir(walDir), { recursive: true });
    await writeFile(pushLockPath(walDir, locked), '1'); // pid 1 lives
    expect(await pusher().push([notReady, locked])).toEqual([]);
    expect(await m.repo.stat(walKey('main', notReady))).toBeNull();
    expect(await m.repo.stat(walKey('main', locked))).toBeNull();
    expect(existsSync(pushLockPath(walDir, locked))).toBe(true); // not ours: not removed
    await rm(pushLockPath(walDir, locked));
  });

  it('never overwrites a different archived copy, and records nothing for it', async () => {
    const name = await segment(0x14n, true);
    const other = fakeSegment(0x14n, { walSegmentSize: SEG, systemIdentifier: SYSID });
    await m.repo.putObject(walKey('main', name), () => Readable.from([other]), { codec: 'lz4' });
    expect(await pusher().push([name])).toEqual([]);
    expect((await readAll(await m.repo.getObject(walKey('main', name)))).equals(other)).toBe(true);
    expect(existsSync(join(pushRecordDir(walDir), name))).toBe(false);
    expect(existsSync(pushLockPath(walDir, name))).toBe(false);
  });

  it('waitForArchiver: returns once .done is there; times out while .ready stays', async () => {
    const name = await segment(0x15n, true);
    await expect(waitForArchiver(walDir, [name], Date.now() + 100, 0.1, async () => undefined)).rejects.toThrow(/did not archive it within/);
    await rm(join(walDir, 'archive_status', `${name}.ready`));
    await writeFile(join(walDir, 'archive_status', `${name}.done`), '');
    await waitForArchiver(walDir, [name], Date.now() + 100, 0.1, async () => undefined);
  });
});
