/** CLI wiring of `pgark wal-push` (archive_command) and the look-ahead worker it starts. Implementations load only when a command runs. */
import type { Command } from 'commander';
import { printJson, settingsFrom, withRepository } from './context.js';
import { withFormat } from '../json/format.js';
import { ConfigError } from '../common/errors.js';
import { setGarbageBudget, SINGLE_FILE_BUDGET } from '../common/gc-budget.js';

export function registerWalPushCommand(program: Command): void {
  program
    .command('wal-push')
    .summary('archive a WAL file (archive_command)')
    .description(
      "Archive one WAL segment, .history, .backup or .partial file. Use as archive_command = 'pgark wal-push %p'.\n\n" +
      'Identical content already archived succeeds; different content under the same name fails with ' +
      'exit 3 ("archive mismatch") and is never overwritten. After the requested segment is stored, a ' +
      'background worker pushes up to --push-ahead further segments PostgreSQL marked ready, --jobs at ' +
      'a time; PostgreSQL\'s calls for those return as soon as they are durably stored.',
    )
    .argument('<path>', 'path of the file, as PostgreSQL passes it (%p)')
    .option('--push-ahead <n>', 'further ready segments to push in the same call (default 16)')
    .option('--jobs <n>', 'parallel uploads (default 4)')
    .option('--codec <name>', 'lz4, zstd, gzip or none (default: the stanza\'s)')
    .option('--compress-level <n>', 'codec level')
    .option('--json', 'print the result as JSON')
    .action(async (path: string, opts: { json?: boolean }, cmd: Command) => {
      setGarbageBudget(SINGLE_FILE_BUDGET, 'minor'); // one file: collect its dropped buffers while it runs
      const settings = settingsFrom(cmd);
      if (settings.moreRepos.length > 0) {
        // repo2, repo3: every required repository, async ones filled behind (wal/wal-push-set.ts).
        const [{ walPushToSet, pushedAheadToSet }, { withRepoSet }] = await Promise.all([import('../wal/wal-push-set.js'), import('../repo/repo-set.js')]);
        // Stored in the whole set by pgark agent already (its record names these repositories and modes).
        const ahead = await pushedAheadToSet(settings, path);
        if (ahead) {
          if (opts.json) printJson(withFormat('wal-push', ahead));
          return;
        }
        const { repos: _repos, ...report } = await withRepoSet(settings, (set) => walPushToSet(set, settings, path));
        if (opts.json) printJson(withFormat('wal-push', report));
        return;
      }
      const { walPush } = await import('../wal/wal-push.js');
      const report = await withRepository(settings, (repo) => walPush(repo, settings, path));
      if (opts.json) printJson(withFormat('wal-push', report));
    });

  program
    .command('wal-push-ahead', { hidden: true })
    .description('internal: push segments ahead of PostgreSQL (started by wal-push)')
    .argument('<wal-dir>')
    .argument('<names...>')
    .action(async (walDir: string, names: string[], _opts: unknown, cmd: Command) => {
      const settings = settingsFrom(cmd);
      // Push records say a segment is in one repository: never with repo2, repo3 (wal-push starts none then).
      if (settings.moreRepos.length > 0) throw new ConfigError('wal-push-ahead: not used with more than one repository (repo2 is set)');
      const { runPushAhead } = await import('../wal/push-ahead.js');
      const { assertWalFileName } = await import('../wal/segment-name.js');
      names.forEach((n) => assertWalFileName(n));
      await withRepository(settings, (repo) => runPushAhead(repo, settings, walDir, names));
    });
}
