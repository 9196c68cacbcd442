/**
 * Streaming encode/decode of repository objects (layout in object-format.ts).
 * Encoding hashes the raw bytes while compressing; decoding verifies payload size, raw size
 * and sha256 against the trailer and fails the stream (never ends it cleanly) on mismatch.
 */
import { createHash, type Hash } from 'node:crypto';
import { PassThrough, Readable, Transform, Writable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { IntegrityError, KeyError, StorageError } from '../common/errors.js';
import { CODEC_IDS, loadCodec, type CodecName } from '../io/codec.js';
import { ChunkDecrypter, ChunkEncrypter, keyedDigest, parsePreamble, PREAMBLE_SIZE, sealBuffer } from './chunk-cipher.js';
import {
  encodeHeader,
  FLAG_ENCRYPTED,
  encodeTrailer,
  MAX_HEADER_WRAPPER,
  parseHeader,
  parseTrailer,
  trailerWrapperSize,
  type ObjectTrailer,
} from './object-format.js';

export interface EncodeResult extends ObjectTrailer {
  /** Bytes of the whole stored object. */
  storedSize: number;
}

/** Encrypt a new object (chunk-cipher.ts) with data key `keyNumber` of the stanza's keyring. */
export interface EncryptWith {
  keyNumber: number;
  dataKey: Buffer;
  /** The object's key in the repository (bound into every chunk). */
  objectName: string;
  /** Plaintext bytes per chunk (default chunk-cipher.ts DEFAULT_CHUNK_SIZE). */
  chunkSize?: number;
}

/** What decoding needs to know about encryption where the object lives. */
export interface DecryptKeys {
  /** false in an encrypted stanza: a plain object there is refused (it could have been put in place of ours). */
  plainAllowed: boolean;
  /** Data key number n; KeyError when it is not available (no key configured, wrong key, retired). */
  dataKey(n: number): Promise<Buffer>;
}

/** Counts and hashes the bytes that pass through. */
class HashTap extends Transform {
  readonly hash: Hash = createHash('sha256');
  bytes = 0;
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    cb(null, chunk);
  }
}

/** Emits the header before the payload and the trailer after it. */
class Framer extends Transform {
  private started = false;
  private payloadBytes = 0;
  result: EncodeResult | undefined;
  constructor(private readonly codec: CodecName, private readonly tap: HashTap, private readonly enc?: EncryptWith) {
    super();
  }
  private get flags(): number {
    return this.enc ? FLAG_ENCRYPTED : 0;
  }
  private start(): void {
    if (!this.started) {
      this.started = true;
      this.push(encodeHeader(this.codec, this.flags));
    }
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.start();
    this.payloadBytes += chunk.length;
    cb(null, chunk);
  }
  override _flush(cb: TransformCallback): void {
    this.start();
    const t: ObjectTrailer = { rawSize: this.tap.bytes, payloadSize: this.payloadBytes, sha256: this.tap.hash.digest('hex') };
    // An encrypted object's trailer holds a keyed digest: a plain sha256 would let anyone confirm a guessed content.
    const trailer = encodeTrailer(this.codec, this.enc ? { ...t, sha256: keyedDigest(this.enc.dataKey, t.sha256), keyNumber: this.enc.keyNumber } : t);
    this.result = { ...t, storedSize: this.payloadBytes + trailer.length + encodeHeader(this.codec, this.flags).length };
    cb(null, trailer);
  }
}

/** A stored object's bytes as they are produced, and its trailer once all of them were. */
export interface EncodedObject {
  stream: Readable;
  done: Promise<EncodeResult>;
}

/**
 * Encode `raw` into a stored-object stream. `done` resolves with sizes and sha256 once the
 * whole stream has been produced (and rejects if the source fails).
 */
