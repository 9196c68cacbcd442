/** Merge flags, environment and config file into validated settings. */
import { ConfigError } from '../common/errors.js';
import { type CodecName } from '../io/codec.js';
import type { LogLevel } from '../common/log.js';
import { loadConfig } from './config-load.js';
import { isDriverSetting, MAX_REPOS, SETTINGS, type SettingKey, type SettingSpec } from './schema.js';
import { checkSetting } from './setting-check.js';

export interface Settings {
  repo: string | undefined;
  stanza: string;
  pgdata: string | undefined;
  logLevel: LogLevel;
  /** stderr's own level, when set (common/log.ts has the default). */
  logLevelStderr: LogLevel | undefined;
  /** The log file (lines appended), when set. */
  logFile: string | undefined;
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
  /** The include directory when given by flag or environment (config/config-load.ts; travels like configPath). */
  configIncludePath: string | undefined;
  /** Encryption: the file, or the name of the environment variable, that holds the key-encryption key. */
  cipherKeyFile: string | undefined;
  cipherKeyEnv: string | undefined;
  /**
   * The stanza's further repositories (repo2, repo3) in priority order, after `repo`; empty with
   * one repository. Each is opened with its own store settings and key source.
   */
  moreRepos: MoreRepo[];
  /** Storage driver settings (ssh-*, s3-*, azure-*, gcs-*, storage-*) that have a value, by key. */
  driver: Record<string, string>;
  /**
   * Every setting given by flag or environment (not from the config file or a default), as
   * checked text, by key. What travels to workers and into PostgreSQL's commands
   * (config/settings-transport.ts): with the same config file, it resolves to these settings.
   */
  given: Partial<Record<SettingKey, string>>;
}

/** A further repository of the stanza (repo2, repo3). */
export interface MoreRepo {
  /** 'repo2', 'repo3': its setting's name, used in messages, backlog keys and `copy --to`. */
  name: string;
  location: string;
  /** required: wal-push succeeds only when a file is durable here too; async: filled behind from a backlog. */
  mode: 'required' | 'async';
  cipherKeyFile: string | undefined;
  cipherKeyEnv: string | undefined;
  /** Its store settings (its driver's): repoN-<store setting> where set, else the shared one. */
  storeSettings: Record<string, string>;
  /** Its own retention (repoN-retain-*), when any is set; else expire applies repo's. */
  retention: Pick<Settings, 'retainFull' | 'retainWindow' | 'retainDaily' | 'retainWeekly' | 'retainMonthly'> | undefined;
}

/** What opening a repository reads (cli/context.ts openRepository; worker threads open their own). */
export type RepositorySettings = Pick<Settings, 'repo' | 'stanza' | 'driver' | 'retries' | 'retryBudgetSec' | 'cipherKeyFile' | 'cipherKeyEnv'>;

export type FlagValues = Partial<Record<SettingKey | 'config' | 'config-include-path', string | undefined>>;

const STANZA_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/;

export function resolveSettings(flags: FlagValues, env: NodeJS.ProcessEnv = process.env): Settings {
  const { entries, path, includePathGiven } = loadConfig(flags, env);
  const pick = (spec: SettingSpec, stanza: string | undefined): { value: string | number | undefined; explicit: boolean; fromCommandLine: boolean } => {
    const k = spec.key as SettingKey;
    const inStanza = stanza ? entries.get(stanza)?.get(k) : undefined;
    const inGlobal = entries.get('global')?.get(k);
    const candidates: Array<[string | undefined, string]> = [
      [flags[k], `--${k}`],
      [env[spec.env], spec.env],
      [inStanza?.value, `${inStanza?.where} [${stanza}]`],
      [inGlobal?.value, `${inGlobal?.where} [global]`],
    ];
    for (const [i, [v, origin]] of candidates.entries()) if (v !== undefined) return { value: checkSetting(spec, v, origin, i >= 2), explicit: true, fromCommandLine: i < 2 };
    return { value: spec.default !== undefined ? checkSetting(spec, spec.default, 'default', false) : undefined, explicit: false, fromCommandLine: false };
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
    logLevelStderr: get('log-level-stderr') as LogLevel | undefined,
    logFile: get('log-file') as string | undefined,
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
    configIncludePath: includePathGiven,
    cipherKeyFile: get('cipher-key-file') as string | undefined,
    cipherKeyEnv: get('cipher-key-env') as string | undefined,
    ...reposOf(get as (k: string) => string | number | undefined, get('repo') as string | undefined, (k) => pick(spec(k as SettingKey), stanza).fromCommandLine),
    given: Object.fromEntries(
      SETTINGS.flatMap((s) => {
        const r = pick(s, stanza);
        return r.fromCommandLine && r.value !== undefined ? [[s.key, String(r.value)]] : [];
      }),
    ),
  };
}

