// Codec benchmark on real PostgreSQL WAL.
// Run: npm run bench:codecs [-- --wal-dir DIR] [--segments N] [--runs N] [--only LABEL-SUBSTRING]
// Without --wal-dir a throwaway cluster generates the sample (see wal-sample.mjs) and it is deleted afterwards.
// Writes bench/results/codecs.md, keeping any hand-written text above the GENERATED marker.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';
import { collectWalSample } from './wal-sample.mjs';
import { loadZstdNapiCodec } from './zstd-napi-codec.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const RESULTS = join(ROOT, 'bench/results/codecs.md');
const MARKER = '<!-- GENERATED: everything below is rewritten by bench/codecs.mjs -->';
const READ_CHUNK = 64 * 1024;
const log = (...a) => console.error(...a);
const cliTmp = mkdtempSync(existsSync('/dev/shm') ? '/dev/shm/pgark-bench-cli-' : '/tmp/pgark-bench-cli-');

const args = process.argv.slice(2);
const argValue = (name) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};

const { loadCodec } = await import(join(ROOT, 'dist/src/io/codec.js'));
const [lz4Codec, zstdCodec, gzipCodec] = await Promise.all(['lz4', 'zstd', 'gzip'].map((n) => loadCodec(n)));
const optional = async (name) => import(name).then((m) => m.default ?? m, () => undefined);
const npmLz4 = await optional('lz4');
// pgark's zstd codec before issue 16 (zstd-napi), while that package is installed.
const zstdNapi = await loadZstdNapiCodec();

function pkgVersion(name) {
  const p = join(ROOT, 'node_modules', name, 'package.json');
  return existsSync(p) ? JSON.parse(readFileSync(p, 'utf8')).version : 'not installed';
}
const cliVersion = (cmd) => {
  const r = spawnSync(cmd, ['--version'], { encoding: 'utf8' });
  const first = (r.stdout || r.stderr).split('\n')[0];
  return `${cmd} ${first.match(/v?(\d+\.\d+(\.\d+)?)/)?.[1] ?? first.trim()}`;
};

async function runStream(transform, input) {
  const out = [];
  const chunks = function* () {
    for (let i = 0; i < input.length; i += READ_CHUNK) yield input.subarray(i, i + READ_CHUNK);
  };
  await pipeline(Readable.from(chunks()), transform, async (src) => {
    for await (const c of src) out.push(c);
  });
  return Buffer.concat(out);
}

/**
 * CLIs run once per pass over all files from one `sh` loop (spawning from this large Node process
 * costs tens of ms each), reading and writing files in tmpfs as an archive_command would.
 */
function runCliBatch(cmd, cliArgs, inputs, suffix) {
  const names = inputs.map((b, i) => {
    writeFileSync(join(cliTmp, `${i}.${suffix}.in`), b);
    return String(i);
  });
  const script = `cd "${cliTmp}" && for f in ${names.join(' ')}; do "$0" "$@" < $f.${suffix}.in > $f.${suffix}.out || exit 1; done`;
  const t = process.hrtime.bigint();
  const r = spawnSync('sh', ['-c', script, cmd, ...cliArgs], { encoding: 'utf8' });
  const secs = Number(process.hrtime.bigint() - t) / 1e9;
  if (r.status !== 0) throw new Error(`${cmd} ${cliArgs.join(' ')}: ${r.stderr}`);
  const outs = names.map((n) => readFileSync(join(cliTmp, `${n}.${suffix}.out`)));
  for (const n of names) for (const ext of ['in', 'out']) rmSync(join(cliTmp, `${n}.${suffix}.${ext}`));
  return { outs, secs };
}

/** Runs a candidate step; returns its output and the seconds to count. */
async function timed(step) {
  const t = process.hrtime.bigint();
  const r = await step();
  return Buffer.isBuffer(r) ? { out: r, secs: Number(process.hrtime.bigint() - t) / 1e9 } : r;
}

const streamCandidate = (label, lib, mkC, mkD) => ({
  label,
  lib,
  compress: (b) => runStream(mkC(), b),
  decompress: (b) => runStream(mkD(), b),
});
const cliCandidate = (cmd, level) => ({
  label: `${cmd} CLI -${level}`,
  lib: cliVersion(cmd),
  batch: true,
  compress: (inputs) => runCliBatch(cmd, [`-${level}`, '-c', ...(cmd === 'zstd' ? ['-T1', '-q'] : [])], inputs, 'c'),
  decompress: (inputs) => runCliBatch(cmd, ['-d', '-c', ...(cmd === 'zstd' ? ['-q'] : [])], inputs, 'd'),
});

