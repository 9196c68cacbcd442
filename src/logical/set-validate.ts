/**
 * Validation of replication sets. Pure part: parsing of table names, --row-filter/--columns
 * options and sizes, the CREATE/ALTER PUBLICATION statements, and the rules that turn facts
 * about the source (wal_level, slot room, tables, replica identities) into clear problems.
 * Reading those facts from the source is set-facts.ts.
 */
import { InvalidInputError } from '../common/errors.js';
import { qualified, quoteIdent } from './set-catalog.js';
import type { Operation, SetScope, SetTable } from './set-meta.js';

export interface TableName {
  schema: string;
  table: string;
}

/** One identifier: unquoted (folded to lower case, as PostgreSQL does) or "quoted" with "" inside. */
function parseIdentAt(text: string, i: number, what: string): { name: string; next: number } {
  if (text[i] === '"') {
    let name = '';
    let j = i + 1;
    for (;;) {
      if (j >= text.length) throw new InvalidInputError(`invalid ${what} '${text.slice(0, 128)}': unterminated quoted identifier`);
      if (text[j] === '"') {
        if (text[j + 1] === '"') {
          name += '"';
          j += 2;
          continue;
        }
        return { name, next: j + 1 };
      }
      name += text[j];
      j++;
    }
  }
  const m = /^[A-Za-z_][A-Za-z0-9_$]*/.exec(text.slice(i));
  if (!m) throw new InvalidInputError(`invalid ${what} '${text.slice(0, 128)}': expected [schema.]table (quote other names with "...")`);
  return { name: m[0].toLowerCase(), next: i + m[0].length };
}

/** `table`, `schema.table`, `"Mixed Case".t`; the schema defaults to public. */
export function parseTableName(text: string): TableName {
  const s = text.trim();
  const first = parseIdentAt(s, 0, 'table name');
  if (first.next === s.length) return { schema: 'public', table: first.name };
  if (s[first.next] !== '.') throw new InvalidInputError(`invalid table name '${s.slice(0, 128)}': expected [schema.]table`);
  const second = parseIdentAt(s, first.next + 1, 'table name');
  if (second.next !== s.length) throw new InvalidInputError(`invalid table name '${s.slice(0, 128)}': expected [schema.]table`);
  return { schema: first.name, table: second.name };
}

/** 'schema.table' as stored in pendingTables and shown in messages. */
export function tableKey(t: TableName): string {
  return `${t.schema}.${t.table}`;
}

/** A comma-separated table list (--tables a,b,s.c). */
export function parseTableList(text: string): TableName[] {
  const parts = text.split(',').map((p) => p.trim()).filter(Boolean);
  if (parts.length === 0) throw new InvalidInputError('--tables: name at least one table');
  const out: TableName[] = [];
  for (const p of parts) {
    const t = parseTableName(p);
    if (out.some((o) => tableKey(o) === tableKey(t))) throw new InvalidInputError(`--tables: '${tableKey(t)}' is listed twice`);
    out.push(t);
  }
  return out;
}

/** A column list 'c1,c2' (each an identifier). */
export function parseColumnList(text: string, what = '--columns'): string[] {
  const parts = text.split(',').map((p) => p.trim()).filter(Boolean);
  if (parts.length === 0) throw new InvalidInputError(`${what}: name at least one column`);
  const cols = parts.map((p) => {
    const r = parseIdentAt(p, 0, `${what} column`);
    if (r.next !== p.length) throw new InvalidInputError(`invalid ${what} column '${p.slice(0, 64)}'`);
    return r.name;
  });
  const dup = cols.find((c, i) => cols.indexOf(c) !== i);
  if (dup !== undefined) throw new InvalidInputError(`${what}: column '${dup}' is listed twice`);
  return cols;
}

/** 'table:rest' (the first ':' separates; expressions may contain '::' casts after it). */
export function splitTableOption(text: string, flag: string): { table: TableName; rest: string } {
  const i = text.indexOf(':');
  if (i <= 0 || i === text.length - 1) throw new InvalidInputError(`invalid ${flag} '${text.slice(0, 128)}': expected 'table:${flag === '--columns' ? 'c1,c2' : 'expression'}'`);
  return { table: parseTableName(text.slice(0, i)), rest: text.slice(i + 1).trim() };
}

