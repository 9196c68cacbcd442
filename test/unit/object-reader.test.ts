/**
 * repo/object-reader.ts (restore's pull loop) against decodeObject (object-stream.ts): the same
 * bytes and trailer for every codec, encrypted or not, in any chunking of the stored object; the
 * same refusals (flipped byte, truncation, payload size); lz4 blocks decoded into one reused
 * buffer; linked blocks (`lz4 -BD`, a frame pgark does not write but must read) decoded with
 * their history. And io/codecs/lz4-block.ts against lz4-napi, including corrupt blocks that must
 * never write outside the range they are given.
 */
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import lz4 from 'lz4-napi';
import { describe, expect, it } from 'vitest';
import { IntegrityError } from '../../src/common/errors.js';
import { CODEC_NAMES, type CodecName } from '../../src/io/codec.js';
import { decodeLz4BlockInto } from '../../src/io/codecs/lz4-block.js';
import { encodeHeader, encodeTrailer, headerWrapperSize } from '../../src/repo/object-format.js';
import { openObjectReader, setWasmLz4Decoding } from '../../src/repo/object-reader.js';
import { decodeObject, encodeObject, readAll, type DecryptKeys, type EncryptWith } from '../../src/repo/object-stream.js';
import { pseudoRandom } from '../helpers/bytes.js';
import { oneBlockFrames } from '../helpers/lz4-old-frames.js';

const MiB = 1024 * 1024;
const NAME = 'stanza/backup/x/data/1';

function* chunks(b: Buffer, n: number): Generator<Buffer> {
  for (let i = 0; i < b.length; i += n) yield b.subarray(i, i + n);
}

async function encode(data: Buffer, codec: CodecName, enc?: EncryptWith): Promise<Buffer> {
  const { stream, done } = await encodeObject(Readable.from(chunks(data, 65536)), codec, undefined, enc);
  const [out] = await Promise.all([readAll(stream), done]);
  return out;
}

/** Everything the reader returns, copied (each chunk is valid only until the next call), and its trailer. */
async function readAllPulled(stored: Buffer, chunk: number, o: { contentHash?: boolean } = {}, keys?: DecryptKeys) {
  const r = await openObjectReader(Readable.from(chunks(stored, chunk)), NAME, o, keys);
  const parts: Buffer[] = [];
  const seen = new Set<ArrayBufferLike>();
  for (let c = await r.next(); c !== null; c = await r.next()) {
    parts.push(Buffer.from(c));
    seen.add(c.buffer);
  }
  return { data: Buffer.concat(parts), trailer: r.trailer!, chunks: parts.length, buffers: seen.size, owners: seen };
}

/** Repetitive rows like a table's pages: compresses well, short matches and long ones. */
function rows(size: number): Buffer {
  const out = Buffer.alloc(size);
  let pos = 0;
  for (let i = 0; pos < size; i++) pos += out.write(`${i % 977}|${(i * 7) % 13}|0|${' '.repeat(i % 90)}\n`, pos);
  return out;
}

const KEY = randomBytes(32);
const keys: DecryptKeys = { plainAllowed: false, dataKey: async () => KEY };

