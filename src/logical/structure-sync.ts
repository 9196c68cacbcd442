/**
 * `--sync-structure`: create a replication set's table definitions on a subscriber's target.
 *
 * The definitions come from `pg_dump --schema-only --no-owner --no-privileges --strict-names
 * --table=<each table missing on the target>` run against the source, with the connection passed
 * through the libpq environment (PGHOST, PGPORT, ... parsed from the DSN: never a password in
 * argv). The dump is split into its TOC entries (the `-- Name: ...; Type: ...` headers) and only
 * what a subscriber's table needs is kept: tables, owned sequences, defaults, constraints, indexes,
 * extended statistics, comments, and foreign keys whose referenced table exists on the target or is
 * created with it. Triggers, rules, policies and partition attachments are left out with a note
 * (they may depend on functions or parents the target lacks). Tables that already exist on the
 * target are skipped with a note; missing schemas are created; everything runs in one transaction.
 *
 * The first half of the file is pure (parsing, filtering, DSN -> environment); the second half
 * runs pg_dump and applies the result.
 */
import { execFile } from 'node:child_process';
import type { Client } from 'pg';
import { InvalidInputError, PgarkError } from '../common/errors.js';
import { assertNoPassword, isConninfoUri, parseConninfo } from '../pg/conninfo.js';
import { requirePgProgram } from '../pg/pg-bin.js';
import { qualified, quoteIdent } from './set-catalog.js';

export interface TableName {
  schema: string;
  table: string;
}

// ---------------------------------------------------------------------------------------------
// Pure: connection strings
// ---------------------------------------------------------------------------------------------

/** libpq keyword -> environment variable. Keywords without a variable (keepalives...) are dropped. */
const ENV_OF_KEYWORD: Record<string, string> = {
  host: 'PGHOST', hostaddr: 'PGHOSTADDR', port: 'PGPORT', dbname: 'PGDATABASE', user: 'PGUSER',
  application_name: 'PGAPPNAME', options: 'PGOPTIONS', connect_timeout: 'PGCONNECT_TIMEOUT', sslmode: 'PGSSLMODE',
  sslcert: 'PGSSLCERT', sslkey: 'PGSSLKEY', sslrootcert: 'PGSSLROOTCERT', sslcrl: 'PGSSLCRL',
  target_session_attrs: 'PGTARGETSESSIONATTRS', client_encoding: 'PGCLIENTENCODING',
};

