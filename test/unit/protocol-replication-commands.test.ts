/**
 * Replication command text, identifier quoting, slot names and LSN text
 * (src/protocol/replication-commands.ts).
 */
import { describe, expect, it } from 'vitest';
import { ProtocolError } from '../../src/common/errors.js';
import {
  createPhysicalSlotCommand,
  formatLsnText,
  isValidSlotName,
  parseLsnText,
  quoteIdent,
  readReplicationSlotCommand,
  startReplicationCommand,
  timelineHistoryCommand,
} from '../../src/protocol/replication-commands.js';

describe('quoteIdent', () => {
  it.each([
    ['pgark', '"pgark"'],
    ['Mixed Case', '"Mixed Case"'],
    ['a"b', '"a""b"'],
    ['""', '""""""'],
    ['é', '"é"'],
  ])('%s -> %s', (name, quoted) => {
    expect(quoteIdent(name)).toBe(quoted);
  });

  it.each([['a\0b'], ['']])('rejects %j', (name) => {
    expect(() => quoteIdent(name)).toThrow(ProtocolError);
  });
});

describe('isValidSlotName', () => {
  it.each([
    ['pgark', true],
    ['pgark_1', true],
    ['_', true],
    ['0', true],
    ['a'.repeat(63), true],
    ['a'.repeat(64), false],
    ['', false],
    ['Pgark', false],
    ['pg-ark', false],
    ['pg ark', false],
    ['a"b', false],
    ['é', false],
    ['slot\n', false],
  ])('%j -> %s', (name, ok) => {
    expect(isValidSlotName(name)).toBe(ok);
  });
});

describe('startReplicationCommand', () => {
  it.each([
    [{ lsn: 0x16_b374d848n }, 'START_REPLICATION PHYSICAL 16/B374D848'],
    [{ lsn: 0n }, 'START_REPLICATION PHYSICAL 0/0'],
    [{ lsn: 0x1234n, slot: 'pgark' }, 'START_REPLICATION SLOT "pgark" PHYSICAL 0/1234'],
    [{ lsn: 0x3_00000000n, timeline: 2 }, 'START_REPLICATION PHYSICAL 3/0 TIMELINE 2'],
    [
      { lsn: 0xffffffff_ffffffffn, slot: 'a_1', timeline: 0xffffffff },
      'START_REPLICATION SLOT "a_1" PHYSICAL FFFFFFFF/FFFFFFFF TIMELINE 4294967295',
    ],
  ])('%# -> %s', (o, text) => {
    expect(startReplicationCommand(o)).toBe(text);
  });

  it.each([
    [{ lsn: -1n }],
    [{ lsn: 1n << 64n }],
    [{ lsn: 0n, timeline: 0 }],
    [{ lsn: 0n, timeline: 1.5 }],
    [{ lsn: 0n, timeline: 2 ** 32 }],
    [{ lsn: 0n, slot: 'Bad' }],
    [{ lsn: 0n, slot: '' }],
    [{ lsn: 0n, slot: 'x" PHYSICAL 0/0 --' }],
  ])('rejects case %#', (o) => {
    expect(() => startReplicationCommand(o)).toThrow(ProtocolError);
  });
});

describe('other commands', () => {
  it.each([
    [() => timelineHistoryCommand(1), 'TIMELINE_HISTORY 1'],
    [() => timelineHistoryCommand(0x1f), 'TIMELINE_HISTORY 31'],
    [() => createPhysicalSlotCommand('pgark_slot'), 'CREATE_REPLICATION_SLOT "pgark_slot" PHYSICAL RESERVE_WAL'],
    [() => readReplicationSlotCommand('pgark_slot'), 'READ_REPLICATION_SLOT "pgark_slot"'],
  ])('%#: %s', (build, text) => {
    expect(build()).toBe(text);
  });

  it('rejects bad arguments', () => {
    expect(() => timelineHistoryCommand(0)).toThrow(ProtocolError);
    expect(() => timelineHistoryCommand(-3)).toThrow(ProtocolError);
    expect(() => createPhysicalSlotCommand('no-dash')).toThrow(ProtocolError);
    expect(() => readReplicationSlotCommand('a'.repeat(64))).toThrow(ProtocolError);
  });
});

describe('LSN text', () => {
  it.each([
    [0x16_b374d848n, '16/B374D848'],
    [0n, '0/0'],
    [0xa_0000000an, 'A/A'],
    [0xffffffff_ffffffffn, 'FFFFFFFF/FFFFFFFF'],
  ])('formats %s as %s and parses it back', (lsn, text) => {
    expect(formatLsnText(lsn)).toBe(text);
    expect(parseLsnText(text)).toBe(lsn);
  });

  it.each([
    ['16/b374d848', 0x16_b374d848n],
    ['00000016/0000000A', 0x16_0000000an],
  ])('parses %s', (text, lsn) => {
    expect(parseLsnText(text)).toBe(lsn);
  });

  it.each([[''], ['16'], ['16/'], ['/1'], ['1/2/3'], ['G/0'], ['123456789/0'], [' 1/2'], ['1/2 '], ['0x1/2']])(
    'rejects %j',
    (text) => {
      expect(() => parseLsnText(text)).toThrow(ProtocolError);
      expect(() => parseLsnText(text)).toThrow(/^unable to parse LSN: /);
    },
  );

  it('rejects out-of-range LSNs when formatting', () => {
    expect(() => formatLsnText(-1n)).toThrow(ProtocolError);
    expect(() => formatLsnText(1n << 64n)).toThrow(ProtocolError);
  });
});
