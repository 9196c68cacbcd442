/**
 * Every setting pgark reads, with its flag, environment variable, config-file key and default.
 * Precedence: command-line flag > environment (PGARK_*) > config file [stanza] section >
 * config file [global] section > default. Documented in README.md ("Configuration reference")
 * and, for store settings, docs/storage/<driver>.md (test/unit/config-reference.test.ts).
 */
/**
 * Types (config/setting-check.ts checks them): 'path' an absolute path (in the config file; `~/`
 * too where `home` is set), 'location' an absolute path or a scheme:// URL, 'url' an http(s) URL
 * (`bareHost`: or host[:port]), 'duration' like 7d or 1d12h, 'string' any non-empty text.
 */
export type SettingType = 'string' | 'int' | 'enum' | 'bool' | 'path' | 'location' | 'url' | 'duration';

export interface SettingSpec {
  key: string; // config-file key and long flag name
  env: string;
  type: SettingType;
  values?: readonly string[];
  default?: string;
  min?: number;
  max?: number;
  /** 'path': `~/...` is accepted (the driver expands it). */
  home?: boolean;
  /** 'url': `host[:port]` without a scheme is accepted too. */
  bareHost?: boolean;
  description: string;
}

/**
 * Storage driver settings (docs/storage/*.md). Secrets are never settings: they come from the
 * environment or files named here (see each driver's page). Every repository has its own:
 * `repo2-<key>` / `repo3-<key>` (repoStoreSettings) override the value for that repository.
 */
const STORE_SETTINGS = [
  { key: 'storage-timeout', env: 'PGARK_STORAGE_TIMEOUT', type: 'int', default: '60', min: 1, max: 3600, description: 'remote stores: seconds a request may make no progress before it is abandoned (and retried)' },
  { key: 'ssh-identity', env: 'PGARK_SSH_IDENTITY', type: 'path', home: true, description: 'ssh: private key file (default: the ssh agent in SSH_AUTH_SOCK, then ~/.ssh/id_ed25519, id_ecdsa, id_rsa); a passphrase comes from PGARK_SSH_PASSPHRASE' },
  { key: 'ssh-known-hosts', env: 'PGARK_SSH_KNOWN_HOSTS', type: 'path', home: true, description: 'ssh: known_hosts file the host key is verified against (default ~/.ssh/known_hosts)' },
  { key: 'ssh-host-key-fingerprint', env: 'PGARK_SSH_HOST_KEY_FINGERPRINT', type: 'string', description: 'ssh: pinned host key fingerprint (SHA256:...), instead of known_hosts' },
  { key: 's3-endpoint', env: 'PGARK_S3_ENDPOINT', type: 'url', description: 's3: endpoint URL of an S3-compatible store (default: AWS for the region)' },
  { key: 's3-region', env: 'PGARK_S3_REGION', type: 'string', description: 's3: region (default: AWS_REGION, the AWS config, else us-east-1)' },
  { key: 's3-path-style', env: 'PGARK_S3_PATH_STYLE', type: 'bool', default: 'false', description: 's3: path-style addressing (bucket in the path), needed by many S3-compatible stores' },
  { key: 's3-profile', env: 'PGARK_S3_PROFILE', type: 'string', description: 's3: profile of the AWS shared credentials and config files to use (instead of AWS_ACCESS_KEY_ID / AWS_PROFILE): how repo2 gets other credentials than repo' },
  { key: 's3-storage-class', env: 'PGARK_S3_STORAGE_CLASS', type: 'string', description: 's3: storage class for new objects, e.g. STANDARD_IA' },
  { key: 's3-sse', env: 'PGARK_S3_SSE', type: 'enum', values: ['AES256', 'aws:kms', 'aws:kms:dsse'], description: 's3: server-side encryption for new objects' },
  { key: 's3-sse-kms-key-id', env: 'PGARK_S3_SSE_KMS_KEY_ID', type: 'string', description: 's3: KMS key id for s3-sse=aws:kms' },
  { key: 's3-checksum', env: 'PGARK_S3_CHECKSUM', type: 'enum', values: ['when-required', 'when-supported'], default: 'when-required', description: 's3: request checksums (when-supported sends aws-chunked uploads, which many S3-compatible stores reject)' },
  { key: 's3-put-if-absent', env: 'PGARK_S3_PUT_IF_ABSENT', type: 'enum', values: ['if-none-match', 'head'], default: 'if-none-match', description: 's3: how put-if-absent is done: a conditional PUT (AWS, MinIO, R2, ...), or HEAD then PUT for stores that ignore If-None-Match (not safe against two racing writers)' },
  { key: 's3-part-size', env: 'PGARK_S3_PART_SIZE', type: 'int', default: '16', min: 5, max: 512, description: 's3: multipart upload part size in MiB (memory used per upload is about twice this)' },
  { key: 'azure-endpoint', env: 'PGARK_AZURE_ENDPOINT', type: 'url', description: 'azure: blob service URL (default https://<account>.blob.core.windows.net; Azurite: http://127.0.0.1:10000/<account>)' },
  { key: 'azure-block-size', env: 'PGARK_AZURE_BLOCK_SIZE', type: 'int', default: '8', min: 1, max: 4000, description: 'azure: staged block size in MiB for large objects' },
  { key: 'gcs-endpoint', env: 'PGARK_GCS_ENDPOINT', type: 'url', bareHost: true, description: 'gcs: API endpoint (default: STORAGE_EMULATOR_HOST when set, else Google)' },
  { key: 'gcs-chunk-size', env: 'PGARK_GCS_CHUNK_SIZE', type: 'int', default: '16', min: 1, max: 1024, description: 'gcs: resumable upload chunk size in MiB (rounded to 256 KiB)' },
] as const satisfies readonly SettingSpec[];

