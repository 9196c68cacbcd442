/**
 * URL scheme -> driver factory. Each driver module is imported only when its scheme is used,
 * so that `pgark wal-push` on a local repository never loads a cloud SDK.
 */
import { isAbsolute } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ConfigError } from '../src/common/errors.js';
import type { DriverOptions, StorageDriver } from './types.js';

type Loader = () => Promise<{ createDriver: (url: URL, o: DriverOptions) => Promise<StorageDriver> }>;

const loaders: Record<string, Loader> = {
  'file:': () => import('./fs/fs-driver.js'),
  'ssh:': () => import('./ssh/ssh-driver.js'),
  'azure:': () => import('./azure/azure-driver.js'),
  's3:': () => import('./s3/s3-driver.js'),
  'gs:': () => import('./gcs/gcs-driver.js'),
  // Only a store the running program made (createMemoryStore): tests and embedding.
  'memory:': () => import('./memory/memory-driver.js'),
};

/** Parse a repository location: `file:///abs/path`, a bare absolute path, or a driver URL. */
export function parseRepoUrl(location: string): URL {
  if (isAbsolute(location)) return pathToFileURL(location);
  let url: URL;
  try {
    url = new URL(location);
  } catch {
    throw new ConfigError(`invalid repository '${redactLocation(location)}': expected an absolute path or a URL such as file:///var/lib/pgark`);
  }
  if (!(url.protocol in loaders)) {
    throw new ConfigError(`unsupported repository scheme '${url.protocol}' (supported: ${Object.keys(loaders).join(', ')})`);
  }
  return url;
}

export async function openDriver(location: string, options: DriverOptions = {}): Promise<StorageDriver> {
  const url = parseRepoUrl(location);
  const loader = loaders[url.protocol];
  if (!loader) throw new ConfigError(`unsupported repository scheme '${url.protocol}'`);
  const mod = await loader();
  return mod.createDriver(url, options);
}

const SECRET_PARAM = /secret|key|token|password|sig|credential/i;

/**
 * Remove userinfo and query secrets from a location for display. A location that does not parse
 * as a URL (`s3://AKIA...:secret/with+slash@bucket/p`) is redacted as text: everything between
 * `://` and the last '@' of the authority part, and the values of secret-looking parameters.
 */
export function redactLocation(location: string): string {
  // `user:secret@host:/path` parses as a URL of scheme 'user:': only `scheme://` ones are redacted as URLs.
  if (!/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(location)) return redactUnparsedLocation(location);
  let u: URL;
  try {
    u = new URL(location);
  } catch {
    return redactUnparsedLocation(location);
  }
  if (u.username || u.password) {
    u.username = u.username ? '***' : '';
    u.password = '';
  }
  for (const k of [...u.searchParams.keys()]) {
    if (SECRET_PARAM.test(k)) u.searchParams.set(k, '***');
  }
  return u.toString();
}

function redactUnparsedLocation(location: string): string {
  let s = location;
  const m = /^([A-Za-z][A-Za-z0-9+.-]*:\/\/)([^?#]*)(.*)$/s.exec(s);
  if (m) {
    // Userinfo may hold an unencoded '/' (an S3 secret key): the last '@' before the query ends it.
    const rest = m[2]!;
    const at = rest.lastIndexOf('@');
    s = m[1]! + (at >= 0 ? `***@${rest.slice(at + 1)}` : rest) + m[3]!;
  } else if (!s.startsWith('/')) {
    // Not a URL and not a path: `user:secret@host:/path` and the like.
    const at = s.lastIndexOf('@');
    if (at >= 0) s = `***@${s.slice(at + 1)}`;
  }
  return s.replace(/([?&;])([^=&#;]*)=([^&#;]*)/g, (all, sep: string, k: string) => (SECRET_PARAM.test(k) ? `${sep}${k}=***` : all));
}
