/**
 * CopyData payloads of physical streaming replication (PostgreSQL docs,
 * "Streaming Replication Protocol"), all integers big-endian:
 *   XLogData 'w'            walStart i64, walEnd i64, sendTime i64, WAL bytes   (25-byte header)
 *   Primary keepalive 'k'   walEnd i64, sendTime i64, replyRequested byte        (18 bytes)
 *   Standby status 'r'      write i64, flush i64, apply i64, clock i64, reply byte (34 bytes)
 *   Hot standby feedback 'h' clock i64, xmin i32, xmin epoch i32,
 *                            catalog_xmin i32, catalog_xmin epoch i32            (25 bytes)
 * LSNs are unsigned 64-bit; times are signed microseconds since 2000-01-01 UTC.
 * Pure, no I/O; malformed payloads throw ProtocolError.
 */
import { ProtocolError } from '../common/errors.js';

/** 2000-01-01T00:00:00Z in Unix milliseconds. */
export const PG_EPOCH_MS = 946684800000;

const XLOGDATA_HEADER = 25;
const KEEPALIVE_SIZE = 18;
const STANDBY_STATUS_SIZE = 34;
const HOT_STANDBY_FEEDBACK_SIZE = 25;
const MAX_U64 = (1n << 64n) - 1n;
const MIN_I64 = -(1n << 63n);
const MAX_I64 = (1n << 63n) - 1n;

/** PostgreSQL timestamp (µs since 2000-01-01) to Unix ms, rounded down. */
export function pgTimeToMs(us: bigint): number {
  let ms = us / 1000n;
  if (us % 1000n < 0n) ms -= 1n;
  return Number(ms) + PG_EPOCH_MS;
}

/** Unix ms (may be fractional) to a PostgreSQL timestamp in µs. */
export function msToPgTime(ms: number): bigint {
  if (!Number.isFinite(ms)) throw new ProtocolError(`unable to encode time: ${String(ms)} is not a finite number`);
  return BigInt(Math.round((ms - PG_EPOCH_MS) * 1000));
}

export type ReplicationMessage =
  | { kind: 'xlogdata'; walStart: bigint; walEnd: bigint; sendTime: bigint; data: Buffer }
  | { kind: 'keepalive'; walEnd: bigint; sendTime: bigint; replyRequested: boolean };

function typeName(b: number | undefined): string {
  if (b === undefined) return 'none';
  const ch = b >= 0x20 && b < 0x7f ? ` '${String.fromCharCode(b)}'` : '';
  return `0x${b.toString(16).padStart(2, '0')}${ch}`;
}

function checkSize(payload: Buffer, size: number, what: string, exact: boolean): void {
  const ok = exact ? payload.length === size : payload.length >= size;
  if (!ok) {
    throw new ProtocolError(
      `unable to parse ${what}: ${payload.length} bytes, expected ${exact ? '' : 'at least '}${size}`,
    );
  }
}

/** Parse a CopyData payload from the server: XLogData (data is a view, not a copy) or keepalive. */
export function parseReplicationMessage(payload: Buffer): ReplicationMessage {
  const type = payload[0];
  if (type === 0x77 /* w */) {
    checkSize(payload, XLOGDATA_HEADER, 'XLogData message', false);
    return {
      kind: 'xlogdata',
      walStart: payload.readBigUInt64BE(1),
      walEnd: payload.readBigUInt64BE(9),
      sendTime: payload.readBigInt64BE(17),
      data: payload.subarray(XLOGDATA_HEADER),
    };
  }
  if (type === 0x6b /* k */) {
    checkSize(payload, KEEPALIVE_SIZE, 'keepalive message', true);
    return {
      kind: 'keepalive',
      walEnd: payload.readBigUInt64BE(1),
      sendTime: payload.readBigInt64BE(9),
      replyRequested: payload[17] !== 0,
    };
  }
  throw new ProtocolError(
    `unable to parse replication message: unknown message type ${typeName(type)} (${payload.length} bytes)`,
  );
}

function checkU64(v: bigint, field: string, what: string): bigint {
  if (v < 0n || v > MAX_U64) throw new ProtocolError(`unable to encode ${what}: ${field} ${v} is out of range`);
  return v;
}

function checkI64(v: bigint, field: string, what: string): bigint {
  if (v < MIN_I64 || v > MAX_I64) throw new ProtocolError(`unable to encode ${what}: ${field} ${v} is out of range`);
  return v;
}

