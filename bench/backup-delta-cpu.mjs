// CPU of an incremental backup's per-file work, A/B in one process: runBackupTask (the copy lane's
// code, src/backup/backup-worker.ts) of both builds on one real relation file stored as a page-LSN
// block delta, the builds alternating call by call (A B, B A, ...), so both see the same load, page
// cache and CPU frequency; CPU (user+sys of the whole process, threadpool included) per call,
// medians. The parent's start LSN is chosen so that the given fraction of the file's blocks has a
// newer page LSN (changed: stored); the others are taken from the parent. Both builds must store
// the same bytes and manifest entries (checked).
//
//   node_modules/.bin/node bench/backup-delta-cpu.mjs --a /tmp/main-build --b . --file REL
//        [--changed 0.05,0.37,0.8] [--iters 20]
//   REL: a main-fork file of a cluster with data checksums, e.g. pgbench_accounts of pgbench -s 10
//   (`SELECT pg_relation_filepath('pgbench_accounts')` under PGDATA); copy it first if the
//   cluster is running (the copy is the input; both builds read it from the page cache).
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { resolve } from 'node:path';

const argv = process.argv.slice(2);
const arg = (name, dflt) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : dflt;
};
const A = resolve(arg('--a', ''));
const B = resolve(arg('--b', '.'));
const FILE = arg('--file', undefined);
const FRACTIONS = arg('--changed', '0.05,0.37,0.8').split(',').map(Number);
const ITERS = Number(arg('--iters', '20'));
if (!FILE) throw new Error('--file REL: a relation file of a cluster with data checksums');

const runA = (await import(`${A}/dist/src/backup/backup-worker.js`)).runBackupTask;
const runB = (await import(`${B}/dist/src/backup/backup-worker.js`)).runBackupTask;
const { resolveSettings } = await import(`${B}/dist/src/config/resolve.js`);
const { openRepository } = await import(`${B}/dist/src/repo/open-repository.js`);

const bytes = readFileSync(FILE);
const size = bytes.length;
const lsns = [];
for (let o = 0; o + 8 <= size; o += 8192) lsns.push((BigInt(bytes.readUInt32LE(o)) << 32n) | BigInt(bytes.readUInt32LE(o + 4)));
const sorted = [...lsns].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
const fmt = (x) => `${(x >> 32n).toString(16).toUpperCase()}/${(x & 0xffffffffn).toString(16).toUpperCase()}`;
const med = (t) => [...t].sort((x, y) => x - y)[t.length >> 1];

const repoDir = `/tmp/pgark-delta-cpu-${process.pid}`;
rmSync(repoDir, { recursive: true, force: true });
execFileSync(process.execPath, [`${B}/bin/pgark.js`, 'repo', 'create', '--repo', repoDir], { stdio: 'ignore' });
const settings = resolveSettings({ repo: repoDir, stanza: 'bench' }, {});
const repo = await openRepository(settings, { marker: 'skip' });
const parent = { t: 'file', path: 'base/5/16396', size, mode: 0o600, mtimeMs: 1, sha256: '', object: { backup: '20261206-000000F', n: 0, offset: 0 } };
const task = (n) => ({ n, own: true, bytes: size, cost: size, files: [{ path: parent.path, abs: resolve(FILE), mode: 0o600, mtimeMs: 2, planSize: size, relation: { segment: 0, fork: 'main' }, parent }] });

console.log(`${FILE}: ${(size / 1e6).toFixed(1)} MB; A = ${A}, B = ${B}; ${ITERS} calls per build and fraction, alternating\n`);
console.log('| blocks changed | runs | stored MB (lz4) | A CPU ms median | B CPU ms median | B/A |\n|---|---|---|---|---|---|');
let n = 0;
try {
  for (const frac of FRACTIONS) {
    const cut = sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * (1 - frac)))];
    const init = { settings, backupId: '20261207-000000I', codec: 'lz4', level: undefined, checksums: true, blockSize: 8192, relsegBlocks: 131072, startLsn: fmt(sorted.at(-1) + 1n), parentStartLsn: fmt(cut), blockDelta: true };
    const T = { A: [], B: [] };
    const out = {};
    for (let i = -2; i < ITERS; i++) { // two warm-up calls each
      for (const [k, run] of i % 2 ? [['A', runA], ['B', runB]] : [['B', runB], ['A', runA]]) {
        const c0 = process.cpuUsage();
        const r = await run(init, task(n++), () => undefined, repo);
        const c = process.cpuUsage(c0);
        if (i >= 0) T[k].push((c.user + c.system) / 1000);
        out[k] = r;
      }
    }
    const same = (r) => JSON.stringify({ ...r, n: 0, entries: r.entries.map((e) => ({ ...e, delta: e.delta && { ...e.delta, n: 0 }, object: e.object && { ...e.object, n: 0 } })) });
    if (same(out.A) !== same(out.B)) throw new Error(`the builds stored different entries at ${frac}: ${same(out.A)} vs ${same(out.B)}`);
    const e = out.B.entries[0];
    console.log(`| ${out.B.changedBlocks} of ${out.B.changedBlocks + out.B.reusedBlocks} (${(100 * frac).toFixed(0)} %) | ${e.delta ? e.delta.blocks.length : 1} | ${(out.B.storedBytes / 1e6).toFixed(2)} | ${med(T.A).toFixed(1)} | ${med(T.B).toFixed(1)} | ${(med(T.B) / med(T.A)).toFixed(3)} |`);
  }
} finally {
  rmSync(repoDir, { recursive: true, force: true });
}
