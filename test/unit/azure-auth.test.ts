import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/common/errors.js';
import {
  accountFromEndpoint,
  normalizeEndpoint,
  normalizeSasToken,
  parseConnectionString,
  resolveAzureAccess,
  type AzureEnv,
} from '../../storage-drivers/azure/azure-auth.js';
import type { AzureLocation } from '../../storage-drivers/azure/azure-url.js';

const KEY = Buffer.from('k'.repeat(64)).toString('base64');
const SAS = 'sv=2024-08-04&ss=b&srt=sco&sp=rwdlac&se=2030-01-01T00%3A00%3A00Z&sig=AbC%2Bsecret%2Fsig%3D';
const SIG = 'AbC+secret/sig=';
const loc = (account?: string): AzureLocation => ({ account, container: 'cont', prefix: 'p/' });

/** The ConfigError `fn` throws; checks that none of `secrets` is in its message. */
function configError(fn: () => unknown, secrets: string[] = []): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    const message = (err as Error).message;
    for (const s of secrets) expect(message).not.toContain(s);
    return message;
  }
  throw new Error('expected a ConfigError');
}

describe('parseConnectionString', () => {
  it('splits Key=Value pairs, keeps = in values, lowercases keys', () => {
    const m = parseConnectionString(`DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=${KEY};EndpointSuffix=core.windows.net;`);
    expect(m.get('accountname')).toBe('acct');
    expect(m.get('accountkey')).toBe(KEY);
    expect(m.get('endpointsuffix')).toBe('core.windows.net');
  });
  it('rejects malformed strings without quoting them', () => {
    expect(configError(() => parseConnectionString('AccountName=acct;garbage'))).toMatch(/malformed/);
    expect(configError(() => parseConnectionString(`${KEY};${KEY}`), [KEY, KEY.replace(/=+$/, '')])).toMatch(/a key appears twice/);
    expect(configError(() => parseConnectionString(';;'))).toMatch(/empty/);
    expect(configError(() => parseConnectionString(`AccountKey=${KEY};accountkey=${KEY}`), [KEY])).toMatch(/appears twice/);
  });
});

