/**
 * `pgark restore --tablespace-map OLD=NEW` (pure): where each tablespace of a backup is restored.
 *
 * OLD names a tablespace of the backup by OID (decimal), name, or original location (trailing
 * '/' ignored). NEW is an absolute path. A flag is split at the LAST '=' followed by '/', so
 * OLD may contain '=' (`/srv/a=b=/srv/new` maps '/srv/a=b'), but NEW cannot contain '=/'.
 */
import { InvalidInputError } from '../common/errors.js';
import type { TablespaceInfo } from '../catalog/manifest.js';
import { escapeForMessage } from '../wal/segment-name.js';

export const TABLESPACE_MAP_FLAG = '--tablespace-map';

export interface TablespaceMapping {
  from: string;
  to: string;
}

/** Trailing slashes removed and repeated slashes collapsed; '/' stays '/'. */
function tidyPath(p: string): string {
  const collapsed = p.replace(/\/{2,}/g, '/');
  return collapsed.length > 1 ? collapsed.replace(/\/+$/, '') : collapsed;
}

/** Parse `OLD=NEW` flags. NEW is returned tidied (no trailing or repeated '/'); OLD as given. */
export function parseTablespaceMap(flags: string[]): TablespaceMapping[] {
  return flags.map((flag) => {
    const bad = (why: string) => new InvalidInputError(`invalid ${TABLESPACE_MAP_FLAG} '${escapeForMessage(flag)}': ${why}`);
    if (/[\0\n\r]/.test(flag)) throw bad('contains a NUL, carriage return or newline');
    const at = flag.lastIndexOf('=/');
    if (at < 0) {
      throw bad(flag.includes('=') ? 'the new location must be an absolute path' : 'expected OLD=NEW (OLD: tablespace OID, name or location; NEW: absolute path)');
    }
    const from = flag.slice(0, at);
    const to = flag.slice(at + 1);
    if (from === '') throw bad('the tablespace to map (before =) is empty');
    if (to.split('/').some((seg) => seg === '.' || seg === '..')) throw bad("the new location must not contain '.' or '..' components");
    const tidy = tidyPath(to);
    if (tidy === '/') throw bad('the new location cannot be the root directory');
    return { from, to: tidy };
  });
}

function describe(ts: TablespaceInfo): string {
  return `${ts.oid} '${escapeForMessage(ts.name)}' at '${escapeForMessage(ts.location)}'`;
}

/** True when `inner` is `outer` or below it (both tidied absolute paths). */
function isWithin(inner: string, outer: string): boolean {
  return inner === outer || inner.startsWith(outer.endsWith('/') ? outer : `${outer}/`);
}

/**
 * The location of every tablespace of the backup (by OID, in the backup's order): mapped ones
 * at their NEW location, all others at their original one. Errors: an OLD matching no (or more
 * than one) tablespace, a tablespace mapped twice, two tablespaces at the same location, or a
 * location inside another one.
 */
export function resolveTablespaceMap(maps: TablespaceMapping[], tablespaces: TablespaceInfo[]): Map<number, string> {
  const result = new Map<number, string>();
  for (const ts of tablespaces) result.set(ts.oid, ts.location);
  const mappedBy = new Map<number, TablespaceMapping>();

  for (const m of maps) {
    const flag = `${TABLESPACE_MAP_FLAG} '${escapeForMessage(`${m.from}=${m.to}`)}'`;
    const fromPath = m.from.startsWith('/') ? tidyPath(m.from) : undefined;
    const matches = tablespaces.filter(
      (ts) => String(ts.oid) === m.from || ts.name === m.from || (fromPath !== undefined && tidyPath(ts.location) === fromPath),
    );
    if (matches.length === 0) {
      const has = tablespaces.length === 0 ? 'the backup has no tablespaces' : `the backup's tablespaces are: ${tablespaces.map(describe).join(', ')}`;
      throw new InvalidInputError(`${flag}: '${escapeForMessage(m.from)}' matches no tablespace of the backup (by OID, name or location); ${has}`);
    }
    const unique = [...new Set(matches)];
    if (unique.length > 1) {
      throw new InvalidInputError(`${flag}: '${escapeForMessage(m.from)}' matches more than one tablespace: ${unique.map(describe).join(', ')}; use the OID`);
    }
    const ts = unique[0] as TablespaceInfo;
    const earlier = mappedBy.get(ts.oid);
    if (earlier) {
      throw new InvalidInputError(
        `${flag}: tablespace ${describe(ts)} is already mapped by ${TABLESPACE_MAP_FLAG} '${escapeForMessage(`${earlier.from}=${earlier.to}`)}'`,
      );
    }
    mappedBy.set(ts.oid, m);
    result.set(ts.oid, m.to);
  }

  // Every pair where at least one location is new: never the same directory, never nested.
  const entries = tablespaces.map((ts) => ({ ts, loc: tidyPath(result.get(ts.oid) ?? ts.location), mapped: mappedBy.has(ts.oid) }));
  for (let i = 0; i < entries.length; i++) {
    for (let j = i + 1; j < entries.length; j++) {
      const a = entries[i]!;
      const b = entries[j]!;
      if (!a.mapped && !b.mapped) continue;
      const where = (e: typeof a) => `${describe(e.ts)}${e.mapped ? ` (mapped to '${escapeForMessage(e.loc)}')` : ''}`;
      if (a.loc === b.loc) {
        throw new InvalidInputError(`${TABLESPACE_MAP_FLAG}: tablespaces ${where(a)} and ${where(b)} would share the location '${escapeForMessage(a.loc)}'`);
      }
      const [inner, outer] = isWithin(a.loc, b.loc) ? [a, b] : isWithin(b.loc, a.loc) ? [b, a] : [undefined, undefined];
      if (inner && outer) {
        throw new InvalidInputError(`${TABLESPACE_MAP_FLAG}: the location of tablespace ${where(inner)} is inside that of tablespace ${where(outer)}`);
      }
    }
  }
  return result;
}
