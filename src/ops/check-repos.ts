/**
 * The items of `pgark check` for a stanza's further repositories (repo2, repo3) (pure): each one
 * reachable or not, and each async one's backlog (WAL files it still lacks, recorded in `repo`:
 * wal/wal-backlog.ts). An unreachable required repository is CRITICAL (archiving stops until it
 * is back); an unreachable async one is a WARNING (its backlog grows meanwhile). A backlog is a
 * WARNING while it holds anything, CRITICAL once its oldest file waits longer than
 * --backlog-crit or it holds more than --backlog-crit-files files (the Nagios threshold
 * semantics of the perfdata: warn 0, crit N).
 */
import { formatAge, type CheckItem, type PerfDatum } from './check-items.js';

export interface BacklogLimits {
  critMs: number;
  critFiles: number;
}

/** Defaults of --backlog-crit (1h) and --backlog-crit-files (256; cli/check-command.ts). */
export const BACKLOG_LIMITS_DEFAULT: BacklogLimits = { critMs: 3600_000, critFiles: 256 };

/** repoN reachable (opened, its stanza read) or not: `error` is why not. */
export function moreRepoItem(name: string, mode: 'required' | 'async', location: string, error: string | undefined): CheckItem {
  if (error === undefined) return { name, status: 'OK', detail: `${location} (${mode}) reachable` };
  return mode === 'required'
    ? { name, status: 'CRITICAL', detail: `${location} (required) unreachable: ${error}; archiving fails until it is back (PostgreSQL keeps the WAL)` }
    : { name, status: 'WARNING', detail: `${location} (async) unreachable: ${error}; its backlog grows until it is back` };
}

/** An async repository's backlog: files, the oldest's name and age (undefined with none). */
export function backlogItem(repo: string, files: number, oldest: string, ageMs: number | undefined, limits: BacklogLimits): CheckItem {
  const name = `backlog ${repo}`;
  if (files === 0) return { name, status: 'OK', detail: `${repo} lacks no WAL file` };
  const age = ageMs === undefined ? '' : `, the oldest waiting for ${formatAge(ageMs)}`;
  const detail = `${repo} lacks ${files} WAL file${files === 1 ? '' : 's'} (oldest ${oldest}${age}); wal-push fills it when ${repo} is reachable, pgark copy --wal --to ${repo} at once`;
  const crit = files > limits.critFiles || (ageMs !== undefined && ageMs > limits.critMs);
  return { name, status: crit ? 'CRITICAL' : 'WARNING', detail };
}

/** Perfdata of a backlog: `backlog_repo2=N;0;crit;0` and `backlog_repo2_age=Ns;;crit;0`. */
export function backlogPerf(repo: string, files: number, ageMs: number | undefined, limits: BacklogLimits): PerfDatum[] {
  return [
    { label: `backlog_${repo}`, value: files, uom: '', warn: 0, crit: limits.critFiles, min: 0 },
    { label: `backlog_${repo}_age`, value: ageMs === undefined ? 0 : Math.max(0, Math.round(ageMs / 1000)), uom: 's', crit: Math.round(limits.critMs / 1000), min: 0 },
  ];
}
