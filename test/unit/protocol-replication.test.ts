/**
 * Streaming replication CopyData payloads (src/protocol/replication.ts),
 * checked against bytes written by hand, plus round trips and rejections.
 */
import { describe, expect, it } from 'vitest';
import { ProtocolError } from '../../src/common/errors.js';
import {
  PG_EPOCH_MS,
  encodeHotStandbyFeedback,
  encodeKeepalive,
  encodeStandbyStatus,
  encodeXLogData,
  msToPgTime,
  parseHotStandbyFeedback,
  parseReplicationMessage,
  parseStandbyStatus,
  pgTimeToMs,
} from '../../src/protocol/replication.js';
import { Bytes } from '../helpers/bytes.js';

const MAX_U64 = (1n << 64n) - 1n;
const walBytes = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 31) & 0xff));

describe('PostgreSQL time', () => {
  it.each([
    [0n, PG_EPOCH_MS],
    [1_000n, PG_EPOCH_MS + 1],
    [1_999n, PG_EPOCH_MS + 1],
    [-1n, PG_EPOCH_MS - 1],
    [-1_000n, PG_EPOCH_MS - 1],
    // 2024-01-01T00:00:00Z
    [757_382_400_000_000n, Date.UTC(2024, 0, 1)],
  ])('pgTimeToMs(%s) = %s', (us, ms) => {
    expect(pgTimeToMs(us)).toBe(ms);
  });

  it('has the right epoch', () => {
    expect(PG_EPOCH_MS).toBe(Date.UTC(2000, 0, 1));
  });

  it.each([
    [PG_EPOCH_MS, 0n],
    [Date.UTC(2024, 0, 1), 757_382_400_000_000n],
    [PG_EPOCH_MS + 1.5, 1_500n],
    [PG_EPOCH_MS - 2, -2_000n],
  ])('msToPgTime(%s) = %s', (ms, us) => {
    expect(msToPgTime(ms)).toBe(us);
  });

  it('round-trips whole milliseconds', () => {
    const now = Date.UTC(2031, 6, 15, 12, 34, 56, 789);
    expect(pgTimeToMs(msToPgTime(now))).toBe(now);
  });

  it('rejects a non-finite time', () => {
    expect(() => msToPgTime(Number.NaN)).toThrow(ProtocolError);
  });
});

describe('parseReplicationMessage', () => {
  it('reads XLogData written by hand, with data as a view of the payload', () => {
    const payload = new Bytes()
      .char('w')
      .int64(0x16_b374d848n)
      .int64(0x17_00000000n)
      .int64(757_382_400_123_456n)
      .raw(walBytes)
      .build();
    expect(payload.length).toBe(25 + 4096);
    const m = parseReplicationMessage(payload);
    expect(m).toEqual({
      kind: 'xlogdata',
      walStart: 0x16_b374d848n,
      walEnd: 0x17_00000000n,
      sendTime: 757_382_400_123_456n,
      data: walBytes,
    });
    if (m.kind !== 'xlogdata') throw new Error('unreachable');
    expect(m.data.buffer).toBe(payload.buffer);
    expect(m.data.byteOffset).toBe(payload.byteOffset + 25);
  });

  it('reads XLogData with no data and LSNs above 2^63', () => {
    const payload = new Bytes().char('w').int64(MAX_U64).int64(1n << 63n).int64(-5n).build();
    expect(parseReplicationMessage(payload)).toEqual({
      kind: 'xlogdata',
      walStart: MAX_U64,
      walEnd: 1n << 63n,
      sendTime: -5n,
      data: Buffer.alloc(0),
    });
  });

  it.each([
    [0, false],
    [1, true],
  ])('reads a keepalive written by hand (reply byte %s)', (reply, replyRequested) => {
    const payload = new Bytes().char('k').int64(0x16_b374e000n).int64(757_382_400_000_001n).int8(reply).build();
    expect(payload.length).toBe(18);
    expect(parseReplicationMessage(payload)).toEqual({
      kind: 'keepalive',
      walEnd: 0x16_b374e000n,
      sendTime: 757_382_400_000_001n,
      replyRequested,
    });
  });

  const keepalive = new Bytes().char('k').int64(1n).int64(2n).int8(0).build();
  const xlogHeader = new Bytes().char('w').int64(1n).int64(2n).int64(3n).build();
  it.each([
    ['an empty payload', Buffer.alloc(0), /unknown message type none/],
    ['an unknown type', new Bytes().char('s').int64(1n).int64(2n).int8(0).build(), /unknown message type 0x73 's'/],
    ['a standby status update', encodeStandbyStatus({ write: 1n, flush: 1n, apply: 1n, clock: 1n, replyRequested: false }), /unknown/],
    ['a short keepalive', keepalive.subarray(0, 17), /keepalive message: 17 bytes, expected 18/],
    ['a long keepalive', Buffer.concat([keepalive, Buffer.from([0])]), /keepalive message: 19 bytes, expected 18/],
    ['a type byte only', Buffer.from('w'), /XLogData message: 1 bytes, expected at least 25/],
    ['a truncated XLogData header', xlogHeader.subarray(0, 24), /XLogData message: 24 bytes, expected at least 25/],
  ])('rejects %s', (_name, payload, message) => {
    expect(() => parseReplicationMessage(payload)).toThrow(ProtocolError);
    expect(() => parseReplicationMessage(payload)).toThrow(message);
  });
});

