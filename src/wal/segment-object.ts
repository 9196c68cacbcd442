/**
 * The stored object of one local WAL file in one pass, without a stream pipeline: each 1 MiB
 * of the file is read into a pooled buffer, compressed as one lz4 frame on the libuv threadpool
 * (two frames in flight) while this thread checks it (segment-check.ts) and hashes it (sha256,
 * for the trailer), and
 * the object's bytes come out as few, large buffers (the object header with the first frame's
 * head, each block, each frame's end mark with the next frame's head, the last end mark with
 * the trailer), so the store writes about two buffers per MiB.
 *
 * The bytes are exactly those of encodeObject(file stream, codec) (repo/object-stream.ts with
 * the lz4 codec's compressor, io/codecs/lz4.ts): the same frames (one per 1 MiB of input, none
 * checksummed), the same header and trailer (test/unit/segment-object.test.ts compares them).
 * Plain objects only (Repository.putPlainEncoded); codecs other than lz4 and none, and
 * encrypted stanzas, go through Repository.putObject.
 *
 * The agent stores every segment this way, and so does a full-path wal-push (push-file.ts). A
 * read, a check or a compression that fails fails the stream (and with it the put, before it
 * commits); `done` then rejects.
 */
import { createHash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { noteGarbage } from '../common/gc-budget.js';
import { releaseBuffer, type BufferPool } from '../io/buffer-pool.js';
import type { CodecName } from '../io/codec.js';
import { readInto } from '../io/pooled-file-stream.js';
import { encodeHeader, encodeTrailer } from '../repo/object-format.js';
import type { EncodedObject, EncodeResult } from '../repo/object-stream.js';
import { SegmentChecker, SegmentShapeError, type SegmentCheckTarget } from './segment-check.js';

/** The codecs this encoder writes. */
export function onePassCodec(codec: CodecName): boolean {
  return codec === 'lz4' || codec === 'none';
}

/** Frames being compressed at once per object: the next MiB is read, checked and hashed meanwhile. */
const MAX_IN_FLIGHT = 2;

const NOTHING = Buffer.alloc(0);
/** A frame's end mark (read only: only ever copied or written out). */
const END_MARK = Buffer.alloc(4);

type Lz4 = typeof import('../io/codecs/lz4.js');
let lz4Module: Promise<Lz4> | undefined;

/**
 * The object of `path` (exactly `target.size` bytes, checked as `target.name`), encoded with
 * `codec` (lz4 or none). `pool` gives the read buffers (their size is the frame size: 1 MiB for
 * the bytes to equal encodeObject's). `onRefused` is called when the checker refuses the bytes,
 * before the stream fails.
 */
export async function encodeSegmentObject(
  path: string, target: SegmentCheckTarget, codec: CodecName, pool: BufferPool, onRefused?: (err: SegmentShapeError) => void,
): Promise<EncodedObject> {
  if (!onePassCodec(codec)) throw new Error(`one-pass segment encoder: codec ${codec} is not supported`);
  const lz4 = codec === 'lz4' ? await (lz4Module ??= import('../io/codecs/lz4.js')) : undefined;
  let settle!: { resolve: (r: EncodeResult) => void; reject: (e: unknown) => void };
  const done = new Promise<EncodeResult>((resolve, reject) => (settle = { resolve, reject }));
  done.catch(() => undefined); // the put reports the stream's error; done is for the trailer

  async function* produce(): AsyncGenerator<Buffer> {
    const checker = new SegmentChecker(target);
    const hash = createHash('sha256');
    const header = encodeHeader(codec);
    const inFlight: Array<{ block: Promise<Buffer | undefined>; input: Buffer; data: Buffer }> = [];
    let rawSize = 0;
    /** Bytes of the object handed out so far. */
    let emitted = 0;
    const emit = (b: Buffer): Buffer => {
      emitted += b.length;
      return b;
    };
    let settled = false;
    /** Bytes waiting to be written before the next block: the header or an end mark, and a frame head. */
    let glue: Buffer = header;
    let fh: FileHandle | undefined;
    try {
      fh = await open(path, 'r');
      const check = (data: Buffer, last: boolean): void => {
        try {
          if (data.length > 0) checker.update(data);
          if (last) checker.finish();
        } catch (err) {
          if (err instanceof SegmentShapeError) onRefused?.(err);
          throw err;
        }
      };
      /** The oldest frame in flight, as buffers to write. */
      async function* frameOut(): AsyncGenerator<Buffer> {
        const { block, input, data } = inFlight.shift()!;
        let body: Buffer;
        let raw = false;
        try {
          const b = await block;
          raw = b === undefined;
          body = b ?? Buffer.from(data); // incompressible: stored as is (a copy: the input goes back to the pool)
        } finally {
          releaseBuffer(input);
        }
        // lz4-napi's buffer is garbage once written: about the input's size (see compressLz4Block).
        noteGarbage(data.length);
        const head = Buffer.allocUnsafe(glue.length + lz4!.LZ4_FRAME_HEAD_SIZE);
        glue.copy(head, 0);
        lz4!.writeLz4FrameHead(head, glue.length, body.length, raw);
        glue = END_MARK;
        yield emit(head);
        yield emit(body);
      }

      for (;;) {
        const buf = pool.acquire();
        let got: number;
        try {
          got = await readInto(fh!, buf, rawSize);
        } catch (err) {
          releaseBuffer(buf);
          throw err;
        }
        const last = got < buf.length;
        const data = buf.subarray(0, got);
        if (lz4 && got > 0) {
          // Compressed on the pool while this thread checks and hashes the same bytes (only read by both).
          const block = lz4.compressLz4Block(data);
          block.catch(() => undefined); // delivered by frameOut; no unhandled-rejection report meanwhile
          inFlight.push({ block, input: buf, data });
        }
        try {
          check(data, last);
        } catch (err) {
          if (!lz4 || got === 0) releaseBuffer(buf); // else released after its compression (finally)
          throw err;
        }
        hash.update(data);
        rawSize += got;
        if (!lz4) {
          // Uncompressed: the bytes themselves (a copy: the buffer goes back to the pool).
          const out = Buffer.from(data);
          releaseBuffer(buf);
          if (glue.length > 0) {
            yield emit(glue);
            glue = NOTHING;
          }
          if (out.length > 0) yield emit(out);
        } else if (got > 0) {
          while (inFlight.length >= MAX_IN_FLIGHT || (last && inFlight.length > 0)) yield* frameOut();
        } else {
          releaseBuffer(buf);
          while (inFlight.length > 0) yield* frameOut();
        }
        if (last) break;
      }
      // Empty input still gets one (empty) frame, as the lz4 compressor writes it.
      if (lz4 && rawSize === 0) glue = Buffer.concat([glue, lz4.emptyLz4Frame()]);
      const payloadSize = emitted + glue.length - header.length;
      const sha256 = hash.digest('hex');
      const trailer = encodeTrailer(codec, { rawSize, payloadSize, sha256 });
      yield emit(Buffer.concat([glue, trailer]));
      settled = true;
      settle.resolve({ rawSize, payloadSize, sha256, storedSize: emitted });
    } catch (err) {
      settled = true;
      settle.reject(err);
      throw err;
    } finally {
      if (!settled) settle.reject(new Error(`encoding '${target.name}' stopped: its store went away`));
      // Compressions still running read their input: it goes back to the pool only after them.
      for (const f of inFlight.splice(0)) {
        await f.block.catch(() => undefined);
        releaseBuffer(f.input);
      }
      await fh?.close();
    }
  }

  return { stream: Readable.from(produce(), { objectMode: false, highWaterMark: 1 }), done };
}
