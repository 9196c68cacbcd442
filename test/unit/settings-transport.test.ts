/**
 * config/settings-transport.ts: every setting of the schema travels to a worker's environment
 * and back to the same settings; the storage settings travel through archive_command /
 * restore_command arguments and parse back to the same settings. A setting added to the schema
 * that does not travel fails here.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { workerEnv } from '../../src/wal/spawn-worker.js';
import { resolveSettings, type FlagValues } from '../../src/config/resolve.js';
import { SETTINGS, type SettingKey, type SettingSpec } from '../../src/config/schema.js';
import { commandSettings, settingsEnv, travelsInCommands } from '../../src/config/settings-transport.js';
import { buildArchiveCommand } from '../../src/ops/archive-command.js';

const dir = mkdtempSync(join(tmpdir(), 'pgark-transport-'));
const cfg = join(dir, 'pgark.conf');
// The file sets some values itself (they must come back from the file, not from the transport).
writeFileSync(cfg, '[global]\nrepo = /from-file\njobs = 3\ns3-region = eu-west-1\ngcs-chunk-size = 32\n[db_1]\nprefetch = 4\n');
const spec = (k: SettingKey): SettingSpec => SETTINGS.find((s) => s.key === k)!;

/** A valid value for the setting that differs from its default (as given, before checking). */
function sample(s: SettingSpec): string {
  switch (s.type) {
    case 'int': {
      const d = s.default === undefined ? undefined : Number(s.default);
      const v = s.max !== undefined && d !== s.max ? s.max : s.min!;
      return String(v);
    }
    case 'bool':
      return s.default === 'true' ? 'no' : 'yes';
    case 'enum':
      return s.values!.find((v) => v !== s.default)!;
    case 'url':
      return `http://127.0.0.1:9000/${s.key}`;
    case 'duration':
      return '1d12h';
    default:
      if (s.key === 'stanza') return 'db_1';
      if (s.key === 'repo') return 's3://bucket/pre fix';
      return `/opt/with space/${s.key}`;
  }
}
/** What resolve makes of it (bools normalised). */
const normal = (s: SettingSpec, v: string) => (s.type === 'bool' ? (['yes', 'true'].includes(v) ? 'true' : 'false') : v);

const keys = SETTINGS.map((s) => s.key);

describe('settings -> worker environment -> settings', () => {
  it.each(keys)('%s given by flag comes back the same', (key) => {
    const s = resolveSettings({ config: cfg, [key]: sample(spec(key)) }, {});
    const env = settingsEnv(s);
    expect(env[spec(key).env]).toBe(normal(spec(key), sample(spec(key))));
    expect(env.PGARK_CONFIG).toBe(cfg);
    expect(resolveSettings({}, env)).toEqual(s);
  });

  it.each(keys)('%s given by environment comes back the same', (key) => {
    const s = resolveSettings({}, { PGARK_CONFIG: cfg, [spec(key).env]: sample(spec(key)) });
    expect(resolveSettings({}, settingsEnv(s))).toEqual(s);
  });

  it('all settings at once, and none (the file and defaults decide in the worker too)', () => {
    const flags: FlagValues = { config: cfg };
    for (const s of SETTINGS) flags[s.key] = sample(s);
    const all = resolveSettings(flags, {});
    expect(Object.keys(all.given).sort()).toEqual([...keys].sort());
    expect(resolveSettings({}, settingsEnv(all))).toEqual(all);
    const none = resolveSettings({ config: cfg }, {});
    expect(settingsEnv(none)).toEqual({ PGARK_CONFIG: cfg });
    expect(resolveSettings({}, settingsEnv(none))).toEqual(none);
  });

  it('workerEnv gives a worker the storage settings given as flags (they were lost before)', () => {
    const s = resolveSettings({ config: cfg, repo: 's3://b/p', 's3-endpoint': 'http://127.0.0.1:9000', 's3-path-style': 'true', 'storage-timeout': '7', 'ssh-identity': '/k', 'azure-endpoint': 'http://a', 'gcs-endpoint': 'http://g' }, {});
    const env = workerEnv(s);
    expect(env).toMatchObject({ PGARK_REPO: 's3://b/p', PGARK_S3_ENDPOINT: 'http://127.0.0.1:9000', PGARK_S3_PATH_STYLE: 'true', PGARK_STORAGE_TIMEOUT: '7', PGARK_SSH_IDENTITY: '/k', PGARK_AZURE_ENDPOINT: 'http://a', PGARK_GCS_ENDPOINT: 'http://g', PGARK_CONFIG: cfg });
    expect(resolveSettings({}, env as Record<string, string>).driver).toEqual(s.driver);
  });

  it('no setting is a secret (secrets come from the environment or files a setting names)', () => {
    for (const k of keys) expect(k).not.toMatch(/pass|secret|token|credential|account-key|sas\b|private/);
  });
});

