/**
 * PostgreSQL frontend/backend protocol (v3) messages, pure bytes in and out:
 * - BackendFramer splits a byte stream from the server into typed messages
 *   (type byte, int32 length including itself, body), copying only messages
 *   that span chunks;
 * - builders for the few frontend messages a replication client sends;
 * - parsers for the backend message bodies a replication client reads.
 * No I/O. Every malformed input throws ProtocolError.
 */
import { ProtocolError } from '../common/errors.js';
import { BodyReader } from './body-reader.js';

export const MSG = {
  CopyData: 0x64 /* d */,
  CopyDone: 0x63 /* c */,
  CopyBothResponse: 0x57 /* W */,
  CopyOutResponse: 0x48 /* H */,
  ErrorResponse: 0x45 /* E */,
  NoticeResponse: 0x4e /* N */,
  RowDescription: 0x54 /* T */,
  DataRow: 0x44 /* D */,
  CommandComplete: 0x43 /* C */,
  ReadyForQuery: 0x5a /* Z */,
  ParameterStatus: 0x53 /* S */,
  EmptyQueryResponse: 0x49 /* I */,
} as const;

export interface BackendMessage {
  type: number;
  /** The message body, without the type byte and the length field. */
  body: Buffer;
}

/** 1 GiB + 1 MiB: a whole WAL segment of the largest size plus headers. */
export const DEFAULT_MAX_MESSAGE_SIZE = 1024 * 1024 * 1024 + 1024 * 1024;
const HEADER_SIZE = 5; // type byte + int32 length
const MAX_INT32 = 0x7fffffff;

/**
 * Splits backend bytes into messages. State is the list of chunks not yet
 * consumed (all belonging to the one incomplete message at the front).
 * After a ProtocolError the stream is out of sync and the framer must be
 * discarded.
 */
export class BackendFramer {
  private readonly maxMessageSize: number;
  private chunks: Buffer[] = [];
  /** Index of the first unconsumed chunk in `chunks`. */
  private head = 0;
  private held = 0;
  /** Total size (type byte + length field value) of the message at the front, once known. */
  private need = -1;

  constructor(maxMessageSize: number = DEFAULT_MAX_MESSAGE_SIZE) {
    if (!Number.isInteger(maxMessageSize) || maxMessageSize < 4 || maxMessageSize > MAX_INT32) {
      throw new ProtocolError(
        `unable to create message framer: maximum message size ${String(maxMessageSize)} is not an integer in 4..${MAX_INT32}`,
      );
    }
    this.maxMessageSize = maxMessageSize;
  }

  /** Bytes held for an incomplete message. */
  get buffered(): number {
    return this.held;
  }

  /** Append a chunk; return every message now complete, in order. */
  push(chunk: Buffer): BackendMessage[] {
    const out: BackendMessage[] = [];
    if (chunk.length === 0) return out;
    this.chunks.push(chunk);
    this.held += chunk.length;
    for (;;) {
      if (this.need < 0) {
        if (this.held < HEADER_SIZE) break;
        const length = this.peekInt32(1);
        if (length < 4) {
          throw new ProtocolError(`unable to parse message header: length ${length} is less than 4`);
        }
        if (length > this.maxMessageSize) {
          throw new ProtocolError(
            `unable to parse message header: length ${length} exceeds the maximum of ${this.maxMessageSize}`,
          );
        }
        this.need = 1 + length;
      }
      if (this.held < this.need) break;
      const whole = this.take(this.need);
      this.need = -1;
      out.push({ type: whole[0] ?? 0, body: whole.subarray(HEADER_SIZE) });
    }
    this.compact();
    return out;
  }

  /** Big-endian int32 at `offset` bytes past the front, across chunk boundaries. */
  private peekInt32(offset: number): number {
    const first = this.chunks[this.head];
    if (first && first.length >= offset + 4) return first.readInt32BE(offset);
    const bytes = Buffer.allocUnsafe(4);
    let pos = 0;
    let skip = offset;
    for (let i = this.head; i < this.chunks.length && pos < 4; i++) {
      const c = this.chunks[i] as Buffer;
      if (skip >= c.length) {
        skip -= c.length;
        continue;
      }
      pos += c.copy(bytes, pos, skip, Math.min(c.length, skip + 4 - pos));
      skip = 0;
    }
    return bytes.readInt32BE(0);
  }

  /** Remove `n` bytes from the front: a view when they lie in one chunk, else a copy. */
  private take(n: number): Buffer {
    const first = this.chunks[this.head] as Buffer;
    this.held -= n;
    if (first.length >= n) {
      const view = first.subarray(0, n);
      if (first.length === n) this.chunks[this.head++] = EMPTY;
      else this.chunks[this.head] = first.subarray(n);
      return view;
    }
    const whole = Buffer.allocUnsafe(n);
    let pos = 0;
    while (pos < n) {
      const c = this.chunks[this.head] as Buffer;
      const part = Math.min(c.length, n - pos);
      c.copy(whole, pos, 0, part);
      pos += part;
      if (part === c.length) this.chunks[this.head++] = EMPTY;
      else this.chunks[this.head] = c.subarray(part);
    }
    return whole;
  }

