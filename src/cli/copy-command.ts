/** CLI wiring of `pgark copy` (ops/repo-copy.ts). The implementation loads only when the command runs. */
import type { Command } from 'commander';
import { ConfigError } from '../common/errors.js';
import { withFormat } from '../json/format.js';
import { openRepository, printJson, settingsFrom } from './context.js';
import { repoNamed } from './repo-named.js';

export function registerCopyCommand(program: Command): void {
  program
    .command('copy')
    .summary('copy backups and WAL from one repository of the stanza to another')
    .description(
      'Copy what one repository of the stanza holds into another (repo2, repo3: README "Several repositories"), ' +
      'without reading the database: backups are taken once and copied. Every object is verified on the way (checksum, ' +
      'sizes, and authentication when encrypted); it is copied as stored (no re-compression, no re-encryption) when both ' +
      'repositories store plain objects or the target\'s keyring holds the data key it is encrypted with (pgark key init ' +
      '--in repo2 --share-from repo), otherwise decoded and encoded with the target\'s current key. Resumable: objects already in the target with the same ' +
      'content are skipped; a different object under the same name stops the copy (exit 3) and is left unchanged. ' +
      'A backup brings its chain and the WAL from its start to its end; its catalog entry is written last. ' +
      '--wal also drops the source\'s backlog records for the WAL now in the target.',
    )
    .requiredOption('--to <repo>', 'the repository to copy into: repo2, repo3 (or repo with --from)')
    .option('--from <repo>', 'the repository to copy from (default repo)')
    .option('--backup <id>', 'copy this backup (with its chain and the WAL that makes it consistent)')
    .option('--wal', 'copy every archived WAL file')
    .option('--all', 'copy every backup and every WAL file')
    .option('--jobs <n>', 'parallel object copies (default 4)')
    .option('--json', 'print the result as JSON')
    .action(async (opts: { to: string; from?: string; backup?: string; wal?: boolean; all?: boolean; json?: boolean }, cmd: Command) => {
      const settings = settingsFrom(cmd);
      const from = opts.from ?? 'repo';
      if (from === opts.to) throw new ConfigError(`--from and --to both name ${from}: copy needs two repositories`);
      if (!opts.all && !opts.wal && opts.backup === undefined) throw new ConfigError('copy needs --backup <id>, --wal or --all');
      if (opts.all && opts.backup !== undefined) throw new ConfigError('--all copies every backup: drop --backup');
      const source = await openRepository(repoNamed(settings, from, '--from'), { stanza: 'require' });
      try {
        const target = await openRepository(repoNamed(settings, opts.to, '--to'));
        try {
          const { copyRepository } = await import('../ops/repo-copy.js');
          const r = await copyRepository(source, target, opts.to, {
            wal: !!(opts.all || opts.wal),
            backups: opts.all ? 'all' : opts.backup !== undefined ? [opts.backup] : [],
            jobs: settings.jobs,
          });
          if (opts.json) return printJson(withFormat('copy', r));
          process.stdout.write(
            `copied ${from} -> ${opts.to} (${r.to}): ${r.objects.copied} objects (${r.objects.asStored} as stored, ${r.objects.reEncoded} re-encoded), ` +
            `${r.objects.existing} already there; ${r.walFiles} WAL files, backups ${r.backups.join(', ') || 'none'}; ${r.backlogCleared} backlog records dropped\n`,
          );
        } finally {
          await target.close();
        }
      } finally {
        await source.close();
      }
    });
}
