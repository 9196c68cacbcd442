/**
 * Where restore puts each tablespace (pure): the location --tablespace-map names, or the one the
 * backup was taken from; and the tablespace_map file that names them for PostgreSQL.
 */
import type { Manifest } from '../catalog/manifest.js';

/** OID (text) -> location restored into, for each pg_tblspc/<oid> link of the backup. */
export function tablespaceTargets(links: Manifest['links'], tsMap: ReadonlyMap<number, string>): Record<string, string> {
  const tablespaces: Record<string, string> = {};
  for (const l of links) {
    const oid = Number(l.path.slice('pg_tblspc/'.length));
    // A tablespace inside the data directory is allowed by PostgreSQL (with a warning); kept as it is.
    tablespaces[String(oid)] = tsMap.get(oid) ?? l.target;
  }
  return tablespaces;
}

/**
 * The tablespace_map file for the locations restored into. PostgreSQL recreates pg_tblspc links
 * from it during recovery: it must name these, not the source's. A backslash, newline or carriage
 * return in a location is escaped with a backslash (PostgreSQL's read_tablespace_map takes a backslash as
 * escaping the next character).
 */
export function tablespaceMapText(links: Manifest['links'], tablespaces: Readonly<Record<string, string>>): string {
  const esc = (p: string) => p.replace(/[\\\n\r]/g, (c) => `\\${c}`);
  return links.map((l) => {
    const oid = l.path.slice('pg_tblspc/'.length);
    return `${oid} ${esc(tablespaces[oid] ?? l.target)}\n`;
  }).join('');
}
