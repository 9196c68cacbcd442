/** CLI wiring of `pgark repo create`. The implementation loads only when the command runs. */
import type { Command } from 'commander';
import { printJson, settingsFrom, withRepository } from './context.js';
import { withFormat } from '../json/format.js';

export function registerRepoCommands(program: Command): void {
  const repo = program
    .command('repo')
    .summary('create the repository (repo create)')
    .description('Repository-level commands. Every other command refuses a location that `pgark repo create` has not marked.');
  repo
    .command('create')
    .summary('create the repository: write its marker (idempotent)')
    .description(
      'Make --repo a pgark repository by writing its marker object .pgark-repository at the root ' +
      '(docs/REPOSITORY.md). On a filesystem the directory and missing parents are created, mode 0700. ' +
      'Every other command refuses a location without the marker (exit 9) and writes nothing there, so a ' +
      'mistyped path or an unmounted mount point is an error instead of a new, empty archive. Exit 0 also ' +
      'when the location already is a pgark repository (nothing changes). pgark setup runs this step too.',
    )
    .option('--json', 'print {location, created, marker} as JSON')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const settings = settingsFrom(cmd);
      const { createRepository } = await import('../repo/repo-marker.js');
      const out = await withRepository(settings, (r) => createRepository(r), { marker: 'skip' });
      if (opts.json) return printJson(withFormat('repo-create', out));
      process.stdout.write(out.created
        ? `created pgark repository ${out.location}\n`
        : `${out.location} is already a pgark repository (created ${out.marker.createdAt} by ${out.marker.createdBy}): nothing to do\n`);
    });
  for (const c of repo.commands) c.exitOverride();
}