/** `--key value` pairs back into flags, as the CLI's global options take them. */
function parsePairs(extra: string[]): FlagValues {
  expect(extra.length % 2).toBe(0);
  const flags: FlagValues = {};
  for (let i = 0; i < extra.length; i += 2) {
    const key = extra[i]!.replace(/^--/, '') as SettingKey;
    expect(extra[i]).toBe(`--${key}`);
    expect(keys).toContain(key);
    expect(flags[key]).toBeUndefined();
    flags[key] = extra[i + 1];
  }
  return flags;
}

describe('settings -> archive_command / restore_command arguments -> settings', () => {
  const travelling = SETTINGS.filter((s) => travelsInCommands(s)).map((s) => s.key);
  it('the storage-driver, cipher and further-repository settings travel, and only they besides repo, stanza and config', () => {
    expect(travelling.length).toBeGreaterThan(15);
    expect(travelling.every((k) => /^(storage|ssh|s3|azure|gcs|cipher)-|^repo[0-9]+(-|$)/.test(k))).toBe(true);
    // repo2, repo3 and their modes and key sources travel into archive_command / restore_command.
    expect(travelling).toEqual(expect.arrayContaining(['repo2', 'repo2-mode', 'repo2-cipher-key-file', 'repo3', 'repo3-mode']));
    // So do each repository's own store settings.
    expect(travelling).toEqual(expect.arrayContaining(['repo2-s3-endpoint', 'repo2-s3-profile', 'repo2-storage-timeout', 'repo3-ssh-identity', 'repo3-azure-endpoint', 'repo3-gcs-endpoint']));
    // Where the encryption key is travels (a path, a variable name), never the key: there is no setting for it.
    expect(travelling).toEqual(expect.arrayContaining(['cipher-key-file', 'cipher-key-env']));
  });

  it.each(travelling)('%s given by flag or environment comes back the same', (key) => {
    for (const s of [
      resolveSettings({ config: cfg, stanza: 'db_1', [key]: sample(spec(key)) }, {}),
      resolveSettings({ stanza: 'db_1', repo: '/r' }, { PGARK_CONFIG: cfg, [spec(key).env]: sample(spec(key)) }),
    ]) {
      const c = commandSettings(s);
      expect(c.extra).toEqual([`--${key}`, normal(spec(key), sample(spec(key)))]);
      const back = resolveSettings({ repo: c.repo, stanza: c.stanza, config: c.config, ...parsePairs(c.extra) }, {});
      // What travelled by environment arrives as a flag: same values, same driver settings.
      expect(back.driver).toEqual(s.driver);
      expect({ ...back, given: undefined }).toEqual({ ...s, given: undefined });
    }
  });

  it('all storage settings at once, and the config file named', () => {
    const flags: FlagValues = { config: cfg, repo: 's3://b/p', stanza: 'main' };
    for (const k of travelling) flags[k] = sample(spec(k));
    const s = resolveSettings(flags, {});
    const c = commandSettings(s);
    expect(c).toMatchObject({ repo: 's3://b/p', stanza: 'main', config: cfg });
    expect(resolveSettings({ repo: c.repo, stanza: c.stanza, config: c.config, ...parsePairs(c.extra) }, {})).toEqual(s);
    // Non-storage settings stay with the file and the server's environment (behaviour kept).
    const tuned = commandSettings(resolveSettings({ config: cfg, jobs: '9', 'log-level': 'debug', 'push-ahead': '2' }, {}));
    expect(tuned.extra).toEqual([]);
    expect(tuned.repo).toBe('/from-file');
  });

  it('buildArchiveCommand writes them shell-quoted after the repository', () => {
    const s = resolveSettings({ config: cfg, repo: 's3://b/p', 's3-endpoint': 'http://127.0.0.1:9000/%x', 's3-path-style': 'on' }, {});
    expect(buildArchiveCommand({ launcher: '/usr/bin/pgark', ...commandSettings(s) })).toBe(
      `'/usr/bin/pgark' wal-push %p --repo 's3://b/p' --stanza 'main' --config '${cfg}' '--s3-endpoint' 'http://127.0.0.1:9000/%%x' '--s3-path-style' 'true'`,
    );
  });
});
