import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/common/errors.js';
import { resolveS3Settings } from '../../storage-drivers/s3/settings.js';
import { formatS3Location, objectKey, parseS3Url, repoKey } from '../../storage-drivers/s3/url.js';

const parse = (s: string) => parseS3Url(new URL(s));

describe('parseS3Url', () => {
  it.each([
    ['s3://bucket', 'bucket', ''],
    ['s3://bucket/', 'bucket', ''],
    ['s3://bucket/prefix', 'bucket', 'prefix'],
    ['s3://bucket/pg/main/', 'bucket', 'pg/main'],
    ['s3://my.bucket-1/a%20b/c', 'my.bucket-1', 'a b/c'],
    ['s3://Legacy_Bucket/x', 'Legacy_Bucket', 'x'],
    ['s3://bucket/a/../b', 'bucket', 'b'], // dot segments are resolved by the URL parser itself
    ['s3://bucket/a/%2e%2e/b', 'bucket', 'b'],
  ])('%s -> bucket %s, prefix %j', (url, bucket, prefix) => {
    expect(parse(url)).toEqual({ bucket, prefix });
  });

  it.each([
    ['s3:///prefix', /expected s3:\/\/bucket/],
    ['s3:bucket/prefix', /expected s3:\/\/bucket/],
    ['s3://bucket:9000/x', /s3-endpoint/],
    ['s3://bucket/x?region=eu-west-1', /query strings/],
    ['s3://bucket/x#frag', /query strings/],
    ['s3://ab/x', /not a valid bucket name/],
    ['s3://-bucket/x', /not a valid bucket name/],
    ['s3://bucket-/x', /not a valid bucket name/],
    ['s3://bu..cket/x', /not a valid bucket name/],
    ['s3://bucket//x', /empty, '.', '..'/],
    ['s3://bucket/a%2Fb', /empty, '.', '..' or invalid/],
    ['s3://bucket/%E0%A4%A', /percent-encoding/],
  ])('refuses %s', (url, message) => {
    expect(() => parse(url)).toThrow(ConfigError);
    expect(() => parse(url)).toThrow(message);
  });

  it('refuses credentials in the URL without repeating them', () => {
    let err: unknown;
    try {
      parse('s3://AKIAIOSFODNN7EXAMPLE:wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY@bucket/x');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect(String(err)).toMatch(/credentials do not belong in the URL/);
    expect(String(err)).not.toContain('wJalrXUtnFEMI');
    expect(String(err)).not.toContain('AKIAIOSFODNN7EXAMPLE');
  });

  it('refuses other schemes', () => {
    expect(() => parse('gs://bucket/x')).toThrow(ConfigError);
  });

  it('maps keys to and from object keys', () => {
    const loc = { bucket: 'b', prefix: 'pg/main' };
    expect(formatS3Location(loc)).toBe('s3://b/pg/main');
    expect(formatS3Location({ bucket: 'b', prefix: '' })).toBe('s3://b');
    expect(objectKey(loc, 'wal/1')).toBe('pg/main/wal/1');
    expect(objectKey(loc, '')).toBe('pg/main/');
    expect(objectKey({ bucket: 'b', prefix: '' }, 'wal/1')).toBe('wal/1');
    expect(repoKey(loc, 'pg/main/wal/1')).toBe('wal/1');
    expect(repoKey(loc, 'pg/mainx/wal/1')).toBeNull();
    expect(repoKey({ bucket: 'b', prefix: '' }, 'x')).toBe('x');
  });
});

describe('resolveS3Settings', () => {
  it('applies the schema defaults when nothing is set', () => {
    expect(resolveS3Settings()).toEqual({
      endpoint: undefined,
      region: undefined,
      profile: undefined,
      pathStyle: false,
      storageClass: undefined,
      sse: undefined,
      sseKmsKeyId: undefined,
      checksum: 'when-required',
      putIfAbsent: 'if-none-match',
      partSize: 16 * 1024 * 1024,
      timeoutMs: 60_000,
    });
  });

  it('reads every setting', () => {
    expect(
      resolveS3Settings({
        's3-endpoint': 'http://127.0.0.1:9000/',
        's3-region': 'eu-west-1',
        's3-profile': 'dr-site',
        's3-path-style': 'true',
        's3-storage-class': 'STANDARD_IA',
        's3-sse': 'aws:kms',
        's3-sse-kms-key-id': 'arn:aws:kms:eu-west-1:111122223333:key/abcd',
        's3-checksum': 'when-supported',
        's3-put-if-absent': 'head',
        's3-part-size': '64',
        'storage-timeout': '5',
      }),
    ).toEqual({
      endpoint: 'http://127.0.0.1:9000',
      region: 'eu-west-1',
      profile: 'dr-site',
      pathStyle: true,
      storageClass: 'STANDARD_IA',
      sse: 'aws:kms',
      sseKmsKeyId: 'arn:aws:kms:eu-west-1:111122223333:key/abcd',
      checksum: 'when-supported',
      putIfAbsent: 'head',
      partSize: 64 * 1024 * 1024,
      timeoutMs: 5000,
    });
  });

  it('treats empty values as unset', () => {
    expect(resolveS3Settings({ 's3-endpoint': '', 's3-part-size': ' ' }).partSize).toBe(16 * 1024 * 1024);
  });

  it.each([
    [{ 's3-part-size': '4' }, /s3-part-size 4: expected 5 to 512/],
    [{ 's3-part-size': '513' }, /expected 5 to 512/],
    [{ 's3-part-size': '16MiB' }, /expected an integer/],
    [{ 'storage-timeout': '0' }, /storage-timeout/],
    [{ 's3-path-style': 'maybe' }, /expected true or false/],
    [{ 's3-checksum': 'always' }, /when-required, when-supported/],
    [{ 's3-put-if-absent': 'lock' }, /if-none-match, head/],
    [{ 's3-sse': 'aes' }, /AES256, aws:kms, aws:kms:dsse/],
    [{ 's3-sse-kms-key-id': 'k' }, /needs s3-sse = aws:kms/],
    [{ 's3-sse': 'AES256', 's3-sse-kms-key-id': 'k' }, /needs s3-sse = aws:kms/],
    [{ 's3-storage-class': 'STANDARD IA' }, /s3-storage-class/],
    [{ 's3-endpoint': 'not a url' }, /s3-endpoint/],
    [{ 's3-endpoint': 'ftp://host' }, /http or https/],
    [{ 's3-endpoint': 'https://AKIA:secretkey@host' }, /credentials do not belong/],
    [{ 's3-region': 'eu west' }, /s3-region/],
  ])('refuses %j', (settings, message) => {
    expect(() => resolveS3Settings(settings)).toThrow(ConfigError);
    expect(() => resolveS3Settings(settings)).toThrow(message);
  });

  it('never repeats credentials from an endpoint', () => {
    let message = '';
    try {
      resolveS3Settings({ 's3-endpoint': 'https://AKIA:secretkey@host' });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/credentials do not belong/);
    expect(message).not.toContain('secretkey');
  });
});
