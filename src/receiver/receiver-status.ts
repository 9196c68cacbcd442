/**
 * What a receiver reports (pure): its state, positions, lag, slot, counters; the lag
 * computation; and the Prometheus text for --metrics-port. The same JSON is stored in the
 * repository under <stanza>/receiver/<name>.json for `pgark info`.
 */
export interface ReceiverStatus {
  name: string;
  host: string;
  pid: number;
  state: 'connecting' | 'streaming' | 'retrying' | 'stopped' | 'failed';
  synchronous: boolean;
  startedAt: string;
  updatedAt: string;
  server?: { where: string; systemIdentifier: string; timeline: number; version?: number };
  slot?: { name: string; restartLsn?: string | undefined; restartTimeline?: number | undefined; active: boolean };
  timeline?: number;
  segment?: string;
  /** Received (written to the local spool). */
  writeLsn?: string;
  /** Durably stored in the repository: what the receiver reports as flushed. */
  flushLsn?: string;
  /** The server's end of WAL, from its last message. */
  serverWalEnd?: string;
  lagBytes: number;
  lagSeconds: number;
  lastFlushAt?: string;
  lastMessageAt?: string;
  bytesReceived: number;
  piecesStored: number;
  segmentsStored: number;
  reconnects: number;
  lastError?: string;
  lastErrorAt?: string;
}

/**
 * Lag in seconds: how long the oldest WAL the server has reported but the receiver has not yet
 * stored has been waiting. Samples are (server WAL end, when it was reported), oldest first.
 */
export class LagClock {
  private samples: { lsn: bigint; atMs: number }[] = [];

  /** The server reported WAL up to `lsn` at `atMs`. */
  saw(lsn: bigint, atMs: number): void {
    const last = this.samples[this.samples.length - 1];
    if (last && lsn <= last.lsn) return;
    // One sample per 100 ms is enough resolution and bounds the list.
    if (last && atMs - last.atMs < 100 && this.samples.length > 1) {
      last.lsn = lsn;
      return;
    }
    this.samples.push({ lsn, atMs });
    if (this.samples.length > 10_000) this.samples.splice(0, this.samples.length - 10_000);
  }

  /** Everything up to `lsn` is stored. */
  stored(lsn: bigint): void {
    let i = 0;
    while (i < this.samples.length && this.samples[i]!.lsn <= lsn) i++;
    if (i > 0) this.samples.splice(0, i);
  }

  seconds(nowMs: number): number {
    const oldest = this.samples[0];
    return oldest ? Math.max(0, (nowMs - oldest.atMs) / 1000) : 0;
  }
}

function lsnNumber(text: string | undefined): number | undefined {
  if (!text) return undefined;
  const m = /^([0-9A-F]+)\/([0-9A-F]+)$/i.exec(text);
  return m ? Number.parseInt(m[1]!, 16) * 2 ** 32 + Number.parseInt(m[2]!, 16) : undefined;
}

export function receiverPrometheusText(s: ReceiverStatus | undefined): string {
  const lines: string[] = [];
  const metric = (name: string, help: string, type: 'gauge' | 'counter', value: number | undefined, labels = '') => {
    if (value === undefined || !Number.isFinite(value)) return;
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, `${name}${labels} ${value}`);
  };
  metric('pgark_receiver_up', 'The receiver is streaming from the server (1) or not (0).', 'gauge', s?.state === 'streaming' ? 1 : 0);
  if (!s) return lines.join('\n') + '\n';
  const slot = s.slot ? `{slot="${s.slot.name.replace(/["\\\n]/g, '_')}"}` : '';
  metric('pgark_receiver_synchronous', 'Replies after every batch so it can be a synchronous standby.', 'gauge', s.synchronous ? 1 : 0);
  metric('pgark_receiver_timeline', 'Timeline being received.', 'gauge', s.timeline);
  metric('pgark_receiver_write_lsn_bytes', 'Received WAL position (LSN as a number).', 'gauge', lsnNumber(s.writeLsn));
  metric('pgark_receiver_flush_lsn_bytes', 'WAL position durably stored in the repository (LSN as a number).', 'gauge', lsnNumber(s.flushLsn));
  metric('pgark_receiver_server_wal_end_bytes', "The server's end of WAL at its last message (LSN as a number).", 'gauge', lsnNumber(s.serverWalEnd));
  metric('pgark_receiver_lag_bytes', 'WAL the server has that is not yet stored in the repository.', 'gauge', s.lagBytes);
  metric('pgark_receiver_lag_seconds', 'How long the oldest not yet stored WAL has been waiting.', 'gauge', s.lagSeconds);
  metric('pgark_receiver_last_flush_timestamp_seconds', 'When WAL was last stored in the repository.', 'gauge', s.lastFlushAt ? Date.parse(s.lastFlushAt) / 1000 : undefined);
  metric('pgark_receiver_last_message_timestamp_seconds', 'When the server last sent a message.', 'gauge', s.lastMessageAt ? Date.parse(s.lastMessageAt) / 1000 : undefined);
  if (s.slot) {
    metric('pgark_receiver_slot_active', 'The replication slot is in use by this receiver.', 'gauge', s.slot.active ? 1 : 0, slot);
    metric('pgark_receiver_slot_restart_lsn_bytes', "The slot's restart LSN when last read (LSN as a number).", 'gauge', lsnNumber(s.slot.restartLsn), slot);
  }
  metric('pgark_receiver_received_bytes_total', 'WAL bytes received.', 'counter', s.bytesReceived);
  metric('pgark_receiver_pieces_stored_total', 'Pieces of segments stored.', 'counter', s.piecesStored);
  metric('pgark_receiver_segments_stored_total', 'Whole segments stored.', 'counter', s.segmentsStored);
  metric('pgark_receiver_reconnects_total', 'Reconnections after a lost connection.', 'counter', s.reconnects);
  return lines.join('\n') + '\n';
}
