/**
 * Azure credentials and the blob service endpoint, resolved from the environment and the
 * `azure-endpoint` setting (pure, no SDK). Credentials never come from the command line or the
 * repository URL, and no message here ever contains one.
 *
 * Precedence:
 * 1. AZURE_STORAGE_CONNECTION_STRING: AccountName + AccountKey (shared key) or
 *    SharedAccessSignature; the endpoint is BlobEndpoint, else
 *    `<DefaultEndpointsProtocol>://<AccountName>.blob.<EndpointSuffix>`. An account in the
 *    repository URL must equal AccountName.
 * 2. AZURE_STORAGE_KEY: shared key for the URL's account (or AZURE_STORAGE_ACCOUNT).
 * 3. AZURE_STORAGE_SAS_TOKEN: a SAS token (with or without the leading '?').
 * 4. Microsoft Entra ID through `@azure/identity`'s DefaultAzureCredential (workload identity,
 *    managed identity, service principal env, Azure CLI, ...), when none of the above is set and
 *    the account is named (URL, AZURE_STORAGE_ACCOUNT or azure-endpoint). The SDK is loaded only
 *    then (azure-token.ts); bearer tokens require an https endpoint.
 * The `azure-endpoint` setting, when set, overrides the endpoint in every case.
 */
import { ConfigError } from '../../src/common/errors.js';
import { isValidAccountName, type AzureLocation } from './azure-url.js';

export type AzureAuth =
  | { kind: 'sharedKey'; accountName: string; accountKey: string }
  /** A SAS token without the leading '?'. */
  | { kind: 'sas'; token: string }
  /** A Microsoft Entra ID token from DefaultAzureCredential (loaded lazily by azure-token.ts). */
  | { kind: 'entraId' };

export interface AzureAccess {
  /** The storage account, for display (undefined only when nothing names it). */
  account: string | undefined;
  /** Blob service URL: scheme, host, optional port and path, no trailing '/', no query. */
  serviceUrl: string;
  auth: AzureAuth;
  /** Where the credential came from (an environment variable name), for hints in messages. */
  source: 'AZURE_STORAGE_CONNECTION_STRING' | 'AZURE_STORAGE_KEY' | 'AZURE_STORAGE_SAS_TOKEN' | 'DefaultAzureCredential';
  /** Strings that must never appear in messages or logs. */
  secrets: string[];
}

export type AzureEnv = Partial<Record<'AZURE_STORAGE_CONNECTION_STRING' | 'AZURE_STORAGE_KEY' | 'AZURE_STORAGE_SAS_TOKEN' | 'AZURE_STORAGE_ACCOUNT', string | undefined>>;

const NO_CREDENTIALS =
  'no Azure credentials and no storage account: set AZURE_STORAGE_CONNECTION_STRING, AZURE_STORAGE_KEY (with the account in the repository URL) or AZURE_STORAGE_SAS_TOKEN in the environment, ' +
  'or name the account (azure://account/container, AZURE_STORAGE_ACCOUNT or azure-endpoint) to use a managed or workload identity';

const KNOWN_KEYS = new Set([
  'defaultendpointsprotocol',
  'accountname',
  'accountkey',
  'blobendpoint',
  'endpointsuffix',
  'sharedaccesssignature',
  'usedevelopmentstorage',
  'developmentstorageproxyuri',
  'queueendpoint',
  'tableendpoint',
  'fileendpoint',
]);

/**
 * Parse `Key=Value;Key=Value` into a map with lowercased keys. Values may contain '='
 * (base64 keys, SAS tokens). Errors never quote the string: it holds secrets.
 */
export function parseConnectionString(cs: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of cs.split(';')) {
    const item = part.trim();
    if (item === '') continue;
    const eq = item.indexOf('=');
    if (eq <= 0) throw new ConfigError('AZURE_STORAGE_CONNECTION_STRING is malformed: expected Key=Value pairs separated by \';\'');
    const key = item.slice(0, eq).trim().toLowerCase();
    if (out.has(key)) {
      // Quote only a known key name: a secret pasted in the wrong place must not be echoed.
      const name = KNOWN_KEYS.has(key) ? `'${item.slice(0, eq).trim()}'` : 'a key';
      throw new ConfigError(`AZURE_STORAGE_CONNECTION_STRING is malformed: ${name} appears twice`);
    }
    out.set(key, item.slice(eq + 1).trim());
  }
  if (out.size === 0) throw new ConfigError('AZURE_STORAGE_CONNECTION_STRING is empty');
  return out;
}

