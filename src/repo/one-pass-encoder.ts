/**
 * A plain (unencrypted) stored object of codec lz4 or none encoded in one pass, without a stream
 * pipeline: the caller hands over raw bytes as it reads them (`add`), each 1 MiB of the object's
 * raw content is compressed as one lz4 frame (of LZ4_BLOCK blocks) on the libuv threadpool (two
 * frames in flight) while the caller's thread hashes it (sha256, for the trailer) and goes on
 * reading, checking and choosing what to store; the object's bytes come out as few, large
 * buffers (lz4.ts lz4FrameParts: the header or the previous frame's end mark with a frame's head,
 * then its block; or, with several blocks per frame, the whole frame in one), the last end mark
 * with the trailer.
 *
 * The bytes are exactly those of encodeObject(raw stream, codec) (object-stream.ts with the lz4
 * codec's compressor, io/codecs/lz4.ts): frames cut at every 1 MiB of the concatenated raw bytes,
 * blocks at every LZ4_BLOCK (io/codecs/lz4.ts) of a frame's, whatever the sizes handed to `add`
 * or `addRuns` (input that does not fill a frame at once is copied into a pooled staging buffer,
 * as the stream compressor does), none checksummed; the same header and
 * trailer (test/unit/one-pass-encoder.test.ts and segment-object.test.ts compare them).
 *
 * Users: the agent's and wal-push's segments (wal/segment-object.ts) and backup's data objects
 * (backup/backup-worker.ts), both stored with Repository.putPlainEncoded; codecs other than lz4
 * and none, and encrypted stanzas, go through Repository.putObject.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { noteGarbage } from '../common/gc-budget.js';
import { BufferPool, releaseBuffer } from '../io/buffer-pool.js';
import { freeNow, freeOnceWritten, releaseOnceWritten } from '../io/free-once-written.js';
import { lz4OnCallingThread } from '../io/codecs/lz4-thread.js';
import type { CodecName } from '../io/codec.js';
import { encodeHeader, encodeTrailer } from './object-format.js';
import type { EncodedObject, EncodeResult } from './object-stream.js';

/** The codecs this encoder writes. */
export function onePassCodec(codec: CodecName): boolean {
  return codec === 'lz4' || codec === 'none';
}

/** Raw bytes per lz4 frame: the stream compressor's chunk size, so the frames are the same. */
export const ONE_PASS_FRAME = 1024 * 1024;

/** Frames being compressed at once per object: the next MiB is read, checked and hashed meanwhile. */
const MAX_IN_FLIGHT = 2;

const NOTHING = Buffer.alloc(0);
/** A frame's end mark (read only: only ever copied or written out). */
const END_MARK = Buffer.alloc(4);

type Lz4 = typeof import('../io/codecs/lz4.js');
let lz4Module: Promise<Lz4> | undefined;

/** Staging buffers of input that does not come in whole, aligned MiBs (shared by this thread's encoders). */
const stagingPool = new BufferPool(ONE_PASS_FRAME, 8);

interface Frame {
  blocks: Promise<Array<Buffer | undefined>>;
  /** The buffer the frame's bytes are in: released once compressed. */
  input: Buffer;
  data: Buffer;
}

export class OnePassEncoder {
  private readonly hash = createHash('sha256');
  private readonly header: Buffer;
  private rawSize = 0;
  /** Bytes of the object handed out so far. */
  private emitted = 0;
  /** Bytes waiting to be written before the next frame: the object's header, until the first frame. */
  private glue: Buffer;
  private staging: Buffer | undefined;
  private filled = 0;
  private frames = 0;
  private ended = false;
  private readonly inFlight: Frame[] = [];
  /** codec none: bytes ready to be handed out. */
  private readonly plain: Buffer[] = [];
  /** The trailer's figures, once `finish` has handed out the last bytes. */
  result: EncodeResult | undefined;

  /**
   * lz4 compresses on this thread (io/codecs/lz4-thread.ts, a one-file call): each frame's body is
   * freed by the store once written (io/free-once-written.ts), and the blocks copied into a frame
   * of several are freed at once.
   */
  private readonly onCallingThread = lz4OnCallingThread();

  private constructor(readonly codec: CodecName, private readonly lz4: Lz4 | undefined) {
    this.header = encodeHeader(codec);
    this.glue = this.header;
  }

  static async create(codec: CodecName): Promise<OnePassEncoder> {
    if (!onePassCodec(codec)) throw new Error(`one-pass encoder: codec ${codec} is not supported`);
    const lz4 = codec === 'lz4' ? await (lz4Module ??= import('../io/codecs/lz4.js')) : undefined;
    return new OnePassEncoder(codec, lz4);
  }

  /** lz4 blocks per frame (PGARK_LZ4_BLOCK_KIB, io/codecs/lz4.ts); 1 for codec none. */
  get blocksPerFrame(): number {
    return this.lz4 ? Math.ceil(ONE_PASS_FRAME / this.lz4.LZ4_BLOCK) : 1;
  }

