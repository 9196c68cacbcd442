/** Text rendering of the info and wal-verify reports for the CLI. */
import type { InfoReport } from '../ops/info.js';
import type { ArchiveReport } from '../wal/archive-analysis.js';
import type { ReceivedRange, VerifyReport } from '../wal/wal-verify.js';
import { formatDrillLine } from '../ops/metrics-drill.js';
import { formatBytes } from './format.js';

const out = (s: string) => process.stdout.write(s + '\n');

export function printInfo(i: InfoReport): void {
  out(`stanza: ${i.stanza}`);
  out(`  repository: ${i.repository}`);
  out(`  cluster: system identifier ${i.systemIdentifier}, PostgreSQL ${i.pgVersion}, wal_segment_size ${formatBytes(i.walSegmentSize)}`);
  if (i.sinceLsn) out(`    WAL of this cluster from ${i.sinceLsn} (pgark stanza-upgrade)`);
  for (const c of [...(i.priorClusters ?? [])].reverse()) {
    out(`  before: system identifier ${c.systemIdentifier}, PostgreSQL ${c.pgVersion}${c.sinceLsn ? `, WAL from ${c.sinceLsn}` : ''}, until ${c.until} (its backups and WAL stay restorable)`);
  }
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
  for (const b of i.backlog) out(`  ${b.repo} (async) backlog: ${b.files} WAL file${b.files === 1 ? '' : 's'} not there yet, oldest ${b.oldest} (filled by wal-push calls that reach it, or pgark copy --wal)`);
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
