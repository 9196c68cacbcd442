/**
 * Read the config file and its include directory (I/O), like pgBackRest's config and
 * config-include-path:
 *
 * - the config file: --config, else PGARK_CONFIG, else /etc/pgark/pgark.conf (which may be
 *   missing; one that is named must exist);
 * - the include directory: --config-include-path, else PGARK_CONFIG_INCLUDE_PATH, else
 *   /etc/pgark/conf.d when the config file is /etc/pgark/pgark.conf (which may be missing; one
 *   that is named must exist). Its regular files named *.conf are read after the config file, in
 *   name order (byte order, whatever the locale); other files are ignored.
 * - Every file has the format of config-file.ts and is checked whole; a key set in several files
 *   takes the value of the last one read (per section: `[main] repo` in conf.d/20-main.conf
 *   overrides `[main] repo` of pgark.conf, and `[global] repo` of a later file does not override
 *   `[main] repo` of an earlier one: the stanza section still beats [global]).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, isNodeError } from '../common/errors.js';
import { includeFileOrder, mergeConfigEntries, parseConfigEntries, type ConfigEntries } from './config-file.js';
import { DEFAULT_CONFIG_INCLUDE_PATH, DEFAULT_CONFIG_PATH } from './schema.js';

export interface LoadedConfig {
  entries: ConfigEntries;
  /** The config file in use, undefined when the default one does not exist. */
  path: string | undefined;
  /** The include directory given by flag or environment (travels to workers and PostgreSQL's commands). */
  includePathGiven: string | undefined;
  /** Every file read, in order. */
  files: string[];
}

function readText(path: string, what: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    if (isNodeError(err, 'ENOENT')) return undefined;
    throw new ConfigError(`unable to read ${what} '${path}': ${(err as Error).message}`);
  }
}

export function loadConfig(flags: { config?: string | undefined; 'config-include-path'?: string | undefined }, env: NodeJS.ProcessEnv): LoadedConfig {
  const explicit = flags.config ?? env.PGARK_CONFIG;
  const mainPath = explicit ?? DEFAULT_CONFIG_PATH;
  const includeGiven = flags['config-include-path'] ?? env.PGARK_CONFIG_INCLUDE_PATH;
  if (includeGiven === '') throw new ConfigError('empty value for config-include-path');
  const includePath = includeGiven ?? (mainPath === DEFAULT_CONFIG_PATH ? DEFAULT_CONFIG_INCLUDE_PATH : undefined);

  const files: string[] = [];
  let entries: ConfigEntries = new Map();
  const text = readText(mainPath, 'config file');
  if (text === undefined && explicit !== undefined) throw new ConfigError(`unable to read config file '${mainPath}': no such file`);
  if (text !== undefined) {
    entries = parseConfigEntries(text, mainPath);
    files.push(mainPath);
  }
  if (includePath !== undefined) {
    let names: string[] | undefined;
    try {
      names = readdirSync(includePath);
    } catch (err) {
      if (!(isNodeError(err, 'ENOENT') && includeGiven === undefined)) {
        throw new ConfigError(`unable to read config include directory '${includePath}': ${(err as Error).message}`);
      }
    }
    for (const name of includeFileOrder(names ?? [])) {
      const path = join(includePath, name);
      try {
        if (!statSync(path).isFile()) continue;
      } catch {
        continue; // a dangling symlink, or removed while listing
      }
      const t = readText(path, 'config file');
      if (t === undefined) continue; // removed while listing
      mergeConfigEntries(entries, parseConfigEntries(t, path));
      files.push(path);
    }
  }
  return { entries, path: text !== undefined ? mainPath : undefined, includePathGiven: includeGiven, files };
}
