/**
 * Set administration on the source: `pgark sets create`, `add-table`, `remove-table` and `drop`.
 * Every change is validated first and made in one source transaction together with the set
 * metadata (the publication's comment). Native subscribers are refreshed on their targets after
 * a table change; agent subscribers get added tables as pendingTables for the apply worker.
 * Drop order: subscription (disable, detach slot, drop) on the target, then the slot on the
 * source, then the metadata, and last the publication, so no slot is left behind.
 */
import type { Client } from 'pg';
import { InvalidInputError, PgarkError } from '../common/errors.js';
import { log } from '../common/log.js';
import { connectPg, redactDsn } from '../pg/connect.js';
import { publishedTables, qualified, quoteIdent, readSet, writeSet } from './set-catalog.js';
import { checkName, parseOperations, publicationName, SET_META_FORMAT, type SetMeta, type SetScope, type SetTable, type Subscriber } from './set-meta.js';
import {
  buildSetTables, coverageProblems, createPublicationSql, parseColumnList, parseTableList,
  parseTableName, serverProblems, tableKey, tableProblems, tableSpec, throwProblems,
} from './set-validate.js';
import { identityCoverage, missingSchemas, serverFacts, tableFacts, tablesOfScope } from './set-facts.js';
import { dropSlot } from './slots.js';
import { syncStructure } from './structure-sync.js';

const APP = 'pgark sets';

export async function withSource<T>(dsn: string | undefined, fn: (c: Client) => Promise<T>): Promise<T> {
  const c = await connectPg(dsn, APP);
  try {
    return await fn(c);
  } finally {
    await c.end().catch(() => undefined);
  }
}

/** A PostgreSQL error with its detail and hint, for messages. */
export function pgErrorText(err: unknown): string {
  const e = err as { message?: string; detail?: string; hint?: string };
  return [e.message ?? String(err), e.detail ? `(${e.detail})` : '', e.hint ? `hint: ${e.hint}` : ''].filter(Boolean).join(' ');
}

async function inTransaction<T>(c: Client, what: string, fn: () => Promise<T>): Promise<T> {
  await c.query('BEGIN');
  try {
    const out = await fn();
    await c.query('COMMIT');
    return out;
  } catch (err) {
    await c.query('ROLLBACK').catch(() => undefined);
    if (err instanceof PgarkError) throw err;
    throw new PgarkError(`unable to ${what}: ${pgErrorText(err)}`);
  }
}

export interface CreateSetOptions {
  set: string;
  sourceDsn?: string;
  tables?: string;
  schema?: string;
  allTables?: boolean;
  operations?: string;
  rowFilters?: string[];
  columns?: string[];
}

/** The scope and tables from the options (pure). */
export function planCreate(o: CreateSetOptions): { scope: SetScope; tables: SetTable[] } {
  const given = [o.tables !== undefined, o.schema !== undefined, !!o.allTables].filter(Boolean).length;
  if (given !== 1) throw new InvalidInputError('name what the set replicates: exactly one of --tables a,b, --schema s or --all-tables');
  const filters = [...(o.rowFilters ?? []), ...(o.columns ?? [])];
  if (o.tables === undefined && filters.length > 0) {
    throw new InvalidInputError('--row-filter and --columns apply to tables named with --tables (not with --schema or --all-tables)');
  }
  if (o.allTables) return { scope: { kind: 'all-tables' }, tables: [] };
  if (o.schema !== undefined) {
    const schemas = o.schema.split(',').map((s) => s.trim()).filter(Boolean).map((s) => parseTableName(s).table);
    if (schemas.length === 0) throw new InvalidInputError('--schema: name at least one schema');
    return { scope: { kind: 'schema', schemas }, tables: [] };
  }
  return { scope: { kind: 'tables' }, tables: buildSetTables(parseTableList(o.tables!), o.rowFilters ?? [], o.columns ?? []) };
}

async function publicationExists(c: Client, pub: string): Promise<boolean> {
  return (await c.query('SELECT 1 FROM pg_publication WHERE pubname = $1', [pub])).rows.length > 0;
}

