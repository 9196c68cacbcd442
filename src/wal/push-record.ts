/**
 * Records of segments stored durably ahead of PostgreSQL's request, kept in
 * `<pg_wal>/.pgark/pushed/<name>`, and the `<name>.lock` a look-ahead worker holds while it
 * pushes that segment. Node builtins only: bin/pgark.js consults this before it loads the CLI,
 * so that PostgreSQL's calls for those segments cost little more than one process start.
 */
import { readFile, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { waitWhileLocked } from '../common/pid-lock.js';

export interface PushRecord {
  size: number;
  mtimeMs: number;
  ino: number;
  sha256: string;
}

/** Longest wait for a look-ahead worker that holds the requested segment. */
export const PUSH_WAIT_MS = 120_000;

export function pushRecordDir(walDir: string): string {
  return join(walDir, '.pgark', 'pushed');
}

export function pushLockPath(walDir: string, name: string): string {
  return join(pushRecordDir(walDir), `${name}.lock`);
}

/**
 * True when `walPath` was pushed ahead and is unchanged since (same inode, size, mtime). Waits
 * while a live worker holds the segment's lock. The record is consumed either way: a stale
 * record must not answer a later call.
 */
export async function takePushRecord(walPath: string, waitMs = PUSH_WAIT_MS): Promise<boolean> {
  const path = resolve(walPath);
  const name = basename(path);
  if (!/^[0-9A-F]{24}$/.test(name)) return false;
  const walDir = dirname(path);
  await waitWhileLocked(pushLockPath(walDir, name), waitMs);
  const recPath = join(pushRecordDir(walDir), name);
  let rec: PushRecord;
  try {
    rec = JSON.parse(await readFile(recPath, 'utf8')) as PushRecord;
  } catch {
    return false;
  }
  await rm(recPath, { force: true });
  try {
    const st = await stat(path);
    return st.isFile() && rec.size === st.size && rec.mtimeMs === st.mtimeMs && rec.ino === st.ino;
  } catch {
    return false;
  }
}

/** Options of the pgark CLI that take a value (global and wal-push's), for argv scanning. */
const VALUE_OPTIONS = new Set(['--repo', '--stanza', '--config', '--pgdata', '--log-level', '--push-ahead', '--jobs', '--codec', '--compress-level', '--spool-dir']);

/**
 * The path of a plain `pgark [options] wal-push <path> [options]` call, or undefined for
 * anything else (other commands, --help, --json output requested, unparseable input): those
 * take the full CLI.
 */
export function walPushPathOf(argv: readonly string[]): string | undefined {
  const positional: string[] = [];
  for (let i = 2; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') return undefined;
    if (a.startsWith('-')) {
      if (a.includes('=')) continue;
      if (VALUE_OPTIONS.has(a)) {
        i++;
        continue;
      }
      return undefined; // --json, --help, -V, or an unknown flag: let the CLI answer
    }
    positional.push(a);
  }
  return positional.length === 2 && positional[0] === 'wal-push' ? positional[1] : undefined;
}
