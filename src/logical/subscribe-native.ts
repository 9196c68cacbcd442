/**
 * `pgark sets subscribe <set> --mode native`: a PostgreSQL subscription on the target that uses a
 * pgark-named logical slot (pgoutput) on the source.
 *
 * Order, so that nothing is left behind on failure: checks (set exists, subscriber name free, no
 * such slot on the source, no such subscription on the target, the tables exist on the target or
 * --sync-structure creates them) -> slot on the source -> CREATE SUBSCRIPTION on the target
 * (create_slot = false, the slot above) -> subscriber recorded in the set's metadata. A failure
 * after the slot was created undoes what was done (subscription, then slot). Optionally waits until
 * every table of the subscription is synchronised (pg_subscription_rel state 'r' or 's').
 *
 * The source DSN is stored in the target's catalog (pg_subscription.subconninfo) and used by the
 * target *server*: it holds no password, so the target server's OS user needs a ~/.pgpass (or
 * trust/cert authentication) for the source.
 */
import type { Client } from 'pg';
import { InvalidInputError, PgarkError } from '../common/errors.js';
import { log } from '../common/log.js';
import { connectPg, redactDsn } from '../pg/connect.js';
import { publishedTables, qualified, quoteIdent, quoteLiteral, readSet, writeSet } from './set-catalog.js';
import { checkName, publicationName, slotName, type Subscriber } from './set-meta.js';
import { defaultSubscriberName, existingTables, sourceConninfoForTarget, syncStructure } from './structure-sync.js';

export interface SubscribeNativeOptions {
  set: string;
  /** Source database (the set's publication); undefined = the libpq environment. */
  sourceDsn?: string;
  /** Target database (where the subscription is created); no password. */
  targetDsn: string;
  /** Subscriber (and subscription) name; default: the target's database name, sanitised. */
  name?: string;
  /** Create the set's table definitions on the target first (pg_dump --schema-only). */
  syncStructure: boolean;
  /** Copy the tables' existing rows (the subscription's initial table sync). */
  copyData: boolean;
  /** Wait at most this many seconds for every table to be synchronised; undefined/0 = do not wait. */
  waitSync?: number;
  /** Notes for the user (tables skipped, objects not copied); default: logged as warnings. */
  onNote?: (text: string) => void;
}

const APP = 'pgark sets subscribe';

export async function subscribeNative(o: SubscribeNativeOptions): Promise<Subscriber> {
  checkName('set', o.set);
  if (o.name !== undefined) checkName('subscriber', o.name);
  const note = o.onNote ?? ((t: string) => log.warn(t));
  const sourceConninfo = sourceConninfoForTarget(o.sourceDsn, process.env);
  const source = await connectPg(o.sourceDsn, APP);
  let target: Client | undefined;
  try {
    target = await connectPg(o.targetDsn, APP);
    const meta = await readSet(source, o.set);
    const db = (await target.query<{ db: string }>('SELECT current_database() AS db')).rows[0]!.db;
    const name = o.name ?? defaultSubscriberName(db, o.set);
    const slot = slotName(o.set, name);
    if (meta.subscribers.some((s) => s.name === name)) {
      throw new InvalidInputError(`set '${o.set}' already has a subscriber '${name}' (pgark sets list shows it; choose another with --subscriber, or drop it with pgark sets drop ${o.set} --subscriber ${name})`);
    }
    await refuseExisting(source, target, slot, name);
    const tables = await publishedTables(source, o.set);
    if (o.syncStructure) {
      const r = await syncStructure({ ...(o.sourceDsn !== undefined ? { sourceDsn: o.sourceDsn } : {}), source, target, tables });
      for (const n of r.notes) note(`sets subscribe: ${n}`);
      if (r.created.length) log.info(`sets subscribe: created ${r.created.length} table(s) on the target: ${r.created.map(qualified).join(', ')}`);
    } else {
      const have = await existingTables(target, tables);
      const missing = tables.filter((t) => !have.has(qualified(t)));
      if (missing.length) {
        throw new InvalidInputError(
          `the target has no table ${missing.map(qualified).join(', ')}: create ${missing.length === 1 ? 'it' : 'them'} on the target first, or use --sync-structure`,
        );
      }
    }

    await source.query("SELECT pg_create_logical_replication_slot($1, 'pgoutput')", [slot]).catch((err: Error) => {
      const hint = /wal_level/.test(err.message) ? ' (set wal_level = logical on the source and restart it)'
        : /replication slots are in use|max_replication_slots/.test(err.message) ? ' (raise max_replication_slots on the source, or drop slots left behind: pgark slots list)' : '';
      throw new PgarkError(`unable to create replication slot ${slot} on the source: ${err.message}${hint}`);
    });
    let subscribed = false;
    let sub: Subscriber;
    try {
      await target.query(
        `CREATE SUBSCRIPTION ${quoteIdent(name)} CONNECTION ${quoteLiteral(sourceConninfo)} PUBLICATION ${quoteIdent(publicationName(o.set))} ` +
        `WITH (create_slot = false, slot_name = ${quoteLiteral(slot)}, copy_data = ${o.copyData ? 'true' : 'false'}, enabled = true)`,
      ).catch((err: Error) => {
        throw new PgarkError(`unable to create subscription ${name} on the target: ${err.message}${connectionHint(err.message)}`);
      });
      subscribed = true;
      sub = { name, mode: 'native', slot, target: o.targetDsn, createdAt: new Date().toISOString(), ...(o.syncStructure ? { syncStructure: true } : {}) };
      const fresh = await readSet(source, o.set); // others may have changed the metadata meanwhile
      if (fresh.subscribers.some((s) => s.name === name)) throw new InvalidInputError(`set '${o.set}' got a subscriber '${name}' meanwhile`);
      fresh.subscribers.push(sub);
      await writeSet(source, fresh);
      log.info(`sets subscribe: subscription ${name} on ${redactDsn(o.targetDsn)} uses slot ${slot} (set ${o.set}, ${tables.length} table(s))`);
    } catch (err) {
      await undo(source, target, subscribed ? name : undefined, slot);
      throw err;
    }
    // Recorded: from here on a failure leaves the subscription in place (it is a valid subscriber).
    if (o.waitSync) await waitForSync(target, name, o.waitSync);
    return sub;
  } finally {
    await target?.end().catch(() => undefined);
    await source.end().catch(() => undefined);
  }
}