export async function encodeObject(
  raw: Readable,
  codecName: CodecName,
  level?: number,
  enc?: EncryptWith,
): Promise<EncodedObject> {
  const codec = await loadCodec(codecName);
  const tap = new HashTap();
  const framer = new Framer(codecName, tap, enc);
  const stages = enc
    ? pipeline(raw, tap, codec.compressor(level), new ChunkEncrypter({ dataKey: enc.dataKey, codecId: CODEC_IDS[codecName], objectName: enc.objectName }, enc.keyNumber, enc.chunkSize), framer)
    : pipeline(raw, tap, codec.compressor(level), framer);
  const done = stages.then(() => {
    if (!framer.result) throw new Error('object encoder finished without a trailer');
    return framer.result;
  });
  // The consumer (driver put) reads framer; pipeline errors destroy framer with the error.
  done.catch(() => undefined);
  return { stream: framer, done };
}

/**
 * Encode a small buffer as a stored object in memory, uncompressed (codec 'none'): the same
 * bytes `encodeObject(raw, 'none')` produces, without stream machinery. For objects written on
 * a latency-critical path (a synchronous receiver's pieces).
 */
export function encodeSmallObject(raw: Buffer, enc?: EncryptWith): { body: Buffer; result: EncodeResult } {
  const sha256 = createHash('sha256').update(raw).digest('hex');
  if (enc) {
    const payload = sealBuffer({ dataKey: enc.dataKey, codecId: CODEC_IDS.none, objectName: enc.objectName }, enc.keyNumber, raw, enc.chunkSize);
    const t: ObjectTrailer = { rawSize: raw.length, payloadSize: payload.length, sha256 };
    const body = Buffer.concat([encodeHeader('none', FLAG_ENCRYPTED), payload, encodeTrailer('none', { ...t, sha256: keyedDigest(enc.dataKey, sha256), keyNumber: enc.keyNumber })]);
    return { body, result: { ...t, storedSize: body.length } };
  }
  const header = encodeHeader('none');
  const t: ObjectTrailer = { rawSize: raw.length, payloadSize: raw.length, sha256 };
  const trailer = encodeTrailer('none', t);
  const body = Buffer.concat([header, raw, trailer]);
  return { body, result: { ...t, storedSize: body.length } };
}

/**
 * A decompressor for reading. lz4 is decoded in JavaScript (lz4-decode.ts) without loading
 * codecs/lz4.ts: that module loads lz4-napi, a native module with its own allocator per thread,
 * which a restore, a wal-fetch or a clone then never loads (they only read).
 */
async function loadDecompressor(name: CodecName, o: { contentChecksums: boolean; ownsInput: boolean }): Promise<Transform> {
  if (name === 'lz4') return (await import('../io/codecs/lz4-decode.js')).lz4Decompressor(o);
  return (await loadCodec(name)).decompressor(o);
}

/**
 * Reads until `n` bytes are available (or the stream ends), then puts them back (unless
 * `putBack` is false: the caller then owns the bytes read, which are the stream's own chunk
 * when one chunk held them, not a copy).
 */
async function peek(stream: Readable, n: number, putBack = true): Promise<Buffer> {
  const parts: Buffer[] = [];
  let have = 0;
  for (;;) {
    const chunk: Buffer | null = stream.read();
    if (chunk !== null) {
      parts.push(chunk);
      have += chunk.length;
      if (have >= n) break;
      continue;
    }
    if (stream.readableEnded || stream.destroyed) break;
    await new Promise<void>((resolve, reject) => {
      const done = () => {
        stream.off('readable', done);
        stream.off('end', done);
        stream.off('error', fail);
        resolve();
      };
      const fail = (err: Error) => {
        stream.off('readable', done);
        stream.off('end', done);
        reject(err);
      };
      stream.once('readable', done);
      stream.once('end', done);
      stream.once('error', fail);
    });
    if (stream.readableEnded) break;
  }
  const all = parts.length === 1 && !putBack ? parts[0]! : Buffer.concat(parts);
  if (putBack && all.length > 0) stream.unshift(all);
  return all;
}

