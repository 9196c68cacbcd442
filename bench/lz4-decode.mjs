// lz4 block decoding alone, in bytes of output per second of CPU: pgark's JavaScript decoder
// (dist/src/io/codecs/lz4-block.js) against lz4-napi's native block decoder (lz4_flex), on
// 1 MiB blocks as pgark's backups store them.
//
//   node bench/lz4-decode.mjs [--files DIR-OR-FILE,...] [--mib 64] [--runs 7] [--impl PATH.js] [--wasm DIR]
//
// Datasets: every file given with --files (e.g. a pgbench data directory's base/ — PostgreSQL
// relation pages), cut into 1 MiB blocks, at most --mib MiB; and synthetic ones always:
// "random text" (base64 of random bytes, ~25 % smaller compressed), "zeros" (empty pages) and
// "pgbench-like pages" (8 KiB pages of 121-byte tuples: a counter, zeros and 84 blanks, the
// layout of pgbench_accounts). --impl loads another build's lz4-block.js (A/B of two builds).
// CPU: process.cpuUsage over the timed loop (user + sys), median of --runs passes.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath, pathToFileURL } from 'node:url';
import lz4 from 'lz4-napi';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const args = process.argv.slice(2);
const arg = (n, d) => {
  const i = args.indexOf(n);
  return i >= 0 ? args[i + 1] : d;
};
const MIB = 1 << 20;
const LIMIT = Number(arg('--mib', '64')) * MIB;
const RUNS = Number(arg('--runs', '7'));
const impls = (arg('--impl', join(ROOT, 'dist/src/io/codecs/lz4-block.js'))).split(',');

function walk(p, out) {
  const st = statSync(p);
  if (st.isDirectory()) for (const n of readdirSync(p).sort()) walk(join(p, n), out);
  else if (st.isFile() && st.size > 0) out.push(p);
  return out;
}

function blocksOf(buf) {
  const out = [];
  for (let i = 0; i < buf.length && out.length * MIB < LIMIT; i += MIB) out.push(buf.subarray(i, Math.min(buf.length, i + MIB)));
  return out;
}

function pgbenchLike(bytes) {
  const b = Buffer.alloc(bytes);
  let aid = 1;
  for (let page = 0; page < bytes; page += 8192) {
    b.writeUInt32LE(0x1234, page); // lsn-ish
    b.writeUInt16LE(24 + 61 * 4, page + 12); // pd_lower
    let at = page + 8192;
    for (let t = 0; t < 61; t++) {
      at -= 121 + 7; // tuple + alignment
      b.writeUInt32LE(aid % 4096, at); // xmin-ish
      b.writeUInt32LE(aid, at + 24);
      b.writeUInt32LE(1 + ((aid / 100000) | 0), at + 28);
      b.fill(0x20, at + 36, at + 120);
      b.writeUInt32LE(((at - page) << 17) | 121, page + 24 + t * 4);
      aid++;
    }
  }
  return b;
}

const datasets = [];
const files = arg('--files');
if (files) {
  const all = [];
  for (const f of files.split(',')) walk(f, all);
  // Concatenated, as pgark bundles small files, then cut into 1 MiB blocks.
  const parts = [];
  let total = 0;
  for (const f of all) {
    if (total >= LIMIT) break;
    const b = readFileSync(f);
    parts.push(b);
    total += b.length;
  }
  datasets.push({ name: `files (${files})`, blocks: blocksOf(Buffer.concat(parts)) });
}
datasets.push({ name: 'pgbench-like pages', blocks: blocksOf(pgbenchLike(Math.min(LIMIT, 64 * MIB))) });
datasets.push({ name: 'random text (base64)', blocks: blocksOf(Buffer.from(randomBytes(Math.min(LIMIT, 64 * MIB) * 0.75).toString('base64'))) });
// Text that compresses about as well as logs or JSON: words drawn from a small vocabulary.
const vocab = Array.from({ length: 2000 }, () => randomBytes(3 + (Math.random() * 6) | 0).toString('base64url'));
const words = [];
for (let n = 0; n < Math.min(LIMIT, 64 * MIB); ) {
  const w = vocab[(Math.random() * Math.random() * vocab.length) | 0];
  words.push(w);
  n += w.length + 1;
}
datasets.push({ name: 'word text', blocks: blocksOf(Buffer.from(words.join(' ')).subarray(0, Math.min(LIMIT, 64 * MIB))) });
datasets.push({ name: 'zeros', blocks: blocksOf(Buffer.alloc(Math.min(LIMIT, 32 * MIB))) });