describe('object reader', () => {
  const inputs: Array<[string, Buffer]> = [
    ['empty', Buffer.alloc(0)],
    ['one byte', Buffer.from([7])],
    ['rows 3 MiB', rows(3 * MiB)],
    ['zeros 2 MiB', Buffer.alloc(2 * MiB)],
    ['random 2.5 MiB', pseudoRandom(2.5 * MiB)],
  ];

  for (const codec of CODEC_NAMES) {
    it.each(inputs)(`${codec}: %s gives decodeObject's bytes and trailer in any chunking`, async (_n, data) => {
      const stored = await encode(data, codec);
      const want = await readAll(await decodeObject(Readable.from(chunks(stored, 65536)), NAME));
      expect(want.equals(data)).toBe(true);
      for (const chunk of stored.length < 50_000 ? [1, 7, stored.length] : [4099, MiB, stored.length]) {
        const got = await readAllPulled(stored, chunk);
        expect(got.data.equals(data), `chunks of ${chunk}`).toBe(true);
        expect(got.trailer.rawSize).toBe(data.length);
        expect(got.trailer.sha256).toBe(createHash('sha256').update(data).digest('hex'));
      }
    });

    it(`${codec}: any flipped byte or truncation is refused, as by decodeObject`, async () => {
      const data = rows(300_000);
      const stored = await encode(data, codec);
      for (const at of [2, headerWrapperSize(codec) + 3, Math.floor(stored.length / 2), stored.length - 30, stored.length - 1]) {
        const bad = Buffer.from(stored);
        bad[at]! ^= 0x40;
        await expect(readAllPulled(bad, 4096), `flip at ${at}`).rejects.toThrow(IntegrityError);
      }
      await expect(readAllPulled(stored.subarray(0, stored.length - 1), 4096)).rejects.toThrow(IntegrityError);
      await expect(readAllPulled(stored.subarray(0, Math.floor(stored.length / 2)), 4096)).rejects.toThrow(IntegrityError);
    });
  }

  it('lz4: blocks decoded in WebAssembly (restore) and in JavaScript (where it is unavailable) give the same bytes and trailer', async () => {
    const data = Buffer.concat([rows(3 * MiB), pseudoRandom(MiB), Buffer.alloc(MiB), rows(333_333)]);
    const stored = await encode(data, 'lz4');
    try {
      for (const chunk of [65536, 1000003]) {
        setWasmLz4Decoding(false);
        const inJs = await readAllPulled(stored, chunk);
        setWasmLz4Decoding(true);
        const inWasm = await readAllPulled(stored, chunk);
        expect(inJs.data.equals(data)).toBe(true);
        expect(inWasm.data.equals(data)).toBe(true);
        expect(inWasm.trailer).toEqual(inJs.trailer);
      }
    } finally {
      setWasmLz4Decoding(false);
    }
  });

  it('lz4: every block is decoded into the same reused buffer', async () => {
    const data = rows(5 * MiB);
    const got = await readAllPulled(await encode(data, 'lz4'), MiB);
    expect(got.data.equals(data)).toBe(true);
    expect(got.chunks).toBeGreaterThanOrEqual(5);
    expect(got.buffers).toBe(1);
  });

  it('lz4: the next object reuses the output buffer of one that ended; readers open at once each keep their own', async () => {
    const a = rows(2 * MiB);
    const b = Buffer.from(rows(3 * MiB).subarray(MiB));
    const [sa, sb] = [await encode(a, 'lz4'), await encode(b, 'lz4')];
    const first = await readAllPulled(sa, MiB);
    const second = await readAllPulled(sb, MiB);
    expect(first.data.equals(a) && second.data.equals(b)).toBe(true);
    expect(new Set([...first.owners, ...second.owners]).size).toBe(1);
    // Interleaved, block by block (a file rebuilt from two backups' layers): each reader's block
    // stays intact while the other decodes.
    const [ra, rb] = [await openObjectReader(Readable.from(chunks(sa, MiB)), NAME), await openObjectReader(Readable.from(chunks(sb, MiB)), NAME)];
    const pa: Buffer[] = [];
    const pb: Buffer[] = [];
    const owners = new Set<ArrayBufferLike>();
    for (let x = await ra.next(), y = await rb.next(); x !== null || y !== null; ) {
      if (x !== null && y !== null) expect(x.buffer).not.toBe(y.buffer);
      if (x !== null) {
        pa.push(Buffer.from(x));
        owners.add(x.buffer);
      }
      if (y !== null) {
        pb.push(Buffer.from(y));
        owners.add(y.buffer);
      }
      x = x === null ? null : await ra.next();
      y = y === null ? null : await rb.next();
    }
    expect(Buffer.concat(pa).equals(a) && Buffer.concat(pb).equals(b)).toBe(true);
    expect(owners.size).toBe(2);
  });

  it('lz4: incompressible blocks (stored raw in the frame) are handed out as views of the stored chunk, not copied', async () => {
    const data = pseudoRandom(3 * MiB);
    const stored = await encode(data, 'lz4');
    // One stored chunk: every block handed out lies in it (a copy would be a buffer per block).
    const got = await readAllPulled(stored, stored.length);
    expect(got.data.equals(data)).toBe(true);
    expect(got.trailer.sha256).toBe(createHash('sha256').update(data).digest('hex'));
    expect(got.chunks).toBeGreaterThanOrEqual(3);
    expect(got.buffers).toBe(1);
  });

  it('contentHash: false skips the sha256 but still checks sizes and the lz4 stream', async () => {
    const data = Buffer.alloc(100_000, 'pgark ');
    const stored = await encode(data, 'none');
    const bad = Buffer.from(stored);
    bad[headerWrapperSize('none') + 50_000]! ^= 0x01;
    // The caller checks the content itself (a manifest's per-file sha256): a changed byte passes here...
    expect((await readAllPulled(bad, 4096, { contentHash: false })).data.equals(data)).toBe(false);
    await expect(readAllPulled(bad, 4096)).rejects.toThrow(/checksum mismatch/);
    await expect(readAllPulled(stored.subarray(0, stored.length - 1), 4096, { contentHash: false })).rejects.toThrow(IntegrityError);
    const lz = await encode(rows(200_000), 'lz4');
    const cut = Buffer.concat([lz.subarray(0, headerWrapperSize('lz4') + 40), lz.subarray(headerWrapperSize('lz4') + 41)]);
    await expect(readAllPulled(cut, 4096, { contentHash: false })).rejects.toThrow(IntegrityError);
  });

  for (const codec of ['lz4', 'none'] as const) {
    it.each(inputs)(`encrypted ${codec}: %s gives decodeObject's bytes and trailer in any chunking, through the pull loop`, async (_n, data) => {
      // Chunk size 4096: many encrypted chunks, whose boundaries fall anywhere in the stored chunks.
      const stored = await encode(data, codec, { keyNumber: 1, dataKey: KEY, objectName: NAME, chunkSize: 4096 });
      const want = await readAll(await decodeObject(Readable.from([stored]), NAME, {}, keys));
      expect(want.equals(data)).toBe(true);
      for (const size of [stored.length, MiB, 65536, 4113, 97, 1]) {
        if (size === 1 && data.length > 4096) continue;
        const got = await readAllPulled(stored, size, {}, keys);
        expect(got.data.equals(data), `chunk ${size}`).toBe(true);
        expect(got.trailer.sha256).toBe(createHash('sha256').update(data).digest('hex'));
        expect(got.trailer.rawSize).toBe(data.length);
      }
      const sizesOnly = await readAllPulled(stored, 65536, { contentHash: false }, keys);
      expect(sizesOnly.data.equals(data)).toBe(true);
    });

    it(`encrypted ${codec}: any flipped byte, truncation, or an object under another name is refused, as by decodeObject`, async () => {
      const data = rows(300_000);
      const stored = await encode(data, codec, { keyNumber: 1, dataKey: KEY, objectName: NAME, chunkSize: 4096 });
      const h = headerWrapperSize(codec);
      const S = 4096 + 16; // a sealed chunk: ciphertext and tag
      expect(stored.length).toBeGreaterThan(h + 32 + 4 * S);
      // header, preamble, first chunk, a middle chunk's tag, last chunk, trailer
      const flips = [2, h + 5, h + 40, h + 32 + S + 4100, Math.floor(stored.length / 2), stored.length - 60, stored.length - 30, stored.length - 1];
      const cases: Array<[string, Buffer, string]> = flips.map((at) => {
        const bad = Buffer.from(stored);
        bad[at]! ^= 0x40;
        return [`flip at ${at}`, bad, NAME];
      });
      cases.push(['one byte short', stored.subarray(0, stored.length - 1), NAME]);
      cases.push(['half', stored.subarray(0, Math.floor(stored.length / 2)), NAME]);
      cases.push(['header and preamble only', stored.subarray(0, h + 32), NAME]);
      // A whole chunk left out (a chunk boundary: every chunk's own tag is good).
      cases.push(['a chunk left out', Buffer.concat([stored.subarray(0, h + 32 + S), stored.subarray(h + 32 + 2 * S)]), NAME]);
      cases.push(['moved to another name', stored, `${NAME}-elsewhere`]);
      for (const [what, bad, name] of cases) {
        await expect((async () => readAll(await decodeObject(Readable.from([bad]), name, {}, keys)))(), `decodeObject: ${what}`).rejects.toThrow(IntegrityError);
        const pulled = async () => {
          const r = await openObjectReader(Readable.from(chunks(bad, 4096)), name, {}, keys);
          for (let c = await r.next(); c !== null; c = await r.next());
        };
        await expect(pulled(), what).rejects.toThrow(IntegrityError);
      }
    });
  }

  it('encrypted lz4: every block is decoded into the same reused buffer (the pull loop, not the stream path)', async () => {
    const data = rows(5 * MiB);
    const got = await readAllPulled(await encode(data, 'lz4', { keyNumber: 1, dataKey: KEY, objectName: NAME }), MiB, {}, keys);
    expect(got.data.equals(data)).toBe(true);
    expect(got.chunks).toBeGreaterThanOrEqual(5);
    expect(got.buffers).toBe(1);
  });

  it('encrypted objects give the same bytes; a plain object is refused where the stanza is encrypted', async () => {
    const data = rows(2 * MiB);
    for (const codec of ['lz4', 'none'] as const) {
      const stored = await encode(data, codec, { keyNumber: 1, dataKey: KEY, objectName: NAME });
      const got = await readAllPulled(stored, 100_000, {}, keys);
      expect(got.data.equals(data)).toBe(true);
      expect(got.trailer.sha256).toBe(createHash('sha256').update(data).digest('hex'));
      const bad = Buffer.from(stored);
      bad[Math.floor(stored.length / 2)]! ^= 0x01;
      await expect(readAllPulled(bad, 100_000, {}, keys)).rejects.toThrow();
    }
    await expect(readAllPulled(await encode(data, 'lz4'), 100_000, {}, keys)).rejects.toThrow(/not encrypted/);
  });

  it('lz4 objects stored before 64 KiB blocks (one block of up to 1 MiB per frame, 4 MiB block maximum) still read, flipped bytes refused', async () => {
    const data = Buffer.concat([rows(2 * MiB), pseudoRandom(MiB + 5000)]);
    const payload = oneBlockFrames(data);
    const sha256 = createHash('sha256').update(data).digest('hex');
    const stored = Buffer.concat([encodeHeader('lz4'), payload, encodeTrailer('lz4', { rawSize: data.length, payloadSize: payload.length, sha256 })]);
    expect((await readAll(await decodeObject(Readable.from(chunks(stored, 65536)), NAME))).equals(data)).toBe(true);
    for (const chunk of [4099, MiB, stored.length]) {
      const got = await readAllPulled(stored, chunk);
      expect(got.data.equals(data), `chunks of ${chunk}`).toBe(true);
      expect(got.trailer.sha256).toBe(sha256);
    }
    const bad = Buffer.from(stored);
    bad[headerWrapperSize('lz4') + 1000]! ^= 0x10;
    await expect(readAllPulled(bad, MiB)).rejects.toThrow(IntegrityError);
  });

  it('lz4 frames with linked blocks (lz4 -BD) decode with their 64 KiB history', async () => {
    const data = rows(3 * MiB);
    const r = spawnSync('lz4', ['-c', '-BD', '-B4'], { input: data, maxBuffer: 64 * MiB });
    expect(r.status, String(r.stderr)).toBe(0);
    const payload = r.stdout;
    const sha256 = createHash('sha256').update(data).digest('hex');
    const stored = Buffer.concat([encodeHeader('lz4'), payload, encodeTrailer('lz4', { rawSize: data.length, payloadSize: payload.length, sha256 })]);
    for (const chunk of [4099, MiB]) expect((await readAllPulled(stored, chunk)).data.equals(data)).toBe(true);
  });
});

