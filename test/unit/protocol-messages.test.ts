/**
 * Backend framing, frontend message builders and backend body parsers
 * (src/protocol/messages.ts), checked against bytes written by hand.
 */
import { describe, expect, it } from 'vitest';
import { ProtocolError } from '../../src/common/errors.js';
import {
  BackendFramer,
  MSG,
  copyDataMessage,
  copyDoneMessage,
  parseCommandComplete,
  parseDataRow,
  parseErrorFields,
  parseRowDescription,
  queryMessage,
  terminateMessage,
  type BackendMessage,
} from '../../src/protocol/messages.js';
import { Bytes } from '../helpers/bytes.js';

/** A backend message: type byte, int32 length counting itself, body. */
function msg(type: string, body: Buffer = Buffer.alloc(0)): Buffer {
  return new Bytes().char(type).int32(4 + body.length).raw(body).build();
}

const xlogPayload = (() => {
  const data = Buffer.alloc(3000);
  for (let i = 0; i < data.length; i++) data[i] = (i * 7 + 3) & 0xff;
  return new Bytes().char('w').int64(0x16_b374d800n).int64(0x16_b374e000n).int64(700000000000000n).raw(data).build();
})();
const keepalivePayload = new Bytes().char('k').int64(0x16_b374e000n).int64(700000000123456n).int8(1).build();
const errorBody = new Bytes()
  .char('S').cstring('FEHLER')
  .char('V').cstring('ERROR')
  .char('C').cstring('58P01')
  .char('M').cstring('requested WAL segment 000000010000001600000001 has already been removed')
  .char('D').cstring('détail ü')
  .char('H').cstring('use a slot')
  .char('R').cstring('XLogRead')
  .int8(0)
  .build();

const stream: { type: string; body: Buffer }[] = [
  { type: 'W', body: new Bytes().int8(0).int16(0).build() },
  { type: 'd', body: xlogPayload },
  { type: 'd', body: keepalivePayload },
  { type: 'c', body: Buffer.alloc(0) },
  { type: 'N', body: new Bytes().char('S').cstring('NOTICE').char('M').cstring('hello').int8(0).build() },
  { type: 'E', body: errorBody },
  { type: 'C', body: new Bytes().cstring('START_STREAMING').build() },
  { type: 'Z', body: new Bytes().char('I').build() },
];
const streamBytes = Buffer.concat(stream.map((m) => msg(m.type, m.body)));

function summary(messages: BackendMessage[]): { type: string; hex: string }[] {
  return messages.map((m) => ({ type: String.fromCharCode(m.type), hex: m.body.toString('hex') }));
}
const expected = stream.map((m) => ({ type: m.type, hex: m.body.toString('hex') }));

