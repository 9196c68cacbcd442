/**
 * Encrypted objects, with bytes: every flipped byte, a truncation at any point, reordered and
 * swapped chunks, an object moved to another name, a wrong data key, and a plain object put in
 * place of an encrypted one all fail; the emergency path gives back the plain object.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { IntegrityError, KeyError } from '../../src/common/errors.js';
import { CODEC_NAMES, type CodecName } from '../../src/io/codec.js';
import { keyedDigest, PREAMBLE_SIZE, TAG_SIZE } from '../../src/repo/chunk-cipher.js';
import { headerWrapperSize, parseTrailer, trailerWrapperSize } from '../../src/repo/object-format.js';
import { decodeObject, decryptToPlain, encodeObject, encodeSmallObject, readAll, type DecryptKeys, type EncryptWith } from '../../src/repo/object-stream.js';

const NAME = 'main/wal/00000001/0000000100000000/000000010000000000000003';
const KEY1 = randomBytes(32);
const KEY2 = randomBytes(32);
const CHUNK = 4096;

function keys(o: Partial<Record<number, Buffer>> = { 1: KEY1, 2: KEY2 }, plainAllowed = false): DecryptKeys {
  return {
    plainAllowed,
    dataKey: (n) => {
      const k = o[n];
      return k ? Promise.resolve(k) : Promise.reject(new KeyError(`no data key ${n}`));
    },
  };
}

function* chunks(b: Buffer, n: number): Generator<Buffer> {
  for (let i = 0; i < b.length; i += n) yield b.subarray(i, i + n);
}

async function encode(data: Buffer, codec: CodecName, enc: Partial<EncryptWith> = {}): Promise<Buffer> {
  const { stream, done } = await encodeObject(Readable.from(chunks(data, 10_000)), codec, undefined, { keyNumber: 1, dataKey: KEY1, objectName: NAME, chunkSize: CHUNK, ...enc });
  const [out] = await Promise.all([readAll(stream), done]);
  return out;
}

async function decode(stored: Buffer, name = NAME, k: DecryptKeys = keys()): Promise<Buffer> {
  const s = await decodeObject(Readable.from(chunks(stored, 3000)), name, {}, k);
  const out = await readAll(s);
  await s.verified;
  return out;
}

/** Incompressible data, so that the payload has many chunks whatever the codec. */
const DATA = Buffer.concat([randomBytes(5 * CHUNK + 123), Buffer.from('secret row value: Zanzibar-4711\n'.repeat(50))]);