export async function createSet(o: CreateSetOptions): Promise<SetMeta> {
  checkName('set', o.set);
  const pub = publicationName(o.set);
  const operations = parseOperations(o.operations);
  const { scope, tables } = planCreate(o);
  return withSource(o.sourceDsn, async (c) => {
    const problems: string[] = [];
    if (await publicationExists(c, pub)) problems.push(`set '${o.set}' exists already (publication ${pub}): pgark sets list shows it, pgark sets drop removes it`);
    const server = await serverFacts(c);
    problems.push(...serverProblems(server, { needSlot: true, filtersOrColumns: tables.some((t) => t.rowFilter !== undefined || t.columns !== undefined) }));
    let checkTables = tables.map((t) => ({ schema: t.schema, table: t.table }));
    if (scope.kind === 'schema') {
      const missing = await missingSchemas(c, scope.schemas);
      if (missing.length > 0) problems.push(`schema${missing.length > 1 ? 's' : ''} not found on the source: ${missing.join(', ')}`);
      checkTables = await tablesOfScope(c, scope.schemas);
    } else if (scope.kind === 'all-tables') {
      checkTables = await tablesOfScope(c, undefined);
    }
    problems.push(...tableProblems(await tableFacts(c, checkTables), operations));
    throwProblems(`create set '${o.set}'`, problems);

    const now = new Date().toISOString();
    const meta: SetMeta = { format: SET_META_FORMAT, set: o.set, scope, operations, tables, subscribers: [], createdAt: now, updatedAt: now };
    await inTransaction(c, `create set '${o.set}' (CREATE PUBLICATION ${pub})`, async () => {
      await c.query(createPublicationSql(pub, scope, tables, operations));
      throwProblems(`create set '${o.set}'`, coverageProblems(await identityCoverage(c, pub), operations));
      await writeSet(c, meta);
    });
    return meta;
  });
}

// ---------------------------------------------------------------------------
// add-table / remove-table
// ---------------------------------------------------------------------------

export interface TableChangeResult {
  set: string;
  table: string;
  action: 'added' | 'removed';
  /** Native subscribers whose subscription was refreshed. */
  refreshed: string[];
  /** Agent subscribers that will copy the table (pendingTables). */
  pending: string[];
  /** Refreshes that failed (the publication change itself is committed). */
  failed: Array<{ subscriber: string; error: string }>;
  /** Subscribers on whose target add-table created the table's definition (--sync-structure, given or recorded). */
  structureCreated?: string[];
}

async function withTarget<T>(sub: Subscriber, fn: (c: Client) => Promise<T>): Promise<T> {
  const c = await connectPg(sub.target, APP);
  try {
    return await fn(c);
  } finally {
    await c.end().catch(() => undefined);
  }
}

async function refreshNative(subs: Subscriber[], copyData: boolean, out: TableChangeResult): Promise<void> {
  for (const s of subs) {
    try {
      await withTarget(s, (t) => t.query(`ALTER SUBSCRIPTION ${quoteIdent(s.name)} REFRESH PUBLICATION WITH (copy_data = ${copyData})`));
      out.refreshed.push(s.name);
    } catch (err) {
      out.failed.push({ subscriber: s.name, error: `ALTER SUBSCRIPTION ${s.name} REFRESH PUBLICATION on ${redactDsn(s.target)}: ${pgErrorText(err)}` });
    }
  }
}

function requireTablesScope(meta: SetMeta, verb: string): void {
  if (meta.scope.kind !== 'tables') {
    const what = meta.scope.kind === 'schema' ? `every table in schema ${meta.scope.schemas.join(', ')}` : 'every table';
    throw new InvalidInputError(`unable to ${verb} set '${meta.set}': it replicates ${what}; tables are added and removed only in sets made with --tables`);
  }
}