/** Strips header and trailer; passes the payload on; checks payload size at the end. */
class Deframer extends Transform {
  private skip: number;
  private held: Buffer = Buffer.alloc(0);
  private payloadBytes = 0;
  trailer: ObjectTrailer | undefined;
  constructor(headerSize: number, private readonly codec: CodecName, private readonly where: string) {
    super();
    this.skip = headerSize;
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (this.skip > 0) {
      const n = Math.min(this.skip, chunk.length);
      chunk = chunk.subarray(n);
      this.skip -= n;
      if (chunk.length === 0) return cb();
    }
    // The last `keep` bytes seen may be the trailer: hold them back, pass everything before on
    // without copying the chunk.
    const keep = trailerWrapperSize(this.codec);
    const total = this.held.length + chunk.length;
    if (total <= keep) {
      this.held = Buffer.concat([this.held, chunk]);
      return cb();
    }
    const emit = total - keep;
    const fromHeld = Math.min(this.held.length, emit);
    if (fromHeld > 0) this.push(this.held.subarray(0, fromHeld));
    const fromChunk = emit - fromHeld;
    if (fromChunk > 0) this.push(chunk.subarray(0, fromChunk));
    this.held = Buffer.concat([this.held.subarray(fromHeld), chunk.subarray(fromChunk)]);
    this.payloadBytes += emit;
    cb();
  }
  override _flush(cb: TransformCallback): void {
    try {
      const t = parseTrailer(this.codec, this.held, this.where);
      if (t.payloadSize !== this.payloadBytes) {
        throw new IntegrityError(`unable to read '${this.where}': stored payload is ${this.payloadBytes} bytes, trailer says ${t.payloadSize}`);
      }
      this.trailer = t;
      cb();
    } catch (err) {
      cb(err as Error);
    }
  }
}

/**
 * Hashes decoded output and compares with the trailer when the stream ends. Without `hash`
 * (the reader checks every byte it uses against its own record) only the size is compared.
 */
class Verifier extends Transform {
  private readonly hash: Hash | undefined;
  private bytes = 0;
  constructor(
    private readonly deframer: Deframer,
    private readonly where: string,
    private readonly onVerified: (t: ObjectTrailer) => void,
    hash: boolean,
    /** Encrypted objects: the data key the trailer's keyed digest is made with. */
    private readonly dataKey?: Buffer,
  ) {
    super();
    this.hash = hash ? createHash('sha256') : undefined;
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash?.update(chunk);
    this.bytes += chunk.length;
    cb(null, chunk);
  }
  override _flush(cb: TransformCallback): void {
    const t = this.deframer.trailer;
    if (!t) return cb(new IntegrityError(`unable to read '${this.where}': object ended without a trailer`));
    const digest = this.hash ? this.hash.digest('hex') : t.sha256;
    // Without the content hash (the caller hashes what it uses) an encrypted object is still
    // authenticated chunk by chunk; only its sizes are compared here, as for a plain object.
    const expected = this.dataKey && this.hash ? keyedDigest(this.dataKey, digest) : digest;
    if (this.dataKey && t.keyNumber === undefined) return cb(new IntegrityError(`unable to read '${this.where}': encrypted object with a plain trailer`));
    if (!this.dataKey && t.keyNumber !== undefined) return cb(new IntegrityError(`unable to read '${this.where}': plain object with an encrypted trailer`));
    if (t.rawSize !== this.bytes || t.sha256 !== expected) {
      return cb(new IntegrityError(
        `unable to read '${this.where}': checksum mismatch (stored ${this.dataKey ? 'keyed digest' : 'sha256'} ${t.sha256.slice(0, 16)}…, ${t.rawSize} bytes; read ${expected.slice(0, 16)}…, ${this.bytes} bytes)`,
      ));
    }
    // Callers get the plain sha256 of the content, encrypted or not (with the content hash).
    this.onVerified(this.dataKey && this.hash ? { rawSize: t.rawSize, payloadSize: t.payloadSize, sha256: digest } : t);
    cb();
  }
}

