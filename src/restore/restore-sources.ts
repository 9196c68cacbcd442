/**
 * The repositories a restore reads a backup's objects from, in order: the one chosen
 * (repo-choice.ts), then the others that hold the same backup as stored. Each restore worker
 * thread keeps its own: when reading from the current repository fails in a way another copy can
 * cure, the task is run again from the next one, and the thread stays there. The lanes of one
 * thread (restore.ts lanesHere: two on the main thread) share it: a lane whose read failed on a
 * copy another lane has already left runs its task again from the copy read now, and a copy
 * another lane may still be reading is closed only at the end (close).
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
// network-error.ts, not repo-set.ts: the restore worker threads load this module, and repo-set
// brings the config resolution and the multi-repository set (command-modules.test.ts).
import { isNetworkError } from '../repo/network-error.js';

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
  /** The copies opened so far, by position (a lane may still read one the others have left). */
  private readonly opened = new Map<number, Promise<Repository>>();
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

  /** The position of the repository read now (0: the chosen one); what `next` takes as `from`. */
  get position(): number {
    return this.index;
  }

  /** The repository read now (opened on first use). */
  repository(): Promise<Repository> {
    let r = this.opened.get(this.index);
    if (!r) {
      r = this.open(this.sources[this.index]!.settings);
      this.opened.set(this.index, r);
    }
    return r;
  }

  /**
   * After `err` from the repository at position `from` (default: the current one): move to the
   * next one that holds the backup, unless another lane has already moved past `from`, and
   * return true (the caller runs the task again from the current one); return false when `err`
   * is not one another copy can cure, or no copy is left.
   */
  async next(err: unknown, what: string, from = this.index): Promise<boolean> {
    const kind = readFailure(err);
    if (!kind) return false;
    if (from >= this.index) {
      if (this.index + 1 >= this.sources.length) return false;
      this.index++;
    }
    const failed = this.sources[from]!.name;
    const msg = err instanceof Error ? err.message : String(err);
    if (kind === 'damaged') log.warn(`${failed}: ${what} did not verify (${msg}): reading it from ${this.current} instead, checked against the same manifest`);
    else log.warn(`${failed}: unable to read ${what} (${msg}): reading it from ${this.current} instead`);
    return true;
  }

  async close(): Promise<void> {
    const all = [...this.opened.values()];
    this.opened.clear();
    await Promise.all(all.map((r) => r.then((x) => x.close()).catch(() => undefined)));
  }
}
