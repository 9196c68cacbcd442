/**
 * Streaming LZ4 frame-format decoder (https://github.com/lz4/lz4/blob/dev/doc/lz4_Frame_format.md).
 * lz4-napi only decodes whole frames from one buffer, and frames written by the lz4 CLI can be as
 * large as the whole input, so frames are parsed here and only single blocks (<= 4 MiB) are held
 * and handed to the native block decoder. Concatenated and skippable frames are accepted; header,
 * block and content checksums are verified.
 */
import { Transform, type TransformCallback } from 'node:stream';
import { IntegrityError } from '../../common/errors.js';
import { Xxh32, xxh32 } from './xxhash32.js';

export const LZ4_FRAME_MAGIC = 0x184d2204;
const SKIPPABLE_MAGIC_MASK = 0xfffffff0;
const SKIPPABLE_MAGIC = 0x184d2a50;
const LINKED_DICT_SIZE = 64 * 1024;

/** Decodes one LZ4 block; `capacity` is the block maximum size, `dict` the preceding output when blocks are linked. */
/**
 * Decode one block. `room`, when given, is a buffer holding the block at offset 4 whose first
 * 4 bytes the decoder may overwrite (no copy needed to prefix the block).
 */
export type Lz4BlockDecoder = (block: Buffer, capacity: number, dict: Buffer | undefined, room?: Buffer) => Buffer;

type Step =
  | { kind: 'magic' }
  | { kind: 'skipLength' }
  | { kind: 'skipBody'; remaining: number }
  | { kind: 'descriptor' }
  | { kind: 'descriptorRest'; flg: number; bd: number }
  | { kind: 'blockSize' }
  | { kind: 'blockData'; size: number; raw: boolean }
  /** An uncompressed block passed on piece by piece as the input holds it (borrowRaw, no block checksum). */
  | { kind: 'rawData'; remaining: number }
  | { kind: 'contentChecksum' };

interface FrameState {
  blockMax: number;
  linked: boolean;
  blockChecksum: boolean;
  contentChecksum: boolean;
  contentSize: bigint | undefined;
  produced: bigint;
  hash: Xxh32;
  dict: Buffer | undefined;
}

const corrupt = (what: string): IntegrityError => new IntegrityError(`corrupt lz4 stream: ${what}`);

/** The frame decoder as a stream: each decoded block is pushed as it comes. */
export class Lz4FrameDecoder extends Transform {
  private readonly parser: Lz4FrameParser;
  /** The callback of a chunk fed but not used up while the reader's buffer is full (see run). */
  private paused: TransformCallback | undefined;

  /** See Lz4FrameParser. */
  constructor(decodeBlock: Lz4BlockDecoder, verifyContent = true, inPlace = false) {
    super();
    this.parser = new Lz4FrameParser(decodeBlock, verifyContent, inPlace);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    try {
      this.parser.feed(chunk);
    } catch (err) {
      return done(err as Error);
    }
    this.run(done);
  }

  /**
   * Decodes the chunk fed until it is used up, or until the reader has a full buffer: one
   * compressed chunk can hold many blocks (a 1 MiB read of mostly empty WAL decodes to the whole
   * 16 MiB segment), and decoding them all at once would hold them all in memory. The rest waits
   * for the next _read.
   */
  private run(done: TransformCallback): void {
    try {
      for (let out = this.parser.next(); out !== null; out = this.parser.next()) {
        if (!this.push(out)) {
          this.paused = done;
          return;
        }
      }
    } catch (err) {
      return done(err as Error);
    }
    done();
  }

  override _read(size: number): void {
    const p = this.paused;
    if (p !== undefined) {
      this.paused = undefined;
      this.run(p);
      if (this.paused !== undefined) return; // pushed a block, paused again
    }
    // The chunk is used up (perhaps without a block to push: a read must still lead to one), so
    // let Transform take the next chunk, as it does when it is asked to read.
    super._read(size);
  }

  override _flush(done: TransformCallback): void {
    try {
      this.parser.end();
    } catch (err) {
      return done(err as Error);
    }
    done();
  }
}

/**
 * The frame parser, pulled: `feed` one input chunk, then `next()` until it returns null (the
 * chunk is used up), then the next chunk; `end()` after the last. Each block is decoded only
 * when `next()` is called, so a block decoder may write every block into the same buffer when
 * the caller is done with one block before it asks for the next (object-reader.ts).
 */
export class Lz4FrameParser {
  private step: Step = { kind: 'magic' };
  /** A field that spans input chunks is gathered here (accLen bytes so far). */
  private acc: Buffer | undefined;
  private accLen = 0;
  private frame: FrameState | undefined;
  private sawInput = false;
  /** The block data just read, with 4 writable bytes in front (see next). */
  private room: Buffer | undefined;
  private chunk: Buffer = Buffer.alloc(0);
  private pos = 0;