describe('encrypted objects', () => {
  it.each(CODEC_NAMES)('%s: round trip; no plaintext and no plain sha256 in the stored bytes', async (codec) => {
    const stored = await encode(DATA, codec);
    expect(await decode(stored)).toEqual(DATA);
    expect(stored.includes(Buffer.from('Zanzibar'))).toBe(false);
    const sha = createHash('sha256').update(DATA).digest();
    expect(stored.includes(sha)).toBe(false);
    const t = parseTrailer(codec, stored.subarray(stored.length - trailerWrapperSize(codec)), NAME);
    expect(t).toMatchObject({ rawSize: DATA.length, keyNumber: 1, sha256: keyedDigest(KEY1, sha.toString('hex')) });
  });

  it('the decoded stream reports the plain sha256 (as for plain objects); without the content hash chunks still authenticate', async () => {
    const stored = await encode(DATA, 'lz4');
    const s = await decodeObject(Readable.from([stored]), NAME, {}, keys());
    await readAll(s);
    expect((await s.verified).sha256).toBe(createHash('sha256').update(DATA).digest('hex'));
    const bad = Buffer.from(stored);
    bad[headerWrapperSize('lz4') + PREAMBLE_SIZE + 100] = bad[headerWrapperSize('lz4') + PREAMBLE_SIZE + 100]! ^ 1;
    await expect(readAll(await decodeObject(Readable.from([bad]), NAME, { contentHash: false }, keys()))).rejects.toThrow(/failed authentication/);
  });

  it('empty content and an exact multiple of the chunk size round-trip', async () => {
    for (const d of [Buffer.alloc(0), randomBytes(3 * CHUNK)]) expect(await decode(await encode(d, 'none'))).toEqual(d);
  });

  it('encodeSmallObject encrypts the same way', async () => {
    const raw = randomBytes(2 * CHUNK + 7);
    const { body, result } = encodeSmallObject(raw, { keyNumber: 2, dataKey: KEY2, objectName: NAME, chunkSize: CHUNK });
    expect(result.sha256).toBe(createHash('sha256').update(raw).digest('hex'));
    expect(await decode(body)).toEqual(raw);
  });

  it('every flipped byte fails (none codec: header, preamble, every chunk, tags, trailer)', async () => {
    const stored = await encode(randomBytes(2 * CHUNK + 100), 'none');
    let failed = 0;
    for (let i = 0; i < stored.length; i += 37) {
      const bad = Buffer.from(stored);
      bad[i] = bad[i]! ^ 0x01;
      await expect(decode(bad), `byte ${i}`).rejects.toBeInstanceOf(Error);
      failed++;
    }
    expect(failed).toBeGreaterThan(200);
  });

  it.each(['lz4', 'zstd', 'gzip'] as const)('%s: flipped bytes in the payload fail authentication', async (codec) => {
    const stored = await encode(DATA, codec);
    const start = headerWrapperSize(codec);
    for (const at of [start + 5, start + PREAMBLE_SIZE + 1, start + PREAMBLE_SIZE + CHUNK + TAG_SIZE + 9, stored.length - trailerWrapperSize(codec) - 1]) {
      const bad = Buffer.from(stored);
      bad[at] = bad[at]! ^ 0x80;
      await expect(decode(bad)).rejects.toBeInstanceOf(IntegrityError);
    }
  });

  it('a payload truncated at a chunk boundary (trailer rewritten to match) fails: the last chunk is not marked final', async () => {
    const stored = await encode(randomBytes(3 * CHUNK + 10), 'none');
    const h = headerWrapperSize('none');
    const t = trailerWrapperSize('none');
    const payload = stored.subarray(h, stored.length - t);
    const cut = payload.subarray(0, PREAMBLE_SIZE + 2 * (CHUNK + TAG_SIZE));
    const trailer = parseTrailer('none', stored.subarray(stored.length - t), NAME);
    const { encodeTrailer } = await import('../../src/repo/object-format.js');
    const forged = Buffer.concat([stored.subarray(0, h), cut, encodeTrailer('none', { ...trailer, payloadSize: cut.length, rawSize: 2 * CHUNK })]);
    await expect(decode(forged)).rejects.toThrow(/failed authentication/);
  });

  it('any truncation of the stored object fails', async () => {
    const stored = await encode(randomBytes(2 * CHUNK + 100), 'lz4');
    for (const n of [0, 10, 30, 100, CHUNK, stored.length - 80, stored.length - 1]) {
      await expect(decode(stored.subarray(0, n)), `first ${n} bytes`).rejects.toBeInstanceOf(Error);
    }
  });

  it('reordered chunks fail (the counter is in the nonce)', async () => {
    const stored = await encode(randomBytes(3 * CHUNK + 10), 'none');
    const h = headerWrapperSize('none') + PREAMBLE_SIZE;
    const S = CHUNK + TAG_SIZE;
    const bad = Buffer.from(stored);
    stored.copy(bad, h, h + S, h + 2 * S);
    stored.copy(bad, h + S, h, h + S);
    await expect(decode(bad)).rejects.toThrow(/chunk 0 failed authentication/);
  });

  it('an object moved to another name fails (the name is in the AAD)', async () => {
    const stored = await encode(DATA, 'zstd');
    await expect(decode(stored, 'main/wal/00000001/0000000100000000/000000010000000000000004')).rejects.toThrow(/failed authentication/);
  });

  it('the same content under another object salt swapped in chunk by chunk fails', async () => {
    const content = randomBytes(2 * CHUNK + 10);
    const a = await encode(content, 'none');
    const b = await encode(content, 'none');
    const h = headerWrapperSize('none') + PREAMBLE_SIZE;
    const S = CHUNK + TAG_SIZE;
    const mixed = Buffer.from(a);
    b.copy(mixed, h + S, h + S, h + 2 * S);
    await expect(decode(mixed)).rejects.toThrow(/chunk 1 failed authentication/);
  });

  it('a wrong data key fails authentication; a missing one is a KeyError naming it', async () => {
    const stored = await encode(DATA, 'lz4');
    await expect(decode(stored, NAME, keys({ 1: KEY2 }))).rejects.toThrow(/failed authentication/);
    await expect(decode(stored, NAME, keys({ 2: KEY2 }))).rejects.toThrow(/no data key 1/);
    await expect(decodeObject(Readable.from([stored]), NAME)).rejects.toBeInstanceOf(KeyError);
  });

  it('a plain object in an encrypted stanza is refused unless the keyring allows the plain objects from before', async () => {
    const { stream, done } = await encodeObject(Readable.from([DATA]), 'lz4');
    const [plain] = await Promise.all([readAll(stream), done]);
    await expect(decode(plain)).rejects.toThrow(/not encrypted, but its stanza is/);
    expect(await decode(plain, NAME, keys(undefined, true))).toEqual(DATA);
  });

  it.each(CODEC_NAMES)('%s: decryptToPlain gives the plain v1 object, which decodes without keys', async (codec) => {
    const stored = await encode(DATA, codec);
    const plain = await readAll(await decryptToPlain(Readable.from(chunks(stored, 5000)), NAME, keys()));
    expect(plain[codec === 'gzip' ? 10 + 2 + 4 + 4 : codec === 'none' ? 4 : 12]).toBe(1); // format version 1
    expect(await readAll(await decodeObject(Readable.from([plain]), NAME))).toEqual(DATA);
    const bad = Buffer.from(stored);
    bad[bad.length - 100] = bad[bad.length - 100]! ^ 1;
    await expect(readAll(await decryptToPlain(Readable.from([bad]), NAME, keys()))).rejects.toBeInstanceOf(Error);
  });
});
