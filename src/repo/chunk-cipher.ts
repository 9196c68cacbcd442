/**
 * Chunked authenticated encryption of an object's payload (pure; docs/REPOSITORY.md
 * "Encrypted objects"). AES-256-GCM from node:crypto.
 *
 *   payload   = preamble(32) chunk_0 ... chunk_{n-1}          (n >= 1)
 *   preamble  = "PGAE" | u8 version 1 | u8 alg 1 (aes-256-gcm) | u16le key number
 *               | u32le chunk size (plaintext bytes per chunk) | 16-byte random salt | 4 zero bytes
 *   chunk_i   = ciphertext of plaintext bytes [i*C, i*C + len_i) | 16-byte GCM tag
 *               (len_i = C for every chunk but the last, which holds 0..C bytes)
 *   object key K_o = HKDF-SHA256(data key, salt, "pgark object key v1")       (32 bytes)
 *   nonce_i   = 8 zero bytes | u32be i
 *   AAD_i     = preamble | u8 codec id | u8 final (1 for the last chunk, else 0) | utf8 object key
 *
 * A fresh random salt per object gives every object its own key, so counters never repeat a
 * (key, nonce) pair. The counter in the nonce makes reordering fail, the final flag makes
 * truncation at a chunk boundary fail (and an appended chunk fails), the object key in the AAD
 * makes an object moved to another name fail, and every plaintext chunk is released only after
 * its tag verified.
 */
import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { IntegrityError } from '../common/errors.js';

export const PREAMBLE_SIZE = 32;
export const TAG_SIZE = 16;
export const DEFAULT_CHUNK_SIZE = 1024 * 1024;
const MIN_CHUNK = 4096;
const MAX_CHUNK = 16 * 1024 * 1024;
const PREAMBLE_MAGIC = Buffer.from('PGAE', 'latin1');
export const ALG_AES_256_GCM = 1;

export interface Preamble {
  keyNumber: number;
  chunkSize: number;
  salt: Buffer;
  bytes: Buffer;
}

export function encodePreamble(keyNumber: number, chunkSize = DEFAULT_CHUNK_SIZE, salt: Buffer = randomBytes(16)): Preamble {
  if (!Number.isInteger(keyNumber) || keyNumber < 1 || keyNumber > 0xffff) throw new Error(`bad data key number ${keyNumber}`);
  if (chunkSize < MIN_CHUNK || chunkSize > MAX_CHUNK) throw new Error(`bad chunk size ${chunkSize}`);
  const b = Buffer.alloc(PREAMBLE_SIZE);
  PREAMBLE_MAGIC.copy(b, 0);
  b[4] = 1;
  b[5] = ALG_AES_256_GCM;
  b.writeUInt16LE(keyNumber, 6);
  b.writeUInt32LE(chunkSize, 8);
  salt.copy(b, 12, 0, 16);
  return { keyNumber, chunkSize, salt: b.subarray(12, 28), bytes: b };
}

export function parsePreamble(b: Buffer, where: string): Preamble {
  const bad = (why: string) => new IntegrityError(`unable to read '${where}': bad encrypted payload (${why})`);
  if (b.length < PREAMBLE_SIZE) throw bad('truncated');
  const bytes = Buffer.from(b.subarray(0, PREAMBLE_SIZE));
  if (!bytes.subarray(0, 4).equals(PREAMBLE_MAGIC)) throw bad('bad magic');
  if (bytes[4] !== 1) throw bad(`unknown version ${bytes[4]}`);
  if (bytes[5] !== ALG_AES_256_GCM) throw bad(`unknown cipher ${bytes[5]}`);
  const keyNumber = bytes.readUInt16LE(6);
  const chunkSize = bytes.readUInt32LE(8);
  if (keyNumber < 1) throw bad('key number 0');
  if (chunkSize < MIN_CHUNK || chunkSize > MAX_CHUNK) throw bad(`chunk size ${chunkSize}`);
  if (bytes.readUInt32LE(28) !== 0) throw bad('reserved bytes not zero');
  return { keyNumber, chunkSize, salt: bytes.subarray(12, 28), bytes };
}

/** The per-object key (HKDF of the data key and the object's salt). */
export function objectKey(dataKey: Buffer, salt: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', dataKey, salt, 'pgark object key v1', 32));
}

/** The key of the keyed content digest that replaces the plain sha256 in an encrypted object's trailer. */
export function digestKey(dataKey: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', dataKey, Buffer.alloc(0), 'pgark content digest v1', 32));
}

