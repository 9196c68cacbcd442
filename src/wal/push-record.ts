/**
 * Typed access to bin/push-record.cjs: push records and look-ahead locks. The implementation
 * lives in CommonJS so that bin/pgark.js can answer pushed-ahead segments without loading any
 * ES module; this file is its one door into the TypeScript code.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

export interface PushRecord {
  size: number;
  mtimeMs: number;
  ino: number;
  sha256: string;
}

interface PushRecordModule {
  PUSH_WAIT_MS: number;
  pushRecordDir(walDir: string): string;
  pushLockPath(walDir: string, name: string): string;
  takePushRecord(walPath: string, waitMs?: number): boolean;
  walPushPathOf(argv: readonly string[]): string | undefined;
}

/** bin/ sits two levels above src/wal (tests) and three above dist/src/wal (the CLI). */
function load(): PushRecordModule {
  for (const rel of ['../../bin/push-record.cjs', '../../../bin/push-record.cjs']) {
    const path = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(path)) return createRequire(import.meta.url)(path) as PushRecordModule;
  }
  throw new Error('bin/push-record.cjs not found next to the pgark sources');
}

const m = load();
export const PUSH_WAIT_MS = m.PUSH_WAIT_MS;
export const pushRecordDir = m.pushRecordDir;
export const pushLockPath = m.pushLockPath;
export const walPushPathOf = m.walPushPathOf;

/** See bin/push-record.cjs. Synchronous inside; wrapped async for the CLI's callers. */
export async function takePushRecord(walPath: string, waitMs?: number): Promise<boolean> {
  return m.takePushRecord(walPath, waitMs);
}
