/**
 * Streaming XXH32, needed to verify LZ4 frame header/block/content checksums because lz4-napi
 * only exposes whole-frame decoding (see lz4-frame-decoder.ts).
 */
const P1 = 2654435761;
const P2 = 2246822519;
const P3 = 3266489917;
const P4 = 668265263;
const P5 = 374761393;

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

const rotl = (x: number, r: number): number => (x << r) | (x >>> (32 - r));
const round = (acc: number, lane: number): number => Math.imul(rotl((acc + Math.imul(lane, P2)) | 0, 13), P1);
const u32 = (b: Uint8Array, i: number): number =>
  (b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24)) >>> 0;

export class Xxh32 {
  private v1: number;
  private v2: number;
  private v3: number;
  private v4: number;
  private total = 0;
  private readonly tail = new Uint8Array(16);
  private tailLen = 0;

  constructor(private readonly seed = 0) {
    this.v1 = (seed + P1 + P2) | 0;
    this.v2 = (seed + P2) | 0;
    this.v3 = seed | 0;
    this.v4 = (seed - P1) | 0;
  }

  update(data: Uint8Array): this {
    this.total += data.length;
    let i = 0;
    if (this.tailLen > 0) {
      const need = 16 - this.tailLen;
      if (data.length < need) {
        this.tail.set(data, this.tailLen);
        this.tailLen += data.length;
        return this;
      }
      this.tail.set(data.subarray(0, need), this.tailLen);
      this.stripes(this.tail, 0, 16);
      this.tailLen = 0;
      i = need;
    }
    const end = i + ((data.length - i) & ~15);
    if (end > i) this.stripes(data, i, end);
    if (end < data.length) {
      this.tail.set(data.subarray(end), 0);
      this.tailLen = data.length - end;
    }
    return this;
  }

  private stripes(b: Uint8Array, start: number, end: number): void {
    let v1 = this.v1;
    let v2 = this.v2;
    let v3 = this.v3;
    let v4 = this.v4;
    if (LITTLE_ENDIAN && (b.byteOffset + start) % 4 === 0) {
      // Word view is about twice as fast as assembling words from bytes.
      const w = new Uint32Array(b.buffer, b.byteOffset + start, (end - start) / 4);
      for (let i = 0; i < w.length; i += 4) {
        v1 = round(v1, w[i]!);
        v2 = round(v2, w[i + 1]!);
        v3 = round(v3, w[i + 2]!);
        v4 = round(v4, w[i + 3]!);
      }
    } else {
      for (let i = start; i < end; i += 16) {
        v1 = round(v1, u32(b, i));
        v2 = round(v2, u32(b, i + 4));
        v3 = round(v3, u32(b, i + 8));
        v4 = round(v4, u32(b, i + 12));
      }
    }
    this.v1 = v1;
    this.v2 = v2;
    this.v3 = v3;
    this.v4 = v4;
  }

  digest(): number {
    let h =
      this.total >= 16
        ? (rotl(this.v1, 1) + rotl(this.v2, 7) + rotl(this.v3, 12) + rotl(this.v4, 18)) | 0
        : (this.seed + P5) | 0;
    h = (h + this.total) | 0;
    const t = this.tail;
    let i = 0;
    for (; i + 4 <= this.tailLen; i += 4) h = Math.imul(rotl((h + Math.imul(u32(t, i), P3)) | 0, 17), P4);
    for (; i < this.tailLen; i++) h = Math.imul(rotl((h + Math.imul(t[i]!, P5)) | 0, 11), P1);
    h ^= h >>> 15;
    h = Math.imul(h, P2);
    h ^= h >>> 13;
    h = Math.imul(h, P3);
    h ^= h >>> 16;
    return h >>> 0;
  }
}

export function xxh32(data: Uint8Array, seed = 0): number {
  return new Xxh32(seed).update(data).digest();
}
