/** A tiny byte builder for protocol tests: every value is written explicitly, big-endian. */
export class Bytes {
  private parts: number[] = [];
  int8(v: number): this {
    this.parts.push(v & 0xff);
    return this;
  }
  int16(v: number): this {
    return this.int8(v >> 8).int8(v);
  }
  int32(v: number): this {
    return this.int8(v >>> 24).int8(v >>> 16).int8(v >>> 8).int8(v);
  }
  int64(v: bigint): this {
    const u = BigInt.asUintN(64, v);
    return this.int32(Number(u >> 32n)).int32(Number(u & 0xffffffffn));
  }
  char(c: string): this {
    return this.int8(c.charCodeAt(0));
  }
  raw(b: Buffer | string): this {
    for (const x of Buffer.from(b)) this.parts.push(x);
    return this;
  }
  cstring(s: string): this {
    return this.raw(s).int8(0);
  }
  build(): Buffer {
    return Buffer.from(this.parts);
  }
}

/** Deterministic pseudo-random bytes (xorshift32), so failures reproduce. */
export function pseudoRandom(size: number, seed = 0x9e3779b9): Buffer {
  const out = Buffer.allocUnsafe(size);
  let x = seed;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}
