// CPU and peak RSS of `pgark agent` storing a backlog alone, without PostgreSQL running: real
// WAL segments (made once by wal-sample.mjs) copied into a scratch pg_wal with `.ready` files,
// the agent started under GNU time on a fresh fs repository, stopped (SIGTERM) once every
// segment has its push record. Load-independent figures: user + system CPU and %M of the agent
// process (start-up included, ~0.3 s). Alternate builds to compare them:
//
//   node bench/agent-cpu.mjs [--root PGARK_CHECKOUT] [--jobs N] [--wal-dir DIR] [--segments 15] [--runs 3] [--cpu-prof DIR] [--perf FILE]
//                            [--load pgbench|bulk] [--no-launcher]
//
// --load bulk: the WAL of bench/agent.mjs's drain (its pgbench mix with bench/lib-pg.mjs's
// BACKLOG_BULK_SQL, ~39% with lz4) instead of wal-sample.mjs's pgbench WAL (~6%); give it its
// own --wal-dir (default /tmp/pgark-agent-cpu-wal-bulk).
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
import { chmodSync, chownSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { collectWalSample } from './wal-sample.mjs';
import { asPgArgv, NODE, PG_BIN, pgUserIds, ROOT, TIME } from './lib-proc.mjs';
import { BACKLOG_BULK_SQL, BACKLOG_TABLE_SQL, backlogPgbenchArgs, segNo } from './lib-pg.mjs';

const argv = process.argv.slice(2);
const opt = (name, dflt) => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : dflt);
const root = opt('--root', ROOT);
const jobs = opt('--jobs', null);
const runs = Number(opt('--runs', '3'));
const prof = opt('--cpu-prof', null);
const perf = opt('--perf', null);
const want = Number(opt('--segments', '15'));
const load = opt('--load', 'pgbench');
const launcher = !argv.includes('--no-launcher');
if (load !== 'pgbench' && load !== 'bulk') throw new Error(`--load ${load}: pgbench or bulk`);
const walDir = opt('--wal-dir', load === 'bulk' ? '/tmp/pgark-agent-cpu-wal-bulk' : '/tmp/pgark-agent-cpu-wal');
if (!existsSync(walDir) || readdirSync(walDir).length === 0) {
  mkdirSync(walDir, { recursive: true });
  if (load === 'bulk') await collectBulkSample(walDir, want);
  else await collectWalSample(walDir, want);
}

/** The drain bench's WAL (bench/agent.mjs's backlog load) from a throwaway cluster, as the postgres user. */
async function collectBulkSample(destDir, count) {
  const ids = process.getuid() === 0 ? pgUserIds() : { uid: process.getuid(), gid: process.getgid() };
  const pg = (...a) => execFileSync(...asPgArgv(a[0], a.slice(1)), { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8', cwd: '/tmp' });
  const root = mkdtempSync('/tmp/pgark-agent-cpu-pg-');
  chmodSync(root, 0o755);
  chownSync(root, ids.uid, ids.gid);
  const data = join(root, 'data');
  const port = 20000 + (process.pid % 20000);
  const conn = ['-h', root, '-p', String(port), '-U', 'postgres'];
  let started = false;
  try {
    pg(join(PG_BIN, 'initdb'), '-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync');
    const opts = `-c port=${port} -c listen_addresses= -c unix_socket_directories=${root} -c max_wal_size=8GB -c min_wal_size=1GB -c fsync=off -c synchronous_commit=off`;
    pg(join(PG_BIN, 'pg_ctl'), '-D', data, '-l', join(root, 'server.log'), '-o', opts, '-w', 'start');
    started = true;
    pg(join(PG_BIN, 'pgbench'), ...conn, '-i', '-q', '-s', '5', 'postgres');
    pg(join(PG_BIN, 'psql'), ...conn, '-qAtc', BACKLOG_TABLE_SQL, 'postgres');
    const bulk = join(root, 'bulk.sql');
    writeFileSync(bulk, BACKLOG_BULK_SQL);
    chownSync(bulk, ids.uid, ids.gid);
    const walOf = () => pg(join(PG_BIN, 'psql'), ...conn, '-qAtc', 'SELECT pg_walfile_name(pg_current_wal_lsn())', 'postgres').trim();
    const first = walOf();
    while (segNo(walOf()) - segNo(first) < count + 1) pg(join(PG_BIN, 'pgbench'), ...conn, ...backlogPgbenchArgs(bulk), '-T', '5', 'postgres');
    pg(join(PG_BIN, 'psql'), ...conn, '-qAtc', 'SELECT pg_switch_wal()', 'postgres');
    const current = walOf();
    const walDir = join(data, 'pg_wal');
    const done = readdirSync(walDir).filter((f) => /^[0-9A-F]{24}$/.test(f) && f > first && f < current).sort().slice(-count);
    for (const f of done) cpSync(join(walDir, f), join(destDir, f));
    console.error(`copied ${done.length} bulk-load segments (${done[0]} .. ${done.at(-1)})`);
  } finally {
    if (started) pg(join(PG_BIN, 'pg_ctl'), '-D', data, '-m', 'immediate', '-w', 'stop');
    rmSync(root, { recursive: true, force: true });
  }
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
  // Through the launcher (bin/pgark: the memory env and flags users get), Node 24 as PGARK_NODE;
  // --no-launcher runs bin/pgark.js directly. Node flags go through NODE_OPTIONS then.
  const nodeFlags = [...(perf ? ['--perf-basic-prof'] : []), ...(prof ? ['--cpu-prof', '--cpu-prof-dir', prof] : [])];
  const pgark = launcher ? [join(root, 'bin/pgark')] : [NODE, ...nodeFlags, join(root, 'bin/pgark.js')];
  const env = { ...process.env, ...(launcher ? { PGARK_NODE: NODE, ...(nodeFlags.length ? { NODE_OPTIONS: nodeFlags.join(' ') } : {}) } : {}) };
  const args = ['-f', '%M %e %U %S', '-o', tf, ...(perf ? ['perf', 'record', '-F', '999', '-g', '-q', '-o', perf, '--'] : []), ...pgark, 'agent', '--pgdata', pg, '--repo', repo, '--stanza', 'main', '--poll-ms', '200', ...(jobs ? ['--jobs', jobs] : [])];
  const t0 = Date.now();
  const child = spawn(TIME, args, { stdio: ['ignore', 'ignore', 'pipe'], env });
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
console.log(`median of ${runs}: peak RSS ${med(rows.map((r) => r.rssMiB))} MiB, CPU ${med(rows.map((r) => r.cpuSecs))} s (${med(rows.map((r) => r.cpuMsPerSegment))} ms/segment, start-up included), idle agent ${med(rows.map((r) => r.idleCpuSecs))} s, net ${med(rows.map((r) => r.netMsPerSegment))} ms/segment, jobs ${jobs ?? "default"}, ${launcher ? "launcher" : "bin/pgark.js"}, root ${root}`);
