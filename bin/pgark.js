#!/usr/bin/env node
// Tiny entry point: no work at import time beyond loading the compiled CLI.
import('../dist/src/cli/main.js')
  .then((m) => m.main(process.argv))
  .catch((err) => {
    process.stderr.write(`pgark: ${err && err.message ? err.message : String(err)}\n`);
    process.exit(err && typeof err.exitCode === 'number' ? err.exitCode : 130);
  });