/** Validate an endpoint URL and return it without a trailing '/'. */
export function normalizeEndpoint(value: string, what: string): string {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw new ConfigError(`${what} is not a valid URL: expected http(s)://host[:port][/path], e.g. https://account.blob.core.windows.net or http://127.0.0.1:10000/devstoreaccount1`);
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new ConfigError(`${what} must be an http:// or https:// URL, not '${u.protocol}'`);
  // Do not echo these: a SAS token or a password pasted here is a secret.
  if (u.username || u.password) throw new ConfigError(`${what} must not contain credentials`);
  if (u.search || u.hash) throw new ConfigError(`${what} must not contain a query or fragment (a SAS token goes in AZURE_STORAGE_SAS_TOKEN)`);
  return `${u.protocol}//${u.host}${u.pathname.replace(/\/+$/, '')}`;
}

/** Strip the leading '?' and check that the token has a signature. */
export function normalizeSasToken(token: string, what: string): string {
  const t = token.trim().replace(/^\?/, '');
  let params: URLSearchParams;
  try {
    params = new URLSearchParams(t);
  } catch {
    throw new ConfigError(`${what} is not a SAS token`);
  }
  if (!params.get('sig')) throw new ConfigError(`${what} does not look like a SAS token (it has no 'sig' parameter)`);
  return t;
}

function checkAccountKey(key: string, what: string): string {
  const k = key.trim();
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(k) || k.length % 4 !== 0) throw new ConfigError(`${what} is not a base64 account key`);
  return k;
}

function checkAccount(name: string, what: string): string {
  const n = name.toLowerCase();
  if (!isValidAccountName(n)) throw new ConfigError(`invalid azure storage account name '${name}' in ${what}: 3-24 lowercase letters and digits`);
  return n;
}

function defaultEndpoint(account: string, protocol = 'https', suffix = 'core.windows.net'): string {
  return `${protocol}://${account}.blob.${suffix}`;
}

function sasSecrets(token: string): string[] {
  const sig = new URLSearchParams(token).get('sig') ?? '';
  // The signature as it appears decoded and percent-encoded in a URL, and the whole token.
  return [token, sig, encodeURIComponent(sig)];
}

function keySecrets(key: string): string[] {
  return [key, encodeURIComponent(key)];
}

/**
 * Resolve the account, endpoint and credential for `loc`. `endpointSetting` is the
 * `azure-endpoint` setting (undefined when unset).
 */
