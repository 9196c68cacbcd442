import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/common/errors.js';
import { DEFAULT_ENDPOINT, parseEndpoint, resolveGcsSettings } from '../../storage-drivers/gcs/settings.js';
import { bucketNameProblem, parseGcsUrl } from '../../storage-drivers/gcs/url.js';

const parse = (s: string) => parseGcsUrl(new URL(s));

describe('parseGcsUrl', () => {
  it.each([
    ['gs://my-bucket', { bucket: 'my-bucket', prefix: '', display: 'gs://my-bucket' }],
    ['gs://my-bucket/', { bucket: 'my-bucket', prefix: '', display: 'gs://my-bucket' }],
    ['gs://my-bucket/pgark', { bucket: 'my-bucket', prefix: 'pgark/', display: 'gs://my-bucket/pgark' }],
    ['gs://my-bucket/a/b/', { bucket: 'my-bucket', prefix: 'a/b/', display: 'gs://my-bucket/a/b' }],
    ['gs://b_1.example.com/x', { bucket: 'b_1.example.com', prefix: 'x/', display: 'gs://b_1.example.com/x' }],
    ['gs://bucket/with%20space', { bucket: 'bucket', prefix: 'with space/', display: 'gs://bucket/with space' }],
  ])('parses %s', (url, want) => {
    expect(parse(url)).toEqual(want);
  });

  it.each([
    ['gs://', /empty/],
    ['gs:///prefix', /empty/],
    ['gs://UPPER/x', /lowercase/],
    ['gs://ab', /3 to 63/],
    ['gs://-bucket', /starts and ends/],
    ['gs://bucket-', /starts and ends/],
    ['gs://192.168.1.1/x', /IP address/],
    ['gs://googbucket', /goog/],
    [`gs://${'a'.repeat(64)}`, /3 to 63/],
    ['gs://a..b/x', /dot-separated/],
    ['gs://user:secret@bucket/x', /credentials/],
    ['gs://bucket:8080/x', /port/],
    ['gs://bucket/x?token=abc', /query/],
    ['gs://bucket/x#frag', /query or fragment/],
    ['gs://bucket/a//b', /segment/],
    ['gs://bucket/a%2F%2E%2E/b', /segment/],
    ['gs://bucket/a/b%5Cc', /forbidden/],
    ['gs://bucket/%E0%A4%A', /percent-encoding/],
  ])('rejects %s', (url, message) => {
    let err: unknown;
    try {
      parse(url);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(message);
    expect((err as Error).message).not.toContain('secret');
    expect((err as Error).message).not.toContain('token=abc');
  });

  it('rejects other schemes', () => {
    expect(() => parse('s3://bucket/x')).toThrow(ConfigError);
  });

  it('accepts long dotted bucket names', () => {
    expect(bucketNameProblem(`${'a'.repeat(63)}.${'b'.repeat(63)}.example.com`)).toBeNull();
    expect(bucketNameProblem(`${'a'.repeat(64)}.example.com`)).toMatch(/dot-separated/);
  });
});

describe('resolveGcsSettings', () => {
  it('defaults to Google with credentials, 16 MiB chunks and a 60 s timeout', () => {
    expect(resolveGcsSettings({}, {})).toEqual({
      endpoint: DEFAULT_ENDPOINT,
      customEndpoint: false,
      authenticated: true,
      chunkSize: 16 * 1024 * 1024,
      timeoutMs: 60_000,
    });
  });

  it('takes gcs-chunk-size in MiB and storage-timeout in seconds', () => {
    const s = resolveGcsSettings({ 'gcs-chunk-size': '1', 'storage-timeout': '2' }, {});
    expect(s.chunkSize).toBe(1024 * 1024);
    expect(s.chunkSize % (256 * 1024)).toBe(0);
    expect(s.timeoutMs).toBe(2000);
  });

  it.each([
    ['gcs-chunk-size', '0'],
    ['gcs-chunk-size', '1025'],
    ['gcs-chunk-size', '1.5'],
    ['storage-timeout', 'x'],
    ['storage-timeout', '0'],
  ])('rejects %s=%s', (key, value) => {
    expect(() => resolveGcsSettings({ [key]: value }, {})).toThrow(ConfigError);
  });

  it('an http:// gcs-endpoint is an emulator without credentials; https:// keeps them', () => {
    expect(resolveGcsSettings({ 'gcs-endpoint': 'http://127.0.0.1:4443/' }, {})).toMatchObject({ endpoint: 'http://127.0.0.1:4443', customEndpoint: true, authenticated: false });
    expect(resolveGcsSettings({ 'gcs-endpoint': 'https://storage-psc.p.googleapis.com' }, {})).toMatchObject({
      endpoint: 'https://storage-psc.p.googleapis.com',
      customEndpoint: true,
      authenticated: true,
    });
    expect(resolveGcsSettings({ 'gcs-endpoint': 'https://storage.googleapis.com/storage/v1' }, {})).toMatchObject({ endpoint: DEFAULT_ENDPOINT, customEndpoint: false });
  });

  it('gcs-endpoint wins over STORAGE_EMULATOR_HOST, which is plain HTTP when it has no scheme', () => {
    const env = { STORAGE_EMULATOR_HOST: 'localhost:9023' };
    expect(resolveGcsSettings({}, env)).toMatchObject({ endpoint: 'http://localhost:9023', customEndpoint: true, authenticated: false });
    expect(resolveGcsSettings({}, { STORAGE_EMULATOR_HOST: 'https://emu.example:8443' })).toMatchObject({ endpoint: 'https://emu.example:8443', authenticated: false });
    expect(resolveGcsSettings({ 'gcs-endpoint': 'http://127.0.0.1:1' }, env).endpoint).toBe('http://127.0.0.1:1');
  });

  it('rejects endpoints with credentials, queries or other schemes', () => {
    expect(() => parseEndpoint('ftp://x', 'gcs-endpoint', 'https')).toThrow(/http/);
    expect(() => parseEndpoint('https://user:pw@x', 'gcs-endpoint', 'https')).toThrow(/no credentials/);
    expect(() => parseEndpoint('https://x/?key=1', 'gcs-endpoint', 'https')).toThrow(ConfigError);
    expect(() => parseEndpoint('https://user:pw@x', 'gcs-endpoint', 'https')).not.toThrow(/pw/);
  });
});
