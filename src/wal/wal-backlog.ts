/**
 * The backlog of an asynchronous further repository (repoN-mode=async): WAL files it could not
 * take when wal-push stored them in the required repositories. One small object per file in the
 * first repository (`<stanza>/backlog/<repoN>/<name>`, repo/layout.ts), written before wal-push
 * reports success, removed only after the file is durable in repoN. Filling copies the file from
 * the first repository (verified: checksum, and for a segment its size and page headers) into
 * repoN through the ordinary push (never overwrites; an identical copy already there is fine).
 */
import { rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ArchiveMismatchError } from '../common/errors.js';
import { log } from '../common/log.js';
import { backlogKey, backlogPrefix } from '../repo/layout.js';
import type { Repository } from '../repo/repository.js';
import { fetchWalFile } from './fetch-file.js';
import { pushWalFile } from './push-file.js';
import { ensureDir } from './spool.js';

export interface BacklogRecord {
  name: string;
  since: string;
  reason: string;
}

/** Record that `repoName` lacks WAL file `name` (in the first repository). */
export async function recordBacklog(first: Repository, repoName: string, name: string, reason: string): Promise<void> {
  const rec: BacklogRecord = { name, since: new Date().toISOString(), reason };
  await first.putSmallObject(backlogKey(first.stanza, repoName, name), Buffer.from(JSON.stringify(rec) + '\n'));
}

/** The WAL file names in `repoName`'s backlog, oldest (lowest name) first. */
export async function backlogNames(first: Repository, repoName: string): Promise<string[]> {
  const prefix = backlogPrefix(first.stanza, repoName);
  const out: string[] = [];
  for await (const o of first.list(prefix)) out.push(o.path.slice(prefix.length));
  return out.sort();
}

/** Backlog sizes of every repository that has one, by repository name (info). */
export async function backlogSummary(first: Repository): Promise<Array<{ repo: string; files: number; oldest: string }>> {
  const prefix = backlogPrefix(first.stanza);
  const by = new Map<string, string[]>();
  for await (const o of first.list(prefix)) {
    const [repo, name] = o.path.slice(prefix.length).split('/');
    if (!repo || !name) continue;
    by.set(repo, [...(by.get(repo) ?? []), name]);
  }
  return [...by].sort(([a], [b]) => a.localeCompare(b)).map(([repo, names]) => ({ repo, files: names.length, oldest: names.sort()[0]! }));
}

/** One async repository's backlog: how many files, the lowest name, and when the oldest record was written (ms). */
export interface BacklogState {
  repo: string;
  files: number;
  oldest: string;
  oldestMs: number;
}

/**
 * The backlog of every repository that has one, plus `repos` with none (files 0), by repository
 * name; one listing (check, metrics). The oldest record's time is its stored time.
 */
export async function backlogStates(first: Repository, repos: readonly string[] = [], signal?: AbortSignal): Promise<BacklogState[]> {
  const prefix = backlogPrefix(first.stanza);
  const by = new Map<string, BacklogState>(repos.map((r) => [r, { repo: r, files: 0, oldest: '', oldestMs: Number.NaN }]));
  for await (const o of first.list(prefix, signal ? { signal } : {})) {
    const [repo, name] = o.path.slice(prefix.length).split('/');
    if (!repo || !name) continue;
    const st = by.get(repo) ?? { repo, files: 0, oldest: '', oldestMs: Number.NaN };
    by.set(repo, st);
    st.files++;
    if (st.oldest === '' || name < st.oldest) st.oldest = name;
    if (!(o.mtimeMs >= st.oldestMs)) st.oldestMs = o.mtimeMs;
  }
  return [...by.values()].sort((a, b) => a.repo.localeCompare(b.repo));
}

/**
 * Copy WAL file `name` from `first` to `target` (the repository `repoName`) and drop its backlog
 * record. `workDir`: a private local directory for the verified copy in between.
 */
export async function fillBacklogEntry(first: Repository, target: Repository, repoName: string, name: string, workDir: string): Promise<'stored' | 'exists'> {
  await ensureDir(workDir);
  const tmp = join(workDir, `${name}.${process.pid}`);
  try {
    await fetchWalFile(first, name, tmp);
    const size = (await stat(tmp)).size;
    const meta = await first.requireStanza();
    const targetMeta = await target.ensureStanza(
      { systemIdentifier: meta.systemIdentifier, pgVersion: meta.pgVersion, walSegmentSize: meta.walSegmentSize },
      meta.codec,
      `WAL file '${name}' (from the backlog of ${repoName})`,
    );
    const r = await pushWalFile(target, { path: tmp, name, size }, { codec: targetMeta.codec });
    await first.delete([backlogKey(first.stanza, repoName, name)]);
    log.info(`${repoName}: filled '${name}' from the backlog (${r.status})`);
    return r.status;
  } finally {
    await rm(tmp, { force: true });
  }
}

/** Fill up to `limit` of `repoName`'s backlog, oldest first; stops at the first failure other than a mismatch (logged). Returns the number filled. */
export async function fillBacklog(first: Repository, target: Repository, repoName: string, workDir: string, limit: number): Promise<number> {
  let n = 0;
  for (const name of (await backlogNames(first, repoName)).slice(0, limit)) {
    try {
      await fillBacklogEntry(first, target, repoName, name, workDir);
      n++;
    } catch (err) {
      // A different file under this name there is for a person to look at; it must not hold up
      // the rest of the backlog. Anything else (unreachable again) ends this round.
      if (err instanceof ArchiveMismatchError) {
        log.error(`${repoName}: unable to fill '${name}' from the backlog: ${err.message}; it stays in the backlog`);
        continue;
      }
      log.warn(`${repoName}: unable to fill '${name}' from the backlog: ${(err as Error).message}; it stays in the backlog`);
      break;
    }
  }
  return n;
}
