/**
 * The owner of the data directory for the manifest header (uid, gid and the names this host
 * knows for them), looked up without blocking the thread: both `getent` calls run at once,
 * asynchronously, started when the backup begins, so their fork and exec overlap the copy
 * instead of stalling the thread at the manifest (execFileSync there showed as 0.5-6 % of a
 * backup's profile, bench/results/backup.md). Same answers as common/os-accounts.ts
 * ownerOfPath: getent (NSS sources such as LDAP or sssd count), else /etc/passwd and /etc/group.
 */
import { execFile } from 'node:child_process';
import { readFile, stat } from 'node:fs/promises';
import { findAccount, parseGroupLine, parsePasswdLine, type OsAccount } from '../common/os-accounts.js';

export interface DataOwner {
  uid: number;
  gid: number;
  user?: string;
  group?: string;
}

/** getent's output; null when getent says there is no such key (exit 2); undefined when getent could not run. */
function getent(db: 'passwd' | 'group', key: string): Promise<string | null | undefined> {
  return new Promise((resolve) => {
    execFile('getent', [db, key], { encoding: 'utf8', timeout: 10_000 }, (err, stdout) => {
      if (!err) return resolve(stdout);
      resolve((err as { code?: unknown }).code === 2 ? null : undefined);
    });
  });
}

async function lookup(db: 'passwd' | 'group', key: string): Promise<OsAccount | undefined> {
  const parse = db === 'passwd' ? parsePasswdLine : parseGroupLine;
  const out = await getent(db, key);
  if (out === null) return undefined;
  if (out !== undefined) return findAccount(out.split('\n'), key, parse);
  try {
    return findAccount((await readFile(`/etc/${db}`, 'utf8')).split('\n'), key, parse);
  } catch {
    return undefined;
  }
}

/** The owner of `p` by ids, with the names this host knows for them. */
export async function dataDirectoryOwner(p: string): Promise<DataOwner> {
  const st = await stat(p);
  const [user, group] = await Promise.all([lookup('passwd', String(st.uid)), lookup('group', String(st.gid))]);
  return { uid: st.uid, gid: st.gid, ...(user ? { user: user.name } : {}), ...(group ? { group: group.name } : {}) };
}
