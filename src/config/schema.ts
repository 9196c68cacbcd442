/**
 * Every setting pgark reads, with its flag, environment variable, config-file key and default.
 * Precedence: command-line flag > environment (PGARK_*) > config file [stanza] section >
 * config file [global] section > default. docs/CONFIG.md is written from this table.
 */
export type SettingType = 'string' | 'int' | 'enum' | 'bool';

export interface SettingSpec {
  key: string; // config-file key and long flag name
  env: string;
  type: SettingType;
  values?: readonly string[];
  default?: string;
  min?: number;
  max?: number;
  description: string;
}

export const SETTINGS = [
  { key: 'repo', env: 'PGARK_REPO', type: 'string', description: 'repository location: an absolute path or file:///path' },
  { key: 'stanza', env: 'PGARK_STANZA', type: 'string', default: 'main', description: 'name of the cluster\'s stanza inside the repository' },
  { key: 'pgdata', env: 'PGDATA', type: 'string', description: 'data directory of the cluster (defaults to the working directory for wal-push/wal-fetch, as PostgreSQL runs them there)' },
  { key: 'log-level', env: 'PGARK_LOG_LEVEL', type: 'enum', values: ['off', 'error', 'warn', 'info', 'debug'], default: 'warn', description: 'what is logged to stderr' },
  { key: 'codec', env: 'PGARK_CODEC', type: 'enum', values: ['lz4', 'zstd', 'gzip', 'none'], default: 'lz4', description: 'compression for new objects; recorded in the stanza when it is created' },
  { key: 'compress-level', env: 'PGARK_COMPRESS_LEVEL', type: 'int', min: -5, max: 19, description: 'codec level (default: the codec\'s own)' },
  { key: 'push-ahead', env: 'PGARK_PUSH_AHEAD', type: 'int', default: '16', min: 0, max: 256, description: 'wal-push: also push up to this many further segments PostgreSQL marked ready' },
  { key: 'jobs', env: 'PGARK_JOBS', type: 'int', default: '4', min: 1, max: 64, description: 'parallel transfers (wal-push look-ahead, wal-fetch prefetch)' },
  { key: 'prefetch', env: 'PGARK_PREFETCH', type: 'int', default: '8', min: 0, max: 256, description: 'wal-fetch: segments to download ahead into the prefetch area (0 switches prefetch off)' },
  { key: 'retries', env: 'PGARK_RETRIES', type: 'int', default: '5', min: 1, max: 100, description: 'attempts for a transient storage error before giving up' },
  { key: 'incr-chain-max', env: 'PGARK_INCR_CHAIN_MAX', type: 'int', default: '7', min: 1, max: 1000, description: 'backup: longest chain of incremental backups on one full; --type auto takes a full beyond it' },
  { key: 'archive-timeout', env: 'PGARK_ARCHIVE_TIMEOUT', type: 'int', default: '120', min: 1, max: 86400, description: 'backup: seconds to wait for the WAL a backup needs to reach the repository' },
  { key: 'retain-full', env: 'PGARK_RETAIN_FULL', type: 'int', min: 1, max: 100000, description: 'expire: keep this many full backups (and their incrementals)' },
  { key: 'retain-window', env: 'PGARK_RETAIN_WINDOW', type: 'string', description: 'expire: keep every point in time of this window restorable, e.g. 7d, 36h, 2w' },
  { key: 'retain-daily', env: 'PGARK_RETAIN_DAILY', type: 'int', min: 1, max: 100000, description: 'expire: keep the newest backup of each of the last N days that have one' },
  { key: 'retain-weekly', env: 'PGARK_RETAIN_WEEKLY', type: 'int', min: 1, max: 100000, description: 'expire: keep the newest backup of each of the last N ISO weeks that have one' },
  { key: 'retain-monthly', env: 'PGARK_RETAIN_MONTHLY', type: 'int', min: 1, max: 100000, description: 'expire: keep the newest backup of each of the last N months that have one' },
  { key: 'retry-budget', env: 'PGARK_RETRY_BUDGET', type: 'int', default: '60', min: 1, max: 3600, description: 'seconds within which retries of one operation must finish' },
] as const satisfies readonly SettingSpec[];

export type SettingKey = (typeof SETTINGS)[number]['key'];

export const DEFAULT_CONFIG_PATH = '/etc/pgark/pgark.conf';
