/**
 * Repository locations in messages: credentials never appear, whether the URL parses or not
 * (issue 14, item 7: an unparsed URL used to be echoed whole).
 */
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/common/errors.js';
import { parseRepoUrl, redactLocation } from '../../storage-drivers/registry.js';

describe('redactLocation', () => {
  it.each([
    // does not parse as a URL
    ['s3://AKIAIOSFODNN7EXAMPLE:wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY@bucket/p', 's3://***@bucket/p'],
    ['s3://AKIAIOSFODNN7EXAMPLE:secret/with+slash@bucket/p', 's3://***@bucket/p'],
    ['file://u:pw@host/var/lib/pgark', 'file://***@host/var/lib/pgark'],
    ['file://u@host/x', 'file://***@host/x'],
    ['ssh://u:p@ss@[bad/x?token=abc', 'ssh://***@[bad/x?token=***'],
    ['u:secret@host:/var/lib/pgark', '***@host:/var/lib/pgark'],
    ['gs://b/p?x=1&secret=s3cr3t&y=%', 'gs://b/p?x=1&secret=***&y=%25'],
    // parses
    ['s3://AKIA:secret@bucket/p', 's3://***@bucket/p'],
    ['ssh://pgark:pw@backup.example.com:2222/srv/pgark', 'ssh://***@backup.example.com:2222/srv/pgark'],
    ['azure://acct/c?sig=abc&sv=2020', 'azure://acct/c?sig=***&sv=2020'],
    ['gs://bucket/prefix', 'gs://bucket/prefix'],
    ['/var/lib/pgark', '/var/lib/pgark'],
  ])('%j -> %j', (given, shown) => {
    expect(redactLocation(given)).toBe(shown);
  });
});

describe('parseRepoUrl errors', () => {
  it.each([
    's3://AKIAIOSFODNN7EXAMPLE:secret/with+slash@bucket/p',
    'file://u:pw@host/var/lib/pgark',
    'ssh://u:secret@[::1/x',
  ])('%j is refused without its credentials', (loc) => {
    let caught: unknown;
    try {
      parseRepoUrl(loc);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    const msg = (caught as Error).message;
    expect(msg).toMatch(/^invalid repository '.*\*\*\*@/);
    expect(msg).not.toMatch(/secret|AKIA|pw@|u:/);
  });
});