  private compact(): void {
    if (this.head === 0) return;
    this.chunks = this.head >= this.chunks.length ? [] : this.chunks.slice(this.head);
    this.head = 0;
  }
}

const EMPTY = Buffer.alloc(0);

// ---------------------------------------------------------------------------
// Frontend messages
// ---------------------------------------------------------------------------

function frontend(type: string, body: Buffer | null, what: string): Buffer {
  const bodyLength = body ? body.length : 0;
  if (bodyLength > MAX_INT32 - 4) {
    throw new ProtocolError(`unable to encode ${what}: body of ${bodyLength} bytes is too large`);
  }
  const out = Buffer.allocUnsafe(HEADER_SIZE + bodyLength);
  out[0] = type.charCodeAt(0);
  out.writeInt32BE(4 + bodyLength, 1);
  if (body) body.copy(out, HEADER_SIZE);
  return out;
}

/** Simple Query: 'Q', int32 length, the SQL text NUL-terminated. */
export function queryMessage(sql: string): Buffer {
  if (sql.includes('\0')) throw new ProtocolError('unable to encode query message: the query contains a NUL character');
  return frontend('Q', Buffer.from(`${sql}\0`, 'utf8'), 'query message');
}

export function copyDataMessage(payload: Buffer): Buffer {
  return frontend('d', payload, 'CopyData message');
}

export function copyDoneMessage(): Buffer {
  return frontend('c', null, 'CopyDone message');
}

export function terminateMessage(): Buffer {
  return frontend('X', null, 'Terminate message');
}

// ---------------------------------------------------------------------------
// Backend message bodies
// ---------------------------------------------------------------------------

export interface ErrorFields {
  /** Nonlocalized severity (field V) when sent, else the localized one (field S). */
  severity: string;
  /** SQLSTATE (field C). */
  code: string;
  /** Primary message (field M). */
  message: string;
  detail?: string;
  hint?: string;
  /** Every field by its one-letter code. */
  fields: Record<string, string>;
}

/**
 * Body of ErrorResponse or NoticeResponse: (Byte1 code, String value)* then a
 * zero byte. Structural damage throws; a missing S/V, C or M field yields ''.
 */
export function parseErrorFields(body: Buffer): ErrorFields {
  const r = new BodyReader(body, 'error fields');
  const fields: Record<string, string> = {};
  for (;;) {
    const code = r.uint8();
    if (code === 0) break;
    fields[String.fromCharCode(code)] = r.cstring();
  }
  r.end();
  const out: ErrorFields = {
    severity: fields.V ?? fields.S ?? '',
    code: fields.C ?? '',
    message: fields.M ?? '',
    fields,
  };
  if (fields.D !== undefined) out.detail = fields.D;
  if (fields.H !== undefined) out.hint = fields.H;
  return out;
}

/** RowDescription: int16 count, then per field name, table oid, attnum, type oid, size, typmod, format. */
export function parseRowDescription(body: Buffer): { name: string; typeOid: number }[] {
  const r = new BodyReader(body, 'RowDescription');
  const count = r.int16();
  if (count < 0) throw r.error(`negative field count ${count}`);
  const out: { name: string; typeOid: number }[] = [];
  for (let i = 0; i < count; i++) {
    const name = r.cstring();
    r.skip(4 + 2); // table OID, column attribute number
    const typeOid = r.uint32();
    r.skip(2 + 4 + 2); // type size, type modifier, format code
    out.push({ name, typeOid });
  }
  r.end();
  return out;
}

/** DataRow: int16 count, then per column int32 length (-1 = NULL) and the text value. */
export function parseDataRow(body: Buffer): (string | null)[] {
  const r = new BodyReader(body, 'DataRow');
  const count = r.int16();
  if (count < 0) throw r.error(`negative column count ${count}`);
  const out: (string | null)[] = [];
  for (let i = 0; i < count; i++) {
    const length = r.int32();
    if (length === -1) out.push(null);
    else if (length < 0) throw r.error(`column ${i} has invalid length ${length}`);
    else out.push(r.bytes(length).toString('utf8'));
  }
  r.end();
  return out;
}

/** CommandComplete: the command tag, NUL-terminated. */
export function parseCommandComplete(body: Buffer): string {
  const r = new BodyReader(body, 'CommandComplete');
  const tag = r.cstring();
  r.end();
  return tag;
}
