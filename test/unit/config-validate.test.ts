// Every setting of the config file is checked for its type, with file:line in the error
// (config/setting-check.ts), and the include directory of config/config-load.ts.
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, ExitCode } from '../../src/common/errors.js';
import { parseDuration } from '../../src/catalog/retention.js';
import { includeFileOrder } from '../../src/config/config-file.js';
import { loadConfig } from '../../src/config/config-load.js';
import { resolveSettings } from '../../src/config/resolve.js';
import { SETTINGS, type SettingSpec } from '../../src/config/schema.js';
import { commandSettings, settingsEnv } from '../../src/config/settings-transport.js';
import { checkSetting } from '../../src/config/setting-check.js';

const dir = mkdtempSync(join(tmpdir(), 'pgark-config-validate-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
function file(text: string, name = `c${n++}.conf`): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}
function refusal(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).exitCode).toBe(ExitCode.USAGE);
    return err as ConfigError;
  }
  throw new Error('not refused');
}

describe('a bad value in the config file names file:line', () => {
  it.each([
    ['jobs = many', /invalid value 'many' for 'jobs' \(from .*:3\): expected an integer/],
    ['jobs = 0', /'jobs' \(from .*:3\): must be between 1 and 64/],
    ['codec = brotli', /'codec' \(from .*:3\): expected one of lz4, zstd, gzip, none/],
    ['fetch-received = maybe', /'fetch-received' \(from .*:3\): expected true or false/],
    ['log-level = verbose', /'log-level' \(from .*:3\): expected one of off, error, warn, info, debug, trace/],
    ['pgdata = var/lib/postgresql', /'pgdata' \(from .*:3\): expected an absolute path/],
    ['log-file = pgark.log', /'log-file' \(from .*:3\): expected an absolute path/],
    ['ssh-identity = .ssh/id', /'ssh-identity' \(from .*:3\): expected an absolute path \(or ~\/\.\.\.\)/],
    ['repo = var/lib/pgark', /invalid repository 'var\/lib\/pgark' \(from .*:3\): expected an absolute path or a URL/],
    ['s3-endpoint = minio:9000', /'s3-endpoint' \(from .*:3\): expected an http:\/\/ or https:\/\/ URL/],
    ['s3-endpoint = ftp://minio:9000', /'s3-endpoint' \(from .*:3\): expected an http:\/\/ or https:\/\/ URL/],
    ['azure-endpoint = https://acct.blob.core.windows.net/?sig=SECRETSIG', /'azure-endpoint' \(from .*:3\): no credentials, query or fragment/],
    ['retain-window = 7 days', /'retain-window' \(from .*:3\): expected a duration/],
    ['retain-window = 0d', /'retain-window' \(from .*:3\): expected a duration/],
    ['storage-timeout =', /empty value for 'storage-timeout' \(from .*:3\)/],
  ])('%s', (line, re) => {
    const path = file(`[global]\nrepo = /r\n${line}\n`);
    const err = refusal(() => resolveSettings({ config: path }, {}));
    expect(err.message).toMatch(re);
    expect(err.message).toContain(`${path}:3`);
    expect(err.message).not.toContain('SECRETSIG');
  });

  it('in any section, used or not (a typo in [db2] is found before it matters)', () => {
    const path = file('[global]\nrepo = /r\n[db2]   # another cluster\n\nprefetch = lots\n');
    expect(refusal(() => resolveSettings({ config: path, stanza: 'main' }, {})).message).toContain(`${path}:5`);
  });

  it.each([
    ['pgdata = /var/lib/postgresql/15/main'],
    ['ssh-identity = ~/.ssh/id_ed25519'],
    ['ssh-known-hosts = /etc/ssh/ssh_known_hosts'],
    ['repo = s3://bucket/prefix'],
    ['repo = file:///var/lib/pgark'],
    ['s3-endpoint = http://127.0.0.1:9000'],
    ['gcs-endpoint = 127.0.0.1:4443'],
    ['gcs-endpoint = https://storage.example.com/storage/v1'],
    ['retain-window = 1d12h'],
    ['log-level = trace'],
    ['log-file = /var/log/pgark/pgark.log'],
    ['log-level-stderr = off'],
  ])('accepts %s', (line) => {
    expect(() => resolveSettings({ config: file(`[global]\nrepo = /r\n${line}\n`) }, {})).not.toThrow();
  });

  it('flags and the environment: a relative path is taken as given (relative to the working directory)', () => {
    const cfg = file('[global]\nrepo = /r\n');
    expect(resolveSettings({ config: cfg, 'log-file': 'rel.log' }, {}).logFile).toBe('rel.log');
    expect(resolveSettings({ config: cfg }, { PGDATA: 'data' }).pgdata).toBe('data');
    expect(refusal(() => resolveSettings({ config: cfg, repo: 'rel/repo' }, {})).message).toMatch(/invalid repository 'rel\/repo' \(from --repo\)/);
    expect(refusal(() => resolveSettings({ config: cfg }, { PGARK_RETAIN_WINDOW: 'forever' })).message).toMatch(/'retain-window' \(from PGARK_RETAIN_WINDOW\)/);
  });

  it('the duration check agrees with expire (catalog/retention.ts parseDuration)', () => {
    const spec = SETTINGS.find((s) => s.key === 'retain-window')! as SettingSpec;
    for (const v of ['7d', '36h', '2w', '90s', '1d12h', '1w2d3h4m5s', '0d', '', '7 d', 'd', '1h1d', '12', '1y', '-1d', '0w0d1s']) {
      let cli: boolean;
      try {
        checkSetting(spec, v, 'x', true);
        cli = true;
      } catch {
        cli = false;
      }
      let expire: boolean;
      try {
        parseDuration(v);
        expire = true;
      } catch {
        expire = false;
      }
      expect([v, cli]).toEqual([v, expire]);
    }
  });
});

