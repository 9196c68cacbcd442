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
