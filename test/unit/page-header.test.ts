import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../src/common/errors.js';
import {
  SIZE_OF_LONG_PAGE_HEADER,
  XLP_BKP_REMOVABLE,
  XLP_FIRST_IS_CONTRECORD,
  XLP_LONG_HEADER,
  parseLongPageHeader,
  pgVersionForWalMagic,
  validateSegmentHeader,
  walMagicForPgVersion,
} from '../../src/wal/page-header.js';

const MiB = 1024 * 1024;

interface HeaderFields {
  magic: number;
  info: number;
  timeline: number;
  pageAddr: bigint;
  remLen: number;
  systemIdentifier: bigint;
  segmentSize: number;
  blockSize: number;
}

const defaults: HeaderFields = {
  magic: 0xd110,
  info: XLP_LONG_HEADER | XLP_BKP_REMOVABLE,
  timeline: 1,
  pageAddr: 0x1000000n,
  remLen: 0,
  systemIdentifier: 7711328407579369710n,
  segmentSize: 16 * MiB,
  blockSize: 8192,
};

/** Build a long page header the way PostgreSQL lays it out on x86-64. */
function buildHeader(overrides: Partial<HeaderFields> = {}, length = 8192): Buffer {
  const f = { ...defaults, ...overrides };
  const buf = Buffer.alloc(Math.max(length, SIZE_OF_LONG_PAGE_HEADER));
  buf.writeUInt16LE(f.magic, 0);
  buf.writeUInt16LE(f.info, 2);
  buf.writeUInt32LE(f.timeline, 4);
  buf.writeBigUInt64LE(f.pageAddr, 8);
  buf.writeUInt32LE(f.remLen, 16);
  // bytes 20..23: padding
  buf.writeBigUInt64LE(f.systemIdentifier, 24);
  buf.writeUInt32LE(f.segmentSize, 32);
  buf.writeUInt32LE(f.blockSize, 36);
  return buf.subarray(0, length);
}

describe('pgVersionForWalMagic', () => {
  it.each([
    [13, 0xd106],
    [14, 0xd10d],
    [15, 0xd110],
    [16, 0xd113],
    [17, 0xd116],
    [18, 0xd118],
  ])('PostgreSQL %s writes magic 0x%s', (version, magic) => {
    expect(pgVersionForWalMagic(magic)).toBe(version);
    expect(walMagicForPgVersion(version)).toBe(magic);
  });

  it.each([0, 0xd101, 0xd105, 0xd111, 0xffff])('unknown magic 0x%s', (magic) => {
    expect(pgVersionForWalMagic(magic)).toBeUndefined();
  });
});

describe('parseLongPageHeader', () => {
  it('parses the first 40 bytes of a segment written by PostgreSQL 15 (initdb, 16MiB)', () => {
    // xxd -l 40 pg_wal/000000010000000000000001 right after initdb of PostgreSQL 15.
    const bytes = Buffer.from(
      '10d10200010000000000000100000000' + '0000000000000000eea025905424046b' + '0000000100200000',
      'hex',
    );
    expect(bytes.length).toBe(SIZE_OF_LONG_PAGE_HEADER);
    const header = parseLongPageHeader(bytes);
    expect(header).toEqual({
      magic: 0xd110,
      info: XLP_LONG_HEADER,
      timeline: 1,
      pageAddr: 0x1000000n,
      remLen: 0,
      systemIdentifier: 7711328407579369710n,
      segmentSize: 16 * MiB,
      blockSize: 8192,
    });
    expect(pgVersionForWalMagic(header.magic)).toBe(15);
    expect(validateSegmentHeader(bytes, { timeline: 1, segno: 1n, walSegmentSize: 16 * MiB })).toEqual(header);
  });

  it('parses info 0x0006 and 0x0007 (continuation record, backup blocks removable)', () => {
    const h6 = parseLongPageHeader(buildHeader());
    expect(h6.info).toBe(0x0006);
    const h7 = parseLongPageHeader(buildHeader({ info: 0x0007, remLen: 1234 }));
    expect(h7.info & XLP_FIRST_IS_CONTRECORD).toBe(XLP_FIRST_IS_CONTRECORD);
    expect(h7.remLen).toBe(1234);
  });

  it('reads every field little-endian, including large values', () => {
    const h = parseLongPageHeader(
      buildHeader({
        magic: 0xd116,
        timeline: 0xfffffffe,
        pageAddr: 0x16b3000000n,
        systemIdentifier: 0xfedcba9876543210n,
        segmentSize: 1024 * MiB,
        blockSize: 65536,
      }),
    );
    expect(h.magic).toBe(0xd116);
    expect(h.timeline).toBe(0xfffffffe);
    expect(h.pageAddr).toBe(0x16b3000000n);
    expect(h.systemIdentifier).toBe(0xfedcba9876543210n);
    expect(h.systemIdentifier.toString()).toBe('18364758544493064720');
    expect(h.segmentSize).toBe(1024 * MiB);
    expect(h.blockSize).toBe(65536);
  });

  it('works on a subarray with a non-zero byteOffset', () => {
    const outer = Buffer.concat([Buffer.alloc(3, 0xaa), buildHeader({}, 40)]);
    expect(parseLongPageHeader(outer.subarray(3)).pageAddr).toBe(0x1000000n);
  });

  it.each([
    ['empty buffer', Buffer.alloc(0), /need 40 bytes, got 0/],
    ['short header only', buildHeader({}, 24), /need 40 bytes, got 24/],
    ['39 bytes', buildHeader({}, 39), /got 39/],
    ['short page header flag', buildHeader({ info: XLP_BKP_REMOVABLE }), /not a long header/],
    ['unknown info bits', buildHeader({ info: 0x0012 }), /invalid info bits 0x0012/],
    ['segment size 0', buildHeader({ segmentSize: 0 }), /invalid segment size 0/],
    ['segment size 3MiB', buildHeader({ segmentSize: 3 * MiB }), /invalid segment size/],
    ['segment size 512kB', buildHeader({ segmentSize: 512 * 1024 }), /invalid segment size/],
    ['segment size 2GiB', buildHeader({ segmentSize: 2048 * MiB }), /invalid segment size/],
    ['block size 0', buildHeader({ blockSize: 0 }), /invalid WAL block size 0/],
    ['block size 512', buildHeader({ blockSize: 512 }), /invalid WAL block size/],
    ['block size 8000', buildHeader({ blockSize: 8000 }), /invalid WAL block size/],
    ['block size 128kB', buildHeader({ blockSize: 131072 }), /invalid WAL block size/],
  ])('rejects %s', (_label, buf, why) => {
    expect(() => parseLongPageHeader(buf)).toThrow(InvalidInputError);
    expect(() => parseLongPageHeader(buf)).toThrow(why);
  });
});

