/** CLI wiring of `pgark wal-log`. The implementation loads only when the command runs. */
import type { Command } from 'commander';
import { printJson, settingsFrom, withRepository } from './context.js';
import { formatBytes } from './format.js';

export function registerWalLogCommand(program: Command): void {
  program
    .command('wal-log')
    .summary('show the WAL audit trail')
    .description('Every push, fetch, mismatch and failure recorded in the repository, oldest first.')
    .option('--since <when>', 'ISO date/time, or a duration such as 2h, 3d', '1d')
    .option('--json', 'print events as JSON')
    .action(async (opts: { since: string; json?: boolean }, cmd: Command) => {
      const settings = settingsFrom(cmd);
      const { parseSince } = await import('./format.js');
      const { readAudit } = await import('../wal/audit.js');
      const since = parseSince(opts.since);
      const events = await withRepository(settings, (repo) => readAudit(repo, since), { stanza: 'require' });
      if (opts.json) return printJson((await import('../json/archive-json.js')).walLogJson(since, events));
      for (const e of events) {
        const size = e.size !== undefined ? ` ${formatBytes(e.size)}` : '';
        const sha = e.sha256 ? ` sha256:${e.sha256.slice(0, 12)}` : '';
        const detail = e.detail ? ` ${e.detail}` : '';
        process.stdout.write(`${e.time} ${e.op.padEnd(11)} ${e.name}${size}${sha} ${e.ms}ms ${e.host}[${e.pid}]${detail}\n`);
      }
    });
}
