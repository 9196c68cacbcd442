/**
 * pgoutput changes -> SQL for the agent apply worker (pure, no I/O).
 *
 * Tuples arrive with their values in PostgreSQL's text output form (the apply worker gives every
 * relation column an identity parser, see `rawTextRelation`), so a value goes back to the target
 * as an untyped string literal that the target coerces to the column's type: no lossy round trip
 * through JavaScript numbers or Dates. Statements carry their values inline (quoted literals, not
 * bind parameters) so that one source transaction goes to the target as few multi-statement
 * simple queries, usually one round trip, instead of one round trip per row; quoting is
 * quoteLiteral's (E'' with doubled backslashes, so independent of standard_conforming_strings).
 *
 * Rules, as PostgreSQL's own apply worker:
 * - insert: INSERT of the published columns; consecutive inserts into the same relation with
 *   the same columns become one multi-row INSERT;
 * - update/delete: the row is found by the replica identity: the key columns (the old key when
 *   the key changed, else the new tuple's), or, for REPLICA IDENTITY FULL, every old column
 *   (`IS NULL` for nulls, `::text` comparison for types without an equality operator), one row
 *   only (ctid); unchanged TOAST values (undefined) are left out of SET;
 * - truncate: TRUNCATE of the relations, RESTART IDENTITY when the source used it, never CASCADE;
 * - operations the set does not replicate are skipped (pgoutput already filters by the
 *   publication's publish option; this is the defensive check).
 */
import type { Operation } from './set-meta.js';
import { qualified, quoteIdent, quoteLiteral } from './set-catalog.js';
import { TableRuns } from './apply-runs.js';

export interface RelColumn {
  name: string;
  typeOid: number;
  /** Part of the replica identity key (flags bit 1). */
  flags: number;
}
export interface Rel {
  relationOid: number;
  schema: string;
  name: string;
  replicaIdentity: 'default' | 'nothing' | 'full' | 'index';
  columns: RelColumn[];
  keyColumns: string[];
}
/** Text values; null = SQL NULL; undefined = unchanged TOAST value (updates only). */
export type Tuple = Record<string, unknown>;

export type ChangeMessage =
  | { tag: 'insert'; relation: Rel; new: Tuple }
  | { tag: 'update'; relation: Rel; key: Tuple | null; old: Tuple | null; new: Tuple }
  | { tag: 'delete'; relation: Rel; key: Tuple | null; old: Tuple | null }
  | { tag: 'truncate'; cascade: boolean; restartIdentity: boolean; relations: Rel[] };

/** Types without a default btree equality operator: compared as text in REPLICA IDENTITY FULL lookups. */
const NO_EQUALITY_TYPES = new Set([114 /* json */, 142 /* xml */, 600 /* point */, 601 /* lseg */, 602 /* path */, 603 /* box */, 604 /* polygon */, 628 /* line */, 718 /* circle */]);

/** 'schema.table' as Subscriber.pendingTables and pgark.apply_tables name relations. */
export function relationKey(r: { schema: string; name: string }): string {
  return `${r.schema}.${r.name}`;
}

/** A value as SQL: NULL or a quoted literal of its text form. */
export function sqlValue(v: unknown): string {
  if (v === null) return 'NULL';
  if (typeof v === 'string') return quoteLiteral(v);
  throw new Error(`unexpected ${typeof v} value in a pgoutput tuple (only text-format values are supported)`);
}

function relName(r: Rel): string {
  return qualified({ schema: r.schema, table: r.name });
}

/** The WHERE condition that finds the row an update/delete refers to. */
/** How a statement takes a value: inline as a literal (default), or as a $n parameter of a prepared statement. */
export type Param = (v: unknown) => string;

