import { describe, expect, it } from 'vitest';
import { exclusionReason, isRelationDirectory, parseRelationFileName, unloggedRelations } from '../../src/backup/exclusions.js';

describe('base backup exclusions', () => {
  const unlogged = new Set(['16390']);
  it.each([
    // kept
    ['PG_VERSION', 'file', undefined],
    ['global/pg_control', 'file', undefined],
    ['base/5/16384', 'file', undefined],
    ['base/5/16384.1', 'file', undefined],
    ['base/5/16384_vm', 'file', undefined],
    ['base/5/16390_init', 'file', undefined],
    ['pg_wal', 'dir', undefined],
    ['pg_wal/archive_status', 'dir', undefined],
    ['pg_replslot', 'dir', undefined],
    ['pg_stat', 'dir', undefined],
    ['pg_stat/pgstat.stat', 'file', undefined],
    ['postgresql.auto.conf', 'file', undefined],
    ['pg_tblspc/16400/PG_15_202209061/5/16401', 'file', undefined],
    ['pg_xact/0000', 'file', undefined],
    // left out
    ['pg_wal/000000010000000000000003', 'file', /WAL/],
    ['pg_wal/archive_status/000000010000000000000003.done', 'file', /WAL/],
    ['pg_wal/.pgark', 'dir', /WAL/],
    ['pg_replslot/slot1', 'dir', /pg_replslot/],
    ['pg_replslot/slot1/state', 'file', /pg_replslot/],
    ['pg_stat_tmp/global.stat', 'file', /pg_stat_tmp/],
    ['pg_subtrans/0000', 'file', /pg_subtrans/],
    ['pg_notify/0000', 'file', /pg_notify/],
    ['pg_snapshots/00000003-00000002-1', 'file', /pg_snapshots/],
    ['postmaster.pid', 'file', /postmaster.pid/],
    ['postmaster.opts', 'file', /postmaster.opts/],
    ['backup_label', 'file', /backup_label/],
    ['tablespace_map', 'file', /tablespace_map/],
    ['backup_manifest', 'file', /backup_manifest/],
    ['global/pg_internal.init', 'file', /pg_internal.init/],
    ['base/5/pg_internal.init.12345', 'file', /pg_internal.init/],
    ['current_logfiles.tmp', 'file', /current_logfiles/],
    ['base/pgsql_tmp', 'dir', /temporary file/],
    ['base/pgsql_tmp/pgsql_tmp1234.0', 'file', /temporary file/],
    ['base/5/t3_16500', 'file', /temporary relation/],
    ['base/5/t3_16500_fsm', 'file', /temporary relation/],
    ['base/5/16390', 'file', /unlogged/],
    ['base/5/16390.2', 'file', /unlogged/],
    ['base/5/16390_fsm', 'file', /unlogged/],
  ] as const)('%s (%s)', (path, kind, want) => {
    const got = exclusionReason(path, kind, unlogged);
    if (want === undefined) expect(got).toBeUndefined();
    else expect(got).toMatch(want);
  });

  it('finds unlogged relations by their init fork', () => {
    expect([...unloggedRelations(['16384', '16390', '16390_init', '16390_fsm', 'PG_VERSION', '16401_init.1'])].sort()).toEqual(['16390', '16401']);
  });

  it('parses relation file names and directories', () => {
    expect(parseRelationFileName('16384')).toEqual({ relfilenode: '16384', fork: 'main', segment: 0 });
    expect(parseRelationFileName('16384_vm.3')).toEqual({ relfilenode: '16384', fork: 'vm', segment: 3 });
    for (const bad of ['16384_foo', 'pg_filenode.map', 'PG_VERSION', '16384.', 't3_16500']) expect(parseRelationFileName(bad)).toBeUndefined();
    expect(isRelationDirectory('global')).toBe(true);
    expect(isRelationDirectory('base/13757')).toBe(true);
    expect(isRelationDirectory('pg_tblspc/16400/PG_15_202209061/5')).toBe(true);
    expect(isRelationDirectory('base')).toBe(false);
    expect(isRelationDirectory('pg_xact')).toBe(false);
  });
});
