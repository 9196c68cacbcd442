/**
 * Parsing of `ssh://[user@]host[:port]/absolute/path` locations and of the driver settings
 * (pure: no I/O).
 */
import { ConfigError } from '../../src/common/errors.js';

export const DEFAULT_SSH_PORT = 22;
export const DEFAULT_TIMEOUT_SEC = 60;

export interface SshTarget {
  user: string;
  /** Host name or IP address as written (lower-cased; IPv6 without brackets). */
  host: string;
  port: number;
  /** Absolute path of the repository root on the server, without a trailing '/'. */
  root: string;
}

const EXAMPLE = 'ssh://user@host[:port]/absolute/path';

/** Parse an ssh:// URL; `currentUser` is the login name used when the URL has none. */
export function parseSshUrl(url: URL, currentUser: string): SshTarget {
  const shown = `ssh://${url.host}${url.pathname}`;
  if (url.protocol !== 'ssh:') throw new ConfigError(`unsupported repository scheme '${url.protocol}' for the ssh driver`);
  if (url.password) {
    throw new ConfigError(`invalid repository '${shown}': a password in the URL is not supported (pgark authenticates to SSH servers with keys only, see ssh-identity)`);
  }
  if (url.search || url.hash) throw new ConfigError(`invalid repository '${shown}': no query or fragment allowed (expected ${EXAMPLE})`);
  let host = url.hostname.toLowerCase();
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  if (!host) throw new ConfigError(`invalid repository '${shown}': no host (expected ${EXAMPLE})`);

  let user: string;
  try {
    user = url.username ? decodeURIComponent(url.username) : currentUser;
  } catch {
    throw new ConfigError(`invalid repository '${shown}': bad %-escape in the user name`);
  }
  if (!user || /[\s\x00-\x1f/]/.test(user)) throw new ConfigError(`invalid repository '${shown}': invalid user name`);

  const port = url.port === '' ? DEFAULT_SSH_PORT : Number(url.port);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new ConfigError(`invalid repository '${shown}': invalid port`);

  let path: string;
  try {
    path = decodeURIComponent(url.pathname);
  } catch {
    throw new ConfigError(`invalid repository '${shown}': bad %-escape in the path`);
  }
  if (path.includes('\0')) throw new ConfigError(`invalid repository '${shown}': forbidden character in the path`);
  const root = path.replace(/\/+$/, '');
  if (!root.startsWith('/')) {
    throw new ConfigError(`invalid repository '${shown}': the path must be absolute on the server, and not '/' itself (expected ${EXAMPLE})`);
  }
  for (const seg of root.slice(1).split('/')) {
    if (seg === '' || seg === '.' || seg === '..') throw new ConfigError(`invalid repository '${shown}': empty, '.' or '..' segment in the path`);
  }
  return { user, host, port, root };
}

/** `ssh://user@host[:port]/path` for logs and messages (nothing secret in it). */
export function displayLocation(t: SshTarget): string {
  const host = t.host.includes(':') ? `[${t.host}]` : t.host;
  const port = t.port === DEFAULT_SSH_PORT ? '' : `:${t.port}`;
  return `ssh://${t.user}@${host}${port}${t.root}`;
}

/** `storage-timeout` in ms; settings hold resolved values, a missing key means the default. */
export function timeoutMsFrom(settings: Record<string, string> | undefined): number {
  const raw = settings?.['storage-timeout'];
  if (raw === undefined || raw === '') return DEFAULT_TIMEOUT_SEC * 1000;
  const sec = Number(raw);
  if (!Number.isFinite(sec) || sec <= 0) throw new ConfigError(`invalid storage-timeout '${raw}': expected a number of seconds`);
  return Math.round(sec * 1000);
}
