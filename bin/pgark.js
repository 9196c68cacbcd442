#!/usr/bin/env node
'use strict';
// Tiny entry point (CommonJS, see bin/package.json). archive_command starts one process per
// WAL segment (and restore_command one per segment replayed), so segments that a worker already
// pushed ahead or prefetched are answered here, with Node builtins only, before the CLI
// (commander, config, storage, codecs) is loaded.
const argv = process.argv;

// For restore_command every exit code up to 125 means "not archived" and lets PostgreSQL end
// recovery, so anything unexpected in wal-fetch must exit above 125 (200 + internal error 13).
const FATAL = argv.includes('wal-fetch') ? 213 : 13;
const die = (err) => {
  process.stderr.write(`pgark: ${err && err.message ? err.message : String(err)}\n`);
  process.exit(FATAL);
};
process.on('uncaughtException', die);
process.on('unhandledRejection', die);

if (argv.includes('wal-push') || argv.includes('wal-fetch')) {
  try {
    const fast = require('./fast-path.cjs');
    const path = fast.walPushPathOf(argv);
    if (path !== undefined && fast.takePushRecord(path)) process.exit(0);
    const fetch = fast.walFetchArgsOf(argv, process.env);
    if (fetch !== undefined && fast.takePrefetched(fetch.name, fetch.dest)) process.exit(0);
  } catch (err) {
    // The full CLI below does the same work the slow way and reports errors properly.
    process.stderr.write(`pgark: fast path skipped: ${err && err.message ? err.message : String(err)}\n`);
  }
}

import('../dist/src/cli/main.js').then((m) => m.main(argv)).catch(die);
