// The one-pass segment encoder (src/wal/segment-object.ts) writes exactly the bytes of the
// stream pipeline it replaces for the agent and wal-push (encodeObject of the checked file
// stream), so every reader, old and new, decodes its objects; and it refuses what the checker
// refuses, with `done` rejected and nothing handed out that could complete a store.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { BufferPool } from '../../src/io/buffer-pool.js';
import { pooledFileStream } from '../../src/io/pooled-file-stream.js';
import { decodeObject, encodeObject, readAll } from '../../src/repo/object-stream.js';
import { checkedWalStream } from '../../src/wal/checked-stream.js';
import { SegmentShapeError } from '../../src/wal/segment-check.js';
import { encodeSegmentObject } from '../../src/wal/segment-object.js';
import { fakeSegment } from '../helpers/wal-bytes.js';

const MiB = 1024 * 1024;
const dir = mkdtempSync(join(tmpdir(), 'pgark-segment-object-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const pool = new BufferPool(MiB, 8);

/** A segment whose record bytes repeat (compresses well), with every page header valid. */
function compressibleSegment(segno: bigint, size: number): Buffer {
  const seg = fakeSegment(segno, { walSegmentSize: size });
  for (let page = 0; page < size; page += 8192) {
    const from = page + (page === 0 ? 40 : 24);
    for (let i = from; i < page + 8192; i++) seg[i] = (i * 31 + (i >> 9)) & 0x3f;
  }
  return seg;
}

/** Half compressible, half random: frames of both kinds (compressed and stored) in one object. */
function mixedSegment(segno: bigint, size: number): Buffer {
  const seg = compressibleSegment(segno, size);
  fakeSegment(segno, { walSegmentSize: size }).copy(seg, size / 2, size / 2);
  return seg;
}

async function viaPipeline(path: string, name: string, size: number, codec: 'lz4' | 'none'): Promise<{ bytes: Buffer; sha256: string; payloadSize: number; storedSize: number }> {
  const { stream, done } = await encodeObject(checkedWalStream(pooledFileStream(path, pool), { name, size }), codec);
  const bytes = await readAll(stream, 64 * MiB);
  const r = await done;
  return { bytes, sha256: r.sha256, payloadSize: r.payloadSize, storedSize: r.storedSize };
}

async function viaOnePass(path: string, name: string, size: number, codec: 'lz4' | 'none') {
  const { stream, done } = await encodeSegmentObject(path, { name, size }, codec, pool);
  const bytes = await readAll(stream, 64 * MiB);
  const r = await done;
  return { bytes, sha256: r.sha256, payloadSize: r.payloadSize, storedSize: r.storedSize };
}

const CASES: Array<[string, string, () => Buffer]> = [
  ['compressible 16 MiB segment', '000000010000000000000003', () => compressibleSegment(3n, 16 * MiB)],
  ['random (stored) 2 MiB segment', '000000010000000000000005', () => fakeSegment(5n, { walSegmentSize: 2 * MiB })],
  ['mixed 4 MiB segment', '000000010000000000000002', () => mixedSegment(2n, 4 * MiB)],
  ['1 MiB segment (one frame)', '000000010000000000000009', () => compressibleSegment(9n, MiB)],
  ['history file (not a whole MiB)', '00000002.history', () => Buffer.from('1\t0/3000000\tno recovery target specified\n')],
  ['empty backup history file', '000000010000000000000003.00000028.backup', () => Buffer.alloc(0)],
];

describe('one-pass segment encoder', () => {
  for (const codec of ['lz4', 'none'] as const) {
    for (const [what, name, make] of CASES) {
      it(`${codec}, ${what}: the same bytes as the stream pipeline, and they decode to the file`, async () => {
        const raw = make();
        const path = join(dir, `${codec}-${name}`);
        writeFileSync(path, raw);
        const a = await viaPipeline(path, name, raw.length, codec);
        const b = await viaOnePass(path, name, raw.length, codec);
        expect(b.bytes.equals(a.bytes)).toBe(true);
        expect({ ...b, bytes: undefined }).toEqual({ ...a, bytes: undefined });
        expect(b.sha256).toBe(createHash('sha256').update(raw).digest('hex'));
        expect(b.storedSize).toBe(b.bytes.length);
        const decoded = await decodeObject(Readable.from([b.bytes]), name);
        expect((await readAll(decoded, 64 * MiB)).equals(raw)).toBe(true);
        await decoded.verified;
      });
    }
  }

  it('a segment one page short is refused: the stream fails, done rejects, onRefused is told', async () => {
    const name = '000000010000000000000004';
    const path = join(dir, 'short');
    writeFileSync(path, compressibleSegment(4n, 2 * MiB).subarray(0, 2 * MiB - 8192));
    let refused: SegmentShapeError | undefined;
    const { stream, done } = await encodeSegmentObject(path, { name, size: 2 * MiB }, 'lz4', pool, (e) => (refused = e));
    await expect(readAll(stream, 64 * MiB)).rejects.toThrow(/expected exactly 2097152/);
    await expect(done).rejects.toThrow(SegmentShapeError);
    expect(refused).toBeInstanceOf(SegmentShapeError);
  });

  it('a page with a stale address is refused before the trailer is handed out', async () => {
    const name = '000000010000000000000006';
    const path = join(dir, 'stale');
    const seg = compressibleSegment(6n, 4 * MiB);
    seg.writeUInt32LE(0x12345678, 3 * MiB + 8); // the page address of a page in the last MiB
    writeFileSync(path, seg);
    const { stream, done } = await encodeSegmentObject(path, { name, size: 4 * MiB }, 'lz4', pool);
    const seen: Buffer[] = [];
    await expect((async () => {
      for await (const c of stream) seen.push(c as Buffer);
    })()).rejects.toThrow(/page address/);
    await expect(done).rejects.toThrow(SegmentShapeError);
    expect(seen.some((c) => c.includes(Buffer.from('PGAT', 'latin1')))).toBe(false);
  });

  it('a store that goes away stops the encoder and rejects done', async () => {
    const name = '000000010000000000000007';
    const path = join(dir, 'abandoned');
    writeFileSync(path, compressibleSegment(7n, 8 * MiB));
    const { stream, done } = await encodeSegmentObject(path, { name, size: 8 * MiB }, 'lz4', pool);
    await new Promise<void>((resolve) => stream.once('data', () => resolve()));
    stream.destroy();
    await expect(done).rejects.toThrow();
  });

  it('a missing file fails the stream and done', async () => {
    const { stream, done } = await encodeSegmentObject(join(dir, 'nope'), { name: '000000010000000000000008', size: MiB }, 'lz4', pool);
    await expect(readAll(stream, MiB)).rejects.toThrow(/ENOENT/);
    await expect(done).rejects.toThrow(/ENOENT/);
  });
});
