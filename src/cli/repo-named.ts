/** The settings of one repository of the stanza by its setting's name (copy --from/--to, key init --in/--share-from). */
import { ConfigError } from '../common/errors.js';
import { moreRepoSettings, type Settings } from '../config/resolve.js';

/** The settings of repository `name` ('repo', 'repo2', 'repo3') of these settings. */
export function repoNamed(settings: Settings, name: string, flag: string): Settings {
  if (name === 'repo') return settings;
  const m = settings.moreRepos.find((r) => r.name === name);
  if (!m) {
    const have = ['repo', ...settings.moreRepos.map((r) => r.name)].join(', ');
    throw new ConfigError(`${flag} ${name}: no such repository (configured: ${have}; set '${name}' by flag, environment or config file)`);
  }
  return { ...settings, ...moreRepoSettings(settings, m) };
}
