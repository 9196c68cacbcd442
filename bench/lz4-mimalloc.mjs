// lz4-napi's allocator alone: how much memory its mimalloc keeps while pgark-like work compresses
// (issue 17 item 4; bench/results/memory.md). JOBS streams each compress 1 MiB blocks of a WAL
// segment on libuv's threadpool (lz4-napi's async block encoder, as src/io/codecs/lz4.ts calls it),
// keep each output ~1 ms (a write), drop it, and run a full garbage collection every 16 blocks,
// so at most ~JOBS + 16 outputs are ever uncollected. Prints peak RSS (sampled every 5 ms), the RSS
// at the end, and the process's CPU. Run it with the threadpool size and mimalloc options to
// compare (each a separate process: both are read at start):
//
//   UV_THREADPOOL_SIZE=2 node --expose-gc bench/lz4-mimalloc.mjs [--file SEGMENT] [--jobs 4] [--blocks 1536]
//   UV_THREADPOOL_SIZE=1 node --expose-gc bench/lz4-mimalloc.mjs
//   UV_THREADPOOL_SIZE=2 MIMALLOC_PURGE_DELAY=0 node --expose-gc bench/lz4-mimalloc.mjs
//   UV_THREADPOOL_SIZE=2 node --expose-gc bench/lz4-mimalloc.mjs --piece 64
//
// --piece KIB: each 1 MiB block is compressed as independent pieces of KIB KiB, all launched at
// once and awaited together (as src/io/codecs/lz4.ts writes a frame of 64 KiB blocks since
// issue 17 item 4); the outputs of a block are kept and dropped together. Default 1024 (one
// piece per block, as before).
//
// Without --file the input is 16 MiB of text rows, each with 32 random hex digits (lz4 output
// ~0.6 of the input); --file takes any file (a WAL segment, random bytes). What mimalloc keeps
// grows with the size of the outputs: compare the RSS before the loop with the peak.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const lz4 = require('lz4-napi');
const arg = (name, dflt) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const JOBS = Number(arg('--jobs', '4'));
const BLOCKS = Number(arg('--blocks', '1536'));
const file = arg('--file', undefined);
const PIECE = Number(arg('--piece', '1024')) * 1024;
if (typeof globalThis.gc !== 'function') {
  console.error('run with node --expose-gc');
  process.exit(2);
}

function rows() {
  // "<n>\torder <n> ref <32 hex digits> status shipped\n", written as bytes (no strings to collect).
  const out = Buffer.alloc(16 << 20);
  const hex = Buffer.from('0123456789abcdef');
  let at = 0;
  let x = 1;
  for (let g = 0; at < out.length - 128; g++) {
    at += out.write(`${g}\torder ${g} ref `, at, 'latin1');
    for (let k = 0; k < 32; k++) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      out[at++] = hex[x >>> 28];
    }
    at += out.write(' status shipped\n', at, 'latin1');
  }
  return out;
}
const data = file ? readFileSync(file) : rows();
const blocksPer = Math.floor(data.length / (1 << 20));
globalThis.gc(); // what building the input left behind
const startRss = process.memoryUsage.rss();
let maxRss = 0;
const rss = () => {
  const r = process.memoryUsage.rss();
  if (r > maxRss) maxRss = r;
  return r;
};
setInterval(rss, 5).unref();
const cpu0 = process.cpuUsage();
let n = 0;
let done = 0;
let outBytes = 0;
await Promise.all(Array.from({ length: JOBS }, async () => {
  while (n < BLOCKS) {
    const i = n++ % blocksPer;
    const block = data.subarray(i << 20, (i + 1) << 20);
    const pieces = [];
    for (let at = 0; at < block.length; at += PIECE) pieces.push(lz4.compress(block.subarray(at, at + PIECE)));
    const outs = await Promise.all(pieces);
    for (const out of outs) outBytes += out.length;
    await new Promise((r) => setTimeout(r, 1, outs));
    if (++done % 16 === 0) globalThis.gc();
  }
}));
const c = process.cpuUsage(cpu0);
globalThis.gc();
await new Promise((r) => setImmediate(r)); // finalizers of the last outputs
const ext = process.memoryUsage().external - process.memoryUsage().arrayBuffers;
const mib = (b) => (b / 1048576).toFixed(1);
console.log(`UV_THREADPOOL_SIZE=${process.env.UV_THREADPOOL_SIZE ?? '(4)'} ${Object.entries(process.env).filter(([k]) => k.startsWith('MIMALLOC_')).map(([k, v]) => `${k}=${v}`).join(' ')}`.trim() +
  `, pieces of ${PIECE >> 10} KiB: RSS before ${mib(startRss)} MiB, peak ${mib(maxRss)} MiB, at the end ${mib(rss())} MiB, CPU ${((c.user + c.system) / 1e6).toFixed(2)} s (system ${(c.system / 1e6).toFixed(2)}), ${n} blocks of ${mib(outBytes / n)} MiB on average, input ${mib(data.length)} MiB resident, external memory left ${mib(ext)} MiB`);
