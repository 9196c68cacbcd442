import { describe, expect, it } from 'vitest';
import { checkLabel, chooseBackupType, finishParts, mergeEntry, nextBackupId, walNeeded } from '../../src/backup/backup-rules.js';
import { partsDigest, type FileEntry } from '../../src/catalog/manifest.js';
import type { BackupInfo } from '../../src/catalog/backup-info.js';
import { ConfigError, InvalidInputError } from '../../src/common/errors.js';

const MB16 = 16 * 1024 * 1024;

function backup(id: string, chainLength: number, timeline = 1): BackupInfo {
  const chain = Array.from({ length: chainLength }, (_v, i) => `${id}-${i}`);
  chain[chain.length - 1] = id;
  return {
    format: 1, id, type: chainLength > 1 ? 'incr' : 'full', chain,
    start: { time: '2026-12-01T00:00:00.000Z', lsn: '0/2000028', timeline, walFile: '000000010000000000000002' },
    stop: { time: '2026-12-01T00:10:00.000Z', lsn: '0/9000000', timeline, walFile: '000000010000000000000009' },
    walRange: { first: '000000010000000000000002', last: '000000010000000000000009' }, walStored: false,
    pgVersion: 15, systemIdentifier: '7000000000000000001', dataChecksums: true, fromStandby: false,
    size: { original: 1, stored: 1, files: 1, objects: 1 }, durationMs: 1, checksumFailures: 0, codec: 'zstd',
    manifest: { key: `main/backup/${id}/manifest`, sha256: '0'.repeat(64), size: 1 }, pgarkVersion: '0.1.0', host: 'db1',
  };
}

describe('checkLabel', () => {
  it.each([[undefined], [''], ['nightly'], ['x'.repeat(200)]])('accepts %j', (l) => expect(() => checkLabel(l)).not.toThrow());
  it.each([['x'.repeat(201)], ['two\nlines'], ['cr\r'], ['nul\0']])('refuses %j', (l) => expect(() => checkLabel(l)).toThrow(InvalidInputError));
});

describe('chooseBackupType', () => {
  const newest = backup('20261201-000000F', 1);
  it.each([
    ['full is full', 'full', newest, 1, 7, { type: 'full' }],
    ['auto builds on the newest backup', 'auto', newest, 1, 7, { type: 'incr', parent: newest }],
    ['incr builds on the newest backup', 'incr', newest, 1, 7, { type: 'incr', parent: newest }],
    ['auto without a backup is full', 'auto', undefined, 1, 7, { type: 'full', note: 'taking a full backup: there is no backup to build on' }],
    ['auto with the chain at incr-chain-max is full', 'auto', backup('20261201-000000I', 3), 1, 2,
      { type: 'full', note: 'taking a full backup: the chain of 20261201-000000I already has 2 incremental backups (incr-chain-max 2)' }],
    ['auto below incr-chain-max builds on it', 'auto', backup('20261201-000000I', 3), 1, 3, { type: 'incr', parent: backup('20261201-000000I', 3) }],
    ['auto across a timeline switch is full', 'auto', newest, 2, 7,
      { type: 'full', note: 'taking a full backup: the newest backup 20261201-000000F is on timeline 1, the cluster on 2' }],
  ] as const)('%s', (_what, asked, nb, timeline, max, want) => {
    expect(chooseBackupType(asked, nb, timeline, max)).toEqual(want);
  });
  it('incr refuses when auto would take a full backup, saying why', () => {
    expect(() => chooseBackupType('incr', undefined, 1, 7)).toThrow(ConfigError);
    expect(() => chooseBackupType('incr', newest, 2, 7)).toThrow(/cannot take an incremental backup: the newest backup .* timeline 1, the cluster on 2 \(use --type full or auto\)/);
  });
});

describe('nextBackupId', () => {
  const now = new Date('2026-12-07T01:02:03.500Z');
  it.each([
    ['nothing taken', [], '20261207-010203F'],
    ['an older id', ['20261207-010202I'], '20261207-010203F'],
    ['the same second (committed)', ['20261207-010203I'], '20261207-010204F'],
    ['a stale id of a later second', ['20261207-010203F', '20261207-010205F'], '20261207-010206F'],
  ])('%s', (_what, taken, want) => expect(nextBackupId(now, 'full', taken)).toBe(want));
  it('names the type', () => expect(nextBackupId(now, 'incr', [])).toBe('20261207-010203I'));
});

describe('walNeeded', () => {
  it.each([
    ['start and stop in one segment', '000000010000000000000002', '0/2000100', 1, ['000000010000000000000002']],
    ['stop exactly at a segment boundary needs only the segment before', '000000010000000000000002', '0/4000000', 1,
      ['000000010000000000000002', '000000010000000000000003']],
    ['stop just past a boundary needs that segment', '000000010000000000000002', '0/4000001', 1,
      ['000000010000000000000002', '000000010000000000000003', '000000010000000000000004']],
    ['across the 0xFF segment of a log id', '0000000100000000000000FE', '1/00000100', 1,
      ['0000000100000000000000FE', '0000000100000000000000FF', '000000010000000100000000']],
    ['a standby backup names the stop timeline', '000000020000000000000002', '0/3000010', 2, ['000000020000000000000002', '000000020000000000000003']],
  ])('%s', (_what, start, stop, tli, want) => expect(walNeeded(start, stop, tli, MB16)).toEqual(want));
});

describe('mergeEntry and finishParts', () => {
  const part = (start: number, size: number) => ({ start, size, sha256: `${start}`.padEnd(64, '0'), object: { backup: 'b', n: start, offset: 0 } });
  it('joins the parts of one file copied by several workers, in order, and sizes it from the last part', () => {
    const files = new Map<string, FileEntry>();
    mergeEntry(files, { t: 'file', path: 'base/1/2', size: 20, mode: 0o600, mtimeMs: 1, sha256: '', parts: [part(10, 10)], checksumFailures: [3] });
    mergeEntry(files, { t: 'file', path: 'base/1/2', size: 10, mode: 0o600, mtimeMs: 1, sha256: '', parts: [part(0, 10), part(20, 0)], checksumFailures: [1] });
    mergeEntry(files, { t: 'file', path: 'PG_VERSION', size: 3, mode: 0o600, mtimeMs: 1, sha256: 'a'.repeat(64) });
    finishParts(files.values());
    const e = files.get('base/1/2')!;
    expect(e.parts!.map((p) => [p.start, p.size])).toEqual([[0, 10], [10, 10]]);
    expect(e.size).toBe(20);
    expect(e.sha256).toBe(partsDigest(e.parts!));
    expect(e.checksumFailures).toEqual([1, 3]);
    expect(files.get('PG_VERSION')!.sha256).toBe('a'.repeat(64));
  });
});
