/**
 * wal-fetch with more than one repository (repo2, repo3): the repositories are asked in priority
 * order and the first that has the file serves it. "Not archived" (exit 1, which lets PostgreSQL
 * end recovery) is answered only when every repository answered "missing"; a repository that
 * could not be opened or read (unreachable, damaged copy, wrong key, stanza missing) is never
 * counted as missing: if no repository has the file and one failed, the first failure is the
 * answer (exit above 125, PostgreSQL stops rather than promoting early). Prefetch is off: the
 * prefetch worker reads one repository. A lazy set opens a repository only when the ones before
 * it lack the file, so an unreachable repo2 costs nothing while repo has what is asked.
 */
import { log } from '../common/log.js';
import type { RepoSet } from '../repo/repo-set.js';
import { walFetch, type WalFetchResult } from './wal-fetch.js';
import type { Settings } from '../config/resolve.js';

export type FetchOutcome = { repo: string; answer: 'restored' } | { repo: string; answer: 'missing' } | { repo: string; answer: 'failed'; error: unknown };

/**
 * The answer for outcomes in priority order (pure): the first 'restored'; else 'missing' when
 * every repository said missing; else the first failure.
 */
export function fetchDecision(outcomes: readonly FetchOutcome[]): { answer: 'restored'; repo: string } | { answer: 'missing' } | { answer: 'failed'; error: unknown; repo: string } {
  const restored = outcomes.find((o) => o.answer === 'restored');
  if (restored) return { answer: 'restored', repo: restored.repo };
  const failed = outcomes.find((o): o is Extract<FetchOutcome, { answer: 'failed' }> => o.answer === 'failed');
  if (failed) return { answer: 'failed', error: failed.error, repo: failed.repo };
  if (outcomes.length === 0) throw new Error('fetchDecision: no repository');
  return { answer: 'missing' };
}

export async function walFetchFromSet(set: RepoSet, settings: Pick<Settings, 'fetchReceived'>, name: string, dest: string, dataDir = process.cwd()): Promise<WalFetchResult & { repo?: string }> {
  const outcomes: FetchOutcome[] = [];
  let last: WalFetchResult | undefined;
  for (const m of set.members) {
    const repo = await set.use(m);
    if (!repo) {
      log.warn(`${m.name}: unable to open it: ${(m.openError as Error).message}`);
      outcomes.push({ repo: m.name, answer: 'failed', error: m.openError });
      continue;
    }
    try {
      last = await walFetch(repo, { prefetch: 0, fetchReceived: settings.fetchReceived }, name, dest, dataDir);
      outcomes.push({ repo: m.name, answer: last.status === 'restored' ? 'restored' : 'missing' });
      if (last.status === 'restored') break;
    } catch (err) {
      log.warn(`${m.name} (${repo.location}): unable to fetch '${name}': ${(err as Error).message}`);
      outcomes.push({ repo: m.name, answer: 'failed', error: err });
    }
  }
  const d = fetchDecision(outcomes);
  if (d.answer === 'failed') {
    const err = d.error as Error;
    if (err instanceof Error) err.message = `${d.repo}: ${err.message} (no other repository has '${name}'; not reporting it as missing while ${d.repo} cannot answer)`;
    throw d.error;
  }
  if (d.answer === 'restored') {
    if (d.repo !== 'repo') log.info(`restored '${name}' from ${d.repo}`);
    return { ...last!, repo: d.repo };
  }
  log.info(`'${name}' is in none of the ${set.members.length} repositories`);
  return { ...last!, status: 'missing', prefetch: [] };
}
