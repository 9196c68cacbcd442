'use strict';
// The fast paths of archive_command and restore_command, in plain CommonJS with Node builtins
// only, so that bin/pgark.js answers without loading the ES-module CLI:
// - wal-push of a segment a look-ahead worker already stored: its record in
//   `<pg_wal>/.pgark/pushed/<name>` (written after the object was durable);
// - wal-fetch of a segment a prefetch worker already verified into `<pg_wal>/.pgark/prefetch/`.
// While a worker holds `<name>.lock` (its pid) for the segment, the call waits for it.
// It lives in src/wal/ (tsc copies it to dist/src/wal/, allowJs) and bin/pgark.js requires it from
// there. The TypeScript side uses the push records through src/wal/fast-path.ts. Synchronous on
// purpose: nothing else runs in that process.
const { closeSync, fsyncSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync } = require('node:fs');
const { basename, dirname, join, resolve } = require('node:path');
const { createHash } = require('node:crypto');

const PUSH_WAIT_MS = 120000;
const PREFETCH_WAIT_MS = 60000;
/** src/pg/wal-names.ts's segment shape, copied: this module loads no pgark module (test/unit/one-home.test.ts checks they agree). */
const SEGMENT_RE = /^[0-9A-F]{24}$/;
/** Options of the pgark CLI that take a value (global and wal-push's). */
const VALUE_OPTIONS = new Set(['--repo', '--stanza', '--config', '--config-include-path', '--pgdata', '--log-level', '--log-level-stderr', '--log-file', '--push-ahead', '--jobs', '--codec', '--compress-level', '--prefetch']);

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

/** 16 hex digits of sha256("<repo>\n<stanza>"): binds a push record to where it was stored. */
function pushTarget(repo, stanza) {
  return createHash('sha256').update(`${repo}\n${stanza}`).digest('hex').slice(0, 16);
}

/**
 * True when `walPath` was pushed ahead to `target` (pushTarget of the repository and stanza of
 * this call) and is unchanged since (same inode, size, mtime and ctime to the nanosecond: any
 * write or replacement changes one of them). Waits while a live worker holds the segment's
 * lock. The record is consumed either way: a stale record must not answer a later call.
 * Without a target (the repository comes from the config file) it answers nothing.
 */
function takePushRecord(walPath, target, waitMs = PUSH_WAIT_MS) {
  const path = resolve(walPath);
  const name = basename(path);
  if (!SEGMENT_RE.test(name) || !target) return false;
  const walDir = dirname(path);
  waitWhileLockedSync(pushLockPath(walDir, name), waitMs);
  const recPath = join(pushRecordDir(walDir), name);
  let rec;
  try {
    // v3 <ino> <size> <mtime ns> <ctime ns> <sha256> <target> (src/wal/fast-path.ts formatPushRecord)
    rec = readFileSync(recPath, 'utf8').trim().split(' ');
  } catch {
    return false;
  }
  rmSync(recPath, { force: true });
  if (rec.length !== 7 || rec[0] !== 'v3' || rec[6] !== target) return false;
  try {
    const st = statSync(path, { bigint: true });
    return st.isFile() && rec[1] === String(st.ino) && rec[2] === String(st.size) && rec[3] === String(st.mtimeNs) && rec[4] === String(st.ctimeNs);
  } catch {
    return false;
  }
}

/** The value of `--name <v>` / `--name=v` in argv, if given; the last one when repeated (as the CLI takes it). */
function optionValue(argv, name) {
  let value;
  for (let i = 2; i < argv.length; i++) {
    if (argv[i] === name) value = argv[++i];
    else if (argv[i].startsWith(`${name}=`)) value = argv[i].slice(name.length + 1);
  }
  return value;
}

/** A `repoN = ...` line (repo2, repo3, ...; also repoN-mode etc.) of a config file (src/config/config-file.ts). */
const MORE_REPOS_LINE = /^[ \t]*repo[0-9]+(-[a-z0-9-]*)?[ \t]*=/m;

/**
 * Whether this call may have more than one repository (repo2, repo3 by flag, environment, the
 * config file or an include file), or it cannot tell (a named file it cannot read). A push
 * record only ever says a segment is in one repository: such a call is left to the CLI, which
 * stores to every repository (src/wal/wal-push.ts). Conservative: a repoN line in any section counts.
 */
