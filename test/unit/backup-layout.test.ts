import { describe, expect, it } from 'vitest';
import {
  backupIdFor,
  backupIdOfCatalogKey,
  backupPrefix,
  catalogKey,
  catalogPrefix,
  dataObjectKey,
  isBackupId,
  lockKey,
  manifestKey,
  pinKey,
  pinPrefix,
  verifyStateKey,
} from '../../src/repo/layout.js';

const ID = '20261123-162000F';

describe('backupIdFor', () => {
  it.each<[string, 'full' | 'incr', string]>([
    ['2026-11-23T16:20:00.000Z', 'full', '20261123-162000F'],
    ['2026-11-23T16:20:00.000Z', 'incr', '20261123-162000I'],
    ['2026-11-23T16:20:05.999Z', 'full', '20261123-162005F'],
    ['2026-01-02T03:04:05.000Z', 'incr', '20260102-030405I'],
    ['2026-12-31T23:59:59.999Z', 'full', '20261231-235959F'],
    // Given with a zone offset: the id is in UTC.
    ['2026-11-23T23:30:00-05:00', 'incr', '20261124-043000I'],
    ['2026-11-24T01:15:00+02:00', 'full', '20261123-231500F'],
    ['1999-07-04T00:00:00.000Z', 'full', '19990704-000000F'],
  ])('%s %s -> %s', (when, type, id) => {
    expect(backupIdFor(new Date(when), type)).toBe(id);
    expect(isBackupId(backupIdFor(new Date(when), type))).toBe(true);
  });

  it('ids sort as strings in time order', () => {
    const times = [
      '2026-11-23T16:20:00.000Z',
      '2025-12-31T23:59:59.000Z',
      '2026-11-23T09:59:59.000Z',
      '2026-11-23T10:00:00.000Z',
      '2026-01-01T00:00:00.000Z',
      '2026-11-03T16:20:00.000Z',
      '2026-10-23T16:20:00.000Z',
      '2026-11-23T16:19:59.000Z',
    ];
    const ids = times.map((t, i) => backupIdFor(new Date(t), i % 2 ? 'incr' : 'full'));
    const byTime = [...times].sort((a, b) => Date.parse(a) - Date.parse(b)).map((t) => ids[times.indexOf(t)]!);
    expect([...ids].sort()).toEqual(byTime);
    expect(byTime).toEqual([
      '20251231-235959I',
      '20260101-000000F',
      '20261023-162000F',
      '20261103-162000I',
      '20261123-095959F',
      '20261123-100000I',
      '20261123-161959I',
      '20261123-162000F',
    ]);
  });
});

describe('isBackupId', () => {
  it.each(['20261123-162000F', '20261123-162000I', '00000000-000000F'])('%j is an id', (s) => {
    expect(isBackupId(s)).toBe(true);
  });

  it.each([
    '',
    '20261123-162000',
    '20261123-162000f',
    '20261123-162000i',
    '20261123-162000X',
    '20261123162000F',
    '2026112-162000F',
    '20261123-16200F',
    '20261123-162000FF',
    ' 20261123-162000F',
    '20261123-162000F\n',
    '20261123-162000F.json',
    'x20261123-162000F',
    '../20261123-162000F',
  ])('%j is not an id', (s) => {
    expect(isBackupId(s)).toBe(false);
  });
});

describe('backup keys', () => {
  it('catalog', () => {
    expect(catalogPrefix('main')).toBe('main/catalog/');
    expect(catalogKey('main', ID)).toBe('main/catalog/20261123-162000F.json');
    expect(catalogKey('prod/eu', '20261123-162000I')).toBe('prod/eu/catalog/20261123-162000I.json');
  });

  it.each([ID, '20261124-043000I', '19990704-000000F'])('backupIdOfCatalogKey(catalogKey(%s)) round-trips', (id) => {
    expect(backupIdOfCatalogKey(catalogKey('main', id))).toBe(id);
    expect(backupIdOfCatalogKey(catalogKey('prod/eu', id))).toBe(id);
  });

  it.each([
    'main/catalog/readme.json',
    'main/catalog/20261123-162000F.json.tmp',
    'main/catalog/20261123-162000F',
    'main/catalog/20261123-162000X.json',
    'main/catalog/x20261123-162000F.json',
    'main/backup/20261123-162000F.json',
    'main/catalog/sub/20261123-162000F.json/manifest',
    '',
  ])('backupIdOfCatalogKey(%j) is undefined', (key) => {
    expect(backupIdOfCatalogKey(key)).toBeUndefined();
  });

  it('manifest and data objects live under the backup prefix', () => {
    expect(backupPrefix('main')).toBe('main/backup/');
    expect(backupPrefix('main', ID)).toBe('main/backup/20261123-162000F/');
    expect(manifestKey('main', ID)).toBe('main/backup/20261123-162000F/manifest');
    expect(dataObjectKey('main', ID, 0)).toBe('main/backup/20261123-162000F/data/0');
    expect(dataObjectKey('main', ID, 17)).toBe('main/backup/20261123-162000F/data/17');
    expect(dataObjectKey('main', '20261123-162000I', 123456)).toBe('main/backup/20261123-162000I/data/123456');
    for (const k of [manifestKey('main', ID), dataObjectKey('main', ID, 3)]) {
      expect(k.startsWith(backupPrefix('main', ID))).toBe(true);
      expect(k.startsWith(backupPrefix('main', '20261123-162000I'))).toBe(false);
    }
  });

  it('pin, lock and verify-state keys', () => {
    expect(pinPrefix('main')).toBe('main/pin/');
    expect(pinKey('main', ID)).toBe('main/pin/20261123-162000F');
    expect(lockKey('main', 'backup')).toBe('main/lock/backup');
    expect(lockKey('prod/eu', 'expire')).toBe('prod/eu/lock/expire');
    expect(verifyStateKey('main', ID)).toBe('main/verify/20261123-162000F.json');
  });

  it('the keys of one backup are all distinct and none is under another backup', () => {
    const keys = [catalogKey('main', ID), manifestKey('main', ID), dataObjectKey('main', ID, 0), pinKey('main', ID), verifyStateKey('main', ID), lockKey('main', 'backup')];
    expect(new Set(keys).size).toBe(keys.length);
    expect(keys.every((k) => k.startsWith('main/'))).toBe(true);
  });
});
