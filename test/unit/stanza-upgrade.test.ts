import { describe, expect, it } from 'vitest';
import { ClusterMismatchError, IntegrityError, InvalidInputError } from '../../src/common/errors.js';
import { archiveEnd, upgradedMeta } from '../../src/ops/stanza-upgrade.js';
import { parseControlData } from '../../src/pg/controldata.js';
import { assertSameCluster, clusterById, clusterForWal, parseStanzaMeta, upgradeBoundaries, type StanzaMeta } from '../../src/repo/stanza-meta.js';
import { analyseArchive } from '../../src/wal/archive-analysis.js';

const MiB16 = 16 * 1024 * 1024;
const OLD: StanzaMeta = {
  format: 1, stanza: 'main', systemIdentifier: '7000000000000000001', pgVersion: 15, walSegmentSize: MiB16, codec: 'lz4',
  createdAt: '2026-12-01T00:00:00.000Z', createdBy: 'pgark 0.1.0',
};

// pg_controldata of PostgreSQL 15 (LC_ALL=C), the lines pgark reads among the others.
const CONTROLDATA = `pg_control version number:            1300
Catalog version number:               202209061
Database system identifier:           7000000000000000002
Database cluster state:               shut down
pg_control last modified:             Mon Dec  7 00:40:00 2026
Latest checkpoint location:           0/5000028
Latest checkpoint's REDO location:    0/5000028
Latest checkpoint's REDO WAL file:    000000010000000000000005
Latest checkpoint's TimeLineID:       1
Bytes per WAL segment:                16777216
`;

describe('parseControlData', () => {
  it('reads the identity, the REDO location and the segment size', () => {
    expect(parseControlData(CONTROLDATA)).toEqual({ systemIdentifier: '7000000000000000002', state: 'shut down', redoLsn: '0/5000028', timeline: 1, walSegmentSize: MiB16 });
  });
  it('refuses output without a field', () => {
    expect(() => parseControlData(CONTROLDATA.replace(/^Bytes per WAL segment.*$/m, ''))).toThrow(/no valid 'Bytes per WAL segment'/);
  });
});

describe('upgradedMeta', () => {
  const cd = parseControlData(CONTROLDATA);
  const archived = ['000000010000000000000001', '000000010000000000000002.00000028.backup', '000000010000000000000003', '00000001.history'];

  it('binds the new cluster and keeps the old one in the history', () => {
    const m = upgradedMeta(OLD, cd, 15, archived, new Date('2026-12-07T00:40:00Z'));
    // The boundary: the start of the REDO segment (no older segment in the new pg_wal given).
    expect(m).toMatchObject({ systemIdentifier: '7000000000000000002', sinceLsn: '0/5000000', codec: 'lz4', createdAt: OLD.createdAt });
    expect(m.history).toEqual([{ systemIdentifier: '7000000000000000001', pgVersion: 15, walSegmentSize: MiB16, until: '2026-12-07T00:40:00.000Z' }]);
    // It round-trips through the parser, and a second upgrade stacks.
    const again = parseStanzaMeta(JSON.stringify(m), 'x');
    const third = upgradedMeta(again, { ...cd, systemIdentifier: '7000000000000000003', redoLsn: '0/9000028' }, 16, [...archived, '000000010000000000000007'], new Date('2026-12-08T00:00:00Z'));
    expect(third.history?.map((h) => [h.systemIdentifier, h.sinceLsn])).toEqual([['7000000000000000001', undefined], ['7000000000000000002', '0/5000000']]);
    expect(third.sinceLsn).toBe('0/9000000');
  });

  it('the boundary is the oldest segment still in the new pg_wal when that is older than the REDO segment', () => {
    // Segment 4 waited in pg_wal since wal-push refused it (exit 4); a checkpoint moved REDO on.
    expect(upgradedMeta(OLD, cd, 15, archived, new Date(), '000000010000000000000004').sinceLsn).toBe('0/4000000');
    expect(upgradedMeta(OLD, cd, 15, archived, new Date(), '000000010000000000000007').sinceLsn).toBe('0/5000000');
    // ... and it must not reach back into archived WAL.
    expect(() => upgradedMeta(OLD, cd, 15, archived, new Date(), '000000010000000000000003')).toThrow(/starts at 0\/3000000, but stanza 'main' already holds WAL up to 000000010000000000000003/);
  });

  it('refuses when the archive already holds WAL at or after the new start (names would collide)', () => {
    expect(() => upgradedMeta(OLD, cd, 15, [...archived, '000000010000000000000005'], new Date())).toThrow(InvalidInputError);
    expect(() => upgradedMeta(OLD, cd, 15, [...archived, '000000020000000000000005.partial'], new Date())).toThrow(/already holds WAL up to 000000020000000000000005.partial/);
    // A segment ending exactly at the REDO segment's start is fine.
    expect(() => upgradedMeta(OLD, cd, 15, [...archived, '000000010000000000000004'], new Date())).not.toThrow();
  });

  it('refuses to go back to a prior cluster', () => {
    const m = upgradedMeta(OLD, cd, 15, archived, new Date());
    expect(() => upgradedMeta(m, { ...cd, systemIdentifier: OLD.systemIdentifier, redoLsn: '0/9000000' }, 15, archived, new Date())).toThrow(ClusterMismatchError);
  });

  it('archiveEnd ignores history and backup files', () => {
    expect(archiveEnd(archived, MiB16)).toEqual({ end: 4n * BigInt(MiB16), name: '000000010000000000000003' });
    expect(archiveEnd(['00000001.history'], MiB16)).toBeUndefined();
    expect(archiveEnd(['0000000100000001000000FF'], MiB16)?.end).toBe(0x200000000n);
  });
});

