/**
 * lz4-napi's allocator settings for a backup. lz4-napi compresses through its own mimalloc,
 * which reads these variables once, when lz4-napi loads (the first lz4 object a backup writes,
 * after runBackup began). Its output blocks are allocated on libuv's threads and freed on the
 * main thread when collected; with mimalloc's defaults (arena memory committed ahead, freed pages
 * purged after a delay) those pages stayed resident: a full backup at --jobs 2 peaked at ~170 MiB
 * RSS, ~85 MiB of it mimalloc's, with ~16 lz4 blocks alive on average (bench/results/backup.md,
 * fourth pass). Purged at once and committed on demand they return to the system. The same
 * settings bin/pgark.js gives a one-file wal-push / wal-fetch, and, as there, a user's own
 * MIMALLOC_* variable wins (then none is set).
 */
export const BACKUP_MIMALLOC: Readonly<Record<string, string>> = {
  MIMALLOC_PURGE_DELAY: '0',
  MIMALLOC_EAGER_COMMIT: '0',
  MIMALLOC_ARENA_EAGER_COMMIT: '0',
};

/**
 * Put BACKUP_MIMALLOC into `env` (process.env) unless any MIMALLOC_* variable is set; marks them
 * with PGARK_MIMALLOC_SET, which tells src/wal/spawn-worker.ts to drop them for a pgark worker.
 * Returns whether it set them.
 */
export function setBackupAllocatorEnv(env: NodeJS.ProcessEnv): boolean {
  if (Object.keys(env).some((k) => k.startsWith('MIMALLOC_'))) return false;
  Object.assign(env, BACKUP_MIMALLOC);
  env.PGARK_MIMALLOC_SET = '1';
  return true;
}
