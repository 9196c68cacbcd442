import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Readable, Writable, type Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { IntegrityError } from '../../src/common/errors.js';
import { loadCodec, type Codec, type CodecName } from '../../src/io/codec.js';
import { decodeObject, encodeObject, readAll } from '../../src/repo/object-stream.js';
import { pseudoRandom } from '../helpers/bytes.js';
import { oneBlockFrames } from '../helpers/lz4-old-frames.js';

const CLI_HINT = 'apt-get install lz4 zstd gzip';
const KiB = 1024;
const MiB = 1024 * KiB;


/** Repetitive text with some variation: compresses well but not trivially. */
function compressible(size: number): Buffer {
  const out = Buffer.allocUnsafe(size);
  let pos = 0;
  for (let i = 0; pos < size; i++) pos += out.write(`row ${i % 1000} value=${(i * 7) % 13} pgark\n`, pos);
  return out;
}

const INPUTS: Record<string, Buffer> = {
  empty: Buffer.alloc(0),
  '1 byte': Buffer.from([0x42]),
  'random 3 MiB': pseudoRandom(3 * MiB),
  'compressible 5 MiB': compressible(5 * MiB),
};
const CHUNK_SIZES = [1, 7, 100 * KiB];
/**
 * Tiny chunks cost one native (zlib: threadpool) call each, so inputs fed in them are cut to a
 * prefix; whole multi-frame streams in 1-byte chunks are covered by the `sample` tests below.
 */
const TINY_CHUNK_INPUT_LIMIT: Record<number, number> = { 1: 64 * KiB, 7: 448 * KiB };
/**
 * gzip and zstd are thin wrappers over node:zlib (src/io/codecs/gzip.ts, zstd.ts: one native
 * threadpool call per chunk fed, ~0.1-0.3 ms each) and none is a pass-through: what is pgark's
 * there (error mapping, concatenated frames and members) does not depend on the length, so their
 * tiny-chunk inputs are shorter prefixes. lz4's frame parser is pgark's own
 * (src/io/codecs/lz4-frame-decoder.ts) and keeps the long ones.
 */
const TINY_CHUNK_INPUT_LIMIT_ZLIB: Record<number, number> = { 1: 16 * KiB, 7: 112 * KiB };
const tinyLimit = (name: CodecName, chunkSize: number): number | undefined =>
  (name === 'lz4' ? TINY_CHUNK_INPUT_LIMIT : TINY_CHUNK_INPUT_LIMIT_ZLIB)[chunkSize];

async function run(transform: Transform, input: Buffer, chunkSize = 64 * KiB): Promise<Buffer> {
  const chunks = function* (): Generator<Buffer> {
    for (let i = 0; i < input.length; i += chunkSize) yield input.subarray(i, i + chunkSize);
  };
  const out: Buffer[] = [];
  await pipeline(Readable.from(chunks()), transform, async (source: AsyncIterable<Buffer>) => {
    for await (const c of source) out.push(c);
  });
  return Buffer.concat(out);
}

