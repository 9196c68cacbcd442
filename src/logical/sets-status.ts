/**
 * `pgark sets status`: per set and subscriber the slot (exists, active, pid), lag in bytes and
 * seconds, WAL the slot retains, table sync states and the last error, with a health verdict
 * for monitoring (exit 0 healthy, 1 warning, 2 unhealthy). Facts are read from the source and
 * each subscriber's target; `judgeSubscriber` (pure) turns them into problems.
 */
import type { Client } from 'pg';
import { connectPg, redactDsn } from '../pg/connect.js';
import { listSets, readSet } from './set-catalog.js';
import type { Operation, SetMeta, Subscriber } from './set-meta.js';
import { pgErrorText, withSource } from './sets-admin.js';
import { tableKey } from './set-validate.js';
import { getSlot, type SlotInfo } from './slots.js';

export type Health = 'ok' | 'warning' | 'unhealthy';
export const HEALTH_EXIT: Record<Health, number> = { ok: 0, warning: 1, unhealthy: 2 };

export interface SubscriberFacts {
  slot?: SlotInfo;
  /** The target could not be read (message). */
  targetError?: string;
  /** native: the subscription on the target. */
  subscription?: { exists: boolean; enabled: boolean; workerRunning: boolean; applyErrors: number; syncErrors: number };
  /** native: pg_subscription_rel states; agent: pendingTables as 'pending'. */
  tables: Array<{ table: string; state: string }>;
  lagSeconds: number | null;
  lastError: string | null;
}

export interface SubscriberStatus {
  name: string;
  mode: 'native' | 'agent';
  slot: string;
  target: string;
  slotExists: boolean;
  active: boolean;
  activePid: number | null;
  lagBytes: number | null;
  lagSeconds: number | null;
  retainedBytes: number | null;
  walStatus: string | null;
  enabled: boolean | null;
  tables: Array<{ table: string; state: string }>;
  lastError: string | null;
  health: Health;
  problems: string[];
}

export interface SetStatus {
  set: string;
  operations: Operation[];
  tables: string[];
  subscribers: SubscriberStatus[];
  health: Health;
}

export interface StatusReport {
  sets: SetStatus[];
  health: Health;
  exitCode: number;
}

const SYNC_STATE: Record<string, string> = { i: 'initializing', d: 'copying', f: 'copied', s: 'synchronized', r: 'ready' };

export function worst(a: Health, b: Health): Health {
  return HEALTH_EXIT[a] >= HEALTH_EXIT[b] ? a : b;
}