function candidates() {
  const list = [];
  if (npmLz4) {
    list.push(streamCandidate('npm lz4 stream', `lz4@${pkgVersion('lz4')}`,
      () => npmLz4.createEncoderStream({ streamChecksum: true }), () => npmLz4.createDecoderStream()));
  }
  list.push(streamCandidate('pgark lz4 (lz4-napi, 1 MiB frames)', `lz4-napi@${pkgVersion('lz4-napi')}`,
    () => lz4Codec.compressor(), () => lz4Codec.decompressor()));
  for (const level of [1, 3, 6]) {
    list.push(streamCandidate(`pgark zstd -${level} (built-in, 128 KiB chunks)`, `node:zlib zstd ${process.versions.zstd}`,
      () => zstdCodec.compressor(level), () => zstdCodec.decompressor()));
    if (zstdNapi) {
      list.push(streamCandidate(`zstd-napi -${level} (pgark's codec before)`, `zstd-napi@${pkgVersion('zstd-napi')}`,
        () => zstdNapi.compressor(level), () => zstdNapi.decompressor()));
    }
  }
  list.push(streamCandidate('built-in zstd -3, zlib default 16 KiB chunks', `node:zlib zstd ${process.versions.zstd}`,
    () => zlib.createZstdCompress({ params: { [zlib.constants.ZSTD_c_compressionLevel]: 3, [zlib.constants.ZSTD_c_checksumFlag]: 1 } }),
    () => zlib.createZstdDecompress()));
  for (const level of [1, 6]) {
    list.push(streamCandidate(`pgark gzip -${level} (node:zlib)`, `zlib ${process.versions.zlib}`,
      () => gzipCodec.compressor(level), () => gzipCodec.decompressor()));
  }
  list.push(cliCandidate('lz4', 1));
  for (const level of [1, 3, 6]) list.push(cliCandidate('zstd', level));
  for (const level of [1, 6]) list.push(cliCandidate('gzip', level));
  return list;
}

/** Best of `runs` passes over all files: the benchmark host may be shared, so take the least disturbed pass. */
async function measure(candidate, files, runs) {
  const inBytes = files.reduce((s, f) => s + f.length, 0);
  let outBytes = 0;
  let cBest = Infinity;
  let dBest = Infinity;
  let ok = true;
  for (let run = 0; run < runs; run++) {
    let cTime = 0;
    let dTime = 0;
    outBytes = 0;
    if (candidate.batch) {
      const c = candidate.compress(files);
      const d = candidate.decompress(c.outs);
      cTime = c.secs;
      dTime = d.secs;
      outBytes = c.outs.reduce((n, b) => n + b.length, 0);
      ok &&= d.outs.every((b, i) => b.equals(files[i]));
    }
    for (const [i, data] of candidate.batch ? [] : files.entries()) {
      const { out: packed, secs: cSecs } = await timed(() => candidate.compress(data, i));
      const { out: back, secs: dSecs } = await timed(() => candidate.decompress(packed, i));
      cTime += cSecs;
      dTime += dSecs;
      ok &&= back.equals(data);
      outBytes += packed.length;
    }
    cBest = Math.min(cBest, cTime);
    dBest = Math.min(dBest, dTime);
  }
  return { ratio: inBytes / outBytes, pct: (100 * outBytes) / inBytes, cMBs: inBytes / 1e6 / cBest, dMBs: inBytes / 1e6 / dBest, ok };
}

/** Aggregate throughput with one stream per core, to check that compression scales past the main thread. */
async function measureParallel(label, mk, files, workers) {
  const queue = [...files];
  const t = process.hrtime.bigint();
  await Promise.all(Array.from({ length: workers }, async () => {
    for (let f = queue.shift(); f; f = queue.shift()) await runStream(mk(), f);
  }));
  const secs = Number(process.hrtime.bigint() - t) / 1e9;
  return { label, mbs: files.reduce((s, f) => s + f.length, 0) / 1e6 / secs };
}

const fmt = (n, d = 0) => n.toFixed(d);

