/** CLI wiring of `pgark check-repo`. The implementation loads only when the command runs. */
import type { Command } from 'commander';
import { ExitCode } from '../common/errors.js';
import { printJson, settingsFrom, withRepository } from './context.js';
import { ExitWith } from './exit.js';
import { withFormat } from '../json/format.js';

export function registerCheckRepoCommand(program: Command): void {
  program
    .command('check-repo')
    .summary('probe the repository: write, put-if-absent, stat, list, read, ranged read, replace, delete')
    .description('Writes one probe object under <stanza>/probe/, checks each operation pgark needs (a conditional create must refuse to replace it), deletes it, and reads the repository marker and the stanza metadata. Exit 0 when every probe passed, 10 otherwise; 9 (nothing written) when the location is not a repository: run pgark repo create first.')
    .option('--json', 'print as JSON')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const settings = settingsFrom(cmd);
      const { probeOpenRepository, formatProbeReport } = await import('../repo/repo-probe.js');
      const { readRepoMarker, REPO_MARKER_KEY } = await import('../repo/repo-marker.js');
      // Opening the repository refused a location without the marker (exit 9) before any probe was written.
      const report = await withRepository(settings, (repo) =>
        probeOpenRepository(repo, async () => {
          const meta = await repo.readStanza();
          if (!meta) return `stanza '${repo.stanza}' not created yet (the first wal-push or backup creates it)`;
          return `stanza '${repo.stanza}': system identifier ${meta.systemIdentifier}, PostgreSQL ${meta.pgVersion}`;
        }, async () => {
          const m = await readRepoMarker(repo);
          if (!m) throw new Error(`no repository marker '${REPO_MARKER_KEY}' (an older pgark's repository that could not be marked): run pgark repo create`);
          return `'${REPO_MARKER_KEY}': format ${m.format}, created ${m.createdAt} by ${m.createdBy}`;
        }),
      );
      if (opts.json) printJson(withFormat('check-repo', report));
      else process.stdout.write(formatProbeReport(report));
      if (!report.ok) throw new ExitWith(ExitCode.STORAGE);
    });
}
