/** The parsers of the GCS fake server (test/helpers/gcs-fake-server.ts). */
import { describe, expect, it } from 'vitest';
import {
  compareNames,
  Crc32c,
  decodePageToken,
  encodePageToken,
  lowerBound,
  multipartBoundary,
  MultipartSplitter,
  parseUploadContentRange,
  resolveByteRange,
  type MultipartEvent,
} from '../helpers/gcs-fake-server.js';

describe('parseUploadContentRange', () => {
  it.each([
    ['bytes 0-262143/*', { first: 0, last: 262143 }],
    ['bytes 262144-262153/262154', { first: 262144, last: 262153, total: 262154 }],
    ['bytes */*', {}],
    ['bytes */1000', { total: 1000 }],
    ['bytes */0', { total: 0 }],
  ])('%s', (header, want) => {
    expect(parseUploadContentRange(header)).toEqual(want);
  });
  it.each(['bytes 5-4/*', 'bytes 0-10/10', 'bytes 0-/*', 'items 0-1/2', 'bytes 0-1', 'bytes -1-2/*', ''])('rejects %j', (header) => {
    expect(parseUploadContentRange(header)).toBeNull();
  });
});

describe('resolveByteRange', () => {
  it.each([
    [undefined, 10, null],
    ['bytes=0-4', 10, { start: 0, end: 4 }],
    ['bytes=5-', 10, { start: 5, end: 9 }],
    ['bytes=5-100', 10, { start: 5, end: 9 }],
    ['bytes=-3', 10, { start: 7, end: 9 }],
    ['bytes=-30', 10, { start: 0, end: 9 }],
    ['bytes=9-9', 10, { start: 9, end: 9 }],
    ['bytes=10-', 10, 'unsatisfiable'],
    ['bytes=1000-1009', 10, 'unsatisfiable'],
    ['bytes=0-', 0, 'unsatisfiable'],
    ['bytes=-0', 10, 'unsatisfiable'],
    ['bytes=5-2', 10, null],
    ['bytes=0-1,3-4', 10, null],
    ['items=0-1', 10, null],
  ] as const)('%s of %d', (header, size, want) => {
    expect(resolveByteRange(header, size)).toEqual(want);
  });
});

describe('multipartBoundary', () => {
  it('reads plain and quoted boundaries of multipart/related only', () => {
    expect(multipartBoundary('multipart/related; boundary=abc-123')).toBe('abc-123');
    expect(multipartBoundary('Multipart/Related; type=x; boundary="a b"')).toBe('a b');
    expect(multipartBoundary('multipart/form-data; boundary=x')).toBeNull();
    expect(multipartBoundary('multipart/related')).toBeNull();
    expect(multipartBoundary(undefined)).toBeNull();
  });
});

