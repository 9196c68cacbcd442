/**
 * lz4 payloads in the layout pgark wrote before frames of 64 KiB blocks (io/codecs/lz4.ts): per
 * MiB of input one frame (FLG 0x60: independent blocks, no checksums; BD 0x70: 4 MiB block
 * maximum) holding one block, stored raw when lz4 did not make it smaller. Repositories written
 * then must keep reading.
 */
import lz4 from 'lz4-napi';

const MiB = 1024 * 1024;
/** Magic, FLG, BD, header checksum (xxh32 of FLG BD, second byte). */
const OLD_HEAD = Buffer.from([0x04, 0x22, 0x4d, 0x18, 0x60, 0x70, 0x73]);

export function oneBlockFrames(data: Buffer): Buffer {
  const parts: Buffer[] = [];
  for (let at = 0; at < data.length; at += MiB) {
    const piece = data.subarray(at, Math.min(at + MiB, data.length));
    const block = lz4.compressSync(piece).subarray(4); // lz4_flex: the size (u32 LE), then the block
    const raw = block.length >= piece.length;
    const size = Buffer.alloc(4);
    size.writeUInt32LE(raw ? (piece.length | 0x80000000) >>> 0 : block.length);
    parts.push(OLD_HEAD, size, raw ? piece : block, Buffer.alloc(4));
  }
  return Buffer.concat(parts);
}