type StoreSetting = (typeof STORE_SETTINGS)[number];

/** repoN-<store setting> for each store setting: no default (unset: the value `repo` has). */
function repoStoreSettings<N extends 2 | 3>(n: N): Array<SettingSpec & { key: `repo${N}-${StoreSetting['key']}` }> {
  return STORE_SETTINGS.map((s) => {
    const { default: _unset, ...rest } = s as SettingSpec;
    return { ...rest, key: `repo${n}-${s.key}` as const, env: s.env.replace(/^PGARK_/, `PGARK_REPO${n}_`), description: `repo${n}'s own ${s.key} (default: the ${s.key} of repo)` };
  });
}

export const SETTINGS = [
  { key: 'repo', env: 'PGARK_REPO', type: 'location', description: 'repository location: an absolute path, file:///path, ssh://user@host[:port]/path, s3://bucket/prefix, azure://account/container/prefix or gs://bucket/prefix' },
  { key: 'stanza', env: 'PGARK_STANZA', type: 'string', default: 'main', description: 'name of the cluster\'s stanza inside the repository' },
  { key: 'pgdata', env: 'PGDATA', type: 'path', description: 'data directory of the cluster (defaults to the working directory for wal-push/wal-fetch, as PostgreSQL runs them there)' },
  { key: 'log-level', env: 'PGARK_LOG_LEVEL', type: 'enum', values: ['off', 'error', 'warn', 'info', 'debug', 'trace'], default: 'warn', description: 'what is logged: debug adds where time went (phases with durations), trace each file\'s and segment\'s decision' },
  { key: 'log-level-stderr', env: 'PGARK_LOG_LEVEL_STDERR', type: 'enum', values: ['off', 'error', 'warn', 'info', 'debug', 'trace'], description: 'what is logged to stderr (default: log-level; with a log file, at most warn)' },
  { key: 'log-file', env: 'PGARK_LOG_FILE', type: 'path', description: 'append the log to this file as well (created 0600, its directories 0700), for scheduled jobs' },
  { key: 'codec', env: 'PGARK_CODEC', type: 'enum', values: ['lz4', 'zstd', 'gzip', 'none'], default: 'lz4', description: 'compression for new objects; recorded in the stanza when it is created' },
  { key: 'compress-level', env: 'PGARK_COMPRESS_LEVEL', type: 'int', min: -5, max: 19, description: 'codec level (default: the codec\'s own)' },
  { key: 'push-ahead', env: 'PGARK_PUSH_AHEAD', type: 'int', default: '16', min: 0, max: 256, description: 'wal-push: also push up to this many further segments PostgreSQL marked ready' },
  { key: 'jobs', env: 'PGARK_JOBS', type: 'int', default: '4', min: 1, max: 64, description: 'parallel transfers (wal-push look-ahead, wal-fetch prefetch)' },
  { key: 'fetch-received', env: 'PGARK_FETCH_RECEIVED', type: 'bool', default: 'true', description: 'wal-fetch: when a segment is not archived whole, serve what pgark receive stored of it, zero-filled to the segment size (as PostgreSQL documents for .partial files)' },
  { key: 'prefetch', env: 'PGARK_PREFETCH', type: 'int', default: '8', min: 0, max: 256, description: 'wal-fetch: segments to download ahead into the prefetch area (0 switches prefetch off)' },
  { key: 'retries', env: 'PGARK_RETRIES', type: 'int', default: '5', min: 1, max: 100, description: 'attempts for a transient storage error before giving up' },
  { key: 'incr-chain-max', env: 'PGARK_INCR_CHAIN_MAX', type: 'int', default: '7', min: 1, max: 1000, description: 'backup: longest chain of incremental backups on one full; --type auto takes a full beyond it' },
  { key: 'archive-timeout', env: 'PGARK_ARCHIVE_TIMEOUT', type: 'int', default: '120', min: 1, max: 86400, description: 'backup: seconds to wait for the WAL a backup needs to reach the repository' },
  { key: 'retain-full', env: 'PGARK_RETAIN_FULL', type: 'int', min: 1, max: 100000, description: 'expire: keep this many full backups (and their incrementals)' },
  { key: 'retain-window', env: 'PGARK_RETAIN_WINDOW', type: 'duration', description: 'expire: keep every point in time of this window restorable, e.g. 7d, 36h, 2w' },
  { key: 'retain-daily', env: 'PGARK_RETAIN_DAILY', type: 'int', min: 1, max: 100000, description: 'expire: keep the newest backup of each of the last N days that have one' },
  { key: 'retain-weekly', env: 'PGARK_RETAIN_WEEKLY', type: 'int', min: 1, max: 100000, description: 'expire: keep the newest backup of each of the last N ISO weeks that have one' },
  { key: 'retain-monthly', env: 'PGARK_RETAIN_MONTHLY', type: 'int', min: 1, max: 100000, description: 'expire: keep the newest backup of each of the last N months that have one' },
  { key: 'retry-budget', env: 'PGARK_RETRY_BUDGET', type: 'int', default: '60', min: 1, max: 3600, description: 'seconds within which retries of one operation must finish' },
  // Client-side encryption (docs/ENCRYPTION.md): where the key-encryption key is, never the key.
  { key: 'cipher-key-file', env: 'PGARK_CIPHER_KEY_FILE', type: 'string', description: 'encryption: file holding the key-encryption key (64 hex digits, or a passphrase stretched with scrypt); not readable by others' },
  { key: 'cipher-key-env', env: 'PGARK_CIPHER_KEY_ENV', type: 'string', description: 'encryption: name of the environment variable holding the key-encryption key (instead of cipher-key-file)' },
  // More repositories per stanza (README "Several repositories"): repo is the first; repo2, repo3
  // follow in priority order. Each has its own location, mode, encryption key and store settings
  // (repoN-<store setting>, below; unset: repo's).
  { key: 'repo2', env: 'PGARK_REPO2', type: 'location', description: 'second repository of the stanza (same forms as repo): wal-push stores to it too, wal-fetch reads it when repo lacks a file' },
  { key: 'repo2-mode', env: 'PGARK_REPO2_MODE', type: 'enum', values: ['required', 'async'], default: 'required', description: 'required: wal-push succeeds only when a file is durable in repo2 too; async: a file repo2 cannot take now is recorded as its backlog in repo and filled later' },
  { key: 'repo2-cipher-key-file', env: 'PGARK_REPO2_CIPHER_KEY_FILE', type: 'string', description: 'encryption of repo2: file holding its key-encryption key (as cipher-key-file is for repo)' },
  { key: 'repo2-cipher-key-env', env: 'PGARK_REPO2_CIPHER_KEY_ENV', type: 'string', description: 'encryption of repo2: name of the environment variable holding its key-encryption key' },
  { key: 'repo2-retain-full', env: 'PGARK_REPO2_RETAIN_FULL', type: 'int', min: 1, max: 100000, description: 'expire of repo2: full backups to keep (any repo2-retain-* setting gives repo2 its own policy; else it has repo\'s)' },
  { key: 'repo2-retain-window', env: 'PGARK_REPO2_RETAIN_WINDOW', type: 'duration', description: 'expire of repo2: recovery window to keep, e.g. 30d' },
  { key: 'repo2-retain-daily', env: 'PGARK_REPO2_RETAIN_DAILY', type: 'int', min: 1, max: 100000, description: 'expire of repo2: newest backup of each of the last N days' },
  { key: 'repo2-retain-weekly', env: 'PGARK_REPO2_RETAIN_WEEKLY', type: 'int', min: 1, max: 100000, description: 'expire of repo2: newest backup of each of the last N ISO weeks' },
  { key: 'repo2-retain-monthly', env: 'PGARK_REPO2_RETAIN_MONTHLY', type: 'int', min: 1, max: 100000, description: 'expire of repo2: newest backup of each of the last N months' },
  { key: 'repo3', env: 'PGARK_REPO3', type: 'location', description: 'third repository of the stanza, after repo2 in priority order' },
  { key: 'repo3-mode', env: 'PGARK_REPO3_MODE', type: 'enum', values: ['required', 'async'], default: 'required', description: 'required or async, as repo2-mode' },
  { key: 'repo3-cipher-key-file', env: 'PGARK_REPO3_CIPHER_KEY_FILE', type: 'string', description: 'encryption of repo3: file holding its key-encryption key' },
  { key: 'repo3-cipher-key-env', env: 'PGARK_REPO3_CIPHER_KEY_ENV', type: 'string', description: 'encryption of repo3: name of the environment variable holding its key-encryption key' },
  { key: 'repo3-retain-full', env: 'PGARK_REPO3_RETAIN_FULL', type: 'int', min: 1, max: 100000, description: 'expire of repo3: full backups to keep (any repo3-retain-* setting gives repo3 its own policy; else it has repo\'s)' },
  { key: 'repo3-retain-window', env: 'PGARK_REPO3_RETAIN_WINDOW', type: 'duration', description: 'expire of repo3: recovery window to keep, e.g. 30d' },
  { key: 'repo3-retain-daily', env: 'PGARK_REPO3_RETAIN_DAILY', type: 'int', min: 1, max: 100000, description: 'expire of repo3: newest backup of each of the last N days' },
  { key: 'repo3-retain-weekly', env: 'PGARK_REPO3_RETAIN_WEEKLY', type: 'int', min: 1, max: 100000, description: 'expire of repo3: newest backup of each of the last N ISO weeks' },
  { key: 'repo3-retain-monthly', env: 'PGARK_REPO3_RETAIN_MONTHLY', type: 'int', min: 1, max: 100000, description: 'expire of repo3: newest backup of each of the last N months' },
  ...STORE_SETTINGS,
  ...repoStoreSettings(2),
  ...repoStoreSettings(3),
] as const satisfies readonly SettingSpec[];

export type SettingKey = (typeof SETTINGS)[number]['key'];

/** Settings handed to storage drivers (DriverOptions.settings), by key. */
export const DRIVER_SETTING_PREFIXES = ['storage-', 'ssh-', 's3-', 'azure-', 'gcs-'] as const;
export function isDriverSetting(key: string): boolean {
  return DRIVER_SETTING_PREFIXES.some((p) => key.startsWith(p));
}

/** The further repositories (repo2, repo3) and their own settings: repoN, repoN-mode, repoN-cipher-*. */
export const MAX_REPOS = 3;
export function isRepoSetting(key: string): boolean {
  return /^repo[0-9]+(-|$)/.test(key);
}

/** Settings that name where the encryption key is (never the key): they travel like driver settings. */
export function isCipherSetting(key: string): boolean {
  return key.startsWith('cipher-');
}

export const DEFAULT_CONFIG_PATH = '/etc/pgark/pgark.conf';
/** The include directory read after DEFAULT_CONFIG_PATH (config/config-load.ts): its *.conf files in name order. */
export const DEFAULT_CONFIG_INCLUDE_PATH = '/etc/pgark/conf.d';
