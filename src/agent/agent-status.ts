/**
 * The archive agent's state as others see it (pure): the status file `pg_wal/.pgark/agent/status.json`
 * that `pgark info` reads, the Prometheus text of `--metrics-port`, and the backlog warning rule.
 */

export interface AgentStatus {
  pid: number;
  stanza: string;
  repo: string;
  startedAt: string;
  updatedAt: string;
  /** Segments PostgreSQL marked ready that the agent has not stored yet (in flight included). */
  queue: number;
  inFlight: number;
  /** Age of the oldest `.ready` file, seconds (0 when none). */
  oldestReadyAgeSec: number;
  /** The oldest ready segment, if any. */
  oldestReady?: string | undefined;
  pushed: number;
  /** Segments found already archived (identical) by the agent. */
  alreadyArchived: number;
  bytes: number;
  errors: number;
  lastError?: { at: string; segment: string; message: string } | undefined;
  lastPushAt?: string | undefined;
  /** Segments stored per minute over the last minute. */
  perMinute: number;
}

export interface BacklogThresholds {
  segments: number;
  ageSec: number;
}

/** The warning to log for this state, or undefined when the backlog is within bounds. */
export function backlogWarning(s: Pick<AgentStatus, 'queue' | 'oldestReadyAgeSec' | 'oldestReady' | 'errors' | 'lastError'>, t: BacklogThresholds): string | undefined {
  const over: string[] = [];
  if (s.queue >= t.segments) over.push(`${s.queue} segments waiting (threshold ${t.segments})`);
  if (s.oldestReadyAgeSec >= t.ageSec) over.push(`oldest ready segment ${s.oldestReady ?? '?'} waiting ${Math.round(s.oldestReadyAgeSec)} s (threshold ${t.ageSec} s)`);
  if (over.length === 0) return undefined;
  const err = s.lastError ? `; last error on ${s.lastError.segment}: ${s.lastError.message}` : '';
  return `archive backlog: ${over.join(', ')}; pg_wal keeps growing until it is archived${err}`;
}

/** Segments per minute from the completion times (ms) of the last minute. */
export function ratePerMinute(completions: readonly number[], now: number): number {
  return completions.filter((t) => now - t <= 60_000).length;
}

function esc(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** Prometheus text exposition (version 0.0.4) of the agent's state. */
export function prometheusText(s: AgentStatus, nowMs: number): string {
  const labels = `stanza="${esc(s.stanza)}"`;
  const lines: string[] = [];
  const metric = (name: string, type: 'gauge' | 'counter', help: string, value: number): void => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, `${name}{${labels}} ${Number.isFinite(value) ? value : 0}`);
  };
  metric('pgark_agent_up', 'gauge', 'The archive agent is running.', 1);
  metric('pgark_agent_queue_segments', 'gauge', 'WAL segments marked ready by PostgreSQL and not yet stored by the agent.', s.queue);
  metric('pgark_agent_in_flight_segments', 'gauge', 'WAL segments being stored right now.', s.inFlight);
  metric('pgark_agent_oldest_ready_age_seconds', 'gauge', 'Age of the oldest .ready file in pg_wal/archive_status.', s.oldestReadyAgeSec);
  metric('pgark_agent_pushed_segments_total', 'counter', 'WAL segments stored by the agent.', s.pushed);
  metric('pgark_agent_already_archived_segments_total', 'counter', 'WAL segments the agent found archived already (identical content).', s.alreadyArchived);
  metric('pgark_agent_pushed_bytes_total', 'counter', 'Bytes of WAL stored by the agent (before compression).', s.bytes);
  metric('pgark_agent_errors_total', 'counter', 'Failed attempts to store a segment (each is retried; PostgreSQL falls back to the full wal-push).', s.errors);
  metric('pgark_agent_segments_per_minute', 'gauge', 'Segments stored over the last minute.', s.perMinute);
  metric('pgark_agent_last_push_timestamp_seconds', 'gauge', 'Unix time of the last stored segment (0 if none yet).', s.lastPushAt ? Date.parse(s.lastPushAt) / 1000 : 0);
  metric('pgark_agent_status_age_seconds', 'gauge', 'Seconds since the agent last refreshed its state.', (nowMs - Date.parse(s.updatedAt)) / 1000);
  return lines.join('\n') + '\n';
}
