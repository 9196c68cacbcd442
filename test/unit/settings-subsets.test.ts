/**
 * Core functions take the part of the settings they read (issue 15 item 3): these calls pass only
 * that part, so `npm run typecheck` fails when a core function goes back to needing the whole
 * Settings; at run time they show the part is enough.
 */
import { describe, expect, it } from 'vitest';
import { policyFrom, type RetentionSettings } from '../../src/catalog/expire.js';
import { workerEnv } from '../../src/wal/spawn-worker.js';
import { commandSettings, settingsEnv, type WorkerSettings } from '../../src/config/settings-transport.js';
import { requireRepo } from '../../src/config/resolve.js';

describe('core functions take the settings they read', () => {
  it('retention: policyFrom reads the five retain settings only', () => {
    const r: RetentionSettings = { retainFull: 2, retainWindow: '36h', retainDaily: undefined, retainWeekly: 4, retainMonthly: undefined };
    expect(policyFrom(r)).toEqual({ retainFull: 2, retainWindowMs: 36 * 3600_000, retainWeekly: 4 });
  });

  it("a worker's environment is made of the given settings and the config file only", () => {
    const w: WorkerSettings = { given: { repo: 's3://b/p', 's3-endpoint': 'http://127.0.0.1:9000' }, configPath: '/etc/pgark/pgark.conf', configIncludePath: undefined };
    expect(settingsEnv(w)).toEqual({ PGARK_REPO: 's3://b/p', PGARK_S3_ENDPOINT: 'http://127.0.0.1:9000', PGARK_CONFIG: '/etc/pgark/pgark.conf' });
    expect(workerEnv(w)).toMatchObject({ PGARK_REPO: 's3://b/p', PGARK_S3_ENDPOINT: 'http://127.0.0.1:9000' });
  });

  it("PostgreSQL's commands carry repository, stanza, config file and given driver settings", () => {
    expect(commandSettings({ repo: '/r', stanza: 'main', given: { 's3-endpoint': 'http://e', jobs: '4' }, configPath: undefined, configIncludePath: undefined }))
      .toEqual({ repo: '/r', stanza: 'main', extra: ['--s3-endpoint', 'http://e'] });
    expect(requireRepo({ repo: '/r' })).toBe('/r');
    expect(() => requireRepo({ repo: undefined })).toThrow(/missing required setting 'repo'/);
  });
});
