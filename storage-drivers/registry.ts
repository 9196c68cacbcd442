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

/** Remove userinfo and query secrets from a location for display. */
export function redactLocation(location: string): string {
  try {
    const u = new URL(location);
    if (u.username || u.password) {
      u.username = u.username ? '***' : '';
      u.password = '';
    }
    for (const k of [...u.searchParams.keys()]) {
      if (/secret|key|token|password|sig|credential/i.test(k)) u.searchParams.set(k, '***');
    }
    return u.toString();
  } catch {
    return location;
  }
}
