/**
 * The I/O of restore-owner.ts: gather the facts (effective uid, the target's owner, OS account
 * lookups) and give a restored tree to its owner.
 */
import { lchown, lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError, isNodeError } from '../common/errors.js';
import { lookupOsGroup, lookupOsUser } from '../common/os-accounts.js';
import { decideOwner, type OwnerDecision, type RecordedOwner } from './restore-owner.js';

export type ChownPlan = Extract<OwnerDecision, { kind: 'chown' }>;

/** Decide up front (before anything is written); a refusal is a ConfigError (exit 2). */
export async function planRestoreOwner(o: { option?: string | undefined; recorded?: RecordedOwner | undefined; backupId: string; pgdata: string }): Promise<ChownPlan | undefined> {
  const euid = typeof process.geteuid === 'function' ? process.geteuid() : -1;
  if (euid === -1) return undefined;
  const st = await lstat(o.pgdata).catch((err: unknown) => {
    if (isNodeError(err, 'ENOENT')) return undefined;
    throw err;
  });
  const d = decideOwner({
    euid, option: o.option, recorded: o.recorded, backupId: o.backupId,
    existingDir: st?.isDirectory() ? { uid: st.uid, gid: st.gid } : undefined,
    lookupUser: lookupOsUser, lookupGroup: lookupOsGroup,
  });
  if (d.kind === 'refuse') throw new ConfigError(`not restoring: ${d.reason}`);
  return d.kind === 'chown' ? d : undefined;
}

/** lchown `root` and everything under it (links themselves, never their targets). */
export async function chownTree(root: string, plan: ChownPlan): Promise<void> {
  await lchown(root, plan.uid, plan.gid);
  const st = await lstat(root);
  if (!st.isDirectory()) return;
  for (const e of await readdir(root, { withFileTypes: true })) {
    const p = join(root, e.name);
    if (e.isDirectory()) await chownTree(p, plan);
    else await lchown(p, plan.uid, plan.gid);
  }
}
