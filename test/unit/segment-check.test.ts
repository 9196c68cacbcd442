/**
 * SegmentChecker: a WAL segment is stored or served only when it is exactly the segment size
 * and its page headers follow each other as PostgreSQL writes them (xlogreader.c's page checks),
 * with a zeroed end allowed only as PostgreSQL leaves it after a WAL switch.
 */
import { describe, expect, it } from 'vitest';
import { SegmentChecker, SegmentShapeError, type SegmentCheckTarget } from '../../src/wal/segment-check.js';
import { fakeSegment, fakeWal } from '../helpers/wal-bytes.js';

const SEG = 1024 * 1024;
const BLK = 8192;
const NAME = '000000010000000000000003'; // segno 3 with 1 MiB segments
const seg3 = (o: Partial<Parameters<typeof fakeSegment>[1]> = {}) => fakeSegment(3n, { walSegmentSize: SEG, ...o });

/** Feed `bytes` in uneven chunks (headers split across chunks too); the error, if any. */
function check(bytes: Buffer, target: Partial<SegmentCheckTarget> = {}, chunks = [1, 7, 16, 5000, 8192, 100_000, 3]): string | undefined {
  const c = new SegmentChecker({ name: NAME, size: SEG, ...target });
  try {
    let pos = 0;
    for (let i = 0; pos < bytes.length; i++) {
      const n = Math.min(chunks[i % chunks.length]!, bytes.length - pos);
      c.update(bytes.subarray(pos, pos + n));
      pos += n;
    }
    c.finish();
    return undefined;
  } catch (err) {
    expect(err).toBeInstanceOf(SegmentShapeError);
    return (err as Error).message;
  }
}

function setPage(buf: Buffer, page: number, f: (h: Buffer) => void): Buffer {
  const b = Buffer.from(buf);
  f(b.subarray(page * BLK, page * BLK + 24));
  return b;
}

/** A segment switched at page `k`: pages from k on are all zero, as PostgreSQL writes them. */
function switchedAt(k: number): Buffer {
  const b = seg3();
  b.fill(0, k * BLK);
  return b;
}

