/**
 * The repositories a restore reads a backup's objects from, in order: the one chosen
 * (repo-choice.ts), then the others that hold the same backup as stored. Each restore worker
 * thread keeps its own: when reading from the current repository fails in a way another copy can
 * cure, the task is run again from the next one, and the thread stays there.
 *
 * What moves to the next copy (readFailure):
 * - 'unreachable': the store cannot be read (a storage driver's error, a network error, the
 *   location lost its marker, the object is gone from this copy);
 * - 'damaged': the bytes read do not verify (checksum or authentication) or the key is refused.
 *   This is never silent: a warning names the object's repository and the failure, and the other
 *   copy's bytes are checked against the same manifest, so the data directory can start only when
 *   every byte written verified.
 * Anything else (the target disk full, a bug) fails the restore as before.
 */
import { IntegrityError, KeyError, NotARepositoryError, NotFoundError, StorageError } from '../common/errors.js';
import { log } from '../common/log.js';
import type { RepositorySettings } from '../config/resolve.js';
import type { Repository } from '../repo/repository.js';
import { isNetworkError } from '../repo/repo-set.js';

export interface RestoreSource {
  /** 'repo', 'repo2', 'repo3'. */
  name: string;
  settings: RepositorySettings;
}

/** Whether reading from another copy can cure `err` (pure), and how to call it. */
export function readFailure(err: unknown): 'unreachable' | 'damaged' | undefined {
  if (err instanceof IntegrityError || err instanceof KeyError) return 'damaged';
  if (err instanceof StorageError || err instanceof NotARepositoryError || err instanceof NotFoundError || isNetworkError(err)) return 'unreachable';
  return undefined;
}

export class RestoreSources {
  private index = 0;
  private opened: Promise<Repository> | undefined;
  constructor(
    private readonly sources: readonly RestoreSource[],
    private readonly open: (s: RepositorySettings) => Promise<Repository>,
  ) {
    if (sources.length === 0) throw new Error('RestoreSources: no repository');
  }

  /** The name of the repository read now. */
  get current(): string {
    return this.sources[this.index]!.name;
  }

  /** Whether a failure moved reading away from the first (chosen) repository. */
  get moved(): boolean {
    return this.index > 0;
  }

  /** The repository read now (opened on first use). */
  repository(): Promise<Repository> {
    this.opened ??= this.open(this.sources[this.index]!.settings);
    return this.opened;
  }

  /**
   * After `err` from the current repository: move to the next one that holds the backup and
   * return true (the caller runs the task again), or return false when `err` is not one another
   * copy can cure, or no copy is left.
   */
  async next(err: unknown, what: string): Promise<boolean> {
    const kind = readFailure(err);
    if (!kind || this.index + 1 >= this.sources.length) return false;
    const from = this.current;
    const old = this.opened;
    this.opened = undefined;
    this.index++;
    await old?.then((r) => r.close()).catch(() => undefined);
    const msg = err instanceof Error ? err.message : String(err);
    if (kind === 'damaged') log.warn(`${from}: ${what} did not verify (${msg}): reading it from ${this.current} instead, checked against the same manifest`);
    else log.warn(`${from}: unable to read ${what} (${msg}): reading it from ${this.current} instead`);
    return true;
  }

  async close(): Promise<void> {
    await this.opened?.then((r) => r.close()).catch(() => undefined);
  }
}