function checkU32(v: number, field: string, what: string): number {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) {
    throw new ProtocolError(`unable to encode ${what}: ${field} ${String(v)} is out of range`);
  }
  return v;
}

export function encodeXLogData(m: { walStart: bigint; walEnd: bigint; sendTime: bigint; data: Buffer }): Buffer {
  const what = 'XLogData message';
  const out = Buffer.allocUnsafe(XLOGDATA_HEADER + m.data.length);
  out[0] = 0x77;
  out.writeBigUInt64BE(checkU64(m.walStart, 'walStart', what), 1);
  out.writeBigUInt64BE(checkU64(m.walEnd, 'walEnd', what), 9);
  out.writeBigInt64BE(checkI64(m.sendTime, 'sendTime', what), 17);
  m.data.copy(out, XLOGDATA_HEADER);
  return out;
}

export function encodeKeepalive(m: { walEnd: bigint; sendTime: bigint; replyRequested: boolean }): Buffer {
  const what = 'keepalive message';
  const out = Buffer.allocUnsafe(KEEPALIVE_SIZE);
  out[0] = 0x6b;
  out.writeBigUInt64BE(checkU64(m.walEnd, 'walEnd', what), 1);
  out.writeBigInt64BE(checkI64(m.sendTime, 'sendTime', what), 9);
  out[17] = m.replyRequested ? 1 : 0;
  return out;
}

export interface StandbyStatus {
  write: bigint;
  flush: bigint;
  apply: bigint;
  /** Client clock, µs since 2000-01-01. */
  clock: bigint;
  replyRequested: boolean;
}

export function encodeStandbyStatus(s: StandbyStatus): Buffer {
  const what = 'standby status update';
  const out = Buffer.allocUnsafe(STANDBY_STATUS_SIZE);
  out[0] = 0x72;
  out.writeBigUInt64BE(checkU64(s.write, 'write', what), 1);
  out.writeBigUInt64BE(checkU64(s.flush, 'flush', what), 9);
  out.writeBigUInt64BE(checkU64(s.apply, 'apply', what), 17);
  out.writeBigInt64BE(checkI64(s.clock, 'clock', what), 25);
  out[33] = s.replyRequested ? 1 : 0;
  return out;
}

export function parseStandbyStatus(payload: Buffer): StandbyStatus {
  const what = 'standby status update';
  if (payload[0] !== 0x72) throw new ProtocolError(`unable to parse ${what}: message type ${typeName(payload[0])} is not 'r'`);
  checkSize(payload, STANDBY_STATUS_SIZE, what, true);
  return {
    write: payload.readBigUInt64BE(1),
    flush: payload.readBigUInt64BE(9),
    apply: payload.readBigUInt64BE(17),
    clock: payload.readBigInt64BE(25),
    replyRequested: payload[33] !== 0,
  };
}

export interface HotStandbyFeedback {
  /** Client clock, µs since 2000-01-01. */
  clock: bigint;
  xmin: number;
  xminEpoch: number;
  catalogXmin: number;
  catalogXminEpoch: number;
}

export function encodeHotStandbyFeedback(f: HotStandbyFeedback): Buffer {
  const what = 'hot standby feedback message';
  const out = Buffer.allocUnsafe(HOT_STANDBY_FEEDBACK_SIZE);
  out[0] = 0x68;
  out.writeBigInt64BE(checkI64(f.clock, 'clock', what), 1);
  out.writeUInt32BE(checkU32(f.xmin, 'xmin', what), 9);
  out.writeUInt32BE(checkU32(f.xminEpoch, 'xminEpoch', what), 13);
  out.writeUInt32BE(checkU32(f.catalogXmin, 'catalogXmin', what), 17);
  out.writeUInt32BE(checkU32(f.catalogXminEpoch, 'catalogXminEpoch', what), 21);
  return out;
}

export function parseHotStandbyFeedback(payload: Buffer): HotStandbyFeedback {
  const what = 'hot standby feedback message';
  if (payload[0] !== 0x68) throw new ProtocolError(`unable to parse ${what}: message type ${typeName(payload[0])} is not 'h'`);
  checkSize(payload, HOT_STANDBY_FEEDBACK_SIZE, what, true);
  return {
    clock: payload.readBigInt64BE(1),
    xmin: payload.readUInt32BE(9),
    xminEpoch: payload.readUInt32BE(13),
    catalogXmin: payload.readUInt32BE(17),
    catalogXminEpoch: payload.readUInt32BE(21),
  };
}
