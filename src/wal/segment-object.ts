/**
 * The stored object of one local WAL file in one pass, without a stream pipeline: each 1 MiB
 * of the file is read into a pooled buffer, compressed as one lz4 frame (of LZ4_BLOCK blocks) on the
 * libuv threadpool (two frames in flight with one block per frame, one with several; or on this
 * thread, one frame, in a full-path wal-push: io/codecs/lz4-thread.ts) while this
 * thread checks it (segment-check.ts) and hashes it (sha256, for the trailer), and the object's
 * bytes come out as few, large buffers (one-pass-encoder.ts), so the store writes about two
 * buffers per MiB.
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
import { open, type FileHandle } from 'node:fs/promises';
import { releaseBuffer, type BufferPool } from '../io/buffer-pool.js';
import type { CodecName } from '../io/codec.js';
import { readInto } from '../io/pooled-file-stream.js';
import { encodeOnePass } from '../repo/one-pass-encoder.js';
import type { EncodedObject } from '../repo/object-stream.js';
import { SegmentChecker, SegmentShapeError, type SegmentCheckTarget } from './segment-check.js';

/**
 * The object of `path` (exactly `target.size` bytes, checked as `target.name`), encoded with
 * `codec` (lz4 or none). `pool` gives the read buffers (any size: the frames are cut at every
 * 1 MiB of the file, repo/one-pass-encoder.ts). `onRefused` is called when the checker refuses
 * the bytes, before the stream fails.
 */
export async function encodeSegmentObject(
  path: string, target: SegmentCheckTarget, codec: CodecName, pool: BufferPool, onRefused?: (err: SegmentShapeError) => void,
): Promise<EncodedObject> {
  return encodeOnePass(codec, target.name, async function* (enc) {
    const checker = new SegmentChecker(target);
    let fh: FileHandle | undefined;
    try {
      fh = await open(path, 'r');
      let pos = 0;
      for (;;) {
        const buf = pool.acquire();
        let got: number;
        try {
          got = await readInto(fh, buf, pos);
        } catch (err) {
          releaseBuffer(buf);
          throw err;
        }
        const last = got < buf.length;
        const data = buf.subarray(0, got);
        // Compression starts on the pool (and the hash here) before the check, which follows at
        // once (synchronously: nothing can take `buf` from the pool in between); all only read.
        enc.add(data, last, buf);
        try {
          if (got > 0) checker.update(data);
          if (last) checker.finish();
        } catch (err) {
          if (err instanceof SegmentShapeError) onRefused?.(err);
          throw err;
        }
        pos += got;
        // With several lz4 blocks per frame (PGARK_LZ4_BLOCK_KIB), no frame is left in flight
        // while the next MiB is read: a frame's blocks already keep the pool's threads busy, and
        // the agent stores several segments at once; a second frame per segment only held memory
        // (~10 MiB in the agent, bench/results/memory.md). Nor when lz4 compresses on this thread
        // (a full-path wal-push): the frame is done already. One block per frame on the pool:
        // one frame compresses while the next MiB is read.
        yield* enc.drain(enc.readAheadFrames);
        if (last) break;
      }
    } finally {
      await fh?.close();
    }
  });
}
