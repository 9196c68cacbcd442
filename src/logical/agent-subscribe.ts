/**
 * `pgark sets subscribe --mode agent`: create the subscriber's logical slot with an exported
 * snapshot, copy the set's tables as of that snapshot into the target, and record the slot's
 * consistent point as the applied position in the same target transaction. Changes committed
 * before the consistent point are in the copy, changes after it come from the slot: nothing is
 * missed or applied twice. Any failure rolls the target back and drops the slot.
 *
 * The copy reads with a cursor (FETCH of `COPY_BATCH` rows, values in text form) and writes
 * multi-row INSERTs, honouring the publication's column lists and row filters
 * (pg_publication_tables.attnames / rowfilter), so memory stays bounded.
 */
import type { Client } from 'pg';
import { spawn } from 'node:child_process';
import { InvalidInputError, PgarkError, causeText } from '../common/errors.js';
import { log } from '../common/log.js';
import { connectPg, redactDsn } from '../pg/connect.js';
import { assertNoPassword, conninfoToUri } from '../pg/conninfo.js';
import { requirePgProgram } from '../pg/pg-bin.js';
import { ensurePositionTables, initPosition, lsnOf, subscriptionKey } from './apply-position.js';
import { sqlValue } from './pgoutput-apply.js';
import { qualified, quoteIdent, readSet, writeSet } from './set-catalog.js';
import { checkName, publicationName, slotName, type Subscriber } from './set-meta.js';
import { dropSlot } from './slots.js';

const COPY_BATCH = 2000;
const RAW_TEXT = { getTypeParser: () => (v: string) => v };

export interface PublishedTable {
  schema: string;
  table: string;
  /** Published columns (column list), in table order. */
  columns: string[];
  /** The publication's row filter (deparsed), or null. */
  rowFilter: string | null;
}

export async function publishedTableDetails(source: Client, set: string): Promise<PublishedTable[]> {
  const r = await source.query<{ schemaname: string; tablename: string; attnames: string[]; rowfilter: string | null }>(
    'SELECT schemaname, tablename, attnames::text[] AS attnames, rowfilter FROM pg_publication_tables WHERE pubname = $1 ORDER BY schemaname, tablename',
    [publicationName(set)],
  );
  return r.rows.map((row) => ({ schema: row.schemaname, table: row.tablename, columns: row.attnames, rowFilter: row.rowfilter }));
}

/** A replication ('database') connection to the source. */
export async function connectReplication(dsn: string | undefined, appName: string): Promise<Client> {
  assertNoPassword(dsn);
  const pg = (await import('pg')).default;
  const c = new pg.Client({ ...(dsn ? { connectionString: conninfoToUri(dsn) } : {}), application_name: appName, replication: 'database', connectionTimeoutMillis: 30_000 } as ConstructorParameters<typeof pg.Client>[0]);
  c.on('error', () => undefined);
  try {
    await c.connect();
  } catch (err) {
    throw new PgarkError(`unable to open a replication connection to the source${dsn ? ` '${redactDsn(dsn)}'` : ''}: ${causeText(err)}`);
  }
  return c;
}

/** CREATE_REPLICATION_SLOT with an exported snapshot (PostgreSQL 15 syntax). */
export async function createSlotWithSnapshot(repl: Client, slot: string, temporary: boolean): Promise<{ consistentPoint: bigint; snapshot: string }> {
  const r = await repl.query<{ consistent_point: string; snapshot_name: string }>(
    `CREATE_REPLICATION_SLOT ${quoteIdent(slot)}${temporary ? ' TEMPORARY' : ''} LOGICAL pgoutput (SNAPSHOT 'export')`,
  );
  const row = r.rows[0];
  if (!row?.snapshot_name) throw new PgarkError(`unable to create slot '${slot}': the server exported no snapshot`);
  return { consistentPoint: lsnOf(row.consistent_point), snapshot: row.snapshot_name };
}

/** Start a read-only repeatable-read transaction on `source` seeing exactly `snapshot`. */
export async function beginSnapshot(source: Client, snapshot: string): Promise<void> {
  await source.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  await source.query(`SET TRANSACTION SNAPSHOT '${snapshot.replace(/'/g, "''")}'`);
}

/** Copy one published table (source snapshot transaction -> target transaction). Returns rows copied. */
export async function copyTable(source: Client, target: Client, t: PublishedTable): Promise<number> {
  const name = qualified(t);
  const cols = t.columns.map(quoteIdent).join(', ');
  const cursor = quoteIdent(`pgark_copy_${t.schema}_${t.table}`.slice(0, 60));
  await source.query(`DECLARE ${cursor} NO SCROLL CURSOR FOR SELECT ${cols} FROM ONLY ${name}${t.rowFilter ? ` WHERE ${t.rowFilter}` : ''}`);
  let total = 0;
  for (;;) {
    const r = await source.query({ text: `FETCH ${COPY_BATCH} FROM ${cursor}`, rowMode: 'array', types: RAW_TEXT });
    if (r.rows.length === 0) break;
    const values = (r.rows as unknown[][]).map((row) => `(${row.map(sqlValue).join(', ')})`).join(', ');
    await target.query(`INSERT INTO ${name} (${cols}) VALUES ${values}`);
    total += r.rows.length;
  }
  await source.query(`CLOSE ${cursor}`);
  return total;
}

