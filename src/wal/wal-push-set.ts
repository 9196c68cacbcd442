/**
 * wal-push with more than one repository (repo2, repo3): the file is stored in every required
 * repository, in parallel, and success is reported only when it is durable in each (any failure
 * fails the call: PostgreSQL keeps the file and calls again; what was stored already is found
 * identical then). An async repository that cannot take it gets a backlog record in the first
 * repository (wal-backlog.ts) before success is reported, and is filled behind by later calls
 * that reach it, by pgark agent, and by `pgark copy --wal`. No look-ahead workers; a push record
 * is taken only when it names this very set (setPushTarget: written by pgark agent, after
 * storeInEveryRepo, which the agent and the receiver use too).
 */
import { join, resolve } from 'node:path';
import { ArchiveMismatchError } from '../common/errors.js';
import { log } from '../common/log.js';
import type { RepoSet, RepoSetMember } from '../repo/repo-set.js';
import { requireRepo, type Settings } from '../config/resolve.js';
import { pushTarget, takePushRecord } from './fast-path.js';
import type { Repository } from '../repo/repository.js';
import { auditEvent, writeAudit, type AuditEvent } from './audit.js';
import { inspectLocalWal, type LocalWalFile } from './inspect-local.js';
import { pushWalFile, type PushResult } from './push-file.js';
import { assertWalFileName } from './segment-name.js';
import { walDirOf } from './spool.js';
import { backlogNames, fillBacklog, recordBacklog } from './wal-backlog.js';
import { stanzaFor, type WalPushReport, type WalPushSettings } from './wal-push.js';

/** How many backlog files one call fills per async repository it reached. */
export const BACKLOG_FILL_PER_CALL = 16;

async function pushTo(repo: Repository, settings: WalPushSettings, file: LocalWalFile, walDir: string): Promise<PushResult> {
  const meta = await stanzaFor(repo, settings, file, walDir);
  return pushWalFile(repo, file, { codec: settings.codecExplicit ? settings.codec : meta.codec, level: settings.compressLevel });
}

export interface RepoPushOutcome {
  repo: string;
  status: 'stored' | 'exists' | 'backlog';
}

/** Where a push record of this call or agent points: one repository as before; with repo2, repo3 the whole set (locations and modes). */
export function setPushTarget(settings: Pick<Settings, 'repo' | 'stanza' | 'moreRepos'>): string {
  const repo = requireRepo(settings);
  if (settings.moreRepos.length === 0) return pushTarget(repo, settings.stanza);
  // A record of the set says: durable in every required repository, and in every async one or
  // its backlog. A call with other repositories or modes (another target) never takes it.
  return pushTarget(['set', repo, ...settings.moreRepos.map((m) => `${m.name} ${m.mode} ${m.location}`)].join('\n'), settings.stanza);
}

export interface StoreInEveryRepoOptions {
  /**
   * The async repositories: 'now' (default) tries each and records the backlog when it fails;
   * 'behind' only records the backlog (a BacklogFiller stores it); 'none' leaves them out
   * (what only the required ones keep: a receiver's pieces).
   */
  async?: 'now' | 'behind' | 'none';
}

/** What storing one file in every repository did, for the caller to log, record and fill behind. */
export interface SetStoreResult<T> {
  /** The result of each required repository (the first repository's is first). */
  required: T[];
  outcomes: RepoPushOutcome[];
  /** Async repositories that took the file now (their backlog can be filled). */
  reached: Array<{ name: string; repo: Repository }>;
}

/**
 * Store WAL file `name` in every repository of the set with `put`: every required one in
 * parallel, where any failure throws (naming the repository: the file must not be reported
 * durable), then each async one, where a failure (or a repository that could not be opened)
 * becomes a backlog record in the first repository before this returns. The one place that
 * decides what "stored in the set" means: wal-push, the agent and the receiver all use it.
 */
export async function storeInEveryRepo<T extends { status: 'stored' | 'exists' }>(
  set: RepoSet, name: string, put: (repo: Repository, member: RepoSetMember) => Promise<T>,
  o: StoreInEveryRepoOptions = {},
): Promise<SetStoreResult<T>> {
  const required = set.required;
  const results = await Promise.allSettled(required.map((m) => put(m.repo!, m)));
  const failed = results.findIndex((r) => r.status === 'rejected');
  if (failed >= 0) {
    if (set.members.length > 1) {
      for (const [i, r] of results.entries()) {
        if (r.status === 'rejected') log.error(`${required[i]!.name}: unable to archive '${name}': ${(r.reason as Error).message}`);
      }
    }
    const err = (results[failed] as PromiseRejectedResult).reason as Error;
    if (set.members.length === 1) throw err;
    throw Object.assign(err, { message: `${required[failed]!.name}: ${err.message}; not reported as archived (it must be durable in every required repository)` });
  }
  const values = results.map((r) => (r as PromiseFulfilledResult<T>).value);
  const outcomes: RepoPushOutcome[] = values.map((v, i) => ({ repo: required[i]!.name, status: v.status }));
  const reached: Array<{ name: string; repo: Repository }> = [];
  if (o.async === 'none') return { required: values, outcomes, reached };
  for (const m of set.async) {
    if (o.async === 'behind') {
      // Recorded first, stored by a BacklogFiller in the background: a synchronous standby never waits for it.
      await recordBacklog(set.first, m.name, name, 'stored behind (pgark receive)');
      outcomes.push({ repo: m.name, status: 'backlog' });
      continue;
    }
    let reason: string;
    const repo = m.repo ?? (await set.reopen(m));
    if (repo) {
      try {
        const res = await put(repo, m);
        outcomes.push({ repo: m.name, status: res.status });
        reached.push({ name: m.name, repo });
        continue;
      } catch (err) {
        reason = (err as Error).message;
      }
    } else {
      reason = `unable to open: ${(m.openError as Error).message}`;
    }
    // Before success is reported: a backlog that cannot be recorded fails the call.
    await recordBacklog(set.first, m.name, name, reason);
    log.warn(`${m.name} (async): '${name}' not stored there now (${reason}); recorded in its backlog`);
    outcomes.push({ repo: m.name, status: 'backlog' });
  }
  return { required: values, outcomes, reached };
}