async function main() {
  const segments = Number(argValue('--segments') ?? 18);
  const runs = Number(argValue('--runs') ?? 3);
  const only = argValue('--only');
  let walDir = argValue('--wal-dir');
  let tmp;
  if (!walDir) {
    tmp = mkdtempSync('/tmp/pgark-bench-wal-');
    walDir = tmp;
    await collectWalSample(walDir, segments, log);
  }
  try {
    const names = readdirSync(walDir).filter((f) => /^[0-9A-F]{24}$/.test(f)).sort();
    const files = names.map((f) => readFileSync(join(walDir, f)));
    const total = files.reduce((s, f) => s + f.length, 0);
    log(`${files.length} WAL segments, ${fmt(total / 2 ** 20)} MiB`);

    const rows = [];
    for (const c of candidates().filter((c) => !only || c.label.includes(only))) {
      log(`measuring ${c.label}`);
      const r = await measure(c, files, runs);
      rows.push(`| ${c.label} | ${c.lib} | ${fmt(r.ratio, 2)} | ${fmt(r.pct, 1)}% | ${fmt(r.cMBs)} | ${fmt(r.dMBs)} | ${r.ok ? 'ok' : 'MISMATCH'} |`);
    }
    const workers = cpus().length;
    const par = [];
    for (const [label, mk] of [
      ['pgark lz4', () => lz4Codec.compressor()],
      ['pgark zstd -3 (built-in)', () => zstdCodec.compressor(3)],
      ...(zstdNapi ? [['zstd-napi -3', () => zstdNapi.compressor(3)]] : []),
      ['pgark gzip -6', () => gzipCodec.compressor(6)],
    ]) {
      log(`parallel ${label}`);
      const one = await measureParallel(label, mk, files, 1);
      const many = await measureParallel(label, mk, files, workers);
      par.push(`| ${label} | ${fmt(one.mbs)} | ${fmt(many.mbs)} | ${fmt(many.mbs / one.mbs, 2)}x |`);
    }

    // Objects written by either zstd implementation must decode with the other and with the CLI.
    const cross = [];
    if (zstdNapi) {
      log('cross-decoding');
      let napiToBuiltin = true;
      let builtinToNapi = true;
      const builtinPacked = [];
      for (const f of files) {
        napiToBuiltin &&= (await runStream(zstdCodec.decompressor(), await runStream(zstdNapi.compressor(3), f))).equals(f);
        const packed = await runStream(zstdCodec.compressor(3), f);
        builtinPacked.push(packed);
        builtinToNapi &&= (await runStream(zstdNapi.decompressor(), packed)).equals(f);
      }
      const viaCli = runCliBatch('zstd', ['-d', '-c', '-q'], builtinPacked, 'x').outs.every((b, i) => b.equals(files[i]));
      cross.push(
        `## Cross-decoding (all ${files.length} segments, level 3)`,
        '',
        `- zstd-napi output decoded by built-in zstd: ${napiToBuiltin ? 'identical' : 'MISMATCH'}`,
        `- built-in zstd output decoded by zstd-napi: ${builtinToNapi ? 'identical' : 'MISMATCH'}`,
        `- built-in zstd output decoded by \`zstd -d\` (${cliVersion('zstd')}): ${viaCli ? 'identical' : 'MISMATCH'}`,
        '',
      );
    }

    const cpu = readFileSync('/proc/cpuinfo', 'utf8').match(/^model name\s*:\s*(.*)$/m)?.[1] ?? 'unknown';
    const generated = [
      MARKER,
      '',
      '## Environment',
      '',
      `- date: ${new Date().toISOString()}`,
      `- CPU: ${cpu}, nproc ${execFileSync('nproc', { encoding: 'utf8' }).trim()}`,
      `- node ${process.version} (${process.execPath}), zlib ${process.versions.zlib}, built-in zstd ${process.versions.zstd ?? 'none'}`,
      `- lz4-napi ${pkgVersion('lz4-napi')}, zstd-napi ${pkgVersion('zstd-napi')}${zstdNapi ? ` (bundled libzstd ${zstdNapi.libVersion})` : ''}, lz4 (npm) ${pkgVersion('lz4')}`,
      `- CLIs: ${cliVersion('lz4')}; ${cliVersion('zstd')}; ${cliVersion('gzip')}`,
      `- input: ${files.length} WAL segments of PostgreSQL 15 (pgbench -i -s 20 then pgbench -T 20), ${fmt(total / 2 ** 20)} MiB`,
      '',
      'Reproduce: `npm run bench:codecs` (as root; the throwaway cluster runs as the `postgres` user).',
      '',
      '## Single stream (one file at a time, library candidates fed in 64 KiB chunks; MB = 10^6 bytes)',
      '',
      `Best of ${runs} passes. ` + 'CLI rows time one `sh` loop of `cmd < file > file` over all files in tmpfs (process start-ups included); `zstd` CLI runs with `-T1`.',
      '',
      '| candidate | library | ratio | size | compress MB/s | decompress MB/s | round trip |',
      '|---|---|---|---|---|---|---|',
      ...rows,
      '',
      'The `npm lz4` row only appears while that package is installed (`npm install --no-save lz4@0.6.5`); the `zstd-napi` rows and the cross-decoding section only while zstd-napi is (`npm install --no-save zstd-napi@0.0.13`, compiled with node-gyp).',
      '',
      `## Parallel compression (${workers} concurrent streams vs 1)`,
      '',
      '| codec | 1 stream MB/s | N streams MB/s | speed-up |',
      '|---|---|---|---|',
      ...par,
      '',
      ...cross,
    ].join('\n');
    const previous = existsSync(RESULTS) ? readFileSync(RESULTS, 'utf8') : '';
    const head = previous.includes(MARKER) ? previous.slice(0, previous.indexOf(MARKER)) : '# Codec benchmark\n\n';
    writeFileSync(RESULTS, head + generated);
    log(generated);
  } finally {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
    rmSync(cliTmp, { recursive: true, force: true });
  }
}

await main();
