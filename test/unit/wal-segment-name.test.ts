import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../src/common/errors.js';
import {
  assertWalFileName,
  classifyWalFileName,
  escapeForMessage,
  formatLsn,
  isValidWalSegmentSize,
  lsnToSegment,
  nextSegment,
  parseLsn,
  parseSegmentName,
  prevSegment,
  segmentName,
  segmentStartLsn,
  segmentsPerXLogId,
} from '../../src/wal/segment-name.js';

const MiB = 1024 * 1024;

describe('isValidWalSegmentSize', () => {
  it.each([
    [MiB, true],
    [2 * MiB, true],
    [16 * MiB, true],
    [64 * MiB, true],
    [1024 * MiB, true],
    [512 * 1024, false],
    [2048 * MiB, false],
    [3 * MiB, false],
    [16 * MiB + 1, false],
    [0, false],
    [-16 * MiB, false],
    [1.5, false],
    [Number.NaN, false],
  ])('%s -> %s', (n, ok) => {
    expect(isValidWalSegmentSize(n)).toBe(ok);
  });
});

interface SizeCase {
  size: number;
  perId: bigint;
  lastInLog: string;
  lastSegno: bigint;
  /** Segment containing LSN 16/B374D848 on timeline 1. */
  lsnSegment: string;
  outOfRange: string;
}

const sizes: SizeCase[] = [
  {
    size: MiB,
    perId: 4096n,
    lastInLog: '000000010000000000000FFF',
    lastSegno: 4095n,
    lsnSegment: '000000010000001600000B37',
    outOfRange: '000000010000000000001000',
  },
  {
    size: 16 * MiB,
    perId: 256n,
    lastInLog: '0000000100000000000000FF',
    lastSegno: 255n,
    lsnSegment: '0000000100000016000000B3',
    outOfRange: '000000010000000000000100',
  },
  {
    size: 64 * MiB,
    perId: 64n,
    lastInLog: '00000001000000000000003F',
    lastSegno: 63n,
    lsnSegment: '00000001000000160000002C',
    outOfRange: '000000010000000000000040',
  },
  {
    size: 1024 * MiB,
    perId: 4n,
    lastInLog: '000000010000000000000003',
    lastSegno: 3n,
    lsnSegment: '000000010000001600000002',
    outOfRange: '000000010000000000000004',
  },
];

describe.each(sizes)('wal_segment_size $size', (c) => {
  it('segments per XLogId', () => {
    expect(segmentsPerXLogId(c.size)).toBe(c.perId);
  });

  it.each([
    ['000000010000000000000001', 1, 1n],
    ['000000010000000000000000', 1, 0n],
    ['0000000A0000000200000001', 10, 2n * c.perId + 1n],
    ['FFFFFFFF0000000100000000', 0xffffffff, c.perId],
  ])('round trips %s', (name, timeline, segno) => {
    expect(parseSegmentName(name, c.size)).toEqual({ timeline, segno });
    expect(segmentName({ timeline, segno }, c.size)).toBe(name);
  });

  it('next crosses the log boundary and prev comes back', () => {
    const last = parseSegmentName(c.lastInLog, c.size);
    expect(last).toEqual({ timeline: 1, segno: c.lastSegno });
    const next = nextSegment(last, c.size);
    expect(segmentName(next, c.size)).toBe('000000010000000100000000');
    expect(segmentName(prevSegment(next, c.size), c.size)).toBe(c.lastInLog);
  });

  it('maps LSNs to segments and back', () => {
    const lsn = parseLsn('16/B374D848');
    const id = lsnToSegment(lsn, 1, c.size);
    expect(segmentName(id, c.size)).toBe(c.lsnSegment);
    const start = segmentStartLsn(id, c.size);
    expect(start <= lsn && lsn < start + BigInt(c.size)).toBe(true);
    expect(lsnToSegment(start, 1, c.size)).toEqual(id);
    expect(lsnToSegment(start - 1n, 1, c.size).segno).toBe(id.segno - 1n);
    expect(lsnToSegment(start + BigInt(c.size), 1, c.size).segno).toBe(id.segno + 1n);
  });

  it('rejects a seg part beyond segments per XLogId', () => {
    expect(() => parseSegmentName(c.outOfRange, c.size)).toThrow(InvalidInputError);
    expect(() => parseSegmentName(c.outOfRange, c.size)).toThrow(/out of range for wal_segment_size/);
  });
});