/** Keyword/value pairs of a connection string in either form (URI or `key=value ...`). */
export function conninfoKeywords(dsn: string): Map<string, string> {
  if (!isConninfoUri(dsn)) return parseConninfo(dsn);
  let url: URL;
  try {
    url = new URL(dsn.trim());
  } catch {
    throw new InvalidInputError('invalid connection string: this URI cannot be parsed (use the keyword/value form, e.g. "host=db1 port=5432 dbname=app")');
  }
  const out = new Map<string, string>();
  if (url.hostname) out.set('host', decodeURIComponent(url.hostname.replace(/^\[(.*)\]$/, '$1')));
  if (url.port) out.set('port', url.port);
  if (url.username) out.set('user', decodeURIComponent(url.username));
  if (url.password) out.set('password', '');
  const db = url.pathname.replace(/^\//, '');
  if (db) out.set('dbname', decodeURIComponent(db));
  for (const [k, v] of url.searchParams) {
    if (!(k in ENV_OF_KEYWORD) && !['password', 'replication', 'keepalives', 'keepalives_idle', 'keepalives_interval', 'keepalives_count'].includes(k)) {
      throw new InvalidInputError(`invalid connection string: unknown parameter "${k.slice(0, 40)}"`);
    }
    out.set(k, v);
  }
  return out;
}

/** The libpq environment equivalent of a DSN (for pg_dump). A password is refused. */
export function libpqEnvOf(dsn: string | undefined): Record<string, string> {
  if (dsn === undefined || dsn.trim() === '') return {};
  assertNoPassword(dsn);
  const env: Record<string, string> = {};
  for (const [k, v] of conninfoKeywords(dsn)) {
    if (k === 'password') continue; // an empty one (assertNoPassword refused any other)
    const name = ENV_OF_KEYWORD[k];
    if (name) env[name] = v;
  }
  return env;
}

function conninfoValue(v: string): string {
  return `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/**
 * The connection string the target server uses to reach the source (stored in its catalog by
 * CREATE SUBSCRIPTION): the DSN as given, or built from the libpq environment (no password).
 */
export function sourceConninfoForTarget(dsn: string | undefined, env: Record<string, string | undefined>): string {
  if (dsn !== undefined && dsn.trim() !== '') {
    libpqEnvOf(dsn); // refuses a password
    return dsn.trim();
  }
  const parts: string[] = [];
  for (const [k, name] of Object.entries(ENV_OF_KEYWORD)) {
    if (k === 'application_name') continue;
    const v = env[name];
    if (v !== undefined && v !== '') parts.push(`${k}=${conninfoValue(v)}`);
  }
  if (!parts.some((p) => p.startsWith('host=') || p.startsWith('hostaddr='))) {
    throw new InvalidInputError('the target server needs a connection string to reach the source: give --source DSN (or set PGHOST)');
  }
  return parts.join(' ');
}

/**
 * Default subscriber name from the target's database name: lower-case, anything but letters,
 * digits and '_' becomes '_', starting with a letter, short enough for `pgark_<set>_<name>` to fit
 * in 63 characters.
 */
export function defaultSubscriberName(targetDb: string, set: string): string {
  let s = targetDb.toLowerCase().replace(/[^a-z0-9_]+/g, '_').replace(/^_+|_+$/g, '');
  if (!/^[a-z]/.test(s)) s = `db_${s}`.replace(/_+$/, '');
  const max = Math.min(40, 63 - 'pgark_'.length - set.length - 1);
  s = s.slice(0, Math.max(1, max)).replace(/_+$/, '');
  return s || 'sub';
}

// ---------------------------------------------------------------------------------------------
// Pure: pg_dump output
// ---------------------------------------------------------------------------------------------

export interface DumpEntry {
  name: string;
  type: string;
  schema: string;
  /** The entry's SQL (its header comment and trailing session SETs removed). */
  sql: string;
}

export interface ParsedDump {
  /** Session settings before the first entry (SET ..., SELECT pg_catalog.set_config(...)). */
  preamble: string;
  /** In dump order; `glue` holds SET lines pg_dump emitted between entries (default_tablespace...). */
  entries: Array<DumpEntry & { glue: string }>;
}

const HEADER_RE = /^-- (?:Name|Data for Name): (.*); Type: ([A-Z][A-Z ]*); Schema: (.*); Owner: (.*)$/;
const SESSION_SET_RE = /^SET [a-z_]+ = (?:'[^'\n]*'|[A-Za-z0-9_.-]+);$/;

/** Split plain-format pg_dump output into its preamble and TOC entries. */
export function parseDump(text: string): ParsedDump {
  const lines = text.replace(/\r\n/g, '\n').split('\n');
  const kept: string[] = [];
  for (const line of lines) {
    if (/^\\(?:restrict|unrestrict)\b/.test(line)) continue; // psql-only guard lines (PostgreSQL 13.22+, 15.14+...)
    if (line.startsWith('\\')) throw new PgarkError(`unexpected psql meta-command in pg_dump output: ${line.slice(0, 40)}`);
    kept.push(line);
  }
  const headers: number[] = [];
  for (let i = 1; i + 1 < kept.length; i++) {
    if (kept[i - 1] === '--' && kept[i + 1] === '--' && HEADER_RE.test(kept[i]!)) headers.push(i);
  }
  const preamble = (headers.length ? kept.slice(0, headers[0]! - 1) : kept).filter((l) => !l.startsWith('--')).join('\n').trim();
  const entries: ParsedDump['entries'] = [];
  headers.forEach((h, idx) => {
    const m = HEADER_RE.exec(kept[h]!)!;
    const end = idx + 1 < headers.length ? headers[idx + 1]! - 1 : kept.length;
    const body = kept.slice(h + 2, end);
    // Peel trailing blank, comment and session-SET lines: they belong to what follows.
    const glue: string[] = [];
    while (body.length) {
      const last = body[body.length - 1]!;
      if (last.trim() === '' || last.startsWith('--')) body.pop();
      else if (SESSION_SET_RE.test(last)) glue.unshift(body.pop()!);
      else break;
    }
    entries.push({ name: m[1]!, type: m[2]!.trim(), schema: m[3]!, sql: body.join('\n').trim(), glue: glue.join('\n') });
  });
  return { preamble, entries };
}

/** Unquote one SQL identifier as pg_dump prints it ("Odd""Name" or plain lower-case). */
function unquoteIdent(s: string): string {
  return s.startsWith('"') ? s.slice(1, -1).replace(/""/g, '"') : s;
}

const IDENT = '(?:"(?:[^"]|"")*"|[^\\s."(]+)';
const REFERENCES_RE = new RegExp(`REFERENCES\\s+(?:ONLY\\s+)?(${IDENT})\\.(${IDENT})`);

/** The table a FOREIGN KEY statement references, or undefined when it cannot be read. */
export function referencedTable(sql: string): TableName | undefined {
  const m = REFERENCES_RE.exec(sql);
  return m ? { schema: unquoteIdent(m[1]!), table: unquoteIdent(m[2]!) } : undefined;
}

const KEEP = new Set(['TABLE', 'SEQUENCE', 'SEQUENCE OWNED BY', 'DEFAULT', 'CONSTRAINT', 'CHECK CONSTRAINT', 'INDEX', 'STATISTICS']);
const COMMENT_ON = /^(TABLE|COLUMN|INDEX|SEQUENCE|STATISTICS|CONSTRAINT) /;

export interface FilteredDump {
  /** SQL to run on the target (inside one transaction). */
  sql: string;
  kept: Array<{ type: string; name: string }>;
  left: Array<{ type: string; name: string; reason: string }>;
}

/**
 * Keep what a subscriber's tables need. `available` holds qualified() names of tables that exist
 * on the target or are created by this dump (foreign keys to anything else are left out).
 */
export function filterDump(dump: ParsedDump, available: ReadonlySet<string>): FilteredDump {
  const out: string[] = dump.preamble ? [dump.preamble] : [];
  const kept: FilteredDump['kept'] = [];
  const left: FilteredDump['left'] = [];
  const droppedConstraints: string[] = [];
  const decide = (e: DumpEntry): string | undefined => {
    if (KEEP.has(e.type)) return undefined;
    if (e.type === 'FK CONSTRAINT') {
      const ref = referencedTable(e.sql);
      if (!ref) return 'its referenced table could not be read';
      return available.has(qualified(ref)) ? undefined : `it references ${ref.schema}.${ref.table}, which is not on the target`;
    }
    if (e.type === 'COMMENT') {
      if (!COMMENT_ON.test(e.name)) return 'comments on objects that are not copied are left out';
      if (e.name.startsWith('CONSTRAINT ') && droppedConstraints.some((c) => e.name.startsWith(`CONSTRAINT ${c} `))) return 'its constraint is not copied';
      return undefined;
    }
    if (e.type === 'TRIGGER' || e.type === 'RULE' || e.type === 'POLICY' || e.type === 'ROW SECURITY') {
      return `${e.type.toLowerCase()}s are not copied (they may need functions the target lacks; add them yourself if the target needs them)`;
    }
    if (e.type === 'TABLE ATTACH' || e.type === 'INDEX ATTACH') return 'partitions are created as plain tables (the partitioned parent is not part of the set)';
    return `${e.type.toLowerCase()} entries are not copied`;
  };
  for (const e of dump.entries) {
    const reason = decide(e);
    if (reason === undefined) {
      out.push(e.sql);
      kept.push({ type: e.type, name: e.name });
    } else {
      left.push({ type: e.type, name: e.name, reason });
      if (e.type === 'FK CONSTRAINT') droppedConstraints.push(e.name.split(' ').slice(-1)[0]!);
    }
    if (e.glue) out.push(e.glue);
  }
  return { sql: out.join('\n\n') + '\n', kept, left };
}

// ---------------------------------------------------------------------------------------------
// I/O
// ---------------------------------------------------------------------------------------------

export interface StructureSyncResult {
  created: TableName[];
  /** Tables that already existed on the target (left as they are). */
  existing: TableName[];
  schemasCreated: string[];
  /** Human-readable notes: skipped tables, entries left out. */
  notes: string[];
}

/** Which of `tables` exist on the connected database. */
export async function existingTables(client: Client, tables: TableName[]): Promise<Set<string>> {
  if (tables.length === 0) return new Set();
  const r = await client.query<{ schema: string; table: string }>(
    `SELECT n.nspname AS schema, c.relname AS table FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      JOIN unnest($1::text[], $2::text[]) AS t(s, r) ON t.s = n.nspname AND t.r = c.relname
      WHERE c.relkind IN ('r', 'p')`,
    [tables.map((t) => t.schema), tables.map((t) => t.table)],
  );
  return new Set(r.rows.map((row) => qualified(row)));
}

/** Run pg_dump --schema-only for `tables` against the source; the connection goes through the environment. */
export async function dumpTableDefinitions(sourceDsn: string | undefined, tables: TableName[], serverMajor: number, timeoutMs = 300_000): Promise<string> {
  const pgDump = requirePgProgram('pg_dump', serverMajor);
  const env: NodeJS.ProcessEnv = { ...process.env, ...libpqEnvOf(sourceDsn) };
  if (!env.PGCONNECT_TIMEOUT) env.PGCONNECT_TIMEOUT = '30';
  env.PGAPPNAME = 'pgark sets subscribe (pg_dump)';
  const args = ['--schema-only', '--no-owner', '--no-privileges', '--strict-names', '--no-password', ...tables.map((t) => `--table=${qualified(t)}`)];
  return new Promise<string>((resolve, reject) => {
    execFile(pgDump, args, { env, timeout: timeoutMs, maxBuffer: 256 * 1024 * 1024, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) {
        const why = stderr.trim().split('\n').slice(-5).join('; ') || err.message;
        reject(new PgarkError(`unable to dump the set's table definitions from the source with pg_dump: ${why}`));
      } else {
        resolve(stdout);
      }
    });
  });
}

