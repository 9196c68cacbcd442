// Generates src/io/codecs/lz4-block-wasm-bytes.ts: one lz4 block decoded in WebAssembly with
// 128-bit SIMD copies (src/io/codecs/lz4-block-wasm.ts loads it), the same checks and results as
// the JavaScript decoder (src/io/codecs/lz4-block.ts; test/unit/lz4-block-wasm.test.ts compares
// them). Literal runs and matches of offset >= 16 are copied 16 bytes a step, matches of offset
// 8-15 8 bytes a step, shorter offsets byte by byte or doubling with memory.copy; a step may
// read up to 15 bytes past its run and write up to 15 bytes past it (lz4's own "wild copy"), so
// the caller leaves 16 bytes of slack after the input and after the output limit.
//
//   node scripts/lz4-block-wasm.mjs   # wabt (npm, a devDependency) assembles the text
//
// test/unit/lz4-block-wasm.test.ts assembles WAT the same way (assembleLz4BlockWasm) and checks
// that the committed bytes are what it gives.
//
// Module: imports its memory (env.memory, sized by the caller for its block maximum);
// decode(s, end, base, d, limit) decodes the block [s, end) at d, writing nothing it keeps at or
// past limit, matches reaching back at most to base; returns the bytes decoded or -1 (corrupt).
import { pathToFileURL } from 'node:url';
import { assembleWat, writeWasmModule } from './wasm-module.mjs';