/** The trailer digest of an encrypted object: HMAC-SHA256(digest key, plain sha256 digest bytes). */
export function keyedDigest(dataKey: Buffer, sha256Hex: string): string {
  return createHmac('sha256', digestKey(dataKey)).update(Buffer.from(sha256Hex, 'hex')).digest('hex');
}

function nonce(i: number): Buffer {
  const n = Buffer.alloc(12);
  n.writeUInt32BE(i, 8);
  return n;
}

function aad(preamble: Buffer, codecId: number, final: boolean, key: string): Buffer {
  return Buffer.concat([preamble, Buffer.from([codecId, final ? 1 : 0]), Buffer.from(key, 'utf8')]);
}

export interface ChunkContext {
  dataKey: Buffer;
  codecId: number;
  /** The object's key (name) in the repository: bound into every chunk. */
  objectName: string;
}

function sealChunk(key: Buffer, preamble: Buffer, ctx: ChunkContext, i: number, plain: Buffer, final: boolean): Buffer {
  if (i > 0xffffffff) throw new Error('object too large for one encryption key');
  const c = createCipheriv('aes-256-gcm', key, nonce(i));
  c.setAAD(aad(preamble, ctx.codecId, final, ctx.objectName));
  const body = Buffer.concat([c.update(plain), c.final()]);
  return Buffer.concat([body, c.getAuthTag()]);
}

/** Encrypts a byte stream into preamble + chunks. */
export class ChunkEncrypter extends Transform {
  private readonly pre: Preamble;
  private readonly key: Buffer;
  private held: Buffer[] = [];
  private heldBytes = 0;
  private index = 0;
  private started = false;

  constructor(private readonly ctx: ChunkContext, keyNumber: number, chunkSize = DEFAULT_CHUNK_SIZE, salt?: Buffer) {
    super();
    this.pre = encodePreamble(keyNumber, chunkSize, salt);
    this.key = objectKey(ctx.dataKey, this.pre.salt);
  }

  private start(): void {
    if (!this.started) {
      this.started = true;
      this.push(this.pre.bytes);
    }
  }

  private seal(plain: Buffer, final: boolean): Buffer {
    return sealChunk(this.key, this.pre.bytes, this.ctx, this.index++, plain, final);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.start();
    this.held.push(chunk);
    this.heldBytes += chunk.length;
    const C = this.pre.chunkSize;
    // A chunk is sealed as non-final only when more bytes follow it.
    if (this.heldBytes > C) {
      let all = Buffer.concat(this.held);
      while (all.length > C) {
        this.push(this.seal(all.subarray(0, C), false));
        all = all.subarray(C);
      }
      this.held = [all];
      this.heldBytes = all.length;
    }
    cb();
  }

  override _flush(cb: TransformCallback): void {
    this.start();
    cb(null, this.seal(Buffer.concat(this.held), true));
  }
}

/** Chunk `i` (ciphertext | tag) opened; IntegrityError when its tag does not verify. */
function openChunk(key: Buffer, preamble: Buffer, codecId: number, objectName: string, i: number, body: Buffer, final: boolean): Buffer {
  const d = createDecipheriv('aes-256-gcm', key, nonce(i));
  d.setAAD(aad(preamble, codecId, final, objectName));
  d.setAuthTag(body.subarray(body.length - TAG_SIZE));
  const plain = d.update(body.subarray(0, body.length - TAG_SIZE));
  try {
    d.final();
  } catch {
    throw new IntegrityError(
      `unable to read '${objectName}': encrypted chunk ${i} failed authentication (the object was damaged, truncated, reordered or moved from another name)`,
    );
  }
  return plain;
}

/**
 * ChunkDecrypter without the stream, pulled (repo/object-reader.ts): `write` the payload's bytes
 * as they come (copied: the caller may reuse its buffers), get back the chunks that verified;
 * `end()` opens the last one (a chunk is final only when no bytes follow it). Same checks and
 * errors as ChunkDecrypter.
 */
export class ChunkOpener {
  private pre: Preamble | undefined;
  private key: Buffer | undefined;
  /** Bytes of the chunk being gathered (preamble first), reused chunk after chunk. */
  private acc: Buffer = Buffer.allocUnsafe(PREAMBLE_SIZE);
  private accLen = 0;
  private index = 0;

  constructor(private readonly codecId: number, private readonly objectName: string, private readonly dataKey: (n: number) => Buffer) {}

