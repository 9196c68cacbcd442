/** CLI wiring of `pgark info`. The implementation loads only when the command runs. */
import type { Command } from 'commander';
import { printJson, settingsFrom, withRepository } from './context.js';
import { withFormat } from '../json/format.js';

export function registerInfoCommand(program: Command): void {
  program
    .command('info')
    .summary('show the stanza and its archive')
    .description('Stanza, cluster identifier, PostgreSQL version, codec, WAL range per timeline, archived count and size, last push time; with --pgdata, the archive agent\'s queue, oldest waiting segment, rate and errors.')
    .option('--json', 'print as JSON')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const settings = settingsFrom(cmd);
      const { collectInfo } = await import('../ops/info.js');
      const { printInfo } = await import('./archive-text.js');
      const info = await withRepository(settings, (repo) => collectInfo(repo, settings.pgdata));
      if (opts.json) printJson(withFormat('info', info));
      else printInfo(info);
    });
}