describe('encodeXLogData / encodeKeepalive', () => {
  it('writes the documented layout', () => {
    const data = Buffer.from([0xde, 0xad, 0xbe, 0xef]);
    expect(encodeXLogData({ walStart: 0x16_b374d848n, walEnd: MAX_U64, sendTime: -1n, data }).toString('hex')).toBe(
      new Bytes().char('w').int64(0x16_b374d848n).int64(MAX_U64).int64(-1n).raw(data).build().toString('hex'),
    );
    expect(encodeKeepalive({ walEnd: 0x10n, sendTime: 0x20n, replyRequested: true }).toString('hex')).toBe(
      new Bytes().char('k').int64(0x10n).int64(0x20n).int8(1).build().toString('hex'),
    );
  });

  it.each([
    { walStart: 0n, walEnd: 0n, sendTime: 0n, data: Buffer.alloc(0) },
    { walStart: 0x16_b374d848n, walEnd: 0x16_b374f848n, sendTime: 757_382_400_123_456n, data: walBytes },
    { walStart: MAX_U64, walEnd: MAX_U64, sendTime: -(1n << 63n), data: Buffer.from([0]) },
  ])('round-trips XLogData %#', (m) => {
    const encoded = encodeXLogData(m);
    expect(encoded.length).toBe(25 + m.data.length);
    expect(parseReplicationMessage(encoded)).toEqual({ kind: 'xlogdata', ...m });
  });

  it.each([
    { walEnd: 0n, sendTime: 0n, replyRequested: false },
    { walEnd: MAX_U64, sendTime: (1n << 63n) - 1n, replyRequested: true },
  ])('round-trips a keepalive %#', (m) => {
    const encoded = encodeKeepalive(m);
    expect(encoded.length).toBe(18);
    expect(parseReplicationMessage(encoded)).toEqual({ kind: 'keepalive', ...m });
  });

  it('rejects out-of-range values', () => {
    expect(() => encodeXLogData({ walStart: -1n, walEnd: 0n, sendTime: 0n, data: Buffer.alloc(0) })).toThrow(ProtocolError);
    expect(() => encodeXLogData({ walStart: 0n, walEnd: MAX_U64 + 1n, sendTime: 0n, data: Buffer.alloc(0) })).toThrow(ProtocolError);
    expect(() => encodeKeepalive({ walEnd: 0n, sendTime: 1n << 63n, replyRequested: false })).toThrow(ProtocolError);
  });
});

