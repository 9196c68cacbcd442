import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { workerEnv } from '../../src/wal/spawn-worker.js';
import { resolveSettings } from '../../src/config/resolve.js';

describe('workerEnv', () => {
  const saved = { ...process.env };
  afterEach(() => {
    for (const k of ['UV_THREADPOOL_SIZE', 'PGARK_UV_THREADPOOL_SIZE_SET']) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
  });
  const config = join(mkdtempSync(join(tmpdir(), 'pgark-worker-env-')), 'pgark.conf');
  writeFileSync(config, '');
  const settings = () => resolveSettings({ repo: '/r', config }, {});

  it('drops the libuv pool size bin/pgark.js narrowed for a one-file wal-push/wal-fetch', () => {
    process.env.UV_THREADPOOL_SIZE = '2';
    process.env.PGARK_UV_THREADPOOL_SIZE_SET = '1';
    const env = workerEnv(settings());
    expect(env.UV_THREADPOOL_SIZE).toBeUndefined();
    expect(env.PGARK_UV_THREADPOOL_SIZE_SET).toBeUndefined();
    expect(env.PGARK_REPO).toBe('/r');
  });

  it('keeps a pool size the user set', () => {
    process.env.UV_THREADPOOL_SIZE = '8';
    delete process.env.PGARK_UV_THREADPOOL_SIZE_SET;
    expect(workerEnv(settings()).UV_THREADPOOL_SIZE).toBe('8');
  });
});