/**
 * Decode a stored object. The returned stream yields raw content and errors with
 * IntegrityError if anything does not verify; only a clean 'end' means the bytes are good.
 */
/** A decoded object stream; `verified` resolves with the trailer once every byte has been checked. */
export type DecodedStream = Readable & { verified: Promise<ObjectTrailer> };

export interface DecodeOptions {
  /**
   * false: the caller checks every byte it uses against a sha256 it holds (a manifest's per-file
   * sha256), so the object's own sha256 is not computed; sizes are still checked, and the
   * stream's `verified` then vouches for sizes only. Default true.
   */
  contentHash?: boolean;
}

/** Header, and for an encrypted object its data key, of a stored stream (read ahead, then put back). */
export async function openStored(stored: Readable, where: string, keys: DecryptKeys | undefined) {
  const { header, dataKey, head } = await openStoredHead(stored, where, keys);
  if (head.length > 0) stored.unshift(head);
  return { header, dataKey };
}

/**
 * openStored without putting back what it read: `head` is the stored stream's first bytes (at
 * least the header's), which the caller consumes before the rest of the stream. When the first
 * chunk held them, `head` is that chunk itself: a pooled read buffer stays pooled (the object
 * reader hands it back once used up) instead of being copied, and no read-ahead chunk is ever
 * joined with a put-back one into a fresh buffer (Readable.read() joins what is buffered).
 */
export async function openStoredHead(stored: Readable, where: string, keys: DecryptKeys | undefined) {
  stored.pause();
  let head = await peek(stored, MAX_HEADER_WRAPPER, false);
  const header = parseHeader(head.subarray(0, MAX_HEADER_WRAPPER), where);
  let dataKey: Buffer | undefined;
  if (header.flags & FLAG_ENCRYPTED) {
    if (head.length < header.wrapperSize + PREAMBLE_SIZE) {
      stored.unshift(head);
      head = await peek(stored, header.wrapperSize + PREAMBLE_SIZE, false);
    }
    const pre = parsePreamble(head.subarray(header.wrapperSize), where);
    if (!keys) throw new KeyError(`unable to read '${where}': the object is encrypted (data key ${pre.keyNumber}) and its stanza has no keyring here`);
    dataKey = await keys.dataKey(pre.keyNumber);
  } else if (keys && !keys.plainAllowed) {
    throw new IntegrityError(`unable to read '${where}': the object is not encrypted, but its stanza is (a plain object cannot have been written there by pgark)`);
  }
  return { header, dataKey, head };
}

export async function decodeObject(stored: Readable, where: string, o: DecodeOptions = {}, keys?: DecryptKeys): Promise<DecodedStream> {
  const { header, dataKey } = await openStored(stored, where, keys);
  const deframer = new Deframer(header.wrapperSize, header.codec, where);
  let onVerified!: (t: ObjectTrailer) => void;
  let onFailed!: (err: Error) => void;
  const verified = new Promise<ObjectTrailer>((resolve, reject) => {
    onVerified = resolve;
    onFailed = reject;
  });
  verified.catch(() => undefined);
  const verifier = new Verifier(deframer, where, onVerified, o.contentHash ?? true, dataKey);
  // The trailer's sha256 covers the content: the codec's own content checksum would only cost time.
  // The chunks come straight from storage (or from peek's copy): the decompressor may reuse them.
  const decompressor = await loadDecompressor(header.codec, { contentChecksums: false, ownsInput: true });
  const out = Object.assign(new PassThrough(), { verified });
  // `out` is outside the pipeline so that the error it ends with is the one naming the object
  // (pipeline would destroy it first with the bare codec error).
  const stages = dataKey
    ? pipeline(stored, deframer, new ChunkDecrypter(CODEC_IDS[header.codec], where, () => dataKey), decompressor, verifier)
    : pipeline(stored, deframer, decompressor, verifier);
  stages.catch((err: Error) => {
    // A storage failure mid-stream (a dropped connection) stays a StorageError: it is not
    // damage to the object, and a retry may well succeed.
    const wrapped = (err as NodeJS.ErrnoException).code === 'ERR_STREAM_PREMATURE_CLOSE' || err instanceof StorageError || (err instanceof IntegrityError && err.message.includes(where))
      ? err
      : new IntegrityError(`unable to decode '${where}': ${err.message}`, { cause: err });
    onFailed(wrapped);
    out.destroy(wrapped);
  });
  verifier.pipe(out);
  out.on('close', () => {
    if (!verifier.readableEnded) verifier.destroy();
  });
  return out;
}