/** The tables of a set with --row-filter/--columns options merged in; they must name listed tables. */
export function buildSetTables(tables: TableName[], rowFilters: string[], columns: string[]): SetTable[] {
  const out: SetTable[] = tables.map((t) => ({ schema: t.schema, table: t.table }));
  const find = (t: TableName, flag: string): SetTable => {
    const hit = out.find((o) => tableKey(o) === tableKey(t));
    if (!hit) throw new InvalidInputError(`${flag} names '${tableKey(t)}', which is not in --tables`);
    return hit;
  };
  for (const rf of rowFilters) {
    const { table, rest } = splitTableOption(rf, '--row-filter');
    const t = find(table, '--row-filter');
    if (t.rowFilter !== undefined) throw new InvalidInputError(`--row-filter: '${tableKey(table)}' has two row filters (combine them with AND)`);
    t.rowFilter = rest;
  }
  for (const c of columns) {
    const { table, rest } = splitTableOption(c, '--columns');
    const t = find(table, '--columns');
    if (t.columns !== undefined) throw new InvalidInputError(`--columns: '${tableKey(table)}' has two column lists`);
    t.columns = parseColumnList(rest);
  }
  return out;
}

/** Sizes like 1GB, 512MB, 100kB, 1024 (bytes); binary units. */
export function parseSize(text: string, flag: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(B|kB|KB|k|MB|M|GB|G|TB|T)?\s*$/i.exec(text);
  if (!m) throw new InvalidInputError(`invalid ${flag} '${text.slice(0, 32)}': expected a size such as 1GB, 512MB or 1048576`);
  const unit = (m[2] ?? 'B').toUpperCase()[0]!;
  const mult = { B: 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 }[unit] ?? 1;
  return Math.round(Number(m[1]) * mult);
}

/** One FOR TABLE item: "s"."t" (cols) WHERE (expr). */
export function tableSpec(t: SetTable): string {
  let s = qualified(t);
  if (t.columns) s += ` (${t.columns.map(quoteIdent).join(', ')})`;
  if (t.rowFilter !== undefined) s += ` WHERE (${t.rowFilter})`;
  return s;
}

export function createPublicationSql(pub: string, scope: SetScope, tables: SetTable[], operations: Operation[]): string {
  let target: string;
  if (scope.kind === 'all-tables') target = 'FOR ALL TABLES';
  else if (scope.kind === 'schema') target = `FOR TABLES IN SCHEMA ${scope.schemas.map(quoteIdent).join(', ')}`;
  else target = `FOR TABLE ${tables.map(tableSpec).join(', ')}`;
  return `CREATE PUBLICATION ${quoteIdent(pub)} ${target} WITH (publish = '${operations.join(', ')}')`;
}

// ---------------------------------------------------------------------------
// Rules (pure)
// ---------------------------------------------------------------------------

export interface ServerFacts {
  versionNum: number;
  walLevel: string;
  maxReplicationSlots: number;
  usedSlots: number;
  maxWalSenders: number;
  usedWalSenders: number;
}

/** What the source says about one table. */
export interface TableFacts {
  schema: string;
  table: string;
  exists: boolean;
  /** pg_class.relreplident: d(efault: primary key), n(othing), f(ull), i(ndex). */
  replident?: 'd' | 'n' | 'f' | 'i';
  /** Default identity: the table has a primary key; index identity: the index is there. */
  hasIdentityIndex?: boolean;
}

export function serverProblems(f: ServerFacts, o: { needSlot: boolean; filtersOrColumns: boolean }): string[] {
  const p: string[] = [];
  if (f.walLevel !== 'logical') {
    p.push(`wal_level is '${f.walLevel}' on the source, logical replication needs 'logical': run ALTER SYSTEM SET wal_level = logical (or pgark setup) and restart the server (wal_level needs a restart)`);
  }
  if (o.needSlot && f.maxReplicationSlots - f.usedSlots <= 0) {
    p.push(`no free replication slot on the source (max_replication_slots = ${f.maxReplicationSlots}, ${f.usedSlots} in use): raise max_replication_slots (needs a restart) or drop unused slots (pgark slots list)`);
  }
  if (o.needSlot && f.maxWalSenders - f.usedWalSenders <= 0) {
    p.push(`no free WAL sender on the source (max_wal_senders = ${f.maxWalSenders}, ${f.usedWalSenders} in use): raise max_wal_senders (needs a restart)`);
  }
  if (o.filtersOrColumns && f.versionNum < 150000) {
    p.push(`row filters and column lists need PostgreSQL 15 or later on the source (it runs ${Math.floor(f.versionNum / 10000)})`);
  }
  return p;
}