/** The store settings (ssh-*, s3-*, azure-*, gcs-*, storage-*) that have a value, by key: `prefix`'s own (repo2-s3-endpoint) over the shared one. */
function driverSettingsOf(get: (k: string) => string | number | undefined, prefix: string): Record<string, string> {
  return Object.fromEntries(
    SETTINGS.filter((s) => isDriverSetting(s.key)).flatMap((s) => {
      const v = (prefix ? get(`${prefix}-${s.key}`) : undefined) ?? get(s.key);
      return v === undefined ? [] : [[s.key, String(v)]];
    }),
  );
}

/**
 * `repo`'s store settings and the further repositories. When `--repo` (flag or environment) names
 * the location a config file gives repo2 (restore from repo2 alone), `repo` is that repository,
 * with repo2's own store settings and key (when it has its own).
 */
function reposOf(get: (k: string) => string | number | undefined, first: string | undefined, fromCommandLine: (k: string) => boolean): Pick<Settings, 'moreRepos' | 'driver'> & Partial<Pick<Settings, 'cipherKeyFile' | 'cipherKeyEnv'>> {
  const moreRepos = moreReposOf(get, first, fromCommandLine);
  let own = '';
  for (let i = 2; i <= MAX_REPOS && first !== undefined && fromCommandLine('repo'); i++) {
    if (get(`repo${i}`) === first && !fromCommandLine(`repo${i}`)) own = `repo${i}`;
  }
  // Its key too, unless a flag or the environment gives one for this call.
  const ownKey = own && !fromCommandLine('cipher-key-file') && !fromCommandLine('cipher-key-env') &&
    (get(`${own}-cipher-key-file`) !== undefined || get(`${own}-cipher-key-env`) !== undefined);
  return {
    moreRepos,
    driver: driverSettingsOf(get, own),
    ...(ownKey ? { cipherKeyFile: get(`${own}-cipher-key-file`) as string | undefined, cipherKeyEnv: get(`${own}-cipher-key-env`) as string | undefined } : {}),
  };
}

/**
 * repo2, repo3 as resolved, in priority order (repo3 without repo2 is fine, as in pgBackRest). A
 * location given twice is refused, except a config file's repoN that a `--repo` flag or
 * PGARK_REPO points at: that call then has the one repository.
 */
function moreReposOf(get: (k: string) => string | number | undefined, first: string | undefined, fromCommandLine: (k: string) => boolean): MoreRepo[] {
  const out: MoreRepo[] = [];
  const seen = new Set(first === undefined ? [] : [first]);
  for (let i = 2; i <= MAX_REPOS; i++) {
    const name = `repo${i}`;
    const location = get(name) as string | undefined;
    if (location === undefined) continue;
    if (first === undefined) throw new ConfigError(`'${name}' is set but 'repo' is not: the first repository is 'repo'`);
    // `--repo <repo2's location>` (flag or environment) over a config file that has repo2: this call
    // works on that one repository (restore from repo2, info of repo2), not on it twice.
    if (location === first && fromCommandLine('repo') && !fromCommandLine(name)) continue;
    if (seen.has(location)) throw new ConfigError(`'${name}' names a repository already in use ('${location}'): each repository must be another location`);
    seen.add(location);
    out.push({
      name,
      location,
      mode: get(`${name}-mode`) as 'required' | 'async',
      cipherKeyFile: get(`${name}-cipher-key-file`) as string | undefined,
      cipherKeyEnv: get(`${name}-cipher-key-env`) as string | undefined,
      retention: ownRetention(get, name),
      storeSettings: driverSettingsOf(get, name),
    });
  }
  return out;
}

function ownRetention(get: (k: string) => string | number | undefined, name: string): MoreRepo['retention'] {
  const r = {
    retainFull: get(`${name}-retain-full`) as number | undefined,
    retainWindow: get(`${name}-retain-window`) as string | undefined,
    retainDaily: get(`${name}-retain-daily`) as number | undefined,
    retainWeekly: get(`${name}-retain-weekly`) as number | undefined,
    retainMonthly: get(`${name}-retain-monthly`) as number | undefined,
  };
  return Object.values(r).some((v) => v !== undefined) ? r : undefined;
}

/** The settings of further repository `m` as one repository's settings (to open it like `repo`). */
export function moreRepoSettings(s: RepositorySettings, m: MoreRepo): RepositorySettings {
  return { ...s, repo: m.location, cipherKeyFile: m.cipherKeyFile, cipherKeyEnv: m.cipherKeyEnv, driver: m.storeSettings };
}

export function requireRepo(s: Pick<Settings, 'repo'>): string {
  if (!s.repo) throw new ConfigError("missing required setting 'repo': pass --repo, set PGARK_REPO, or add 'repo = ...' to the config file");
  return s.repo;
}