describe('resolveAzureAccess', () => {
  it('uses AZURE_STORAGE_KEY with the URL account and the public endpoint', () => {
    const a = resolveAzureAccess(loc('acct'), { AZURE_STORAGE_KEY: KEY }, undefined);
    expect(a).toMatchObject({ account: 'acct', serviceUrl: 'https://acct.blob.core.windows.net', source: 'AZURE_STORAGE_KEY' });
    expect(a.auth).toEqual({ kind: 'sharedKey', accountName: 'acct', accountKey: KEY });
    expect(a.secrets).toContain(KEY);
  });

  it('takes the account from AZURE_STORAGE_ACCOUNT when the URL has none', () => {
    const a = resolveAzureAccess(loc(), { AZURE_STORAGE_KEY: KEY, AZURE_STORAGE_ACCOUNT: 'Other1' }, undefined);
    expect(a.account).toBe('other1');
    expect(a.serviceUrl).toBe('https://other1.blob.core.windows.net');
  });

  it('lets azure-endpoint override the endpoint (path style for Azurite)', () => {
    const a = resolveAzureAccess(loc('devstoreaccount1'), { AZURE_STORAGE_KEY: KEY }, 'http://127.0.0.1:10000/devstoreaccount1/');
    expect(a.serviceUrl).toBe('http://127.0.0.1:10000/devstoreaccount1');
  });

  it('uses a SAS token (with or without ?) and lists its signature as a secret', () => {
    for (const t of [SAS, `?${SAS}`]) {
      const a = resolveAzureAccess(loc('acct'), { AZURE_STORAGE_SAS_TOKEN: t }, undefined);
      expect(a.auth).toEqual({ kind: 'sas', token: SAS });
      expect(a.source).toBe('AZURE_STORAGE_SAS_TOKEN');
      expect(a.secrets).toEqual(expect.arrayContaining([SAS, SIG, encodeURIComponent(SIG)]));
    }
  });

  it('accepts a SAS token without an account when azure-endpoint names the service', () => {
    const a = resolveAzureAccess(loc(), { AZURE_STORAGE_SAS_TOKEN: SAS }, 'https://myacct.blob.core.windows.net');
    expect(a.account).toBe('myacct');
  });

  it('prefers the connection string, then the key, then the SAS token', () => {
    const cs = `AccountName=acct;AccountKey=${KEY}`;
    const env: AzureEnv = { AZURE_STORAGE_CONNECTION_STRING: cs, AZURE_STORAGE_KEY: KEY, AZURE_STORAGE_SAS_TOKEN: SAS };
    expect(resolveAzureAccess(loc('acct'), env, undefined).source).toBe('AZURE_STORAGE_CONNECTION_STRING');
    expect(resolveAzureAccess(loc('acct'), { ...env, AZURE_STORAGE_CONNECTION_STRING: '' }, undefined).source).toBe('AZURE_STORAGE_KEY');
    expect(resolveAzureAccess(loc('acct'), { AZURE_STORAGE_SAS_TOKEN: SAS }, undefined).source).toBe('AZURE_STORAGE_SAS_TOKEN');
  });

  describe('connection strings', () => {
    it('derives the endpoint from protocol, account and suffix', () => {
      const cs = `DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=${KEY};EndpointSuffix=core.chinacloudapi.cn`;
      const a = resolveAzureAccess(loc(), { AZURE_STORAGE_CONNECTION_STRING: cs }, undefined);
      expect(a).toMatchObject({ account: 'acct', serviceUrl: 'https://acct.blob.core.chinacloudapi.cn' });
      expect(a.auth).toEqual({ kind: 'sharedKey', accountName: 'acct', accountKey: KEY });
      expect(a.secrets).toEqual(expect.arrayContaining([cs, KEY]));
    });

    it('uses BlobEndpoint, and azure-endpoint over it', () => {
      const cs = `AccountName=devstoreaccount1;AccountKey=${KEY};BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;`;
      expect(resolveAzureAccess(loc(), { AZURE_STORAGE_CONNECTION_STRING: cs }, undefined).serviceUrl).toBe('http://127.0.0.1:10000/devstoreaccount1');
      expect(resolveAzureAccess(loc(), { AZURE_STORAGE_CONNECTION_STRING: cs }, 'http://127.0.0.1:4242/devstoreaccount1').serviceUrl).toBe(
        'http://127.0.0.1:4242/devstoreaccount1',
      );
    });

    it('accepts a SAS connection string without an account name', () => {
      const cs = `BlobEndpoint=https://acct.blob.core.windows.net/;SharedAccessSignature=${SAS}`;
      const a = resolveAzureAccess(loc(), { AZURE_STORAGE_CONNECTION_STRING: cs }, undefined);
      expect(a).toMatchObject({ account: 'acct', serviceUrl: 'https://acct.blob.core.windows.net', auth: { kind: 'sas', token: SAS } });
    });

    it('requires the URL account to match AccountName', () => {
      const cs = `AccountName=acct;AccountKey=${KEY}`;
      expect(resolveAzureAccess(loc('acct'), { AZURE_STORAGE_CONNECTION_STRING: cs }, undefined).account).toBe('acct');
      const m = configError(() => resolveAzureAccess(loc('other'), { AZURE_STORAGE_CONNECTION_STRING: cs }, undefined), [KEY, cs]);
      expect(m).toMatch(/names storage account 'other' but AZURE_STORAGE_CONNECTION_STRING is for account 'acct'/);
    });

    it.each([
      ['no credential', 'AccountName=acct', /neither AccountKey nor SharedAccessSignature/],
      ['a key without an account', `AccountKey=${KEY};BlobEndpoint=https://x.example`, /AccountKey but no AccountName/],
      ['neither account nor endpoint', `SharedAccessSignature=${SAS}`, /neither AccountName nor BlobEndpoint/],
      ['UseDevelopmentStorage', 'UseDevelopmentStorage=true', /UseDevelopmentStorage is not supported/],
      ['a bad protocol', `DefaultEndpointsProtocol=ftp;AccountName=acct;AccountKey=${KEY}`, /https or http/],
      ['a key that is not base64', 'AccountName=acct;AccountKey=not base64!', /not a base64 account key/],
      ['a SAS without a signature', 'AccountName=acct;SharedAccessSignature=sv=1&sp=r', /no 'sig' parameter/],
      ['a BlobEndpoint with a query', `AccountName=acct;AccountKey=${KEY};BlobEndpoint=https://a.example/?${SAS}`, /must not contain a query/],
    ])('rejects %s without quoting secrets', (_label, cs, message) => {
      expect(configError(() => resolveAzureAccess(loc(), { AZURE_STORAGE_CONNECTION_STRING: cs }, undefined), [KEY, SAS, SIG, cs])).toMatch(message);
    });
  });

  it.each([
    ['no credentials and no account', {}, loc(), /no Azure credentials and no storage account/],
    ['a key without an account', { AZURE_STORAGE_KEY: KEY }, loc(), /no storage account is named/],
    ['a SAS token without an account', { AZURE_STORAGE_SAS_TOKEN: SAS }, loc(), /no storage account is named/],
    ['a key that is not base64', { AZURE_STORAGE_KEY: 'abc' }, loc('acct'), /AZURE_STORAGE_KEY is not a base64 account key/],
    ['a bad AZURE_STORAGE_ACCOUNT', { AZURE_STORAGE_KEY: KEY, AZURE_STORAGE_ACCOUNT: 'no_way' }, loc(), /invalid azure storage account name/],
    ['a SAS token without sig', { AZURE_STORAGE_SAS_TOKEN: 'sv=1&sp=rl' }, loc('acct'), /no 'sig' parameter/],
  ] as const)('rejects %s', (_label, env, l, message) => {
    expect(configError(() => resolveAzureAccess(l, env, undefined), [KEY, SAS])).toMatch(message);
  });

  it('rejects a bad azure-endpoint without echoing a query', () => {
    expect(configError(() => resolveAzureAccess(loc('acct'), { AZURE_STORAGE_KEY: KEY }, `https://acct.blob.core.windows.net/?${SAS}`), [SAS, SIG])).toMatch(
      /azure-endpoint' setting must not contain a query/,
    );
    expect(configError(() => resolveAzureAccess(loc('acct'), { AZURE_STORAGE_KEY: KEY }, 'ftp://x'))).toMatch(/http:\/\/ or https:\/\//);
    expect(configError(() => resolveAzureAccess(loc('acct'), { AZURE_STORAGE_KEY: KEY }, 'not a url'))).toMatch(/not a valid URL/);
    expect(configError(() => resolveAzureAccess(loc('acct'), { AZURE_STORAGE_KEY: KEY }, 'https://u:pw@x.example'), ['pw'])).toMatch(/credentials/);
  });
});

describe('helpers', () => {
  it('normalizeEndpoint strips trailing slashes', () => {
    expect(normalizeEndpoint('https://a.blob.core.windows.net/', 'x')).toBe('https://a.blob.core.windows.net');
    expect(normalizeEndpoint('http://127.0.0.1:10000/devstoreaccount1//', 'x')).toBe('http://127.0.0.1:10000/devstoreaccount1');
  });
  it('normalizeSasToken strips ?', () => {
    expect(normalizeSasToken(` ?${SAS} `, 'x')).toBe(SAS);
  });
  it('accountFromEndpoint reads service-style and path-style endpoints', () => {
    expect(accountFromEndpoint('https://myacct.blob.core.windows.net')).toBe('myacct');
    expect(accountFromEndpoint('http://127.0.0.1:10000/devstoreaccount1')).toBe('devstoreaccount1');
    expect(accountFromEndpoint('https://blob.example.com')).toBeUndefined();
  });
});

describe('credential selection order', () => {
  const CS = `AccountName=acct;AccountKey=${KEY}`;
  it.each([
    ['all set: the connection string wins', { AZURE_STORAGE_CONNECTION_STRING: CS, AZURE_STORAGE_KEY: KEY, AZURE_STORAGE_SAS_TOKEN: SAS }, 'AZURE_STORAGE_CONNECTION_STRING', 'sharedKey'],
    ['key and SAS: the key wins', { AZURE_STORAGE_KEY: KEY, AZURE_STORAGE_SAS_TOKEN: SAS }, 'AZURE_STORAGE_KEY', 'sharedKey'],
    ['SAS only', { AZURE_STORAGE_SAS_TOKEN: SAS }, 'AZURE_STORAGE_SAS_TOKEN', 'sas'],
    ['nothing: Entra ID (managed or workload identity)', {}, 'DefaultAzureCredential', 'entraId'],
    ['workload identity variables are not storage secrets: still Entra ID', { AZURE_CLIENT_ID: 'c', AZURE_TENANT_ID: 't' } as AzureEnv, 'DefaultAzureCredential', 'entraId'],
    ['empty values do not count', { AZURE_STORAGE_CONNECTION_STRING: ' ', AZURE_STORAGE_KEY: '', AZURE_STORAGE_SAS_TOKEN: '' }, 'DefaultAzureCredential', 'entraId'],
  ] as const)('%s', (_label, env, source, kind) => {
    const a = resolveAzureAccess(loc('acct'), env as AzureEnv, undefined);
    expect(a.source).toBe(source);
    expect(a.auth.kind).toBe(kind);
  });

  it('Entra ID takes the account from the URL, AZURE_STORAGE_ACCOUNT or azure-endpoint', () => {
    expect(resolveAzureAccess(loc('acct'), {}, undefined).serviceUrl).toBe('https://acct.blob.core.windows.net');
    expect(resolveAzureAccess(loc(), { AZURE_STORAGE_ACCOUNT: 'envacct' }, undefined).serviceUrl).toBe('https://envacct.blob.core.windows.net');
    const e = resolveAzureAccess(loc(), {}, 'https://epacct.blob.core.usgovcloudapi.net/');
    expect([e.serviceUrl, e.account, e.secrets]).toEqual(['https://epacct.blob.core.usgovcloudapi.net', 'epacct', []]);
  });

  it('refuses Entra ID without an account or over plain http', () => {
    expect(configError(() => resolveAzureAccess(loc(), {}, undefined))).toMatch(/no Azure credentials and no storage account/);
    expect(configError(() => resolveAzureAccess(loc('acct'), {}, 'http://127.0.0.1:10000/acct'))).toMatch(/needs an https endpoint/);
  });
});
