/**
 * What `pgark setup` and `pgark check` read from the server: identity facts, and settings rows
 * from pg_settings with the value the configuration files give now (pg_file_settings, which
 * sees an ALTER SYSTEM at once, before any reload).
 */
import type { Client } from 'pg';
import { ConfigError } from '../common/errors.js';
import { queryOne } from '../pg/connect.js';
import { sizeToBytes } from '../backup/pg-api.js';
import type { ServerSetting } from './setup-plan.js';

/** Bound every statement of this session: a stuck server must not hang setup or check forever. */
export async function boundStatements(c: Client, seconds = 30): Promise<void> {
  await c.query(`SET statement_timeout = '${Math.floor(seconds)}s'`);
}

export interface ServerFacts {
  versionNum: number;
  /** Major version, e.g. 15. */
  pgVersion: number;
  dataDirectory: string;
  inRecovery: boolean;
  systemIdentifier: string;
  walSegmentSize: number;
  loggingCollector: boolean;
}

export async function serverFacts(c: Client): Promise<ServerFacts> {
  const v = await queryOne<{ v: string }>(c, "SELECT current_setting('server_version_num') AS v");
  const versionNum = Number(v.v);
  if (versionNum < 130000) throw new ConfigError(`PostgreSQL ${Math.floor(versionNum / 10000)} is not supported: pgark supports PostgreSQL 13 and newer`);
  const r = await queryOne<{ data_directory: string; in_recovery: boolean; system_identifier: string; wal_segment_size: string; logging_collector: string }>(c, `
    SELECT current_setting('data_directory') AS data_directory,
           pg_is_in_recovery() AS in_recovery,
           (SELECT system_identifier::text FROM pg_control_system()) AS system_identifier,
           current_setting('wal_segment_size') AS wal_segment_size,
           current_setting('logging_collector') AS logging_collector`);
  return {
    versionNum,
    pgVersion: Math.floor(versionNum / 10000),
    dataDirectory: r.data_directory,
    inRecovery: r.in_recovery === true,
    systemIdentifier: r.system_identifier,
    walSegmentSize: sizeToBytes(r.wal_segment_size),
    loggingCollector: r.logging_collector === 'on',
  };
}

/**
 * PostgreSQL shows archive_command as '(disabled)' while archive_mode is off (its show hook);
 * pg_settings.reset_val holds the real value (the one from the configuration, for a setting no
 * session can SET).
 */
export function unmasked(row: { name: string; setting: string; reset_val: string }): string {
  return row.name === 'archive_command' && row.setting === '(disabled)' ? row.reset_val : row.setting;
}

export interface SettingsRead {
  rows: ServerSetting[];
  /** pg_file_settings could be read (superuser or pg_read_all_settings on newer versions). */
  fileSettingsRead: boolean;
}

/** pg_settings rows for `names` (those the server has), each with its last pg_file_settings assignment. */
export async function readServerSettings(c: Client, names: readonly string[]): Promise<SettingsRead> {
  const r = await c.query<{ name: string; setting: string; reset_val: string; unit: string | null; context: string; pending_restart: boolean; source: string; sourcefile: string | null; sourceline: number | null }>(
    `SELECT name, setting, reset_val, unit, context, pending_restart, source, sourcefile, sourceline
       FROM pg_settings WHERE name = ANY($1::text[]) ORDER BY name`, [names]);
  const files = new Map<string, { value: string; sourcefile: string; sourceline: number }>();
  let fileSettingsRead = true;
  try {
    const f = await c.query<{ name: string; setting: string | null; sourcefile: string; sourceline: number }>(
      `SELECT name, setting, sourcefile, sourceline FROM pg_file_settings
        WHERE name = ANY($1::text[]) ORDER BY seqno`, [names]);
    // The last assignment wins (postgresql.auto.conf is read last).
    for (const row of f.rows) files.set(row.name, { value: row.setting ?? '', sourcefile: row.sourcefile, sourceline: Number(row.sourceline) });
  } catch (err) {
    if ((err as { code?: string }).code !== '42501') throw err; // insufficient_privilege
    fileSettingsRead = false;
  }
  return {
    rows: r.rows.map((x) => ({
      name: x.name, setting: unmasked(x), unit: x.unit, context: x.context, pendingRestart: x.pending_restart === true, source: x.source,
      sourcefile: x.sourcefile, sourceline: x.sourceline === null ? null : Number(x.sourceline), file: files.get(x.name),
    })),
    fileSettingsRead,
  };
}
