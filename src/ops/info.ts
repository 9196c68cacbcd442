/** `pgark info`: collect the stanza's state (catalog, archive, agent, receivers, drills). Text rendering is cli/archive-text.ts. */
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { AgentStatus } from '../agent/agent-status.js';
import type { Repository } from '../repo/repository.js';
import type { StanzaMeta } from '../repo/stanza-meta.js';
import type { ReceivedRange } from '../wal/wal-verify.js';
import type { ReceiverStatus } from '../receiver/receiver-status.js';
import { log } from '../common/log.js';
import type { DrillSummary } from './metrics-drill.js';
import { backupEntries, type BackupEntry } from '../catalog/backup-entry.js';

export interface InfoReport {
  stanza: string;
  repository: string;
  systemIdentifier: string;
  pgVersion: number;
  walSegmentSize: number;
  codec: string;
  createdAt: string;
  /** Where the current cluster's WAL begins, after `stanza-upgrade`. */
  sinceLsn?: string;
  /** Clusters the stanza held before `stanza-upgrade`, oldest first: their backups and WAL stay readable. */
  priorClusters?: Array<{ systemIdentifier: string; pgVersion: number; walSegmentSize: number; sinceLsn?: string; until: string }>;
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
  /** Receivers (pgark receive) storing into this stanza, from their status objects. */
  receivers: Array<ReceiverStatus & { stale: boolean }>;
  /** Backlogs of asynchronous further repositories (repo2, repo3) kept in this one: WAL they do not hold yet. */
  backlog: Array<{ repo: string; files: number; oldest: string }>;
  /** Segments stored in part by a receiver. */
  received: ReceivedRange[];
  /** DR drills (pgark drill): how many reports are stored, and the newest one. */
  drills: { count: number; last?: DrillSummary };
  /** The stanza's backups, oldest first, as `pgark list` shows them. */
  backups: BackupEntry[];
}

async function receiverInfo(repo: Repository): Promise<InfoReport['receivers']> {
  const { readReceiverStatuses, isStaleReceiverStatus } = await import('../wal/receiver-statuses.js');
  const now = Date.now();
  const statuses = await readReceiverStatuses<ReceiverStatus>(repo, (key, err) => log.warn(`unable to read receiver status '${key}': ${(err as Error).message}`));
  return statuses.map((s) => ({ ...s, stale: isStaleReceiverStatus(s, now) })).sort((a, b) => a.name.localeCompare(b.name));
}

/** The agent's status file under `<pgdata>/pg_wal/.pgark/agent/`, if an agent runs there. */
async function agentInfo(pgdata: string): Promise<InfoReport['agent']> {
  const { agentStatusPath } = await import('../wal/agent-paths.js');
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
  const { scanArchive, receivedRanges } = await import('../wal/wal-verify.js');
  const { report, objects } = await scanArchive(repo, meta);
  const { walNameOfKey } = await import('../repo/layout.js');
  const archived = new Set(objects.map((o) => walNameOfKey(o.path)).filter((n): n is string => !!n));
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
    repository: repo.location,
    systemIdentifier: meta.systemIdentifier,
    pgVersion: meta.pgVersion,
    walSegmentSize: meta.walSegmentSize,
    codec: meta.codec,
    createdAt: meta.createdAt,
    ...(meta.sinceLsn ? { sinceLsn: meta.sinceLsn } : {}),
    ...(meta.history?.length ? { priorClusters: meta.history } : {}),
    wal,
    ...(pgdata ? { agent: await agentInfo(pgdata) } : {}),
    receivers: await receiverInfo(repo),
    backlog: await (await import('../wal/wal-backlog.js')).backlogSummary(repo),
    received: (await receivedRanges(repo, archived)).ranges,
    drills: await (await import('./metrics-repo.js')).latestDrill(repo),
    backups: await (async () => {
      const { listBackups, listPins } = await import('../catalog/catalog.js');
      return backupEntries(await listBackups(repo), await listPins(repo));
    })(),
  };
}
