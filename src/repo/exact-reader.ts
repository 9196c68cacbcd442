/**
 * Exact byte counts from an object (object-reader.ts), for readers that take a file's bytes
 * slice by slice: restore's worker and verify's rebuild of block-delta files
 * (catalog/layer-merge.ts). A slice `take` yields is valid until the loop over it asks for the
 * next one: use it (write, hash) at once.
 */
import { IntegrityError } from '../common/errors.js';
import type { ObjectTrailer } from './object-format.js';
import type { ObjectReader } from './object-reader.js';

export class ExactReader {
  private buf: Buffer = Buffer.alloc(0);
  private pos = 0;
  constructor(private readonly reader: ObjectReader, private readonly where: string) {}

  /** Read to the end of the object and return its verified trailer (size and sha256 of all of it). */
  async finish(): Promise<ObjectTrailer> {
    while ((await this.reader.next()) !== null);
    return this.reader.trailer!;
  }

  /** Up to `n` bytes as one or more slices, exactly `n` unless the stream ends (then IntegrityError). */
  async *take(n: number): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (this.pos >= this.buf.length) {
        const next = await this.reader.next();
        if (next === null) throw new IntegrityError(`unable to restore from '${this.where}': object ends ${left} bytes early`);
        this.buf = next;
        this.pos = 0;
      }
      const k = Math.min(left, this.buf.length - this.pos);
      yield this.buf.subarray(this.pos, this.pos + k);
      this.pos += k;
      left -= k;
    }
  }

  async skip(n: number): Promise<void> {
    for await (const _ of this.take(n)) void _;
  }

  async close(): Promise<void> {
    await this.reader.close();
  }
}
