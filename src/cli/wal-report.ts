/** Text rendering of wal-verify and info results, and info collection. */
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { AgentStatus } from '../agent/agent-status.js';
import type { Repository } from '../repo/repository.js';
import type { StanzaMeta } from '../repo/stanza-meta.js';
import type { ArchiveReport } from '../wal/archive-analysis.js';
import type { VerifyReport } from '../wal/wal-verify.js';
import { formatBytes } from './format.js';

export interface InfoReport {
  stanza: string;
  repository: string;
  systemIdentifier: string;
  pgVersion: number;
  walSegmentSize: number;
  codec: string;
  createdAt: string;
  wal: {
    timelines: Array<{ timeline: number; first?: string; last?: string; segments: number; gaps: number; storedBytes: number }>;
    segments: number;
    storedBytes: number;
    lastPush?: string;
  };
  /**
   * The archive agent serving this cluster (with --pgdata): its last published state, whether
   * its process is alive, and the backlog warning if any; `running: false` when none runs.
   */
  agent?: (AgentStatus & { running: boolean; warning?: string }) | { running: false };
}

/** The agent's status file under `<pgdata>/pg_wal/.pgark/agent/`, if an agent runs there. */
async function agentInfo(pgdata: string): Promise<InfoReport['agent']> {
  const { agentStatusPath } = await import('../agent/agent-paths.js');
  const { backlogWarning } = await import('../agent/agent-status.js');
  const { isProcessAlive } = await import('../common/process.js');
  let status: AgentStatus;
  try {
    status = JSON.parse(await readFile(agentStatusPath(join(resolve(pgdata), 'pg_wal')), 'utf8')) as AgentStatus;
  } catch {
    return { running: false };
  }
  const running = isProcessAlive(status.pid);
  const warning = backlogWarning(status, { segments: 64, ageSec: 300 });
  return { ...status, running, ...(warning ? { warning } : {}) };
}

export async function collectInfo(repo: Repository, pgdata?: string): Promise<InfoReport> {
  const meta: StanzaMeta = await repo.requireStanza();
  const { scanArchive } = await import('../wal/wal-verify.js');
  const { report } = await scanArchive(repo, meta);
  const wal: InfoReport['wal'] = {
    timelines: report.timelines.map((t) => ({
      timeline: t.timeline,
      first: t.ranges[0]?.first,
      last: t.ranges[t.ranges.length - 1]?.last,
      segments: t.segments,
      gaps: t.gaps.length,
      storedBytes: t.storedBytes,
    })),
    segments: report.totalSegments,
    storedBytes: report.totalStoredBytes,
  };
  if (report.lastModified) wal.lastPush = report.lastModified;
  return {
    stanza: meta.stanza,
    repository: repo.driver.location,
    systemIdentifier: meta.systemIdentifier,
    pgVersion: meta.pgVersion,
    walSegmentSize: meta.walSegmentSize,
    codec: meta.codec,
    createdAt: meta.createdAt,
    wal,
    ...(pgdata ? { agent: await agentInfo(pgdata) } : {}),
  };
}

const out = (s: string) => process.stdout.write(s + '\n');

export function printInfo(i: InfoReport): void {
  out(`stanza: ${i.stanza}`);
  out(`  repository: ${i.repository}`);
  out(`  cluster: system identifier ${i.systemIdentifier}, PostgreSQL ${i.pgVersion}, wal_segment_size ${formatBytes(i.walSegmentSize)}`);
  out(`  codec: ${i.codec}; created ${i.createdAt}`);
  out(`  WAL: ${i.wal.segments} segments, ${formatBytes(i.wal.storedBytes)} stored; last push ${i.wal.lastPush ?? 'never'}`);
  for (const t of i.wal.timelines) {
    const range = t.first ? `${t.first} .. ${t.last}` : '(no segments)';
    out(`    timeline ${t.timeline}: ${range}, ${t.segments} segments${t.gaps ? `, ${t.gaps} GAPS` : ''}`);
  }
  const a = i.agent;
  if (a && 'pid' in a) {
    out(`  agent: pid ${a.pid} ${a.running ? 'running' : 'NOT RUNNING (stale status)'}, updated ${a.updatedAt}`);
    out(`    queue ${a.queue} (${a.inFlight} in flight), oldest ready ${a.oldestReady ?? '-'} ${a.oldestReadyAgeSec} s; ${a.perMinute}/min; stored ${a.pushed} (+${a.alreadyArchived} already archived), ${formatBytes(a.bytes)}; errors ${a.errors}`);
    if (a.lastError) out(`    last error ${a.lastError.at} on ${a.lastError.segment}: ${a.lastError.message}`);
    if (a.warning) out(`    WARNING: ${a.warning}`);
  } else if (a) {
    out('  agent: not running (archive_command pushes every segment itself)');
  }
}

function printArchive(r: ArchiveReport): void {
  for (const t of r.timelines) {
    const fork = t.fork ? `, forked from timeline ${t.fork.parent} at ${t.fork.lsn} (${t.fork.segment})` : '';
    out(`timeline ${t.timeline}: ${t.segments} segments${t.history ? ', history file' : ''}${fork}`);
    for (const x of t.ranges) out(`  archived ${x.first} .. ${x.last} (${x.count})`);
    for (const g of t.gaps) out(`  GAP      ${g.first} .. ${g.last} (${g.count} missing)`);
    for (const p of t.partials) out(`  partial  ${p}`);
    for (const b of t.backupFiles) out(`  backup   ${b}`);
  }
}

export function printVerifyReport(r: VerifyReport): void {
  out(`stanza ${r.stanza}: ${r.totalSegments} segments on ${r.timelines.length} timeline(s)`);
  printArchive(r);
  if (r.objectsRead) out(`re-read ${r.objectsRead} objects`);
  for (const d of r.damaged) out(`DAMAGED ${d.name}: ${d.error}`);
  out(r.ok ? 'OK' : `FAILED: ${r.gapCount} gap(s), ${r.damaged.length} damaged object(s)`);
}
