/**
 * Replication slots on the source: `pgark slots list` (every slot, with the retained WAL and
 * the pgark set that owns it) and a safe drop that refuses a slot in use unless forced.
 */
import type { Client } from 'pg';
import { InvalidInputError, NotFoundError, PgarkError } from '../common/errors.js';
import { listSets } from './set-catalog.js';

export interface SlotInfo {
  slot: string;
  type: 'logical' | 'physical';
  plugin: string | null;
  database: string | null;
  active: boolean;
  activePid: number | null;
  /** pg_current_wal_lsn() - restart_lsn: WAL the server keeps for this slot. */
  retainedBytes: number | null;
  /** pg_current_wal_lsn() - confirmed_flush_lsn (logical slots). */
  lagBytes: number | null;
  walStatus: string | null;
  restartLsn: string | null;
  confirmedFlushLsn: string | null;
  temporary: boolean;
  /** The pgark set and subscriber that own it, when one does. */
  owner?: { set: string; subscriber: string };
}

const SLOT_SQL = `SELECT slot_name, slot_type, plugin, database, active, active_pid, temporary, wal_status,
       restart_lsn::text AS restart_lsn, confirmed_flush_lsn::text AS confirmed_flush_lsn,
       CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint END AS retained,
       CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint END AS lag
  FROM pg_replication_slots`;

interface SlotRow {
  slot_name: string; slot_type: 'logical' | 'physical'; plugin: string | null; database: string | null; active: boolean;
  active_pid: number | null; temporary: boolean; wal_status: string | null; restart_lsn: string | null;
  confirmed_flush_lsn: string | null; retained: string | null; lag: string | null;
}

function toInfo(r: SlotRow): SlotInfo {
  return {
    slot: r.slot_name, type: r.slot_type, plugin: r.plugin, database: r.database, active: r.active, activePid: r.active_pid,
    retainedBytes: r.retained === null ? null : Number(r.retained), lagBytes: r.lag === null ? null : Number(r.lag),
    walStatus: r.wal_status, restartLsn: r.restart_lsn, confirmedFlushLsn: r.confirmed_flush_lsn, temporary: r.temporary,
  };
}

export async function getSlot(c: Client, slot: string): Promise<SlotInfo | undefined> {
  const r = await c.query<SlotRow>(`${SLOT_SQL} WHERE slot_name = $1`, [slot]);
  return r.rows[0] ? toInfo(r.rows[0]) : undefined;
}

/** Every slot on the server, with the owning pgark set where one is recorded in set metadata. */
export async function listSlots(c: Client): Promise<SlotInfo[]> {
  const r = await c.query<SlotRow>(`${SLOT_SQL} ORDER BY slot_name`);
  const owners = new Map<string, { set: string; subscriber: string }>();
  for (const m of await listSets(c)) for (const s of m.subscribers) owners.set(s.slot, { set: m.set, subscriber: s.name });
  return r.rows.map((row) => {
    const info = toInfo(row);
    const owner = owners.get(info.slot);
    if (owner) info.owner = owner;
    return info;
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Who holds an active slot, for messages. */
async function holder(c: Client, pid: number): Promise<string> {
  const r = await c.query<{ application_name: string; client_addr: string | null }>(
    'SELECT application_name, client_addr::text AS client_addr FROM pg_stat_activity WHERE pid = $1', [pid]);
  const row = r.rows[0];
  if (!row) return `pid ${pid}`;
  return `pid ${pid}${row.application_name ? `, application '${row.application_name}'` : ''}${row.client_addr ? ` from ${row.client_addr}` : ''}`;
}

/**
 * Drop a replication slot. An active slot is waited for up to `waitMs` (a subscription just disabled
 * lets go of it within moments); still active, it is refused naming the pid, or with `force` its
 * walsender is terminated (pg_terminate_backend) first. Returns false when the slot did not exist.
 */
export async function dropSlot(c: Client, slot: string, o: { force: boolean; waitMs?: number; missingOk?: boolean }): Promise<boolean> {
  const deadline = Date.now() + (o.waitMs ?? 0);
  for (;;) {
    const s = await getSlot(c, slot);
    if (!s) {
      if (o.missingOk) return false;
      throw new NotFoundError(slot, `unable to drop slot '${slot}': no such replication slot (pgark slots list shows them)`);
    }
    if (s.active && s.activePid !== null) {
      if (Date.now() < deadline) {
        await sleep(200);
        continue;
      }
      if (!o.force) {
        throw new InvalidInputError(`unable to drop slot '${slot}': it is active (held by ${await holder(c, s.activePid)}); stop that consumer first, or use --force to terminate it`);
      }
      await c.query('SELECT pg_terminate_backend($1)', [s.activePid]);
      const until = Date.now() + 10_000;
      while (Date.now() < until && (await getSlot(c, slot))?.active) await sleep(100);
    }
    try {
      await c.query('SELECT pg_drop_replication_slot($1)', [slot]);
      return true;
    } catch (err) {
      const e = err as { code?: string; message: string };
      if (e.code === '42704') return false; // dropped meanwhile
      if (e.code === '55006' && Date.now() < deadline) continue; // became active again: retry within the wait
      throw new PgarkError(`unable to drop slot '${slot}': ${e.message}`);
    }
  }
}

/**
 * `pgark slots drop`: a slot a pgark set records for a subscriber is refused (pgark sets drop
 * --subscriber removes the subscription too) unless forced; an active slot likewise.
 */
export async function dropSlotChecked(c: Client, slot: string, force: boolean): Promise<{ slot: string; dropped: boolean; owner?: { set: string; subscriber: string } }> {
  const info = (await listSlots(c)).find((s) => s.slot === slot);
  if (!info) throw new NotFoundError(slot, `unable to drop slot '${slot}': no such replication slot (pgark slots list shows them)`);
  if (info.owner && !force) {
    throw new InvalidInputError(`unable to drop slot '${slot}': it belongs to subscriber '${info.owner.subscriber}' of set '${info.owner.set}'; ` +
      `use pgark sets drop ${info.owner.set} --subscriber ${info.owner.subscriber} (it also removes the subscription), or --force`);
  }
  const dropped = await dropSlot(c, slot, { force, missingOk: true });
  return { slot, dropped, ...(info.owner ? { owner: info.owner } : {}) };
}