  /**
   * `inPlace`: the caller hands over its chunks (nobody reads them afterwards), so the 4 bytes
   * in front of a block may be overwritten to avoid copying the block.
   * `borrowRaw`: the caller is done with each block before it calls next() again and does not
   * change it, so an uncompressed (raw) block is returned as a view of the input instead of a
   * copy (object-reader.ts: incompressible data is stored as raw blocks); without block
   * checksums, one view per input chunk it spans, never gathered into the accumulator.
   */
  constructor(private readonly decodeBlock: Lz4BlockDecoder, private readonly verifyContent = true, private readonly inPlace = false, private readonly borrowRaw = false) {}

  /**
   * The accumulator can move from a parser that is done to the next one (object-reader.ts keeps
   * one per thread): a new parser starts with `useAccumulator(spare)`; `takeAccumulator()` once
   * the caller is done with every block this parser returned (a raw block gathered there is a
   * view of it), after which the parser must not be fed again.
   */
  useAccumulator(b: Buffer | undefined): void {
    if (this.acc === undefined && this.accLen === 0) this.acc = b;
  }

  takeAccumulator(): Buffer | undefined {
    const a = this.acc;
    this.acc = undefined;
    return a;
  }

  /** The next input chunk (the previous one must be used up: next() returned null). */
  feed(chunk: Buffer): void {
    if (this.pos < this.chunk.length) throw new Error('Lz4FrameParser.feed before the previous chunk was used up');
    if (chunk.length > 0) this.sawInput = true;
    this.chunk = chunk;
    this.pos = 0;
  }

  /** After the last chunk: the input must have ended at a frame boundary. */
  end(): void {
    if (!this.sawInput) throw corrupt('empty input');
    if (this.step.kind !== 'magic' || this.accLen > 0) throw corrupt('truncated input');
  }

  private wanted(): number {
    switch (this.step.kind) {
      case 'magic':
      case 'skipLength':
      case 'blockSize':
      case 'contentChecksum':
        return 4;
      case 'descriptor':
        return 2;
      case 'descriptorRest': {
        const flg = this.step.flg;
        return ((flg & 0x08) !== 0 ? 8 : 0) + ((flg & 0x01) !== 0 ? 4 : 0) + 1;
      }
      case 'blockData':
        return this.step.size + (this.frame?.blockChecksum === true ? 4 : 0);
      case 'skipBody':
      case 'rawData':
        return 0;
    }
  }

  /** The next decoded block (never empty) from the chunk fed, or null once the chunk is used up. */
  next(): Buffer | null {
    const chunk = this.chunk;
    let pos = this.pos;
    while (pos < chunk.length) {
      const step = this.step;
      if (step.kind === 'skipBody') {
        const k = Math.min(step.remaining, chunk.length - pos);
        pos += k;
        step.remaining -= k;
        if (step.remaining === 0) this.step = { kind: 'magic' };
        continue;
      }
      if (step.kind === 'rawData') {
        // No copy into the accumulator: each piece is a view of the chunk (a 1 MiB raw block
        // spans two 1 MiB reads; gathering it cost a copy and a block-sized buffer per reader).
        const k = Math.min(step.remaining, chunk.length - pos);
        const out = chunk.subarray(pos, pos + k);
        pos += k;
        step.remaining -= k;
        if (step.remaining === 0) this.step = { kind: 'blockSize' };
        this.pos = pos;
        return this.produced(out);
      }
      const n = this.wanted();
      // Block data is given 4 bytes of room in front (see Lz4BlockDecoder): in place when the 4
      // bytes before it are in this chunk (already parsed, so free to overwrite: the chunk is
      // ours once written to us), or in the accumulator.
      const room = step.kind === 'blockData' ? 4 : 0;
      let field: Buffer;
      if (this.accLen === 0 && chunk.length - pos >= n) {
        field = chunk.subarray(pos, pos + n);
        this.room = room > 0 && this.inPlace && pos >= 4 ? chunk.subarray(pos - 4, pos + n) : undefined;
        pos += n;
      } else {
        // The accumulator is reused field after field: a field is used up (decoded, copied or
        // parsed) before the next one is read.
        // It grows to the next power of two: blocks of one size class (e.g. ~0.9 MiB compressed
        // from 1 MiB) then share one buffer instead of a new one for each larger block, and the
        // pages past the largest block are never written (so never resident).
        if (this.accLen === 0 && (this.acc === undefined || this.acc.length < n + room)) this.acc = Buffer.allocUnsafe(2 ** Math.ceil(Math.log2(n + room)));
        const acc = this.acc!;
        const k = Math.min(n - this.accLen, chunk.length - pos);
        chunk.copy(acc, room + this.accLen, pos, pos + k);
        this.accLen += k;
        pos += k;
        if (this.accLen < n) break;
        field = acc.subarray(room, room + n);
        this.room = room > 0 ? acc.subarray(0, room + n) : undefined;
        this.accLen = 0;
      }
      this.pos = pos;
      const out = this.onField(field);
      if (out !== undefined && out.length > 0) return out;
    }
    this.pos = pos;
    return null;
  }