function cli(cmd: string, args: string[], input: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.on('error', (e: NodeJS.ErrnoException) =>
      reject(e.code === 'ENOENT' ? new Error(`'${cmd}' CLI not found: ${CLI_HINT}`) : e),
    );
    child.on('close', (code) =>
      code === 0
        ? resolve(Buffer.concat(out))
        : reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${Buffer.concat(err).toString()}`)),
    );
    child.stdin.on('error', () => undefined); // EPIPE when the tool exits early; the exit code reports it
    child.stdin.end(input);
  });
}

function skippableFrame(magicOffset: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32LE(0x184d2a50 + magicOffset, 0);
  head.writeUInt32LE(payload.length, 4);
  return Buffer.concat([head, payload]);
}

/** An empty gzip member whose header carries an FEXTRA field, like pgark's header/trailer members. */
function emptyGzipMemberWithExtra(payload: Buffer): Buffer {
  const sub = Buffer.alloc(4);
  sub.write('PA', 0, 'latin1');
  sub.writeUInt16LE(payload.length, 2);
  const extra = Buffer.concat([sub, payload]);
  const head = Buffer.from([0x1f, 0x8b, 8, 0x04, 0, 0, 0, 0, 0, 0xff, 0, 0]);
  head.writeUInt16LE(extra.length, 10);
  const emptyDeflate = Buffer.from([0x03, 0x00]);
  return Buffer.concat([head, extra, emptyDeflate, Buffer.alloc(8)]);
}

const compress = (codec: Codec, data: Buffer, level?: number): Promise<Buffer> => run(codec.compressor(level), data);
const decompress = (codec: Codec, data: Buffer, chunkSize?: number): Promise<Buffer> =>
  run(codec.decompressor(), data, chunkSize);

/** Spans two of the lz4 compressor's 1 MiB frames. */
const sample = Buffer.concat([pseudoRandom(64 * KiB, 7), compressible(MiB + MiB / 2)]);
/** For the zlib-backed codecs' tiny-chunk decodes (see TINY_CHUNK_INPUT_LIMIT_ZLIB). */
const smallSample = Buffer.concat([pseudoRandom(8 * KiB, 7), compressible(120 * KiB)]);

describe('stock CLIs', () => {
  it.each(['lz4', 'zstd', 'gzip'])('%s is installed', async (cmd) => {
    await expect(cli(cmd, ['--version'], Buffer.alloc(0))).resolves.toBeInstanceOf(Buffer);
  });
});

describe.each<CodecName>(['lz4', 'zstd', 'gzip', 'none'])('%s codec', (name) => {
  describe.each(Object.keys(INPUTS))('round trip of %s', (inputName) => {
    it.each(CHUNK_SIZES)('in %i-byte chunks', async (chunkSize) => {
      const input = INPUTS[inputName]!.subarray(0, tinyLimit(name, chunkSize));
      const codec = await loadCodec(name);
      const packed = await run(codec.compressor(), input, chunkSize);
      const back = await decompress(codec, packed, chunkSize);
      expect(back.length).toBe(input.length);
      expect(back.equals(input)).toBe(true);
    });
  });

  it('decompresses a multi-frame stream fed in 1-byte chunks', async () => {
    const codec = await loadCodec(name);
    // lz4: the sample spans two of the compressor's 1 MiB frames. The others write one frame or
    // member per stream: two streams of the small sample, concatenated.
    const packed =
      name === 'lz4'
        ? await compress(codec, sample)
        : Buffer.concat([await compress(codec, smallSample.subarray(0, 48 * KiB)), await compress(codec, smallSample.subarray(48 * KiB))]);
    expect((await decompress(codec, packed, 1)).equals(name === 'lz4' ? sample : smallSample)).toBe(true);
  });

  it('round trips at a non-default level', async () => {
    const codec = await loadCodec(name);
    const level = name === 'none' ? 0 : 1;
    expect((await decompress(codec, await compress(codec, sample, level))).equals(sample)).toBe(true);
  });
});

describe.each<CodecName>(['lz4', 'zstd', 'gzip'])('%s codec integrity', (name) => {
  const cmd = name;

  it.each(['random 3 MiB', 'compressible 5 MiB'])('rejects a flipped byte in %s', async (inputName) => {
    const codec = await loadCodec(name);
    const packed = await compress(codec, INPUTS[inputName]!);
    const corrupt = Buffer.from(packed);
    corrupt[corrupt.length >> 1]! ^= 0x10;
    if (name !== 'lz4') {
      await expect(decompress(codec, corrupt)).rejects.toThrow();
      return;
    }
    // pgark's lz4 frames carry no content checksum (a flipped literal byte may decode): the
    // object's trailer sha256 is what catches it, on every read of a repository object.
    const stored = await readAll((await encodeObject(Readable.from([INPUTS[inputName]!]), 'lz4')).stream);
    const flipped = Buffer.from(stored);
    flipped[flipped.length >> 1]! ^= 0x10;
    await expect(readAll(await decodeObject(Readable.from([flipped]), 'fixture'))).rejects.toThrow();
  });

  it('rejects truncated input', async () => {
    const codec = await loadCodec(name);
    const packed = await compress(codec, sample);
    for (const cut of [1, 5, packed.length >> 1, packed.length - 1]) {
      await expect(decompress(codec, packed.subarray(0, cut)), `cut at ${cut}`).rejects.toThrow();
    }
  });

  it('rejects empty input', async () => {
    const codec = await loadCodec(name);
    await expect(decompress(codec, Buffer.alloc(0))).rejects.toThrow();
  });

  it(`output decodes with '${cmd} -d'`, async () => {
    const codec = await loadCodec(name);
    for (const input of [sample, INPUTS.empty!, INPUTS['1 byte']!]) {
      expect((await cli(cmd, ['-d', '-c'], await compress(codec, input))).equals(input)).toBe(true);
    }
  });

  const cliVariants: Record<CodecName, string[]> = {
    lz4: ['(defaults)', '-BD', '-B4 --content-size', '-BX --no-frame-crc', '-9'],
    zstd: ['(defaults)', '-19', '--no-check'],
    gzip: ['(defaults)', '-1', '-9'],
    none: [],
  };
  it.each(cliVariants[name])(`decodes '${cmd} -c' output with %s`, async (variant) => {
    const flags = variant === '(defaults)' ? [] : variant.split(' ');
    const codec = await loadCodec(name);
    const packed = await cli(cmd, ['-c', ...flags], sample);
    expect((await decompress(codec, packed)).equals(sample)).toBe(true);
    // In 7-byte chunks: the zlib-backed codecs on the small sample (TINY_CHUNK_INPUT_LIMIT_ZLIB).
    const [input7, packed7] = name === 'lz4' ? [sample, packed] : [smallSample, await cli(cmd, ['-c', ...flags], smallSample)];
    expect((await decompress(codec, packed7, 7)).equals(input7)).toBe(true);
  });
});

describe.each<CodecName>(['lz4', 'zstd'])('%s skippable frames', (name) => {
  it('are skipped before and after the data, by our decompressor and the CLI', async () => {
    const codec = await loadCodec(name);
    const packed = await compress(codec, sample);
    const framed = Buffer.concat([
      skippableFrame(0, Buffer.from('pgark header')),
      skippableFrame(0xf, Buffer.alloc(0)),
      packed,
      skippableFrame(5, pseudoRandom(1000, 3)),
    ]);
    for (const chunkSize of [7, 64 * KiB]) {
      expect((await decompress(codec, framed, chunkSize)).equals(sample)).toBe(true);
    }
    expect((await cli(name, ['-d', '-c'], framed)).equals(sample)).toBe(true);
  });

  it('rejects a truncated skippable frame', async () => {
    const codec = await loadCodec(name);
    const packed = await compress(codec, sample);
    const framed = Buffer.concat([packed, skippableFrame(0, Buffer.from('trailer'))]);
    await expect(decompress(codec, framed.subarray(0, framed.length - 3))).rejects.toThrow();
  });
});

/**
 * Written by pgark's zstd codec while it was zstd-napi 0.0.13 (before issue 16): the first
 * 256 KiB of a pgbench WAL segment, as a stored object (level 3) and as two bare level-1 frames.
 * See test/fixtures/zstd-napi/README.md.
 */
describe('zstd written by zstd-napi', () => {
  const fixture = (name: string) => readFileSync(new URL(`../fixtures/zstd-napi/${name}`, import.meta.url));
  const CONTENT_SHA256 = 'c2b0e6ee74d770f1712504e693005aef36cd075b644d6644932981a38df8836f';
  const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

  it('stored object decodes and verifies', async () => {
    const stored = fixture('wal-256k.pgark');
    for (const chunkSize of [7, 4096, stored.length]) {
      const decoded = await decodeObject(Readable.from(Array.from({ length: Math.ceil(stored.length / chunkSize) }, (_, i) => stored.subarray(i * chunkSize, (i + 1) * chunkSize))), 'fixture');
      const content = await readAll(decoded);
      expect(sha256(content)).toBe(CONTENT_SHA256);
      await expect(decoded.verified).resolves.toMatchObject({ rawSize: 256 * KiB, sha256: CONTENT_SHA256 });
    }
  });

  it('bare frames decode with the codec and the zstd CLI; the codec re-encodes them to what the CLI decodes', async () => {
    const codec = await loadCodec('zstd');
    const bare = fixture('wal-256k-two-frames-l1.zst');
    for (const chunkSize of [1, 7, 64 * KiB]) expect(sha256(await decompress(codec, bare, chunkSize))).toBe(CONTENT_SHA256);
    const content = await cli('zstd', ['-d', '-c'], bare);
    expect(sha256(content)).toBe(CONTENT_SHA256);
    expect(sha256(await cli('zstd', ['-d', '-c'], await compress(codec, content)))).toBe(CONTENT_SHA256);
    expect(sha256(await cli('zstd', ['-d', '-c'], fixture('wal-256k.pgark')))).toBe(CONTENT_SHA256);
  });

  it('a flipped byte in the fixture is an IntegrityError', async () => {
    const codec = await loadCodec('zstd');
    const bad = Buffer.from(fixture('wal-256k-two-frames-l1.zst'));
    bad[bad.length >> 1]! ^= 0x10;
    await expect(decompress(codec, bad)).rejects.toBeInstanceOf(IntegrityError);
  });
});

describe('gzip members', () => {
  it('skips empty members with FEXTRA before and after the data, like gzip -d', async () => {
    const codec = await loadCodec('gzip');
    const packed = await compress(codec, smallSample);
    const framed = Buffer.concat([
      emptyGzipMemberWithExtra(Buffer.from('pgark header')),
      packed,
      emptyGzipMemberWithExtra(Buffer.from('pgark trailer')),
    ]);
    for (const chunkSize of [7, 64 * KiB]) {
      expect((await decompress(codec, framed, chunkSize)).equals(smallSample)).toBe(true);
    }
    expect((await cli('gzip', ['-d', '-c'], framed)).equals(smallSample)).toBe(true);
  });

  it('decodes several concatenated data members', async () => {
    const codec = await loadCodec('gzip');
    const a = await compress(codec, smallSample.subarray(0, 1000));
    const b = await compress(codec, smallSample.subarray(1000));
    expect((await decompress(codec, Buffer.concat([a, b]), 7)).equals(smallSample)).toBe(true);
  });
});

describe('lz4 decoder options', () => {
  const run = async (t: Transform, chunks: Buffer[]): Promise<Buffer> => {
    const out: Buffer[] = [];
    t.on('data', (c: Buffer) => out.push(c));
    await pipeline(Readable.from(chunks), t);
    return Buffer.concat(out);
  };
  const sample = Buffer.concat(Array.from({ length: 40 }, (_, i) => Buffer.from(`row ${i} `.repeat(5000 + i))));
  const cut = (b: Buffer, size: number) => Array.from({ length: Math.ceil(b.length / size) }, (_, i) => Buffer.from(b.subarray(i * size, (i + 1) * size)));

  it('ownsInput decodes the same bytes, in whole and in cut chunks; without it the input is untouched', async () => {
    const lz4 = await loadCodec('lz4');
    const framed = await run(lz4.compressor(), [sample]);
    const copy = Buffer.from(framed);
    expect((await run(lz4.decompressor(), [framed])).equals(sample)).toBe(true);
    expect(framed.equals(copy)).toBe(true);
    for (const size of [framed.length, 1 << 20, 65536, 4099, 7]) {
      expect((await run(lz4.decompressor({ ownsInput: true, contentChecksums: false }), cut(copy, size))).equals(sample)).toBe(true);
    }
  });

  it('decodes no further than the reader takes: a chunk holding many blocks is not decoded at once (memory), and a slow reader gets every byte', async () => {
    const lz4 = await loadCodec('lz4');
    const data = compressible(16 * MiB); // 16 frames of 1 MiB, each ~0.27 MiB compressed
    const framed = await run(lz4.compressor(), [data]);
    expect(framed.length).toBeLessThan(5 * MiB);
    for (const opts of [{ ownsInput: true, contentChecksums: false }, {}]) {
      // Nobody reads: the whole compressed stream in one write may decode one block, not sixteen.
      const idle = lz4.decompressor(opts);
      idle.write(Buffer.from(framed));
      await new Promise((r) => setImmediate(r));
      expect(idle.readableLength).toBeLessThanOrEqual(1 * MiB);
      idle.destroy();
      // A reader that takes one chunk per tick still receives all of it, for every cut of the input.
      for (const size of [framed.length, 1 << 20, 65536, 4099]) {
        const t = lz4.decompressor(opts);
        const got: Buffer[] = [];
        let inFlight = 0;
        const slow = new Writable({
          highWaterMark: 1,
          write(c: Buffer, _e, cb) {
            inFlight = Math.max(inFlight, t.readableLength);
            got.push(c);
            setImmediate(cb);
          },
        });
        await pipeline(Readable.from(cut(framed, size)), t, slow);
        expect(Buffer.concat(got).equals(data)).toBe(true);
        expect(inFlight).toBeLessThanOrEqual(2 * MiB);
      }
    }
  });
});

describe('lz4 frames written by pgark', () => {
  it('are by default one frame per 1 MiB chunk holding one block, exactly as earlier versions wrote them, without the xxHash32 content checksum (the trailer sha256 covers it); lz4 -d, our decoder and lz4-napi read them', async () => {
    const codec = await loadCodec('lz4');
    const input = Buffer.concat([compressible(MiB), pseudoRandom(MiB, 11), compressible(333_333)]); // not a multiple of anything: a short last frame
    const packed = await compress(codec, input);
    // Byte for byte the layout of every earlier version (FLG 0x60, BD 0x70, one block, stored raw when not smaller).
    expect(packed.equals(oneBlockFrames(input))).toBe(true);
    expect(packed[5]).toBe(0x70);
    expect((await decompress(codec, packed, 3 * KiB)).equals(input)).toBe(true);
    expect((await cli('lz4', ['-d', '-c'], packed)).equals(input)).toBe(true);
  });

  it('PGARK_LZ4_BLOCK_KIB takes 64, 256 or 1024 (unset or empty: 1024) and refuses anything else with the reason', async () => {
    const { lz4BlockSize } = await import('../../src/io/codecs/lz4.js');
    const table: Array<[string | undefined, number]> = [[undefined, MiB], ['', MiB], [' ', MiB], ['64', 64 * KiB], ['256', 256 * KiB], ['1024', MiB], [' 64 ', 64 * KiB]];
    for (const [v, want] of table) expect(lz4BlockSize(v)).toBe(want);
    for (const bad of ['32', '65536', '64k', '1m', '-64', '0', 'x', '1e3', '0x40']) expect(() => lz4BlockSize(bad)).toThrow(/PGARK_LZ4_BLOCK_KIB must be 64, 256 or 1024/);
  });

  it('frames of lz4-napi\'s own block encoder in the one-block layout (1 MiB per frame, 4 MiB block maximum) decode', async () => {
    const codec = await loadCodec('lz4');
    const input = Buffer.concat([compressible(MiB), pseudoRandom(MiB, 3), compressible(200 * KiB)]);
    const old = oneBlockFrames(input);
    expect((await decompress(codec, old, 5 * KiB)).equals(input)).toBe(true);
    expect((await cli('lz4', ['-d', '-c'], old)).equals(input)).toBe(true);
  });

  it('old frames (lz4_flex frame encoder, content checksum, as written before) still decode', async () => {
    const codec = await loadCodec('lz4');
    const lz4napi = (await import('lz4-napi')).default;
    const input = Buffer.concat([compressible(MiB), pseudoRandom(200 * KiB, 5)]);
    const old = Buffer.concat([lz4napi.compressFrameSync(input.subarray(0, MiB), { contentChecksum: true }), lz4napi.compressFrameSync(input.subarray(MiB), { contentChecksum: true })]);
    expect((await decompress(codec, old, 5 * KiB)).equals(input)).toBe(true);
  });
});

