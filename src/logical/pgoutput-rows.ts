/**
 * Decoding of pgoutput's row messages for the apply worker (pure, bytes in): Insert 'I', Update
 * 'U' and Delete 'D' (logical replication protocol version 1, as PostgreSQL's
 * src/backend/replication/logical/proto.c writes them: Int32 relation OID, then for an update
 * an optional 'K' (key columns) or 'O' (old row) tuple before the 'N' new tuple; for a delete
 * a 'K' or 'O' tuple. A tuple: Int16 column count, then per column 'n' (null), 'u' (unchanged
 * TOAST value), 't' Int32 length + text, or 'b' Int32 length + binary).
 *
 * The result has pg-logical-replication's message shape (apply-groups.ts takes either), with
 * every value in PostgreSQL's text form: no parser call per value, no intermediate Buffer per
 * value, and text decoded as it was sent (the library's TextDecoder drops a leading U+FEFF from
 * a value; this keeps it). Every other message goes to the library's parser; the relation
 * messages it returns are recorded here (`wrapPgoutputParse`) so row messages find them.
 */
import type { ChangeMessage, Rel, Tuple } from './pgoutput-apply.js';

type Message = { tag: string } & Record<string, unknown>;

function truncated(): Error {
  return new Error('unexpected end of a pgoutput message');
}

/** Reads one tuple at `pos`; returns it and the position after it. */
function readTuple(buf: Buffer, pos: number, rel: Rel, fallback: Tuple | null): [Tuple, number] {
  if (pos + 2 > buf.length) throw truncated();
  const n = buf.readUInt16BE(pos);
  pos += 2;
  const cols = rel.columns;
  if (n > cols.length) throw new Error(`a pgoutput tuple of ${n} columns for relation ${rel.schema}.${rel.name} of ${cols.length}`);
  const t: Tuple = Object.create(null) as Tuple;
  for (let i = 0; i < n; i++) {
    const name = cols[i]!.name;
    if (pos >= buf.length) throw truncated();
    const kind = buf[pos++];
    if (kind === 0x74 /* t */ || kind === 0x62 /* b */) {
      if (pos + 4 > buf.length) throw truncated();
      const len = buf.readUInt32BE(pos);
      pos += 4;
      if (pos + len > buf.length) throw truncated();
      t[name] = kind === 0x74 ? buf.toString('utf8', pos, pos + len) : Buffer.from(buf.subarray(pos, pos + len));
      pos += len;
    } else if (kind === 0x6e /* n */) t[name] = null;
    else if (kind === 0x75 /* u */) t[name] = fallback ? fallback[name] : undefined;
    else throw new Error(`unknown pgoutput column kind ${String.fromCharCode(kind ?? 0)}`);
  }
  return [t, pos];
}

/** The key columns' values of a 'K' tuple (the other columns are sent as nulls). */
function keyTuple(rel: Rel, t: Tuple): Tuple {
  const key: Tuple = Object.create(null) as Tuple;
  for (const k of rel.keyColumns) key[k] = t[k] === null ? undefined : t[k];
  return key;
}

function expectByte(buf: Buffer, pos: number, want: number): void {
  if (buf[pos] !== want) throw new Error(`pgoutput: expected '${String.fromCharCode(want)}' at ${pos}, found ${buf[pos] === undefined ? 'the end' : `'${String.fromCharCode(buf[pos]!)}'`}`);
}

/**
 * An Insert, Update or Delete message (the bytes after XLogData's header) decoded, or undefined
 * for any other message. Throws on a relation never announced or on malformed bytes.
 */
export function parseRowMessage(buf: Buffer, relations: ReadonlyMap<number, Rel>): ChangeMessage | undefined {
  const tag = buf[0];
  if (tag !== 0x49 && tag !== 0x55 && tag !== 0x44) return undefined;
  if (buf.length < 6) throw truncated();
  const oid = buf.readInt32BE(1); // signed, as the library keys its relation messages
  const relation = relations.get(oid);
  if (!relation) throw new Error(`pgoutput: a row of relation ${oid}, which the stream has not described`);
  let pos = 5;
  if (tag === 0x49) {
    expectByte(buf, pos, 0x4e);
    return { tag: 'insert', relation, new: readTuple(buf, pos + 1, relation, null)[0] };
  }
  const sub = buf[pos++];
  if (tag === 0x44) {
    if (sub === 0x4b) return { tag: 'delete', relation, key: keyTuple(relation, readTuple(buf, pos, relation, null)[0]), old: null };
    if (sub === 0x4f) return { tag: 'delete', relation, key: null, old: readTuple(buf, pos, relation, null)[0] };
    throw new Error(`pgoutput: unknown delete submessage ${String.fromCharCode(sub ?? 0)}`);
  }
  let key: Tuple | null = null;
  let old: Tuple | null = null;
  if (sub === 0x4b || sub === 0x4f) {
    const [t, next] = readTuple(buf, pos, relation, null);
    if (sub === 0x4b) key = keyTuple(relation, t);
    else old = t;
    expectByte(buf, next, 0x4e);
    pos = next + 1;
  } else if (sub !== 0x4e) throw new Error(`pgoutput: unknown update submessage ${String.fromCharCode(sub ?? 0)}`);
  return { tag: 'update', relation, key, old, new: readTuple(buf, pos, relation, old)[0] };
}

/**
 * The worker's parse function over the library's: row messages decoded here, values in text
 * form; everything else by `parse`, whose relation messages get identity value parsers (text
 * form there too) and are recorded for the row messages that follow.
 */
export function wrapPgoutputParse(parse: (buf: Buffer) => Message): (buf: Buffer) => Message {
  const relations = new Map<number, Rel>();
  return (buf: Buffer) => {
    const row = parseRowMessage(buf, relations);
    if (row) return row as unknown as Message;
    const m = parse(buf);
    if (m.tag === 'relation') {
      for (const c of m.columns as Array<{ parser?: unknown }>) c.parser = (raw: unknown) => raw;
      relations.set(m.relationOid as number, m as unknown as Rel);
    }
    return m;
  };
}
