// A backup gives lz4-napi's mimalloc the one-file settings (pages back at once, nothing committed
// ahead) unless the user set any MIMALLOC_* variable (src/backup/lz4-allocator.ts).
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { BACKUP_MIMALLOC, setBackupAllocatorEnv } from '../../../src/backup/lz4-allocator.js';

describe('backup allocator settings', () => {
  it('sets the three mimalloc settings and the marker spawn-worker drops them by', () => {
    const env: NodeJS.ProcessEnv = { PATH: '/usr/bin', MALLOC_ARENA_MAX: '2' };
    expect(setBackupAllocatorEnv(env)).toBe(true);
    expect(env).toEqual({ PATH: '/usr/bin', MALLOC_ARENA_MAX: '2', MIMALLOC_PURGE_DELAY: '0', MIMALLOC_EAGER_COMMIT: '0', MIMALLOC_ARENA_EAGER_COMMIT: '0', PGARK_MIMALLOC_SET: '1' });
    expect(Object.keys(BACKUP_MIMALLOC).sort()).toEqual(['MIMALLOC_ARENA_EAGER_COMMIT', 'MIMALLOC_EAGER_COMMIT', 'MIMALLOC_PURGE_DELAY']);
  });

  it("leaves every setting alone when the user set any MIMALLOC_* variable", () => {
    const env: NodeJS.ProcessEnv = { MIMALLOC_PURGE_DELAY: '50' };
    expect(setBackupAllocatorEnv(env)).toBe(false);
    expect(env).toEqual({ MIMALLOC_PURGE_DELAY: '50' });
  });

  it('lz4-napi reads what the process put into its environment before loading it', () => {
    // The mechanism runBackup relies on: process.env set at run time, lz4-napi loaded afterwards.
    const lz4 = createRequire(import.meta.url).resolve('lz4-napi');
    const script = `process.env.MIMALLOC_SHOW_STATS = '1'; require(${JSON.stringify(lz4)}).compressSync(Buffer.alloc(1 << 20));`;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '' }, timeout: 60_000 });
    expect(r.status).toBe(0);
    expect(r.stderr).toContain('heap stats');
  });
});
