/** CLI wiring of `pgark wal-fetch` (restore_command) and the prefetch worker it starts. Implementations load only when a command runs. */
import type { Command } from 'commander';
import { ExitCode, exitCodeOf } from '../common/errors.js';
import { setGarbageBudget, SINGLE_FILE_BUDGET } from '../common/gc-budget.js';
import { log } from '../common/log.js';
import { spawnWorker } from '../wal/spawn-worker.js';
import { settingsFrom, withRepository } from './context.js';
import { ExitWith, walFetchFatalBase, walFetchFatalCode } from './exit.js';

export function registerWalFetchCommand(program: Command): void {
  program
    .command('wal-fetch')
    .summary('restore a WAL file from the archive (restore_command)')
    .description(
      "Restore one archived WAL file. Use as restore_command = 'pgark wal-fetch %f %p'.\n\n" +
      'Exit codes: 0 restored; 1 not in the archive (PostgreSQL ends recovery there or keeps waiting; ' +
      'in a standby\'s data directory (standby.signal) also while the stanza does not exist yet); ' +
      `${walFetchFatalBase()}+N for any other error N (e.g. ${walFetchFatalCode(ExitCode.STORAGE)} storage unreachable after retries, ` +
      `${walFetchFatalCode(ExitCode.INTEGRITY)} checksum mismatch or a damaged segment (not a whole segment), ${walFetchFatalCode(ExitCode.INVALID_INPUT)} invalid name, ` +
      `${walFetchFatalCode(ExitCode.USAGE)} configuration, ${walFetchFatalCode(ExitCode.KEY)} encryption key missing or wrong): above 125, so PostgreSQL stops recovery rather than promoting early.\n\n` +
      'After a segment is restored, the next --prefetch segments are downloaded in the background into ' +
      '<pg_wal>/.pgark/prefetch, and the worker keeps that many ready while replay consumes them.',
    )
    .argument('<name>', 'WAL file name requested by PostgreSQL (%f)')
    .argument('<destination>', 'where to write it (%p)')
    .option('--prefetch <n>', 'segments to download ahead; 0 switches prefetch off (default 8)')
    .option('--fetch-received <bool>', 'serve a segment pgark receive has only partly stored, zero-filled (default true)')
    .option('--jobs <n>', 'parallel prefetch downloads (default 4)')
    .action(async (name: string, dest: string, _opts: unknown, cmd: Command) => {
      setGarbageBudget(SINGLE_FILE_BUDGET, 'minor'); // one file: collect its dropped buffers while it runs
      try {
        const settings = settingsFrom(cmd);
        if (settings.moreRepos.length > 0) {
          // repo2, repo3: the first that has it, in priority order (wal/wal-fetch-set.ts); no prefetch.
          const [{ walFetchFromSet }, { withRepoSet }] = await Promise.all([import('../wal/wal-fetch-set.js'), import('../repo/repo-set.js')]);
          const res = await withRepoSet(settings, (set) => walFetchFromSet(set, settings, name, dest, process.cwd()), { lazy: true });
          if (res.status === 'missing') throw new ExitWith(ExitCode.FAILURE);
          return;
        }
        const { walFetch } = await import('../wal/wal-fetch.js');
        const res = await withRepository(settings, (repo) => walFetch(repo, settings, name, dest, process.cwd()));
        if (res.status === 'missing') throw new ExitWith(ExitCode.FAILURE);
        if (res.prefetch.length > 0) {
          spawnWorker(['wal-prefetch', res.prefetchDir, ...res.prefetch], settings);
        }
      } catch (err) {
        // Only walFetch's own 'missing' answer may exit 1; every other failure stops recovery.
        if (err instanceof ExitWith) throw err;
        const code = exitCodeOf(err);
        log.error(`${(err as Error).message}`);
        throw new ExitWith(walFetchFatalCode(code));
      }
    });

  program
    .command('wal-prefetch', { hidden: true })
    .description('internal: download segments into the prefetch area (started by wal-fetch)')
    .argument('<prefetch-dir>')
    .argument('<names...>')
    .action(async (dir: string, names: string[], _opts: unknown, cmd: Command) => {
      const settings = settingsFrom(cmd);
      const { runPrefetch } = await import('../wal/prefetch.js');
      const { assertWalFileName } = await import('../wal/segment-name.js');
      names.forEach((n) => assertWalFileName(n));
      await withRepository(settings, (repo) => runPrefetch(repo, settings, dir, names));
    });
}