function moreRepositories(argv, env) {
  if (argv.slice(2).some((a) => /^--repo[0-9]+(-|=|$)/.test(a))) return true;
  if (Object.keys(env).some((k) => /^PGARK_REPO[0-9]+(_|$)/.test(k))) return true;
  const named = optionValue(argv, '--config') ?? env.PGARK_CONFIG;
  const config = named ?? '/etc/pgark/pgark.conf';
  const includeNamed = optionValue(argv, '--config-include-path') ?? env.PGARK_CONFIG_INCLUDE_PATH;
  const include = includeNamed ?? (config === '/etc/pgark/pgark.conf' ? '/etc/pgark/conf.d' : undefined);
  const files = [config];
  if (include !== undefined) {
    try {
      for (const n of readdirSync(include)) if (n.endsWith('.conf')) files.push(join(include, n));
    } catch {
      if (includeNamed !== undefined) return true;
    }
  }
  for (const f of files) {
    let text;
    try {
      text = readFileSync(f, 'utf8');
    } catch (err) {
      if (err && err.code === 'ENOENT' && f === config && named === undefined) continue;
      if (err && err.code === 'ENOENT' && f !== config) continue;
      return true;
    }
    if (MORE_REPOS_LINE.test(text)) return true;
  }
  return false;
}

/**
 * The push target of a call when its repository is given by flag or environment (as the CLI
 * resolves them: flag > env, stanza default 'main'); undefined when it comes from the config
 * file, which only the CLI reads.
 */
function callTarget(argv, env) {
  if (moreRepositories(argv, env)) return undefined;
  const repo = optionValue(argv, '--repo') ?? env.PGARK_REPO;
  const stanza = optionValue(argv, '--stanza') ?? env.PGARK_STANZA ?? 'main';
  // An empty value is refused by the CLI: leave the call to it.
  if (!repo || !stanza) return undefined;
  return pushTarget(repo, stanza);
}

/**
 * The positional words of a plain `pgark [options] <command> <args...> [options]` call, or
 * undefined for anything the fast paths leave to the CLI: --help, --json, unknown flags, '--'.
 */
function positionalArgs(argv) {
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
  return positional;
}

/** The path of a plain `pgark wal-push <path>` call, or undefined. */
function walPushPathOf(argv) {
  const p = positionalArgs(argv);
  return p && p.length === 2 && p[0] === 'wal-push' ? p[1] : undefined;
}

/** `{ name, dest }` of a plain `pgark wal-fetch <name> <dest>` call with prefetch on, or undefined. */
function walFetchArgsOf(argv, env) {
  const p = positionalArgs(argv);
  if (!p || p.length !== 3 || p[0] !== 'wal-fetch') return undefined;
  const i = argv.indexOf('--prefetch');
  if ((i >= 0 && argv[i + 1] === '0') || env.PGARK_PREFETCH === '0') return undefined;
  return { name: p[1], dest: p[2] };
}

function prefetchDir(dest) {
  return join(dirname(resolve(dest)), '.pgark', 'prefetch');
}

/**
 * Move a prefetched, verified segment to `dest` (same filesystem: rename) and make the rename
 * durable. False when there is none; then the CLI fetches it from the repository.
 */
function takePrefetched(name, dest, waitMs = PREFETCH_WAIT_MS) {
  if (!SEGMENT_RE.test(name)) return false;
  const dir = prefetchDir(dest);
  waitWhileLockedSync(join(dir, `${name}.lock`), waitMs);
  try {
    renameSync(join(dir, name), resolve(dest));
  } catch {
    return false;
  }
  const fd = openSync(dirname(resolve(dest)), 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return true;
}

/** The command of a command line for log lines: its first word that is not an option or an option's value. */
function commandWord(argv) {
  for (let i = 2; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') return undefined;
    if (!a.startsWith('-')) return /^[a-z][a-z0-9-]*$/.test(a) ? a : undefined;
    if (!a.includes('=') && VALUE_OPTIONS.has(a)) i++;
  }
  return undefined;
}

/**
 * A log line in pgark's one format (src/common/log-format.ts formatLogLines, which
 * test/unit/log-format.test.ts compares with this): bin/pgark.js prints its errors with it.
 * Messages here are error texts of Node itself, never settings; no secret masking needed.
 */
function logLine(level, argv, message, time = new Date(), pid = process.pid) {
  const command = commandWord(argv);
  const prefix = `${time.toISOString()} ${level.toUpperCase().padEnd(5)} pgark${command ? `-${command}` : ''}[${pid}]: `;
  return String(message).replace(/\r\n?/g, '\n').replace(/\n+$/, '').split('\n').map((l) => `${prefix}${l}\n`).join('');
}

module.exports = { SEGMENT_RE, moreRepositories, logLine, PUSH_WAIT_MS, pushRecordDir, pushLockPath, prefetchDir, pushTarget, callTarget, takePushRecord, takePrefetched, walPushPathOf, walFetchArgsOf };
