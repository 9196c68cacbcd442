'use strict';
// Records of segments stored durably ahead of PostgreSQL's request, kept in
// `<pg_wal>/.pgark/pushed/<name>`, and the `<name>.lock` (the pid of a look-ahead worker) held
// while that segment is being pushed. Plain CommonJS with Node builtins only: bin/pgark.js
// answers PostgreSQL's calls for pushed-ahead segments with it before loading the CLI. The
// TypeScript side uses it through src/wal/push-record.ts. Synchronous on purpose: nothing else
// runs in that process.
const { readFileSync, rmSync, statSync } = require('node:fs');
const { basename, dirname, join, resolve } = require('node:path');

const PUSH_WAIT_MS = 120000;
const SEGMENT_RE = /^[0-9A-F]{24}$/;
/** Options of the pgark CLI that take a value (global and wal-push's). */
const VALUE_OPTIONS = new Set(['--repo', '--stanza', '--config', '--pgdata', '--log-level', '--push-ahead', '--jobs', '--codec', '--compress-level', '--spool-dir']);

function pushRecordDir(walDir) {
  return join(walDir, '.pgark', 'pushed');
}

function pushLockPath(walDir, name) {
  return join(pushRecordDir(walDir), `${name}.lock`);
}

/** Same rule as src/common/process.ts: exists, and not a zombie. */
function alive(pid) {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
  } catch (err) {
    if (err.code === 'ESRCH') return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true;
  }
}

function sleepSync(ms) {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Wait (bounded) while a live process holds the lock file. */
function waitWhileLockedSync(lock, maxMs) {
  const until = Date.now() + maxMs;
  while (Date.now() < until) {
    let pid;
    try {
      pid = Number.parseInt(readFileSync(lock, 'utf8'), 10);
    } catch {
      return;
    }
    if (!(pid > 0 && alive(pid))) return;
    sleepSync(10);
  }
}

/**
 * True when `walPath` was pushed ahead and is unchanged since (same inode, size, mtime). Waits
 * while a live worker holds the segment's lock. The record is consumed either way: a stale
 * record must not answer a later call.
 */
function takePushRecord(walPath, waitMs = PUSH_WAIT_MS) {
  const path = resolve(walPath);
  const name = basename(path);
  if (!SEGMENT_RE.test(name)) return false;
  const walDir = dirname(path);
  waitWhileLockedSync(pushLockPath(walDir, name), waitMs);
  const recPath = join(pushRecordDir(walDir), name);
  let rec;
  try {
    rec = JSON.parse(readFileSync(recPath, 'utf8'));
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

/**
 * The path of a plain `pgark [options] wal-push <path> [options]` call, or undefined for
 * anything else (other commands, --help, --json, unknown flags): those take the full CLI.
 */
function walPushPathOf(argv) {
  const positional = [];
  for (let i = 2; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') return undefined;
    if (a.startsWith('-')) {
      if (a.includes('=')) continue;
      if (VALUE_OPTIONS.has(a)) {
        i++;
        continue;
      }
      return undefined;
    }
    positional.push(a);
  }
  return positional.length === 2 && positional[0] === 'wal-push' ? positional[1] : undefined;
}

module.exports = { PUSH_WAIT_MS, pushRecordDir, pushLockPath, takePushRecord, walPushPathOf };
