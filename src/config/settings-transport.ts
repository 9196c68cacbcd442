/**
 * How resolved settings travel to another pgark process (pure): the only place that does so.
 *
 * - To a worker pgark starts itself (wal-push look-ahead, wal-fetch prefetch: wal/spawn-worker.ts):
 *   every setting given by flag or environment becomes its PGARK_* variable (PGDATA for pgdata),
 *   and PGARK_CONFIG names the config file in use, so the worker resolves the very same settings
 *   (test/unit/settings-transport.test.ts checks the round trip for every key of the schema).
 * - Into archive_command / restore_command (ops/setup.ts, restore/restore.ts, through
 *   common/self-command.ts buildPgarkCommand): --repo, --stanza, --config when a file is in use,
 *   --config-include-path when one was given (config/config-load.ts), and every storage-driver,
 *   cipher and further-repository setting (repo2, repo2-mode, repo2-cipher-key-file, repo2's own
 *   store settings such as repo2-s3-endpoint, ...) given by
 *   flag or environment as `--<key> <value>` (cipher-key-file / cipher-key-env: a path or a
 *   variable name, never the key). Other
 *   settings (tuning such as --jobs, --log-level) stay where the server's environment and the
 *   config file put them, as before: `pgark restore --jobs 16` sizes the restore, not every later
 *   wal-fetch.
 *
 * Secrets are never settings (config/schema.ts): drivers read them from the environment or from
 * files a setting names (AWS_SECRET_ACCESS_KEY, AZURE_STORAGE_KEY, PGARK_SSH_PASSPHRASE, ...).
 * A worker inherits the parent's environment, so it has them; PostgreSQL's commands get them
 * from the server's environment. Nothing here puts a secret in argv or a variable.
 */
import { requireRepo, type Settings } from './resolve.js';
import { isCipherSetting, isDriverSetting, isRepoSetting, SETTINGS, type SettingSpec } from './schema.js';

/** Whether a setting given by flag or environment is written into archive_command / restore_command. */
export function travelsInCommands(spec: Pick<SettingSpec, 'key'>): boolean {
  // repoN-retain-* are expire's, like retain-*: they stay in the config file / environment.
  return isDriverSetting(spec.key) || isCipherSetting(spec.key) || (isRepoSetting(spec.key) && !spec.key.includes('-retain-'));
}

/** What a worker's environment is made of: the settings given by flag or environment and the config file. */
export type WorkerSettings = Pick<Settings, 'given' | 'configPath' | 'configIncludePath'>;

/**
 * The environment variables that give a worker these settings (added to the parent's environment).
 * cipher-key-env travels as the variable's name; the variable itself is inherited with the environment.
 */
export function settingsEnv(s: WorkerSettings): Record<string, string> {
  const env: Record<string, string> = {};
  for (const spec of SETTINGS) {
    const v = s.given[spec.key];
    if (v !== undefined) env[spec.env] = v;
  }
  if (s.configPath !== undefined) env.PGARK_CONFIG = s.configPath;
  if (s.configIncludePath !== undefined) env.PGARK_CONFIG_INCLUDE_PATH = s.configIncludePath;
  return env;
}

/** The settings part of a pgark command PostgreSQL runs (restore/recovery-conf.ts PgarkCommandParts). */
export interface CommandSettings {
  repo: string;
  stanza: string;
  config?: string;
  /** `--<key>`, `<value>` pairs, in schema order. */
  extra: string[];
}

/** What archive_command / restore_command carry for these settings (repository required). */
export function commandSettings(s: Pick<Settings, 'repo' | 'stanza' | 'given' | 'configPath' | 'configIncludePath'>): CommandSettings {
  const extra: string[] = [];
  for (const spec of SETTINGS) {
    const v = s.given[spec.key];
    if (v !== undefined && travelsInCommands(spec)) extra.push(`--${spec.key}`, v);
  }
  // The include directory a flag or PGARK_CONFIG_INCLUDE_PATH named is part of "the config file in use".
  if (s.configIncludePath !== undefined) extra.push('--config-include-path', s.configIncludePath);
  return { repo: requireRepo(s), stanza: s.stanza, ...(s.configPath !== undefined ? { config: s.configPath } : {}), extra };
}
