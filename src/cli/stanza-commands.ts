/** CLI wiring of `pgark stanza-upgrade`. The implementation loads only when the command runs. */
import type { Command } from 'commander';
import { ConfigError } from '../common/errors.js';
import { printJson, settingsFrom, withRepository } from './context.js';
import { withFormat } from '../json/format.js';

export function registerStanzaCommands(program: Command): void {
  program
    .command('stanza-upgrade')
    .summary('rebind the stanza to its cluster after pg_upgrade (old backups and WAL stay restorable)')
    .description(
      'After pg_upgrade the cluster has a new system identifier, so wal-push and backup refuse it (exit 4). ' +
      'Run this once with --pgdata of the upgraded cluster (running or not) before archiving it: the stanza is ' +
      'bound to the new cluster, and the old cluster is kept in the stanza\'s history, so its backups still restore ' +
      'and its WAL is still fetched and verified under its own system identifier. Refused (nothing changes) when the ' +
      'archive already holds WAL at or after the point where the new cluster\'s WAL starts. Exit 0 also when the ' +
      'stanza already belongs to this cluster. Then take a full backup of the new cluster.',
    )
    .option('--json', 'print the result as JSON')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const settings = settingsFrom(cmd);
      if (!settings.pgdata) throw new ConfigError('stanza-upgrade needs --pgdata DIR (the data directory of the upgraded cluster)');
      const { stanzaUpgrade } = await import('../ops/stanza-upgrade.js');
      const out = await withRepository(settings, (repo) => stanzaUpgrade(repo, settings.pgdata!));
      if (opts.json) return printJson(withFormat('stanza-upgrade', out));
      if (!out.upgraded) {
        process.stdout.write(`stanza '${out.stanza}' already belongs to this cluster (system identifier ${out.current.systemIdentifier}): nothing to do\n`);
        return;
      }
      process.stdout.write(
        `stanza '${out.stanza}' upgraded: system identifier ${out.previous!.systemIdentifier} (PostgreSQL ${out.previous!.pgVersion}) -> ` +
        `${out.current.systemIdentifier} (PostgreSQL ${out.current.pgVersion}), new WAL from ${out.current.sinceLsn}\n` +
        `  the old cluster's backups and WAL${out.lastArchivedBefore ? ` (up to ${out.lastArchivedBefore})` : ''} stay restorable; take a full backup of the new cluster now\n`,
      );
    });
}
