/**
 * What a base backup leaves out of a data directory (pure), following PostgreSQL's own rules for
 * pg_basebackup (basebackup.c) and the low-level backup documentation:
 * - the contents (not the directories) of pg_wal, pg_stat_tmp, pg_replslot, pg_dynshmem,
 *   pg_notify, pg_serial, pg_snapshots, pg_subtrans; pg_wal/archive_status is kept empty;
 * - postmaster.pid, postmaster.opts, backup_label, tablespace_map, backup_manifest,
 *   postgresql.auto.conf.tmp, current_logfiles.tmp, pg_internal.init*;
 * - temporary files and directories (pgsql_tmp*) and temporary relations (t<backend>_<node>);
 * - every fork but the init fork of unlogged relations (a relation with an `_init` fork).
 * Paths are relative to the data directory (or a tablespace's root) and use '/'.
 */

export const EXCLUDE_DIR_CONTENTS: readonly string[] = [
  'pg_stat_tmp', 'pg_replslot', 'pg_dynshmem', 'pg_notify', 'pg_serial', 'pg_snapshots', 'pg_subtrans',
];

const EXCLUDE_FILES: ReadonlyArray<{ name: string; prefix: boolean }> = [
  { name: 'postgresql.auto.conf.tmp', prefix: false },
  { name: 'current_logfiles.tmp', prefix: false },
  { name: 'pg_internal.init', prefix: true },
  { name: 'backup_label', prefix: false },
  { name: 'tablespace_map', prefix: false },
  { name: 'backup_manifest', prefix: false },
  { name: 'postmaster.pid', prefix: false },
  { name: 'postmaster.opts', prefix: false },
];

/** `<relfilenode>[_<fork>][.<segment>]` */
const RELATION_FILE = /^(\d+)(?:_(fsm|vm|init))?(?:\.(\d+))?$/;
const TEMP_RELATION_FILE = /^t\d+_\d+(?:_(?:fsm|vm|init))?(?:\.\d+)?$/;

export interface RelationFile {
  relfilenode: string;
  fork: 'main' | 'fsm' | 'vm' | 'init';
  segment: number;
}

/** Parse a relation file name (base name only), or undefined for anything else. */
export function parseRelationFileName(name: string): RelationFile | undefined {
  const m = RELATION_FILE.exec(name);
  if (!m) return undefined;
  return { relfilenode: m[1]!, fork: (m[2] as RelationFile['fork'] | undefined) ?? 'main', segment: m[3] ? Number(m[3]) : 0 };
}

/** Directories whose files are relation files: global/, base/<db>/, and <tablespace>/<version>/<db>/. */
export function isRelationDirectory(relDir: string): boolean {
  return relDir === 'global' || /^base\/\d+$/.test(relDir) || /^pg_tblspc\/\d+\/PG_[^/]+\/\d+$/.test(relDir);
}

/** Relfilenodes in one directory that have an init fork: those relations are unlogged. */
export function unloggedRelations(fileNames: Iterable<string>): Set<string> {
  const out = new Set<string>();
  for (const n of fileNames) {
    const r = parseRelationFileName(n);
    if (r?.fork === 'init') out.add(r.relfilenode);
  }
  return out;
}

function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

function dirName(path: string): string {
  const i = path.lastIndexOf('/');
  return i < 0 ? '' : path.slice(0, i);
}

/**
 * Why `relPath` is left out of a backup, or undefined when it is copied. `unlogged` holds the
 * unlogged relfilenodes of the entry's own directory (see unloggedRelations). A directory that
 * is "emptied" is itself copied (as an empty directory) but nothing inside it is.
 */
export function exclusionReason(relPath: string, kind: 'file' | 'dir', unlogged: ReadonlySet<string> = new Set()): string | undefined {
  const name = baseName(relPath);
  const parent = dirName(relPath);
  if (name.startsWith('pgsql_tmp')) return 'temporary file';
  if (parent === 'pg_wal') {
    return kind === 'dir' && name === 'archive_status' ? undefined : 'WAL is archived separately';
  }
  if (parent.startsWith('pg_wal/')) return 'WAL is archived separately';
  for (const d of EXCLUDE_DIR_CONTENTS) {
    if (parent === d || parent.startsWith(`${d}/`)) return `contents of ${d} are recreated at start-up`;
  }
  if (kind === 'file') {
    if (EXCLUDE_FILES.some((e) => (e.prefix ? name.startsWith(e.name) : name === e.name))) return `${name} is not part of a backup`;
    if (isRelationDirectory(parent)) {
      if (TEMP_RELATION_FILE.test(name)) return 'temporary relation';
      const r = parseRelationFileName(name);
      if (r && r.fork !== 'init' && unlogged.has(r.relfilenode)) return 'unlogged relation (only its init fork is kept)';
    }
  }
  return undefined;
}
