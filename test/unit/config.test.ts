import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/common/errors.js';
import { parseConfigFile } from '../../src/config/config-file.js';
import { requireRepo, resolveSettings } from '../../src/config/resolve.js';

const dir = mkdtempSync(join(tmpdir(), 'pgark-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
function file(text: string): string {
  const p = join(dir, `c${Math.random().toString(36).slice(2)}.conf`);
  writeFileSync(p, text);
  return p;
}

describe('config file', () => {
  it('parses sections, comments and values', () => {
    const s = parseConfigFile('# c\n[global]\nrepo = /var/lib/pgark\n; c\n[main]\njobs=8\n', 'f');
    expect(s.get('global')?.get('repo')).toBe('/var/lib/pgark');
    expect(s.get('main')?.get('jobs')).toBe('8');
  });

  it.each([
    ['repo = /x\n', /outside a section/],
    ['[global]\nrepository = /x\n', /unknown setting 'repository'/],
    ['[global]\njust words\n', /f:2.*expected/],
  ])('rejects %j', (text, re) => {
    expect(() => parseConfigFile(text, 'f')).toThrow(re);
  });
});

describe('settings precedence: flag > env > [stanza] > [global] > default', () => {
  const cfg = file('[global]\nrepo = /from/global\njobs = 2\ncodec = gzip\n[db1]\nrepo = /from/stanza\n');
  it('uses defaults without any source', () => {
    const s = resolveSettings({ config: file('') }, {});
    expect(s).toMatchObject({ stanza: 'main', jobs: 4, pushAhead: 16, prefetch: 8, codec: 'lz4', codecExplicit: false, logLevel: 'warn' });
    expect(() => requireRepo(s)).toThrow(/missing required setting 'repo'/);
  });
  it('reads [global] and the stanza section', () => {
    expect(resolveSettings({ config: cfg }, {})).toMatchObject({ repo: '/from/global', jobs: 2, codec: 'gzip', codecExplicit: true });
    expect(resolveSettings({ config: cfg, stanza: 'db1' }, {}).repo).toBe('/from/stanza');
    expect(resolveSettings({ config: cfg }, { PGARK_STANZA: 'db1' }).repo).toBe('/from/stanza');
  });
  it('env beats the file and flags beat env', () => {
    expect(resolveSettings({ config: cfg }, { PGARK_REPO: '/from/env' }).repo).toBe('/from/env');
    expect(resolveSettings({ config: cfg, repo: '/from/flag' }, { PGARK_REPO: '/from/env' }).repo).toBe('/from/flag');
    expect(resolveSettings({}, { PGARK_CONFIG: cfg }).repo).toBe('/from/global');
  });
  it('names the setting and its origin in errors', () => {
    expect(() => resolveSettings({ config: cfg, jobs: 'many' }, {})).toThrow(/'jobs' \(from --jobs\): expected an integer/);
    expect(() => resolveSettings({ config: cfg }, { PGARK_JOBS: '0' })).toThrow(/'jobs' \(from PGARK_JOBS\): must be between 1 and 64/);
    expect(() => resolveSettings({ config: cfg, codec: 'brotli' }, {})).toThrow(/expected one of lz4, zstd, gzip, none/);
    expect(() => resolveSettings({ config: cfg, stanza: '../x' }, {})).toThrow(ConfigError);
    expect(() => resolveSettings({ config: join(dir, 'missing.conf') }, {})).toThrow(/unable to read config file/);
  });
});

describe('storage driver settings', () => {
  const cfg = file('[global]\nrepo = s3://bucket/pgark\ns3-endpoint = http://from-file:9000\nstorage-timeout = 30\n[db1]\ns3-region = eu-west-1\n');
  it('collects ssh-/s3-/azure-/gcs-/storage- settings for the driver, with defaults', () => {
    const s = resolveSettings({ config: cfg }, {});
    expect(s.driver).toEqual({
      'storage-timeout': '30',
      's3-endpoint': 'http://from-file:9000',
      's3-path-style': 'false',
      's3-checksum': 'when-required',
      's3-put-if-absent': 'if-none-match',
      's3-part-size': '16',
      'azure-block-size': '8',
      'gcs-chunk-size': '16',
    });
    expect(s.given).toEqual({});
    expect(resolveSettings({ config: cfg, stanza: 'db1' }, {}).driver['s3-region']).toBe('eu-west-1');
  });
  it('knows which came from flags or the environment (restore_command carries those)', () => {
    const s = resolveSettings({ config: cfg, 's3-path-style': 'yes' }, { PGARK_S3_ENDPOINT: 'http://127.0.0.1:9000' });
    expect(s.driver['s3-endpoint']).toBe('http://127.0.0.1:9000');
    expect(s.given).toEqual({ 's3-endpoint': 'http://127.0.0.1:9000', 's3-path-style': 'true' });
  });
  it.each([
    [{ 's3-path-style': 'maybe' }, /'s3-path-style'.*expected true or false/],
    [{ 's3-put-if-absent': 'hope' }, /expected one of if-none-match, head/],
    [{ 'storage-timeout': '0' }, /between 1 and 3600/],
    [{ 's3-part-size': '4' }, /between 5 and 512/],
  ])('rejects %j', (flags, re) => {
    expect(() => resolveSettings({ config: cfg, ...flags }, {})).toThrow(re);
  });
});
