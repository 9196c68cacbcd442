/**
 * Who owns a restored data directory. PostgreSQL refuses to start on a data directory that is
 * not owned by the user it runs as, and refuses to run as root; so a restore (or clone) run as
 * root must hand every file it writes to the cluster's OS user, or refuse before writing:
 *
 * - not root: the files belong to the user running pgark (nothing to decide); `--owner` naming
 *   anyone else is refused, since only root can give files away.
 * - root with `--owner user[:group]`: that user (and group, else the user's primary group).
 * - root, backup records its owner (the source data directory's owner, by name and id, since
 *   pgark 0.1 of issue 19): the user of that name on this host (its group by name, else the
 *   user's primary group).
 * - root, backup records no owner (older backups): the owner of the existing target directory
 *   when that is not root.
 * - otherwise, or when the user is unknown here or is root: refused (ConfigError, exit 2) with
 *   the reason and what to pass.
 *
 * The decision is pure (lookups injected); restore.ts applies it.
 */
import type { OsAccount } from '../common/os-accounts.js';

/** The owner of the source data directory, as recorded in a backup manifest's header. */
export interface RecordedOwner {
  uid: number;
  gid: number;
  /** Names on the source host (absent when they could not be looked up there). */
  user?: string;
  group?: string;
}

export type OwnerDecision =
  | { kind: 'asIs' }
  | { kind: 'chown'; uid: number; gid: number; user: string; group: string; source: string }
  | { kind: 'refuse'; reason: string };

export interface OwnerFacts {
  /** Effective uid of this process. */
  euid: number;
  /** The --owner text, when given. */
  option?: string | undefined;
  recorded?: RecordedOwner | undefined;
  backupId: string;
  /** Owner of the target directory when it existed before the restore. */
  existingDir?: { uid: number; gid: number } | undefined;
  lookupUser: (nameOrUid: string) => OsAccount | undefined;
  lookupGroup: (nameOrGid: string) => OsAccount | undefined;
}

const ROOT_REFUSED = 'PostgreSQL refuses to run as root';

/** Parse `user[:group]` (names or numeric ids). */
export function parseOwnerOption(text: string): { user: string; group?: string } | undefined {
  const m = /^([A-Za-z0-9_][A-Za-z0-9_.-]*\$?)(?::([A-Za-z0-9_][A-Za-z0-9_.-]*\$?))?$/.exec(text.trim());
  if (!m) return undefined;
  return m[2] !== undefined ? { user: m[1]!, group: m[2] } : { user: m[1]! };
}

export function decideOwner(f: OwnerFacts): OwnerDecision {
  const groupName = (gid: number): string => f.lookupGroup(String(gid))?.name ?? String(gid);
  if (f.option !== undefined) {
    const o = parseOwnerOption(f.option);
    if (!o) return { kind: 'refuse', reason: `invalid --owner '${f.option.slice(0, 64)}': expected USER or USER:GROUP (names or numeric ids)` };
    const u = f.lookupUser(o.user);
    if (!u) return { kind: 'refuse', reason: `--owner: no user '${o.user}' on this host` };
    if (u.id === 0) return { kind: 'refuse', reason: `--owner ${o.user}: ${ROOT_REFUSED}; name the cluster's OS user (e.g. postgres)` };
    let gid = u.gid ?? 0;
    if (o.group !== undefined) {
      const g = f.lookupGroup(o.group);
      if (!g) return { kind: 'refuse', reason: `--owner: no group '${o.group}' on this host` };
      gid = g.id;
    }
    if (f.euid !== 0) {
      if (u.id === f.euid) return { kind: 'asIs' };
      return { kind: 'refuse', reason: `--owner ${o.user} needs root: only root can give the restored files to another user (this is uid ${f.euid}; run pgark as ${o.user} instead, or as root)` };
    }
    return { kind: 'chown', uid: u.id, gid, user: u.name, group: groupName(gid), source: '--owner' };
  }
  if (f.euid !== 0) return { kind: 'asIs' };

  const hint = 'pass --owner USER[:GROUP] (the OS user PostgreSQL will run as), or run pgark as that user';
  if (f.recorded) {
    const r = f.recorded;
    const u = r.user !== undefined ? f.lookupUser(r.user) : f.lookupUser(String(r.uid));
    const shown = r.user !== undefined ? `'${r.user}' (uid ${r.uid} on the source host)` : `uid ${r.uid}`;
    if (!u) return { kind: 'refuse', reason: `running as root: backup ${f.backupId} records the data directory owner ${shown}, and there is no such user on this host; ${hint}` };
    if (u.id === 0) return { kind: 'refuse', reason: `running as root: backup ${f.backupId} records the data directory owner ${shown}, which is root here: ${ROOT_REFUSED}; ${hint}` };
    const g = r.group !== undefined ? f.lookupGroup(r.group) : undefined;
    const gid = g?.id ?? u.gid ?? r.gid;
    return { kind: 'chown', uid: u.id, gid, user: u.name, group: groupName(gid), source: `the owner recorded in backup ${f.backupId}` };
  }
  if (f.existingDir && f.existingDir.uid !== 0) {
    const u = f.lookupUser(String(f.existingDir.uid));
    return {
      kind: 'chown', uid: f.existingDir.uid, gid: f.existingDir.gid, user: u?.name ?? String(f.existingDir.uid), group: groupName(f.existingDir.gid),
      source: 'the owner of the existing target directory (the backup records none)',
    };
  }
  return {
    kind: 'refuse',
    reason: `running as root: backup ${f.backupId} does not record who owned the data directory (it was taken by an older pgark) and the target directory is not owned by an unprivileged user; ` +
      `PostgreSQL could not start on a data directory owned by root: ${hint}`,
  };
}