export async function addTable(o: { set: string; sourceDsn?: string; table: string; rowFilter?: string; columns?: string; syncStructure?: boolean }): Promise<TableChangeResult> {
  const t: SetTable = parseTableName(o.table);
  if (o.rowFilter !== undefined) t.rowFilter = o.rowFilter;
  if (o.columns !== undefined) t.columns = parseColumnList(o.columns);
  const key = tableKey(t);
  return withSource(o.sourceDsn, async (c) => {
    const meta = await readSet(c, o.set);
    requireTablesScope(meta, `add a table to`);
    const what = `add table ${key} to set '${o.set}'`;
    const problems: string[] = [];
    if (meta.tables.some((x) => tableKey(x) === key)) problems.push(`${key} is already in the set`);
    problems.push(...serverProblems(await serverFacts(c), { needSlot: false, filtersOrColumns: t.rowFilter !== undefined || t.columns !== undefined }));
    problems.push(...tableProblems(await tableFacts(c, [t]), meta.operations));
    throwProblems(what, problems);
    const natives = meta.subscribers.filter((s) => s.mode === 'native');
    // Subscribers copy the table into a table of the same name: it must be there first. With
    // --sync-structure (given here, or recorded when the subscriber was created) pgark creates
    // its definition on those targets (pg_dump --schema-only of the source), before the
    // publication changes, so a native subscription never sees a table its target lacks.
    const missingOn: string[] = [];
    const toCreate: Subscriber[] = [];
    for (const s of meta.subscribers) {
      const has = await withTarget(s, async (tc) => (await tc.query('SELECT to_regclass($1) IS NOT NULL AS ok', [qualified(t)])).rows[0]?.ok === true);
      if (has) continue;
      if (o.syncStructure || s.syncStructure) toCreate.push(s);
      else if (s.mode === 'native') missingOn.push(`${s.name} (${redactDsn(s.target)})`);
    }
    if (missingOn.length > 0) {
      throwProblems(what, [`table ${key} does not exist on the target of subscriber${missingOn.length > 1 ? 's' : ''} ${missingOn.join(', ')}: ` +
        `create it there first (for example pg_dump --schema-only --table=${qualified(t)} on the source, run on the target), or pass --sync-structure, then add it again`]);
    }
    const structureCreated: string[] = [];
    for (const s of toCreate) {
      await withTarget(s, (tc) => syncStructure({ ...(o.sourceDsn !== undefined ? { sourceDsn: o.sourceDsn } : {}), source: c, target: tc, tables: [t] }));
      structureCreated.push(s.name);
    }
    const pub = publicationName(o.set);
    const out: TableChangeResult = { set: o.set, table: key, action: 'added', refreshed: [], pending: [], failed: [], ...(structureCreated.length ? { structureCreated } : {}) };
    await inTransaction(c, what, async () => {
      await c.query(`ALTER PUBLICATION ${quoteIdent(pub)} ADD TABLE ${tableSpec(t)}`);
      const cov = (await identityCoverage(c, pub)).filter((x) => tableKey(x) === key);
      throwProblems(what, coverageProblems(cov, meta.operations));
      meta.tables.push(t);
      for (const s of meta.subscribers) {
        if (s.mode !== 'agent') continue;
        s.pendingTables = [...(s.pendingTables ?? []).filter((p) => p !== key), key];
        out.pending.push(s.name);
      }
      await writeSet(c, meta);
    });
    await refreshNative(natives, true, out);
    return out;
  });
}

export async function removeTable(o: { set: string; sourceDsn?: string; table: string }): Promise<TableChangeResult> {
  const t = parseTableName(o.table);
  const key = tableKey(t);
  return withSource(o.sourceDsn, async (c) => {
    const meta = await readSet(c, o.set);
    requireTablesScope(meta, 'remove a table from');
    const what = `remove table ${key} from set '${o.set}'`;
    if (!meta.tables.some((x) => tableKey(x) === key)) {
      throwProblems(what, [`${key} is not in the set (it has ${meta.tables.map(tableKey).join(', ') || 'no tables'})`]);
    }
    if (meta.tables.length === 1) throwProblems(what, [`it is the set's only table: drop the set instead (pgark sets drop ${o.set})`]);
    const pub = publicationName(o.set);
    const out: TableChangeResult = { set: o.set, table: key, action: 'removed', refreshed: [], pending: [], failed: [] };
    await inTransaction(c, what, async () => {
      const published = await publishedTables(c, o.set);
      if (published.some((p) => tableKey(p) === key)) await c.query(`ALTER PUBLICATION ${quoteIdent(pub)} DROP TABLE ${qualified(t)}`);
      meta.tables = meta.tables.filter((x) => tableKey(x) !== key);
      for (const s of meta.subscribers) {
        if (s.pendingTables) s.pendingTables = s.pendingTables.filter((p) => p !== key);
      }
      await writeSet(c, meta);
    });
    await refreshNative(meta.subscribers.filter((s) => s.mode === 'native'), false, out);
    return out;
  });
}

// ---------------------------------------------------------------------------
// drop
// ---------------------------------------------------------------------------

export interface DropResult {
  set: string;
  subscribers: Array<{ name: string; mode: 'native' | 'agent'; subscriptionDropped: boolean; slotDropped: boolean }>;
  publicationDropped: boolean;
  notes: string[];
}

/**
 * On the target: disable the subscription, detach it from its slot, drop it. Returns the name
 * pattern of the table-synchronisation slots it may have left on the source
 * (pg_<subid>_sync_<relid>_<target system id>), or undefined when it was not there.
 */
async function dropSubscriptionOnTarget(t: Client, name: string): Promise<string | undefined> {
  const r = await t.query<{ oid: string; sysid: string }>(
    `SELECT s.oid::text AS oid, (SELECT system_identifier::text FROM pg_control_system()) AS sysid FROM pg_subscription s
      WHERE s.subname = $1 AND s.subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())`, [name]);
  const row = r.rows[0];
  if (!row) return undefined;
  const id = quoteIdent(name);
  await t.query(`ALTER SUBSCRIPTION ${id} DISABLE`);
  await t.query(`ALTER SUBSCRIPTION ${id} SET (slot_name = NONE)`);
  await t.query(`DROP SUBSCRIPTION ${id}`);
  return `^pg_${row.oid}_sync_[0-9]+_${row.sysid}$`;
}

