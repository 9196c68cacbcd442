/**
 * A stored object's content, pulled chunk by chunk and verified as it is read: the same checks
 * as decodeObject (object-stream.ts), without its stream stages. For an unencrypted lz4 or
 * uncompressed object one loop does what the Deframer → decompressor → Verifier → PassThrough
 * pipeline does (strip header and trailer, decode each lz4 block in JavaScript into one reused
 * buffer, hash, compare with the trailer), so restore's worker pays no per-stage stream
 * machinery and leaves no decoded blocks behind as garbage (bench/results/restore.md). An
 * encrypted lz4 or uncompressed object is decrypted chunk by chunk in the same loop (each chunk's
 * plaintext released only after its tag verified: chunk-cipher.ts ChunkOpener). zstd and gzip
 * objects are read through decodeObject.
 *
 * The bytes `next()` returns are valid until the following call: the caller uses them (writes,
 * hashes) before it asks for more.
 */
import { createHash, type Hash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { IntegrityError, StorageError } from '../common/errors.js';
import { noteGarbage } from '../common/gc-budget.js';
import { releaseBuffer, isPooled } from '../io/buffer-pool.js';
import { CODEC_IDS, type CodecName } from '../io/codec.js';
import { decodeLz4BlockInto } from '../io/codecs/lz4-block.js';
import { Lz4WasmDecoder } from '../io/codecs/lz4-block-wasm.js';
import { Lz4FrameParser } from '../io/codecs/lz4-frame-decoder.js';
import { ChunkOpener, keyedDigest } from './chunk-cipher.js';
import { parseTrailer, trailerWrapperSize, type ObjectTrailer } from './object-format.js';
import { decodeObject, openStoredHead, type DecodedStream, type DecodeOptions, type DecryptKeys } from './object-stream.js';

export interface ObjectReader {
  /** The next decoded bytes (valid until the following call), or null once every byte has been read and verified. */
  next(): Promise<Buffer | null>;
  /** Once next() returned null: the verified trailer (its sha256 vouches for the content only with contentHash). */
  readonly trailer: ObjectTrailer | undefined;
  /** Stop reading (the stored stream is closed). */
  close(): Promise<void>;
}

/** Open a reader over a stored object's stream (Repository.readObject). */
export async function openObjectReader(stored: Readable, where: string, o: DecodeOptions = {}, keys?: DecryptKeys): Promise<ObjectReader> {
  // The first chunk read stays this reader's (not put back): a pooled one goes back to its pool
  // once used up, like every later chunk.
  const { header, dataKey, head } = await openStoredHead(stored, where, keys);
  if (header.codec === 'lz4' || header.codec === 'none') return new PlainReader(stored, head, where, header.codec, header.wrapperSize, o.contentHash ?? true, dataKey);
  // decodeObject reads the header again from the bytes put back.
  if (head.length > 0) stored.unshift(head);
  return new StreamReader(await decodeObject(stored, where, o, keys));
}

/** Linked lz4 blocks may refer to the 64 KiB of output before them. */
const HISTORY = 64 * 1024;

/**
 * Output buffers of readers that are done, for the next reader of this thread: a restore reads
 * hundreds of objects one after another, and a fresh ~4 MiB buffer per object (the frame's block
 * maximum) would be garbage the collector frees late and malloc keeps. More than one reader can
 * be open at once (a file rebuilt from several backups' layers), so each reader holds its own
 * buffer while it is open; at most SPARE_OUTPUTS wait here.
 */
const spareOutputs: Buffer[] = [];
const SPARE_OUTPUTS = 2;

function takeOutput(need: number): Buffer {
  const i = spareOutputs.findIndex((b) => b.length >= need);
  return i >= 0 ? spareOutputs.splice(i, 1)[0]! : Buffer.allocUnsafeSlow(need);
}

function giveBackOutput(b: Buffer): void {
  if (spareOutputs.length < SPARE_OUTPUTS) spareOutputs.push(b);
}

/**
 * In a thread that turned it on (restore's: restore-worker.ts), lz4 blocks are decoded in
 * WebAssembly (lz4-block-wasm.ts: 1.8-3.2x the JavaScript decoder's speed on PostgreSQL pages),
 * each reader with its own decoder, whose memory holds the decoded block the reader returns;
 * decoders of readers that are done wait here for the next reader, as output buffers do. Off
 * (the default: wal-fetch, verify, the agent read one file or few; a decoder and V8's compiled
 * WebAssembly cost ~2-3 MiB of peak RSS), or where WebAssembly SIMD is unavailable, blocks are
 * decoded in JavaScript into an output buffer.
 */
const spareDecoders: Lz4WasmDecoder[] = [];
let wasmDecoding = false;

function takeDecoder(capacity: number): Lz4WasmDecoder | undefined {
  if (!wasmDecoding) return undefined;
  const i = spareDecoders.findIndex((x) => x.capacity >= capacity);
  if (i >= 0) return spareDecoders.splice(i, 1)[0]!;
  const d = Lz4WasmDecoder.create(capacity);
  if (d === undefined) wasmDecoding = false;
  return d;
}

function giveBackDecoder(d: Lz4WasmDecoder): void {
  if (spareDecoders.length < SPARE_OUTPUTS) spareDecoders.push(d);
}

/** This thread's readers decode lz4 blocks in WebAssembly (where available) or in JavaScript (the default). */
export function setWasmLz4Decoding(on: boolean): void {
  wasmDecoding = on;
  spareDecoders.length = 0;
}

/**
 * The lz4 parser's accumulator (a block that spans two stored chunks is gathered there: with
 * 1 MiB reads and ~1 MiB frames, most blocks of incompressible data) of the last reader that is
 * done, for the next reader of this thread: one per reader was garbage that lived as long as its
 * object, so old enough to wait for a full collection (4-8 MiB more peak RSS on random data;
 * bench/results/restore.md).
 */
let spareAccumulator: Buffer | undefined;

/** An lz4 or uncompressed object, encrypted or not, decoded in one pull loop. */
class PlainReader implements ObjectReader {
  trailer: ObjectTrailer | undefined;
  private readonly it: AsyncIterator<Buffer>;
  private readonly hash: Hash | undefined;
  private readonly parser: Lz4FrameParser | undefined;
  private readonly keep: number;
  /** Header bytes still to drop. */
  private skip: number;
  /** The last `keep` bytes seen, which may be the trailer. */
  private held: Buffer = Buffer.alloc(0);
  /** Payload slices of the current stored chunk not yet handed to the parser (or returned, uncompressed). */
  private slices: Buffer[] = [];
  private payloadBytes = 0;
  private bytes = 0;
  private lastChunk = 0;
  /** The stored chunk the slices and parser work on (a pooled one goes back when used up). */
  private lastStored: Buffer | undefined;
  /** lz4 blocks are decoded into this buffer: [history | block] (in JavaScript, where WebAssembly is unavailable). */
  private out: Buffer | undefined;
  /** lz4 blocks are decoded by this decoder, into its memory. */
  private wasm: Lz4WasmDecoder | undefined;
  /** Encrypted: the payload is decrypted chunk by chunk before the lz4 frames are parsed. */
  private readonly opener: ChunkOpener | undefined;
  /** Encrypted: the stored stream ended and the last chunk was opened. */
  private storedEnded = false;
  /** The stored stream's first chunk, read before this reader was made (openStoredHead). */
  private first: Buffer | undefined;

  /** `head`: the stored stream's first bytes, already read (openStoredHead). */
  constructor(stored: Readable, head: Buffer, private readonly where: string, private readonly codec: CodecName, headerSize: number, contentHash: boolean, private readonly dataKey?: Buffer) {
    this.it = stored[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    this.hash = contentHash ? createHash('sha256') : undefined;
    this.skip = headerSize;
    this.keep = trailerWrapperSize(codec);
    this.opener = dataKey ? new ChunkOpener(CODEC_IDS[codec], where, () => dataKey) : undefined;
    this.parser = codec === 'lz4' ? new Lz4FrameParser((block, capacity, dict) => this.decodeBlock(block, capacity, dict), false, false, true) : undefined;
    this.first = head;
    if (this.parser !== undefined) {
      this.parser.useAccumulator(spareAccumulator);
      spareAccumulator = undefined;
    }
  }

  async next(): Promise<Buffer | null> {
    try {
      return await this.pull();
    } catch (err) {
      throw this.failure(err as Error);
    }
  }

  async close(): Promise<void> {
    this.releaseOutput();
    // The caller is done with every byte: the stored chunk in use goes back too (a bundle's
    // reader is closed after its last needed file, before the object's end).
    this.releaseStored();
    this.slices = [];
    if (this.first !== undefined) releaseBuffer(this.first);
    this.first = undefined;
    await this.it.return?.();
  }

  /** The stored chunk the slices and parser worked on is used up: a pooled one goes back to its pool, others are garbage. */
  private releaseStored(): void {
    if (this.lastStored !== undefined && isPooled(this.lastStored)) releaseBuffer(this.lastStored);
    else noteGarbage(this.lastChunk);
    this.lastStored = undefined;
    this.lastChunk = 0;
  }

  /** The caller is done with every block (the object ended or the reader is closed): the output buffer and the parser's accumulator go to the next reader. */
  private releaseOutput(): void {
    const out = this.out;
    this.out = undefined;
    if (out !== undefined) giveBackOutput(out);
    const wasm = this.wasm;
    this.wasm = undefined;
    if (wasm !== undefined) giveBackDecoder(wasm);
    const acc = this.parser?.takeAccumulator();
    if (acc !== undefined && (spareAccumulator === undefined || acc.length > spareAccumulator.length)) spareAccumulator = acc;
  }

  private async pull(): Promise<Buffer | null> {
    for (;;) {
      if (this.parser) {
        const out = this.parser.next();
        if (out !== null) return this.deliver(out);
      }
      const slice = this.slices.shift();
      if (slice !== undefined) {
        if (this.parser) this.parser.feed(slice);
        else if (slice.length > 0) return this.deliver(slice);
        continue;
      }
      // The previous stored chunk is used up: nothing refers to it any more (the caller asked
      // for the next chunk, so it is done with what it was given). A pooled one (the fs driver's
      // reads, storage-drivers/fs/pooled-read.ts) goes back to its pool, others are garbage.
      this.releaseStored();
      if (this.storedEnded) return this.finish();
      const first = this.first;
      this.first = undefined;
      const r: IteratorResult<Buffer> = first !== undefined ? { done: false, value: first } : await this.it.next();
      if (r.done) {
        if (this.opener === undefined) return this.finish();
        this.storedEnded = true;
        this.plain(this.opener.end());
        continue;
      }
      this.lastChunk = r.value.length;
      this.lastStored = r.value;
      this.deframe(r.value);
    }
  }

  private deliver(out: Buffer): Buffer {
    this.hash?.update(out);
    this.bytes += out.length;
    return out;
  }

  /** Drops the header, holds back the last bytes (maybe the trailer), queues the payload before them. */
  private deframe(chunk: Buffer): void {
    if (this.skip > 0) {
      const n = Math.min(this.skip, chunk.length);
      chunk = chunk.subarray(n);
      this.skip -= n;
      if (chunk.length === 0) return;
    }
    const total = this.held.length + chunk.length;
    if (total <= this.keep) {
      this.held = Buffer.concat([this.held, chunk]);
      return;
    }
    const emit = total - this.keep;
    const fromHeld = Math.min(this.held.length, emit);
    if (fromHeld > 0) this.queue(this.held.subarray(0, fromHeld));
    const fromChunk = emit - fromHeld;
    if (fromChunk > 0) this.queue(chunk.subarray(0, fromChunk));
    this.held = Buffer.concat([this.held.subarray(fromHeld), chunk.subarray(fromChunk)]);
    this.payloadBytes += emit;
  }

  /** Payload bytes, decrypted first when the object is encrypted (the opener copies what it keeps). */
  private queue(payload: Buffer): void {
    if (this.opener === undefined) this.slices.push(payload);
    else for (const plain of this.opener.write(payload)) this.plain(plain);
  }

  /** A decrypted chunk (a fresh buffer from the decipher): garbage once used up (gc-budget.ts). */
  private plain(b: Buffer): void {
    noteGarbage(b.length);
    this.slices.push(b);
  }

  /** The stored stream ended: the payload, the sizes and the content against the trailer. */
  private finish(): null {
    if (this.trailer) return null;
    this.releaseOutput();
    this.parser?.end();
    const t = parseTrailer(this.codec, this.held, this.where);
    if (t.payloadSize !== this.payloadBytes) {
      throw new IntegrityError(`unable to read '${this.where}': stored payload is ${this.payloadBytes} bytes, trailer says ${t.payloadSize}`);
    }
    const dataKey = this.dataKey;
    if (dataKey && t.keyNumber === undefined) throw new IntegrityError(`unable to read '${this.where}': encrypted object with a plain trailer`);
    if (!dataKey && t.keyNumber !== undefined) throw new IntegrityError(`unable to read '${this.where}': plain object with an encrypted trailer`);
    const digest = this.hash ? this.hash.digest('hex') : t.sha256;
    // Encrypted: the trailer holds a keyed digest of the content (as decodeObject's Verifier checks it).
    const expected = dataKey && this.hash ? keyedDigest(dataKey, digest) : digest;
    if (t.rawSize !== this.bytes || t.sha256 !== expected) {
      throw new IntegrityError(
        `unable to read '${this.where}': checksum mismatch (stored ${dataKey ? 'keyed digest' : 'sha256'} ${t.sha256.slice(0, 16)}…, ${t.rawSize} bytes; read ${expected.slice(0, 16)}…, ${this.bytes} bytes)`,
      );
    }
    // Callers get the plain sha256 of the content, encrypted or not (with the content hash).
    this.trailer = dataKey && this.hash ? { rawSize: t.rawSize, payloadSize: t.payloadSize, sha256: digest } : t;
    return null;
  }

  /** One lz4 block into the reused output buffer, after the history linked blocks refer to. */
  private decodeBlock(block: Buffer, capacity: number, dict: Buffer | undefined): Buffer {
    if (this.wasm === undefined || this.wasm.capacity < capacity) {
      if (this.wasm !== undefined) giveBackDecoder(this.wasm);
      this.wasm = takeDecoder(capacity);
    }
    if (this.wasm !== undefined) return this.wasm.decode(block, dict);
    const need = HISTORY + capacity;
    if (this.out === undefined || this.out.length < need) {
      if (this.out !== undefined) giveBackOutput(this.out);
      this.out = takeOutput(need);
    }
    const out = this.out;
    let start = 0;
    if (dict !== undefined && dict.length > 0) {
      dict.copy(out, 0);
      start = dict.length;
    }
    const n = decodeLz4BlockInto(block, 0, block.length, out, start, start + capacity);
    return out.subarray(start, start + n);
  }

  /** Same errors as decodeObject's: a storage failure stays one, anything else names the object. */
  private failure(err: Error): Error {
    if ((err as NodeJS.ErrnoException).code === 'ERR_STREAM_PREMATURE_CLOSE' || err instanceof StorageError || (err instanceof IntegrityError && err.message.includes(this.where))) return err;
    return new IntegrityError(`unable to decode '${this.where}': ${err.message}`, { cause: err });
  }
}

/** Any other object, through decodeObject's stream. */
class StreamReader implements ObjectReader {
  trailer: ObjectTrailer | undefined;
  private readonly it: AsyncIterator<Buffer>;

  constructor(private readonly stream: DecodedStream) {
    this.it = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  }

  async next(): Promise<Buffer | null> {
    for (;;) {
      const r = await this.it.next();
      if (r.done) {
        this.trailer = await this.stream.verified;
        return null;
      }
      if (r.value.length > 0) return r.value;
    }
  }

  async close(): Promise<void> {
    await this.it.return?.();
  }
}