/**
 * A segment that pgark agent stored in every repository of this call's set, unchanged since:
 * its push record (consumed), names the same repositories and modes. Undefined otherwise.
 */
export async function pushedAheadToSet(settings: Pick<Settings, 'repo' | 'stanza' | 'moreRepos'>, pathArg: string): Promise<WalPushReport | undefined> {
  const path = resolve(pathArg);
  const name = path.slice(path.lastIndexOf('/') + 1);
  if (assertWalFileName(name).kind !== 'segment' || !(await takePushRecord(path, setPushTarget(settings)))) return undefined;
  log.info(`'${name}' was already stored in every repository by pgark agent`);
  return { name, status: 'pushed-ahead', queuedAhead: [] };
}

export async function walPushToSet(set: RepoSet, settings: WalPushSettings, pathArg: string): Promise<WalPushReport & { repos: RepoPushOutcome[] }> {
  const started = Date.now();
  const path = resolve(pathArg);
  const name = path.slice(path.lastIndexOf('/') + 1);
  const wal = assertWalFileName(name);
  const walDir = walDirOf(path);
  const file = await inspectLocalWal(path, wal, name);
  const first = set.first;
  const events: AuditEvent[] = [];
  try {
    const { required, outcomes, reached } = await storeInEveryRepo(set, name, (repo) => pushTo(repo, settings, file, walDir));
    events.push(required[0]!.event);
    const workDir = join(walDir, '.pgark', 'backlog');
    for (const r of reached) await fillBacklog(first, r.repo, r.name, workDir, BACKLOG_FILL_PER_CALL);
    const status = outcomes[0]!.status === 'exists' ? 'exists' : 'stored';
    log.info(`pushed '${name}' to ${outcomes.map((o) => `${o.repo} (${o.status})`).join(', ')} in ${Date.now() - started} ms`);
    return { name, status, queuedAhead: [], repos: outcomes };
  } catch (err) {
    events.unshift(auditEvent(err instanceof ArchiveMismatchError ? 'mismatch' : 'error', name, started, { detail: (err as Error).message }));
    throw err;
  } finally {
    await writeAudit(first, events).catch((e: unknown) => log.warn(`unable to write the audit record: ${(e as Error).message}`));
  }
}

/**
 * Fills the backlogs of a set's async repositories in the background, one round at a time, oldest
 * first (pgark agent and pgark receive; a short wal-push call fills a few itself). An async
 * repository that could not be opened is tried again (RepoSet.reopen). A round that cannot reach
 * the repository leaves its backlog as it is, for the next round.
 */
export class BacklogFiller {
  private running: Promise<void> | undefined;
  /** Async repositories whose backlog may hold files: all at the start, then those that got a record. */
  private readonly mayLag: Set<string>;

  constructor(private readonly set: RepoSet, private readonly workDir: string, private readonly perRound: number, private readonly label: string) {
    this.mayLag = new Set(set.async.map((m) => m.name));
  }

  /** A backlog record was written for this repository. */
  noteBacklog(repoName: string): void {
    this.mayLag.add(repoName);
  }

  get busy(): boolean {
    return this.running !== undefined;
  }

  /** Start a round unless one runs or no backlog is known; `done` is called when it ends. */
  kick(done?: () => void): void {
    if (this.running || this.mayLag.size === 0) return;
    this.running = this.round()
      .catch((err: unknown) => log.warn(`${this.label}: backlog not filled this round: ${(err as Error).message}`))
      .finally(() => {
        this.running = undefined;
        done?.();
      });
  }

  /** Wait for the round in progress, if any. */
  async idle(): Promise<void> {
    await this.running;
  }

  private async round(): Promise<void> {
    const first = this.set.first;
    for (const m of this.set.async) {
      if (!this.mayLag.has(m.name)) continue;
      const names = await backlogNames(first, m.name);
      if (names.length === 0) {
        this.mayLag.delete(m.name);
        continue;
      }
      const target = m.repo ?? (await this.set.reopen(m));
      if (!target) continue;
      const n = await fillBacklog(first, target, m.name, this.workDir, this.perRound);
      if (n > 0) log.info(`${this.label}: ${m.name}: filled ${n} of ${names.length} backlog files`);
    }
  }
}
