/**
 * The option definitions of the program (global options) and of wal-push / wal-fetch, as plain
 * data without commander: main.ts and the wal-*-command.ts files build commander's options from
 * them, and the lean entry of wal-push / wal-fetch (wal-call.ts, wal-argv.ts) parses with the same
 * list, so the two parsers cannot drift apart.
 */
import { DEFAULT_CONFIG_INCLUDE_PATH, DEFAULT_CONFIG_PATH, isCipherSetting, isDriverSetting, isRepoSetting, SETTINGS } from '../config/schema.js';

export interface OptionSpec {
  /** commander's flags: `--name <value>` for an option taking a value, `--name` for a switch. */
  flags: string;
  description: string;
  /** The environment variable commander reads when the flag is not given (global options). */
  env?: string;
}

/** The global options, in the order `pgark --help` lists them. */
export function globalOptionSpecs(): OptionSpec[] {
  const specs: OptionSpec[] = [
    { flags: '--repo <url>', description: 'repository: absolute path, file:///path, ssh://, s3://, azure:// or gs:// URL', env: 'PGARK_REPO' },
    { flags: '--stanza <name>', description: 'stanza (cluster) name inside the repository (default "main")', env: 'PGARK_STANZA' },
    { flags: '--config <file>', description: `config file (default ${DEFAULT_CONFIG_PATH} when it exists)`, env: 'PGARK_CONFIG' },
    { flags: '--pgdata <dir>', description: 'data directory', env: 'PGDATA' },
    { flags: '--config-include-path <dir>', description: `directory of further *.conf files read after the config file, in name order (default ${DEFAULT_CONFIG_INCLUDE_PATH} with the default config file)`, env: 'PGARK_CONFIG_INCLUDE_PATH' },
    { flags: '--log-level <level>', description: 'off, error, warn, info, debug (phases and their durations) or trace (per-file decisions) (default warn)', env: 'PGARK_LOG_LEVEL' },
    { flags: '--log-file <file>', description: 'append the log to this file too (0600; for scheduled jobs)', env: 'PGARK_LOG_FILE' },
    { flags: '--log-level-stderr <level>', description: 'level of stderr (default: --log-level; with --log-file at most warn)', env: 'PGARK_LOG_LEVEL_STDERR' },
  ];
  // Storage driver settings (docs/storage/): flags, environment or config file.
  for (const s of SETTINGS) {
    if (isDriverSetting(s.key) || isCipherSetting(s.key) || isRepoSetting(s.key)) specs.push({ flags: `--${s.key} <value>`, description: s.description, env: s.env });
  }
  return specs;
}

/** `pgark wal-push <path>`'s own options. */
export const WAL_PUSH_OPTIONS: readonly OptionSpec[] = [
  { flags: '--push-ahead <n>', description: 'further ready segments to push in the same call (default 16)' },
  { flags: '--jobs <n>', description: 'parallel uploads (default 4)' },
  { flags: '--codec <name>', description: 'lz4, zstd, gzip or none (default: the stanza\'s)' },
  { flags: '--compress-level <n>', description: 'codec level' },
  { flags: '--json', description: 'print the result as JSON' },
];

/** `pgark wal-fetch <name> <destination>`'s own options. */
export const WAL_FETCH_OPTIONS: readonly OptionSpec[] = [
  { flags: '--prefetch <n>', description: 'segments to download ahead; 0 switches prefetch off (default 8)' },
  { flags: '--fetch-received <bool>', description: 'serve a segment pgark receive has only partly stored, zero-filled (default true)' },
  { flags: '--jobs <n>', description: 'parallel prefetch downloads (default 4)' },
];