export function identityCondition(rel: Rel, key: Tuple | null, old: Tuple | null, fallback: Tuple | null, p: Param = sqlValue): string {
  if (rel.replicaIdentity === 'full') {
    const src = old ?? fallback;
    if (!src) throw new Error(`no old row for ${relationKey(rel)} (REPLICA IDENTITY FULL)`);
    const conds: string[] = [];
    for (const c of rel.columns) {
      const v = src[c.name];
      if (v === undefined) continue;
      if (v === null) conds.push(`${quoteIdent(c.name)} IS NULL`);
      else if (NO_EQUALITY_TYPES.has(c.typeOid)) conds.push(`${quoteIdent(c.name)}::text = ${p(v)}`);
      else conds.push(`${quoteIdent(c.name)} = ${p(v)}`);
    }
    const t = relName(rel);
    return `ctid = (SELECT ctid FROM ${t} WHERE ${conds.length ? conds.join(' AND ') : 'true'} LIMIT 1)`;
  }
  if (rel.keyColumns.length === 0) {
    throw new Error(`relation ${relationKey(rel)} has no replica identity key: updates and deletes cannot be applied`);
  }
  const src = key ?? old ?? fallback;
  if (!src) throw new Error(`no key values for ${relationKey(rel)}`);
  return rel.keyColumns
    .map((k) => {
      const v = src[k];
      if (v === undefined) throw new Error(`key column ${k} of ${relationKey(rel)} missing from the change`);
      return v === null ? `${quoteIdent(k)} IS NULL` : `${quoteIdent(k)} = ${p(v)}`;
    })
    .join(' AND ');
}

export function updateSql(rel: Rel, key: Tuple | null, old: Tuple | null, nw: Tuple, p: Param = sqlValue): string | undefined {
  const sets: string[] = [];
  for (const c of rel.columns) {
    const v = nw[c.name];
    if (v === undefined) continue; // unchanged TOAST value
    sets.push(`${quoteIdent(c.name)} = ${p(v)}`);
  }
  if (sets.length === 0) return undefined;
  return `UPDATE ${relName(rel)} SET ${sets.join(', ')} WHERE ${identityCondition(rel, key, old, nw, p)}`;
}

export function deleteSql(rel: Rel, key: Tuple | null, old: Tuple | null, p: Param = sqlValue): string {
  return `DELETE FROM ${relName(rel)} WHERE ${identityCondition(rel, key, old, null, p)}`;
}

/**
 * Prepared statements of one target session, by statement text: single-row statements run as
 * `EXECUTE pgark_pN(literals)`, which the server neither parses nor plans again (the statement
 * is PREPAREd, in the same batch, the first time its shape appears). At most `max` shapes; more
 * run as plain statements.
 */
export class PreparedCache {
  private names = new Map<string, string>();
  constructor(private readonly max = 500) {}
  /** The SQL running `build` with its values: PREPARE (first time) + EXECUTE, or the plain statement. */
  statements(build: (p: Param) => string | undefined): string[] {
    const values: unknown[] = [];
    const tmpl = build((v) => {
      values.push(v);
      return `$${values.length}`;
    });
    if (tmpl === undefined) return [];
    let name = this.names.get(tmpl);
    const out: string[] = [];
    if (!name) {
      if (this.names.size >= this.max) return [build(sqlValue)!];
      name = `pgark_p${this.names.size + 1}`;
      this.names.set(tmpl, name);
      out.push(`PREPARE ${name} AS ${tmpl}`);
    }
    out.push(values.length ? `EXECUTE ${name}(${values.map(sqlValue).join(', ')})` : `EXECUTE ${name}`);
    return out;
  }
}

export function truncateSql(rels: Rel[], restartIdentity: boolean): string {
  return `TRUNCATE ${rels.map(relName).join(', ')}${restartIdentity ? ' RESTART IDENTITY' : ''}`;
}

export interface BatchOptions {
  operations: readonly Operation[];
  /** Rows per multi-row INSERT (default 500). */
  maxInsertRows?: number;
  /** Whether changes of this relation are applied now (tables still being synchronised are not). */
  accept?: (rel: Rel) => boolean;
  /** Run single-row statements as prepared statements of this (target session's) cache. */
  prepared?: PreparedCache;
  /**
   * Whether `rel` is independent on the target (apply-runs.ts runPolicy): its changes are then
   * collected per table and sent as multi-row statements, moved past other tables' changes;
   * `updates`: updates of distinct keys may be merged too. Without it every change stays in place.
   */
  independent?: (rel: Rel) => { updates: boolean } | undefined;
}

/**
 * The SQL of one source transaction, built change by change. `take()` returns the statements
 * collected so far (joined with ';') and empties the buffer, so a caller can send a large
 * transaction in pieces (`bytes` says how much is buffered) and keep memory bounded.
 */
export class SqlBatch {
  private parts: string[] = [];
  private partBytes = 0;
  private insert: { rel: Rel; cols: string[]; head: string; rows: string[]; first?: Tuple } | undefined;
  /** Pending changes of independent relations (emitted before any other change, and by take()). */
  private runs: TableRuns;
  /** Changes turned into SQL (rows for insert/update/delete, relations for truncate). */
  rows = 0;
  /** Changes skipped by the operation filter or `accept`. */
  skipped = 0;
  private readonly maxRows: number;