function fmtBytes(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

/** The verdict for one subscriber (pure). */
export function judgeSubscriber(sub: Subscriber, f: SubscriberFacts, o: { retainWarnBytes: number }): { health: Health; problems: string[] } {
  const problems: string[] = [];
  let health: Health = 'ok';
  const bad = (h: Health, p: string) => {
    health = worst(health, h);
    problems.push(`${h === 'unhealthy' ? 'UNHEALTHY' : 'WARNING'}: ${p}`);
  };
  if (!f.slot) bad('unhealthy', `slot ${sub.slot} is missing on the source: the subscriber cannot receive changes (re-subscribe)`);
  else {
    if (f.slot.walStatus === 'lost') bad('unhealthy', `slot ${sub.slot} lost WAL it needed (wal_status lost): re-subscribe`);
    else if (f.slot.walStatus === 'unreserved') bad('warning', `slot ${sub.slot} is about to lose WAL (wal_status unreserved, max_slot_wal_keep_size)`);
    if (!f.slot.active && f.slot.retainedBytes !== null && f.slot.retainedBytes > o.retainWarnBytes) {
      bad('warning', `inactive slot ${sub.slot} retains ${fmtBytes(f.slot.retainedBytes)} of WAL (more than ${fmtBytes(o.retainWarnBytes)}): ` +
        `${sub.mode === 'agent' ? 'start pgark sets apply' : 'check the subscription'} or drop the subscriber (pgark sets drop --subscriber ${sub.name})`);
    }
  }
  if (f.targetError) bad('unhealthy', `target unreachable: ${f.targetError}`);
  const s = f.subscription;
  if (sub.mode === 'native' && s && !f.targetError) {
    if (!s.exists) bad('unhealthy', `subscription ${sub.name} does not exist on the target`);
    else if (!s.enabled) bad('unhealthy', `subscription ${sub.name} is disabled on the target`);
    else if (s.applyErrors + s.syncErrors > 0) {
      bad(s.workerRunning ? 'warning' : 'unhealthy', `subscription ${sub.name} has had ${s.applyErrors} apply and ${s.syncErrors} sync error(s)` +
        `${s.workerRunning ? '' : ' and its apply worker is not running'} (see the target's server log)`);
    }
  }
  if (sub.mode === 'agent' && f.lastError) {
    bad(f.slot?.active ? 'warning' : 'unhealthy', `apply worker error: ${f.lastError}`);
  }
  return { health, problems };
}

async function nativeFacts(t: Client, sub: Subscriber, lagBytes: number | null): Promise<Omit<SubscriberFacts, 'slot'>> {
  const r = await t.query<{ oid: number; enabled: boolean; running: boolean; lag_s: string | null }>(
    `SELECT s.oid::int AS oid, s.subenabled AS enabled,
            EXISTS (SELECT 1 FROM pg_stat_subscription st WHERE st.subid = s.oid AND st.relid IS NULL AND st.pid IS NOT NULL) AS running,
            (SELECT extract(epoch FROM now() - coalesce(st.latest_end_time, st.last_msg_receipt_time))::float8::text
               FROM pg_stat_subscription st WHERE st.subid = s.oid AND st.relid IS NULL) AS lag_s
       FROM pg_subscription s WHERE s.subname = $1 AND s.subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())`, [sub.name]);
  const row = r.rows[0];
  if (!row) return { subscription: { exists: false, enabled: false, workerRunning: false, applyErrors: 0, syncErrors: 0 }, tables: [], lagSeconds: null, lastError: null };
  let applyErrors = 0;
  let syncErrors = 0;
  const ver = Number((await t.query<{ v: string }>("SELECT current_setting('server_version_num') AS v")).rows[0]?.v);
  if (ver >= 150000) {
    const e = await t.query<{ a: string; s: string }>('SELECT apply_error_count::text AS a, sync_error_count::text AS s FROM pg_stat_subscription_stats WHERE subid = $1', [row.oid]);
    applyErrors = Number(e.rows[0]?.a ?? 0);
    syncErrors = Number(e.rows[0]?.s ?? 0);
  }
  const rel = await t.query<{ schema: string; table: string; state: string }>(
    `SELECT n.nspname AS schema, k.relname AS table, sr.srsubstate AS state FROM pg_subscription_rel sr
       JOIN pg_class k ON k.oid = sr.srrelid JOIN pg_namespace n ON n.oid = k.relnamespace WHERE sr.srsubid = $1 ORDER BY 1, 2`, [row.oid]);
  const lagSeconds = lagBytes === 0 ? 0 : row.lag_s === null ? null : Math.max(0, Number(row.lag_s));
  return {
    subscription: { exists: true, enabled: row.enabled, workerRunning: row.running, applyErrors, syncErrors },
    tables: rel.rows.map((x) => ({ table: tableKey(x), state: SYNC_STATE[x.state] ?? x.state })),
    lagSeconds,
    lastError: applyErrors + syncErrors > 0 ? `${applyErrors} apply error(s), ${syncErrors} sync error(s) (pg_stat_subscription_stats; details in the target's server log)` : null,
  };
}

async function agentFacts(t: Client, set: string, sub: Subscriber, lagBytes: number | null): Promise<Omit<SubscriberFacts, 'slot'>> {
  const tables = (sub.pendingTables ?? []).map((x) => ({ table: x, state: 'pending' }));
  const cols = await t.query<{ attname: string }>(
    "SELECT attname::text AS attname FROM pg_attribute WHERE attrelid = to_regclass('pgark.apply_position') AND attnum > 0 AND NOT attisdropped");
  const names = cols.rows.map((x) => x.attname);
  if (names.length === 0) return { tables, lagSeconds: null, lastError: 'no pgark.apply_position table on the target (subscribe again)' };
  const timeCol = names.includes('commit_time') ? 'coalesce(commit_time, updated_at)' : names.includes('updated_at') ? 'updated_at' : 'NULL::timestamptz';
  const errCol = names.includes('last_error') ? 'last_error' : 'NULL::text';
  const r = await t.query<{ lag_s: string | null; last_error: string | null }>(
    `SELECT extract(epoch FROM now() - ${timeCol})::float8::text AS lag_s, ${errCol} AS last_error FROM pgark.apply_position WHERE subscription = ANY($1::text[]) ORDER BY subscription = $2 DESC LIMIT 1`, [[`${set}.${sub.name}`, sub.name], `${set}.${sub.name}`]);
  const row = r.rows[0];
  if (!row) return { tables, lagSeconds: null, lastError: `no row for ${sub.name} in pgark.apply_position on the target (subscribe again)` };
  return { tables, lagSeconds: lagBytes === 0 ? 0 : row.lag_s === null ? null : Math.max(0, Number(row.lag_s)), lastError: row.last_error };
}

async function subscriberStatus(c: Client, set: string, sub: Subscriber, retainWarnBytes: number): Promise<SubscriberStatus> {
  const slot = await getSlot(c, sub.slot);
  const lagBytes = slot?.lagBytes ?? null;
  let facts: SubscriberFacts;
  try {
    const t = await connectPg(sub.target, 'pgark sets status');
    try {
      facts = { slot, ...(sub.mode === 'native' ? await nativeFacts(t, sub, lagBytes) : await agentFacts(t, set, sub, lagBytes)) };
    } finally {
      await t.end().catch(() => undefined);
    }
  } catch (err) {
    facts = { slot, targetError: `${redactDsn(sub.target)}: ${pgErrorText(err)}`, tables: [], lagSeconds: null, lastError: null };
  }
  const verdict = judgeSubscriber(sub, facts, { retainWarnBytes });
  return {
    name: sub.name, mode: sub.mode, slot: sub.slot, target: redactDsn(sub.target),
    slotExists: !!slot, active: slot?.active ?? false, activePid: slot?.activePid ?? null, lagBytes,
    lagSeconds: facts.lagSeconds, retainedBytes: slot?.retainedBytes ?? null, walStatus: slot?.walStatus ?? null,
    enabled: facts.subscription ? facts.subscription.enabled : null, tables: facts.tables,
    lastError: facts.targetError ?? facts.lastError, health: verdict.health, problems: verdict.problems,
  };
}

export async function setsStatus(o: { sourceDsn?: string; set?: string; retainWarnBytes: number }): Promise<StatusReport> {
  return withSource(o.sourceDsn, async (c) => {
    const metas: SetMeta[] = o.set !== undefined ? [await readSet(c, o.set)] : await listSets(c);
    const sets: SetStatus[] = [];
    let health: Health = 'ok';
    for (const m of metas) {
      const subscribers: SubscriberStatus[] = [];
      for (const s of m.subscribers) subscribers.push(await subscriberStatus(c, m.set, s, o.retainWarnBytes));
      const h = subscribers.reduce<Health>((acc, s) => worst(acc, s.health), 'ok');
      health = worst(health, h);
      sets.push({ set: m.set, operations: m.operations, tables: m.tables.map(tableKey), subscribers, health: h });
    }
    return { sets, health, exitCode: HEALTH_EXIT[health] };
  });
}

/** Human-readable status lines. */
export function formatStatus(r: StatusReport): string[] {
  const lines: string[] = [];
  if (r.sets.length === 0) lines.push('no replication sets on the source (pgark sets create makes one)');
  for (const s of r.sets) {
    lines.push(`set ${s.set}: ${s.health}, operations ${s.operations.join(',')}, ${s.subscribers.length} subscriber(s)`);
    for (const x of s.subscribers) {
      const slot = x.slotExists ? `slot ${x.slot} ${x.active ? `active (pid ${x.activePid})` : 'inactive'}` : `slot ${x.slot} MISSING`;
      const lag = `lag ${x.lagBytes === null ? '?' : fmtBytes(x.lagBytes)}${x.lagSeconds === null ? '' : ` / ${x.lagSeconds.toFixed(1)} s`}`;
      const retained = x.retainedBytes === null ? '' : `, retains ${fmtBytes(x.retainedBytes)}${x.walStatus ? ` (${x.walStatus})` : ''}`;
      lines.push(`  ${x.name} (${x.mode}) -> ${x.target}: ${x.health}; ${slot}; ${lag}${retained}${x.enabled === false ? '; DISABLED' : ''}`);
      if (x.tables.length > 0) lines.push(`    tables: ${x.tables.map((t) => `${t.table}=${t.state}`).join(', ')}`);
      if (x.lastError) lines.push(`    last error: ${x.lastError}`);
      for (const p of x.problems) lines.push(`    ${p}`);
    }
  }
  return lines;
}