describe('MultipartSplitter', () => {
  const boundary = '5c3b2a41-3d2e-4f1a-9c3b-2a413d2e4f1a';
  // As teeny-request builds it for the SDK's multipart uploads.
  const body = (data: Buffer) =>
    Buffer.concat([
      Buffer.from(`--${boundary}\r\nContent-Type: application/json\r\n\r\n{"name":"a/b"}\r\n--${boundary}\r\nContent-Type: application/octet-stream\r\n\r\n`),
      data,
      Buffer.from(`\r\n--${boundary}--`),
    ]);

  function split(input: Buffer, pieces: number[]): { parts: Array<{ headers: Record<string, string>; data: Buffer }>; ended: boolean } {
    const s = new MultipartSplitter(boundary);
    const events: MultipartEvent[] = [];
    let at = 0;
    for (const n of pieces) {
      events.push(...s.push(input.subarray(at, at + n)));
      at += n;
    }
    events.push(...s.push(input.subarray(at)));
    const parts: Array<{ headers: Record<string, string>; data: Buffer[] }> = [];
    let ended = false;
    for (const ev of events) {
      if (ev.type === 'part') parts.push({ headers: ev.headers, data: [] });
      else if (ev.type === 'data') parts[parts.length - 1]?.data.push(ev.data);
      else if (ev.type === 'end') ended = true;
    }
    if (ended) s.finish();
    return { parts: parts.map((p) => ({ headers: p.headers, data: Buffer.concat(p.data) })), ended };
  }

  it('splits metadata and data, however the body is cut into chunks', () => {
    // Data that contains CRLF, dashes and a near-miss of the delimiter.
    const data = Buffer.concat([Buffer.from(`\r\n--${boundary.slice(0, 20)}\r\n--`), Buffer.alloc(5000, 0x2d), Buffer.from('\r\n')]);
    const input = body(data);
    for (const pieces of [[], [1, 1, 1, 1], [37, 3, 500, 1, 1], Array.from({ length: input.length }, () => 1)]) {
      const { parts, ended } = split(input, pieces);
      expect(ended).toBe(true);
      expect(parts).toHaveLength(2);
      expect(parts[0]?.headers['content-type']).toBe('application/json');
      expect(parts[0]?.data.toString()).toBe('{"name":"a/b"}');
      expect(parts[1]?.headers['content-type']).toBe('application/octet-stream');
      expect(parts[1]?.data.equals(data)).toBe(true);
    }
  });

  it('handles an empty data part, a preamble and an epilogue', () => {
    const input = Buffer.concat([Buffer.from('preamble text\r\n'), body(Buffer.alloc(0)), Buffer.from('\r\nepilogue')]);
    const { parts, ended } = split(input, [3, 20]);
    expect(ended).toBe(true);
    expect(parts[1]?.data.length).toBe(0);
  });

  it('keeps no more than a delimiter of data between pushes', () => {
    const s = new MultipartSplitter(boundary);
    s.push(Buffer.from(`--${boundary}\r\n\r\n`));
    let streamed = 0;
    for (let i = 0; i < 100; i++) for (const ev of s.push(Buffer.alloc(64 * 1024, 1))) if (ev.type === 'data') streamed += ev.data.length;
    expect(100 * 64 * 1024 - streamed).toBeLessThan(boundary.length + 4);
  });

  it('throws at the end of a body without its closing delimiter', () => {
    const s = new MultipartSplitter(boundary);
    s.push(Buffer.from(`--${boundary}\r\nContent-Type: a/b\r\n\r\ndata`));
    expect(() => s.finish()).toThrow(/closing delimiter/);
  });
});

describe('Crc32c', () => {
  it('matches the Castagnoli check value and GCS base64 form', () => {
    expect(new Crc32c().update(Buffer.from('123456789')).value()).toBe(0xe3069283);
    expect(new Crc32c().update(Buffer.from('12345')).update(Buffer.from('6789')).base64()).toBe('4waSgw==');
    expect(new Crc32c().base64()).toBe('AAAAAA==');
  });
});

describe('listing order and page tokens', () => {
  it('orders names by UTF-8 bytes and finds bounds', () => {
    const names = ['a', 'a/b', 'a0', 'b', 'é', '😀'].sort(compareNames);
    expect(names).toEqual(['a', 'a/b', 'a0', 'b', 'é', '😀']);
    // UTF-16 order would put U+FFFD after the emoji's surrogates; UTF-8 order puts it before.
    expect(compareNames('\uFFFD', '😀')).toBeLessThan(0);
    expect(lowerBound(names, 'a/')).toBe(1);
    expect(lowerBound(names, 'a/b')).toBe(1);
    expect(lowerBound(names, 'a/b', true)).toBe(2);
    expect(lowerBound(names, 'z')).toBe(4);
  });

  it('round-trips page tokens and rejects forged ones', () => {
    for (const n of ['', 'a/b', 'é 😀']) expect(decodePageToken(encodePageToken(n))).toBe(n);
    expect(decodePageToken('garbage')).toBeNull();
    expect(decodePageToken('p1.!!!')).toBeNull();
  });
});