/** Tables of `tables` that do not exist on the target. */
async function missingOnTarget(target: Client, tables: PublishedTable[]): Promise<string[]> {
  const missing: string[] = [];
  for (const t of tables) {
    const r = await target.query<{ ok: boolean }>('SELECT to_regclass($1) IS NOT NULL AS ok', [qualified(t)]);
    if (!r.rows[0]?.ok) missing.push(`${t.schema}.${t.table}`);
  }
  return missing;
}

/** Create the tables' definitions on the target from `pg_dump --schema-only` of the source. */
export async function syncStructureFromDump(sourceDsn: string | undefined, target: Client, tables: PublishedTable[]): Promise<void> {
  const missing = new Set(await missingOnTarget(target, tables));
  const todo = tables.filter((t) => missing.has(`${t.schema}.${t.table}`));
  if (todo.length === 0) return;
  const pgDump = requirePgProgram('pg_dump');
  const args = ['--schema-only', '--no-owner', '--no-privileges', '--no-publications', '--no-subscriptions', '--no-comments'];
  for (const t of todo) args.push('-t', qualified(t));
  if (sourceDsn) args.push('-d', sourceDsn);
  const sql = await new Promise<string>((resolve, reject) => {
    const p = spawn(pgDump, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve(out) : reject(new PgarkError(`pg_dump --schema-only failed (exit ${code}): ${err.trim().slice(0, 500)}`))));
  });
  const schemas = [...new Set(todo.map((t) => t.schema))];
  for (const s of schemas) await target.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(s)}`);
  // psql meta-commands (\restrict ...) are not SQL; CREATE SCHEMA of an existing schema would fail
  const body = sql.split('\n').filter((l) => !l.startsWith('\\') && !/^CREATE SCHEMA /.test(l)).join('\n');
  await target.query(body);
  await target.query("SELECT pg_catalog.set_config('search_path', 'public', false)");
}

export interface SubscribeAgentOptions {
  set: string;
  sourceDsn?: string;
  targetDsn: string;
  name?: string;
  syncStructure?: boolean;
  copyData: boolean;
}

/** Create an agent subscriber: slot + initial copy + position, recorded in the set's metadata. */
export async function subscribeAgent(o: SubscribeAgentOptions): Promise<Subscriber> {
  const name = checkName('subscriber', o.name ?? 'agent');
  const slot = slotName(o.set, name);
  const subscription = subscriptionKey(o.set, name);
  const source = await connectPg(o.sourceDsn, 'pgark-sets');
  let target: Client | undefined;
  let repl: Client | undefined;
  let slotCreated = false;
  try {
    const meta = await readSet(source, o.set);
    if (meta.subscribers.some((s) => s.name === name)) throw new InvalidInputError(`set '${o.set}' already has a subscriber '${name}' (pgark sets drop ${o.set} --subscriber ${name} removes it)`);
    const existing = await source.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1', [slot]);
    if (existing.rows.length > 0) throw new InvalidInputError(`replication slot '${slot}' already exists on the source (pgark slots drop ${slot} removes it)`);
    const tables = await publishedTableDetails(source, o.set);
    target = await connectPg(o.targetDsn, 'pgark-sets');
    if (o.syncStructure) await syncStructureFromDump(o.sourceDsn, target, tables);
    const missing = await missingOnTarget(target, tables);
    if (missing.length > 0) throw new InvalidInputError(`tables missing on the target: ${missing.join(', ')} (create them, or subscribe with --sync-structure)`);
    await ensurePositionTables(target);

    repl = await connectReplication(o.sourceDsn, 'pgark-sets-slot');
    const { consistentPoint, snapshot } = await createSlotWithSnapshot(repl, slot, false);
    slotCreated = true;
    await target.query('BEGIN');
    if (o.copyData) {
      await beginSnapshot(source, snapshot);
      for (const t of tables) {
        const n = await copyTable(source, target, t);
        log.info(`copied ${n} rows of ${t.schema}.${t.table}`);
      }
      await source.query('COMMIT');
    }
    await initPosition(target, subscription, consistentPoint);
    await target.query('COMMIT');
    await repl.end().catch(() => undefined);
    repl = undefined;

    const sub: Subscriber = { name, mode: 'agent', slot, target: o.targetDsn, createdAt: new Date().toISOString(), ...(o.syncStructure ? { syncStructure: true } : {}) };
    const fresh = await readSet(source, o.set);
    fresh.subscribers = [...fresh.subscribers.filter((s) => s.name !== name), sub];
    await writeSet(source, fresh);
    return sub;
  } catch (err) {
    await target?.query('ROLLBACK').catch(() => undefined);
    await source.query('ROLLBACK').catch(() => undefined);
    await repl?.end().catch(() => undefined);
    if (slotCreated) {
      await dropSlot(source, slot, { force: true, waitMs: 10_000, missingOk: true }).catch((e: unknown) => log.warn(`unable to drop slot ${slot} after the failure: ${causeText(e)}`));
    }
    throw err;
  } finally {
    await target?.end().catch(() => undefined);
    await source.end().catch(() => undefined);
  }
}
