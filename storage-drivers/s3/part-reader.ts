/**
 * Cut a put body into upload parts (pure, no SDK). A Buffer body is sliced without copying; a
 * stream is read only as far as the part being filled, so memory stays bounded by the parts the
 * caller holds.
 */

export class PartReader {
  private readonly iterator: AsyncIterator<unknown> | undefined;
  private readonly whole: Buffer | undefined;
  private offset = 0;
  private carry: Buffer | undefined;
  private ended = false;

  constructor(body: Buffer | AsyncIterable<unknown>) {
    if (Buffer.isBuffer(body)) this.whole = body;
    else this.iterator = body[Symbol.asyncIterator]();
  }

  /** Whether the body has at least one more byte (waits for it, or for the end). */
  async hasMore(): Promise<boolean> {
    if (this.whole) return this.offset < this.whole.length;
    while (!this.carry?.length) {
      if (this.ended) return false;
      const r = await (this.iterator as AsyncIterator<unknown>).next();
      if (r.done) {
        this.ended = true;
        return false;
      }
      this.carry = toBuffer(r.value);
    }
    return true;
  }

  /** Up to `size` bytes: fewer only at the end of the body, an empty Buffer once it has ended. */
  async read(size: number): Promise<Buffer> {
    if (this.whole) {
      const part = this.whole.subarray(this.offset, this.offset + size);
      this.offset += part.length;
      return part;
    }
    const chunks: Buffer[] = [];
    let total = 0;
    if (this.carry?.length) {
      chunks.push(this.carry);
      total = this.carry.length;
    }
    this.carry = undefined;
    while (total < size && !this.ended) {
      const r = await (this.iterator as AsyncIterator<unknown>).next();
      if (r.done) {
        this.ended = true;
        break;
      }
      const buf = toBuffer(r.value);
      if (buf.length === 0) continue;
      chunks.push(buf);
      total += buf.length;
    }
    if (total > size) {
      const last = chunks.pop() as Buffer;
      const keep = last.length - (total - size);
      chunks.push(last.subarray(0, keep));
      this.carry = last.subarray(keep);
      total = size;
    }
    return chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, total);
  }
}

function toBuffer(chunk: unknown): Buffer {
  if (Buffer.isBuffer(chunk)) return chunk;
  if (typeof chunk === 'string') return Buffer.from(chunk);
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  throw new TypeError('put body chunks must be Buffers, Uint8Arrays or strings');
}
