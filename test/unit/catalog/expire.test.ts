/**
 * runExpire on a repository in memory (issue 15 item 7): what it removes and what it keeps, as
 * objects in the store, without the CLI, a disk or a server. The rules themselves are tested
 * as pure logic in test/unit/retention.test.ts.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runExpire } from '../../../src/catalog/expire.js';
import { ConfigError } from '../../../src/common/errors.js';
import { backlogKey, pinKey, receivedJournalKey, receivedPieceKey, walKey } from '../../../src/repo/layout.js';
import { allKeys, backupEntry, memoryRepo, SEG, storeBackup, type MemoryRepo } from '../../helpers/memory-repo.js';

let m: MemoryRepo;

const F1 = backupEntry({ id: '20261201-010000F', lsn: '0/2000028', stop: '2026-12-01T01:10:00.000Z' });
const I1 = backupEntry({ id: '20261201-120000I', lsn: '0/3000028', stop: '2026-12-01T12:10:00.000Z', parent: F1 });
const F2 = backupEntry({ id: '20261202-010000F', lsn: '0/5000028', stop: '2026-12-02T01:10:00.000Z' });
const STALE = '20261202-020000F';
const NOW = new Date('2026-12-03T00:00:00.000Z');
const seg = (n: number, tl = 1): string => `0000000${tl}00000000000000${n.toString(16).toUpperCase().padStart(2, '0')}`;

beforeEach(async () => {
  m = memoryRepo();
  await m.repo.ensureStanza({ systemIdentifier: '7000000000000000001', pgVersion: 150000, walSegmentSize: SEG }, 'none', 'test');
  for (const b of [F1, I1, F2]) await storeBackup(m.repo, b);
  // A run that never committed (killed): objects, no catalog entry.
  await storeBackup(m.repo, backupEntry({ id: STALE, lsn: '0/6000028', stop: '2026-12-02T02:10:00.000Z' }), { committed: false });
  for (let i = 1; i <= 7; i++) await m.repo.putSmallObject(walKey('main', seg(i)), Buffer.from(seg(i)));
  await m.repo.putSmallObject(walKey('main', '00000002.history'), Buffer.from('1\t0/4000000\tno recovery target specified\n'));
  await m.repo.putSmallObject(walKey('main', seg(4, 2)), Buffer.from('tl2'));
  await m.repo.putSmallObject(walKey('main', `${seg(3)}.00000028.backup`), Buffer.from('backup history'));
  // Pieces pgark receive left of a segment below the cut, and of one above it.
  await m.repo.putSmallObject(receivedPieceKey('main', seg(2), 0, 0x1000), Buffer.alloc(16));
  await m.repo.putSmallObject(receivedPieceKey('main', seg(7), 0, 0x1000), Buffer.alloc(16));
  // and a received-WAL journal of the one below the cut (its content does not matter to expire)
  await m.driver.put(receivedJournalKey('main', seg(2), 0x1000, '0123456789abcdef'), Buffer.alloc(64));
});

afterEach(() => m.drop());

const walLeft = async (): Promise<string[]> => (await allKeys(m.driver, 'main/wal/')).map((k) => k.slice(k.lastIndexOf('/') + 1));

describe('runExpire on a repository in memory', () => {
  it('removes the expired chain, the uncommitted run and the WAL below the oldest kept backup; keeps the rest', async () => {
    const before = await allKeys(m.driver);
    const out = await runExpire(m.repo, { retention: m.settings({ 'retain-full': '1' }), dryRun: false, now: NOW });

    expect(out.removedBackups.sort()).toEqual([F1.id, I1.id].sort());
    expect(out.removedUncommitted).toEqual([STALE]);
    expect(out.wal.keptFrom).toBe(seg(5));
    expect(out.wal.removed).toBe(8); // 01..04 of tl 1, 04 of tl 2, the .backup file of 03, the received piece and journal of 02
    expect(await allKeys(m.driver, 'main/catalog/')).toEqual([`main/catalog/${F2.id}.json`]);
    expect(await allKeys(m.driver, 'main/backup/')).toEqual([
      `main/backup/${F2.id}/data/0`, `main/backup/${F2.id}/data/1`, `main/backup/${F2.id}/manifest`,
    ]);
    expect((await walLeft()).sort()).toEqual(['00000002.history', seg(5), seg(6), seg(7)].sort());
    expect(await allKeys(m.driver, 'main/received/')).toEqual([receivedPieceKey('main', seg(7), 0, 0x1000)]);
    // The lock expire took is gone again; nothing else appeared.
    const after = await allKeys(m.driver);
    expect(after.filter((k) => !before.includes(k))).toEqual([]);
    expect(after).toContain('main/stanza.json');
  });

  it('keeps WAL below the cut that an async repository still lacks (its backlog), and says so', async () => {
    // repo2 (async) could not take segments 2 and 3: they are filled from this repository later.
    await m.repo.putSmallObject(backlogKey('main', 'repo2', seg(2)), Buffer.from('{}'));
    await m.repo.putSmallObject(backlogKey('main', 'repo2', seg(3)), Buffer.from('{}'));
    const out = await runExpire(m.repo, { retention: m.settings({ 'retain-full': '1' }), dryRun: false, now: NOW });
    expect(out.wal.removed).toBe(4); // 01 and 04 of tl 1, 04 of tl 2, the .backup file of 03 (the piece of 02 is kept too)
    expect(await walLeft()).toEqual(expect.arrayContaining([seg(2), seg(3)]));
    expect(await walLeft()).not.toContain(seg(1));
    expect(out.plan.warnings.join('\n')).toMatch(/kept: an async repository still lacks them/);
  });

  it('a dry run says what it would remove and removes nothing', async () => {
    const before = await allKeys(m.driver);
    const out = await runExpire(m.repo, { retention: m.settings({ 'retain-full': '1' }), dryRun: true, now: NOW });
    expect(out.plan.expire.map((e) => e.id).sort()).toEqual([F1.id, I1.id].sort());
    // Nothing reads as removed on a dry run; wouldRemove lists every WAL object that would go.
    expect(out.wal.removed).toBe(0);
    expect(out.wouldRemove?.wal.files).toBe(8);
    const names = out.wouldRemove!.wal.objects.map((w) => w.name);
    expect([names[0], names[names.length - 1]]).toEqual([seg(1), seg(4, 2)]);
    expect(out.wouldRemove?.backups.sort()).toEqual([F1.id, I1.id].sort());
    expect(out.removedBackups).toEqual([]);
    expect(await allKeys(m.driver)).toEqual(before);
  });

  it('keeps a pinned backup and the WAL from its start', async () => {
    await m.repo.putJson(pinKey('main', F1.id), { id: F1.id });
    const out = await runExpire(m.repo, { retention: m.settings({ 'retain-full': '1' }), dryRun: false, now: NOW });
    expect(out.removedBackups).toEqual([I1.id]);
    expect(out.wal.keptFrom).toBe(seg(2));
    expect((await walLeft()).sort()).toEqual(['00000002.history', `${seg(3)}.00000028.backup`, seg(2), seg(3), seg(4), seg(4, 2), seg(5), seg(6), seg(7)].sort());
    expect(await allKeys(m.driver, `main/backup/${F1.id}/`)).toHaveLength(3);
  });

  it('refuses without a retention policy and touches nothing', async () => {
    const before = await allKeys(m.driver);
    await expect(runExpire(m.repo, { retention: m.settings(), dryRun: false, now: NOW })).rejects.toBeInstanceOf(ConfigError);
    expect(await allKeys(m.driver)).toEqual(before);
  });
});
