import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import {
  BLCKSZ,
  RELSEG_BLOCKS,
  absoluteBlockNumber,
  isAllZero,
  isNewPage,
  pageChecksum,
  pageChecksumAt,
  pageLsn,
  storedChecksum,
  verifyPage,
  verifyPageAt,
  verifyPages,
  setSimdPageChecksums,
  PAGE_BAD,
  PAGE_NEW,
  PAGE_OK,
} from '../../src/backup/page-checksum.js';

interface FixturePage {
  description: string;
  file: string;
  absoluteBlock: number;
  pdChecksum: number;
  pdLsn: string;
  pageGzipBase64: string;
}

/** Pages copied from a real PostgreSQL 15 cluster initialised with --data-checksums. */
const fixture = JSON.parse(readFileSync(new URL('../fixtures/page-checksum-pg15.json', import.meta.url), 'utf8')) as {
  pages: FixturePage[];
};
const realPages = fixture.pages.map((p) => ({ ...p, page: new Uint8Array(gunzipSync(Buffer.from(p.pageGzipBase64, 'base64'))) }));

/** Deterministic pseudo-random bytes (xorshift32). */
function randomBytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

function setU16(b: Uint8Array, at: number, v: number): void {
  b[at] = v & 0xff;
  b[at + 1] = v >>> 8;
}

/** A non-new page: random content with a plausible header (pd_lower 24, pd_upper 8000, pd_special 8192). */
function makePage(seed: number): Uint8Array {
  const page = randomBytes(BLCKSZ, seed);
  setU16(page, 12, 24);
  setU16(page, 14, 8000);
  setU16(page, 16, 8192);
  return page;
}

/**
 * Straightforward reference: checksum_impl.h followed literally (row by row over a copy with
 * pd_checksum zeroed, 32 sums, DataView reads), to cross-check the optimised version.
 */
function referenceChecksum(page: Uint8Array, blkno: number): number {
  const copy = new Uint8Array(page);
  copy[8] = 0;
  copy[9] = 0;
  const dv = new DataView(copy.buffer);
  const base = [
    0x5b1f36e9, 0xb8525960, 0x02ab50aa, 0x1de66d2a, 0x79ff467a, 0x9bb9f8a3, 0x217e7cd2, 0x83e13d2c, 0xf8d4474f, 0xe39eb970, 0x42c6ae16,
    0x993216fa, 0x7b093b5d, 0x98daff3c, 0xf718902a, 0x0b1c9cdb, 0xe58f764b, 0x187636bc, 0x5d7b3bb1, 0xe73de7de, 0x92bec979, 0xcca6c0b2,
    0x304a0979, 0x85aa43d4, 0x783125bb, 0x6ca8eaa2, 0xe407eac6, 0x4b5cfc3e, 0x9fbf8c76, 0x15ca20be, 0xf2ca9fd3, 0x959bd756,
  ];
  const sums = [...base];
  const comp = (sum: number, value: number): number => {
    const tmp = (sum ^ value) >>> 0;
    return (Math.imul(tmp, 16777619) ^ (tmp >>> 17)) >>> 0;
  };
  for (let row = 0; row < BLCKSZ / 128; row++) {
    for (let j = 0; j < 32; j++) sums[j] = comp(sums[j]!, dv.getUint32(row * 128 + j * 4, true));
  }
  let result = 0;
  for (let j = 0; j < 32; j++) result = (result ^ comp(comp(sums[j]!, 0), 0)) >>> 0;
  return (((result ^ blkno) >>> 0) % 65535) + 1;
}

