#!/usr/bin/env node
'use strict';
// Tiny entry point (CommonJS, see bin/package.json). archive_command starts one process per
// WAL segment (and restore_command one per segment replayed), so segments that a worker already
// pushed ahead or prefetched are answered here, with Node builtins only (src/wal/fast-path.cjs,
// which tsc copies to dist/), before the CLI (commander, config, storage, codecs) is loaded.

const argv = process.argv;

// The launchers (bin/pgark, the full path of bin/pgark-wal-push / pgark-wal-fetch) set glibc's
// malloc settings for this process; glibc has read them by now. Programs pgark starts (pg_ctl and
// PostgreSQL, the archive_command of a server it starts, its own workers) do not inherit them.
if (process.env.PGARK_MALLOC_SET !== undefined) {
  delete process.env.MALLOC_ARENA_MAX;
  delete process.env.MALLOC_MMAP_THRESHOLD_;
  delete process.env.PGARK_MALLOC_SET;
}

// agent, receive, metrics and sets apply stop cleanly on SIGTERM/SIGINT; one that arrives while
// they load their modules is held for them instead of ending the process
// (src/cli/stop-signals.cjs, which tsc copies to dist/).
if (!argv.includes('wal-push') && !argv.includes('wal-fetch')) {
  try {
    const stopSignals = require('../dist/src/cli/stop-signals.cjs');
    if (stopSignals.stopsOnSignals(argv)) stopSignals.holdStopSignals(process);
  } catch {}
}

// Node's compile cache (V8 code cache on disk) saves compiling pgark's modules on every call
// (bench/results/startup.md). It lives in the calling user's own cache directory, never in a
// shared one such as /tmp: code cache is trusted input, so it is used only when every directory
// of the path belongs to this user (or root) and nobody else can write to it. Otherwise pgark
// runs without it. NODE_COMPILE_CACHE chooses another directory, NODE_DISABLE_COMPILE_CACHE=1
// switches it off.
require('./compile-cache.cjs').enableCompileCache();

// backup and restore run one worker thread per job; each job keeps about one file operation
// (restore: or zlib's work) in libuv's threadpool at a time (backup compresses lz4 on each lane's
// own thread: src/io/codecs/lz4-thread.ts). A pool of one thread per job (not libuv's default 4)
// is as fast and smaller. Must be set before the pool's first use.
if (process.env.UV_THREADPOOL_SIZE === undefined && (argv[2] === 'backup' || argv[2] === 'restore')) {
  const i = argv.indexOf('--jobs');
  const jobs = i > 0 ? Number(argv[i + 1]) : require('node:os').availableParallelism();
  if (Number.isInteger(jobs) && jobs > 0) process.env.UV_THREADPOOL_SIZE = String(Math.min(Math.max(jobs, 2), 64));
}
// The agent compresses on libuv's threadpool: one thread per core up to its jobs (--jobs, else
// PGARK_JOBS, else 4), at least 2. Its drain is CPU-bound, so threads beyond the cores add no
// throughput, and each keeps lz4-napi's per-thread pages: 2 threads instead of libuv's 4 on a
// 2-core host are ~9 MiB less peak RSS, same CPU and drain time (bench/results/memory.md).
if (process.env.UV_THREADPOOL_SIZE === undefined && argv[2] === 'agent') {
  const i = argv.indexOf('--jobs');
  const jobs = i > 0 ? Number(argv[i + 1]) : Number(process.env.PGARK_JOBS ?? 4);
  if (Number.isInteger(jobs) && jobs > 0) process.env.UV_THREADPOOL_SIZE = String(Math.max(2, Math.min(jobs, require('node:os').availableParallelism(), 64)));
}
// wal-push and wal-fetch move one file: two threads keep its two lz4 frames in flight (or zlib's
// work and a file operation), and each thread fewer is ~3 MiB less peak RSS per call
// (bench/results/startup.md). The look-ahead workers they start (wal-push-ahead, wal-prefetch)
// keep the default: the marker tells src/wal/spawn-worker.ts to drop the setting.
if (process.env.UV_THREADPOOL_SIZE === undefined && (argv.includes('wal-push') || argv.includes('wal-fetch'))) {
  process.env.UV_THREADPOOL_SIZE = '2';
  process.env.PGARK_UV_THREADPOOL_SIZE_SET = '1';
}
// lz4-napi allocates through its own mimalloc, which keeps freed pages for a while and commits
// memory ahead; it reads these when it loads (after this line). For a one-file call: pages back
// at once, nothing committed ahead: ~4 MiB less peak RSS for a wal-push, same CPU
// (bench/results/memory.md). Workers it starts drop them again (src/wal/spawn-worker.ts).
if ((argv.includes('wal-push') || argv.includes('wal-fetch')) && !Object.keys(process.env).some((k) => k.startsWith('MIMALLOC_'))) {
  process.env.MIMALLOC_PURGE_DELAY = '0';
  process.env.MIMALLOC_EAGER_COMMIT = '0';
  process.env.MIMALLOC_ARENA_EAGER_COMMIT = '0';
  process.env.PGARK_MIMALLOC_SET = '1';
}

