/**
 * The non-exclusive low-level backup API and the cluster facts a backup needs.
 * PostgreSQL 15+: pg_backup_start / pg_backup_stop; 13 and 14: pg_start_backup / pg_stop_backup.
 * The backup lives as long as the session: if pgark dies, PostgreSQL ends it by itself.
 */
import type { Client } from 'pg';
import { ConfigError, PgarkError } from '../common/errors.js';
import { queryOne } from '../pg/connect.js';
import type { TablespaceInfo } from '../catalog/manifest.js';
import { SEGMENT_HEX } from '../pg/wal-names.js';

export interface ClusterFacts {
  versionNum: number;
  pgVersion: number;
  dataDirectory: string;
  inRecovery: boolean;
  dataChecksums: boolean;
  /** full_page_writes (PostgreSQL forces full-page writes while a backup runs on a primary anyway). */
  fullPageWrites: boolean;
  blockSize: number;
  relsegBlocks: number;
  walSegmentSize: number;
  systemIdentifier: string;
  timeline: number;
  archiveMode: string;
  archiveCommand: string;
  tablespaces: TablespaceInfo[];
}

export async function clusterFacts(c: Client): Promise<ClusterFacts> {
  const v = await queryOne<{ v: string }>(c, "SELECT current_setting('server_version_num') AS v");
  const versionNum = Number(v.v);
  if (versionNum < 130000) throw new ConfigError(`PostgreSQL ${Math.floor(versionNum / 10000)} is not supported: pgark supports PostgreSQL 13 and newer`);
  const r = await queryOne<Record<string, string | boolean>>(c, `
    SELECT current_setting('data_directory') AS data_directory,
           pg_is_in_recovery() AS in_recovery,
           current_setting('data_checksums') AS data_checksums,
           current_setting('full_page_writes') AS full_page_writes,
           current_setting('block_size') AS block_size,
           current_setting('segment_size') AS segment_size,
           current_setting('wal_segment_size') AS wal_segment_size,
           current_setting('archive_mode') AS archive_mode,
           current_setting('archive_command') AS archive_command,
           (SELECT system_identifier::text FROM pg_control_system()) AS system_identifier,
           (SELECT timeline_id::text FROM pg_control_checkpoint()) AS timeline`);
  const blockSize = Number(r.block_size);
  const ts = await c.query<{ oid: string; spcname: string; location: string }>(
    "SELECT oid::text AS oid, spcname, pg_tablespace_location(oid) AS location FROM pg_tablespace WHERE spcname NOT IN ('pg_default', 'pg_global') ORDER BY oid");
  return {
    versionNum,
    pgVersion: Math.floor(versionNum / 10000),
    dataDirectory: String(r.data_directory),
    inRecovery: r.in_recovery === true,
    dataChecksums: r.data_checksums === 'on',
    fullPageWrites: r.full_page_writes === 'on',
    blockSize,
    relsegBlocks: sizeToBytes(String(r.segment_size)) / blockSize,
    walSegmentSize: sizeToBytes(String(r.wal_segment_size)),
    systemIdentifier: String(r.system_identifier),
    timeline: Number(r.timeline),
    archiveMode: String(r.archive_mode),
    archiveCommand: String(r.archive_command),
    tablespaces: ts.rows.map((t) => ({ oid: Number(t.oid), name: t.spcname, location: t.location })),
  };
}

/** '1GB', '16MB', '8kB' as SHOW prints sizes. */
export function sizeToBytes(s: string): number {
  const m = /^(\d+)\s*(B|kB|MB|GB|TB)?$/.exec(s.trim());
  if (!m) throw new PgarkError(`unexpected size setting '${s}'`);
  const unit = { B: 1, kB: 1024, MB: 1024 ** 2, GB: 1024 ** 3, TB: 1024 ** 4 }[m[2] ?? 'B'] ?? 1;
  return Number(m[1]) * unit;
}

export interface StartResult {
  lsn: string;
  timeline: number;
  time: Date;
}

export async function backupStart(c: Client, f: ClusterFacts, label: string, fast: boolean): Promise<StartResult> {
  const sql = f.versionNum >= 150000
    ? 'SELECT pg_backup_start($1, $2)::text AS lsn, now() AS t'
    : 'SELECT pg_start_backup($1, $2, false)::text AS lsn, now() AS t';
  const r = await queryOne<{ lsn: string; t: Date }>(c, sql, [label, fast]);
  // The timeline the backup starts on is the one of the checkpoint (restartpoint on a standby) just taken.
  const tl = await queryOne<{ tl: string }>(c, 'SELECT timeline_id::text AS tl FROM pg_control_checkpoint()');
  return { lsn: r.lsn, timeline: Number(tl.tl), time: r.t };
}

export interface StopResult {
  lsn: string;
  time: Date;
  labelFile: string;
  spcmapFile: string;
}

export async function backupStop(c: Client, f: ClusterFacts): Promise<StopResult> {
  // wait_for_archive = false: pgark waits for the WAL in its own repository, which also works on a standby.
  const sql = f.versionNum >= 150000
    ? 'SELECT lsn::text AS lsn, labelfile, spcmapfile, clock_timestamp() AS t FROM pg_backup_stop(false)'
    : 'SELECT lsn::text AS lsn, labelfile, spcmapfile, clock_timestamp() AS t FROM pg_stop_backup(false, false)';
  const r = await queryOne<{ lsn: string; labelfile: string; spcmapfile: string | null; t: Date }>(c, sql);
  return { lsn: r.lsn, time: r.t, labelFile: r.labelfile, spcmapFile: r.spcmapfile ?? '' };
}

/** START TIMELINE / START WAL LOCATION from a backup_label text. */
export function parseBackupLabel(text: string): { startWalFile: string; startLsn: string; startTimeline: number } {
  const loc = new RegExp(`^START WAL LOCATION: ([0-9A-F]+/[0-9A-F]+) \\(file (${SEGMENT_HEX})\\)$`, 'm').exec(text);
  const tl = /^START TIMELINE: (\d+)$/m.exec(text);
  if (!loc || !tl) throw new PgarkError('unexpected backup_label from PostgreSQL: no START WAL LOCATION / START TIMELINE');
  return { startLsn: loc[1]!, startWalFile: loc[2]!, startTimeline: Number(tl[1]) };
}

/** What backup reads of the archiver just before pg_backup_stop (stop-wal.ts). */
export interface ArchiverState {
  /** pg_current_wal_insert_lsn(): the stop record goes into this segment or a later one. */
  insertLsn: string;
  /** pg_stat_archiver's last archived file (a segment, history or backup history file), if any. */
  lastArchivedWal: string | undefined;
  lastArchivedAt: Date | undefined;
  lastFailedAt: Date | undefined;
}

export async function archiverState(c: Client): Promise<ArchiverState> {
  const r = await queryOne<{ lsn: string; last_archived_wal: string | null; last_archived_time: Date | null; last_failed_time: Date | null }>(c,
    'SELECT pg_current_wal_insert_lsn()::text AS lsn, last_archived_wal, last_archived_time, last_failed_time FROM pg_stat_archiver');
  return { insertLsn: r.lsn, lastArchivedWal: r.last_archived_wal ?? undefined, lastArchivedAt: r.last_archived_time ?? undefined, lastFailedAt: r.last_failed_time ?? undefined };
}

/** pg_stat_archiver's last archived file now (undefined: none since the statistics were reset). */
export async function lastArchivedWal(c: Client): Promise<string | undefined> {
  const r = await queryOne<{ w: string | null }>(c, 'SELECT last_archived_wal AS w FROM pg_stat_archiver');
  return r.w ?? undefined;
}