describe('segment names', () => {
  it.each([
    ['000000000000000000000001', /timeline 0/],
    ['00000001000000000000000a', /uppercase/],
    ['0000000100000000000000010', /not a WAL segment name|not a PostgreSQL/],
    ['00000001000000000000001', /not a/],
    ['00000001.history', /not a WAL segment name/],
    ['', /empty/],
    ['../00000001000000000000001', /path separator/],
  ])('parseSegmentName rejects %j', (name, why) => {
    expect(() => parseSegmentName(name, 16 * MiB)).toThrow(InvalidInputError);
    expect(() => parseSegmentName(name, 16 * MiB)).toThrow(why);
  });

  it('rejects invalid segment sizes', () => {
    expect(() => parseSegmentName('000000010000000000000001', 3 * MiB)).toThrow(InvalidInputError);
    expect(() => segmentName({ timeline: 1, segno: 1n }, 0)).toThrow(InvalidInputError);
  });

  it('rejects invalid ids', () => {
    expect(() => segmentName({ timeline: 0, segno: 1n }, 16 * MiB)).toThrow(InvalidInputError);
    expect(() => segmentName({ timeline: 2 ** 32, segno: 1n }, 16 * MiB)).toThrow(InvalidInputError);
    expect(() => segmentName({ timeline: 1, segno: -1n }, 16 * MiB)).toThrow(InvalidInputError);
    expect(() => prevSegment({ timeline: 1, segno: 0n }, 16 * MiB)).toThrow(InvalidInputError);
  });

  it('handles the last possible segment', () => {
    const last = { timeline: 1, segno: (1n << 40n) - 1n }; // 2^64 / 16MiB - 1
    expect(segmentName(last, 16 * MiB)).toBe('00000001FFFFFFFF000000FF');
    expect(() => nextSegment(last, 16 * MiB)).toThrow(InvalidInputError);
    expect(lsnToSegment(0xffffffffffffffffn, 1, 16 * MiB)).toEqual(last);
  });
});

describe('LSNs', () => {
  it.each([
    ['0/0', 0n, '0/0'],
    ['0/1000000', 0x1000000n, '0/1000000'],
    ['16/B374D848', 0x16b374d848n, '16/B374D848'],
    ['16/b374d848', 0x16b374d848n, '16/B374D848'],
    ['00000016/0000D848', 0x160000d848n, '16/D848'],
    ['FFFFFFFF/FFFFFFFF', 0xffffffffffffffffn, 'FFFFFFFF/FFFFFFFF'],
  ])('parses %s', (text, value, formatted) => {
    expect(parseLsn(text)).toBe(value);
    expect(formatLsn(value)).toBe(formatted);
  });

  it.each(['', '16', '/1', '1/', '1/2/3', '123456789/0', '0/123456789', 'G/0', ' 0/0', '0/0\n', '-1/0'])(
    'rejects %j',
    (text) => {
      expect(() => parseLsn(text)).toThrow(InvalidInputError);
    },
  );

  it('formatLsn rejects out-of-range values', () => {
    expect(() => formatLsn(-1n)).toThrow(InvalidInputError);
    expect(() => formatLsn(1n << 64n)).toThrow(InvalidInputError);
  });
});

