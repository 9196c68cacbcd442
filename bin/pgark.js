#!/usr/bin/env node
'use strict';
// Tiny entry point (CommonJS, see bin/package.json). archive_command starts one process per
// WAL segment, so a segment that an earlier call already pushed ahead is answered here, with
// Node builtins only, before the CLI (commander, config, storage, codecs) is loaded.
const argv = process.argv;

if (argv.includes('wal-push')) {
  const { takePushRecord, walPushPathOf } = require('./push-record.cjs');
  const path = walPushPathOf(argv);
  if (path !== undefined && takePushRecord(path)) process.exit(0);
}

import('../dist/src/cli/main.js')
  .then((m) => m.main(argv))
  .catch((err) => {
    process.stderr.write(`pgark: ${err && err.message ? err.message : String(err)}\n`);
    process.exit(err && typeof err.exitCode === 'number' ? err.exitCode : 13);
  });
