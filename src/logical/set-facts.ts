/**
 * Facts about a replication set's source, read with catalog queries (I/O), for the rules of
 * set-validate.ts (pure).
 */
import type { Client } from 'pg';
import { varAttnums, type IdentityCoverage, type ServerFacts, type TableFacts, type TableName } from './set-validate.js';

export async function serverFacts(c: Client): Promise<ServerFacts> {
  const r = await c.query<Record<string, string>>(
    `SELECT current_setting('server_version_num') AS v, current_setting('wal_level') AS wal,
            current_setting('max_replication_slots') AS mrs, (SELECT count(*) FROM pg_replication_slots) AS used,
            current_setting('max_wal_senders') AS mws,
            (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'walsender') AS senders`,
  );
  const row = r.rows[0]!;
  return {
    versionNum: Number(row.v), walLevel: String(row.wal), maxReplicationSlots: Number(row.mrs), usedSlots: Number(row.used),
    maxWalSenders: Number(row.mws), usedWalSenders: Number(row.senders),
  };
}

export async function tableFacts(c: Client, tables: TableName[]): Promise<TableFacts[]> {
  if (tables.length === 0) return [];
  const r = await c.query<{ schema: string; table: string; replident: 'd' | 'n' | 'f' | 'i'; has_index: boolean }>(
    `SELECT n.nspname AS schema, k.relname AS table, k.relreplident AS replident,
            EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = k.oid AND
                    CASE k.relreplident WHEN 'd' THEN i.indisprimary WHEN 'i' THEN i.indisreplident ELSE false END) AS has_index
       FROM pg_class k JOIN pg_namespace n ON n.oid = k.relnamespace
      WHERE k.relkind IN ('r', 'p') AND (n.nspname::text, k.relname::text) IN (SELECT * FROM unnest($1::text[], $2::text[]))`,
    [tables.map((t) => t.schema), tables.map((t) => t.table)],
  );
  return tables.map((t) => {
    const hit = r.rows.find((row) => row.schema === t.schema && row.table === t.table);
    return hit
      ? { schema: t.schema, table: t.table, exists: true, replident: hit.replident, hasIdentityIndex: hit.has_index }
      : { schema: t.schema, table: t.table, exists: false };
  });
}

/** Ordinary tables in the given schemas (or every user schema when schemas is undefined). */
export async function tablesOfScope(c: Client, schemas: string[] | undefined): Promise<TableName[]> {
  const r = await c.query<{ schema: string; table: string }>(
    `SELECT n.nspname AS schema, k.relname AS table FROM pg_class k JOIN pg_namespace n ON n.oid = k.relnamespace
      WHERE k.relkind IN ('r', 'p') AND NOT k.relispartition AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
        AND ($1::text[] IS NULL OR n.nspname = ANY($1::text[]))
      ORDER BY 1, 2`,
    [schemas ?? null],
  );
  return r.rows;
}

export async function missingSchemas(c: Client, schemas: string[]): Promise<string[]> {
  const r = await c.query<{ nspname: string }>('SELECT nspname FROM pg_namespace WHERE nspname = ANY($1::text[])', [schemas]);
  return schemas.filter((s) => !r.rows.some((row) => row.nspname === s));
}

/** Replica identity vs. row filters and column lists of a publication's explicitly listed tables (inside the creating transaction). */
export async function identityCoverage(c: Client, pub: string): Promise<IdentityCoverage[]> {
  // Row filters and column lists (pg_publication_rel.prqual/prattrs) exist from PostgreSQL 15.
  if (Number((await c.query<{ v: string }>("SELECT current_setting('server_version_num') AS v")).rows[0]?.v) < 150000) return [];
  const r = await c.query<{ schema: string; table: string; replident: string; prqual: string | null; prattrs: string | null; identity: string[] | null; allcols: string[]; relid: number }>(
    `SELECT n.nspname AS schema, k.relname AS table, k.relreplident AS replident, pr.prqual::text AS prqual, pr.prattrs::text AS prattrs,
            (SELECT array_agg(a.attname::text ORDER BY a.attnum) FROM pg_index i JOIN pg_attribute a ON a.attrelid = k.oid AND a.attnum = ANY(i.indkey)
              WHERE i.indrelid = k.oid AND CASE k.relreplident WHEN 'd' THEN i.indisprimary WHEN 'i' THEN i.indisreplident ELSE false END) AS identity,
            (SELECT array_agg(a.attname::text ORDER BY a.attnum) FROM pg_attribute a WHERE a.attrelid = k.oid AND a.attnum > 0 AND NOT a.attisdropped) AS allcols,
            k.oid::int AS relid
       FROM pg_publication p JOIN pg_publication_rel pr ON pr.prpubid = p.oid JOIN pg_class k ON k.oid = pr.prrelid
       JOIN pg_namespace n ON n.oid = k.relnamespace WHERE p.pubname = $1`,
    [pub],
  );
  const out: IdentityCoverage[] = [];
  for (const row of r.rows) {
    const names = await c.query<{ attnum: number; attname: string }>(
      'SELECT attnum::int AS attnum, attname::text AS attname FROM pg_attribute WHERE attrelid = $1 AND attnum > 0', [row.relid]);
    const nameOf = (n: number) => names.rows.find((x) => x.attnum === n)?.attname ?? `#${n}`;
    const full = row.replident === 'f';
    const item: IdentityCoverage = { schema: row.schema, table: row.table, full, identityColumns: full ? row.allcols : (row.identity ?? []) };
    if (row.prqual) item.filterColumns = varAttnums(row.prqual).map(nameOf);
    if (row.prattrs) item.listColumns = row.prattrs.trim().split(/\s+/).filter(Boolean).map(Number).map(nameOf);
    out.push(item);
  }
  return out;
}
