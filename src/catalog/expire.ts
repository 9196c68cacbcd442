/**
 * `pgark expire`, `pgark keep` and `pgark delete`: apply the retention rules of retention.ts to
 * the repository. Runs under the stanza's backup lock, so it never races a backup. Backups are
 * removed dependents first and catalog entry first (see removeBackup); WAL is removed only below
 * the start segment of the oldest backup kept.
 */
import { ConfigError, InvalidInputError } from '../common/errors.js';
import { log, PhaseTimer } from '../common/log.js';
import { backlogPrefix, pinKey, receivedPrefix, receivedSegmentOfKey, walNameOfKey, walPrefix } from '../repo/layout.js';
import { acquireRepoLock } from '../repo/repo-lock.js';
import type { Repository } from '../repo/repository.js';
import { findBackup, listBackups, listPins, removeBackup, uncommittedBackupIds } from './catalog.js';
import { checkDelete, parseDuration, planRetention, walRemovable, type RetentionPlan, type RetentionPolicy } from './retention.js';

/** The retention settings expire and delete read (config/resolve.ts Settings has them). */
export interface RetentionSettings {
  retainFull: number | undefined;
  retainWindow: string | undefined;
  retainDaily: number | undefined;
  retainWeekly: number | undefined;
  retainMonthly: number | undefined;
}

export function policyFrom(settings: RetentionSettings): RetentionPolicy {
  const p: RetentionPolicy = {};
  if (settings.retainFull !== undefined) p.retainFull = settings.retainFull;
  if (settings.retainWindow !== undefined) p.retainWindowMs = parseDuration(settings.retainWindow);
  if (settings.retainDaily !== undefined) p.retainDaily = settings.retainDaily;
  if (settings.retainWeekly !== undefined) p.retainWeekly = settings.retainWeekly;
  if (settings.retainMonthly !== undefined) p.retainMonthly = settings.retainMonthly;
  return p;
}

export function hasPolicy(p: RetentionPolicy): boolean {
  return Object.values(p).some((v) => v !== undefined);
}

export interface ExpireOutcome {
  dryRun: boolean;
  plan: RetentionPlan;
  removedBackups: string[];
  removedUncommitted: string[];
  /** What this run removed: nothing on a dry run. */
  wal: { removed: number; removedBytes: number; keptFrom: string | null };
  /** Dry run only: every backup and WAL object a run without --dry-run would remove now. */
  wouldRemove?: ExpireWouldRemove;
}

export interface ExpireWouldRemove {
  /** Backups the plan expires, in deletion order. */
  backups: string[];
  /**
   * Backups without a catalog entry (interrupted runs) that are removed with them. The dry run
   * takes no lock: a backup running now is listed too (a real run holds the backup lock and never removes a running one).
   */
  uncommitted: string[];
  /** WAL objects below the oldest kept backup: archived files and pieces pgark receive stored, by name. */
  wal: { files: number; bytes: number; objects: Array<{ name: string; key: string; size: number }> };
}

