// CPU and peak RSS of `pgark agent` storing a backlog alone, without PostgreSQL running: real
// WAL segments (made once by wal-sample.mjs) copied into a scratch pg_wal with `.ready` files,
// the agent started under GNU time on a fresh fs repository, stopped (SIGTERM) once every
// segment has its push record. Load-independent figures: user + system CPU and %M of the agent
// process (start-up included, ~0.3 s). Alternate builds to compare them:
//
//   node bench/agent-cpu.mjs [--root PGARK_CHECKOUT] [--jobs N] [--wal-dir DIR] [--segments 15] [--runs 3] [--cpu-prof DIR] [--perf FILE]
//
// --perf FILE: the agent runs under `perf record -F 999 -g` (every thread, JIT frames named by
// --perf-basic-prof); `node bench/perf-where.mjs FILE --agent` then says where its CPU went.
//
// Each run also starts an idle agent on an empty backlog (until its status file appears): its
// CPU is the start-up (and shut-down) cost, and `netMsPerSegment` = (CPU - idle CPU) / segments
// is what storing one segment costs in a long drain.
//
// Prints one JSON line per run and the medians.
import { execFileSync, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { collectWalSample } from './wal-sample.mjs';
import { NODE, ROOT, TIME } from './lib-proc.mjs';

const argv = process.argv.slice(2);
const opt = (name, dflt) => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : dflt);
const root = opt('--root', ROOT);
const jobs = opt('--jobs', null);
const runs = Number(opt('--runs', '3'));
const prof = opt('--cpu-prof', null);
const perf = opt('--perf', null);
const want = Number(opt('--segments', '15'));
const walDir = opt('--wal-dir', '/tmp/pgark-agent-cpu-wal');
if (!existsSync(walDir) || readdirSync(walDir).length === 0) {
  mkdirSync(walDir, { recursive: true });
  await collectWalSample(walDir, want);
}
const segs = readdirSync(walDir).filter((s) => /^[0-9A-F]{24}$/.test(s)).sort().slice(0, want);

async function once(label, idle = false) {
  const w = mkdtempSync('/tmp/pgark-agent-cpu-');
  const pg = join(w, 'pgdata');
  mkdirSync(join(pg, 'pg_wal', 'archive_status'), { recursive: true, mode: 0o700 });
  for (const s of idle ? [] : segs) {
    cpSync(join(walDir, s), join(pg, 'pg_wal', s));
    writeFileSync(join(pg, 'pg_wal', 'archive_status', `${s}.ready`), '');
  }
  const repo = join(w, 'repo');
  execFileSync(NODE, [join(root, 'bin/pgark.js'), 'repo', 'create', '--repo', repo], { stdio: 'ignore' });
  const tf = join(w, 'time.txt');
  const args = ['-f', '%M %e %U %S', '-o', tf, ...(perf ? ['perf', 'record', '-F', '999', '-g', '-q', '-o', perf, '--', NODE, '--perf-basic-prof'] : [NODE]), ...(prof ? ['--cpu-prof', '--cpu-prof-dir', prof] : []), join(root, 'bin/pgark.js'), 'agent', '--pgdata', pg, '--repo', repo, '--stanza', 'main', '--poll-ms', '200', ...(jobs ? ['--jobs', jobs] : [])];
  const t0 = Date.now();
  const child = spawn(TIME, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  const exited = new Promise((r) => child.on('close', r));
  const pushed = join(pg, 'pg_wal', '.pgark', 'pushed');
  const statusFile = join(pg, 'pg_wal', '.pgark', 'agent', 'status.json');
  for (;;) {
    if (idle && existsSync(statusFile)) break;
    const have = existsSync(pushed) ? segs.filter((s) => existsSync(join(pushed, s))).length : 0;
    if (!idle && have === segs.length) break;
    if (child.exitCode !== null || Date.now() - t0 > 600_000) throw new Error(`agent stored ${have} of ${segs.length}:\n${err}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const wall = (Date.now() - t0) / 1000;
  let pid = Number(execFileSync('pgrep', ['-P', String(child.pid)]).toString().trim().split('\n')[0]);
  if (perf) pid = Number(execFileSync('pgrep', ['-P', String(pid)]).toString().trim().split('\n')[0]); // perf's child: the agent
  process.kill(pid, 'SIGTERM');
  await exited;
  const [rss, , u, s] = readFileSync(tf, 'utf8').trim().split('\n').at(-1).split(' ').map(Number);
  rmSync(w, { recursive: true, force: true });
  if (idle) return +(u + s).toFixed(2);
  const r = { label, segments: segs.length, rssMiB: +(rss / 1024).toFixed(1), cpuSecs: +(u + s).toFixed(2), cpuMsPerSegment: Math.round(((u + s) * 1000) / segs.length), wallSecs: wall };
  console.log(JSON.stringify(r));
  return r;
}

const rows = [];
for (let i = 1; i <= runs; i++) {
  const idleCpu = await once(`idle ${i}`, true);
  const r = await once(`run ${i}`);
  r.idleCpuSecs = idleCpu;
  r.netMsPerSegment = Math.round(((r.cpuSecs - idleCpu) * 1000) / segs.length);
  console.log(JSON.stringify({ label: r.label, idleCpuSecs: idleCpu, netMsPerSegment: r.netMsPerSegment }));
  rows.push(r);
}
const med = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log(`median of ${runs}: peak RSS ${med(rows.map((r) => r.rssMiB))} MiB, CPU ${med(rows.map((r) => r.cpuSecs))} s (${med(rows.map((r) => r.cpuMsPerSegment))} ms/segment, start-up included), idle agent ${med(rows.map((r) => r.idleCpuSecs))} s, net ${med(rows.map((r) => r.netMsPerSegment))} ms/segment, jobs ${jobs ?? 'default'}, root ${root}`);