describe('stanza clusters after an upgrade', () => {
  const up = upgradedMeta(OLD, parseControlData(CONTROLDATA), 15, [], new Date('2026-12-07T00:00:00Z'));

  it('clusterForWal picks the cluster by WAL position', () => {
    expect(clusterForWal(up, '000000010000000000000004').systemIdentifier).toBe('7000000000000000001');
    expect(clusterForWal(up, '000000030000000000000004.partial').systemIdentifier).toBe('7000000000000000001');
    expect(clusterForWal(up, '000000010000000000000005').systemIdentifier).toBe('7000000000000000002');
    expect(clusterForWal(up, '000000010000000100000000').systemIdentifier).toBe('7000000000000000002');
    expect(clusterForWal(OLD, '000000010000000000000009').systemIdentifier).toBe('7000000000000000001');
  });

  it('clusterById knows both', () => {
    expect(clusterById(up, '7000000000000000001')?.pgVersion).toBe(15);
    expect(clusterById(up, '7000000000000000002')).toBeDefined();
    expect(clusterById(up, '42')).toBeUndefined();
  });

  it('the mismatch message says what to run, or that the prior cluster cannot archive any more', () => {
    expect(() => assertSameCluster(OLD, { systemIdentifier: '7000000000000000002' }, "WAL file 'x'"))
      .toThrow(/run 'pgark stanza-upgrade --stanza main --pgdata <the new data directory>'/);
    expect(() => assertSameCluster(up, { systemIdentifier: '7000000000000000001' }, "WAL file 'x'"))
      .toThrow(/the cluster this stanza held before 'pgark stanza-upgrade'.*can no longer archive here/);
  });

  it('parseStanzaMeta refuses a malformed history', () => {
    expect(() => parseStanzaMeta(JSON.stringify({ ...up, history: [{ systemIdentifier: 'x' }] }), 'k')).toThrow(IntegrityError);
    expect(() => parseStanzaMeta(JSON.stringify({ ...up, sinceLsn: 'nope' }), 'k')).toThrow(/malformed upgrade history/);
    expect(parseStanzaMeta(JSON.stringify(OLD), 'k').history).toBeUndefined();
  });
});

describe('archive gaps across an upgrade', () => {
  const obj = (name: string) => ({ path: `main/wal/${name.slice(0, 8)}/${name.slice(0, 16)}/${name}`, size: 1, mtimeMs: 0 });
  const seg = (n: number) => `00000001000000000000000${n.toString(16).toUpperCase()}`;
  const up = upgradedMeta(OLD, { ...parseControlData(CONTROLDATA), redoLsn: '0/A000028' }, 15, [], new Date(), '000000010000000000000009');

  it('the hole between the old cluster and the boundary is not a gap; one after it is', () => {
    expect(upgradeBoundaries(up)).toEqual([9n * BigInt(MiB16)]);
    const objects = [1, 2, 3, 4, 9, 10, 12].map((n) => obj(seg(n)));
    const report = analyseArchive(objects, MiB16, new Map(), upgradeBoundaries(up));
    expect(report.timelines[0]!.gaps).toEqual([{ first: seg(11), last: seg(11), count: 1 }]);
    // Without the boundary (a stanza never upgraded) the same hole is a gap.
    expect(analyseArchive(objects, MiB16, new Map()).timelines[0]!.gaps.map((g) => g.first)).toEqual([seg(5), seg(11)]);
    // New-cluster WAL missing right after the boundary is a gap.
    expect(analyseArchive([1, 2, 11].map((n) => obj(seg(n))), MiB16, new Map(), upgradeBoundaries(up)).timelines[0]!.gaps).toEqual([{ first: seg(9), last: seg(10), count: 2 }]);
  });
});
