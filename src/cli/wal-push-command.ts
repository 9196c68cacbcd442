/** CLI wiring of `pgark wal-push` (archive_command) and the look-ahead worker it starts. Implementations load only when a command runs. */
import type { Command } from 'commander';
import type { Settings } from '../config/resolve.js';
import { transferPhase } from './call-phase.js';
import { printJson, settingsFrom, withRepository } from './context.js';
import { WAL_PUSH_OPTIONS } from './option-specs.js';
import { withFormat } from '../json/format.js';
import { ConfigError } from '../common/errors.js';
import { setGarbageBudget, SINGLE_FILE_BUDGET } from '../common/gc-budget.js';
import { compressLz4OnCallingThread } from '../io/codecs/lz4-thread.js';

/**
 * wal-push's work once its command line is parsed (by commander, or by the lean entry
 * wal-call.ts): `settingsOf` resolves the settings, after the garbage budget is set.
 */
export async function runWalPush(path: string, opts: { json?: boolean }, settingsOf: () => Settings): Promise<void> {
  setGarbageBudget(SINGLE_FILE_BUDGET, 'minor'); // one file: collect its dropped buffers while it runs
  // One file: lz4 on this thread, each output freed once written (io/codecs/lz4-thread.ts).
  compressLz4OnCallingThread();
  const settings = settingsOf();
  if (settings.moreRepos.length > 0) {
    // repo2, repo3: every required repository, async ones filled behind (wal/wal-push-set.ts).
    const [{ walPushToSet, pushedAheadToSet }, { withRepoSet }] = await Promise.all([import('../wal/wal-push-set.js'), import('../repo/repo-set.js')]);
    // Stored in the whole set by pgark agent already (its record names these repositories and modes).
    const ahead = await pushedAheadToSet(settings, path);
    if (ahead) {
      if (opts.json) printJson(withFormat('wal-push', ahead));
      return;
    }
    const { repos: _repos, ...report } = await withRepoSet(settings, (set) => (transferPhase(), walPushToSet(set, settings, path)));
    if (opts.json) printJson(withFormat('wal-push', report));
    return;
  }
  const { walPush } = await import('../wal/wal-push.js');
  const report = await withRepository(settings, (repo) => (transferPhase(), walPush(repo, settings, path)));
  if (opts.json) printJson(withFormat('wal-push', report));
}

export function registerWalPushCommand(program: Command): void {
  const push = program
    .command('wal-push')
    .summary('archive a WAL file (archive_command)')
    .description(
      "Archive one WAL segment, .history, .backup or .partial file. Use as archive_command = 'pgark wal-push %p'.\n\n" +
      'Identical content already archived succeeds; different content under the same name fails with ' +
      'exit 3 ("archive mismatch") and is never overwritten. After the requested segment is stored, a ' +
      'background worker pushes up to --push-ahead further segments PostgreSQL marked ready, --jobs at ' +
      'a time; PostgreSQL\'s calls for those return as soon as they are durably stored.',
    )
    .argument('<path>', 'path of the file, as PostgreSQL passes it (%p)');
  for (const o of WAL_PUSH_OPTIONS) push.option(o.flags, o.description);
  push.action((path: string, opts: { json?: boolean }, cmd: Command) => runWalPush(path, opts, () => settingsFrom(cmd)));

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