export function needsIdentity(ops: Operation[]): boolean {
  return ops.includes('update') || ops.includes('delete');
}

/** Missing tables, and tables that cannot replicate updates/deletes for want of a replica identity. */
export function tableProblems(tables: TableFacts[], ops: Operation[]): string[] {
  const p: string[] = [];
  const missing = tables.filter((t) => !t.exists).map(tableKey);
  if (missing.length > 0) p.push(`table${missing.length > 1 ? 's' : ''} not found on the source: ${missing.join(', ')}`);
  if (needsIdentity(ops)) {
    const without = tables.filter((t) => t.exists && (t.replident === 'n' || ((t.replident === 'd' || t.replident === 'i') && !t.hasIdentityIndex)));
    if (without.length > 0) {
      const names = without.map(tableKey);
      const what = ops.filter((o) => o === 'update' || o === 'delete').join(' and ');
      p.push(
        `table${names.length > 1 ? 's' : ''} without a primary key or replica identity: ${names.join(', ')}; ` +
        `replicating ${what} needs one. Add a primary key, or ALTER TABLE ${qualified(without[0]!)} REPLICA IDENTITY USING INDEX <unique index> ` +
        `(or REPLICA IDENTITY FULL), or replicate only inserts (--operations insert,truncate)`,
      );
    }
  }
  return p;
}

/** The replica identity of a published table, as the source reports it after CREATE/ALTER PUBLICATION. */
export interface IdentityCoverage {
  schema: string;
  table: string;
  full: boolean;
  /** Column names of the replica identity (all columns when full). */
  identityColumns: string[];
  /** Columns the row filter references (from pg_publication_rel.prqual), if there is a filter. */
  filterColumns?: string[];
  /** The publication's column list, if any. */
  listColumns?: string[];
}

/**
 * With update/delete replicated, PostgreSQL accepts a row filter or column list that does not fit the
 * replica identity and then fails every UPDATE/DELETE on the table: refuse it up front instead.
 */
export function coverageProblems(items: IdentityCoverage[], ops: Operation[]): string[] {
  if (!needsIdentity(ops)) return [];
  const p: string[] = [];
  for (const c of items) {
    if (c.filterColumns && !c.full) {
      const outside = c.filterColumns.filter((col) => !c.identityColumns.includes(col));
      if (outside.length > 0) {
        p.push(`the row filter of ${tableKey(c)} uses column${outside.length > 1 ? 's' : ''} ${outside.join(', ')}, not part of the replica identity (${c.identityColumns.join(', ') || 'none'}): ` +
          `with updates or deletes replicated every UPDATE/DELETE on the table would fail. Filter on identity columns, set REPLICA IDENTITY FULL, or replicate only inserts`);
      }
    }
    if (c.listColumns) {
      const missing = c.identityColumns.filter((col) => !c.listColumns!.includes(col));
      if (missing.length > 0) {
        p.push(`the column list of ${tableKey(c)} leaves out replica identity column${missing.length > 1 ? 's' : ''} ${missing.join(', ')}: ` +
          `with updates or deletes replicated every UPDATE/DELETE on the table would fail. Include them, or replicate only inserts`);
      }
    }
  }
  return p;
}

/** Column numbers a node tree (pg_publication_rel.prqual, as text) refers to. */
export function varAttnums(nodeTree: string): number[] {
  const out = new Set<number>();
  for (const m of nodeTree.matchAll(/\{VAR :varno \d+ :varattno (-?\d+)/g)) out.add(Number(m[1]));
  return [...out].filter((n) => n > 0).sort((a, b) => a - b);
}

export function throwProblems(what: string, problems: string[]): void {
  if (problems.length === 0) return;
  if (problems.length === 1) throw new InvalidInputError(`unable to ${what}: ${problems[0]}`);
  throw new InvalidInputError(`unable to ${what}:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
}
