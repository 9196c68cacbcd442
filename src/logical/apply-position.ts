/**
 * The agent's applied position, kept in the target database (so it commits atomically with the
 * applied changes: exactly once). `pgark.apply_position` holds one row per subscription: the end
 * LSN of the last source transaction applied and its commit time, plus the last apply error.
 * `pgark.apply_tables` holds, per subscription and relation, the LSN from which a table added
 * later is applied from the stream (its initial copy's snapshot point).
 *
 * The SQL-building functions are pure; the others take an open target client.
 */
import type { Client } from 'pg';
import { formatLsn, parseLsn } from '../wal/segment-name.js';
import { quoteLiteral } from './set-catalog.js';

export const POSITION_DDL = [
  'CREATE SCHEMA IF NOT EXISTS pgark',
  `CREATE TABLE IF NOT EXISTS pgark.apply_position (
    subscription text PRIMARY KEY,
    lsn pg_lsn NOT NULL,
    commit_time timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now(),
    last_error text)`,
  `CREATE TABLE IF NOT EXISTS pgark.apply_tables (
    subscription text NOT NULL,
    relation text NOT NULL,
    sync_lsn pg_lsn NOT NULL,
    PRIMARY KEY (subscription, relation))`,
];

/** The subscription's key in the position tables: `<set>.<subscriber>`. */
export function subscriptionKey(set: string, subscriber: string): string {
  return `${set}.${subscriber}`;
}

/** Microseconds since the Unix epoch -> a timestamptz SQL expression (exact to the microsecond). */
export function timestampSql(unixMicros: bigint): string {
  return `(timestamptz 'epoch' + ${unixMicros.toString()} * interval '1 microsecond')`;
}

/** The statement that records a transaction as applied (runs inside the transaction it records). */
export function positionUpdateSql(subscription: string, endLsn: bigint, commitUnixMicros: bigint | undefined): string {
  const time = commitUnixMicros === undefined ? 'NULL' : timestampSql(commitUnixMicros);
  return `UPDATE pgark.apply_position SET lsn = ${quoteLiteral(formatLsn(endLsn))}, commit_time = ${time}, updated_at = now(), last_error = NULL WHERE subscription = ${quoteLiteral(subscription)}`;
}

/**
 * First statement of every target transaction of the worker: fails (invalid integer input, with a
 * readable message) unless the stored position is `expected`, the end of the group before. So a
 * transaction queued behind one that failed, or a second worker, can never commit out of order.
 */
export function positionGuardSql(subscription: string, expected: bigint): string {
  const lsn = quoteLiteral(formatLsn(expected));
  return `SELECT CASE WHEN count(*) = 1 THEN 1 ELSE ('pgark: the applied position of ' || ${quoteLiteral(subscription)} || ' is not ' || ${lsn} || ' (another apply worker, or a failed batch; rows: ' || count(*)::text || ')')::int END ` +
    `FROM pgark.apply_position WHERE subscription = ${quoteLiteral(subscription)} AND lsn = ${lsn}`;
}

/**
 * Skip rule: a transaction whose commit record starts before the stored position (the end of the
 * last applied commit, or the initial copy's consistent point) is already in the target.
 */
export function alreadyApplied(commitLsn: bigint, stored: bigint): boolean {
  return commitLsn < stored;
}

/** LSN text -> bigint (X/Y). */
export function lsnOf(text: string): bigint {
  return parseLsn(text);
}
export function lsnText(lsn: bigint): string {
  return formatLsn(lsn);
}

export async function ensurePositionTables(target: Client): Promise<void> {
  for (const sql of POSITION_DDL) await target.query(sql);
}

export interface StoredPosition {
  lsn: bigint;
  commitTime: Date | null;
  lastError: string | null;
}

export async function readPosition(target: Client, subscription: string): Promise<StoredPosition | undefined> {
  const r = await target.query<{ lsn: string; commit_time: Date | null; last_error: string | null }>(
    'SELECT lsn::text AS lsn, commit_time, last_error FROM pgark.apply_position WHERE subscription = $1',
    [subscription],
  );
  const row = r.rows[0];
  return row ? { lsn: parseLsn(row.lsn), commitTime: row.commit_time, lastError: row.last_error } : undefined;
}

/** Insert or reset the subscription's row (inside the caller's transaction). */
export async function initPosition(target: Client, subscription: string, lsn: bigint): Promise<void> {
  await target.query(
    `INSERT INTO pgark.apply_position (subscription, lsn) VALUES ($1, $2::pg_lsn)
     ON CONFLICT (subscription) DO UPDATE SET lsn = EXCLUDED.lsn, commit_time = NULL, updated_at = now(), last_error = NULL`,
    [subscription, formatLsn(lsn)],
  );
  await target.query('DELETE FROM pgark.apply_tables WHERE subscription = $1', [subscription]);
}

/** Record an apply error (its own transaction; the failed one was rolled back). */
export async function recordError(target: Client, subscription: string, message: string): Promise<void> {
  await target.query('UPDATE pgark.apply_position SET last_error = $2, updated_at = now() WHERE subscription = $1', [subscription, message.slice(0, 2000)]);
}

export async function readTableSyncs(target: Client, subscription: string): Promise<Map<string, bigint>> {
  const r = await target.query<{ relation: string; sync_lsn: string }>('SELECT relation, sync_lsn::text AS sync_lsn FROM pgark.apply_tables WHERE subscription = $1', [subscription]);
  return new Map(r.rows.map((row) => [row.relation, parseLsn(row.sync_lsn)]));
}

export async function recordTableSync(target: Client, subscription: string, relation: string, lsn: bigint): Promise<void> {
  await target.query(
    `INSERT INTO pgark.apply_tables (subscription, relation, sync_lsn) VALUES ($1, $2, $3::pg_lsn)
     ON CONFLICT (subscription, relation) DO UPDATE SET sync_lsn = EXCLUDED.sync_lsn`,
    [subscription, relation, formatLsn(lsn)],
  );
}