describe('BackendFramer', () => {
  it('splits a whole stream into its messages', () => {
    const f = new BackendFramer();
    expect(summary(f.push(streamBytes))).toEqual(expected);
    expect(f.buffered).toBe(0);
  });

  it('gives the same messages when the stream is split at every byte boundary', () => {
    expect(streamBytes.length).toBeGreaterThan(3000);
    for (let cut = 0; cut <= streamBytes.length; cut++) {
      const f = new BackendFramer();
      const got = [...f.push(streamBytes.subarray(0, cut)), ...f.push(streamBytes.subarray(cut))];
      expect(f.buffered).toBe(0);
      // compare cheaply first, then fully on mismatch for a readable failure
      const same = got.length === stream.length && got.every((m, i) => {
        const e = stream[i];
        return e !== undefined && m.type === e.type.charCodeAt(0) && m.body.equals(e.body);
      });
      if (!same) expect({ cut, messages: summary(got) }).toEqual({ cut, messages: expected });
    }
  });

  it('gives the same messages when fed one byte at a time', () => {
    const f = new BackendFramer();
    const got: BackendMessage[] = [];
    let maxBuffered = 0;
    for (let i = 0; i < streamBytes.length; i++) {
      got.push(...f.push(streamBytes.subarray(i, i + 1)));
      maxBuffered = Math.max(maxBuffered, f.buffered);
    }
    expect(summary(got)).toEqual(expected);
    expect(f.buffered).toBe(0);
    expect(maxBuffered).toBe(5 + xlogPayload.length - 1);
  });

  it('returns views of the chunk for messages inside it and copies only spanning ones', () => {
    const first = msg('d', keepalivePayload);
    const second = msg('C', Buffer.from('SELECT 1\0'));
    const chunk1 = Buffer.alloc(first.length + 3); // not from the shared pool
    first.copy(chunk1);
    second.copy(chunk1, first.length, 0, 3);
    const chunk2 = Buffer.alloc(second.length - 3);
    second.copy(chunk2, 0, 3);

    const f = new BackendFramer();
    const a = f.push(chunk1);
    expect(a).toHaveLength(1);
    expect(a[0]?.body.buffer).toBe(chunk1.buffer);
    expect(a[0]?.body.byteOffset).toBe(chunk1.byteOffset + 5);
    expect(f.buffered).toBe(3);

    const b = f.push(chunk2);
    expect(b).toHaveLength(1);
    expect(b[0]?.body.toString()).toBe('SELECT 1\0');
    expect(b[0]?.body.buffer).not.toBe(chunk1.buffer);
    expect(b[0]?.body.buffer).not.toBe(chunk2.buffer);
    expect(f.buffered).toBe(0);
  });

  it('returns a view of a later chunk once the spanning message before it is done', () => {
    const m1 = msg('Z', Buffer.from('I'));
    const m2 = msg('d', keepalivePayload);
    const chunk2 = Buffer.alloc(m1.length - 2 + m2.length);
    m1.copy(chunk2, 0, 2);
    m2.copy(chunk2, m1.length - 2);
    const f = new BackendFramer();
    expect(f.push(m1.subarray(0, 2))).toEqual([]);
    expect(f.buffered).toBe(2);
    const got = f.push(chunk2);
    expect(summary(got)).toEqual([
      { type: 'Z', hex: '49' },
      { type: 'd', hex: keepalivePayload.toString('hex') },
    ]);
    expect(got[1]?.body.buffer).toBe(chunk2.buffer);
  });

  it.each([
    ['length 3', new Bytes().char('d').int32(3).build()],
    ['length 0', new Bytes().char('Z').int32(0).build()],
    ['negative length', new Bytes().char('d').int32(-1).build()],
  ])('rejects a header with %s', (_name, bytes) => {
    expect(() => new BackendFramer().push(bytes)).toThrow(ProtocolError);
    expect(() => new BackendFramer().push(bytes)).toThrow(/unable to parse message header: length -?\d+ is less than 4/);
  });

  it('rejects a bad length split across chunks', () => {
    const f = new BackendFramer();
    const bytes = new Bytes().char('d').int32(2).build();
    expect(f.push(bytes.subarray(0, 3))).toEqual([]);
    expect(() => f.push(bytes.subarray(3))).toThrow(ProtocolError);
  });

  it('accepts a message of exactly the maximum size and rejects a larger one at its header', () => {
    const ok = new BackendFramer(100);
    expect(ok.push(msg('d', Buffer.alloc(96)))).toHaveLength(1);
    const f = new BackendFramer(100);
    // only the header of the oversize message has arrived
    expect(() => f.push(new Bytes().char('d').int32(101).build())).toThrow(/exceeds the maximum of 100/);
  });

  it('rejects by default a length above 1 GiB + 1 MiB', () => {
    const limit = 1024 * 1024 * 1024 + 1024 * 1024;
    expect(new BackendFramer().push(new Bytes().char('d').int32(limit).build())).toEqual([]);
    expect(() => new BackendFramer().push(new Bytes().char('d').int32(limit + 1).build())).toThrow(ProtocolError);
  });

  it('holds a truncated message without returning it', () => {
    const f = new BackendFramer();
    const whole = msg('d', xlogPayload);
    expect(f.push(whole.subarray(0, whole.length - 1))).toEqual([]);
    expect(f.buffered).toBe(whole.length - 1);
    expect(f.push(Buffer.alloc(0))).toEqual([]);
    expect(summary(f.push(whole.subarray(whole.length - 1)))).toEqual([{ type: 'd', hex: xlogPayload.toString('hex') }]);
  });

  it('rejects a bad maximum size', () => {
    expect(() => new BackendFramer(3)).toThrow(ProtocolError);
    expect(() => new BackendFramer(1.5)).toThrow(ProtocolError);
  });

  it('exposes the message type codes', () => {
    expect(MSG).toEqual({
      CopyData: 0x64, CopyDone: 0x63, CopyBothResponse: 0x57, CopyOutResponse: 0x48, ErrorResponse: 0x45,
      NoticeResponse: 0x4e, RowDescription: 0x54, DataRow: 0x44, CommandComplete: 0x43, ReadyForQuery: 0x5a,
      ParameterStatus: 0x53, EmptyQueryResponse: 0x49,
    });
  });
});