export async function runExpire(repo: Repository, o: { retention: RetentionSettings; dryRun: boolean; now?: Date }): Promise<ExpireOutcome> {
  const policy = policyFrom(o.retention);
  if (!hasPolicy(policy)) throw new ConfigError('no retention policy: set retain-full, retain-window or retain-daily/weekly/monthly (flags, PGARK_RETAIN_* or the config file)');
  const phases = new PhaseTimer(o.dryRun ? 'expire --dry-run' : 'expire');
  const meta = await repo.requireStanza();
  const lock = o.dryRun ? undefined : await acquireRepoLock(repo, 'backup', { purpose: 'expire' });
  try {
    const backups = await listBackups(repo);
    const pins = await listPins(repo);
    const plan = planRetention(backups, pins, policy, o.now ?? new Date(), meta.walSegmentSize);
    phases.lap('lock, catalog and plan', `${backups.length} backups, ${plan.keep.length} kept, ${plan.expire.length} to expire`);
    for (const k of plan.keep) log.trace(() => `expire: backup ${k.id} kept: ${k.reasons.join('; ')}`);
    for (const e of plan.expire) log.trace(() => `expire: backup ${e.id} expires: ${e.reason}`);
    const out: ExpireOutcome = { dryRun: o.dryRun, plan, removedBackups: [], removedUncommitted: [], wal: { removed: 0, removedBytes: 0, keptFrom: plan.walKeepFrom?.segment ?? null } };
    // WAL below the oldest kept backup's start segment.
    const walDoomed: Array<{ path: string; size: number; name: string }> = [];
    if (plan.walKeepFrom) {
      for await (const obj of repo.list(walPrefix(repo.stanza))) {
        const name = walNameOfKey(obj.path);
        if (name && walRemovable(name, plan.walKeepFrom.segment, meta.walSegmentSize)) walDoomed.push({ path: obj.path, size: obj.size, name });
      }
      // Pieces pgark receive left of segments below the cut (the end of an old timeline).
      for await (const obj of repo.list(receivedPrefix(repo.stanza))) {
        const segment = receivedSegmentOfKey(obj.path);
        if (segment && walRemovable(segment, plan.walKeepFrom.segment, meta.walSegmentSize)) walDoomed.push({ path: obj.path, size: obj.size, name: segment });
      }
    }
    // WAL an async further repository still lacks (its backlog, kept here: wal/wal-backlog.ts) is
    // the only copy it can be filled from: kept until that repository has it.
    const backlogged = new Set<string>();
    for await (const obj of repo.list(backlogPrefix(repo.stanza))) backlogged.add(obj.path.slice(obj.path.lastIndexOf('/') + 1));
    const keptForBacklog = walDoomed.filter((w) => backlogged.has(w.name)).length;
    if (keptForBacklog > 0) {
      plan.warnings.push(`${keptForBacklog} WAL file(s) below the cut are kept: an async repository still lacks them (its backlog: pgark info; pgark copy --wal fills it)`);
      walDoomed.splice(0, walDoomed.length, ...walDoomed.filter((w) => !backlogged.has(w.name)));
    }
    walDoomed.sort((a, b) => (a.name < b.name ? -1 : 1));
    phases.lap('list WAL', `${walDoomed.length} object(s) below ${plan.walKeepFrom?.segment ?? '(nothing: no backup kept)'}`);
    if (o.dryRun) {
      out.wouldRemove = {
        backups: plan.expire.map((e) => e.id),
        // Read only (no sweep, no lock): a backup running right now shows here too (a real run holds the backup lock, so it never removes a running one).
        uncommitted: [...await uncommittedBackupIds(repo, new Set(backups.map((b) => b.id)), { sweep: false })].sort(),
        wal: { files: walDoomed.length, bytes: walDoomed.reduce((n, w) => n + w.size, 0), objects: walDoomed.map((w) => ({ name: w.name, key: w.path, size: w.size })) },
      };
      return out;
    }
    for (const e of plan.expire) {
      await removeBackup(repo, e.id, true);
      out.removedBackups.push(e.id);
    }
    for (const id of await uncommittedBackupIds(repo, new Set(backups.map((b) => b.id)))) {
      await removeBackup(repo, id, false);
      out.removedUncommitted.push(id);
    }
    phases.lap('remove backups', `${out.removedBackups.length} expired, ${out.removedUncommitted.length} uncommitted`);
    for (let i = 0; i < walDoomed.length; i += 500) {
      const batch = walDoomed.slice(i, i + 500);
      await repo.delete(batch.map((w) => w.path));
      out.wal.removed += batch.length;
      out.wal.removedBytes += batch.reduce((n, w) => n + w.size, 0);
    }
    phases.lap('remove WAL', `${out.wal.removed} object(s)`);
    phases.done();
    return out;
  } finally {
    await lock?.release();
  }
}

export async function setPin(repo: Repository, ref: string, release: boolean): Promise<{ id: string; changed: boolean }> {
  const backups = await listBackups(repo);
  const b = findBackup(backups, ref);
  const pins = await listPins(repo);
  if (release) {
    if (!pins.has(b.id)) return { id: b.id, changed: false };
    await repo.delete([pinKey(repo.stanza, b.id)]);
    return { id: b.id, changed: true };
  }
  if (pins.has(b.id)) return { id: b.id, changed: false };
  await repo.putJson(pinKey(repo.stanza, b.id), { id: b.id, pinnedAt: new Date().toISOString(), by: 'pgark keep' });
  return { id: b.id, changed: true };
}

export async function runDelete(repo: Repository, o: { retention: RetentionSettings; ref: string; force: boolean }): Promise<{ removed: string[]; overridden: string[] }> {
  const { ref, force } = o;
  const meta = await repo.requireStanza();
  const lock = await acquireRepoLock(repo, 'backup', { purpose: 'delete' });
  try {
    const backups = await listBackups(repo);
    const b = findBackup(backups, ref);
    const pins = await listPins(repo);
    const policy = policyFrom(o.retention);
    const reasons = checkDelete(b.id, backups, pins, hasPolicy(policy) ? policy : null, new Date(), meta.walSegmentSize);
    if (reasons.length > 0 && !force) {
      throw new InvalidInputError(`refusing to delete backup ${b.id}: ${reasons.join('; ')} (--force deletes it${backups.some((x) => x.parent === b.id) ? ' and every backup that depends on it' : ''})`);
    }
    // Dependents (incrementals built on it) go first, newest first.
    const doomed = backups.filter((x) => x.chain.includes(b.id)).sort((x, y) => y.chain.length - x.chain.length);
    const removed: string[] = [];
    for (const x of doomed) {
      await removeBackup(repo, x.id, true);
      removed.push(x.id);
    }
    return { removed, overridden: reasons };
  } finally {
    await lock.release();
  }
}
