import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { IntegrityError } from '../../src/common/errors.js';
import { CODEC_NAMES, type CodecName } from '../../src/io/codec.js';
import {
  encodeHeader,
  encodeTrailer,
  headerWrapperSize,
  parseHeader,
  parseTrailer,
  trailerWrapperSize,
} from '../../src/repo/object-format.js';
import { decodeObject, encodeObject, readAll, trailerFromTail } from '../../src/repo/object-stream.js';

const SHA = 'ab'.repeat(32);

async function encode(data: Buffer, codec: CodecName): Promise<Buffer> {
  const { stream, done } = await encodeObject(Readable.from(chunks(data, 65536)), codec);
  const [out] = await Promise.all([readAll(stream), done]);
  return out;
}

function* chunks(b: Buffer, n: number): Generator<Buffer> {
  for (let i = 0; i < b.length; i += n) yield b.subarray(i, i + n);
}

async function decode(stored: Buffer, chunk = 4096): Promise<Buffer> {
  return readAll(await decodeObject(Readable.from(chunks(stored, chunk)), 'test/object'));
}

describe('object records', () => {
  it.each([
    ['lz4', 24, 72],
    ['zstd', 24, 72],
    ['gzip', 42, 90],
    ['none', 16, 64],
  ] as const)('%s wrappers are %d and %d bytes and round-trip', (codec, h, t) => {
    expect(headerWrapperSize(codec)).toBe(h);
    expect(trailerWrapperSize(codec)).toBe(t);
    const header = encodeHeader(codec);
    expect(header.length).toBe(h);
    expect(parseHeader(header, 'x')).toMatchObject({ codec, version: 1, flags: 0, wrapperSize: h });
    const trailer = encodeTrailer(codec, { rawSize: 16777216, payloadSize: 1234, sha256: SHA });
    expect(trailer.length).toBe(t);
    expect(parseTrailer(codec, trailer, 'x')).toEqual({ rawSize: 16777216, payloadSize: 1234, sha256: SHA });
  });

  it('uses skippable frames and empty gzip members the stock tools ignore', () => {
    expect(encodeHeader('lz4').readUInt32LE(0)).toBe(0x184d2a5a);
    expect(encodeHeader('zstd').readUInt32LE(4)).toBe(16);
    const g = encodeTrailer('gzip', { rawSize: 0, payloadSize: 0, sha256: SHA });
    expect([...g.subarray(0, 4)]).toEqual([0x1f, 0x8b, 0x08, 0x04]);
    expect(g.toString('latin1', 12, 14)).toBe('PK');
    expect([...g.subarray(-10)]).toEqual([0x03, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  });

  it('rejects damaged records', () => {
    const t = encodeTrailer('lz4', { rawSize: 5, payloadSize: 7, sha256: SHA });
    for (const at of [0, 8, 20, 40, 70]) {
      const bad = Buffer.from(t);
      bad[at]! ^= 0x01;
      expect(() => parseTrailer('lz4', bad, 'x')).toThrow(IntegrityError);
    }
    expect(() => parseHeader(Buffer.from('not an object at all, really'), 'x')).toThrow(/not a valid pgark object/);
    const h = encodeHeader('zstd');
    h[13] = 9;
    expect(() => parseHeader(h, 'x')).toThrow(/unknown codec/);
  });
});

describe('object streams', () => {
  const random = Buffer.alloc(300_000);
  for (let i = 0; i < random.length; i++) random[i] = (i * 2654435761) >>> 13 & 0xff;
  const inputs: Array<[string, Buffer]> = [
    ['empty', Buffer.alloc(0)],
    ['one byte', Buffer.from([7])],
    ['compressible 2 MiB', Buffer.alloc(2 * 1024 * 1024, 'pgark WAL ')],
    ['noisy 300 KB', random],
  ];

  for (const codec of CODEC_NAMES) {
    it.each(inputs)(`${codec}: %s round-trips with sizes and sha256 in the trailer`, async (_n, data) => {
      const stored = await encode(data, codec);
      // Odd chunk sizes cross every header, payload and trailer boundary.
      expect((await decode(stored, stored.length < 20_000 ? 1 : 4099)).equals(data)).toBe(true);
      expect((await decode(stored, 100_000)).equals(data)).toBe(true);
      const trailer = trailerFromTail(stored.subarray(-90), 'x');
      expect(trailer.rawSize).toBe(data.length);
    });

    it(`${codec}: any flipped byte or truncation fails the stream`, async () => {
      const data = Buffer.alloc(200_000, 'abcdefgh');
      const stored = await encode(data, codec);
      for (const at of [2, headerWrapperSize(codec) + 3, Math.floor(stored.length / 2), stored.length - 30, stored.length - 1]) {
        const bad = Buffer.from(stored);
        bad[at]! ^= 0x40;
        await expect(decode(bad), `flip at ${at}`).rejects.toThrow();
      }
      await expect(decode(stored.subarray(0, stored.length - 1))).rejects.toThrow(IntegrityError);
      await expect(decode(stored.subarray(0, Math.floor(stored.length / 2)))).rejects.toThrow(IntegrityError);
    });
  }

  it('contentHash: false skips the sha256 but still checks sizes and the codec', async () => {
    const data = Buffer.alloc(100_000, 'pgark ');
    const stored = await encode(data, 'none');
    const bad = Buffer.from(stored);
    bad[headerWrapperSize('none') + 50_000]! ^= 0x01;
    const noHash = async (b: Buffer) => readAll(await decodeObject(Readable.from(chunks(b, 4096)), 'test/object', { contentHash: false }));
    // The caller checks the content itself (a manifest's per-file sha256): a changed byte passes here...
    expect((await noHash(bad)).equals(data)).toBe(false);
    // ...and is caught by the default.
    await expect(decode(bad)).rejects.toThrow(/checksum mismatch/);
    // Sizes are still checked.
    await expect(noHash(stored.subarray(0, stored.length - 1))).rejects.toThrow(IntegrityError);
    await expect(noHash(Buffer.concat([stored.subarray(0, headerWrapperSize('none') + 10), stored.subarray(headerWrapperSize('none') + 11)]))).rejects.toThrow(IntegrityError);
  });

  it('refuses a format-1 header with the encrypted flag (encrypted objects are version 2), and unknown flags', async () => {
    const stored = await encode(Buffer.from('x'), 'none');
    stored[6] = 1;
    await expect(decode(stored)).rejects.toThrow(/version 1 with flags 1/);
    stored[6] = 2;
    await expect(decode(stored)).rejects.toThrow(/unknown header flags/);
  });
});
