/**
 * Which repository a restore reads (pure), when the stanza has several (repo, repo2, repo3 in
 * priority order). Each repository's listing is either its backups or the error that kept it
 * from answering (unreachable, no marker, wrong key): such a repository is skipped, never taken
 * as "no backups".
 *
 * - A named backup: the first repository, in priority order, that holds it.
 * - 'latest' / 'auto': the newest backup that can reach the target (restore-select.ts) across the
 *   repositories that answered; the same backup in two repositories, or two that end at the same
 *   instant, go to the one first in priority order.
 * - The fallbacks: the other repositories that answered and hold every backup of the chosen
 *   chain as stored (same ids and the same manifest checksums, as `pgark copy` leaves them), in
 *   priority order. Objects that cannot be read from the chosen one are read from them.
 *
 * When no repository gives a backup, the error names each repository's state; with one
 * repository it is that repository's own error, as before.
 */
import { PgarkError } from '../common/errors.js';
import type { BackupInfo } from '../catalog/backup-info.js';
import { chainOf } from '../catalog/catalog.js';
import type { RecoveryTarget } from './recovery-target.js';
import { chooseBackup } from './restore-select.js';

export type RepoListing = { name: string; backups: readonly BackupInfo[] } | { name: string; error: unknown };

export interface RepoChoice {
  /** The repository read first. */
  repo: string;
  backup: BackupInfo;
  /** The backups of its chain in that repository, root full first. */
  chain: BackupInfo[];
  /** Other repositories holding the same chain as stored, in priority order. */
  fallbacks: string[];
  /** Repositories that could not answer, with why (for warnings and notes). */
  unreachable: Array<{ name: string; error: unknown }>;
  note?: string;
}

type Candidate = { name: string; backup: BackupInfo; chain: BackupInfo[]; note?: string };

export function chooseAcrossRepos(listings: readonly RepoListing[], ref: string, target: RecoveryTarget): RepoChoice {
  if (listings.length === 0) throw new Error('chooseAcrossRepos: no repository');
  const unreachable: RepoChoice['unreachable'] = [];
  const candidates: Candidate[] = [];
  const refusals: Array<{ name: string; error: unknown }> = [];
  for (const l of listings) {
    if ('error' in l) {
      unreachable.push({ name: l.name, error: l.error });
      continue;
    }
    try {
      const c = chooseBackup(l.backups, ref, target);
      candidates.push({ name: l.name, backup: c.backup, chain: chainOf(l.backups, c.backup), ...(c.note ? { note: c.note } : {}) });
    } catch (err) {
      refusals.push({ name: l.name, error: err });
    }
  }
  if (candidates.length === 0) throw noBackup(listings, unreachable, refusals);
  let best = candidates[0]!;
  if (ref === 'auto' || ref === 'latest') {
    for (const c of candidates.slice(1)) if (newer(c.backup, best.backup)) best = c;
  }
  const fallbacks = listings.filter((l): l is Extract<RepoListing, { backups: readonly BackupInfo[] }> => l.name !== best.name && 'backups' in l && holdsChain(l.backups, best.chain)).map((l) => l.name);
  return { repo: best.name, backup: best.backup, chain: best.chain, fallbacks, unreachable, ...(best.note ? { note: best.note } : {}) };
}

/** Whether `a` ends after `b` (stop time, then stop LSN). */
function newer(a: BackupInfo, b: BackupInfo): boolean {
  const ta = Date.parse(a.stop.time);
  const tb = Date.parse(b.stop.time);
  if (ta !== tb) return ta > tb;
  return lsnValue(a.stop.lsn) > lsnValue(b.stop.lsn);
}

function lsnValue(lsn: string): bigint {
  const [hi = '0', lo = '0'] = lsn.split('/');
  return (BigInt(`0x${hi}`) << 32n) + BigInt(`0x${lo}`);
}

/** Every backup of `chain` is in `backups` with the same manifest (stored as `pgark copy` stores it). */
export function holdsChain(backups: readonly BackupInfo[], chain: readonly BackupInfo[]): boolean {
  return chain.every((c) => backups.some((b) => b.id === c.id && b.manifest.sha256 === c.manifest.sha256 && b.systemIdentifier === c.systemIdentifier));
}

/** One short line per repository's state. */
export function stateText(name: string, error: unknown): string {
  return `${name}: ${error instanceof Error ? error.message : String(error)}`;
}

/**
 * The error when no repository gives a backup. One repository: its own error. Several: the
 * first unreachable repository's error (its exit code says "cannot read", not "no backup"), else
 * the first refusal's, with a message naming every repository's state.
 */
function noBackup(listings: readonly RepoListing[], unreachable: RepoChoice['unreachable'], refusals: Array<{ name: string; error: unknown }>): unknown {
  const first = unreachable[0] ?? refusals[0]!;
  if (listings.length === 1) return first.error;
  const states = listings.map((l) => {
    const u = unreachable.find((x) => x.name === l.name);
    if (u) return stateText(`${l.name} (unreachable)`, u.error);
    return stateText(l.name, refusals.find((x) => x.name === l.name)!.error);
  });
  const why = unreachable.length === listings.length ? 'no repository could be read' : 'no repository has a backup to restore';
  const message = `${why}: ${states.join('; ')}`;
  const err = first.error;
  if (err instanceof PgarkError) {
    // Keep its class and exit code; the message names every repository.
    err.message = message;
    return err;
  }
  return new PgarkError(message, { cause: err });
}
