import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/common/errors.js';
import { formatAzureLocation, isValidAccountName, isValidContainerName, parseAzureUrl } from '../../storage-drivers/azure/azure-url.js';

const parse = (s: string) => parseAzureUrl(new URL(s));

describe('parseAzureUrl', () => {
  it.each([
    ['azure://acct/cont', { account: 'acct', container: 'cont', prefix: '' }],
    ['azure://acct/cont/', { account: 'acct', container: 'cont', prefix: '' }],
    ['azure://acct/cont/pg/main', { account: 'acct', container: 'cont', prefix: 'pg/main/' }],
    ['azure://acct/cont/pg/main/', { account: 'acct', container: 'cont', prefix: 'pg/main/' }],
    ['azure://MyAcct1/cont/p', { account: 'myacct1', container: 'cont', prefix: 'p/' }],
    ['azure:///cont/p', { account: undefined, container: 'cont', prefix: 'p/' }],
    ['azure://acct/a-b-c/my%20prefix', { account: 'acct', container: 'a-b-c', prefix: 'my prefix/' }],
    ['azure://devstoreaccount1/x1y/2024', { account: 'devstoreaccount1', container: 'x1y', prefix: '2024/' }],
  ])('%s', (url, expected) => {
    expect(parse(url)).toEqual(expected);
  });

  it.each([
    ['azure://acct', /container is missing/],
    ['azure://acct/', /container is missing/],
    ['azure://ac/cont', /invalid azure storage account name 'ac'/],
    ['azure://acct_x/cont', /invalid azure storage account name/],
    ['azure://a234567890123456789012345/cont', /invalid azure storage account name/],
    ['azure://acct/Cont', /invalid azure container name 'Cont'/],
    ['azure://acct/co', /invalid azure container name/],
    ['azure://acct/a--b', /invalid azure container name/],
    ['azure://acct/-ab', /invalid azure container name/],
    ['azure://acct/ab-', /invalid azure container name/],
    [`azure://acct/${'a'.repeat(64)}`, /invalid azure container name/],
    ['azure://acct/cont/a//b', /empty, '\.' or '\.\.' segment/],
    ['azure://acct/cont/a%2F..%2Fb', /segment|forbidden/],
    ['azure://acct/cont/%E0%A4%A', /bad percent-encoding/],
    ['azure://acct:10000/cont', /port is not allowed/],
    ['azure:cont/p', /expected azure:\/\/account\/container/],
  ])('rejects %s', (url, message) => {
    expect(() => parse(url)).toThrow(ConfigError);
    expect(() => parse(url)).toThrow(message);
  });

  it('rejects a query, fragment or credentials without echoing them', () => {
    for (const url of ['azure://acct/cont?sv=1&sig=SECRETSIG', 'azure://acct/cont#SECRETSIG', 'azure://user:SECRETSIG@acct/cont', 'azure://SECRETSIG@acct/cont']) {
      let message = '';
      try {
        parse(url);
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        message = (err as Error).message;
      }
      expect(message).not.toBe('');
      expect(message).not.toContain('SECRETSIG');
    }
  });

  it('rejects other schemes', () => {
    expect(() => parse('s3://bucket/x')).toThrow(/unsupported repository scheme/);
  });
});

describe('names and display', () => {
  it('validates account and container names', () => {
    expect(isValidAccountName('abc')).toBe(true);
    expect(isValidAccountName('ABC')).toBe(false);
    expect(isValidContainerName('a1-b2')).toBe(true);
    expect(isValidContainerName('$root')).toBe(false);
  });
  it('formats the location', () => {
    expect(formatAzureLocation('acct', 'cont', '')).toBe('azure://acct/cont');
    expect(formatAzureLocation('acct', 'cont', 'a/b/')).toBe('azure://acct/cont/a/b');
    expect(formatAzureLocation(undefined, 'cont', 'p/')).toBe('azure:///cont/p');
  });
});
