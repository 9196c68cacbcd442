/**
 * Batching of an independent table's changes into multi-row statements (pure, no I/O).
 *
 * A relation is *independent* on the target when nothing a statement on it does can see another
 * table, or run user code: a plain table (relkind r, no inheritance children), no triggers (user
 * triggers, and the RI triggers of foreign keys on either side), no rules, no row security. The
 * final contents of an independent table then depend only on the order of its own changes, so
 * within one target transaction (nothing is visible before its commit) its changes may be moved
 * relative to other tables' changes, and grouped per table. `TableRuns` keeps, per table, its
 * changes in source order as segments:
 * - a run of inserts with the same columns -> one multi-row INSERT (VALUES keeps their order);
 * - a run of updates of distinct replica-identity keys that do not change the key -> one
 *   `UPDATE ... FROM (VALUES ...)` per column shape. A second update of a key already in the
 *   run is folded into it (its new values win; unchanged TOAST values keep the earlier ones):
 *   the table's final state is the same, and with no triggers nothing can observe the step in
 *   between. Allowed only when every unique/exclusion index of the target lies within the key
 *   columns (`updates`), so an update that keeps its key cannot collide with another row's
 *   value in the middle of a multi-row statement (unique checks are immediate);
 * - a run of deletes by key -> one `DELETE ... USING (VALUES ...)`;
 * - anything else (REPLICA IDENTITY FULL updates/deletes, key changes, null keys) stays a
 *   single statement at its place in the table's sequence and ends the run before it.
 * A change of a different kind ends the run (delete then re-insert of a key: two segments, in
 * order). Changes of other (dependent) relations and TRUNCATE make the caller emit every
 * table's runs first (pgoutput-apply.ts SqlBatch), so they see exactly the rows before them.
 *
 * VALUES lists carry a first row of typed NULLs, `(NULL::table).column`, so the literals get the
 * target column's type; a NULL never equals a key, so that row matches nothing.
 */
import { qualified, quoteIdent } from './set-catalog.js';
import { sqlValue, type Param, type Rel, type Tuple } from './pgoutput-apply.js';

/** What the target's catalog says about a relation (apply-groups.ts reads it). */
export interface TargetRelInfo {
  /** Plain table without triggers, rules, row security or inheritance children. */
  independent: boolean;
  /** Columns of each unique or exclusion index; null for an expression or partial index. */
  uniqueIndexes: Array<string[] | null>;
}

/** How changes of `rel` may be batched: undefined = keep them in place (pure). */
export function runPolicy(info: TargetRelInfo | undefined, rel: Rel): { updates: boolean } | undefined {
  if (!info || !info.independent) return undefined;
  const keys = new Set(rel.replicaIdentity === 'full' ? [] : rel.keyColumns);
  const updates = rel.replicaIdentity !== 'full' && keys.size > 0 && info.uniqueIndexes.every((cols) => cols !== null && cols.every((c) => keys.has(c)));
  return { updates };
}

type Segment =
  | { kind: 'insert'; rel: Rel; cols: string[]; rows: string[]; firsts: Tuple[] }
  | { kind: 'update'; rel: Rel; rows: Map<string, Tuple> }
  | { kind: 'delete'; rel: Rel; keys: Map<string, Tuple> }
  | { kind: 'sql'; build: (p: Param) => string | undefined };

/** The key values of a change when they are all present and non-null, else undefined. */
function keyOf(rel: Rel, src: Tuple | null): Tuple | undefined {
  if (!src || rel.replicaIdentity === 'full' || rel.keyColumns.length === 0) return undefined;
  const k: Tuple = {};
  for (const c of rel.keyColumns) {
    const v = src[c];
    if (typeof v !== 'string') return undefined;
    k[c] = v;
  }
  return k;
}

function keyText(rel: Rel, k: Tuple): string {
  return JSON.stringify(rel.keyColumns.map((c) => k[c]));
}