  constructor(private readonly o: BatchOptions) {
    this.maxRows = o.maxInsertRows ?? 500;
    this.runs = new TableRuns(this.maxRows);
  }

  get bytes(): number {
    return this.partBytes + this.runs.bytes + (this.insert ? this.insert.rows.reduce((n, r) => n + r.length + 1, this.insert.head.length) : 0);
  }

  get empty(): boolean {
    return this.parts.length === 0 && !this.insert && this.runs.empty;
  }

  private single(build: (p: Param) => string | undefined): void {
    if (this.o.prepared) for (const s of this.o.prepared.statements(build)) this.push(s);
    else {
      const sql = build(sqlValue);
      if (sql) this.push(sql);
    }
  }

  /** Emit the independent relations' runs (before a change that may see them, and in take()). */
  private flushRuns(): void {
    if (this.runs.empty) return;
    this.runs.emit({ single: (b) => this.single(b), plain: (sql) => this.push(sql) });
  }

  private push(sql: string): void {
    this.parts.push(sql);
    this.partBytes += sql.length + 2;
  }

  private flushInsert(): void {
    const ins = this.insert;
    if (!ins) return;
    this.insert = undefined;
    if (ins.rows.length === 1 && this.o.prepared) {
      for (const s of this.o.prepared.statements((p) => `${ins.head} VALUES (${ins.cols.map((c) => p(ins.first![c])).join(', ')})`)) this.push(s);
      return;
    }
    this.push(`${ins.head} VALUES ${ins.rows.join(', ')}`);
  }

  /** Add one change message; returns false when it was skipped. */
  add(m: ChangeMessage): boolean {
    const ops = this.o.operations;
    if (m.tag === 'truncate') {
      const rels = m.relations.filter((r) => !this.o.accept || this.o.accept(r));
      if (!ops.includes('truncate') || rels.length === 0) {
        this.skipped++;
        return false;
      }
      this.flushInsert();
      this.flushRuns();
      this.push(truncateSql(rels, m.restartIdentity));
      this.rows += rels.length;
      return true;
    }
    if (!ops.includes(m.tag) || (this.o.accept && !this.o.accept(m.relation))) {
      this.skipped++;
      return false;
    }
    const rel = m.relation;
    const policy = this.o.independent?.(rel);
    if (policy) {
      this.flushInsert(); // a dependent relation's insert before it stays before it
      if (m.tag === 'insert') this.runs.insert(rel, m.new);
      else if (m.tag === 'update') this.runs.update(rel, m.key, m.new, policy.updates, (p) => updateSql(rel, m.key, m.old, m.new, p));
      else this.runs.delete(rel, m.key, m.old, (p) => deleteSql(rel, m.key, m.old, p));
      this.rows++;
      return true;
    }
    this.flushRuns(); // this change may see (triggers, foreign keys) what came before it
    if (m.tag === 'insert') {
      const cols = rel.columns.map((c) => c.name).filter((c) => m.new[c] !== undefined);
      const row = `(${cols.map((c) => sqlValue(m.new[c])).join(', ')})`;
      const same = this.insert && this.insert.rel.relationOid === rel.relationOid && this.insert.rel === rel && this.insert.cols.join('\0') === cols.join('\0');
      if (!same || this.insert!.rows.length >= this.maxRows) {
        this.flushInsert();
        this.insert = { rel, cols, head: `INSERT INTO ${relName(rel)} (${cols.map(quoteIdent).join(', ')})`, rows: [], first: m.new };
      }
      this.insert!.rows.push(row);
      this.rows++;
      return true;
    }
    this.flushInsert();
    const prep = this.o.prepared;
    if (m.tag === 'update') {
      if (prep) for (const s of prep.statements((p) => updateSql(rel, m.key, m.old, m.new, p))) this.push(s);
      else {
        const sql = updateSql(rel, m.key, m.old, m.new);
        if (sql) this.push(sql);
      }
    } else if (prep) {
      for (const s of prep.statements((p) => deleteSql(rel, m.key, m.old, p))) this.push(s);
    } else {
      this.push(deleteSql(rel, m.key, m.old));
    }
    this.rows++;
    return true;
  }

  /** Statements so far as one multi-statement text ('' when none); empties the buffer. */
  take(): string {
    this.flushInsert();
    this.flushRuns();
    const text = this.parts.join(';\n');
    this.parts = [];
    this.partBytes = 0;
    return text;
  }
}