describe('frontend messages', () => {
  it.each([
    ['query', queryMessage('IDENTIFY_SYSTEM'), new Bytes().char('Q').int32(4 + 16).cstring('IDENTIFY_SYSTEM').build()],
    ['query with UTF-8', queryMessage('SELECT \'é\''), new Bytes().char('Q').int32(4 + 12).cstring('SELECT \'é\'').build()],
    ['copy data', copyDataMessage(Buffer.from([1, 2, 3])), new Bytes().char('d').int32(7).int8(1).int8(2).int8(3).build()],
    ['empty copy data', copyDataMessage(Buffer.alloc(0)), new Bytes().char('d').int32(4).build()],
    ['copy done', copyDoneMessage(), new Bytes().char('c').int32(4).build()],
    ['terminate', terminateMessage(), new Bytes().char('X').int32(4).build()],
  ])('%s', (_name, got, want) => {
    expect(got.toString('hex')).toBe(want.toString('hex'));
  });

  it('rejects a query containing NUL', () => {
    expect(() => queryMessage('SELECT 1\0; DROP')).toThrow(ProtocolError);
  });

  it('round-trips through the framer', () => {
    const f = new BackendFramer();
    const got = f.push(Buffer.concat([queryMessage('SELECT 1'), copyDataMessage(keepalivePayload), copyDoneMessage()]));
    expect(summary(got)).toEqual([
      { type: 'Q', hex: Buffer.from('SELECT 1\0').toString('hex') },
      { type: 'd', hex: keepalivePayload.toString('hex') },
      { type: 'c', hex: '' },
    ]);
  });
});

describe('parseErrorFields', () => {
  it('reads every field, preferring the nonlocalized severity', () => {
    expect(parseErrorFields(errorBody)).toEqual({
      severity: 'ERROR',
      code: '58P01',
      message: 'requested WAL segment 000000010000001600000001 has already been removed',
      detail: 'détail ü',
      hint: 'use a slot',
      fields: {
        S: 'FEHLER', V: 'ERROR', C: '58P01',
        M: 'requested WAL segment 000000010000001600000001 has already been removed',
        D: 'détail ü', H: 'use a slot', R: 'XLogRead',
      },
    });
  });

  it('falls back to S and leaves detail and hint out when absent', () => {
    const body = new Bytes().char('S').cstring('WARNING').char('C').cstring('01000').char('M').cstring('w').int8(0).build();
    const e = parseErrorFields(body);
    expect(e).toEqual({ severity: 'WARNING', code: '01000', message: 'w', fields: { S: 'WARNING', C: '01000', M: 'w' } });
    expect('detail' in e).toBe(false);
  });

  it.each([
    ['empty body', Buffer.alloc(0)],
    ['no terminator', new Bytes().char('S').cstring('ERROR').build()],
    ['unterminated value', new Bytes().char('S').raw('ERROR').build()],
    ['bytes after terminator', new Bytes().char('S').cstring('ERROR').int8(0).int8(0).build()],
  ])('rejects %s', (_name, body) => {
    expect(() => parseErrorFields(body)).toThrow(ProtocolError);
    expect(() => parseErrorFields(body)).toThrow(/^unable to parse error fields: /);
  });
});

