/**
 * Commit records in `pg_waldump -r Transaction` output (pure). pg_waldump prints a commit as
 *
 *   rmgr: Transaction len (rec/tot): 34/34, tx: 735, lsn: 0/03000060, prev 0/03000028, desc: COMMIT 2026-11-23 16:20:00.123456 UTC
 *
 * (COMMIT_PREPARED carries the prepared transaction's xid: `COMMIT_PREPARED 726: <time>`). The time is in pg_waldump's own time
 * zone: pgark runs it with TZ=UTC, and anything else is refused rather than guessed.
 */
export interface WaldumpCommit {
  lsn: string;
  /** ISO UTC with microseconds: 2026-11-23T16:20:00.123456Z. */
  time: string;
}

const COMMIT_RE = /\blsn: ([0-9A-F]+\/[0-9A-F]+),.*\bdesc: COMMIT(?:_PREPARED \d+:)? (\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2})(?:\.(\d{1,6}))? (UTC|GMT|\+00|UCT)\b/;

/** The commit a pg_waldump output line describes, or undefined. */
export function parseWaldumpCommitLine(line: string): WaldumpCommit | undefined {
  if (!line.includes('COMMIT')) return undefined;
  const m = COMMIT_RE.exec(line);
  return m ? { lsn: m[1]!, time: `${m[2]}T${m[3]}.${(m[4] ?? '').padEnd(6, '0')}Z` } : undefined;
}

export function parseWaldumpCommits(output: string): WaldumpCommit[] {
  return output.split('\n').map(parseWaldumpCommitLine).filter((c): c is WaldumpCommit => c !== undefined);
}

function lsnKey(lsn: string): bigint {
  const [hi, lo] = lsn.split('/') as [string, string];
  return (BigInt(`0x${hi}`) << 32n) | BigInt(`0x${lo}`);
}

/** The newer (by LSN) of a commit found so far and another one. */
export function newerCommit(best: WaldumpCommit | undefined, c: WaldumpCommit): WaldumpCommit {
  return !best || lsnKey(c.lsn) > lsnKey(best.lsn) ? c : best;
}

/** The newest commit (the last by LSN) of a pg_waldump output, or undefined. */
export function lastCommit(output: string): WaldumpCommit | undefined {
  let best: WaldumpCommit | undefined;
  for (const c of parseWaldumpCommits(output)) best = newerCommit(best, c);
  return best;
}