describe('validateSegmentHeader', () => {
  const expected = { timeline: 1, segno: 1n, walSegmentSize: 16 * MiB };

  it.each([
    ['1MiB segment 0x16B374', MiB, 0x16b374n, 0x16b37400000n],
    ['16MiB segment 0x16B3', 16 * MiB, 0x16b3n, 0x16b3000000n],
    ['64MiB segment 0x5AC', 64 * MiB, 0x5acn, 0x16b0000000n],
    ['1GiB segment 0x5A', 1024 * MiB, 0x5an, 0x1680000000n],
  ])('accepts %s', (_label, size, segno, pageAddr) => {
    const buf = buildHeader({ segmentSize: size, pageAddr, timeline: 3 });
    const h = validateSegmentHeader(buf, {
      timeline: 3,
      segno,
      walSegmentSize: size,
      systemIdentifier: defaults.systemIdentifier,
      blockSize: 8192,
    });
    expect(h.pageAddr).toBe(pageAddr);
  });

  it('accepts a parent timeline on the first page of the segment a switch happened in', () => {
    // 000000020000000000000003 begins as a copy of 000000010000000000000003.
    const buf = buildHeader({ timeline: 1, pageAddr: 0x3000000n });
    expect(validateSegmentHeader(buf, { timeline: 2, segno: 3n, walSegmentSize: 16 * MiB }).timeline).toBe(1);
  });

  it.each([
    ['unknown magic', { magic: 0xd101 }, expected, /unknown page magic 0xD101/],
    ['segment size differs', { segmentSize: 64 * MiB }, expected, /header segment size 67108864 differs from 16777216/],
    ['page address of another segment', { pageAddr: 0x2000000n }, expected, /page address 0\/2000000 differs from segment start 0\/1000000/],
    ['page address not at segment start', { pageAddr: 0x1002000n }, expected, /page address/],
    ['timeline newer than the name', { timeline: 2 }, expected, /page timeline 2 is not valid for a segment of timeline 1/],
    ['timeline 0', { timeline: 0 }, expected, /page timeline 0/],
    ['system identifier differs', {}, { ...expected, systemIdentifier: 42n }, /system identifier 7711328407579369710 differs from 42/],
    ['block size differs', {}, { ...expected, blockSize: 16384 }, /WAL block size 8192 differs from 16384/],
  ])('rejects %s', (_label, overrides, exp, why) => {
    const buf = buildHeader(overrides);
    expect(() => validateSegmentHeader(buf, exp)).toThrow(InvalidInputError);
    expect(() => validateSegmentHeader(buf, exp)).toThrow(why);
    expect(() => validateSegmentHeader(buf, exp)).toThrow(/^invalid WAL segment '000000010000000000000001': /);
  });

  it('rejects headers that do not parse', () => {
    expect(() => validateSegmentHeader(Buffer.alloc(10), expected)).toThrow(InvalidInputError);
  });
});
