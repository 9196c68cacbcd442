/** Facts of `pgark metrics` from catalog entries and listings: newest backup, WAL, pending segments. */
import { describe, expect, it } from 'vitest';
import type { BackupInfo } from '../../src/catalog/backup-info.js';
import { pendingSegments, summariseBackups, summariseWal } from '../../src/ops/metrics-model.js';

const MB = 1024 * 1024;

function backup(id: string, type: 'full' | 'incr', startLsn: string, start: string, stop: string, durationMs = 60_000): BackupInfo {
  return {
    format: 1, id, type, ...(type === 'incr' ? { parent: 'p' } : {}), chain: [id],
    start: { time: start, lsn: startLsn, timeline: 1, walFile: '000000010000000000000001' },
    stop: { time: stop, lsn: startLsn, timeline: 1, walFile: '000000010000000000000001' },
    walRange: { first: '000000010000000000000001', last: '000000010000000000000001' }, walStored: false,
    pgVersion: 15, systemIdentifier: '1', dataChecksums: true, fromStandby: false,
    size: { original: 1000, stored: 100, files: 1, objects: 1 }, durationMs, checksumFailures: 0, codec: 'lz4',
    manifest: { key: 'k', sha256: 's', size: 1 }, pgarkVersion: '0', host: 'h',
  };
}

describe('summariseBackups', () => {
  it('no backups', () => {
    expect(summariseBackups([])).toEqual({ count: 0 });
  });
  it('the newest by start LSN (not by listing order or id), the newest full, the oldest start', () => {
    const f1 = backup('20261120-010000F', 'full', '0/2000028', '2026-11-20T01:00:00.000Z', '2026-11-20T01:10:00.000Z');
    const i1 = backup('20261121-010000I', 'incr', '0/5000028', '2026-11-21T01:00:00.000Z', '2026-11-21T01:02:00.000Z', 120_000);
    const f2 = backup('20261122-010000F', 'full', '0/9000028', '2026-11-22T01:00:00.000Z', '2026-11-22T01:09:00.000Z');
    // An id that sorts last but starts earlier (clock set back): LSN order wins.
    const odd = backup('20261130-000000I', 'incr', '0/7000028', '2026-11-30T00:00:00.000Z', '2026-11-30T00:01:00.000Z');
    const r = summariseBackups([odd, f2, i1, f1]);
    expect(r.count).toBe(4);
    expect(r.last).toEqual({ id: f2.id, type: 'full', startMs: Date.parse(f2.start.time), stopMs: Date.parse(f2.stop.time), durationSec: 60, originalBytes: 1000, storedBytes: 100 });
    expect(r.lastFullStopMs).toBe(Date.parse('2026-11-22T01:09:00.000Z'));
    expect(r.oldestStartMs).toBe(Date.parse('2026-11-20T01:00:00.000Z'));
  });
  it('only incrementals (fulls expired by hand): no full', () => {
    const r = summariseBackups([backup('20261121-010000I', 'incr', '0/5000028', '2026-11-21T01:00:00.000Z', '2026-11-21T01:02:00.000Z', 1500)]);
    expect(r.lastFullStopMs).toBeUndefined();
    expect(r.last?.durationSec).toBe(1.5);
  });
});

describe('summariseWal', () => {
  const o = (name: string, size: number, mtimeMs: number) => ({ path: `main/wal/${name.slice(0, 8)}/${name.slice(0, 16)}/${name}`, size, mtimeMs });
  it.each<[string, Array<{ path: string; size: number; mtimeMs: number }>, number, unknown]>([
    ['empty', [], 0, { segments: 0, storedBytes: 0 }],
    ['history and backup files count in bytes, not as segments', [
      { path: 'main/wal/00000002/00000002.history', size: 50, mtimeMs: 9 },
      o('000000010000000000000003.00000028.backup', 30, 8),
      o('000000010000000000000003', 1000, 5),
      o('000000010000000000000002', 1000, 4),
    ], MB, { segments: 2, storedBytes: 2080, newest: { name: '000000010000000000000003', timeline: 1, endLsn: 4 * MB, mtimeMs: 5 } }],
    ['the newest timeline wins over a higher segment on an older one; partials are not whole segments', [
      o('000000010000000000000009', 10, 100),
      o('00000001000000000000000A.partial', 10, 101),
      o('000000020000000000000008', 10, 50),
    ], MB, { segments: 2, storedBytes: 30, newest: { name: '000000020000000000000008', timeline: 2, endLsn: 9 * MB, mtimeMs: 50 } }],
    ['16 MiB segments across a log boundary', [o('0000000100000001000000FF', 1, 7), o('000000010000000200000000', 1, 8)], 16 * MB,
      { segments: 2, storedBytes: 2, newest: { name: '000000010000000200000000', timeline: 1, endLsn: 0x2_01000000, mtimeMs: 8 } }],
    ['foreign keys under the prefix are ignored', [{ path: 'main/wal/README', size: 5, mtimeMs: 1 }], MB, { segments: 0, storedBytes: 0 }],
  ])('%s', (_what, objects, size, expected) => {
    expect(summariseWal(objects, size)).toEqual(expected);
  });
});

describe('pendingSegments', () => {
  // The insert position: the start of a segment (right after a switch) or inside it.
  const at = (segment: string, offset: number, size: number) => BigInt(Number.parseInt(segment.slice(8, 16), 16)) * (0x100000000n) + BigInt(Number.parseInt(segment.slice(16, 24), 16)) * BigInt(size) + BigInt(offset);
  it.each<[string | undefined, bigint | undefined, number, number | undefined]>([
    ['000000010000000000000010', at('000000010000000000000011', 100, MB), MB, 0],
    ['000000010000000000000010', at('000000010000000000000011', 0, MB), MB, 0],
    ['000000010000000000000010', at('000000010000000000000014', 0, MB), MB, 3],
    ['000000010000000000000010', at('000000010000000000000014', MB - 1, MB), MB, 3],
    ['0000000100000000000000FF', at('000000010000000100000001', 8192, 16 * MB), 16 * MB, 1],
    ['000000010000000000000FFF', at('000000010000000100000001', 0, MB), MB, 1],
    ['000000010000000000000010', at('000000010000000000000010', 500, MB), MB, 0],
    ['000000010000000000000012', at('000000010000000000000010', 500, MB), MB, 0],
    ['000000010000000000000010.partial', at('000000020000000000000012', 0, MB), MB, 1],
    ['000000010000000000000010.00000028.backup', at('000000010000000000000012', 0, MB), MB, 1],
    ['00000002.history', at('000000020000000000000012', 0, MB), MB, undefined],
    [undefined, at('000000010000000000000012', 0, MB), MB, undefined],
    ['000000010000000000000010', undefined, MB, undefined],
    ['garbage', at('000000010000000000000012', 0, MB), MB, undefined],
    ['000000010000000000001000', at('000000010000000000000012', 0, MB), MB, undefined],
  ])('%s .. %s', (last, current, size, expected) => {
    expect(pendingSegments(last, current, size)).toBe(expected);
  });
});
