/** Turn parsed CLI options into settings and an open repository. */
import type { Command } from 'commander';
import { log, setLogLevel } from '../common/log.js';
import { requireRepo, resolveSettings, type FlagValues, type Settings } from '../config/resolve.js';
import { SETTINGS } from '../config/schema.js';
// Loaded when a command opens the repository: `pgark version`/`help` and the parse of every
// command line stay free of the repository, codec and crypto modules (start-up cost).
import type { Repository } from '../repo/repository.js';

export function settingsFrom(cmd: Command): Settings {
  const o = cmd.optsWithGlobals() as Record<string, unknown>;
  const flags: FlagValues = {};
  for (const s of SETTINGS) {
    const camel = s.key.replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());
    const v = o[camel];
    if (v !== undefined) flags[s.key] = String(v);
  }
  if (typeof o.config === 'string') flags.config = o.config;
  const settings = resolveSettings(flags);
  setLogLevel(settings.logLevel);
  return settings;
}

export interface OpenRepositoryOptions {
  /**
   * 'require' (default): refuse a location without the repository marker (NotARepositoryError,
   * nothing written), adopting a pre-marker repository that has this stanza. 'skip': the caller
   * creates the marker (repo create, setup) or its parent process already checked (worker threads).
   */
  marker?: 'require' | 'skip';
}

export async function openRepository(settings: Settings, o: OpenRepositoryOptions = {}): Promise<Repository> {
  const [{ openDriver }, { Repository }] = await Promise.all([import('../../storage-drivers/registry.js'), import('../repo/repository.js')]);
  const driver = await openDriver(requireRepo(settings), { settings: settings.driver });
  const repo = new Repository(driver, settings.stanza, { attempts: settings.retries, budgetMs: settings.retryBudgetSec * 1000 });
  // Encryption: the key-encryption key's source (a file or a variable name); the stanza's keyring is read on first use.
  if (settings.cipherKeyFile !== undefined || settings.cipherKeyEnv !== undefined) {
    try {
      repo.useKeySource((await import('../repo/repo-cipher.js')).keySourceOf(settings));
    } catch (err) {
      await repo.close().catch(() => undefined);
      throw err;
    }
  }
  if ((o.marker ?? 'require') === 'require') {
    try {
      const { MARKER_RECHECK_MS, REPO_MARKER_KEY, requireRepoMarker } = await import('../repo/repo-marker.js');
      if ((await requireRepoMarker(repo)) !== 'legacy') repo.guardMarker(REPO_MARKER_KEY, MARKER_RECHECK_MS);
    } catch (err) {
      await repo.close().catch(() => undefined);
      throw err;
    }
  }
  return repo;
}

/** Run `fn` with an open repository and close it afterwards. */
export async function withRepository<T>(settings: Settings, fn: (repo: Repository) => Promise<T>, o: OpenRepositoryOptions = {}): Promise<T> {
  const repo = await openRepository(settings, o);
  try {
    return await fn(repo);
  } finally {
    await repo.close();
  }
}

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 2) + '\n');
}

/** A signal that the first SIGTERM or SIGINT aborts, after logging `what(signal)` (long-running commands stop cleanly). */
export function abortOnSignals(what: (sig: NodeJS.Signals) => string): AbortSignal {
  const ac = new AbortController();
  const stop = (sig: NodeJS.Signals) => {
    log.info(what(sig));
    ac.abort();
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  return ac.signal;
}
