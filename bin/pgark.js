#!/usr/bin/env node
'use strict';
// Tiny entry point (CommonJS, see bin/package.json). archive_command starts one process per
// WAL segment (and restore_command one per segment replayed), so segments that a worker already
// pushed ahead or prefetched are answered here, with Node builtins only, before the CLI
// (commander, config, storage, codecs) is loaded.
const argv = process.argv;

if (argv.includes('wal-push') || argv.includes('wal-fetch')) {
  const fast = require('./fast-path.cjs');
  const path = fast.walPushPathOf(argv);
  if (path !== undefined && fast.takePushRecord(path)) process.exit(0);
  const fetch = fast.walFetchArgsOf(argv, process.env);
  if (fetch !== undefined && fast.takePrefetched(fetch.name, fetch.dest)) process.exit(0);
}

import('../dist/src/cli/main.js')
  .then((m) => m.main(argv))
  .catch((err) => {
    process.stderr.write(`pgark: ${err && err.message ? err.message : String(err)}\n`);
    process.exit(err && typeof err.exitCode === 'number' ? err.exitCode : 13);
  });