function tupleBytes(t: Tuple): number {
  let n = 0;
  for (const v of Object.values(t)) n += typeof v === 'string' ? v.length + 4 : 5;
  return n;
}

/** `(NULL::"s"."t")."c"`: a NULL of the target column's type. */
function typedNull(rel: Rel, col: string): string {
  return `(NULL::${qualified({ schema: rel.schema, table: rel.name })}).${quoteIdent(col)}`;
}

function valuesList(rel: Rel, cols: string[], rows: Tuple[]): string {
  const head = `(${cols.map((c) => typedNull(rel, c)).join(', ')})`;
  return `(VALUES ${head}, ${rows.map((r) => `(${cols.map((c) => sqlValue(r[c])).join(', ')})`).join(', ')})`;
}

const alias = (cols: string[]) => `pgark_v(${cols.map((_c, i) => `c${i + 1}`).join(', ')})`;

/** Multi-row UPDATE of rows with distinct keys, all setting the same non-key columns `sets`. */
export function multiUpdateSql(rel: Rel, sets: string[], rows: Tuple[]): string {
  const cols = [...rel.keyColumns, ...sets];
  const v = (c: string) => `pgark_v.c${cols.indexOf(c) + 1}`;
  const t = qualified({ schema: rel.schema, table: rel.name });
  return `UPDATE ${t} AS pgark_t SET ${sets.map((c) => `${quoteIdent(c)} = ${v(c)}`).join(', ')} FROM ${valuesList(rel, cols, rows)} AS ${alias(cols)} ` +
    `WHERE ${rel.keyColumns.map((k) => `pgark_t.${quoteIdent(k)} = ${v(k)}`).join(' AND ')}`;
}

/** Multi-row DELETE by key. */
export function multiDeleteSql(rel: Rel, keys: Tuple[]): string {
  const cols = rel.keyColumns;
  const t = qualified({ schema: rel.schema, table: rel.name });
  return `DELETE FROM ${t} AS pgark_t USING ${valuesList(rel, cols, keys)} AS ${alias(cols)} ` +
    `WHERE ${cols.map((k, i) => `pgark_t.${quoteIdent(k)} = pgark_v.c${i + 1}`).join(' AND ')}`;
}

export interface RunStatements {
  /** Single-row statement (prepared when the caller has a cache). */
  single: (build: (p: Param) => string | undefined) => void;
  /** A statement with its values inline. */
  plain: (sql: string) => void;
}

/** Pending changes of independent tables, per table in source order (see the header). */
export class TableRuns {
  private tables = new Map<number, Segment[]>();
  bytes = 0;

  constructor(private readonly maxRows: number) {}

  get empty(): boolean {
    return this.tables.size === 0;
  }

  private last(rel: Rel): { segs: Segment[]; last: Segment | undefined } {
    let segs = this.tables.get(rel.relationOid);
    if (!segs) this.tables.set(rel.relationOid, (segs = []));
    return { segs, last: segs[segs.length - 1] };
  }

  insert(rel: Rel, nw: Tuple): void {
    const cols = rel.columns.map((c) => c.name).filter((c) => nw[c] !== undefined);
    const row = `(${cols.map((c) => sqlValue(nw[c])).join(', ')})`;
    const { segs, last } = this.last(rel);
    if (last && last.kind === 'insert' && last.rel === rel && last.cols.join('\0') === cols.join('\0')) {
      last.rows.push(row);
      if (last.firsts.length === 0) last.firsts.push(nw);
    } else {
      segs.push({ kind: 'insert', rel, cols, rows: [row], firsts: [nw] });
    }
    this.bytes += row.length + 2;
  }

