/**
 * bench/perf-where.mjs's categories: a sample counts for what the CPU was doing (its leaf, or the
 * innermost frame a specific rule names), not for any frame on its chain. Before, every sample
 * under a frame of lz4-frame-decoder.js (a write, a copy, a page fault) counted as decoding.
 */
import { describe, expect, it } from 'vitest';

const { categorise, owner, whereSecondsOfScript } = (await import(new URL('../../bench/perf-where.mjs', import.meta.url).href)) as {
  categorise: (frames: string[]) => string;
  owner: (frames: string[]) => string;
  whereSecondsOfScript: (out: string, hz: number) => { seconds: number; by: Map<string, number>; owners: Map<string, number> };
};

const K = (s: string) => `${s} ([kernel.kallsyms])`;
const NODE = (s: string) => `${s} (/opt/node/bin/node)`;
const LIBC = (s: string) => `${s} (/usr/lib/x86_64-linux-gnu/libc.so.6)`;
const JS = (s: string) => `JS:*'${s} (/tmp/perf-1.map)`;
const parser = JS('next file:///x/dist/src/io/codecs/lz4-frame-decoder.js:170:9');
const decoder = JS('decodeLz4BlockInto file:///x/dist/src/io/codecs/lz4-block.js:30:35');
const writer = JS('write file:///x/dist/src/restore/restore-worker.js:150:10');

describe('perf-where categorise', () => {
  it.each<[string, string[], string]>([
    ['a pwrite under the lz4 parser is a write', [K('copy_folio_from_iter_atomic'), K('generic_perform_write'), K('__x64_sys_pwrite64'), NODE('uv_fs_write'), JS('writeSync node:fs:900:1'), writer, parser], 'write (data directory)'],
    ['a page fault under the lz4 parser is memory', [K('clear_page_erms'), K('handle_mm_fault'), K('asm_exc_page_fault'), parser], 'memory (page faults, mmap, munmap)'],
    ['memmove gathering a block (Buffer.copy) under the parser is a copy', [LIBC('__memmove_avx512_unaligned_erms'), NODE('node::Buffer::SlowCopy'), JS('_copyActual node:buffer:250:21'), parser], 'copy (user memmove / memcpy / memset)'],
    ['memmove of a literal run under the decoder is a copy too (the leaf decides)', [LIBC('__memmove_avx512_unaligned_erms'), NODE('Builtins_TypedArrayPrototypeSet'), decoder, parser], 'copy (user memmove / memcpy / memset)'],
    ['the decoder\'s own code is decompression', [decoder, parser], 'decompress (lz4)'],
    ['a builtin the decoder calls is decompression', [NODE('Builtins_DataViewPrototypeGetBigUint64'), decoder, parser], 'decompress (lz4)'],
    ['sha256 is hashing wherever it is called from', [NODE('sha256_block_data_order_shaext'), NODE('EVP_DigestUpdate'), NODE('node::crypto::Hash::HashUpdate'), parser], 'hash + verify (sha256)'],
    ['the parser\'s own code is JS, not decompression', [parser, JS('pull file:///x/dist/src/repo/object-reader.js:148:15')], 'JS: restore loop, frame parsing, promises (JIT and builtins)'],
    ['native runtime code under JS is the runtime', [NODE('uv__io_poll'), NODE('uv_run'), JS('processTicksAndRejections node:internal/process/task_queues:72:35')], 'runtime other (node, V8, libuv)'],
    ['GC on a helper thread', [NODE('v8::internal::Scavenger::Process'), NODE('v8::platform::DefaultJobWorker::Run')], 'GC'],
    ['futex wake-ups are messaging', [K('futex_wake'), K('__x64_sys_futex'), LIBC('pthread_cond_signal'), NODE('uv_async_send')], 'messaging (thread wake-ups, postMessage, eventfd)'],
    ['a read of a repository file', [K('_copy_to_iter'), K('filemap_read'), K('__x64_sys_pread64'), NODE('uv__fs_work')], 'read (repository files)'],
    ['WebAssembly called by the lz4 block decoder is decompression', ['JS:wasm-function[0]-0-turbofan (/tmp/perf-1.map)', NODE('Builtins_JSToWasmWrapperAsm'), JS('decode file:///x/dist/src/io/codecs/lz4-block-wasm.js:85:11'), parser], 'decompress (lz4)'],
    ['WebAssembly called by the page checksums is page checksum', ['JS:wasm-function[0]-0-turbofan (/tmp/perf-1.map)', NODE('Builtins_JSToWasmWrapperAsm'), JS('verifyPages file:///x/dist/src/backup/page-checksum.js:200:1')], 'page checksum'],
    ['file names with lz4 in them do not make decoding', [NODE('Builtins_LoadIC'), JS('useAccumulator file:///x/dist/src/io/codecs/lz4-frame-decoder.js:140:3')], 'JS: restore loop, frame parsing, promises (JIT and builtins)'],
  ])('%s', (_name, frames, want) => {
    expect(categorise(frames)).toBe(want);
  });

  it('owner is the innermost JavaScript function; a whole perf script is tallied per category and owner', () => {
    expect(owner([LIBC('memmove'), decoder, parser])).toBe('decodeLz4BlockInto');
    expect(owner([K('x')])).toBe('(no JavaScript frame)');
    const script = [
      ['node 1', ` ffff ${LIBC('__memmove_avx512_unaligned_erms')}`, ` 12 ${decoder}`].join('\n'),
      ['node 1', ` 13 ${decoder}`].join('\n'),
      ['node 2', ` ffff ${K('copy_folio_from_iter_atomic')}`, ` ffff ${K('__x64_sys_pwrite64')}`, ` 14 ${parser}`].join('\n'),
    ].join('\n\n');
    const r = whereSecondsOfScript(script, 1000);
    expect(r.seconds).toBeCloseTo(0.003);
    expect(Object.fromEntries(r.by)).toEqual({ 'copy (user memmove / memcpy / memset)': 0.001, 'decompress (lz4)': 0.001, 'write (data directory)': 0.001 });
    expect(r.owners.get('write (data directory)\tnext')).toBe(0.001);
  });
});
