/**
 * OS users and groups of this host, by name or numeric id: `getent` (so NSS sources such as LDAP
 * or sssd count), else /etc/passwd and /etc/group. Parsing is pure and exported for tests.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

export interface OsAccount {
  name: string;
  id: number;
  /** Primary group id (users only). */
  gid?: number;
}

/** `name:passwd:uid:gid:gecos:home:shell` */
export function parsePasswdLine(line: string): OsAccount | undefined {
  const f = line.trim().split(':');
  if (f.length < 7 || f[0] === '' || !/^\d+$/.test(f[2]!) || !/^\d+$/.test(f[3]!)) return undefined;
  return { name: f[0]!, id: Number(f[2]), gid: Number(f[3]) };
}

/** `name:passwd:gid:members` */
export function parseGroupLine(line: string): OsAccount | undefined {
  const f = line.trim().split(':');
  if (f.length < 4 || f[0] === '' || !/^\d+$/.test(f[2]!)) return undefined;
  return { name: f[0]!, id: Number(f[2]) };
}

/** The entry of `lines` whose name is `key`, or whose id is `key` when it is all digits (names first, as getent does). */
export function findAccount(lines: readonly string[], key: string, parse: (l: string) => OsAccount | undefined): OsAccount | undefined {
  const all = lines.map(parse).filter((a): a is OsAccount => a !== undefined);
  return all.find((a) => a.name === key) ?? (/^\d+$/.test(key) ? all.find((a) => a.id === Number(key)) : undefined);
}

function lookup(db: 'passwd' | 'group', key: string): OsAccount | undefined {
  const parse = db === 'passwd' ? parsePasswdLine : parseGroupLine;
  let out: string | undefined;
  try {
    out = execFileSync('getent', [db, key], { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'ignore'] });
  } catch (err) {
    // getent exits 2 for "no such key"; any other failure (not installed) falls back to the file.
    if ((err as { status?: number }).status === 2) return undefined;
    out = undefined;
  }
  if (out !== undefined) return findAccount(out.split('\n'), key, parse);
  try {
    return findAccount(readFileSync(`/etc/${db}`, 'utf8').split('\n'), key, parse);
  } catch {
    return undefined;
  }
}

export function lookupOsUser(nameOrUid: string): OsAccount | undefined {
  return lookup('passwd', nameOrUid);
}

export function lookupOsGroup(nameOrGid: string): OsAccount | undefined {
  return lookup('group', nameOrGid);
}

/** The owner of `p` by ids, with the names this host knows for them (for a backup manifest). */
export async function ownerOfPath(p: string): Promise<{ uid: number; gid: number; user?: string; group?: string }> {
  const { stat } = await import('node:fs/promises');
  const st = await stat(p);
  const user = lookupOsUser(String(st.uid))?.name;
  const group = lookupOsGroup(String(st.gid))?.name;
  return { uid: st.uid, gid: st.gid, ...(user !== undefined ? { user } : {}), ...(group !== undefined ? { group } : {}) };
}
