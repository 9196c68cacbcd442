/**
 * The repositories of a stanza (`repo`, then `repo2`, `repo3` in priority order), each a
 * Repository (the only door to storage) opened with the shared driver settings and its own key
 * source. `repo` is always required; a further one is 'required' (wal-push succeeds only when a
 * file is durable in it too) or 'async' (a file it cannot take now goes to its backlog, kept in
 * `repo`: layout.ts backlogKey).
 *
 * Opening never hides a failure: a required repository that cannot be opened fails the whole
 * set; an async one that cannot be opened is kept with its error (`openError`), so the caller
 * records the backlog instead of pretending it was written.
 */
import { moreRepoSettings, type MoreRepo, type RepositorySettings } from '../config/resolve.js';
import { openRepository, type OpenRepositoryOptions } from './open-repository.js';
import type { Repository } from './repository.js';

export interface RepoSetMember {
  /** 'repo', 'repo2', 'repo3'. */
  name: string;
  mode: 'required' | 'async';
  /** Undefined when an async repository could not be opened (see openError). */
  repo: Repository | undefined;
  openError?: unknown;
  /** Lazy sets (readers): opens it on first use (see RepoSet.use). */
  open?: () => Promise<Repository>;
  /** An async repository that could not be opened: how to try again (RepoSet.reopen), and when it last failed. */
  reopen?: () => Promise<Repository>;
  failedAt?: number;
  /** What it is opened with (restore hands it to its worker threads). */
  settings?: RepositorySettings;
}

/** A long-running process (agent, receiver) tries an async repository that could not be opened again after this long. */
export const REOPEN_AFTER_MS = 10_000;

export type RepoSetSettings = RepositorySettings & { moreRepos: readonly MoreRepo[] };

export class RepoSet {
  constructor(readonly members: RepoSetMember[]) {}

  /** The first repository (`repo`): backups, the backlog, the audit trail. */
  get first(): Repository {
    const m = this.members[0]!;
    if (!m.repo) throw m.openError;
    return m.repo;
  }

  get required(): RepoSetMember[] {
    return this.members.filter((m) => m.mode === 'required');
  }

  get async(): RepoSetMember[] {
    return this.members.filter((m) => m.mode === 'async');
  }

  /**
   * The member's repository, opened now if the set is lazy (`openRepoSet(.., { lazy: true })`):
   * a reader that finds what it needs in `repo` never waits for an unreachable repo2. Undefined
   * when it cannot be opened (the error is kept in openError).
   */
  async use(m: RepoSetMember): Promise<Repository | undefined> {
    if (m.repo || !m.open) return m.repo;
    const open = m.open;
    delete m.open;
    try {
      m.repo = await open();
    } catch (err) {
      m.openError = err;
    }
    return m.repo;
  }

  /**
   * An async member that could not be opened, tried again when REOPEN_AFTER_MS have passed since
   * it last failed (a short wal-push call never waits twice; the agent and the receiver get it
   * back once it is reachable). Undefined while it still cannot be opened.
   */
  async reopen(m: RepoSetMember, now = Date.now()): Promise<Repository | undefined> {
    if (m.repo || !m.reopen) return m.repo;
    if (m.failedAt !== undefined && now - m.failedAt < REOPEN_AFTER_MS) return undefined;
    try {
      m.repo = await m.reopen();
      delete m.openError;
    } catch (err) {
      m.openError = err;
      m.failedAt = Date.now();
    }
    return m.repo;
  }

  async close(): Promise<void> {
    await Promise.all(this.members.map((m) => m.repo?.close().catch(() => undefined)));
  }
}

/** Open every repository of the settings; `open` defaults to openRepository (tests pass memory ones). */
export interface OpenRepoSetOptions extends OpenRepositoryOptions {
  /**
   * 'required' (default): a required repository that cannot be opened fails the set. 'none'
   * (readers: wal-fetch): every failure is kept as the member's openError, for the caller to
   * count as "cannot answer", never as "missing".
   */
  mustOpen?: 'required' | 'none';
  /** Open each repository only when RepoSet.use asks for it (implies mustOpen 'none'). */
  lazy?: boolean;
}

export async function openRepoSet(
  settings: RepoSetSettings,
  o: OpenRepoSetOptions = {},
  open: (s: RepositorySettings, o: OpenRepositoryOptions) => Promise<Repository> = openRepository,
): Promise<RepoSet> {
  const members: RepoSetMember[] = [];
  const set = new RepoSet(members);
  try {
    const all = [{ name: 'repo', mode: 'required' as const, settings: settings as RepositorySettings }, ...settings.moreRepos.map((m) => ({ name: m.name, mode: m.mode, settings: moreRepoSettings(settings, m) }))];
    for (const m of all) {
      if (o.lazy) {
        members.push({ name: m.name, mode: m.mode, repo: undefined, settings: m.settings, open: () => open(m.settings, o) });
        continue;
      }
      try {
        members.push({ name: m.name, mode: m.mode, repo: await open(m.settings, o), settings: m.settings });
      } catch (err) {
        // Its error names the location and keeps its exit code; the message says which repository.
        if (m.mode === 'required' && o.mustOpen !== 'none') {
          if (err instanceof Error && m.name !== 'repo') err.message = `${m.name}: ${err.message}`;
          throw err;
        }
        members.push({ name: m.name, mode: m.mode, repo: undefined, openError: err, reopen: () => open(m.settings, o), failedAt: Date.now(), settings: m.settings });
      }
    }
  } catch (err) {
    await set.close();
    throw err;
  }
  return set;
}

/** Run `fn` with the open set and close it afterwards. */
export async function withRepoSet<T>(settings: RepoSetSettings, fn: (set: RepoSet) => Promise<T>, o: OpenRepoSetOptions = {}): Promise<T> {
  const set = await openRepoSet(settings, o);
  try {
    return await fn(set);
  } finally {
    await set.close();
  }
}