  /** Plaintext of every chunk completed by `bytes` and followed by more (each a fresh buffer). */
  write(bytes: Buffer): Buffer[] {
    const out: Buffer[] = [];
    let pos = 0;
    while (pos < bytes.length) {
      if (!this.pre) {
        const k = Math.min(PREAMBLE_SIZE - this.accLen, bytes.length - pos);
        bytes.copy(this.acc, this.accLen, pos, pos + k);
        this.accLen += k;
        pos += k;
        if (this.accLen < PREAMBLE_SIZE) break;
        this.pre = parsePreamble(this.acc, this.objectName);
        this.key = objectKey(this.dataKey(this.pre.keyNumber), this.pre.salt);
        this.acc = Buffer.allocUnsafe(this.pre.chunkSize + TAG_SIZE);
        this.accLen = 0;
        continue;
      }
      const S = this.acc.length;
      // A full chunk is opened only once a byte follows it: only then is it known not to be the last.
      if (this.accLen === S) {
        out.push(openChunk(this.key!, this.pre.bytes, this.codecId, this.objectName, this.index++, this.acc, false));
        this.accLen = 0;
      }
      const k = Math.min(S - this.accLen, bytes.length - pos);
      bytes.copy(this.acc, this.accLen, pos, pos + k);
      this.accLen += k;
      pos += k;
    }
    return out;
  }

  /** The payload ended: the last chunk's plaintext. */
  end(): Buffer {
    if (!this.pre) throw new IntegrityError(`unable to read '${this.objectName}': bad encrypted payload (truncated)`);
    if (this.accLen < TAG_SIZE) throw new IntegrityError(`unable to read '${this.objectName}': encrypted payload truncated`);
    return openChunk(this.key!, this.pre.bytes, this.codecId, this.objectName, this.index++, this.acc.subarray(0, this.accLen), true);
  }
}

/**
 * Decrypts preamble + chunks; releases each chunk's plaintext only after its tag verified.
 * `keyFor(n)` gives the data key of key number n (it throws when the key is not available).
 */
export class ChunkDecrypter extends Transform {
  private pre: Preamble | undefined;
  private key: Buffer | undefined;
  private held: Buffer[] = [];
  private heldBytes = 0;
  private index = 0;

  constructor(private readonly codecId: number, private readonly objectName: string, private readonly keyFor: (n: number) => Buffer) {
    super();
  }

  private open(body: Buffer, final: boolean): Buffer {
    return openChunk(this.key!, this.pre!.bytes, this.codecId, this.objectName, this.index++, body, final);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    try {
      this.held.push(chunk);
      this.heldBytes += chunk.length;
      if (!this.pre) {
        if (this.heldBytes < PREAMBLE_SIZE) return cb();
        const all = Buffer.concat(this.held);
        this.pre = parsePreamble(all, this.objectName);
        this.key = objectKey(this.keyFor(this.pre.keyNumber), this.pre.salt);
        this.held = [all.subarray(PREAMBLE_SIZE)];
        this.heldBytes = all.length - PREAMBLE_SIZE;
      }
      const S = this.pre.chunkSize + TAG_SIZE;
      if (this.heldBytes > S) {
        let all = Buffer.concat(this.held);
        while (all.length > S) {
          this.push(this.open(all.subarray(0, S), false));
          all = all.subarray(S);
        }
        this.held = [all];
        this.heldBytes = all.length;
      }
      cb();
    } catch (err) {
      cb(err as Error);
    }
  }

  override _flush(cb: TransformCallback): void {
    try {
      if (!this.pre) throw new IntegrityError(`unable to read '${this.objectName}': bad encrypted payload (truncated)`);
      const last = Buffer.concat(this.held);
      if (last.length < TAG_SIZE) throw new IntegrityError(`unable to read '${this.objectName}': encrypted payload truncated`);
      cb(null, this.open(last, true));
    } catch (err) {
      cb(err as Error);
    }
  }
}

/** The encrypted payload of a small buffer, in memory (the same bytes ChunkEncrypter produces). */
export function sealBuffer(ctx: ChunkContext, keyNumber: number, plain: Buffer, chunkSize = DEFAULT_CHUNK_SIZE, salt?: Buffer): Buffer {
  const pre = encodePreamble(keyNumber, chunkSize, salt);
  const key = objectKey(ctx.dataKey, pre.salt);
  const out: Buffer[] = [pre.bytes];
  let i = 0;
  let at = 0;
  while (plain.length - at > chunkSize) {
    out.push(sealChunk(key, pre.bytes, ctx, i++, plain.subarray(at, at + chunkSize), false));
    at += chunkSize;
  }
  out.push(sealChunk(key, pre.bytes, ctx, i, plain.subarray(at), true));
  return Buffer.concat(out);
}