describe('known answers from PostgreSQL 15', () => {
  it('has the fixture pages', () => {
    expect(realPages.length).toBeGreaterThanOrEqual(3);
    for (const p of realPages) expect(p.page.length).toBe(BLCKSZ);
  });

  for (const p of realPages) {
    describe(p.description, () => {
      it('reproduces the pd_checksum PostgreSQL stored', () => {
        expect(storedChecksum(p.page)).toBe(p.pdChecksum);
        expect(pageChecksum(p.page, p.absoluteBlock)).toBe(p.pdChecksum);
        expect(referenceChecksum(p.page, p.absoluteBlock)).toBe(p.pdChecksum);
        expect(verifyPage(p.page, p.absoluteBlock)).toBe('ok');
      });

      it('decodes pd_lsn', () => {
        expect(pageLsn(p.page)).toBe(BigInt(p.pdLsn));
      });

      it('is bad at another block number', () => {
        expect(verifyPage(p.page, p.absoluteBlock + 1)).toBe('bad');
        expect(verifyPage(p.page, p.absoluteBlock + RELSEG_BLOCKS)).toBe('bad');
      });

      it('verifies inside a larger buffer at aligned and unaligned offsets', () => {
        for (const offset of [0, 1, 2, 3, 4, 8192, 8195, 1024 * 1024 - BLCKSZ]) {
          const big = randomBytes(1024 * 1024, offset + 7);
          big.set(p.page, offset);
          const before = big.slice();
          expect(pageChecksumAt(big, offset, p.absoluteBlock)).toBe(p.pdChecksum);
          expect(verifyPageAt(big, offset, p.absoluteBlock)).toBe('ok');
          expect(pageLsn(big, offset)).toBe(BigInt(p.pdLsn));
          expect(storedChecksum(big, offset)).toBe(p.pdChecksum);
          expect(Buffer.compare(big, before)).toBe(0);
        }
      });

      it('verifies through a view whose own byteOffset is unaligned', () => {
        const backing = new Uint8Array(BLCKSZ + 16);
        backing.set(p.page, 5);
        const view = backing.subarray(5, 5 + BLCKSZ);
        expect(view.byteOffset % 4).toBe(1);
        expect(verifyPage(view, p.absoluteBlock)).toBe('ok');
        const buf = Buffer.from(backing.buffer, 1, BLCKSZ + 8);
        expect(verifyPageAt(buf, 4, p.absoluteBlock)).toBe('ok');
      });
    });
  }
});

describe('new and all-zero pages', () => {
  it('an all-zero page is new and not checked', () => {
    const zero = new Uint8Array(BLCKSZ);
    expect(isAllZero(zero)).toBe(true);
    expect(isNewPage(zero)).toBe(true);
    expect(verifyPage(zero, 0)).toBe('new');
    expect(verifyPage(zero, 12345)).toBe('new');
    const big = new Uint8Array(3 * BLCKSZ + 3).fill(0xff);
    big.fill(0, BLCKSZ + 3, 2 * BLCKSZ + 3);
    expect(verifyPageAt(big, BLCKSZ + 3, 1)).toBe('new');
    expect(isAllZero(big, BLCKSZ + 3)).toBe(true);
    expect(isAllZero(big, BLCKSZ + 2)).toBe(false);
  });

  it.each([
    ['first byte of pd_lsn', 0],
    ['pd_checksum', 8],
    ['pd_checksum high byte', 9],
    ['pd_lower', 12],
    ['pd_special', 16],
    ['middle of the page', 4096],
    ['last byte', BLCKSZ - 1],
  ])('a page with pd_upper = 0 but a nonzero byte (%s) is bad', (_name, at) => {
    const page = new Uint8Array(BLCKSZ);
    page[at] = 0x40;
    expect(isNewPage(page)).toBe(true);
    expect(isAllZero(page)).toBe(false);
    expect(verifyPage(page, 0)).toBe('bad');
    // Even when pd_checksum happens to hold what the checksum of the bytes would be.
    setU16(page, 8, referenceChecksum(page, 0));
    expect(verifyPage(page, 0)).toBe('bad');
  });

  it('a page with only pd_upper set is not new', () => {
    const page = new Uint8Array(BLCKSZ);
    setU16(page, 14, 8192);
    expect(isNewPage(page)).toBe(false);
    expect(isAllZero(page)).toBe(false);
    expect(verifyPage(page, 0)).toBe('bad');
    setU16(page, 8, pageChecksum(page, 0));
    expect(verifyPage(page, 0)).toBe('ok');
  });
});

