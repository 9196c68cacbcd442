/**
 * Text of the walsender commands a physical replication client sends
 * (START_REPLICATION, TIMELINE_HISTORY, CREATE_REPLICATION_SLOT,
 * READ_REPLICATION_SLOT), identifier quoting, slot-name rules and LSN text.
 * Pure, no I/O; bad arguments and bad LSN text throw ProtocolError.
 */
import { ProtocolError, causeText } from '../common/errors.js';
import { escapeForMessage, formatLsn, parseLsn } from '../wal/segment-name.js';

/** Double-quoted identifier with embedded quotes doubled; NUL and empty names are rejected. */
export function quoteIdent(name: string): string {
  if (name.length === 0) throw new ProtocolError('unable to quote identifier: the name is empty');
  if (name.includes('\0')) {
    throw new ProtocolError(`unable to quote identifier '${escapeForMessage(name)}': the name contains a NUL character`);
  }
  return `"${name.replace(/"/g, '""')}"`;
}

const SLOT_NAME_RE = /^[a-z0-9_]{1,63}$/;

/** PostgreSQL's rule for replication slot names: 1-63 of lowercase letters, digits and underscores. */
export function isValidSlotName(name: string): boolean {
  return SLOT_NAME_RE.test(name);
}

function slotIdent(slot: string, what: string): string {
  if (!isValidSlotName(slot)) {
    throw new ProtocolError(
      `unable to build ${what}: invalid replication slot name '${escapeForMessage(slot)}' (expected 1-63 characters of a-z, 0-9 and _)`,
    );
  }
  return quoteIdent(slot);
}

function checkTimeline(timeline: number, what: string): number {
  if (!Number.isInteger(timeline) || timeline < 1 || timeline > 0xffffffff) {
    throw new ProtocolError(`unable to build ${what}: invalid timeline ${String(timeline)} (expected 1..4294967295)`);
  }
  return timeline;
}

/** `START_REPLICATION [SLOT "x"] PHYSICAL 16/B374D848 [TIMELINE n]` */
export function startReplicationCommand(o: { slot?: string; lsn: bigint; timeline?: number }): string {
  const what = 'START_REPLICATION command';
  const parts = ['START_REPLICATION'];
  if (o.slot !== undefined) parts.push('SLOT', slotIdent(o.slot, what));
  parts.push('PHYSICAL', formatLsnText(o.lsn));
  if (o.timeline !== undefined) parts.push('TIMELINE', String(checkTimeline(o.timeline, what)));
  return parts.join(' ');
}

/** `TIMELINE_HISTORY n` */
export function timelineHistoryCommand(timeline: number): string {
  return `TIMELINE_HISTORY ${checkTimeline(timeline, 'TIMELINE_HISTORY command')}`;
}

/** `CREATE_REPLICATION_SLOT "x" PHYSICAL RESERVE_WAL` (the pre-15 syntax, still accepted by 15+). */
export function createPhysicalSlotCommand(slot: string): string {
  return `CREATE_REPLICATION_SLOT ${slotIdent(slot, 'CREATE_REPLICATION_SLOT command')} PHYSICAL RESERVE_WAL`;
}

/** `READ_REPLICATION_SLOT "x"` (PostgreSQL 15+). */
export function readReplicationSlotCommand(slot: string): string {
  return `READ_REPLICATION_SLOT ${slotIdent(slot, 'READ_REPLICATION_SLOT command')}`;
}

/** `%X/%X`, uppercase, no padding: "16/B374D848". */
export function formatLsnText(lsn: bigint): string {
  try {
    return formatLsn(lsn);
  } catch (err) {
    throw new ProtocolError(`unable to format LSN: ${causeText(err)}`, { cause: err });
  }
}

/** Parse `X/X` (1-8 hex digits each side, any case) as the server sends it. */
export function parseLsnText(text: string): bigint {
  try {
    return parseLsn(text);
  } catch (err) {
    throw new ProtocolError(`unable to parse LSN: ${causeText(err)}`, { cause: err });
  }
}
