/** CLI wiring of `pgark wal-verify`. The implementation loads only when the command runs. */
import type { Command } from 'commander';
import { ExitCode } from '../common/errors.js';
import { printJson, settingsFrom, withRepository } from './context.js';
import { ExitWith } from './exit.js';
import { withFormat } from '../json/format.js';

export function registerWalVerifyCommand(program: Command): void {
  program
    .command('wal-verify')
    .summary('check the archive for gaps (and damage with --read)')
    .description(
      'Per timeline: archived ranges, gaps, partial and backup files, history files and fork points. ' +
      'Exit 7 when a gap lies inside an archived range or (with --read) an object fails its checksum ' +
      'or a segment object is not a whole segment (wrong size, page headers out of sequence).',
    )
    .option('--read', 're-read and verify every archived object')
    .option('--jobs <n>', 'parallel reads with --read (default 4)')
    .option('--json', 'print the report as JSON')
    .action(async (opts: { read?: boolean; json?: boolean }, cmd: Command) => {
      const settings = settingsFrom(cmd);
      const { walVerify } = await import('../wal/wal-verify.js');
      const report = await withRepository(settings, (repo) => walVerify(repo, { read: !!opts.read, jobs: settings.jobs }));
      if (opts.json) printJson(withFormat('wal-verify', report));
      else {
        const { printVerifyReport } = await import('./archive-text.js');
        printVerifyReport(report);
      }
      if (!report.ok) throw new ExitWith(ExitCode.VERIFY_FAILED);
    });
}
