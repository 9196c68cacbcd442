/**
 * Prometheus text exposition (version 0.0.4) of `pgark metrics` (pure). Every sample carries the
 * `stanza` label; a metric whose value is unknown is left out entirely (no HELP/TYPE either),
 * so a missing number never reads as 0. Ages are computed from cached timestamps at `nowMs`.
 */
import { drillTimeMs } from './metrics-drill.js';
import type { ArchiverFacts, RepositoryFacts } from './metrics-model.js';

type Labels = Record<string, string>;
interface Sample {
  labels?: Labels;
  value: number | undefined;
}

/** Label value escaping of the text format: backslash, double quote and line feed. */
export function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** HELP text escaping: backslash and line feed. */
function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function formatValue(v: number): string {
  if (Number.isInteger(v)) return String(v);
  // Millisecond precision is plenty for seconds and keeps the output stable.
  return String(Math.round(v * 1000) / 1000);
}

/** Collects metric families; a family with no known sample is not written at all. */
export class PromText {
  private readonly lines: string[] = [];
  constructor(private readonly base: Labels) {}

  private family(name: string, type: 'gauge' | 'counter', help: string, samples: Sample[]): void {
    const known = samples.filter((s): s is Sample & { value: number } => s.value !== undefined && Number.isFinite(s.value));
    if (known.length === 0) return;
    this.lines.push(`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} ${type}`);
    for (const s of known) {
      const labels = Object.entries({ ...this.base, ...s.labels }).map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(',');
      this.lines.push(`${name}${labels ? `{${labels}}` : ''} ${formatValue(s.value)}`);
    }
  }

  gauge(name: string, help: string, value: number | undefined | Sample[]): this {
    this.family(name, 'gauge', help, Array.isArray(value) ? value : [{ value }]);
    return this;
  }

  counter(name: string, help: string, value: number | undefined | Sample[]): this {
    this.family(name, 'counter', help, Array.isArray(value) ? value : [{ value }]);
    return this;
  }

  text(): string {
    return this.lines.length ? this.lines.join('\n') + '\n' : '';
  }
}

const seconds = (ms: number | undefined): number | undefined => (ms === undefined || Number.isNaN(ms) ? undefined : ms / 1000);
const age = (ms: number | undefined, nowMs: number): number | undefined => (ms === undefined || Number.isNaN(ms) ? undefined : Math.max(0, (nowMs - ms) / 1000));
const bool = (b: boolean | undefined): number | undefined => (b === undefined ? undefined : b ? 1 : 0);

/** Backups, WAL, coverage window and drills: what the repository alone tells. */
export function repositoryMetricsText(stanza: string, f: RepositoryFacts | undefined, nowMs: number): string {
  if (!f) return '';
  const p = new PromText({ stanza });
  const b = f.backups;
  p.gauge('pgark_backups', 'Backups in the catalog.', b.count);
  if (b.last) {
    p.gauge('pgark_backup_last_info', 'The newest backup (by start LSN): its id and type (full or incr) as labels; value 1.', [{ labels: { id: b.last.id, type: b.last.type }, value: 1 }]);
    p.gauge('pgark_backup_last_completion_timestamp_seconds', 'Unix time the newest backup stopped.', seconds(b.last.stopMs));
    p.gauge('pgark_backup_last_age_seconds', 'Seconds since the newest backup stopped.', age(b.last.stopMs, nowMs));
    p.gauge('pgark_backup_last_duration_seconds', 'How long the newest backup took.', b.last.durationSec);
    p.gauge('pgark_backup_last_size_bytes', 'Bytes the newest backup read from the data directory (original size).', b.last.originalBytes);
    p.gauge('pgark_backup_last_stored_bytes', 'Bytes the newest backup stored in the repository (after compression; an incremental only its changes).', b.last.storedBytes);
  }
  p.gauge('pgark_backup_last_full_age_seconds', 'Seconds since the newest full backup stopped.', age(b.lastFullStopMs, nowMs));

  const w = f.wal;
  p.gauge('pgark_wal_segments', 'Whole WAL segments in the repository.', w.segments);
  p.gauge('pgark_wal_stored_bytes', 'Stored bytes of the WAL in the repository.', w.storedBytes);
  if (w.newest) {
    p.gauge('pgark_wal_newest_segment_timeline', 'Timeline of the newest archived WAL segment.', w.newest.timeline);
    p.gauge('pgark_wal_newest_segment_end_lsn_bytes', 'End of the newest archived WAL segment (LSN as a number): WAL up to here is in the repository.', w.newest.endLsn);
    p.gauge('pgark_wal_newest_segment_timestamp_seconds', 'Unix time the newest archived WAL segment was stored.', seconds(w.newest.mtimeMs));
    p.gauge('pgark_wal_newest_segment_age_seconds', 'Seconds since the newest archived WAL segment was stored.', age(w.newest.mtimeMs, nowMs));
  }
  if (w.newest && b.oldestStartMs !== undefined) {
    p.gauge('pgark_wal_window_start_timestamp_seconds', 'Unix time of the oldest point a restore can reach (start of the oldest backup).', seconds(b.oldestStartMs));
    p.gauge('pgark_wal_window_seconds', 'Span of restorable points in time: from the start of the oldest backup to the time the newest archived segment was stored.',
      Math.max(0, (w.newest.mtimeMs - b.oldestStartMs) / 1000));
  }

  const d = f.drills;
  p.gauge('pgark_drills', 'Drill reports stored in the repository.', d.count);
  if (d.last) {
    const l = d.last;
    const atMs = drillTimeMs(l);
    p.gauge('pgark_drill_last_passed', 'Result of the newest drill: 1 passed, 0 failed (absent when its report does not say).', l.result === undefined ? undefined : bool(l.result === 'passed'));
    p.gauge('pgark_drill_last_timestamp_seconds', 'Unix time the newest drill ended (its start, from its id, when the report does not say).', seconds(atMs));
    p.gauge('pgark_drill_last_age_seconds', 'Seconds since the newest drill ended.', age(atMs, nowMs));
    p.gauge('pgark_drill_last_rto_seconds', 'Recovery time of the newest drill: restore + replay + promote, wall time.', l.rtoSec);
    p.gauge('pgark_drill_last_phase_seconds', 'Wall time of each phase of the newest drill.', [
      { labels: { phase: 'restore' }, value: l.phases.restoreSec },
      { labels: { phase: 'replay' }, value: l.phases.replaySec },
      { labels: { phase: 'promote' }, value: l.phases.promoteSec },
      { labels: { phase: 'checks' }, value: l.phases.checksSec },
    ]);
    p.gauge('pgark_drill_last_rpo_seconds', 'Data the newest drill could not recover: newest archived commit minus the last replayed commit, in seconds.', l.rpo.seconds);
    p.gauge('pgark_drill_last_failed_checks', 'Checks that failed in the newest drill.', l.checks?.failed);
  }
  p.gauge('pgark_drill_last_passed_timestamp_seconds', 'Unix time the newest drill that passed ended.', seconds(d.lastPassedMs));
  p.gauge('pgark_drill_last_passed_age_seconds', 'Seconds since the newest drill that passed ended.', age(d.lastPassedMs, nowMs));

  const bl = f.backlog ?? [];
  p.gauge('pgark_repo_backlog_files', 'WAL files an async further repository (repoN-mode=async) still lacks: its backlog, kept in repo.', bl.map((b) => ({ labels: { repo: b.repo }, value: b.files })));
  p.gauge('pgark_repo_backlog_oldest_age_seconds', 'Seconds since the oldest file of an async repository\'s backlog was recorded (absent when the backlog is empty).',
    bl.map((b) => ({ labels: { repo: b.repo }, value: b.files > 0 ? age(b.oldestMs, nowMs) : undefined })));
  return p.text();
}