describe('lz4 block decoder', () => {
  const samples: Array<[string, Buffer]> = [
    ['rows', rows(MiB)],
    ['zeros', Buffer.alloc(MiB)],
    ['random', pseudoRandom(MiB)],
    ['short', Buffer.from('abcabcabcabcabcabcabcabcabc-x')],
    ['period 3 then noise', Buffer.concat([Buffer.alloc(70_000, 'xyz'), pseudoRandom(5000), Buffer.alloc(40, 'q')])],
  ];

  it.each(samples)('%s: same bytes as lz4-napi, nothing written outside the range', (_n, data) => {
    const block = lz4.compressSync(data); // lz4_flex's layout: 4 bytes of decoded size, then the block
    const dst = Buffer.alloc(data.length + 200, 0xee);
    const n = decodeLz4BlockInto(block, 4, block.length, dst, 100, 100 + data.length);
    expect(n).toBe(data.length);
    expect(dst.subarray(100, 100 + n).equals(data)).toBe(true);
    expect(dst.subarray(0, 100).every((b) => b === 0xee)).toBe(true);
    expect(dst.subarray(100 + n).every((b) => b === 0xee)).toBe(true);
    // One byte too little room: refused, not overrun.
    if (data.length > 0) expect(() => decodeLz4BlockInto(block, 4, block.length, dst, 100, 100 + data.length - 1)).toThrow();
  });

  it('corrupt blocks throw or decode within the range, never outside it', () => {
    const good = lz4.compressSync(rows(64 * 1024));
    const dst = Buffer.alloc(3 * 65536);
    const rnd = pseudoRandom(4096 * 64);
    const guard = Buffer.alloc(65536, 0xee);
    for (let i = 0; i < 200; i++) {
      const bad = Buffer.from(good);
      // flip a few bytes (and sometimes cut the block)
      for (let k = 0; k < 3; k++) bad[4 + (rnd.readUInt32LE((i * 12 + k * 4) % (rnd.length - 4)) % (bad.length - 4))]! ^= 1 << (i % 8);
      const end = i % 5 === 0 ? 4 + ((i * 7919) % (bad.length - 4)) : bad.length;
      dst.fill(0xee);
      let n = 0;
      try {
        n = decodeLz4BlockInto(bad, 4, end, dst, 65536, 2 * 65536);
      } catch {
        n = 0;
      }
      expect(n).toBeLessThanOrEqual(65536);
      expect(dst.subarray(0, 65536).equals(guard)).toBe(true);
      expect(dst.subarray(2 * 65536).equals(guard)).toBe(true);
    }
    // Garbage that is not a block at all.
    expect(() => decodeLz4BlockInto(Buffer.from([0x0f, 1, 2]), 0, 3, dst, 0, 100)).toThrow();
    expect(() => decodeLz4BlockInto(Buffer.from([0x00, 0x05, 0x00]), 0, 3, dst, 0, 100)).toThrow(/offset/);
  });
});