  /** Handles one complete field; a data block's decoded bytes are returned. */
  private onField(b: Buffer): Buffer | undefined {
    const step = this.step;
    switch (step.kind) {
      case 'magic': {
        const magic = b.readUInt32LE(0);
        if (magic === LZ4_FRAME_MAGIC) this.step = { kind: 'descriptor' };
        else if (((magic & SKIPPABLE_MAGIC_MASK) >>> 0) === SKIPPABLE_MAGIC) this.step = { kind: 'skipLength' };
        else throw corrupt(`bad frame magic 0x${magic.toString(16)}`);
        return;
      }
      case 'skipLength': {
        const len = b.readUInt32LE(0);
        this.step = len === 0 ? { kind: 'magic' } : { kind: 'skipBody', remaining: len };
        return;
      }
      case 'descriptor':
        this.step = { kind: 'descriptorRest', flg: b[0]!, bd: b[1]! };
        return;
      case 'descriptorRest':
        this.startFrame(step.flg, step.bd, b);
        return;
      case 'blockSize': {
        const word = b.readUInt32LE(0);
        if (word === 0) {
          this.endBlocks();
          return;
        }
        const size = word & 0x7fffffff;
        if (size > this.frame!.blockMax) throw corrupt(`block of ${size} bytes exceeds the frame's maximum`);
        const raw = (word & 0x80000000) !== 0;
        if (raw && this.borrowRaw && !this.frame!.blockChecksum) this.step = size === 0 ? { kind: 'blockSize' } : { kind: 'rawData', remaining: size };
        else this.step = { kind: 'blockData', size, raw };
        return;
      }
      case 'blockData': {
        const out = this.onBlock(b, step.size, step.raw);
        this.step = { kind: 'blockSize' };
        return out;
      }
      case 'contentChecksum':
        if (this.verifyContent && b.readUInt32LE(0) !== this.frame!.hash.digest()) throw corrupt('content checksum mismatch');
        this.step = { kind: 'magic' };
        this.frame = undefined;
        return;
      case 'skipBody':
      case 'rawData':
        return;
    }
  }

  private startFrame(flg: number, bd: number, rest: Buffer): void {
    if (flg >> 6 !== 1) throw corrupt(`unsupported frame version ${flg >> 6}`);
    if ((flg & 0x02) !== 0 || (bd & 0x8f) !== 0) throw corrupt('reserved descriptor bits set');
    if ((flg & 0x01) !== 0) throw corrupt('frames requiring a dictionary are not supported');
    const blockMaxId = (bd >> 4) & 0x07;
    if (blockMaxId < 4) throw corrupt(`invalid block maximum size id ${blockMaxId}`);
    const descriptor = Buffer.concat([Buffer.from([flg, bd]), rest.subarray(0, rest.length - 1)]);
    if (rest[rest.length - 1] !== ((xxh32(descriptor) >>> 8) & 0xff)) throw corrupt('header checksum mismatch');
    this.frame = {
      blockMax: 1 << (8 + 2 * blockMaxId),
      linked: (flg & 0x20) === 0,
      blockChecksum: (flg & 0x10) !== 0,
      contentChecksum: (flg & 0x04) !== 0,
      contentSize: (flg & 0x08) !== 0 ? rest.readBigUInt64LE(0) : undefined,
      produced: 0n,
      hash: new Xxh32(),
      dict: undefined,
    };
    this.step = { kind: 'blockSize' };
  }

  private onBlock(b: Buffer, size: number, raw: boolean): Buffer {
    const frame = this.frame!;
    const data = b.subarray(0, size);
    if (frame.blockChecksum && b.readUInt32LE(size) !== xxh32(data)) throw corrupt('block checksum mismatch');
    let out: Buffer;
    if (raw) {
      out = this.borrowRaw ? data : Buffer.from(data);
    } else {
      try {
        out = this.decodeBlock(data, frame.blockMax, frame.dict, this.room);
      } catch (err) {
        throw new IntegrityError(`corrupt lz4 stream: ${(err as Error).message}`, { cause: err });
      }
    }
    return this.produced(out);
  }

  /** Output of the current frame: counted, hashed (content checksum), kept as the next linked block's window. */
  private produced(out: Buffer): Buffer {
    const frame = this.frame!;
    frame.produced += BigInt(out.length);
    if (frame.contentChecksum && this.verifyContent) frame.hash.update(out);
    if (frame.linked) frame.dict = keepTail(frame.dict, out);
    return out;
  }

  private endBlocks(): void {
    const frame = this.frame!;
    if (frame.contentSize !== undefined && frame.contentSize !== frame.produced) {
      throw corrupt(`content size ${frame.produced} differs from the declared ${frame.contentSize}`);
    }
    if (frame.contentChecksum) {
      this.step = { kind: 'contentChecksum' };
    } else {
      this.step = { kind: 'magic' };
      this.frame = undefined;
    }
  }
}

/** Last 64 KiB of the output so far: the window linked blocks may reference. */
function keepTail(dict: Buffer | undefined, out: Buffer): Buffer {
  if (out.length >= LINKED_DICT_SIZE) return Buffer.from(out.subarray(out.length - LINKED_DICT_SIZE));
  const joined = dict === undefined ? out : Buffer.concat([dict, out]);
  return Buffer.from(joined.subarray(Math.max(0, joined.length - LINKED_DICT_SIZE)));
}