export function resolveAzureAccess(loc: AzureLocation, env: AzureEnv, endpointSetting: string | undefined): AzureAccess {
  const override = endpointSetting?.trim() ? normalizeEndpoint(endpointSetting.trim(), "the 'azure-endpoint' setting") : undefined;
  const envAccount = env.AZURE_STORAGE_ACCOUNT?.trim() ? checkAccount(env.AZURE_STORAGE_ACCOUNT.trim(), 'AZURE_STORAGE_ACCOUNT') : undefined;

  const cs = env.AZURE_STORAGE_CONNECTION_STRING?.trim();
  if (cs) {
    const parts = parseConnectionString(cs);
    if (parts.has('usedevelopmentstorage')) {
      throw new ConfigError(
        'AZURE_STORAGE_CONNECTION_STRING: UseDevelopmentStorage is not supported; give AccountName, AccountKey and BlobEndpoint (for Azurite: BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1)',
      );
    }
    const csAccount = parts.get('accountname') ? checkAccount(parts.get('accountname') as string, 'AZURE_STORAGE_CONNECTION_STRING') : undefined;
    if (loc.account && csAccount && loc.account !== csAccount) {
      throw new ConfigError(
        `the repository URL names storage account '${loc.account}' but AZURE_STORAGE_CONNECTION_STRING is for account '${csAccount}' (use azure:///container/prefix to take the account from the connection string)`,
      );
    }
    const account = loc.account ?? csAccount;
    const blobEndpoint = parts.get('blobendpoint');
    const protocol = parts.get('defaultendpointsprotocol')?.toLowerCase();
    if (protocol !== undefined && protocol !== 'https' && protocol !== 'http') {
      throw new ConfigError('AZURE_STORAGE_CONNECTION_STRING: DefaultEndpointsProtocol must be https or http');
    }
    let serviceUrl = override;
    if (!serviceUrl && blobEndpoint) serviceUrl = normalizeEndpoint(blobEndpoint, 'BlobEndpoint in AZURE_STORAGE_CONNECTION_STRING');
    if (!serviceUrl && csAccount) serviceUrl = defaultEndpoint(csAccount, protocol, parts.get('endpointsuffix') || undefined);
    if (!serviceUrl) throw new ConfigError('AZURE_STORAGE_CONNECTION_STRING has neither AccountName nor BlobEndpoint');

    const key = parts.get('accountkey');
    const sas = parts.get('sharedaccesssignature');
    const secrets = [cs];
    let auth: AzureAuth;
    if (key) {
      if (!csAccount) throw new ConfigError('AZURE_STORAGE_CONNECTION_STRING has an AccountKey but no AccountName');
      const accountKey = checkAccountKey(key, 'AccountKey in AZURE_STORAGE_CONNECTION_STRING');
      auth = { kind: 'sharedKey', accountName: csAccount, accountKey };
      secrets.push(...keySecrets(accountKey));
    } else if (sas) {
      const token = normalizeSasToken(sas, 'SharedAccessSignature in AZURE_STORAGE_CONNECTION_STRING');
      auth = { kind: 'sas', token };
      secrets.push(...sasSecrets(token));
    } else {
      throw new ConfigError('AZURE_STORAGE_CONNECTION_STRING has neither AccountKey nor SharedAccessSignature');
    }
    return { account: account ?? accountFromEndpoint(serviceUrl), serviceUrl, auth, source: 'AZURE_STORAGE_CONNECTION_STRING', secrets };
  }

  const account = loc.account ?? envAccount;
  const key = env.AZURE_STORAGE_KEY?.trim();
  if (key) {
    if (!account) {
      throw new ConfigError('AZURE_STORAGE_KEY is set but no storage account is named: use azure://account/container/prefix or set AZURE_STORAGE_ACCOUNT');
    }
    const accountKey = checkAccountKey(key, 'AZURE_STORAGE_KEY');
    return {
      account,
      serviceUrl: override ?? defaultEndpoint(account),
      auth: { kind: 'sharedKey', accountName: account, accountKey },
      source: 'AZURE_STORAGE_KEY',
      secrets: keySecrets(accountKey),
    };
  }

  const sas = env.AZURE_STORAGE_SAS_TOKEN?.trim();
  if (sas) {
    const token = normalizeSasToken(sas, 'AZURE_STORAGE_SAS_TOKEN');
    const serviceUrl = override ?? (account ? defaultEndpoint(account) : undefined);
    if (!serviceUrl) {
      throw new ConfigError('AZURE_STORAGE_SAS_TOKEN is set but no storage account is named: use azure://account/container/prefix, AZURE_STORAGE_ACCOUNT or the azure-endpoint setting');
    }
    return { account: account ?? accountFromEndpoint(serviceUrl), serviceUrl, auth: { kind: 'sas', token }, source: 'AZURE_STORAGE_SAS_TOKEN', secrets: sasSecrets(token) };
  }

  // Nothing in the environment holds a storage secret: Microsoft Entra ID (managed identity,
  // workload identity, ...) through DefaultAzureCredential. Bearer tokens are sent over TLS only.
  const serviceUrl = override ?? (account ? defaultEndpoint(account) : undefined);
  if (!serviceUrl) throw new ConfigError(NO_CREDENTIALS);
  if (!serviceUrl.startsWith('https:')) {
    throw new ConfigError(
      `no AZURE_STORAGE_CONNECTION_STRING, AZURE_STORAGE_KEY or AZURE_STORAGE_SAS_TOKEN is set, and a managed or workload identity (Microsoft Entra ID token) needs an https endpoint, not ${serviceUrl}`,
    );
  }
  return { account: account ?? accountFromEndpoint(serviceUrl), serviceUrl, auth: { kind: 'entraId' }, source: 'DefaultAzureCredential', secrets: [] };
}

/**
 * The account an endpoint names, for display: `<account>.blob.<suffix>` (service style) or the
 * first path segment (path style, as Azurite uses).
 */
export function accountFromEndpoint(serviceUrl: string): string | undefined {
  const u = new URL(serviceUrl);
  const label = /^([a-z0-9]{3,24})\.blob\./i.exec(u.hostname)?.[1];
  if (label) return label.toLowerCase();
  const seg = u.pathname.split('/').filter(Boolean)[0];
  return seg && isValidAccountName(seg.toLowerCase()) ? seg.toLowerCase() : undefined;
}
