/** CLI wiring of `pgark wal-fetch` (restore_command) and the prefetch worker it starts. Implementations load only when a command runs. */
import type { Command } from 'commander';
import { ExitCode, exitCodeOf } from '../common/errors.js';
import { setGarbageBudget, SINGLE_FILE_BUDGET } from '../common/gc-budget.js';
import { log } from '../common/log.js';
import type { Settings } from '../config/resolve.js';
import { transferPhase } from './call-phase.js';
import { settingsFrom, withRepository } from './context.js';
import { WAL_FETCH_OPTIONS } from './option-specs.js';
import { ExitWith, walFetchFatalBase, walFetchFatalCode } from './exit.js';

/**
 * wal-fetch's work once its command line is parsed (by commander, or by the lean entry
 * wal-call.ts): `settingsOf` resolves the settings; any failure but "not archived" exits above 125.
 */
export async function runWalFetch(name: string, dest: string, settingsOf: () => Settings): Promise<void> {
  setGarbageBudget(SINGLE_FILE_BUDGET, 'minor'); // one file: collect its dropped buffers while it runs
  try {
    const settings = settingsOf();
    if (settings.moreRepos.length > 0) {
      // repo2, repo3: the first that has it, in priority order (wal/wal-fetch-set.ts); no prefetch.
      const [{ walFetchFromSet }, { withRepoSet }] = await Promise.all([import('../wal/wal-fetch-set.js'), import('../repo/repo-set.js')]);
      const res = await withRepoSet(settings, (set) => (transferPhase(), walFetchFromSet(set, settings, name, dest, process.cwd())), { lazy: true });
      if (res.status === 'missing') throw new ExitWith(ExitCode.FAILURE);
      return;
    }
    const { walFetch } = await import('../wal/wal-fetch.js');
    const res = await withRepository(settings, (repo) => (transferPhase(), walFetch(repo, settings, name, dest, process.cwd())));
    if (res.status === 'missing') {
      // Archive recovery's first call is usually the probe for the next timeline's history
      // file: start the serving worker now (nothing to prefetch yet), so that the first segment
      // and the rest are asked of it instead of starting Node again.
      if (settings.prefetch > 0 && res.stanzaExists === true && (await historyProbeInRecovery(name, res.prefetchDir))) await startPrefetchWorker(settings, res.prefetchDir, [], name, dest);
      throw new ExitWith(ExitCode.FAILURE);
    }
    if (res.prefetch.length > 0) await startPrefetchWorker(settings, res.prefetchDir, res.prefetch, name, dest);
  } catch (err) {
    // Only walFetch's own 'missing' answer may exit 1; every other failure stops recovery.
    if (err instanceof ExitWith) throw err;
    const code = exitCodeOf(err);
    log.error(`${(err as Error).message}`);
    throw new ExitWith(walFetchFatalCode(code));
  }
}

/**
 * `name` is a timeline history file, recovery.signal or standby.signal is in the working
 * directory (the data directory, where PostgreSQL runs restore_command), and no worker serves
 * the prefetch area yet.
 */
async function historyProbeInRecovery(name: string, prefetchDir: string): Promise<boolean> {
  const [{ isHistoryName }, { join }, { lockHeld }, { SERVE_LOCK }, { inRecovery }] = await Promise.all([
    import('../pg/wal-names.js'), import('node:path'), import('../common/pid-lock.js'), import('../wal/prefetch-requests.js'), import('../wal/prefetch.js'),
  ]);
  if (!isHistoryName(name)) return false;
  return (await inRecovery()) && !(await lockHeld(join(prefetchDir, SERVE_LOCK)));
}

/**
 * Start a detached prefetch worker for `names` (none: it only serves requests until it is asked
 * for a segment). It also answers the shell client's requests (src/wal/prefetch-requests.ts)
 * for calls with this call's options: the serving role is taken for it now, so that the next
 * call can ask while it starts.
 */
async function startPrefetchWorker(settings: Settings, prefetchDir: string, names: string[], name: string, dest: string): Promise<void> {
  const { spawnWorker } = await import('../wal/spawn-worker.js');
  const pid = spawnWorker(['wal-prefetch', prefetchDir, ...names], settings);
  const { serveArgsLine } = await import('../wal/prefetch-requests.js');
  const args = serveArgsLine(process.argv.slice(2), name, dest);
  if (pid === undefined || args === undefined) return;
  const { takeServeLock } = await import('../wal/prefetch.js');
  await takeServeLock(prefetchDir, args, pid).catch((err: unknown) => log.debug(`prefetch worker not serving: ${(err as Error).message}`));
}

export function registerWalFetchCommand(program: Command): void {
  const fetch = program
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
    .argument('<destination>', 'where to write it (%p)');
  for (const o of WAL_FETCH_OPTIONS) fetch.option(o.flags, o.description);
  fetch.action((name: string, dest: string, _opts: unknown, cmd: Command) => runWalFetch(name, dest, () => settingsFrom(cmd)));

  program
    .command('wal-prefetch', { hidden: true })
    .description('internal: download segments into the prefetch area (started by wal-fetch)')
    .argument('<prefetch-dir>')
    .argument('[names...]')
    .action(async (dir: string, names: string[], _opts: unknown, cmd: Command) => {
      const settings = settingsFrom(cmd);
      const { runPrefetch } = await import('../wal/prefetch.js');
      const { assertWalFileName } = await import('../wal/segment-name.js');
      names.forEach((n) => assertWalFileName(n));
      const { walFetch } = await import('../wal/wal-fetch.js');
      const { resolve } = await import('node:path');
      // <pg_wal>/.pgark/prefetch: requests are answered as the full wal-fetch answers (prefetch off for the one file).
      const walDir = resolve(dir, '..', '..');
      await withRepository(settings, (repo) => runPrefetch(repo, settings, dir, names, {
        answer: async (name, dest) => (await walFetch(repo, { ...settings, prefetch: 0 }, name, dest, process.cwd(), walDir)).status === 'restored' ? 'restored' : 'missing',
      }));
    });
}