describe('classifyWalFileName', () => {
  it.each([
    ['000000010000000000000001', { kind: 'segment', timeline: 1, log: 0, seg: 1, segmentName: '000000010000000000000001' }],
    ['0000000A00000016000000B3', { kind: 'segment', timeline: 10, log: 0x16, seg: 0xb3, segmentName: '0000000A00000016000000B3' }],
    [
      '000000020000000000000003.partial',
      { kind: 'partial', timeline: 2, log: 0, seg: 3, segmentName: '000000020000000000000003' },
    ],
    ['00000002.history', { kind: 'history', timeline: 2 }],
    ['FFFFFFFF.history', { kind: 'history', timeline: 0xffffffff }],
    [
      '000000010000000000000002.00000028.backup',
      { kind: 'backup', timeline: 1, log: 0, seg: 2, offset: 0x28, segmentName: '000000010000000000000002' },
    ],
  ])('classifies %s', (name, expected) => {
    expect(classifyWalFileName(name)).toEqual(expected);
    expect(assertWalFileName(name)).toEqual(expected);
  });

  it.each([
    ['', /empty/],
    ['00000001000000000000000a', /uppercase/],
    ['00000002.HISTORY', /not a PostgreSQL/],
    ['0000000a.history', /uppercase/],
    ['000000010000000000000002.0000002a.backup', /uppercase/],
    ['000000010000000000000001.PARTIAL', /not a PostgreSQL/],
    ['000000010000000000000001.gz', /not a PostgreSQL/],
    ['000000010000000000000001.partial.backup', /not a PostgreSQL/],
    ['00000001000000000000001', /not a PostgreSQL/],
    ['0000000100000000000000011', /not a PostgreSQL/],
    [' 000000010000000000000001', /not a PostgreSQL/],
    ['000000010000000000000001\n', /control characters/],
    ['00000001000000000000\x000001', /control characters/],
    ['pg_wal/000000010000000000000001', /path separator/],
    ['..\\000000010000000000000001', /path separator/],
    ['..', /'\.\.'/],
    ['.', /not a PostgreSQL/],
    ['00000001.history.backup', /not a PostgreSQL/],
    ['000000010000000000000002.00000028', /not a PostgreSQL/],
    ['000000000000000000000001', /timeline 0/],
    ['00000000.history', /timeline 0/],
    ['000000010000000000001000', /out of range/],
    ['000000010000000000000002.40000000.backup', /out of range/],
    ['0'.repeat(41), /too long/],
    ['0'.repeat(10_000), /too long/],
    ['ＡＢＣ', /not a PostgreSQL/],
  ])('rejects %j', (name, why) => {
    expect(classifyWalFileName(name)).toBeNull();
    expect(() => assertWalFileName(name)).toThrow(InvalidInputError);
    expect(() => assertWalFileName(name)).toThrow(why);
  });

  it('formats the error as invalid WAL file name with the reason', () => {
    expect(() => assertWalFileName('00000001.HISTORY')).toThrow(
      "invalid WAL file name '00000001.HISTORY': not a PostgreSQL WAL segment, partial, history or backup history file name",
    );
  });

  it('never echoes control characters and limits the echoed name', () => {
    let message = '';
    try {
      assertWalFileName(`\x1b[31mevil\x07${'x'.repeat(200)}`);
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/^invalid WAL file name '\\x1b\[31mevil\\x07x+\.\.\.': name too long$/);
    expect(message).not.toMatch(/[\x00-\x1f\x7f]/);
    const echoed = /'(.*)'/.exec(message)?.[1] ?? '';
    expect(echoed.length).toBeLessThanOrEqual(64);
  });
});

describe('escapeForMessage', () => {
  it.each([
    ['plain', 'plain'],
    ["it's", "it\\'s"],
    ['a\\b', 'a\\\\b'],
    ['tab\there', 'tab\\x09here'],
    ['\x7f', '\\x7f'],
    ['é', '\\xe9'],
    ['\u202e', '\\u202e'],
    ['😀', '\\u{1f600}'],
    ['x'.repeat(64), 'x'.repeat(64)],
    ['x'.repeat(65), `${'x'.repeat(61)}...`],
    [`${'x'.repeat(60)}\n`, `${'x'.repeat(60)}\\x0a`],
    [`${'x'.repeat(60)}\n\n`, `${'x'.repeat(60)}...`],
  ])('%j -> %j', (input, output) => {
    expect(escapeForMessage(input)).toBe(output);
    expect(escapeForMessage(input).length).toBeLessThanOrEqual(64);
  });
});
