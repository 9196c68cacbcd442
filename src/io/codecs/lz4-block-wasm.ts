/**
 * lz4 blocks decoded in WebAssembly with 128-bit SIMD copies (lz4-block-wasm-bytes.ts, generated
 * by scripts/lz4-block-wasm.mjs), into the decoder's own memory: restore's reader hashes and
 * writes each decoded block from a view of that memory, so decoding here costs no copy but the
 * compressed block's, into the module's input area. The same checks and the same bytes as the
 * JavaScript decoder (lz4-block.ts; the unit tests compare both, on valid and corrupt blocks):
 * a corrupt block is decoded once more by the JavaScript decoder, whose error names what is wrong.
 *
 * Why: a PostgreSQL page's sequences are short (0-8 literal bytes, then a match of 4-15 bytes or
 * of 64-127 bytes at the tuple size), ~25 million of them in pgbench -s 100's 1.6 GB. JavaScript
 * copies them 8 bytes a step through DataView (lz4-block.ts); WebAssembly copies 16 bytes a step
 * with no bounds check per access: on pgbench_accounts' blocks 3.2x the JavaScript decoder's
 * speed, on its index 1.8x, on random data the same (bench/results/restore.md, 2026-12-07 rcpu).
 * Where WebAssembly SIMD is unavailable, `Lz4WasmDecoder.create` returns undefined and the caller
 * decodes in JavaScript.
 */
import { decodeLz4BlockInto } from './lz4-block.js';
import { LZ4_BLOCK_WASM } from './lz4-block-wasm-bytes.js';

/** Linked lz4 blocks may refer to the 64 KiB of output before them. */
const HISTORY = 64 * 1024;
/** Bytes a 16-byte step may read past the input or write past the output limit. */
const SLACK = 16;
const PAGE = 64 * 1024;

// (The compiler's libraries here do not declare WebAssembly: the little used is typed here.)
interface WasmMemory {
  readonly buffer: ArrayBuffer;
}
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: Record<string, Record<string, unknown>>) => { exports: Record<string, unknown> };
  Memory: new (d: { initial: number; maximum?: number }) => WasmMemory;
}
type DecodeFn = (s: number, end: number, base: number, d: number, limit: number) => number;

let compiled: object | null | undefined;

function wasmModule(): object | null {
  if (compiled !== undefined) return compiled;
  try {
    compiled = new ((globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly.Module)(Buffer.from(LZ4_BLOCK_WASM, 'base64'));
  } catch {
    compiled = null;
  }
  return compiled;
}

/**
 * One decoder: its memory holds [input | slack | history | output | slack] for blocks of up to
 * `capacity` bytes (the frame's block maximum). The buffer `decode` returns is a view of that
 * memory, valid until the next decode: the caller is done with each block before it decodes the
 * next (object-reader.ts).
 */
export class Lz4WasmDecoder {
  private readonly bytes: Uint8Array;
  /** The memory from the output area on: [history | output | slack], as the JavaScript decoder gets it. */
  private readonly out: Uint8Array;
  private readonly outBase: number;

  private constructor(readonly capacity: number, private readonly inputMax: number, private readonly memory: WasmMemory, private readonly fn: DecodeFn) {
    this.bytes = new Uint8Array(memory.buffer);
    this.outBase = inputMax + SLACK;
    this.out = new Uint8Array(memory.buffer, this.outBase);
  }

  /** A decoder for blocks of up to `capacity` bytes, or undefined where WebAssembly SIMD is unavailable. */
  static create(capacity: number): Lz4WasmDecoder | undefined {
    const mod = wasmModule();
    if (mod === null) return undefined;
    try {
      const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;
      // The largest block of `capacity` decoded bytes (lz4's LZ4_compressBound); a frame's blocks
      // are at most its block maximum (Lz4FrameParser checks), so never larger.
      const inputMax = capacity + Math.floor(capacity / 255) + 16;
      const size = inputMax + SLACK + HISTORY + capacity + SLACK;
      const pages = Math.ceil(size / PAGE);
      // Never grown: the views of it stay valid.
      const memory = new wasm.Memory({ initial: pages, maximum: pages });
      const instance = new wasm.Instance(mod, { env: { memory } });
      return new Lz4WasmDecoder(capacity, inputMax, memory, instance.exports['decode'] as DecodeFn);
    } catch {
      return undefined;
    }
  }

  /**
   * Decode `block` (`dict`: the output before it, for linked blocks; its last 64 KiB are used).
   * Returns a view of the decoded bytes (at most `capacity`); throws on a corrupt block.
   */
  decode(block: Uint8Array, dict: Uint8Array | undefined): Buffer {
    let history = 0;
    if (dict !== undefined && dict.length > 0) {
      history = Math.min(dict.length, HISTORY);
      this.bytes.set(dict.subarray(dict.length - history), this.outBase);
    }
    const d = this.outBase + history;
    const limit = d + this.capacity;
    // A block of mostly literals (more than half its decoded size: incompressible data) is
    // decoded as fast by the JavaScript decoder, one memcpy per literal run, straight from where it
    // is: into the same output, without its copy into the input area (whose pages then stay
    // untouched, so not resident). So is a block no block of `capacity` bytes can be (larger than
    // lz4's worst case), whose error the JavaScript decoder names.
    if (block.length * 2 > this.capacity || block.length > this.inputMax) {
      return Buffer.from(this.memory.buffer, d, decodeLz4BlockInto(block, 0, block.length, this.out, history, history + this.capacity));
    }
    this.bytes.set(block, 0);
    const n = this.fn(0, block.length, this.outBase, d, limit);
    if (n < 0) {
      // Corrupt: the JavaScript decoder's error names what is wrong.
      decodeLz4BlockInto(block, 0, block.length, this.out, history, history + this.capacity);
      throw new Error('corrupt lz4 block');
    }
    return Buffer.from(this.memory.buffer, d, n);
  }
}
