/**
 * Bounds-checked big-endian cursor over one protocol message body. Every read
 * past the end, and any bytes left over at end(), throws ProtocolError
 * `unable to parse <what>: <cause>`. Pure, no I/O.
 */
import { ProtocolError } from '../common/errors.js';

export class BodyReader {
  private pos = 0;

  constructor(
    private readonly buf: Buffer,
    private readonly what: string,
  ) {}

  error(cause: string): ProtocolError {
    return new ProtocolError(`unable to parse ${this.what}: ${cause}`);
  }

  private need(n: number, field: string): number {
    const at = this.pos;
    if (this.buf.length - at < n) {
      throw this.error(`truncated at byte ${at} (${field} needs ${n} bytes, ${this.buf.length - at} left)`);
    }
    this.pos += n;
    return at;
  }

  uint8(): number {
    return this.buf.readUInt8(this.need(1, 'int8'));
  }

  int16(): number {
    return this.buf.readInt16BE(this.need(2, 'int16'));
  }

  int32(): number {
    return this.buf.readInt32BE(this.need(4, 'int32'));
  }

  uint32(): number {
    return this.buf.readUInt32BE(this.need(4, 'int32'));
  }

  skip(n: number): void {
    this.need(n, 'field');
  }

  /** A view of the next `n` bytes (no copy). */
  bytes(n: number): Buffer {
    const at = this.need(n, `${n}-byte value`);
    return this.buf.subarray(at, at + n);
  }

  /** A NUL-terminated UTF-8 string. */
  cstring(): string {
    const nul = this.buf.indexOf(0, this.pos);
    if (nul < 0) throw this.error(`string at byte ${this.pos} is not NUL-terminated`);
    const s = this.buf.toString('utf8', this.pos, nul);
    this.pos = nul + 1;
    return s;
  }

  /** Assert the whole body was consumed. */
  end(): void {
    if (this.pos !== this.buf.length) {
      throw this.error(`${this.buf.length - this.pos} unexpected bytes after byte ${this.pos}`);
    }
  }
}
