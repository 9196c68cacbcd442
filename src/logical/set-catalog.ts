/**
 * Replication set catalog on the source database: reads and writes the set metadata kept as
 * JSON in the comment of publication `pgark_<set>` (see set-meta.ts), lists the tables a
 * publication actually publishes, and quotes SQL identifiers and literals. Shared by
 * set administration, subscribe and the apply worker.
 */
import type { Client } from 'pg';
import { NotFoundError } from '../common/errors.js';
import { parseSetMeta, publicationName, serializeSetMeta, setOfPublication, type SetMeta } from './set-meta.js';

/** A SQL identifier in double quotes, with embedded double quotes doubled. */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** A SQL string literal (standard_conforming_strings): single quotes doubled; E'' form when it holds a backslash. */
export function quoteLiteral(text: string): string {
  const body = text.replace(/'/g, "''");
  return text.includes('\\') ? `E'${body.replace(/\\/g, '\\\\')}'` : `'${body}'`;
}

/** "schema"."table" */
export function qualified(t: { schema: string; table: string }): string {
  return `${quoteIdent(t.schema)}.${quoteIdent(t.table)}`;
}

/** The set's metadata; NotFoundError when the publication or its pgark metadata is missing. */
export async function readSet(source: Client, set: string): Promise<SetMeta> {
  const pub = publicationName(set);
  const r = await source.query<{ comment: string | null }>(
    "SELECT obj_description(oid, 'pg_publication') AS comment FROM pg_publication WHERE pubname = $1",
    [pub],
  );
  if (r.rows.length === 0) throw new NotFoundError(set, `unable to find set '${set}': no publication ${pub} on the source (pgark sets list shows the sets)`);
  const meta = parseSetMeta(r.rows[0]!.comment, pub);
  if (!meta) throw new NotFoundError(set, `unable to find set '${set}': publication ${pub} exists but its comment holds no pgark set metadata`);
  return meta;
}

/** Every set on the source (publications `pgark_*` with pgark metadata), ordered by name. */
export async function listSets(source: Client): Promise<SetMeta[]> {
  const r = await source.query<{ pubname: string; comment: string | null }>(
    "SELECT pubname, obj_description(oid, 'pg_publication') AS comment FROM pg_publication WHERE pubname LIKE 'pgark\\_%' ORDER BY pubname",
  );
  const out: SetMeta[] = [];
  for (const row of r.rows) {
    if (setOfPublication(row.pubname) === undefined) continue;
    const meta = parseSetMeta(row.comment, row.pubname);
    if (meta) out.push(meta);
  }
  return out;
}

/** Store the metadata in the publication's comment; sets meta.updatedAt to now. */
export async function writeSet(source: Client, meta: SetMeta): Promise<void> {
  meta.updatedAt = new Date().toISOString();
  const pub = publicationName(meta.set);
  await source.query(`COMMENT ON PUBLICATION ${quoteIdent(pub)} IS ${quoteLiteral(serializeSetMeta(meta))}`);
}

/** The tables the set's publication publishes now (pg_publication_tables), ordered. */
export async function publishedTables(source: Client, set: string): Promise<Array<{ schema: string; table: string }>> {
  const r = await source.query<{ schemaname: string; tablename: string }>(
    'SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = $1 ORDER BY schemaname, tablename',
    [publicationName(set)],
  );
  return r.rows.map((row) => ({ schema: row.schemaname, table: row.tablename }));
}