describe('pageChecksum on constructed pages', () => {
  it('matches the literal reference implementation for many pages and block numbers', () => {
    const blocks = [0, 1, 2, 7, 255, 65534, 65535, 65536, RELSEG_BLOCKS, RELSEG_BLOCKS * 3 + 17, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff];
    for (let seed = 1; seed <= 40; seed++) {
      const page = makePage(seed);
      for (const b of blocks) expect(pageChecksum(page, b)).toBe(referenceChecksum(page, b));
    }
  });

  it('returns a value in 1..65535', () => {
    for (let seed = 1; seed <= 200; seed++) {
      const c = pageChecksum(makePage(seed), seed);
      expect(c).toBeGreaterThanOrEqual(1);
      expect(c).toBeLessThanOrEqual(65535);
    }
  });

  it('ignores the stored pd_checksum bytes', () => {
    const page = makePage(99);
    const c = pageChecksum(page, 3);
    for (const [lo, hi] of [[0, 0], [0xff, 0xff], [0x12, 0x34], [c & 0xff, c >>> 8]] as const) {
      page[8] = lo;
      page[9] = hi;
      expect(pageChecksum(page, 3)).toBe(c);
    }
    setU16(page, 8, c);
    expect(verifyPage(page, 3)).toBe('ok');
    setU16(page, 8, c === 65535 ? 1 : c + 1);
    expect(verifyPage(page, 3)).toBe('bad');
  });

  it.each([0, 1, 7, 10, 11, 12, 14, 20, 23, 24, 127, 128, 131, 4095, 4096, 8188, BLCKSZ - 1])(
    'changes when byte %i changes (and verifyPage then reports bad)',
    (at) => {
      const page = makePage(1234);
      setU16(page, 8, pageChecksum(page, 42));
      expect(verifyPage(page, 42)).toBe('ok');
      const before = pageChecksum(page, 42);
      page[at] = page[at]! ^ 0x01; // pd_upper (8000) stays nonzero
      expect(pageChecksum(page, 42)).not.toBe(before);
      expect(pageChecksum(page, 42)).toBe(referenceChecksum(page, 42));
      expect(verifyPage(page, 42)).toBe('bad');
    },
  );

  it('changes with the block number', () => {
    const page = makePage(5);
    const seen = new Set<number>();
    for (const b of [0, 1, 2, 3, RELSEG_BLOCKS, RELSEG_BLOCKS + 1, 0xfffffffe]) seen.add(pageChecksum(page, b));
    expect(seen.size).toBe(7);
  });

  it('does not modify the caller buffer', () => {
    for (const offset of [0, 1]) {
      const buf = new Uint8Array(BLCKSZ + 1);
      buf.set(makePage(77), offset);
      buf[offset + 8] = 0xab;
      buf[offset + 9] = 0xcd;
      const before = buf.slice();
      pageChecksumAt(buf, offset, 9);
      verifyPageAt(buf, offset, 9);
      expect(Buffer.compare(buf, before)).toBe(0);
    }
  });

  it('gives the same result for aligned and unaligned copies, interleaved', () => {
    const pages = [makePage(1), makePage(2), makePage(3)];
    const big = new Uint8Array(4 * BLCKSZ);
    big.set(pages[0]!, 0);
    big.set(pages[1]!, BLCKSZ + 1);
    big.set(pages[2]!, 2 * BLCKSZ + 6);
    for (let round = 0; round < 3; round++) {
      expect(pageChecksumAt(big, 0, 10)).toBe(referenceChecksum(pages[0]!, 10));
      expect(pageChecksumAt(big, BLCKSZ + 1, 11)).toBe(referenceChecksum(pages[1]!, 11));
      expect(pageChecksumAt(big, 2 * BLCKSZ + 6, 12)).toBe(referenceChecksum(pages[2]!, 12));
    }
  });
});

describe('pageLsn', () => {
  it.each([
    ['zero', [0, 0, 0, 0, 0, 0, 0, 0], 0n],
    ['xrecoff only', [0, 0, 0, 0, 0x28, 0x3c, 0x00, 0x16], 0x16003c28n],
    ['xlogid and xrecoff', [0x01, 0, 0, 0, 0x28, 0x3c, 0x00, 0x16], 0x1_16003c28n],
    ['high bits', [0x78, 0x56, 0x34, 0x92, 0xf0, 0xde, 0xbc, 0x9a], 0x92345678_9abcdef0n],
    ['maximum', [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], 0xffffffff_ffffffffn],
  ])('%s', (_name, bytes, lsn) => {
    const page = new Uint8Array(BLCKSZ);
    page.set(bytes);
    expect(pageLsn(page)).toBe(lsn);
    const big = new Uint8Array(2 * BLCKSZ + 3);
    big.set(bytes, BLCKSZ + 3);
    expect(pageLsn(big, BLCKSZ + 3)).toBe(lsn);
  });
});