describe('SegmentChecker', () => {
  it('accepts whole segments in any chunking, with any block size, and a switched segment', () => {
    expect(check(seg3())).toBeUndefined();
    expect(check(seg3(), {}, [SEG])).toBeUndefined();
    expect(check(seg3({ blockSize: 16384 }))).toBeUndefined();
    expect(check(seg3({ blockSize: 1024 }))).toBeUndefined();
    expect(check(switchedAt(1))).toBeUndefined();
    expect(check(switchedAt(77))).toBeUndefined();
    expect(check(seg3(), { systemIdentifier: 7000000000000000001n })).toBeUndefined();
  });

  it('checks both halves of the page address above 4 GiB of WAL (the address is compared as two 32-bit words)', () => {
    const segno = 5n * 4096n + 3n; // 1 MiB segments: 4096 per 4 GiB of WAL
    const name = '000000010000000500000003';
    const high = fakeSegment(segno, { walSegmentSize: SEG });
    expect(check(high, { name })).toBeUndefined();
    expect(check(high, { name }, [SEG])).toBeUndefined();
    // The same offsets 4 GiB lower (high word off by one), and the low word off by one page.
    expect(check(setPage(high, 9, (h) => h.writeUInt32LE(4, 12)), { name })).toMatch(/page at offset 73728 \(5\/312000\): page address 4\/312000/);
    expect(check(setPage(high, 9, (h) => h.writeUInt32LE(0x312000 + BLK, 8)), { name }, [SEG])).toMatch(/page address 5\/314000/);
  });

  it('accepts the timeline rising inside the segment a switch happened in', () => {
    // Timeline 2's first segment: the parent's pages (tli 1) up to the switch, then tli 2.
    const b = Buffer.concat([fakeWal(3n * BigInt(SEG), 40 * BLK, { walSegmentSize: SEG, timeline: 1 }),
      fakeWal(3n * BigInt(SEG) + 40n * BigInt(BLK), SEG - 40 * BLK, { walSegmentSize: SEG, timeline: 2 })]);
    expect(check(b, { name: '000000020000000000000003' })).toBeUndefined();
  });

  it.each([
    ['8192 bytes (a short read)', () => seg3().subarray(0, 8192), /8192 bytes, expected exactly 1048576/],
    ['0 bytes', () => Buffer.alloc(0), /0 bytes, expected exactly/],
    ['one byte short', () => seg3().subarray(0, SEG - 1), /1048575 bytes/],
    ['one byte too many', () => Buffer.concat([seg3(), Buffer.alloc(1)]), /more than the expected 1048576 bytes/],
    ['11 MiB', () => Buffer.concat([seg3(), Buffer.alloc(10 * SEG)]), /more than the expected/],
    ['all zeros', () => Buffer.alloc(SEG), /first page/],
    ['another segment\'s bytes', () => fakeSegment(4n, { walSegmentSize: SEG }), /first page: .*page address/],
    ['a header of another segment size', () => fakeSegment(3n, { walSegmentSize: SEG }).fill(0, 32, 36), /first page/],
    ['a zeroed page in the middle', () => { const b = seg3(); b.fill(0, 10 * BLK, 11 * BLK); return b; }, /offset 90112 is not zero, after the zeroed pages from offset 81920/],
    ['zeros from a page start, then the end of the WAL again', () => { const b = seg3(); b.fill(0, 10 * BLK, SEG - 100); return b; }, /WAL after a hole/],
    ['a zeroed header but bytes in the page', () => setPage(seg3(), 5, (h) => h.fill(0)), /is not zero, after the zeroed pages from offset 40960/],
    ['a stale page (recycled segment)', () => setPage(seg3(), 9, (h) => h.writeBigUInt64LE(BigInt(SEG) + 9n * BigInt(BLK), 8)), /page at offset 73728 .*page address 0\/112000/],
    ['another magic', () => setPage(seg3(), 2, (h) => h.writeUInt16LE(0xd113, 0)), /magic 0xd113 differs/],
    ['unknown info bits', () => setPage(seg3(), 2, (h) => h.writeUInt16LE(0x0010, 2)), /invalid info bits/],
    ['a long header inside', () => setPage(seg3(), 2, (h) => h.writeUInt16LE(0x0002, 2)), /long page header inside/],
    ['a timeline newer than the name\'s', () => setPage(seg3(), 2, (h) => h.writeUInt32LE(2, 4)), /timeline 2 out of sequence/],
  ] as const)('refuses %s', (_what, bytes, why) => {
    expect(check(bytes())).toMatch(why);
  });

  it('refuses the timeline going back between pages', () => {
    const b = setPage(fakeSegment(3n, { walSegmentSize: SEG, timeline: 2 }), 4, (h) => h.writeUInt32LE(1, 4));
    expect(check(b, { name: '000000020000000000000003' })).toMatch(/timeline 1 out of sequence \(previous page 2/);
  });

  it('refuses another cluster\'s segment when the system identifier is known', () => {
    expect(check(seg3(), { systemIdentifier: 42n })).toMatch(/system identifier/);
  });

  it('checks a .partial file for its size and first page only', () => {
    const partial = seg3();
    partial.fill(0xab, 100 * BLK); // whatever the file held after the switch point
    expect(check(partial, { name: `${NAME}.partial` })).toBeUndefined();
    expect(check(partial.subarray(0, SEG / 2), { name: `${NAME}.partial` })).toMatch(/524288 bytes, expected exactly/);
    expect(check(fakeSegment(5n, { walSegmentSize: SEG }), { name: `${NAME}.partial` })).toMatch(/first page/);
  });

  it('checks history and backup history files for their size only', () => {
    const text = Buffer.from('1\t0/3000000\tno recovery target specified\n');
    expect(check(text, { name: '00000002.history', size: text.length })).toBeUndefined();
    expect(check(text.subarray(0, 10), { name: '00000002.history', size: text.length })).toMatch(/10 bytes, expected exactly/);
  });
});
