/**
 * Typed access to fast-path.cjs (next to this file, in src/wal/ and dist/src/wal/): push records,
 * look-ahead locks, the prefetch area. The implementation lives in CommonJS so that bin/pgark.js
 * can answer pushed-ahead segments without loading any ES module; this file is its one door into
 * the TypeScript code.
 */
import { createRequire } from 'node:module';

import type { FileStamp } from './inspect-local.js';

/**
 * A push record: one line `v3 <ino> <size> <mtime ns> <ctime ns> <sha256> <target>` naming the
 * exact file that was durably archived, and where: `target` is pushTarget(repo, stanza) (read by
 * fast-path.cjs and by the POSIX shell client bin/pgark-wal-push, which compares the file
 * with `stat -c '%i %s %.9Y %.9Z'` and the target with its own repository and stanza).
 */
export function formatPushRecord(stamp: FileStamp, sha256: string, target: string): string {
  return `v3 ${stamp.ino} ${stamp.size} ${stamp.mtimeNs} ${stamp.ctimeNs} ${sha256} ${target}\n`;
}

interface PushRecordModule {
  PUSH_WAIT_MS: number;
  pushRecordDir(walDir: string): string;
  pushLockPath(walDir: string, name: string): string;
  prefetchDir(dest: string): string;
  takePushRecord(walPath: string, target: string | undefined, waitMs?: number): boolean;
  pushTarget(repo: string, stanza: string): string;
  takePrefetched(name: string, dest: string, waitMs?: number): boolean;
  walPushPathOf(argv: readonly string[]): string | undefined;
  walFetchArgsOf(argv: readonly string[], env: NodeJS.ProcessEnv): { name: string; dest: string } | undefined;
}

/** tsc copies fast-path.cjs to dist/src/wal/ (allowJs), so it sits next to this module in both trees. */
const m = createRequire(import.meta.url)('./fast-path.cjs') as PushRecordModule;
export const PUSH_WAIT_MS = m.PUSH_WAIT_MS;
export const pushRecordDir = m.pushRecordDir;
export const pushLockPath = m.pushLockPath;
export const walPushPathOf = m.walPushPathOf;
export const walFetchArgsOf = m.walFetchArgsOf;
export const prefetchDirOf = m.prefetchDir;
export const takePrefetched = m.takePrefetched;
/** 16 hex digits of sha256("<repo>\n<stanza>"): binds a push record to where it was stored. */
export const pushTarget = m.pushTarget;

/** See fast-path.cjs. Synchronous inside; wrapped async for the CLI's callers. */
export async function takePushRecord(walPath: string, target: string, waitMs?: number): Promise<boolean> {
  return m.takePushRecord(walPath, target, waitMs);
}
