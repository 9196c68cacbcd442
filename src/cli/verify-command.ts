/** CLI wiring of `pgark verify`. The implementation loads only when the command runs. */
import type { Command } from 'commander';
import { ExitCode } from '../common/errors.js';
import { printJson, settingsFrom, withRepository } from './context.js';
import { formatBytes } from './format.js';
import { intOption } from './options.js';

export function registerVerifyCommand(program: Command): void {
  program
    .command('verify')
    .summary('re-read backups and the WAL they need, check every checksum, rebuild block-delta files')
    .argument('[id]', "backup id or 'latest' (default: every backup)")
    .option('--all', 'every backup (the default)')
    .option('--full', 're-read objects verified by earlier runs too')
    .option('--jobs <n>', 'parallel reads (default 4)')
    .option('--json', 'print as JSON')
    .action(async (ref: string | undefined, opts: { full?: boolean; jobs?: string; json?: boolean }, cmd: Command) => {
      const settings = settingsFrom(cmd);
      const { runVerify } = await import('../catalog/verify.js');
      const out = await withRepository(settings, (repo) => runVerify(repo, { ref, full: !!opts.full, jobs: intOption(opts.jobs, '--jobs', 1, 256) ?? settings.jobs }));
      if (opts.json) printJson((await import('../json/catalog-json.js')).verifyJson(out));
      else {
        for (const b of out.backups) {
          process.stdout.write(`${b.ok ? 'ok    ' : 'FAILED'} ${b.id}: ${b.objectsRead} objects read, ${b.objectsSkipped} verified before, ${b.walChecked} WAL segments${b.deltaFilesRebuilt + b.deltaFilesSkipped > 0 ? `, ${b.deltaFilesRebuilt} block-delta files rebuilt (${b.deltaFilesSkipped} verified before)` : ''}\n`);
          for (const p of b.problems) process.stdout.write(`       ${p}\n`);
        }
        process.stdout.write(`${out.ok ? 'all ok' : 'verification FAILED'}: ${out.objectsRead} objects (${formatBytes(out.bytesRead)}) and ${out.walRead} WAL segments read; ${out.objectsSkipped + out.walSkipped} skipped as verified before (--full re-reads them)\n`);
      }
      if (!out.ok) process.exitCode = ExitCode.VERIFY_FAILED;
    });
}
