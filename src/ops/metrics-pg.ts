/**
 * Reading pg_stat_archiver for `pgark metrics` over a short-lived connection (--dsn or the libpq
 * environment). Checks the server is the stanza's cluster when it may read pg_control_system(),
 * so metrics never mix two clusters. Works on PostgreSQL 13+ and on standbys (then the pending
 * segment count is unknown: a standby has no current WAL insert position).
 */
import type { Client } from 'pg';
import { ClusterMismatchError } from '../common/errors.js';
import type { StanzaMeta } from '../repo/stanza-meta.js';
import { parseLsn } from '../wal/segment-name.js';
import { pendingSegments, type ArchiverFacts } from './metrics-model.js';

interface ArchiverRow {
  archived_count: string;
  failed_count: string;
  last_archived_wal: string | null;
  last_archived_at: string | null;
  last_failed_wal: string | null;
  last_failed_at: string | null;
  in_recovery: boolean;
  current_lsn: string | null;
}

const ARCHIVER_SQL = `
SELECT archived_count::text, failed_count::text, last_archived_wal, last_failed_wal,
       (extract(epoch FROM last_archived_time) * 1000)::text AS last_archived_at,
       (extract(epoch FROM last_failed_time) * 1000)::text AS last_failed_at,
       pg_is_in_recovery() AS in_recovery,
       CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_lsn()::text END AS current_lsn
  FROM pg_stat_archiver`;

/** The stanza's cluster, or a ClusterMismatchError; skipped when the role may not read pg_control_system(). */
async function checkCluster(client: Client, meta: StanzaMeta): Promise<void> {
  let id: string;
  try {
    const r = await client.query<{ id: string }>('SELECT system_identifier::text AS id FROM pg_control_system()');
    id = String(r.rows[0]?.id);
  } catch (err) {
    if ((err as { code?: string }).code === '42501') return; // insufficient_privilege: cannot tell
    throw err;
  }
  if (id !== meta.systemIdentifier) {
    throw new ClusterMismatchError(`the server connected to is cluster ${id}, but stanza '${meta.stanza}' holds cluster ${meta.systemIdentifier}: point --dsn (or PGHOST/PGPORT) at the stanza's server`);
  }
}

/** One pg_stat_archiver reading. `signal` ends the connection (and so any query in flight). */
export async function readArchiver(dsn: string | undefined, meta: StanzaMeta, timeoutSec: number, signal?: AbortSignal): Promise<ArchiverFacts> {
  const { connectPg } = await import('../pg/connect.js');
  signal?.throwIfAborted();
  const connecting = connectPg(dsn, 'pgark metrics');
  // An abandoned connection attempt is closed as soon as it completes.
  signal?.addEventListener('abort', () => void connecting.then((c) => c.end()).catch(() => undefined), { once: true });
  const client = await connecting;
  const end = () => void client.end().catch(() => undefined);
  signal?.addEventListener('abort', end, { once: true });
  try {
    signal?.throwIfAborted();
    await client.query(`SET statement_timeout = ${Math.max(1000, Math.round(timeoutSec * 1000))}`);
    await checkCluster(client, meta);
    const r = (await client.query<ArchiverRow>(ARCHIVER_SQL)).rows[0];
    if (!r) throw new Error('pg_stat_archiver returned no row');
    const ms = (v: string | null) => (v === null ? undefined : Math.round(Number(v)));
    const facts: ArchiverFacts = {
      archivedCount: Number(r.archived_count),
      failedCount: Number(r.failed_count),
      inRecovery: r.in_recovery,
    };
    if (r.last_archived_wal) facts.lastArchivedWal = r.last_archived_wal;
    if (r.last_failed_wal) facts.lastFailedWal = r.last_failed_wal;
    const la = ms(r.last_archived_at);
    const lf = ms(r.last_failed_at);
    if (la !== undefined) facts.lastArchivedMs = la;
    if (lf !== undefined) facts.lastFailedMs = lf;
    // Not pg_walfile_name(pg_current_wal_lsn()): right after a switch it names the segment just
    // completed, not the one being written.
    const pending = pendingSegments(r.last_archived_wal ?? undefined, r.current_lsn === null ? undefined : parseLsn(r.current_lsn), meta.walSegmentSize);
    if (pending !== undefined) facts.pendingSegments = pending;
    return facts;
  } finally {
    signal?.removeEventListener('abort', end);
    await client.end().catch(() => undefined);
  }
}