function connectionHint(msg: string): string {
  if (/password|authentication/i.test(msg)) {
    return ' (the target server connects to the source with the stored connection string, which holds no password: give the target server\'s OS user a ~/.pgpass entry for the source, or use trust/cert authentication)';
  }
  if (/could not connect|connection/i.test(msg)) return ' (the connection string is used by the target server: it must reach the source from there)';
  return '';
}

async function refuseExisting(source: Client, target: Client, slot: string, name: string): Promise<void> {
  const s = await source.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1', [slot]);
  if (s.rows.length) throw new InvalidInputError(`replication slot ${slot} already exists on the source (left behind? pgark slots list / pgark slots drop ${slot})`);
  const t = await target.query(
    'SELECT 1 FROM pg_subscription WHERE subname = $1 AND subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())', [name]);
  if (t.rows.length) throw new InvalidInputError(`the target database already has a subscription named ${name}: choose another subscriber name with --subscriber`);
}

/** Undo a half-made subscription: the subscription (keeping the slot), then the slot. Best effort, logged. */
async function undo(source: Client, target: Client, subscription: string | undefined, slot: string): Promise<void> {
  if (subscription !== undefined) {
    try {
      await target.query(`ALTER SUBSCRIPTION ${quoteIdent(subscription)} DISABLE`);
      await target.query(`ALTER SUBSCRIPTION ${quoteIdent(subscription)} SET (slot_name = NONE)`);
      await target.query(`DROP SUBSCRIPTION ${quoteIdent(subscription)}`);
    } catch (err) {
      log.error(`sets subscribe: unable to drop subscription ${subscription} on the target after a failure: ${(err as Error).message}`);
    }
  }
  // The disabled subscription's walsender may hold the slot for a moment.
  const end = Date.now() + 15_000;
  for (;;) {
    try {
      await source.query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1', [slot]);
      return;
    } catch (err) {
      if (Date.now() > end || !/is active/i.test((err as Error).message)) {
        log.error(`sets subscribe: unable to drop slot ${slot} on the source after a failure (drop it with pgark slots drop ${slot}): ${(err as Error).message}`);
        return;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

export class SyncTimeoutError extends PgarkError {}

export interface TableSyncState {
  table: string;
  /** pg_subscription_rel.srsubstate: i (init), d (copying), f (finished copy), s (synchronised), r (ready). */
  state: string;
}

/** The subscription's per-table sync states on the target. */
export async function subscriptionTableStates(target: Client, subscription: string): Promise<TableSyncState[]> {
  const r = await target.query<{ rel: string; state: string }>(
    `SELECT sr.srrelid::regclass::text AS rel, sr.srsubstate AS state FROM pg_subscription_rel sr
       JOIN pg_subscription s ON s.oid = sr.srsubid
      WHERE s.subname = $1 AND s.subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())
      ORDER BY 1`,
    [subscription],
  );
  return r.rows.map((row) => ({ table: row.rel, state: row.state }));
}

/** Wait until every table of the subscription is 'r' or 's', at most `seconds`. */
export async function waitForSync(target: Client, subscription: string, seconds: number): Promise<void> {
  const end = Date.now() + seconds * 1000;
  for (;;) {
    const states = await subscriptionTableStates(target, subscription);
    const pending = states.filter((s) => s.state !== 'r' && s.state !== 's');
    if (pending.length === 0) return;
    if (Date.now() > end) {
      const errors = await target.query<{ n: string }>('SELECT sync_error_count::text AS n FROM pg_stat_subscription_stats WHERE subname = $1', [subscription])
        .then((r) => Number(r.rows[0]?.n ?? 0)).catch(() => 0);
      throw new SyncTimeoutError(
        `subscription ${subscription} was created, but after ${seconds} s ${pending.length} table(s) are still synchronising ` +
        `(${pending.map((p) => `${p.table}: ${p.state}`).join(', ')})${errors ? `; ${errors} table sync error(s): see the target server's log` : ''}; ` +
        'it goes on in the background (pgark sets status shows it)',
      );
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}
