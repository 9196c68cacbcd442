/** Text rendering of wal-verify and info results, and info collection. */
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { AgentStatus } from '../agent/agent-status.js';
import type { Repository } from '../repo/repository.js';
import type { StanzaMeta } from '../repo/stanza-meta.js';
import type { ArchiveReport } from '../wal/archive-analysis.js';
import type { ReceivedRange, VerifyReport } from '../wal/wal-verify.js';
import type { ReceiverStatus } from '../receiver/receiver-status.js';
import { log } from '../common/log.js';
import { formatBytes } from './format.js';
import { formatDrillLine, type DrillSummary } from '../ops/metrics-drill.js';
import { backupEntries, type BackupEntry } from '../json/catalog-json.js';

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
  /** Receivers (pgark receive) storing into this stanza, from their status objects. */
  receivers: Array<ReceiverStatus & { stale: boolean }>;
  /** Segments stored in part by a receiver. */
  received: ReceivedRange[];
  /** DR drills (pgark drill): how many reports are stored, and the newest one. */
  drills: { count: number; last?: DrillSummary };
  /** The stanza's backups, oldest first, as `pgark list` shows them. */
  backups: BackupEntry[];
}

/** A receiver stores its status every 10 s; older than this, it is not running (or cannot store). */
const RECEIVER_STALE_MS = 60_000;

async function receiverInfo(repo: Repository): Promise<InfoReport['receivers']> {
  const { receiverStatusPrefix } = await import('../repo/layout.js');
  const out: InfoReport['receivers'] = [];
  for await (const o of repo.driver.list(receiverStatusPrefix(repo.stanza))) {
    if (!o.path.endsWith('.json')) continue;
    try {
      const s = JSON.parse(await repo.getJson(o.path)) as ReceiverStatus;
      const live = s.state === 'streaming' || s.state === 'connecting' || s.state === 'retrying';
      out.push({ ...s, stale: live && Date.now() - Date.parse(s.updatedAt) > RECEIVER_STALE_MS });
    } catch (err) {
      log.warn(`unable to read receiver status '${o.path}': ${(err as Error).message}`);
    }
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
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
    repository: repo.driver.location,
    systemIdentifier: meta.systemIdentifier,
    pgVersion: meta.pgVersion,
    walSegmentSize: meta.walSegmentSize,
    codec: meta.codec,
    createdAt: meta.createdAt,
    wal,
    ...(pgdata ? { agent: await agentInfo(pgdata) } : {}),
    receivers: await receiverInfo(repo),
    received: (await receivedRanges(repo, archived)).ranges,
    drills: await (await import('../ops/metrics-repo.js')).latestDrill(repo),
    backups: await (async () => {
      const { listBackups, listPins } = await import('../catalog/catalog.js');
      return backupEntries(await listBackups(repo), await listPins(repo));
    })(),
  };
}

const out = (s: string) => process.stdout.write(s + '\n');

export function printInfo(i: InfoReport): void {
  out(`stanza: ${i.stanza}`);
  out(`  repository: ${i.repository}`);
  out(`  cluster: system identifier ${i.systemIdentifier}, PostgreSQL ${i.pgVersion}, wal_segment_size ${formatBytes(i.walSegmentSize)}`);
  out(`  codec: ${i.codec}; created ${i.createdAt}`);
  out(`  WAL: ${i.wal.segments} segments, ${formatBytes(i.wal.storedBytes)} stored; last push ${i.wal.lastPush ?? 'never'}`);
  const newest = i.backups[i.backups.length - 1];
  out(`  backups: ${i.backups.length}${newest ? `; newest ${newest.id} (${newest.type}), stopped ${newest.stop.time} at ${newest.stop.lsn}` : ' (pgark backup takes one)'}`);
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
  for (const r of i.receivers) {
    const state = r.stale ? `${r.state.toUpperCase()} but STALE (no update since ${r.updatedAt})` : r.state;
    out(`  receiver ${r.name} on ${r.host} pid ${r.pid}: ${state}${r.synchronous ? ', synchronous' : ''}; updated ${r.updatedAt}`);
    if (r.server) out(`    server ${r.server.where}, timeline ${r.timeline ?? r.server.timeline}`);
    out(`    stored up to ${r.flushLsn ?? '-'} (received ${r.writeLsn ?? '-'}, server at ${r.serverWalEnd ?? '-'}); lag ${formatBytes(r.lagBytes)}, ${r.lagSeconds} s; last flush ${r.lastFlushAt ?? 'never'}`);
    if (r.slot) out(`    slot ${r.slot.name}: ${r.slot.active ? 'active' : 'inactive'}, restart LSN ${r.slot.restartLsn ?? '-'} when last read`);
    out(`    ${formatBytes(r.bytesReceived)} received, ${r.segmentsStored} segments and ${r.piecesStored} pieces stored, ${r.reconnects} reconnects`);
    if (r.lastError) out(`    last error ${r.lastErrorAt ?? ''}: ${r.lastError}`);
  }
  printReceived(i.received, '  ');
  if (i.drills.last) {
    out(`  last drill ${formatDrillLine(i.drills.last, Date.now())} (${i.drills.count} drill report${i.drills.count === 1 ? '' : 's'} stored)`);
  } else {
    out('  drills: none stored (pgark drill restores the newest backup and reports RTO/RPO)');
  }
}

function printReceived(received: readonly ReceivedRange[], indent: string): void {
  for (const r of received) {
    out(`${indent}received ${r.segment}: ${formatBytes(r.bytes)} from its start in ${r.pieces} piece(s)${r.archived ? ' (also archived whole)' : ''}, last ${r.lastModified ?? '-'}`);
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
  printReceived(r.received, '');
  if (r.objectsRead) out(`re-read ${r.objectsRead} objects`);
  for (const d of r.damaged) out(`DAMAGED ${d.name}: ${d.error}`);
  out(r.ok ? 'OK' : `FAILED: ${r.gapCount} gap(s), ${r.damaged.length} damaged object(s)`);
}