  /**
   * Frames a reader of one file may leave compressing while it reads the next MiB (`drain`'s
   * `keep`): one with one lz4 block per frame on the threadpool; none with several blocks per
   * frame (they occupy the pool's threads already) or when lz4 compresses on this thread
   * (io/codecs/lz4-thread.ts: a frame is compressed when `add` returns, so keeping it only
   * holds its output and its read buffer).
   */
  get readAheadFrames(): number {
    return this.lz4 && this.blocksPerFrame === 1 && !this.onCallingThread ? MAX_IN_FLIGHT - 1 : 0;
  }

  /** Raw bytes added so far. */
  get size(): number {
    return this.rawSize;
  }

  /**
   * Append `data` to the object's raw content. The encoder owns `owner` (the buffer `data` is
   * in; default `data` itself) from now on: it hands a pooled buffer (or releasable slice) back
   * with releaseBuffer once it is done with the bytes, and the caller must not change them before
   * that (never, for a buffer that is not pooled). `last`: nothing is added after it (a short
   * last MiB is then compressed in place, without a copy). Compression starts here; hand out
   * `drain()`'s bytes after each add.
   */
  add(data: Buffer, last = false, owner: Buffer = data): void {
    if (this.ended) throw new Error('one-pass encoder: bytes added after the last');
    if (last) this.ended = true;
    const n = data.length;
    if (n === 0) {
      releaseBuffer(owner);
      return;
    }
    if (!this.lz4) {
      // Uncompressed: the bytes themselves (a copy: the buffer goes back to its pool).
      this.hash.update(data);
      this.rawSize += n;
      this.plain.push(Buffer.from(data));
      releaseBuffer(owner);
      return;
    }
    if (this.filled === 0 && (n === ONE_PASS_FRAME || (last && n < ONE_PASS_FRAME))) {
      // A whole frame in place: compressed on the pool while this thread hashes the same bytes (only read by both).
      this.start(data, owner);
      this.hash.update(data);
      this.rawSize += n;
      return;
    }
    this.stage(data, 0, n);
    // What is left in staging is hashed now (at most the part of `data` not yet in a started frame).
    if (this.filled > this.stagedHashed) {
      this.hash.update(this.staging!.subarray(this.stagedHashed, this.filled));
      this.stagedHashed = this.filled;
    }
    this.rawSize += n;
    releaseBuffer(owner); // copied
  }

  /**
   * Append the byte ranges `runs` of `buf` (start, end pairs, ascending, within `buf`): a block
   * delta's runs of changed blocks. The bytes are copied into the staging MiB (a single run that
   * is all of `buf` goes through add, compressed in place when it is a whole MiB); the encoder
   * owns `buf` from now on and hands it back (releaseBuffer) once done with it. The same object
   * bytes as an add of each run: one call per read instead of one per run, without a slice
   * object per run, and the staging MiB is hashed once when its frame starts instead of once per
   * run (the same bytes in the same order: an in-place frame starts only when staging is empty).
   */
  addRuns(buf: Buffer, runs: readonly number[]): void {
    if (runs.length === 2 && runs[0] === 0 && runs[1] === buf.length) {
      this.add(buf);
      return;
    }
    if (this.ended) throw new Error('one-pass encoder: bytes added after the last');
    if (!this.lz4) {
      let n = 0;
      for (let i = 0; i < runs.length; i += 2) n += runs[i + 1]! - runs[i]!;
      if (n > 0) {
        const out = Buffer.allocUnsafe(n);
        let at = 0;
        for (let i = 0; i < runs.length; i += 2) at += buf.copy(out, at, runs[i]!, runs[i + 1]!);
        this.hash.update(out);
        this.rawSize += n;
        this.plain.push(out);
      }
      releaseBuffer(buf);
      return;
    }
    for (let i = 0; i < runs.length; i += 2) {
      this.stage(buf, runs[i]!, runs[i + 1]!);
      this.rawSize += runs[i + 1]! - runs[i]!;
    }
    releaseBuffer(buf); // copied
  }

  /** Copy `src[pos, end)` into the staging MiB, starting a frame each time it fills (add and addRuns). */
  private stage(src: Buffer, pos: number, end: number): void {
    while (pos < end) {
      const staging = (this.staging ??= stagingPool.acquire());
      const k = Math.min(ONE_PASS_FRAME - this.filled, end - pos);
      src.copy(staging, this.filled, pos, pos + k);
      this.filled += k;
      pos += k;
      if (this.filled === ONE_PASS_FRAME) {
        this.startStaged(staging, ONE_PASS_FRAME);
        this.staging = undefined;
        this.filled = 0;
      }
    }
  }

  /** Bytes of the staging MiB hashed so far (addRuns hashes staged bytes when their frame starts). */
  private stagedHashed = 0;

  /** Start the frame of the staging buffer's first `n` bytes, hashing those addRuns left unhashed. */
  private startStaged(staging: Buffer, n: number): void {
    if (this.stagedHashed < n) this.hash.update(staging.subarray(this.stagedHashed, n));
    this.stagedHashed = 0;
    this.start(n === staging.length ? staging : staging.subarray(0, n), staging);
  }

