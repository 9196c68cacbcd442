import { describe, expect, it } from 'vitest';
import { PgoutputPlugin } from 'pg-logical-replication';
import { parseRowMessage, wrapPgoutputParse } from '../../src/logical/pgoutput-rows.js';
import type { Rel } from '../../src/logical/pgoutput-apply.js';

// pgoutput protocol 1 bytes, as src/backend/replication/logical/proto.c writes them
const u8 = (v: number) => Buffer.from([v]);
const i16 = (v: number) => { const b = Buffer.alloc(2); b.writeInt16BE(v); return b; };
const i32 = (v: number) => { const b = Buffer.alloc(4); b.writeInt32BE(v); return b; };
const cstr = (s: string) => Buffer.concat([Buffer.from(s), u8(0)]);
type Col = string | null | 'u';
const tuple = (vals: Col[]) => Buffer.concat([i16(vals.length), ...vals.map((v) =>
  v === null ? u8(0x6e) : v === 'u' ? u8(0x75) : Buffer.concat([u8(0x74), i32(Buffer.byteLength(v)), Buffer.from(v)]))]);
const relMsg = (oid: number, ident: string) => Buffer.concat([u8(0x52), i32(oid), cstr('public'), cstr('t'), u8(ident.charCodeAt(0)), i16(3),
  u8(1), cstr('id'), i32(23), i32(-1), u8(0), cstr('v'), i32(25), i32(-1), u8(0), cstr('j'), i32(3802), i32(-1)]);
const ins = (oid: number, vals: Col[]) => Buffer.concat([u8(0x49), i32(oid), u8(0x4e), tuple(vals)]);
const upd = (oid: number, sub: 'K' | 'O' | null, before: Col[], vals: Col[]) =>
  Buffer.concat([u8(0x55), i32(oid), ...(sub ? [u8(sub.charCodeAt(0)), tuple(before)] : []), u8(0x4e), tuple(vals)]);
const del = (oid: number, sub: 'K' | 'O', vals: Col[]) => Buffer.concat([u8(0x44), i32(oid), u8(sub.charCodeAt(0)), tuple(vals)]);

const OID = 16384;
const BIG_OID = 3_000_000_000 - 2 ** 32; // an OID above 2^31, as a signed Int32

/** The library's own parser with the worker's identity value parsers (what the worker used before). */
function library() {
  const plugin = new PgoutputPlugin({ protoVersion: 1, publicationNames: ['p'] });
  return (buf: Buffer) => {
    const m = plugin.parse(buf) as unknown as { tag: string; columns?: Array<{ parser: unknown }> };
    if (m.tag === 'relation') for (const c of m.columns!) c.parser = (raw: unknown) => raw;
    return m;
  };
}

/** Plain objects (tuples are null-prototype objects on both sides). */
const plain = (m: unknown) => JSON.parse(JSON.stringify(m, (_k, v) => (v === undefined ? '<unchanged>' : v)));

describe('parseRowMessage', () => {
  const messages: Array<[string, Buffer]> = [
    ['insert with a null', ins(OID, ['1', null, '{"a": 1}'])],
    ['insert of non-ASCII text', ins(OID, ['2', 'grüße, 日本', null])],
    ['update, key unchanged (no old tuple)', upd(OID, null, [], ['1', 'x', 'u'])],
    ['update changing the key (K tuple: key columns, others null)', upd(OID, 'K', ['1', null, null], ['5', 'x', null])],
    ['update, REPLICA IDENTITY FULL (O tuple; unchanged TOAST value taken from it)', upd(OID, 'O', ['1', 'a', '{"b": 2}'], ['1', 'b', 'u'])],
    ['delete by key', del(OID, 'K', ['7', null, null])],
    ['delete, REPLICA IDENTITY FULL', del(OID, 'O', ['7', 'a', null])],
    ['a relation OID above 2^31', ins(BIG_OID, ['1', 'a', null])],
  ];
  it.each(messages)('%s: the same message as the library\'s parser', (_n, buf) => {
    const lib = library();
    const ours = wrapPgoutputParse(library());
    for (const oid of [OID, BIG_OID]) {
      lib(relMsg(oid, 'd'));
      ours(relMsg(oid, 'd'));
    }
    const want = lib(buf);
    const got = ours(buf);
    expect(plain(got)).toEqual(plain(want));
  });

  it('keeps a leading U+FEFF of a value (the library\'s TextDecoder drops it)', () => {
    const rels = new Map<number, Rel>();
    wrapPgoutputParse((b) => {
      const m = library()(b) as unknown as Rel & { tag: string };
      rels.set(m.relationOid, m);
      return m as unknown as { tag: string } & Record<string, unknown>;
    })(relMsg(OID, 'd'));
    const m = parseRowMessage(ins(OID, ['1', '\uFEFFbom', null]), rels);
    expect(m).toMatchObject({ tag: 'insert', new: { id: '1', v: '\uFEFFbom', j: null } });
  });

  it('leaves every other message to the library', () => {
    expect(parseRowMessage(relMsg(OID, 'd'), new Map())).toBeUndefined();
    expect(parseRowMessage(Buffer.from([0x42, 0, 0]), new Map())).toBeUndefined(); // begin
  });

  it.each<[string, Buffer, RegExp]>([
    ['a relation never described', ins(999, ['1', null, null]), /relation 999, which the stream has not described/],
    ['a tuple cut short', ins(OID, ['1', 'abc', null]).subarray(0, 20), /unexpected end/],
    ['more columns than the relation has', ins(OID, ['1', 'a', null, 'x']), /tuple of 4 columns/],
    ['an unknown column kind', Buffer.concat([u8(0x49), i32(OID), u8(0x4e), i16(1), u8(0x78)]), /unknown pgoutput column kind x/],
    ['an insert without its N', Buffer.concat([u8(0x49), i32(OID), u8(0x4b), tuple(['1'])]), /expected 'N'/],
    ['an unknown update submessage', Buffer.concat([u8(0x55), i32(OID), u8(0x51), tuple(['1'])]), /unknown update submessage Q/],
  ])('refuses %s', (_n, buf, re) => {
    const ours = wrapPgoutputParse(library());
    ours(relMsg(OID, 'd'));
    expect(() => ours(buf)).toThrow(re);
  });
});
