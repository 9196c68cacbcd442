// Generates src/backup/page-checksum-wasm.ts: PostgreSQL's page checksum (checksum_impl.h) of
// whole pages in WebAssembly with 128-bit SIMD, the 32 parallel FNV-1a sums of pg_checksum_block
// held as 8 i32x4 vectors (what a C compiler vectorises PostgreSQL's own loop into).
//
//   node scripts/page-checksum-wasm.mjs   # wabt (npm, a devDependency) assembles the text
//
// test/unit/page-checksum.test.ts assembles WAT the same way (assemblePageChecksumWasm) and checks
// that the committed bytes are what it gives.
//
// Module: memory (exported) of 17 pages: bytes [0, 1 MiB) take up to 128 pages, the verdicts
// (one byte a page: 0 ok, 1 new, 2 bad, as page-checksum.ts PAGE_*) go to [1 MiB, 1 MiB + 128).
// verify(pages, firstBlock): the verdicts of pages 0..pages-1 as blocks firstBlock.. .
import { pathToFileURL } from 'node:url';
import { assembleWat, writeWasmModule } from './wasm-module.mjs';

const BASE = [
  0x5b1f36e9, 0xb8525960, 0x02ab50aa, 0x1de66d2a, 0x79ff467a, 0x9bb9f8a3, 0x217e7cd2, 0x83e13d2c,
  0xf8d4474f, 0xe39eb970, 0x42c6ae16, 0x993216fa, 0x7b093b5d, 0x98daff3c, 0xf718902a, 0x0b1c9cdb,
  0xe58f764b, 0x187636bc, 0x5d7b3bb1, 0xe73de7de, 0x92bec979, 0xcca6c0b2, 0x304a0979, 0x85aa43d4,
  0x783125bb, 0x6ca8eaa2, 0xe407eac6, 0x4b5cfc3e, 0x9fbf8c76, 0x15ca20be, 0xf2ca9fd3, 0x959bd756,
];
const FNV = 16777619;
const OUT = 1024 * 1024;
const hex = (x) => `0x${(x >>> 0).toString(16)}`;
const v = (k) => `$s${k}`;
/** sums = (sums ^ x) * FNV ^ ((sums ^ x) >> 17), on vector k, x the expression of the row's words. */
const comp = (k, x) => `
      (local.set $t (v128.xor (local.get ${v(k)}) ${x}))
      (local.set ${v(k)} (v128.xor (i32x4.mul (local.get $t) (local.get $fnv)) (i32x4.shr_u (local.get $t) (i32.const 17))))`;

const locals = Array.from({ length: 8 }, (_, k) => `(local ${v(k)} v128)`).join(' ');
const init = Array.from({ length: 8 }, (_, k) => `
      (local.set ${v(k)} (v128.const i32x4 ${BASE.slice(4 * k, 4 * k + 4).map(hex).join(' ')}))`).join('');
// Row 0: pd_checksum (low half of word 2) counts as zero.
const row0 = Array.from({ length: 8 }, (_, k) => comp(k, k === 0
  ? '(v128.and (v128.load (local.get $p)) (v128.const i32x4 0xffffffff 0xffffffff 0xffff0000 0xffffffff))'
  : `(v128.load offset=${16 * k} (local.get $p))`)).join('');
const row = Array.from({ length: 8 }, (_, k) => comp(k, `(v128.load offset=${16 * k} (local.get $q))`)).join('');
const zero = Array.from({ length: 8 }, (_, k) => comp(k, '(v128.const i64x2 0 0)')).join('');
const fold = Array.from({ length: 7 }, (_, k) => `(local.set $s0 (v128.xor (local.get $s0) (local.get ${v(k + 1)})))`).join('\n      ');

export const WAT = `(module
  (memory (export "memory") 17 17)
  (func (export "verify") (param $pages i32) (param $block i32)
    (local $i i32) (local $p i32) (local $q i32) (local $end i32) (local $x i32) (local $acc v128)
    (local $t v128) (local $fnv v128) ${locals}
    (local.set $fnv (i32x4.splat (i32.const ${FNV})))
    (block $done
      (loop $page
        (br_if $done (i32.ge_u (local.get $i) (local.get $pages)))
        (local.set $p (i32.shl (local.get $i) (i32.const 13)))
        (if (i32.eqz (i32.load16_u offset=14 (local.get $p)))
          (then
            ;; PageIsNew: no checksum; new (1) when every byte is zero, else bad (2)
            (local.set $acc (v128.const i64x2 0 0))
            (local.set $q (local.get $p))
            (local.set $end (i32.add (local.get $p) (i32.const 8192)))
            (loop $z
              (local.set $acc (v128.or (local.get $acc) (v128.load (local.get $q))))
              (local.set $q (i32.add (local.get $q) (i32.const 16)))
              (br_if $z (i32.lt_u (local.get $q) (local.get $end))))
            (i32.store8 offset=${OUT} (local.get $i) (select (i32.const 2) (i32.const 1) (v128.any_true (local.get $acc)))))
          (else${init}${row0}
            (local.set $q (i32.add (local.get $p) (i32.const 128)))
            (local.set $end (i32.add (local.get $p) (i32.const 8192)))
            (loop $row${row}
              (local.set $q (i32.add (local.get $q) (i32.const 128)))
              (br_if $row (i32.lt_u (local.get $q) (local.get $end))))${zero}${zero}
      ${fold}
            (local.set $x (i32.xor
              (i32.xor (i32x4.extract_lane 0 (local.get $s0)) (i32x4.extract_lane 1 (local.get $s0)))
              (i32.xor (i32x4.extract_lane 2 (local.get $s0)) (i32x4.extract_lane 3 (local.get $s0)))))
            (local.set $x (i32.add (i32.rem_u (i32.xor (local.get $x) (i32.add (local.get $block) (local.get $i))) (i32.const 65535)) (i32.const 1)))
            (i32.store8 offset=${OUT} (local.get $i)
              (select (i32.const 0) (i32.const 2) (i32.eq (local.get $x) (i32.load16_u offset=8 (local.get $p)))))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $page)))))
`;

/** WAT assembled by wabt (SIMD on), as base64: what page-checksum-wasm.ts holds. */
export const assemblePageChecksumWasm = () => assembleWat('page-checksum.wat', WAT, { simd: true });

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  writeWasmModule('src/backup/page-checksum-wasm.ts', [
    'GENERATED by scripts/page-checksum-wasm.mjs (the WebAssembly text is there; wabt\'s wat2wasm',
    'assembles it): PostgreSQL\'s page checksum of whole pages in WebAssembly with 128-bit SIMD.',
    'page-checksum.ts loads it; test/unit/page-checksum.test.ts checks it against the JavaScript',
    'implementation and PostgreSQL\'s own checksums.',
  ], 'PAGE_CHECKSUM_WASM', await assemblePageChecksumWasm());
}
