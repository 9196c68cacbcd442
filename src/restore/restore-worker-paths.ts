/** Where a manifest path is written on restore (shared by the main thread and the workers). */
export interface PathMapping {
  pgdata: string;
  /** Tablespace oid -> directory that replaces pg_tblspc/<oid>. */
  tablespaces: Record<string, string>;
  /** Paths written under another name and renamed at the end. */
  holdBack: Record<string, string>;
}

export function targetPath(m: PathMapping, path: string): string {
  const t = /^pg_tblspc\/(\d+)\/(.*)$/.exec(path);
  if (t && m.tablespaces[t[1]!] !== undefined) return `${m.tablespaces[t[1]!]}/${t[2]}`;
  return `${m.pgdata}/${m.holdBack[path] ?? path}`;
}
