/**
 * The checks a drill runs on its promoted scratch server: pg_amcheck on every database (skipped,
 * not failed, when pg_amcheck or the amcheck extension is not installed), an exact row count of
 * every user table (up to MAX_COUNTED_TABLES), and the user's SQL file, each statement of which
 * must return exactly one row holding one boolean true.
 */
import type { Client } from 'pg';
import { findPgProgram } from '../pg/pg-bin.js';
import { programMajor, runProgram } from '../pg/pg-ctl.js';
import type { DrillCheck, DrillReport } from './drill-report.js';
import { oneLine } from './drill-report.js';
import { connectScratch, type ScratchServer } from './scratch-server.js';
import type { SqlStatement } from './sql-split.js';

export const MAX_COUNTED_TABLES = 1000;
/** Bound of one count(*) or one check statement. */
export const STATEMENT_TIMEOUT = '10min';
export const AMCHECK_TIMEOUT_MS = 60 * 60_000;

/** Databases that accept connections, without templates. */
export async function userDatabases(c: Client): Promise<string[]> {
  const r = await c.query<{ datname: string }>('SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY datname');
  return r.rows.map((x) => x.datname);
}

export async function amcheckCheck(s: ScratchServer, user: string, major: number): Promise<DrillCheck> {
  const name = 'pg_amcheck';
  const prog = findPgProgram('pg_amcheck', major);
  if (!prog) return { name, ok: true, skipped: true, detail: 'skipped: pg_amcheck not found (PostgreSQL 14+ ships it; set PGARK_PG_BINDIR)' };
  if (major < 14) return { name, ok: true, skipped: true, detail: `skipped: pg_amcheck needs PostgreSQL 14 or later (the backup is ${major})` };
  const found = await programMajor(prog).catch(() => undefined);
  if (found === undefined || found < major) return { name, ok: true, skipped: true, detail: `skipped: '${prog}' is PostgreSQL ${found ?? 'of unknown version'}, older than the server (${major})` };
  const r = await runProgram(prog, ['--all', '--install-missing', '--host', s.dir, '--port', String(s.port), '--username', user, '--no-password'], {
    timeoutMs: AMCHECK_TIMEOUT_MS, env: { ...process.env, PGAPPNAME: 'pgark drill', PGCONNECT_TIMEOUT: '10' },
  });
  const out = `${r.stdout}\n${r.stderr}`.trim();
  if (r.timedOut) return { name, ok: false, detail: `timed out after ${AMCHECK_TIMEOUT_MS / 60_000} min` };
  if (r.code === 0) return { name, ok: true, detail: 'no corruption found in any database (heap and B-tree indexes)' };
  if (/extension "amcheck" is not available|could not open extension control file/.test(out)) {
    return { name, ok: true, skipped: true, detail: 'skipped: the amcheck extension is not installed on this host (PostgreSQL contrib)' };
  }
  const lines = out.split('\n').filter((l) => l.trim() !== '');
  return { name, ok: false, detail: `exit ${r.code ?? r.signal}: ${oneLine(lines.slice(0, 5).join(' / '), 600)}${lines.length > 5 ? ` (${lines.length - 5} more lines)` : ''}` };
}

/** count(*) of every user table (partitioned tables count their partitions; partitions are not listed). */
export async function tableCounts(s: ScratchServer, user: string, databases: string[]): Promise<{ check: DrillCheck; tables: NonNullable<DrillReport['tables']>; notCounted: number }> {
  const tables: NonNullable<DrillReport['tables']> = [];
  let notCounted = 0;
  let rows = 0;
  for (const db of databases) {
    const c = await connectScratch(s, user, db);
    try {
      await c.query(`SET statement_timeout = '${STATEMENT_TIMEOUT}'`);
      const list = await c.query<{ q: string; name: string }>(
        `SELECT format('%I.%I', n.nspname, c.relname) AS q, n.nspname || '.' || c.relname AS name
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
            AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp_|toast_temp_)'
          ORDER BY 2`);
      for (const t of list.rows) {
        if (tables.length >= MAX_COUNTED_TABLES) {
          notCounted++;
          continue;
        }
        try {
          const r = await c.query<{ n: string }>(`SELECT count(*) AS n FROM ${t.q}`);
          const n = Number(r.rows[0]!.n);
          tables.push({ database: db, table: t.name, rows: n });
          rows += n;
        } catch (err) {
          return { check: { name: 'table counts', ok: false, detail: `unable to count ${db}.${t.name}: ${(err as Error).message}` }, tables, notCounted };
        }
      }
    } finally {
      await c.end().catch(() => undefined);
    }
  }
  const detail = `${tables.length} table(s) in ${databases.length} database(s), ${rows} rows` + (notCounted ? `; ${notCounted} more table(s) not counted (bound ${MAX_COUNTED_TABLES})` : '');
  return { check: { name: 'table counts', ok: true, detail }, tables, notCounted };
}

/** Why a result is not exactly one row with one boolean true, or undefined when it is. */
export function notTrue(fields: Array<{ dataTypeID: number }>, rows: unknown[][]): string | undefined {
  const BOOL_OID = 16;
  if (rows.length !== 1) return `returned ${rows.length} rows, expected exactly one`;
  if (fields.length !== 1) return `returned ${fields.length} columns, expected exactly one`;
  if (fields[0]!.dataTypeID !== BOOL_OID) return `returned a ${fields[0]!.dataTypeID === 0 ? 'non-boolean' : `non-boolean (type oid ${fields[0]!.dataTypeID})`} value, expected a boolean`;
  const v = rows[0]![0];
  if (v === true) return undefined;
  return v === null ? 'returned NULL' : 'returned false';
}

/** Run the user's statements in `db`; one check per statement. */
export async function sqlChecks(s: ScratchServer, user: string, db: string, file: string, statements: SqlStatement[]): Promise<DrillCheck[]> {
  const out: DrillCheck[] = [];
  let c: Client;
  try {
    c = await connectScratch(s, user, db);
  } catch (err) {
    return [{ name: `checks ${file}`, ok: false, detail: `unable to connect to database '${db}': ${(err as Error).message}` }];
  }
  try {
    await c.query(`SET statement_timeout = '${STATEMENT_TIMEOUT}'`);
    for (const st of statements) {
      const name = `sql (${file}:${st.line}) ${oneLine(st.text, 120)}`;
      try {
        const r = await c.query({ text: st.text, rowMode: 'array' });
        const res = Array.isArray(r) ? r[r.length - 1] : r;
        const why = notTrue(res.fields ?? [], (res.rows ?? []) as unknown[][]);
        out.push(why === undefined ? { name, ok: true, detail: 'true' } : { name, ok: false, detail: why });
      } catch (err) {
        out.push({ name, ok: false, detail: `error: ${(err as Error).message}` });
      }
    }
  } finally {
    await c.end().catch(() => undefined);
  }
  return out;
}