const candidates = [];
for (const p of impls) {
  const m = await import(pathToFileURL(p).href);
  const dst = Buffer.allocUnsafeSlow(64 * 1024 + 4 * MIB);
  candidates.push({
    name: impls.length > 1 ? `js ${p}` : 'pgark JS (lz4-block.ts)',
    decode: (c, size) => {
      const n = m.decodeLz4BlockInto(c, 4, c.length, dst, 65536, 65536 + 4 * MIB);
      if (n !== size) throw new Error('size');
      return dst.subarray(65536, 65536 + n);
    },
  });
}
candidates.push({ name: `lz4-napi uncompressSync (native, fresh buffer)`, decode: (c) => lz4.uncompressSync(c) });
// --wasm DIR: a directory where `npm install @foxglove/wasm-lz4 lz4-wasm-nodejs` ran (not pgark's
// dependencies): their decoders as further candidates (each returns a fresh buffer).
const wasmDir = arg('--wasm');
if (wasmDir) {
  const { createRequire } = await import('node:module');
  const req = createRequire(join(wasmDir, 'package.json'));
  const fox = req('@foxglove/wasm-lz4');
  await fox.isLoaded;
  const foxVersion = JSON.parse(readFileSync(join(wasmDir, 'node_modules/@foxglove/wasm-lz4/package.json'), 'utf8')).version;
  // It decodes frames: each block wrapped as a one-block frame (BD 4 MiB, as pgark stored 1 MiB blocks before 64 KiB ones), outside the timing.
  const { xxh32 } = await import(join(ROOT, 'dist/src/io/codecs/xxhash32.js'));
  const HEAD = Buffer.from([0x04, 0x22, 0x4d, 0x18, 0x60, 0x70, (xxh32(Buffer.from([0x60, 0x70])) >>> 8) & 0xff]);
  const frames = new WeakMap();
  const frameOf = (c) => {
    let f = frames.get(c);
    if (!f) {
      f = Buffer.alloc(HEAD.length + 4 + c.length - 4 + 4);
      HEAD.copy(f, 0);
      f.writeUInt32LE(c.length - 4, HEAD.length);
      c.copy(f, HEAD.length + 4, 4);
      frames.set(c, f);
    }
    return f;
  };
  candidates.push({ name: `@foxglove/wasm-lz4 ${foxVersion} (liblz4 in WASM, frames)`, decode: (c, size) => fox(frameOf(c), size) });
  const lw = req('lz4-wasm-nodejs');
  const lwVersion = JSON.parse(readFileSync(join(wasmDir, 'node_modules/lz4-wasm-nodejs/package.json'), 'utf8')).version;
  candidates.push({ name: `lz4-wasm-nodejs ${lwVersion} (lz4_flex in WASM)`, decode: (c) => Buffer.from(lw.decompress(c).buffer) });
}

const median = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
console.log(`| dataset | MiB | lz4 size ÷ raw | decoder | CPU ms, median of ${RUNS} (min) | MB of output per CPU s (median) |`);
console.log('|---|---|---|---|---|---|');
for (const ds of datasets) {
  const raw = ds.blocks.reduce((s, b) => s + b.length, 0);
  const comp = ds.blocks.map((b) => lz4.compressSync(b)); // [u32 size | block]
  const clen = comp.reduce((s, b) => s + b.length, 0);
  // Correctness first, then the candidates in turn within each pass (the machine's load changes).
  for (const c of candidates) {
    for (let i = 0; i < comp.length; i++) if (!c.decode(comp[i], ds.blocks[i].length).equals(ds.blocks[i])) throw new Error(`${c.name}: mismatch on ${ds.name}`);
  }
  const times = candidates.map(() => []);
  for (let r = 0; r < RUNS; r++) {
    candidates.forEach((c, k) => {
      const u = process.cpuUsage();
      for (let i = 0; i < comp.length; i++) c.decode(comp[i], ds.blocks[i].length);
      const d = process.cpuUsage(u);
      times[k].push((d.user + d.system) / 1000);
    });
  }
  candidates.forEach((c, k) => {
    const ms = median(times[k]);
    console.log(`| ${ds.name} | ${(raw / MIB).toFixed(0)} | ${(clen / raw).toFixed(3)} | ${c.name} | ${ms.toFixed(1)} (${Math.min(...times[k]).toFixed(1)}) | ${(raw / 1e6 / (ms / 1000)).toFixed(0)} |`);
  });
}