describe('standby status update', () => {
  it('writes and reads the documented layout', () => {
    const bytes = new Bytes()
      .char('r')
      .int64(0x16_b374d848n)
      .int64(0x16_b374d000n)
      .int64(0x15_00000000n)
      .int64(757_382_400_654_321n)
      .int8(1)
      .build();
    expect(bytes.length).toBe(34);
    const s = { write: 0x16_b374d848n, flush: 0x16_b374d000n, apply: 0x15_00000000n, clock: 757_382_400_654_321n, replyRequested: true };
    expect(encodeStandbyStatus(s).toString('hex')).toBe(bytes.toString('hex'));
    expect(parseStandbyStatus(bytes)).toEqual(s);
  });

  it.each([
    { write: 0n, flush: 0n, apply: 0n, clock: 0n, replyRequested: false },
    { write: MAX_U64, flush: 1n << 63n, apply: 1n, clock: -1n, replyRequested: true },
  ])('round-trips %#', (s) => {
    const encoded = encodeStandbyStatus(s);
    expect(encoded.length).toBe(34);
    expect(parseStandbyStatus(encoded)).toEqual(s);
  });

  const good = encodeStandbyStatus({ write: 1n, flush: 2n, apply: 3n, clock: 4n, replyRequested: false });
  it.each([
    ['short', good.subarray(0, 33)],
    ['long', Buffer.concat([good, Buffer.alloc(1)])],
    ['wrong type', Buffer.concat([Buffer.from('h'), good.subarray(1)])],
    ['empty', Buffer.alloc(0)],
  ])('rejects %s', (_name, payload) => {
    expect(() => parseStandbyStatus(payload)).toThrow(ProtocolError);
    expect(() => parseStandbyStatus(payload)).toThrow(/^unable to parse standby status update: /);
  });

  it('rejects out-of-range positions', () => {
    expect(() => encodeStandbyStatus({ write: 0n, flush: -1n, apply: 0n, clock: 0n, replyRequested: false })).toThrow(ProtocolError);
  });
});

describe('hot standby feedback', () => {
  it('writes and reads the documented layout', () => {
    const bytes = new Bytes()
      .char('h')
      .int64(757_382_400_000_000n)
      .int32(0xfffffff0)
      .int32(3)
      .int32(1234)
      .int32(0)
      .build();
    expect(bytes.length).toBe(25);
    const f = { clock: 757_382_400_000_000n, xmin: 0xfffffff0, xminEpoch: 3, catalogXmin: 1234, catalogXminEpoch: 0 };
    expect(encodeHotStandbyFeedback(f).toString('hex')).toBe(bytes.toString('hex'));
    expect(parseHotStandbyFeedback(bytes)).toEqual(f);
  });

  it.each([
    { clock: 0n, xmin: 0, xminEpoch: 0, catalogXmin: 0, catalogXminEpoch: 0 },
    { clock: -1n, xmin: 0xffffffff, xminEpoch: 1, catalogXmin: 2, catalogXminEpoch: 0xffffffff },
  ])('round-trips %#', (f) => {
    const encoded = encodeHotStandbyFeedback(f);
    expect(encoded.length).toBe(25);
    expect(parseHotStandbyFeedback(encoded)).toEqual(f);
  });

  const good = encodeHotStandbyFeedback({ clock: 1n, xmin: 2, xminEpoch: 3, catalogXmin: 4, catalogXminEpoch: 5 });
  it.each([
    ['short', good.subarray(0, 24)],
    ['long', Buffer.concat([good, Buffer.alloc(1)])],
    ['wrong type', Buffer.concat([Buffer.from('r'), good.subarray(1)])],
  ])('rejects %s', (_name, payload) => {
    expect(() => parseHotStandbyFeedback(payload)).toThrow(ProtocolError);
  });

  it.each([-1, 2 ** 32, 1.5])('rejects xmin %s', (xmin) => {
    expect(() => encodeHotStandbyFeedback({ clock: 0n, xmin, xminEpoch: 0, catalogXmin: 0, catalogXminEpoch: 0 })).toThrow(ProtocolError);
  });
});