/**
 * Create the definitions of `tables` (from the source) on the target, in one transaction. Tables
 * that already exist are skipped. The target session's settings are reset afterwards.
 */
export async function syncStructure(o: { sourceDsn?: string; source: Client; target: Client; tables: TableName[] }): Promise<StructureSyncResult> {
  const res: StructureSyncResult = { created: [], existing: [], schemasCreated: [], notes: [] };
  const onTarget = await existingTables(o.target, o.tables);
  const missing = o.tables.filter((t) => !onTarget.has(qualified(t)));
  for (const t of o.tables) {
    if (onTarget.has(qualified(t))) {
      res.existing.push(t);
      res.notes.push(`table ${qualified(t)} already exists on the target: left as it is`);
    }
  }
  if (missing.length === 0) return res;
  const major = Math.floor(Number((await o.source.query<{ v: string }>('SHOW server_version_num')).rows[0]!.v) / 10000);
  const dump = parseDump(await dumpTableDefinitions(o.sourceDsn, missing, major));
  const available = new Set([...onTarget, ...missing.map((t) => qualified(t))]);
  const filtered = filterDump(dump, available);
  for (const l of filtered.left) res.notes.push(`${l.type === 'FK CONSTRAINT' ? 'foreign key' : l.type.toLowerCase()} ${l.name} not created on the target: ${l.reason}`);
  const schemas = [...new Set(missing.map((t) => t.schema))];
  const haveSchemas = new Set((await o.target.query<{ nspname: string }>('SELECT nspname FROM pg_namespace WHERE nspname = ANY($1::text[])', [schemas])).rows.map((r) => r.nspname));
  await o.target.query('BEGIN');
  try {
    for (const s of schemas) {
      if (haveSchemas.has(s)) continue;
      await o.target.query(`CREATE SCHEMA ${quoteIdent(s)}`);
      res.schemasCreated.push(s);
    }
    await o.target.query(filtered.sql);
    await o.target.query('COMMIT');
  } catch (err) {
    await o.target.query('ROLLBACK').catch(() => undefined);
    throw new PgarkError(
      `unable to create the set's tables on the target (nothing was created): ${(err as Error).message} ` +
      '(create the types, extensions or functions they need on the target first, or create the tables yourself and subscribe without --sync-structure)',
    );
  } finally {
    await o.target.query('RESET ALL').catch(() => undefined);
  }
  res.created = missing;
  return res;
}