/**
 * Emergency path (`pgark key decrypt-object`): an encrypted object turned back into the plain
 * object of format version 1 that pgark would have stored without encryption (same codec and
 * compressed payload; the trailer's plain sha256 computed by decompressing on the way), so that
 * `lz4 -d`, `zstd -d` or `gzip -d` read it. Every chunk is authenticated, and the content checked
 * against the stored keyed digest, before the stream ends cleanly.
 */
export async function decryptToPlain(stored: Readable, where: string, keys: DecryptKeys): Promise<Readable> {
  const { header, dataKey } = await openStored(stored, where, keys);
  if (!dataKey) throw new IntegrityError(`'${where}' is not encrypted: it is already a plain object`);
  const deframer = new Deframer(header.wrapperSize, header.codec, where);
  const side = await loadDecompressor(header.codec, { contentChecksums: false, ownsInput: false });
  const tap = new HashTap();
  const sideDone = pipeline(side, tap, new Writable({ write: (_c, _e, cb) => cb() }));
  sideDone.catch(() => undefined);
  let payloadBytes = 0;
  const out = new Transform({
    transform(chunk: Buffer, _e, cb) {
      payloadBytes += chunk.length;
      if (!side.write(chunk)) side.once('drain', () => cb(null, chunk));
      else cb(null, chunk);
    },
    flush(cb) {
      side.end();
      sideDone.then(() => {
        const t = deframer.trailer;
        const sha256 = tap.hash.digest('hex');
        if (!t || t.keyNumber === undefined || t.rawSize !== tap.bytes || t.sha256 !== keyedDigest(dataKey, sha256)) {
          throw new IntegrityError(`unable to decrypt '${where}': the content does not match the object's keyed digest`);
        }
        cb(null, encodeTrailer(header.codec, { rawSize: tap.bytes, payloadSize: payloadBytes, sha256 }));
      }).catch((err: Error) => cb(err));
    },
  });
  out.push(encodeHeader(header.codec));
  const result = new PassThrough();
  pipeline(stored, deframer, new ChunkDecrypter(CODEC_IDS[header.codec], where, () => dataKey), out, result).catch((err: Error) => result.destroy(err));
  return result;
}

/**
 * Read the trailer of a stored object from its last bytes (at least MAX_TRAILER_WRAPPER of
 * them, or the whole object). lz4 and zstd share a wrapper shape, so only the trailer is told.
 */
export function trailerFromTail(tail: Buffer, where: string): ObjectTrailer {
  for (const codec of ['lz4', 'gzip', 'none'] as const) {
    const n = trailerWrapperSize(codec);
    if (tail.length < n) continue;
    try {
      return parseTrailer(codec, tail.subarray(tail.length - n), where);
    } catch {
      // try the next wrapper shape
    }
  }
  throw new IntegrityError(`unable to read '${where}': no valid trailer found`);
}

/** Collect a small decoded object into memory (for metadata documents only). */
export async function readAll(stream: Readable, limit = 64 * 1024 * 1024): Promise<Buffer> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const chunk of stream) {
    n += (chunk as Buffer).length;
    if (n > limit) throw new IntegrityError(`object larger than ${limit} bytes where a small document was expected`);
    parts.push(chunk as Buffer);
  }
  return Buffer.concat(parts);
}

export { Readable };