/** Table-synchronisation slots of a dropped subscription (left when it was dropped mid-copy with slot_name = NONE). */
async function dropSyncSlots(c: Client, pattern: string, force: boolean): Promise<string[]> {
  const r = await c.query<{ slot_name: string }>('SELECT slot_name FROM pg_replication_slots WHERE slot_name ~ $1', [pattern]);
  const dropped: string[] = [];
  for (const row of r.rows) if (await dropSlot(c, row.slot_name, { force, waitMs: 10_000, missingOk: true })) dropped.push(row.slot_name);
  return dropped;
}

/** The agent's rows in the target's position tables (keyed '<set>.<subscriber>'; the bare name is accepted too). */
async function clearAgentPosition(t: Client, set: string, name: string): Promise<void> {
  const keys = [`${set}.${name}`, name];
  const has = (await t.query("SELECT to_regclass('pgark.apply_position') IS NOT NULL AS ok")).rows[0]?.ok === true;
  if (has) await t.query('DELETE FROM pgark.apply_position WHERE subscription = ANY($1::text[])', [keys]);
  const tables = (await t.query("SELECT to_regclass('pgark.apply_tables') IS NOT NULL AS ok")).rows[0]?.ok === true;
  if (tables) await t.query('DELETE FROM pgark.apply_tables WHERE subscription = ANY($1::text[])', [keys]);
}

export async function dropSet(o: { set: string; sourceDsn?: string; subscriber?: string; force?: boolean }): Promise<DropResult> {
  return withSource(o.sourceDsn, async (c) => {
    const meta = await readSet(c, o.set);
    const out: DropResult = { set: o.set, subscribers: [], publicationDropped: false, notes: [] };
    let subs = meta.subscribers;
    if (o.subscriber !== undefined) {
      subs = subs.filter((s) => s.name === o.subscriber);
      if (subs.length === 0) {
        throw new InvalidInputError(`unable to drop subscriber '${o.subscriber}' of set '${o.set}': no such subscriber (it has ${meta.subscribers.map((s) => s.name).join(', ') || 'none'})`);
      }
    }
    for (const s of subs) {
      let subscriptionDropped = false;
      let slotDropped: boolean;
      const cleanupFailed = (err: unknown) => {
        const text = `could not clean up the target of subscriber ${s.name} (${redactDsn(s.target)}): ${pgErrorText(err)}`;
        out.notes.push(text);
        log.warn(text);
      };
      if (s.mode === 'native') {
        // Target first: the disabled subscription lets go of the slot, detached it leaves the slot alone.
        let syncPattern: string | undefined;
        try {
          syncPattern = await withTarget(s, (t) => dropSubscriptionOnTarget(t, s.name));
          subscriptionDropped = syncPattern !== undefined;
          if (!subscriptionDropped) out.notes.push(`subscription ${s.name} was not on its target (${redactDsn(s.target)}) any more`);
        } catch (err) {
          if (!o.force) {
            throw new PgarkError(`unable to drop subscriber '${s.name}' of set '${o.set}': the target (${redactDsn(s.target)}): ${pgErrorText(err)}; ` +
              'nothing was dropped for it (--force drops the slot anyway and leaves the subscription on the target)');
          }
          cleanupFailed(err);
        }
        // A walsender still streaming to a just-disabled subscription exits within moments.
        slotDropped = await dropSlot(c, s.slot, { force: !!o.force, waitMs: 10_000, missingOk: true });
        if (syncPattern !== undefined) {
          for (const x of await dropSyncSlots(c, syncPattern, !!o.force)) out.notes.push(`dropped table synchronisation slot ${x}`);
        }
      } else {
        // Slot first: a running apply worker holds it (refused unless --force), and must not lose its position rows.
        slotDropped = await dropSlot(c, s.slot, { force: !!o.force, missingOk: true });
        try {
          await withTarget(s, (t) => clearAgentPosition(t, o.set, s.name));
        } catch (err) {
          cleanupFailed(err);
        }
      }
      if (!slotDropped) out.notes.push(`slot ${s.slot} did not exist`);
      meta.subscribers = meta.subscribers.filter((x) => x.name !== s.name);
      await writeSet(c, meta);
      out.subscribers.push({ name: s.name, mode: s.mode, subscriptionDropped, slotDropped });
    }
    if (o.subscriber === undefined) {
      await c.query(`DROP PUBLICATION ${quoteIdent(publicationName(o.set))}`);
      out.publicationDropped = true;
    }
    return out;
  });
}