describe('include directory (config-include-path)', () => {
  it('reads *.conf in byte order after the config file; later wins, key by key', () => {
    const inc = join(dir, 'conf.d-a');
    mkdirSync(inc);
    writeFileSync(join(inc, '20-jobs.conf'), '[global]\njobs = 6\n');
    writeFileSync(join(inc, '10-repo.conf'), '[global]   # from conf.d\nrepo = /from-10\njobs = 5\n[db1]\nprefetch = 3\n');
    writeFileSync(join(inc, 'B.conf'), '[global]\ncodec = gzip\n');
    writeFileSync(join(inc, 'a.conf'), '[global]\ncodec = zstd\n'); // 'B' < 'a' in byte order: a.conf wins
    writeFileSync(join(inc, 'notes.txt'), 'not read\n');
    writeFileSync(join(inc, 'x.conf.dpkg-old'), '[global]\njobs = 64\n');
    mkdirSync(join(inc, 'sub.conf'));
    symlinkSync(join(dir, 'nowhere'), join(inc, 'dangling.conf'));
    const main = file('[global]\nrepo = /from-main\njobs = 2\npush-ahead = 8\n');
    const s = resolveSettings({ config: main, 'config-include-path': inc }, {});
    expect(s).toMatchObject({ repo: '/from-10', jobs: 6, pushAhead: 8, codec: 'zstd', configPath: main, configIncludePath: inc });
    expect(resolveSettings({ config: main, stanza: 'db1' }, { PGARK_CONFIG_INCLUDE_PATH: inc }).prefetch).toBe(3);
    expect(loadConfig({ config: main, 'config-include-path': inc }, {}).files).toEqual([main, join(inc, '10-repo.conf'), join(inc, '20-jobs.conf'), join(inc, 'B.conf'), join(inc, 'a.conf')]);
  });

  it('the stanza section still beats [global], whichever file each is in', () => {
    const inc = join(dir, 'conf.d-b');
    mkdirSync(inc);
    writeFileSync(join(inc, 'z.conf'), '[global]\nrepo = /late-global\n');
    const main = file('[global]\nrepo = /g\n[db1]\nrepo = /db1\n');
    expect(resolveSettings({ config: main, stanza: 'db1', 'config-include-path': inc }, {}).repo).toBe('/db1');
    expect(resolveSettings({ config: main, 'config-include-path': inc }, {}).repo).toBe('/late-global');
  });

  it('an include file is checked like the config file (file:line)', () => {
    const inc = join(dir, 'conf.d-c');
    mkdirSync(inc);
    writeFileSync(join(inc, '50-bad.conf'), '# tuning\n[global]\njobs = all\n');
    expect(refusal(() => resolveSettings({ config: file('[global]\nrepo = /r\n'), 'config-include-path': inc }, {})).message).toContain(`${join(inc, '50-bad.conf')}:3`);
  });

  it('a named include directory must exist; an explicit config file has no default include directory', () => {
    const main = file('[global]\nrepo = /r\n');
    expect(refusal(() => resolveSettings({ config: main, 'config-include-path': join(dir, 'missing') }, {})).message).toMatch(/unable to read config include directory/);
    expect(loadConfig({ config: main }, {}).files).toEqual([main]);
  });

  it('byte order, whatever the locale', () => {
    expect(includeFileOrder(['b.conf', 'a.conf', 'B.conf', '10.conf', '9.conf', '.conf', 'é.conf', 'z.conf', 'x.txt'])).toEqual(['10.conf', '9.conf', 'B.conf', 'a.conf', 'b.conf', 'z.conf', 'é.conf']);
  });

  it('travels to workers and into archive_command / restore_command with the config file', () => {
    const inc = join(dir, 'conf.d-d');
    mkdirSync(inc);
    writeFileSync(join(inc, 'r.conf'), '[global]\nrepo = /from-include\n');
    const main = file('[global]\njobs = 3\n');
    const s = resolveSettings({ config: main, 'config-include-path': inc }, {});
    expect(settingsEnv(s)).toEqual({ PGARK_CONFIG: main, PGARK_CONFIG_INCLUDE_PATH: inc });
    expect(resolveSettings({}, settingsEnv(s))).toEqual(s);
    expect(commandSettings(s)).toEqual({ repo: '/from-include', stanza: 'main', config: main, extra: ['--config-include-path', inc] });
  });
});