/** pg_stat_archiver as seen over the connection (only when one is configured). */
export function archiverMetricsText(stanza: string, a: ArchiverFacts | undefined, nowMs: number): string {
  if (!a) return '';
  const p = new PromText({ stanza });
  p.counter('pgark_archiver_archived_total', 'WAL files the server archived successfully (pg_stat_archiver.archived_count).', a.archivedCount);
  p.counter('pgark_archiver_failed_total', 'Failed archive_command calls (pg_stat_archiver.failed_count).', a.failedCount);
  p.gauge('pgark_archiver_last_archived_timestamp_seconds', 'Unix time of the last successful archive_command (pg_stat_archiver.last_archived_time).', seconds(a.lastArchivedMs));
  p.gauge('pgark_archiver_last_archived_age_seconds', 'Seconds since the last successful archive_command.', age(a.lastArchivedMs, nowMs));
  p.gauge('pgark_archiver_last_failed_timestamp_seconds', 'Unix time of the last failed archive_command.', seconds(a.lastFailedMs));
  p.gauge('pgark_archiver_last_failed_age_seconds', 'Seconds since the last failed archive_command.', age(a.lastFailedMs, nowMs));
  p.gauge('pgark_archiver_failing', '1 when the last archive_command call failed (last failure newer than last success).',
    a.lastFailedMs === undefined ? 0 : bool(a.lastArchivedMs === undefined || a.lastFailedMs > a.lastArchivedMs));
  p.gauge('pgark_archiver_pending_segments', 'Completed WAL segments not archived yet: between the last archived segment and the one being written.', a.pendingSegments);
  p.gauge('pgark_server_in_recovery', '1 when the server is a standby (in recovery).', bool(a.inRecovery));
  return p.text();
}

export type MetricsSource = 'repository' | 'postgres';

/** Health of one source of facts, as the collector keeps it. */
export interface SourceHealth {
  /** When the facts now served were collected (last successful collection). */
  okAtMs?: number;
  /** Duration of the last completed or abandoned attempt. */
  lastDurationSec?: number;
  errors: number;
  /** The last attempt failed (its facts, if any, are older). */
  failing: boolean;
}

/** The collector's own health, per source. */
export function collectorMetricsText(stanza: string, sources: Partial<Record<MetricsSource, SourceHealth>>): string {
  const p = new PromText({ stanza });
  const entries = (Object.entries(sources) as Array<[MetricsSource, SourceHealth | undefined]>).filter((e): e is [MetricsSource, SourceHealth] => e[1] !== undefined);
  const each = (f: (h: SourceHealth) => number | undefined) => entries.map(([source, h]) => ({ labels: { source }, value: f(h) }));
  p.gauge('pgark_metrics_up', '1 when the last collection from this source succeeded.', each((h) => bool(!h.failing && h.okAtMs !== undefined)));
  p.gauge('pgark_metrics_last_collect_timestamp_seconds', 'Unix time of the last successful collection from this source: the values served are that old.', each((h) => seconds(h.okAtMs)));
  p.gauge('pgark_metrics_collect_duration_seconds', 'Duration of the last collection from this source.', each((h) => h.lastDurationSec));
  p.counter('pgark_metrics_collect_errors_total', 'Collections from this source that failed or timed out (the previous values stay).', each((h) => h.errors));
  return p.text();
}
