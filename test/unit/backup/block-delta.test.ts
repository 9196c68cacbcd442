/**
 * The page-LSN block delta rule (backup/block-delta.ts), with bytes: which blocks an incremental
 * takes from its parent, and when it may not use page LSNs at all.
 */
import { describe, expect, it } from 'vitest';
import { blockDeltaRefusal, blockDeltaRule, blockFromParent } from '../../../src/backup/block-delta.js';
import { BLCKSZ, pageChecksumAt, pageLsn, verifyPageAt } from '../../../src/backup/page-checksum.js';

/** An initialised page with pd_lsn `lsn` and a valid checksum for block `block`. */
function page(lsn: bigint, block: number, fill = 7): Buffer {
  const b = Buffer.alloc(BLCKSZ, fill);
  b.writeUInt32LE(Number(lsn >> 32n), 0); // xlogid: high half
  b.writeUInt32LE(Number(lsn & 0xffffffffn), 4); // xrecoff: low half
  b.writeUInt16LE(BLCKSZ - 64, 14);
  b.writeUInt16LE(pageChecksumAt(b, 0, block), 8);
  return b;
}

const parentStart = 0x2_0000_1000n; // 2/1000
const rule = blockDeltaRule(parentStart, 10);

describe('blockFromParent', () => {
  it('reads pd_lsn as xlogid (high) then xrecoff (low), as pageLsn does', () => {
    const p = page(0x1_ffff_fff0n, 3);
    expect(pageLsn(p)).toBe(0x1_ffff_fff0n);
    expect(verifyPageAt(p, 0, 3)).toBe('ok');
  });

  it.each([
    ['older than the parent start (other xlogid)', 0x1_ffff_ffffn, 3, true],
    ['older than the parent start (same xlogid)', 0x2_0000_0fffn, 3, true],
    ['at the parent start', parentStart, 3, false],
    ['after the parent start (low half larger)', 0x2_0000_1001n, 3, false],
    ['after the parent start (high half larger, low half smaller)', 0x3_0000_0000n, 3, false],
    ['pd_lsn 0', 0n, 3, false],
    ['beyond the parent copy (block 10 of a 10-block parent)', 0x1_0000_0000n, 10, false],
  ])('%s -> from the parent: %s', (_what, lsn, block, expected) => {
    const p = page(lsn, block);
    expect(blockFromParent(p, 0, BLCKSZ, block, verifyPageAt(p, 0, block) === 'ok', rule)).toBe(expected);
  });

  it('a page whose checksum does not verify (torn: old pd_lsn in front, new bytes behind) is stored', () => {
    const p = page(0x1_0000_0000n, 3);
    p.fill(9, BLCKSZ / 2); // the second half from a newer write
    expect(verifyPageAt(p, 0, 3)).toBe('bad');
    expect(blockFromParent(p, 0, BLCKSZ, 3, false, rule)).toBe(false);
  });

  it('a partial block is stored', () => {
    const p = page(0x1_0000_0000n, 3);
    expect(blockFromParent(p, 0, BLCKSZ - 1, 3, true, rule)).toBe(false);
  });

  it('works at an offset inside a larger buffer', () => {
    const buf = Buffer.concat([page(0x3_0000_0000n, 0), page(0x1_0000_0000n, 1)]);
    expect(blockFromParent(buf, 0, BLCKSZ, 0, true, rule)).toBe(false);
    expect(blockFromParent(buf, BLCKSZ, BLCKSZ, 1, true, rule)).toBe(true);
  });
});

describe('blockDeltaRefusal', () => {
  const ok = { dataChecksums: true, fullPageWrites: true, blockSize: BLCKSZ };
  it.each([
    ['checksums on here and in the parent', ok, true, undefined],
    ['data checksums off (hint bits change pages without moving pd_lsn)', { ...ok, dataChecksums: false }, true, /data checksums are off/],
    ['parent taken without checksums (pg_checksums rewrote pd_checksum since)', ok, false, /parent backup was taken without data checksums/],
    ['full_page_writes off', { ...ok, fullPageWrites: false }, true, /full_page_writes is off/],
    ['another block size', { ...ok, blockSize: 16384 }, true, /block size is 16384/],
  ])('%s', (_what, now, parentChecksums, expected) => {
    const r = blockDeltaRefusal(now, { dataChecksums: parentChecksums });
    if (expected === undefined) expect(r).toBeUndefined();
    else expect(r).toMatch(expected);
  });
});
