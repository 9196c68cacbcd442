/**
 * The catalog lists and deletes through Repository (issue 15 item 1), so a connection reset
 * while listing backups or removing one is retried like a get or put. Before, it called the
 * driver directly and one reset failed `pgark list`, `expire` or `delete`.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { listBackups, removeBackup, uncommittedBackupIds } from '../../../src/catalog/catalog.js';
import { flakyDriver, type FlakyDriver } from '../../helpers/flaky-driver.js';
import { allKeys, backupEntry, memoryRepo, storeBackup, type MemoryRepo } from '../../helpers/memory-repo.js';

let m: MemoryRepo;
let flaky: FlakyDriver;

function setup(): void {
  m = memoryRepo({ policy: { attempts: 3, budgetMs: 10_000, baseDelayMs: 1 }, wrap: (d) => (flaky = flakyDriver(d, {})) });
}

afterEach(() => m.drop());

const F1 = backupEntry({ id: '20261201-010000F', lsn: '0/2000028', stop: '2026-12-01T01:10:00.000Z' });
const F2 = backupEntry({ id: '20261202-010000F', lsn: '0/5000028', stop: '2026-12-02T01:10:00.000Z' });

describe('catalog over a store that resets connections', () => {
  it('listBackups lists again after a reset mid-listing', async () => {
    setup();
    await storeBackup(m.repo, F2);
    await storeBackup(m.repo, F1);
    flaky.fail.list = [1, 1];
    expect((await listBackups(m.repo)).map((b) => b.id)).toEqual([F1.id, F2.id]);
    expect(flaky.calls.list).toBe(2);
  });

  it('removeBackup retries its listing and its deletes and removes every object', async () => {
    setup();
    await storeBackup(m.repo, F1, { objects: 3 });
    await storeBackup(m.repo, F2);
    flaky.fail.list = [1, 2];
    flaky.fail.delete = 2;
    expect(await removeBackup(m.repo, F1.id, true)).toBe(4);
    expect(await allKeys(m.driver, `main/backup/${F1.id}/`)).toEqual([]);
    expect(await allKeys(m.driver, 'main/catalog/')).toEqual([`main/catalog/${F2.id}.json`]);
    expect(flaky.calls.delete).toBeGreaterThanOrEqual(5);
  });

  it('uncommittedBackupIds retries its listing', async () => {
    setup();
    await storeBackup(m.repo, F1);
    await storeBackup(m.repo, F2, { committed: false });
    flaky.fail.list = [1, 0];
    expect([...(await uncommittedBackupIds(m.repo, new Set([F1.id])))]).toEqual([F2.id]);
  });
});