// For restore_command every exit code up to 125 means "not archived" and lets PostgreSQL end
// recovery, so anything unexpected in wal-fetch must exit above 125 (src/cli/wal-fetch-exit.cjs,
// which tsc copies to dist/; an installation that lost that file still stops recovery).
let FATAL = 255;
try {
  FATAL = require('../dist/src/cli/wal-fetch-exit.cjs').crashExitCode(argv);
} catch {}
const die = (err) => {
  // A known race inside the GCS SDK (teeny-request pipes into a stream its retry already
  // destroyed; Node >= 22 throws): harmless, the retry goes on. Same predicate as
  // src/common/sdk-races.ts.
  if (err && err.code === 'ERR_STREAM_UNABLE_TO_PIPE' && typeof err.stack === 'string' && err.stack.includes('teeny-request')) return;
  // pgark's one log line format (src/wal/fast-path.cjs logLine), exit code first as the CLI's errors.
  const text = `[${FATAL}] internal error: ${err && err.stack ? err.stack : err && err.message ? err.message : String(err)}`;
  try {
    process.stderr.write(require('../dist/src/wal/fast-path.cjs').logLine('error', argv, text));
  } catch {
    process.stderr.write(`pgark: ${text}\n`);
  }
  process.exit(FATAL);
};
process.on('uncaughtException', die);
process.on('unhandledRejection', die);

if (argv.includes('wal-push') || argv.includes('wal-fetch')) {
  try {
    const fast = require('../dist/src/wal/fast-path.cjs');
    const path = fast.walPushPathOf(argv);
    if (path !== undefined && fast.takePushRecord(path, fast.callTarget(argv, process.env))) process.exit(0);
    const fetch = fast.walFetchArgsOf(argv, process.env);
    if (fetch !== undefined && fast.takePrefetched(fetch.name, fetch.dest)) process.exit(0);
  } catch (err) {
    // The full CLI below does the same work the slow way and reports errors properly.
    process.stderr.write(require('../dist/src/wal/fast-path.cjs').logLine('warn', argv, `fast path skipped: ${err && err.message ? err.message : String(err)}`));
  }
}

// A full-path wal-push or wal-fetch moves one file; its work is native (sha256, lz4 compression,
// I/O) and its JavaScript runs a few hundred times. V8's optimising compilers would only add
// their code and working memory (~10 MiB of peak RSS per call, bench/results/memory.md), so they
// stay off, but for wal-fetch's one hot loop: it decodes lz4 in JavaScript
// (src/io/codecs/lz4-block.ts), which Maglev alone compiles (a renamed function would only be
// slower, ~2x the call's CPU: the filter names it).
if (argv.includes('wal-push') || argv.includes('wal-fetch')) {
  try {
    const v8 = require('node:v8');
    v8.setFlagsFromString('--no-opt');
    // Until the repository is open (modules, a cloud SDK): a small young generation
    // (src/cli/call-phase.ts switches it off for the transfer).
    v8.setFlagsFromString('--optimize-for-size');
    if (argv.includes('wal-fetch') && !argv.includes('wal-push')) v8.setFlagsFromString('--maglev-filter=decodeLz4BlockInto');
    else v8.setFlagsFromString('--no-maglev');
  } catch {}
}

// wal-push and wal-fetch go through their lean entry (src/cli/wal-call.ts): without commander and
// the other commands' modules; a command line it does not take goes on to the full CLI.
if (argv.includes('wal-push') || argv.includes('wal-fetch')) import('../dist/src/cli/wal-call.js').then((m) => m.walCall(argv)).catch(die);
else import('../dist/src/cli/main.js').then((m) => m.main(argv)).catch(die);