export const WAT = `(module
  (import "env" "memory" (memory 1))
  ;; decode(s, end, base, d, limit) -> bytes decoded, or -1 when the block is corrupt.
  ;; src [s, end); output from d, nothing decoded at or past limit; matches may reach back to base.
  ;; Copies run 16 bytes a step and may read up to 15 bytes past a run and write up to 15 bytes
  ;; past it (the caller leaves 16 bytes of slack after end and after limit).
  (func (export "decode") (param $s i32) (param $end i32) (param $base i32) (param $d i32) (param $limit i32) (result i32)
    (local $d0 i32) (local $token i32) (local $lit i32) (local $b i32) (local $off i32) (local $ml i32) (local $m i32) (local $e i32) (local $k i32)
    (local.set $d0 (local.get $d))
    (loop $seq
      (if (i32.ge_u (local.get $s) (local.get $end)) (then (return (i32.const -1))))
      (local.set $token (i32.load8_u (local.get $s)))
      (local.set $s (i32.add (local.get $s) (i32.const 1)))
      (local.set $lit (i32.shr_u (local.get $token) (i32.const 4)))
      (if (i32.eq (local.get $lit) (i32.const 15))
        (then
          (loop $ext
            (if (i32.ge_u (local.get $s) (local.get $end)) (then (return (i32.const -1))))
            (local.set $b (i32.load8_u (local.get $s)))
            (local.set $s (i32.add (local.get $s) (i32.const 1)))
            (local.set $lit (i32.add (local.get $lit) (local.get $b)))
            (br_if $ext (i32.eq (local.get $b) (i32.const 255))))))
      (if (local.get $lit)
        (then
          (if (i32.gt_u (local.get $lit) (i32.sub (local.get $end) (local.get $s))) (then (return (i32.const -1))))
          (if (i32.gt_u (local.get $lit) (i32.sub (local.get $limit) (local.get $d))) (then (return (i32.const -1))))
          (local.set $e (i32.add (local.get $d) (local.get $lit)))
          (local.set $m (local.get $s))
          (loop $lcopy
            (v128.store (local.get $d) (v128.load (local.get $m)))
            (local.set $d (i32.add (local.get $d) (i32.const 16)))
            (local.set $m (i32.add (local.get $m) (i32.const 16)))
            (br_if $lcopy (i32.lt_u (local.get $d) (local.get $e))))
          (local.set $d (local.get $e))
          (local.set $s (i32.add (local.get $s) (local.get $lit)))))
      ;; the last sequence has literals only
      (if (i32.eq (local.get $s) (local.get $end)) (then (return (i32.sub (local.get $d) (local.get $d0)))))
      (if (i32.lt_u (i32.sub (local.get $end) (local.get $s)) (i32.const 2)) (then (return (i32.const -1))))
      (local.set $off (i32.load16_u (local.get $s)))
      (local.set $s (i32.add (local.get $s) (i32.const 2)))
      (if (i32.or (i32.eqz (local.get $off)) (i32.gt_u (local.get $off) (i32.sub (local.get $d) (local.get $base)))) (then (return (i32.const -1))))
      (local.set $ml (i32.add (i32.and (local.get $token) (i32.const 15)) (i32.const 4)))
      (if (i32.eq (local.get $ml) (i32.const 19))
        (then
          (loop $mext
            (if (i32.ge_u (local.get $s) (local.get $end)) (then (return (i32.const -1))))
            (local.set $b (i32.load8_u (local.get $s)))
            (local.set $s (i32.add (local.get $s) (i32.const 1)))
            (local.set $ml (i32.add (local.get $ml) (local.get $b)))
            (br_if $mext (i32.eq (local.get $b) (i32.const 255))))))
      (if (i32.gt_u (local.get $ml) (i32.sub (local.get $limit) (local.get $d))) (then (return (i32.const -1))))
      (local.set $m (i32.sub (local.get $d) (local.get $off)))
      (local.set $e (i32.add (local.get $d) (local.get $ml)))
      (if (i32.ge_u (local.get $off) (i32.const 16))
        (then
          ;; each step reads 16 bytes that end at or before its own start: final
          (loop $mcopy
            (v128.store (local.get $d) (v128.load (local.get $m)))
            (local.set $d (i32.add (local.get $d) (i32.const 16)))
            (local.set $m (i32.add (local.get $m) (i32.const 16)))
            (br_if $mcopy (i32.lt_u (local.get $d) (local.get $e)))))
        (else
          (if (i32.ge_u (local.get $off) (i32.const 8))
            (then
              (loop $m8
                (i64.store (local.get $d) (i64.load (local.get $m)))
                (local.set $d (i32.add (local.get $d) (i32.const 8)))
                (local.set $m (i32.add (local.get $m) (i32.const 8)))
                (br_if $m8 (i32.lt_u (local.get $d) (local.get $e)))))
            (else
              (if (i32.lt_u (local.get $ml) (i32.const 16))
                (then
                  (loop $m1
                    (i32.store8 (local.get $d) (i32.load8_u (local.get $m)))
                    (local.set $d (i32.add (local.get $d) (i32.const 1)))
                    (local.set $m (i32.add (local.get $m) (i32.const 1)))
                    (br_if $m1 (i32.lt_u (local.get $d) (local.get $e)))))
                (else
                  ;; overlapping: the off bytes before d repeat; copy what is written, doubling
                  (loop $dbl
                    (local.set $k (i32.sub (local.get $d) (local.get $m)))
                    (if (i32.gt_u (local.get $k) (i32.sub (local.get $e) (local.get $d))) (then (local.set $k (i32.sub (local.get $e) (local.get $d)))))
                    (memory.copy (local.get $d) (local.get $m) (local.get $k))
                    (local.set $d (i32.add (local.get $d) (local.get $k)))
                    (br_if $dbl (i32.lt_u (local.get $d) (local.get $e))))))))))
      (local.set $d (local.get $e))
      (br $seq))
    (i32.const -1)))
`;

/** WAT assembled by wabt (SIMD and bulk memory on), as base64: what lz4-block-wasm-bytes.ts holds. */
export const assembleLz4BlockWasm = () => assembleWat('lz4-block.wat', WAT, { simd: true, bulk_memory: true });

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  writeWasmModule('src/io/codecs/lz4-block-wasm-bytes.ts', [
    'GENERATED by scripts/lz4-block-wasm.mjs (the WebAssembly text is there; wabt\'s wat2wasm',
    'assembles it): one lz4 block decoded in WebAssembly with 128-bit SIMD copies.',
    'lz4-block-wasm.ts loads it; test/unit/lz4-block-wasm.test.ts checks it against the JavaScript',
    'decoder (lz4-block.ts).',
  ], 'LZ4_BLOCK_WASM', await assembleLz4BlockWasm());
}