  private start(data: Buffer, input: Buffer): void {
    this.frames++;
    const blocks = this.lz4!.compressLz4Blocks(data);
    blocks.catch(() => undefined); // delivered by frameOut; no unhandled-rejection report meanwhile
    this.inFlight.push({ blocks, input, data });
  }

  private emit(b: Buffer): Buffer {
    this.emitted += b.length;
    return b;
  }

  /** The object's bytes that are ready, leaving at most `keep` frames compressing (waits for the others). */
  async *drain(keep = MAX_IN_FLIGHT - 1): AsyncGenerator<Buffer> {
    if (!this.lz4) {
      if (this.plain.length === 0) return;
      if (this.glue.length > 0) {
        yield this.emit(this.glue);
        this.glue = NOTHING;
      }
      while (this.plain.length > 0) yield this.emit(this.plain.shift()!);
      return;
    }
    while (this.inFlight.length > keep) yield* this.frameOut();
  }

  /** The oldest frame in flight, as buffers to write (its end mark goes out with what follows). */
  private async *frameOut(): AsyncGenerator<Buffer> {
    const lz4 = this.lz4!;
    const { blocks, input, data } = this.inFlight[0]!;
    let parts: Buffer[];
    let done: Array<Buffer | undefined>;
    /** A stored (incompressible) block handed out in place: its input goes back to its pool once written. */
    let inPlace = false;
    try {
      done = await blocks;
      // Incompressible blocks are copied from the input, which goes back to its pool now; but
      // in a one-file call the store hands it back once written (no copy in flight beside it).
      const raw = this.onCallingThread && done.length === 1 && done[0] === undefined;
      parts = lz4.lz4FrameParts(data, done, this.glue, raw);
      inPlace = raw;
    } finally {
      this.inFlight.shift();
      if (!inPlace) releaseBuffer(input);
    }
    // Counted as garbage either way: a store that does not free what it wrote (the cloud SDKs) leaves it to the collector.
    noteGarbage(inPlace ? data.length : lz4.lz4FrameGarbage(data, done, parts));
    if (this.onCallingThread) {
      // The body (the last part) is a buffer of its own, or the input itself; several blocks were copied into it.
      const body = parts[parts.length - 1]!;
      if (inPlace) releaseOnceWritten(body, input);
      else freeOnceWritten(body);
      if (done.length > 1) for (const b of done) if (b !== undefined) freeNow(b);
    }
    this.glue = END_MARK;
    for (const part of parts) yield this.emit(part);
  }

  /** The rest of the object: the last frames and the trailer; then `result` holds its figures. */
  async *finish(): AsyncGenerator<Buffer> {
    this.ended = true;
    if (this.lz4) {
      if (this.filled > 0) {
        const buf = this.staging!;
        this.staging = undefined;
        this.startStaged(buf, this.filled);
        this.filled = 0;
      }
      yield* this.drain(0);
      // Empty input still gets one (empty) frame, as the lz4 compressor writes it.
      if (this.frames === 0) this.glue = Buffer.concat([this.glue, this.lz4.emptyLz4Frame()]);
    } else {
      yield* this.drain(0);
    }
    const rawSize = this.rawSize;
    const payloadSize = this.emitted + this.glue.length - this.header.length;
    const sha256 = this.hash.digest('hex');
    const trailer = encodeTrailer(this.codec, { rawSize, payloadSize, sha256 });
    yield this.emit(Buffer.concat([this.glue, trailer]));
    this.result = { rawSize, payloadSize, sha256, storedSize: this.emitted };
  }

  /** Waits for compressions still running (they read their input) and hands every buffer back. */
  async dispose(): Promise<void> {
    for (const f of this.inFlight.splice(0)) {
      await f.blocks.catch(() => undefined);
      releaseBuffer(f.input);
    }
    if (this.staging) releaseBuffer(this.staging);
    this.staging = undefined;
    this.plain.length = 0;
  }
}

/**
 * The stored object `body` produces: `body` adds the raw bytes to the encoder and yields what
 * `drain()` hands out; the last frames and the trailer follow. A failure of `body` fails the
 * stream (and with it the put, before it commits); `done` then rejects. `what` names the object
 * in the error of a store that went away before the end.
 */
export async function encodeOnePass(codec: CodecName, what: string, body: (enc: OnePassEncoder) => AsyncGenerator<Buffer>): Promise<EncodedObject> {
  const enc = await OnePassEncoder.create(codec);
  let settle!: { resolve: (r: EncodeResult) => void; reject: (e: unknown) => void };
  const done = new Promise<EncodeResult>((resolve, reject) => (settle = { resolve, reject }));
  done.catch(() => undefined); // the put reports the stream's error; done is for the trailer

  async function* produce(): AsyncGenerator<Buffer> {
    let settled = false;
    try {
      yield* body(enc);
      yield* enc.finish();
      settled = true;
      settle.resolve(enc.result!);
    } catch (err) {
      settled = true;
      settle.reject(err);
      throw err;
    } finally {
      if (!settled) settle.reject(new Error(`encoding '${what}' stopped: its store went away`));
      await enc.dispose();
    }
  }

  return { stream: Readable.from(produce(), { objectMode: false, highWaterMark: 1 }), done };
}