describe('arguments', () => {
  it('absoluteBlockNumber counts whole segments', () => {
    expect(RELSEG_BLOCKS).toBe(131072);
    expect(absoluteBlockNumber(0, 5)).toBe(5);
    expect(absoluteBlockNumber(2, 5)).toBe(2 * 131072 + 5);
  });

  it('rejects pages of the wrong size and offsets outside the buffer', () => {
    expect(() => pageChecksum(new Uint8Array(BLCKSZ - 1), 0)).toThrow(RangeError);
    expect(() => verifyPage(new Uint8Array(BLCKSZ + 1), 0)).toThrow(RangeError);
    expect(() => verifyPageAt(new Uint8Array(2 * BLCKSZ), BLCKSZ + 1, 0)).toThrow(RangeError);
    expect(() => verifyPageAt(new Uint8Array(2 * BLCKSZ), -1, 0)).toThrow(RangeError);
    expect(() => pageChecksumAt(new Uint8Array(2 * BLCKSZ), 0.5, 0)).toThrow(RangeError);
    expect(() => pageLsn(new Uint8Array(16))).toThrow(RangeError);
    expect(() => isAllZero(new Uint8Array(BLCKSZ), 1)).toThrow(RangeError);
  });

  it('rejects block numbers that are not uint32', () => {
    const page = makePage(3);
    for (const b of [-1, 1.5, 2 ** 32, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => pageChecksum(page, b)).toThrow(RangeError);
    }
  });
});

describe('verifyPages (a whole read buffer at once)', () => {
  const code = { ok: PAGE_OK, new: PAGE_NEW, bad: PAGE_BAD } as const;
  /** Real pages at their own block number, the same page at a wrong block, a new page, a new page with a byte set, a damaged page; then a partial tail. */
  function buffer(shift: number): { buf: Buffer; first: number; expected: number[] } {
    const p = realPages[0]!;
    const first = p.absoluteBlock;
    const pages: Uint8Array[] = [p.page, p.page, new Uint8Array(BLCKSZ), new Uint8Array(BLCKSZ), p.page.slice()];
    pages[3]![100] = 1; // new (pd_upper 0) but not all zeros
    pages[4]![4000] = pages[4]![4000]! ^ 0x40; // one bit flipped
    const backing = Buffer.alloc(shift + pages.length * BLCKSZ + 100, 0xee);
    pages.forEach((pg, i) => backing.set(pg, shift + i * BLCKSZ));
    const buf = backing.subarray(shift);
    // page 1 is block first + 1, but holds the checksum of block `first`
    const expected = pages.map((_, i) => code[verifyPageAt(buf, i * BLCKSZ, first + i)]);
    return { buf, first, expected };
  }

  for (const shift of [0, 1, 4]) {
    it(`gives verifyPageAt's verdict for every whole page (buffer offset ${shift})`, () => {
      const { buf, first, expected } = buffer(shift);
      expect(expected).toEqual([PAGE_OK, PAGE_BAD, PAGE_NEW, PAGE_BAD, PAGE_BAD]);
      const out = new Uint8Array(8).fill(9);
      const before = Buffer.from(buf);
      expect(verifyPages(buf, first, out)).toBe(5);
      expect([...out.subarray(0, 5)]).toEqual(expected);
      expect(out[5]).toBe(9); // nothing written past the whole pages
      expect(Buffer.compare(buf, before)).toBe(0);
    });
  }

  it('checks every real fixture page in one buffer', () => {
    const buf = Buffer.alloc(realPages.length * BLCKSZ);
    // each page at its own position; verdict computed against its own block number
    realPages.forEach((p, i) => buf.set(p.page, i * BLCKSZ));
    for (const [i, p] of realPages.entries()) {
      const out = new Uint8Array(1);
      expect(verifyPages(buf.subarray(i * BLCKSZ, (i + 1) * BLCKSZ), p.absoluteBlock, out)).toBe(1);
      expect(out[0]).toBe(PAGE_OK);
    }
  });

  it('refuses a verdict array too small and block numbers out of range', () => {
    expect(() => verifyPages(new Uint8Array(2 * BLCKSZ), 0, new Uint8Array(1))).toThrow(RangeError);
    expect(() => verifyPages(new Uint8Array(2 * BLCKSZ), 0xffffffff, new Uint8Array(2))).toThrow(RangeError);
    expect(verifyPages(new Uint8Array(BLCKSZ - 1), 0, new Uint8Array(0))).toBe(0);
  });
});