  update(rel: Rel, key: Tuple | null, nw: Tuple, mergeUpdates: boolean, build: (p: Param) => string | undefined): void {
    const newKey = mergeUpdates ? keyOf(rel, nw) : undefined;
    const oldKey = key ? keyOf(rel, key) : newKey;
    const { segs, last } = this.last(rel);
    this.bytes += tupleBytes(nw) + 40;
    if (!newKey || !oldKey || keyText(rel, newKey) !== keyText(rel, oldKey)) {
      segs.push({ kind: 'sql', build });
      return;
    }
    const k = keyText(rel, newKey);
    let seg = last;
    if (!seg || seg.kind !== 'update' || seg.rel !== rel) segs.push((seg = { kind: 'update', rel, rows: new Map() }));
    const prev = seg.rows.get(k);
    if (!prev) seg.rows.set(k, { ...nw });
    else for (const c of rel.columns) if (nw[c.name] !== undefined) prev[c.name] = nw[c.name];
  }

  delete(rel: Rel, key: Tuple | null, old: Tuple | null, build: (p: Param) => string | undefined): void {
    const k = keyOf(rel, key ?? old);
    const { segs, last } = this.last(rel);
    this.bytes += 40;
    if (!k) {
      segs.push({ kind: 'sql', build });
      return;
    }
    let seg = last;
    if (!seg || seg.kind !== 'delete' || seg.rel !== rel) segs.push((seg = { kind: 'delete', rel, keys: new Map() }));
    seg.keys.set(keyText(rel, k), k);
  }

  /** Emit every table's segments, in order per table; empties the runs. */
  emit(out: RunStatements): void {
    for (const segs of this.tables.values()) for (const s of segs) this.emitSegment(s, out);
    this.tables.clear();
    this.bytes = 0;
  }

  private emitSegment(s: Segment, out: RunStatements): void {
    if (s.kind === 'sql') return out.single(s.build);
    const rel = s.rel;
    const t = qualified({ schema: rel.schema, table: rel.name });
    if (s.kind === 'insert') {
      const head = `INSERT INTO ${t} (${s.cols.map(quoteIdent).join(', ')})`;
      if (s.rows.length === 1) return out.single((p) => `${head} VALUES (${s.cols.map((c) => p(s.firsts[0]![c])).join(', ')})`);
      for (let i = 0; i < s.rows.length; i += this.maxRows) out.plain(`${head} VALUES ${s.rows.slice(i, i + this.maxRows).join(', ')}`);
      return;
    }
    if (s.kind === 'delete') {
      const keys = [...s.keys.values()];
      for (let i = 0; i < keys.length; i += this.maxRows) {
        const chunk = keys.slice(i, i + this.maxRows);
        if (chunk.length === 1) out.single((p) => `DELETE FROM ${t} WHERE ${rel.keyColumns.map((k) => `${quoteIdent(k)} = ${p(chunk[0]![k])}`).join(' AND ')}`);
        else out.plain(multiDeleteSql(rel, chunk));
      }
      return;
    }
    // updates: rows of distinct keys commute; one statement per shape (columns set)
    const keys = new Set(rel.keyColumns);
    const shapes = new Map<string, { sets: string[]; rows: Tuple[] }>();
    for (const row of s.rows.values()) {
      const sets = rel.columns.map((c) => c.name).filter((c) => !keys.has(c) && row[c] !== undefined);
      if (sets.length === 0) continue; // nothing but the (unchanged) key: no effect without triggers
      const id = sets.join('\0');
      let sh = shapes.get(id);
      if (!sh) shapes.set(id, (sh = { sets, rows: [] }));
      sh.rows.push(row);
    }
    for (const { sets, rows } of shapes.values()) {
      for (let i = 0; i < rows.length; i += this.maxRows) {
        const chunk = rows.slice(i, i + this.maxRows);
        if (chunk.length === 1) {
          const r = chunk[0]!;
          out.single((p) => `UPDATE ${t} SET ${sets.map((c) => `${quoteIdent(c)} = ${p(r[c])}`).join(', ')} WHERE ${rel.keyColumns.map((k) => `${quoteIdent(k)} = ${p(r[k])}`).join(' AND ')}`);
        } else out.plain(multiUpdateSql(rel, sets, chunk));
      }
    }
  }
}
