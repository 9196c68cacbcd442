/**
 * The newest commit in the repository, for a drill's RPO: the newest WAL segment(s) of the
 * newest timeline (a segment only partly received by pgark receive included, zero-filled) are
 * fetched into the scratch directory and read with `pg_waldump -r Transaction` (TZ=UTC), newest
 * first, until one holds a commit. Without pg_waldump, or when none of the newest
 * MAX_SEGMENTS segments holds a commit, the answer is a note saying why, not a failure.
 */
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { findPgProgram } from '../pg/pg-bin.js';
import { programMajor, runProgram } from '../pg/pg-ctl.js';
import type { Repository } from '../repo/repository.js';
import { fetchReceivedSegment, fetchWalFile } from '../wal/fetch-file.js';
import { parseSegmentName, prevSegment, segmentName } from '../wal/segment-name.js';
import { receivedRanges, scanArchive } from '../wal/wal-verify.js';
import { walNameOfKey } from '../repo/layout.js';
import { newerCommit, parseWaldumpCommitLine, type WaldumpCommit } from './waldump-commits.js';

export const MAX_SEGMENTS = 8;
const WALDUMP_TIMEOUT_MS = 120_000;

export interface NewestCommit {
  commit?: WaldumpCommit;
  segment?: string;
  /** Why there is no commit, when there is none. */
  note?: string;
}

/** Newest first: the candidate segments of the newest timeline, and which one is only received. */
export function newestSegments(
  timelines: Array<{ timeline: number; ranges: Array<{ first: string; last: string }> }>,
  received: Array<{ segment: string; bytes: number; archived: boolean }>,
  walSegmentSize: number,
  max = MAX_SEGMENTS,
): { timeline?: number; names: string[]; receivedOnly?: string } {
  const tlOf = (name: string) => Number.parseInt(name.slice(0, 8), 16);
  const live = received.filter((r) => !r.archived && r.bytes > 0);
  const tls = [...timelines.filter((t) => t.ranges.length > 0).map((t) => t.timeline), ...live.map((r) => tlOf(r.segment))];
  if (tls.length === 0) return { names: [] };
  const timeline = Math.max(...tls);
  const names: string[] = [];
  const archived = timelines.find((t) => t.timeline === timeline)?.ranges ?? [];
  const newestArchived = archived.length > 0 ? archived[archived.length - 1]!.last : undefined;
  const rec = live.filter((r) => tlOf(r.segment) === timeline && (newestArchived === undefined || r.segment > newestArchived))
    .map((r) => r.segment).sort().pop();
  if (rec) names.push(rec);
  for (const r of [...archived].reverse()) {
    let id = parseSegmentName(r.last, walSegmentSize);
    const first = parseSegmentName(r.first, walSegmentSize).segno;
    while (names.length < max) {
      names.push(segmentName(id, walSegmentSize));
      if (id.segno <= first) break;
      id = prevSegment(id, walSegmentSize);
    }
    if (names.length >= max) break;
  }
  return { timeline, names, ...(rec ? { receivedOnly: rec } : {}) };
}

export async function newestArchivedCommit(repo: Repository, workDir: string, major: number): Promise<NewestCommit> {
  const waldump = findPgProgram('pg_waldump', major);
  if (!waldump) return { note: 'pg_waldump not found (set PGARK_PG_BINDIR)' };
  const found = await programMajor(waldump).catch(() => undefined);
  if (found !== major) return { note: `'${waldump}' is PostgreSQL ${found ?? 'of unknown version'}, the WAL is ${major}` };
  const meta = await repo.requireStanza();
  const { objects, report } = await scanArchive(repo, meta);
  const archivedNames = new Set(objects.map((o) => walNameOfKey(o.path)).filter((n): n is string => !!n));
  const received = await receivedRanges(repo, archivedNames);
  const cand = newestSegments(report.timelines, received.ranges, meta.walSegmentSize);
  if (cand.names.length === 0) return { note: 'the repository holds no WAL segment' };
  await mkdir(workDir, { recursive: true, mode: 0o700 });
  for (const name of cand.names) {
    const file = join(workDir, name);
    try {
      if (name === cand.receivedOnly) await fetchReceivedSegment(repo, name, file, meta.walSegmentSize);
      else await fetchWalFile(repo, name, file);
      let best: WaldumpCommit | undefined;
      const r = await runProgram(waldump, ['-r', 'Transaction', file], {
        timeoutMs: WALDUMP_TIMEOUT_MS, env: { ...process.env, TZ: 'UTC' }, keepBytes: 4096,
        onLine: (l) => {
          const c = parseWaldumpCommitLine(l);
          if (c) best = newerCommit(best, c);
        },
      });
      // pg_waldump ends with an error at the end of the WAL it has (the next segment is not
      // there, or a partly received one is zero-filled): what it printed before still counts.
      if (r.timedOut) return { note: `pg_waldump timed out on ${name}` };
      if (best) return { commit: best, segment: name };
    } catch (err) {
      return { note: `unable to read the newest WAL (${name}): ${(err as Error).message}` };
    } finally {
      await rm(file, { force: true });
    }
  }
  return { note: `no commit in the newest ${cand.names.length} WAL segment(s) of timeline ${cand.timeline}` };
}
