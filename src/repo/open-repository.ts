/**
 * How a repository is opened from resolved settings: the driver for its location, the retry
 * policy, and the marker check. The CLI and the worker threads (backup, restore) open it here.
 */
import type { RepositorySettings } from '../config/resolve.js';
// Loaded when a repository is opened: `pgark version`/`help` and the parse of every command
// line stay free of the driver registry, repository, codec and crypto modules (start-up cost).
import type { Repository } from './repository.js';

/** What opening a repository needs of the resolved settings (config/resolve.ts). */
export type { RepositorySettings };

export interface OpenRepositoryOptions {
  /**
   * 'require' (default): refuse a location without the repository marker (NotARepositoryError,
   * nothing written), adopting a pre-marker repository that has this stanza. 'skip': the caller
   * creates the marker (repo create, setup) or its parent process already checked (worker threads).
   */
  marker?: 'require' | 'skip';
  /**
   * 'require': the stanza must exist (NotFoundError, exit 8, the same message from every command
   * that reads one: info, list, show, verify, wal-verify, wal-log, drills, expire, keep, delete).
   */
  stanza?: 'require';
}

export async function openRepository(settings: RepositorySettings, o: OpenRepositoryOptions = {}): Promise<Repository> {
  const [{ openDriver }, { Repository }] = await Promise.all([import('../../storage-drivers/registry.js'), import('./repository.js')]);
  // config/resolve.ts (the settings schema and the config file's parser) only for its error: the
  // worker threads (backup, restore) get resolved settings and load no config module.
  const location = settings.repo || (await import('../config/resolve.js')).requireRepo(settings);
  const driver = await openDriver(location, { settings: settings.driver });
  const repo = new Repository(driver, settings.stanza, { attempts: settings.retries, budgetMs: settings.retryBudgetSec * 1000 });
  // Encryption: the key-encryption key's source (a file or a variable name); the stanza's keyring is read on first use.
  if (settings.cipherKeyFile !== undefined || settings.cipherKeyEnv !== undefined) {
    try {
      repo.useKeySource((await import('./repo-cipher.js')).keySourceOf(settings));
    } catch (err) {
      await repo.close().catch(() => undefined);
      throw err;
    }
  }
  if ((o.marker ?? 'require') === 'require') {
    try {
      const { MARKER_RECHECK_MS, REPO_MARKER_KEY, requireRepoMarker } = await import('./repo-marker.js');
      if ((await requireRepoMarker(repo)) !== 'legacy') repo.guardMarker(REPO_MARKER_KEY, MARKER_RECHECK_MS);
    } catch (err) {
      await repo.close().catch(() => undefined);
      throw err;
    }
  }
  if (o.stanza === 'require') await repo.requireStanza().catch(async (err: unknown) => {
    await repo.close().catch(() => undefined);
    throw err;
  });
  return repo;
}

/** Run `fn` with an open repository and close it afterwards. */
export async function withRepository<T>(settings: RepositorySettings, fn: (repo: Repository) => Promise<T>, o: OpenRepositoryOptions = {}): Promise<T> {
  const repo = await openRepository(settings, o);
  try {
    return await fn(repo);
  } finally {
    await repo.close();
  }
}
