#!/usr/bin/env node
// Tiny entry point. archive_command starts one process per WAL segment, so a segment that an
// earlier call already pushed ahead is answered here, with Node builtins only, before the CLI
// (commander, config, storage, codecs) is loaded.
const argv = process.argv;
const fail = (err) => {
  process.stderr.write(`pgark: ${err && err.message ? err.message : String(err)}\n`);
  process.exit(err && typeof err.exitCode === 'number' ? err.exitCode : 13);
};

async function run() {
  if (argv.includes('wal-push')) {
    const { walPushPathOf, takePushRecord } = await import('../dist/src/wal/push-record.js');
    const path = walPushPathOf(argv);
    if (path !== undefined && (await takePushRecord(path))) return;
  }
  const { main } = await import('../dist/src/cli/main.js');
  await main(argv);
}

run().catch(fail);
