import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { workerEnv } from '../../src/wal/spawn-worker.js';
import { resolveSettings } from '../../src/config/resolve.js';

describe('workerEnv', () => {
  const saved = { ...process.env };
  afterEach(() => {
    for (const k of ['UV_THREADPOOL_SIZE', 'PGARK_UV_THREADPOOL_SIZE_SET', 'MIMALLOC_PURGE_DELAY', 'MIMALLOC_EAGER_COMMIT', 'MIMALLOC_ARENA_EAGER_COMMIT', 'PGARK_MIMALLOC_SET']) {
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

  it("drops the lz4 allocator settings bin/pgark.js gave a one-file call, keeps the user's own", () => {
    Object.assign(process.env, { MIMALLOC_PURGE_DELAY: '0', MIMALLOC_EAGER_COMMIT: '0', MIMALLOC_ARENA_EAGER_COMMIT: '0', PGARK_MIMALLOC_SET: '1' });
    const env = workerEnv(settings());
    for (const k of ['MIMALLOC_PURGE_DELAY', 'MIMALLOC_EAGER_COMMIT', 'MIMALLOC_ARENA_EAGER_COMMIT', 'PGARK_MIMALLOC_SET']) expect(env[k]).toBeUndefined();
    delete process.env.PGARK_MIMALLOC_SET;
    expect(workerEnv(settings()).MIMALLOC_PURGE_DELAY).toBe('0');
  });

  it('keeps a pool size the user set', () => {
    process.env.UV_THREADPOOL_SIZE = '8';
    delete process.env.PGARK_UV_THREADPOOL_SIZE_SET;
    expect(workerEnv(settings()).UV_THREADPOOL_SIZE).toBe('8');
  });
});
