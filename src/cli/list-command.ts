/** CLI wiring of `pgark list`. The implementation loads only when the command runs. */
import type { Command } from 'commander';
import { duration } from './backup-text.js';
import { printJson, settingsFrom, withRepository } from './context.js';
import { formatBytes } from './format.js';

export function registerListCommand(program: Command): void {
  program
    .command('list')
    .summary('list the backups of the stanza')
    .option('--json', 'print as JSON')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const settings = settingsFrom(cmd);
      const { listBackups, listPins } = await import('../catalog/catalog.js');
      const [backups, pins] = await withRepository(settings, async (repo) => [await listBackups(repo), await listPins(repo)] as const, { stanza: 'require' });
      if (opts.json) {
        printJson((await import('../json/catalog-json.js')).listJson(settings.stanza, backups, pins));
        return;
      }
      if (backups.length === 0) {
        process.stdout.write(`no backups in stanza '${settings.stanza}'\n`);
        return;
      }
      const rows = backups.map((b) => [b.id, b.type, b.start.time.slice(0, 19).replace('T', ' '), b.stop.lsn, String(b.stop.timeline),
        formatBytes(b.size.original), formatBytes(b.size.stored), duration(b.durationMs), b.parent ?? '', pins.has(b.id) ? 'kept' : '',
        b.checksumFailures ? `${b.checksumFailures} bad pages` : '', b.label ?? '']);
      const head = ['id', 'type', 'start (UTC)', 'stop lsn', 'tl', 'size', 'stored', 'took', 'parent', 'pin', 'checks', 'label'];
      const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
      for (const r of [head, ...rows]) process.stdout.write(r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd() + '\n');
    });
}
