/**
 * Records of segments wal-push already stored durably ahead of PostgreSQL's request, kept in
 * `<pg_wal>/.pgark/pushed/<name>`. Node builtins only: bin/pgark.js consults this before it
 * loads the CLI, so that PostgreSQL's later calls for those segments cost one process start.
 */
import { readFileSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';

export interface PushRecord {
  size: number;
  mtimeMs: number;
  ino: number;
  sha256: string;
}

export function pushRecordDir(walDir: string): string {
  return join(walDir, '.pgark', 'pushed');
}

/**
 * True when `walPath` was pushed ahead and is unchanged since (same inode, size, mtime). The
 * record is consumed either way: a stale record must not answer a later call.
 */
export function takePushRecord(walPath: string): boolean {
  const path = resolve(walPath);
  const name = basename(path);
  if (!/^[0-9A-F]{24}$/.test(name)) return false;
  const recPath = join(pushRecordDir(dirname(path)), name);
  let rec: PushRecord;
  try {
    rec = JSON.parse(readFileSync(recPath, 'utf8')) as PushRecord;
  } catch {
    return false;
  }
  rmSync(recPath, { force: true });
  try {
    const st = statSync(path);
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