function rowDescription(fields: { name: string; typeOid: number }[]): Buffer {
  const b = new Bytes().int16(fields.length);
  for (const f of fields) b.cstring(f.name).int32(0).int16(0).int32(f.typeOid).int16(-1).int32(-1).int16(0);
  return b.build();
}

describe('parseRowDescription', () => {
  it('reads names and type OIDs (IDENTIFY_SYSTEM)', () => {
    const fields = [
      { name: 'systemid', typeOid: 25 },
      { name: 'timeline', typeOid: 23 },
      { name: 'xlogpos', typeOid: 25 },
      { name: 'dbname', typeOid: 25 },
    ];
    expect(parseRowDescription(rowDescription(fields))).toEqual(fields);
  });

  it('reads a type OID above 2^31 as unsigned', () => {
    const body = new Bytes().int16(1).cstring('x').int32(16384).int16(1).int32(-5).int16(4).int32(-1).int16(0).build();
    expect(parseRowDescription(body)).toEqual([{ name: 'x', typeOid: 0xfffffffb }]);
  });

  it('reads zero fields', () => {
    expect(parseRowDescription(new Bytes().int16(0).build())).toEqual([]);
  });

  it.each([
    ['truncated field', rowDescription([{ name: 'a', typeOid: 25 }]).subarray(0, 10)],
    ['missing field', new Bytes().int16(2).raw(rowDescription([{ name: 'a', typeOid: 25 }]).subarray(2)).build()],
    ['trailing bytes', new Bytes().raw(rowDescription([{ name: 'a', typeOid: 25 }])).int8(0).build()],
    ['negative count', new Bytes().int16(-1).build()],
    ['empty body', Buffer.alloc(0)],
  ])('rejects %s', (_name, body) => {
    expect(() => parseRowDescription(body)).toThrow(ProtocolError);
  });
});

describe('parseDataRow', () => {
  it('reads text values and NULLs', () => {
    const body = new Bytes()
      .int16(4)
      .int32(19).raw('7311453519999999999')
      .int32(1).raw('1')
      .int32(-1)
      .int32(5).raw('ü/é') // 5 bytes of UTF-8
      .build();
    expect(parseDataRow(body)).toEqual(['7311453519999999999', '1', null, 'ü/é']);
  });

  it('reads an empty string and an empty row', () => {
    expect(parseDataRow(new Bytes().int16(1).int32(0).build())).toEqual(['']);
    expect(parseDataRow(new Bytes().int16(0).build())).toEqual([]);
  });

  it.each([
    ['value past the end', new Bytes().int16(1).int32(10).raw('abc').build()],
    ['missing column', new Bytes().int16(2).int32(1).raw('a').build()],
    ['length -2', new Bytes().int16(1).int32(-2).build()],
    ['trailing bytes', new Bytes().int16(1).int32(1).raw('ab').build()],
    ['truncated length', new Bytes().int16(1).int16(0).build()],
  ])('rejects %s', (_name, body) => {
    expect(() => parseDataRow(body)).toThrow(ProtocolError);
    expect(() => parseDataRow(body)).toThrow(/^unable to parse DataRow: /);
  });
});

describe('parseCommandComplete', () => {
  it('reads the tag', () => {
    expect(parseCommandComplete(new Bytes().cstring('SELECT 1').build())).toBe('SELECT 1');
    expect(parseCommandComplete(new Bytes().cstring('').build())).toBe('');
  });

  it.each([
    ['no NUL', new Bytes().raw('SELECT 1').build()],
    ['bytes after NUL', new Bytes().cstring('SELECT 1').raw('x').build()],
    ['empty body', Buffer.alloc(0)],
  ])('rejects %s', (_name, body) => {
    expect(() => parseCommandComplete(body)).toThrow(ProtocolError);
  });
});
