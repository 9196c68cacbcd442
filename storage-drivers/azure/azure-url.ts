/**
 * Parsing of `azure://account/container/prefix` repository URLs (pure, no SDK).
 *
 * - `account` is the storage account name (3-24 lowercase letters and digits). It may be left
 *   out (`azure:///container/prefix`) when the connection string or AZURE_STORAGE_ACCOUNT names
 *   the account.
 * - `container` is required and follows Azure's container naming rules.
 * - `prefix` is optional; every key is stored as `<prefix>/<key>`.
 */
import { ConfigError } from '../../src/common/errors.js';

export interface AzureLocation {
  /** Account named by the URL, or undefined for `azure:///container/...`. */
  account: string | undefined;
  container: string;
  /** '' or a blob-name prefix ending in '/'. */
  prefix: string;
}

const ACCOUNT_RE = /^[a-z0-9]{3,24}$/;
const CONTAINER_RE = /^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}$/;

export function isValidAccountName(name: string): boolean {
  return ACCOUNT_RE.test(name);
}

export function isValidContainerName(name: string): boolean {
  return CONTAINER_RE.test(name);
}

const FORM = 'expected azure://account/container[/prefix] (or azure:///container[/prefix] with the account from the connection string)';

export function parseAzureUrl(url: URL): AzureLocation {
  if (url.protocol !== 'azure:') throw new ConfigError(`unsupported repository scheme '${url.protocol}' for the azure driver`);
  // Never echo userinfo or a query: either could be a secret pasted into the wrong place.
  if (url.username || url.password) {
    throw new ConfigError(`invalid azure repository URL: credentials do not belong in the URL; set AZURE_STORAGE_KEY, AZURE_STORAGE_SAS_TOKEN or AZURE_STORAGE_CONNECTION_STRING (${FORM})`);
  }
  if (url.search || url.hash) {
    throw new ConfigError(`invalid azure repository URL: a query or fragment is not allowed (a SAS token goes in AZURE_STORAGE_SAS_TOKEN); ${FORM}`);
  }
  if (url.port) throw new ConfigError(`invalid azure repository URL: a port is not allowed (use the azure-endpoint setting); ${FORM}`);

  if (!url.href.startsWith('azure://')) throw new ConfigError(`invalid azure repository URL: ${FORM}`);
  // Account names are DNS labels: compare and display them in lowercase.
  const host = url.hostname.toLowerCase();
  if (host !== '' && !isValidAccountName(host)) {
    throw new ConfigError(`invalid azure storage account name '${host}': 3-24 lowercase letters and digits; ${FORM}`);
  }

  const raw = url.pathname.replace(/^\//, '');
  if (raw === '') throw new ConfigError(`invalid azure repository URL 'azure://${host}/': the container is missing; ${FORM}`);
  let segments: string[];
  try {
    segments = raw.split('/').map((s) => decodeURIComponent(s));
  } catch {
    throw new ConfigError(`invalid azure repository URL 'azure://${host}/${raw}': bad percent-encoding`);
  }
  // A trailing '/' is allowed and means the same as none.
  if (segments.length > 1 && segments[segments.length - 1] === '') segments.pop();
  const [container, ...rest] = segments as [string, ...string[]];
  if (!isValidContainerName(container)) {
    throw new ConfigError(
      `invalid azure container name '${container}': 3-63 lowercase letters, digits and single hyphens, starting and ending with a letter or digit`,
    );
  }
  const prefixPath = rest.join('/');
  // Split again after decoding: an encoded '/' (%2F) must not smuggle in a '..' segment.
  for (const seg of prefixPath === '' ? [] : prefixPath.split('/')) {
    if (seg === '' || seg === '.' || seg === '..' || seg.includes('\\') || seg.includes('\0')) {
      throw new ConfigError(`invalid azure repository prefix '${prefixPath}': empty, '.' or '..' segment or forbidden character`);
    }
  }
  const prefix = prefixPath === '' ? '' : `${prefixPath}/`;
  if (prefix.length > 512) throw new ConfigError('invalid azure repository prefix: longer than 512 characters');
  return { account: host === '' ? undefined : host, container, prefix };
}

/** `azure://account/container/prefix`: the display form, no secret in it. */
export function formatAzureLocation(account: string | undefined, container: string, prefix: string): string {
  const p = prefix.replace(/\/$/, '');
  return `azure://${account ?? ''}/${container}${p ? `/${p}` : ''}`;
}