describe('verifyPages in WebAssembly SIMD against the JavaScript implementation', () => {
  /** `count` pages: valid checksums at their block, wrong ones, new all-zero, new with a byte set, every 7th damaged. */
  function pagesAt(first: number, count: number, seed: number): Buffer {
    const buf = Buffer.alloc(count * BLCKSZ);
    let x = seed;
    const rnd = () => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) >>> 8) & 0xff;
    for (let i = 0; i < count; i++) {
      const off = i * BLCKSZ;
      const kind = i % 5;
      if (kind === 2) continue; // new, all zeros
      for (let k = 0; k < BLCKSZ; k++) buf[off + k] = rnd();
      if (kind === 3) {
        buf.writeUInt16LE(0, off + 14); // new (pd_upper 0) with bytes set: bad
        continue;
      }
      buf.writeUInt16LE(0x1000 | rnd(), off + 14); // pd_upper set
      buf.writeUInt16LE(pageChecksumAt(buf, off, kind === 4 ? first + i + 1 : first + i), off + 8);
      if (i % 7 === 6) buf[off + 5000] = buf[off + 5000]! ^ 0x10;
    }
    return buf;
  }

  it('runs in WebAssembly here (else this comparison would compare JavaScript with itself)', () => {
    expect(setSimdPageChecksums(true)).toBe(true);
  });

  for (const [first, count, shift] of [[0, 300, 0], [131072 * 3 + 17, 129, 2], [0xffffffff - 200, 200, 4], [0x7fffffff - 5, 12, 0]] as const) {
    it(`the same verdicts for ${count} pages from block ${first} (buffer offset ${shift})`, () => {
      const pages = pagesAt(first, count, first + count);
      const backing = Buffer.alloc(shift + pages.length + 3000);
      pages.copy(backing, shift);
      const buf = backing.subarray(shift, shift + pages.length + 3000);
      const simd = new Uint8Array(count + 1).fill(9);
      const js = new Uint8Array(count + 1).fill(9);
      try {
        expect(setSimdPageChecksums(true)).toBe(true);
        expect(verifyPages(buf, first, simd)).toBe(count);
        setSimdPageChecksums(false);
        expect(verifyPages(buf, first, js)).toBe(count);
      } finally {
        setSimdPageChecksums(true);
      }
      expect(Buffer.from(simd).equals(Buffer.from(js))).toBe(true);
      expect(simd[count]).toBe(9);
      const kinds = new Set(simd.subarray(0, count));
      expect(kinds).toEqual(new Set([PAGE_OK, PAGE_NEW, PAGE_BAD]));
      // and each verdict is verifyPageAt's (the per-page JavaScript path)
      const code = { ok: PAGE_OK, new: PAGE_NEW, bad: PAGE_BAD } as const;
      for (let i = 0; i < count; i++) expect(simd[i]).toBe(code[verifyPageAt(buf, i * BLCKSZ, first + i)]);
    });
  }
});

describe('page-checksum-wasm.ts, the generated module', () => {
  it('is what wabt assembles from the WebAssembly text in scripts/page-checksum-wasm.mjs (regenerate with `node scripts/page-checksum-wasm.mjs`)', async () => {
    const { assemblePageChecksumWasm } = (await import(new URL('../../scripts/page-checksum-wasm.mjs', import.meta.url).href)) as { assemblePageChecksumWasm: () => Promise<string> };
    const { PAGE_CHECKSUM_WASM } = await import('../../src/backup/page-checksum-wasm.js');
    expect(PAGE_CHECKSUM_WASM).toBe(await assemblePageChecksumWasm());
  });
});
