/** Merge flags, environment and config file into validated settings. */
import { readFileSync } from 'node:fs';
import { ConfigError, isNodeError } from '../common/errors.js';
import { type CodecName } from '../io/codec.js';
import type { LogLevel } from '../common/log.js';
import { parseConfigFile, type ConfigSections } from './config-file.js';
import { DEFAULT_CONFIG_PATH, isDriverSetting, SETTINGS, type SettingKey, type SettingSpec } from './schema.js';

export interface Settings {
  repo: string | undefined;
  stanza: string;
  pgdata: string | undefined;
  logLevel: LogLevel;
  codec: CodecName;
  /** True when codec came from a flag, env or file rather than the default. */
  codecExplicit: boolean;
  compressLevel: number | undefined;
  pushAhead: number;
  jobs: number;
  /** True when jobs came from a flag, env or file (backup/restore default to the core count otherwise). */
  jobsExplicit: boolean;
  incrChainMax: number;
  archiveTimeoutSec: number;
  retainFull: number | undefined;
  retainWindow: string | undefined;
  retainDaily: number | undefined;
  retainWeekly: number | undefined;
  retainMonthly: number | undefined;
  prefetch: number;
  /** wal-fetch serves partly received segments. */
  fetchReceived: boolean;
  retries: number;
  retryBudgetSec: number;
  configPath: string | undefined;
  /** Encryption: the file, or the name of the environment variable, that holds the key-encryption key. */
  cipherKeyFile: string | undefined;
  cipherKeyEnv: string | undefined;
  /** Storage driver settings (ssh-*, s3-*, azure-*, gcs-*, storage-*) that have a value, by key. */
  driver: Record<string, string>;
  /**
   * Every setting given by flag or environment (not from the config file or a default), as
   * checked text, by key. What travels to workers and into PostgreSQL's commands
   * (config/settings-transport.ts): with the same config file, it resolves to these settings.
   */
  given: Partial<Record<SettingKey, string>>;
}

export type FlagValues = Partial<Record<SettingKey | 'config', string | undefined>>;

const STANZA_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/;

function loadFile(flags: FlagValues, env: NodeJS.ProcessEnv): { sections: ConfigSections; path: string | undefined } {
  const explicit = flags.config ?? env.PGARK_CONFIG;
  const path = explicit ?? DEFAULT_CONFIG_PATH;
  try {
    return { sections: parseConfigFile(readFileSync(path, 'utf8'), path), path };
  } catch (err) {
    if (!explicit && isNodeError(err, 'ENOENT')) return { sections: new Map(), path: undefined };
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(`unable to read config file '${path}': ${(err as Error).message}`);
  }
}

function check(spec: SettingSpec, value: string, origin: string): string | number {
  switch (spec.type) {
    case 'int': {
      if (!/^-?\d+$/.test(value)) throw new ConfigError(`invalid value '${value}' for '${spec.key}' (from ${origin}): expected an integer`);
      const n = Number(value);
      if ((spec.min !== undefined && n < spec.min) || (spec.max !== undefined && n > spec.max)) {
        throw new ConfigError(`invalid value '${value}' for '${spec.key}' (from ${origin}): must be between ${spec.min} and ${spec.max}`);
      }
      return n;
    }
    case 'bool': {
      const v = value.toLowerCase();
      if (['true', 'yes', 'on', '1'].includes(v)) return 'true';
      if (['false', 'no', 'off', '0'].includes(v)) return 'false';
      throw new ConfigError(`invalid value '${value}' for '${spec.key}' (from ${origin}): expected true or false`);
    }
    case 'enum':
      if (!spec.values?.includes(value)) throw new ConfigError(`invalid value '${value}' for '${spec.key}' (from ${origin}): expected one of ${spec.values?.join(', ')}`);
      return value;
    default:
      if (value === '') throw new ConfigError(`empty value for '${spec.key}' (from ${origin})`);
      return value;
  }
}

export function resolveSettings(flags: FlagValues, env: NodeJS.ProcessEnv = process.env): Settings {
  const { sections, path } = loadFile(flags, env);
  const pick = (spec: SettingSpec, stanza: string | undefined): { value: string | number | undefined; explicit: boolean; fromCommandLine: boolean } => {
    const k = spec.key as SettingKey;
    const candidates: Array<[string | undefined, string]> = [
      [flags[k], `--${k}`],
      [env[spec.env], spec.env],
      [stanza ? sections.get(stanza)?.get(k) : undefined, `${path} [${stanza}]`],
      [sections.get('global')?.get(k), `${path} [global]`],
    ];
    for (const [i, [v, origin]] of candidates.entries()) if (v !== undefined) return { value: check(spec, v, origin), explicit: true, fromCommandLine: i < 2 };
    return { value: spec.default !== undefined ? check(spec, spec.default, 'default') : undefined, explicit: false, fromCommandLine: false };
  };
  const spec = (k: SettingKey) => SETTINGS.find((s) => s.key === k)!;
  const stanza = String(pick(spec('stanza'), undefined).value);
  if (!STANZA_RE.test(stanza)) throw new ConfigError(`invalid stanza name '${stanza}': use letters, digits, '_', '.', '-' (at most 64)`);
  const get = (k: SettingKey) => pick(spec(k), stanza).value;
  const codec = pick(spec('codec'), stanza);
  return {
    repo: get('repo') as string | undefined,
    stanza,
    pgdata: get('pgdata') as string | undefined,
    logLevel: get('log-level') as LogLevel,
    codec: codec.value as CodecName,
    codecExplicit: codec.explicit,
    compressLevel: get('compress-level') as number | undefined,
    pushAhead: get('push-ahead') as number,
    jobs: get('jobs') as number,
    jobsExplicit: pick(spec('jobs'), stanza).explicit,
    incrChainMax: get('incr-chain-max') as number,
    archiveTimeoutSec: get('archive-timeout') as number,
    retainFull: get('retain-full') as number | undefined,
    retainWindow: get('retain-window') as string | undefined,
    retainDaily: get('retain-daily') as number | undefined,
    retainWeekly: get('retain-weekly') as number | undefined,
    retainMonthly: get('retain-monthly') as number | undefined,
    prefetch: get('prefetch') as number,
    fetchReceived: String(get('fetch-received')) === 'true',
    retries: get('retries') as number,
    retryBudgetSec: get('retry-budget') as number,
    configPath: path,
    cipherKeyFile: get('cipher-key-file') as string | undefined,
    cipherKeyEnv: get('cipher-key-env') as string | undefined,
    driver: Object.fromEntries(
      SETTINGS.filter((s) => isDriverSetting(s.key)).flatMap((s) => {
        const v = get(s.key);
        return v === undefined ? [] : [[s.key, String(v)]];
      }),
    ),
    given: Object.fromEntries(
      SETTINGS.flatMap((s) => {
        const r = pick(s, stanza);
        return r.fromCommandLine && r.value !== undefined ? [[s.key, String(r.value)]] : [];
      }),
    ),
  };
}

export function requireRepo(s: Settings): string {
  if (!s.repo) throw new ConfigError("missing required setting 'repo': pass --repo, set PGARK_REPO, or add 'repo = ...' to the config file");
  return s.repo;
}
