// Streaming receiver benchmark: `pgark receive` vs `pg_receivewal`, in ONE run on ONE PostgreSQL 15
// primary:
//   1. lag under load (async): two physical slots, pg_receivewal (--status-interval=1) and pgark
//      receive (--status-interval 1 --flush-interval 1) both streaming while `pgbench -c 4 -j 2`
//      runs; pg_stat_replication sampled every second per application_name (bytes behind
//      pg_current_wal_lsn() of write_lsn / flush_lsn, write_lag / flush_lag), and every 0.1 s on
//      a second connection (1 s samples meet 1 s reply cycles at a fixed phase); catch-up after the
//      load; then, both stopped, every segment pg_receivewal wrote is fetched back from pgark's
//      repository (`pgark wal-fetch`) and compared byte for byte, and `pgark wal-verify --read`;
//   2. synchronous commit latency: pgbench -c 1 and -c 8 (TPC-B) with no synchronous standby,
//      with `pg_receivewal --synchronous` as the only synchronous standby, then with `pgark
//      receive --synchronous` (one receiver at a time, synchronous_standby_names + reload).
//
//   npm run bench:receive                 # as root (the cluster runs as the `postgres` OS user)
//   node bench/receive.mjs [--duration 60] [--scale 20] [--sync-duration 20] [--smoke] [--sync-only]
//                          [--budget-sec S] [--keep] [--out FILE | --no-write]
//   smoke (~1 min; scale 2, 10 s load, 5 s per synchronous run; writes /tmp/pgark-receive-smoke.md
//   unless --out): node bench/receive.mjs --smoke
//   --cpu-prof-dir DIR: the pgark receivers write CPU profiles there (node --cpu-prof)
//   --sync-only: phase 2 alone (synchronous commit latency), e.g. --smoke --sync-only --sync-duration 10
//   --rounds N: phase 2's receivers N times, alternating (pg_receivewal, pgark[, baseline]); medians
//   --baseline-root DIR: phase 2 also runs DIR/bin/pgark.js (another built checkout, e.g. main) as
//     a third synchronous configuration (own repository and slot), for a before/after in one run
//   every synchronous run also reports each receiver's CPU (all threads, schedstat) and
//     read/write-class system calls (/proc/<pid>/io) per pgbench transaction, and its idle CPU
//   --perf-dir DIR: `perf record -g` of each synchronous receiver per pgbench run (DIR/<label>-c<N>.data,
//     pgark with --perf-basic-prof; read with `node bench/perf-where.mjs FILE`)
//   --strace-dir DIR: `strace -c -f` of each synchronous receiver per pgbench run (every system
//     call counted; it slows the receiver: latencies of such a run are not comparable)
//
// Needs: postgresql-15 (server, client, pg_receivewal, pgbench), GNU time (/usr/bin/time), a built
// pgark (dist/src/receiver/receiver.js). Writes bench/results/receive.md (text above the GENERATED
// marker is kept).
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chownSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { loadavg, release } from 'node:os';
import { join } from 'node:path';
import { Cluster as BaseCluster, SEG, benchConf, initCluster, isSeg } from './lib-pg.mjs';
import {
  asPgArgv,
  BASE_ENV,
  checkPgarkReadableByPostgres,
  createBudget,
  createCleanup,
  createRun,
  environmentLines,
  f1,
  f2,
  fmtMiB,
  freePort,
  listDir,
  MB,
  makeTmpRoot,
  mkPgDir,
  pgarkRepoCreate,
  NODE,
  PG_BIN,
  PGARK,
  procTable,
  requireRootAndFiles,
  ROOT,
  sh,
  shq,
  sleep,
  sq,
  TIME,
  timeRecords,
  treeBytes,
  writeGenerated,
  writePgFile,
  parseBenchArgs,
  stopWithSignal,
} from './lib-proc.mjs';

// ---------------------------------------------------------------------------
// Settings
// ---------------------------------------------------------------------------

const MARKER = '<!-- GENERATED: everything below is rewritten by bench/receive.mjs -->';
const STANZA = 'main';
const TARGET = 1.2; // issue: pgark's max lag at most 1.2x pg_receivewal's
const APP = { pgrw: 'pg_receivewal', pgark: 'pgark' };
const SYNC_APP = { pgrw: 'pg_receivewal_sync', pgark: 'pgark_sync', pgarkBase: 'pgark_base_sync' };
const SLOT = { pgrw: 'slot1', pgark: 'slot2', pgarkBase: 'slot3' };
const LABEL = { pgrw: 'pg_receivewal', pgark: 'pgark receive' };
const SYNC_CLIENTS = [1, 8];
// Besides the 1 s samples, a second connection samples every FINE s: both receivers reply about
// once a second, so 1 s samples see each one's lag at a nearly fixed phase of its reply cycle.
const FINE = 0.1;

const args = parseBenchArgs(['--keep', '--no-write', '--smoke', '--sync-only'], ['--duration', '--scale', '--sync-duration', '--budget-sec', '--out', '--cpu-prof-dir', '--perf-dir', '--strace-dir', '--rounds', '--baseline-root']);
const argv = args.argv;
const argValue = args.value;
const SMOKE = argv.includes('--smoke');
/** Only phase 2 (synchronous commit latency): no lag phase, no side check. */
const SYNC_ONLY = argv.includes('--sync-only');
/** pgark receivers write a CPU profile (node --cpu-prof) into this directory (writable by postgres). */
const CPU_PROF_DIR = argValue('--cpu-prof-dir', '');
// --perf-dir DIR: `perf record -g` of each synchronous receiver during each pgbench run
// (DIR/<label>-c<clients>.data; pgark runs with --perf-basic-prof); read with bench/perf-where.mjs.
const PERF_DIR = argValue('--perf-dir', '');
// --strace-dir DIR: `strace -c -f` of each synchronous receiver during each pgbench run
// (DIR/<label>-c<clients>.txt: every system call counted; it slows the receiver, so the latencies
// of such a run are not comparable).
const STRACE_DIR = argValue('--strace-dir', '');
const DURATION = Number(argValue('--duration', SMOKE ? '10' : '60'));
const SCALE = Number(argValue('--scale', SMOKE ? '2' : '20'));
const SYNC_DURATION = Number(argValue('--sync-duration', SMOKE ? '5' : '20'));
const ROUNDS = Number(argValue('--rounds', '1'));
/** Another built checkout whose pgark runs as a third synchronous configuration ('pgarkBase'). */
const BASELINE_ROOT = argValue('--baseline-root', '');
const TOTAL_BUDGET_MS = Number(argValue('--budget-sec', String(Math.max(SMOKE ? 300 : 900, DURATION + ROUNDS * (BASELINE_ROOT ? 4 : 3) * SYNC_CLIENTS.length * (SYNC_DURATION + 15) + 600)))) * 1000;
const KEEP = argv.includes('--keep');
const WRITE = !argv.includes('--no-write');
const RESULTS = argValue('--out', SMOKE ? '/tmp/pgark-receive-smoke.md' : join(ROOT, 'bench/results/receive.md'));
for (const [k, v] of Object.entries({ DURATION, SCALE, SYNC_DURATION, ROUNDS, TOTAL_BUDGET_MS })) {
  if (!Number.isFinite(v) || v <= 0) {
    console.error(`invalid ${k}: ${v}`);
    process.exit(2);
  }
}

const PG_RECEIVEWAL = join(PG_BIN, 'pg_receivewal');
requireRootAndFiles('bench/receive.mjs', [join(PG_BIN, 'initdb'), join(PG_BIN, 'pgbench'), PG_RECEIVEWAL, TIME, join(ROOT, 'dist/src/cli/main.js'), join(ROOT, 'dist/src/receiver/receiver.js')]);

const budget = createBudget(TOTAL_BUDGET_MS);
const { started, log, bounded } = budget;
const startLoad = loadavg();
const run = createRun(budget);

const tmpRoot = makeTmpRoot('/tmp/pgark-recvbench-');
const clusters = new Set();
const ctx = { tmpRoot, run, bounded, log, clusters };
class Cluster extends BaseCluster {
  constructor(name, dataDir, port) {
    super(ctx, name, dataDir, port);
  }
}

const results = { lag: null, verify: null, sync: [], notes: [], commands: [] };
const T = (s) => String(s).replaceAll(tmpRoot, '$TMP');
const COMMAND = `node bench/receive.mjs${argv.length ? ' ' + argv.join(' ') : ''}`;

// ---------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------

const quantile = (xs, q) => {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo] + (s[hi] - s[lo]) * (pos - lo);
};
const max = (xs) => (xs.length ? Math.max(...xs) : null);
const ratio = (a, b) => (a == null || b == null || !(b > 0) ? null : a / b);
const fMB = (b) => (b == null ? 'n/a' : (b / MB).toFixed(2));
const fx = (x) => (x == null ? 'n/a' : `${f2(x)}x`);
const fs3 = (x) => (x == null || !Number.isFinite(x) ? 'n/a' : x.toFixed(3));
const lsnOf = (bytes) => `${(BigInt(bytes) >> 32n).toString(16).toUpperCase()}/${(BigInt(bytes) & 0xffffffffn).toString(16).toUpperCase()}`;

/** Machine-wide CPU jiffies (all cores) from /proc/stat: busy and total. */
function cpuTimes() {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
  const idle = f[3] + f[4]; // idle + iowait
  return { busy: total - idle, total };
}
const busyPct = (a, b) => (b.total > a.total ? (100 * (b.busy - a.busy)) / (b.total - a.total) : null);

/** CPU model and count as /proc/cpuinfo lists them. */
function cpuInfo() {
  try {
    const text = readFileSync('/proc/cpuinfo', 'utf8');
    const count = (text.match(/^processor\s*:/gm) ?? []).length;
    const model = /^model name\s*:\s*(.*)$/m.exec(text)?.[1]?.trim() ?? 'unknown';
    return `${model} × ${count}`;
  } catch {
    return 'unknown';
  }
}

const sha256 = (file) => createHash('sha256').update(readFileSync(file)).digest('hex');

// ---------------------------------------------------------------------------
// Receivers (as postgres under GNU time: peak RSS and CPU of the receiver process)
// ---------------------------------------------------------------------------

const receivers = new Set();

/** Start a receiver; words = its argv. */
function startReceiver(key, label, words) {
  const timeFile = join(tmpRoot, 'rss', `${label}.txt`);
  writePgFile(timeFile, '');
  const [file, args] = asPgArgv(TIME, ['-f', '%M %e %U %S', '-o', timeFile, ...words]);
  const child = spawn(file, args, { env: { ...BASE_ENV, HOME: '/var/lib/postgresql', ...(CPU_PROF_DIR && key === 'pgark' ? { NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${CPU_PROF_DIR}` } : PERF_DIR && key === 'pgark' ? { NODE_OPTIONS: '--perf-basic-prof' } : {}) }, cwd: '/', stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  let exit = null;
  const exited = new Promise((r) =>
    child.on('close', (code, signal) => {
      exit = { code, signal };
      r(exit);
    }),
  );
  const command = words.map(shq).join(' ');
  results.commands.push({ label, command: T(command) });
  log(`start ${label}: ${T(command)}`);
  const rec = { key, label, child, timeFile, exited, exit: () => exit, out: () => out, err: () => err, command };
  receivers.add(rec);
  return rec;
}

// pg_receivewal 15 stops cleanly on SIGINT only (SIGTERM kills it); pgark receive on either.
const STOP_SIGNAL = { pgrw: 'SIGINT', pgark: 'SIGTERM' };

/** Stop the receiver process (not GNU time) with its STOP_SIGNAL, wait for it; exit code, %M, CPU, pgark's final status. */
async function stopReceiver(rec) {
  const pid = procTable().find((r) => r.ppid === rec.child.pid)?.pid;
  const clean = await stopWithSignal({ pid: pid && rec.exit() === null ? pid : undefined, child: rec.child, exited: rec.exited, signal: STOP_SIGNAL[rec.key] });
  receivers.delete(rec);
  writeFileSync(join(tmpRoot, 'logs', `${rec.label}.log`), rec.out() + rec.err());
  const t = timeRecords(rec.timeFile).at(-1);
  let final = null;
  if (rec.key === 'pgark') {
    try {
      const text = rec.out();
      final = JSON.parse(text.slice(text.indexOf('{')));
    } catch {
      final = null;
    }
  }
  const exit = rec.exit();
  const res = {
    label: rec.label,
    code: exit?.code ?? null,
    stoppedCleanly: clean && exit?.code === 0,
    rssKiB: t?.[0] ?? null,
    wallSecs: t?.[1] ?? null,
    cpuSecs: t ? t[2] + t[3] : null,
    final,
    stderrTail: T(rec.err().slice(-1500)),
  };
  log(`stopped ${rec.label}: exit ${exit?.code ?? exit?.signal ?? '?'}${clean ? '' : ' (killed)'}, peak RSS ${fmtMiB(res.rssKiB)} MiB, CPU ${f2(res.cpuSecs)} s`);
  if (!res.stoppedCleanly) results.notes.push(`${rec.label}: ${clean ? `exit ${exit?.code ?? exit?.signal}` : `did not stop within 30 s of ${STOP_SIGNAL[rec.key]} (killed)`}; stderr tail:\n${res.stderrTail}`);
  return res;
}

async function killReceivers() {
  for (const r of [...receivers]) {
    try {
      process.kill(-r.child.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
    receivers.delete(r);
  }
}

const pgrwWords = (dir, dsnApp, extra = []) => [PG_RECEIVEWAL, '-D', dir, '-S', SLOT.pgrw, '--status-interval=1', '-n', '-w', '-v', '-d', `host=127.0.0.1 port=${main.port} user=postgres application_name=${dsnApp}`, ...extra];
const pgarkWords = (app, extra = [], base = false) => [
  NODE, base ? join(BASELINE_ROOT, 'bin', 'pgark.js') : PGARK, 'receive', '--repo', base ? `${pgarkRepo}-base` : pgarkRepo, '--stanza', STANZA, '--dsn', `host=127.0.0.1 port=${main.port} user=postgres`,
  '--slot', base ? SLOT.pgarkBase : SLOT.pgark, '--create-slot',
  '--application-name', app, '--status-interval', '1', '--flush-interval', '1', '--spool-dir', base ? `${pgarkSpool}-base` : pgarkSpool, '--log-level', 'info', '--json', ...extra,
];

// ---------------------------------------------------------------------------
// pg_stat_replication
// ---------------------------------------------------------------------------

/** Wait until application_name `app` streams (and is the synchronous standby when sync). */
async function waitStreaming(app, rec, { sync = false, timeoutMs = 60_000 } = {}) {
  const until = Date.now() + bounded(timeoutMs);
  let last = '';
  for (;;) {
    if (rec.exit() !== null) throw new Error(`${rec.label} exited (${rec.exit().code ?? rec.exit().signal}) before streaming:\n${T(rec.err().slice(-3000))}`);
    last = await main.psql(`SELECT state || '|' || sync_state FROM pg_stat_replication WHERE application_name = ${sq(app)};`);
    const [state, syncState] = last.split('|');
    if (state === 'streaming' && (!sync || syncState === 'sync')) return;
    if (Date.now() > until) throw new Error(`${app} not ${sync ? 'the synchronous standby' : 'streaming'} after ${timeoutMs} ms (pg_stat_replication: '${last}'):\n${T(rec.err().slice(-3000))}`);
    await sleep(200);
  }
}

const SAMPLE_SQL =
  "WITH c AS MATERIALIZED (SELECT pg_current_wal_lsn() AS lsn) SELECT extract(epoch FROM now()), pg_wal_lsn_diff(c.lsn, '0/0'), coalesce(r.application_name, '-'), coalesce(r.state, '-'), " +
  'pg_wal_lsn_diff(c.lsn, r.write_lsn), pg_wal_lsn_diff(c.lsn, r.flush_lsn), extract(epoch FROM r.write_lag), extract(epoch FROM r.flush_lag) FROM c LEFT JOIN pg_stat_replication r ON true';

const samplers = new Set();

/** One psql connection running SAMPLE_SQL under `\watch <interval>`; samples keyed by the server's now(). */
function startSampler(cl, interval) {
  const child = spawn(join(PG_BIN, 'psql'), ['-X', '-A', '-t', '-q'], { env: { ...BASE_ENV, ...cl.env }, stdio: ['pipe', 'pipe', 'pipe'] });
  samplers.add(child);
  const samples = new Map();
  let buf = '';
  let err = '';
  const num = (s) => (s === '' || s == null ? null : Number(s));
  child.stdout.on('data', (d) => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i).trim();
      buf = buf.slice(i + 1);
      const f = line.split('|');
      if (f.length !== 8 || !/^\d+(\.\d+)?$/.test(f[0])) continue;
      let s = samples.get(f[0]);
      if (!s) samples.set(f[0], (s = { t: Number(f[0]), cur: Number(f[1]), rows: {} }));
      if (f[2] !== '-') s.rows[f[2]] = { state: f[3], w: num(f[4]), f: num(f[5]), wl: num(f[6]), fl: num(f[7]) };
    }
  });
  child.stderr.on('data', (d) => (err += d));
  child.stdin.on('error', () => {});
  child.stdin.write(`${SAMPLE_SQL} \\watch ${interval}\n`);
  return {
    samples: () => [...samples.values()].sort((a, b) => a.t - b.t),
    stop() {
      child.kill('SIGKILL');
      samplers.delete(child);
      if (err.trim()) results.notes.push(`sampler psql stderr: ${err.trim().slice(0, 1000)}`);
    },
  };
}

function killSamplers() {
  for (const c of samplers) c.kill('SIGKILL');
  samplers.clear();
}

/**
 * Lag statistics of one application_name over the samples taken in [t0, t1] (epoch seconds).
 * write_lag / flush_lag keep their value until the next reply that moves the position: they count
 * only from the first sample whose reported write (flush) position moved past the one of the
 * first sample of the window, so a value left over from before the load is not counted.
 */
function lagStats(samples, app, t0, t1) {
  const inWin = samples.filter((s) => s.t >= t0 && s.t <= t1);
  const rows = inWin.map((s) => (s.rows[app] ? { ...s.rows[app], wPos: s.rows[app].w == null ? null : s.cur - s.rows[app].w, fPos: s.rows[app].f == null ? null : s.cur - s.rows[app].f } : null)).filter(Boolean);
  const pick = (k, rs = rows) => rs.map((r) => r[k]).filter((v) => v != null && Number.isFinite(v));
  const since = (posKey) => {
    const p0 = rows[0]?.[posKey];
    const i = rows.findIndex((r) => r[posKey] != null && p0 != null && r[posKey] > p0);
    return i < 0 ? [] : rows.slice(i);
  };
  const w = pick('w');
  const f = pick('f');
  const wl = pick('wl', since('wPos'));
  const fl = pick('fl', since('fPos'));
  return {
    samples: inWin.length,
    present: rows.length,
    notStreaming: rows.filter((r) => r.state !== 'streaming').length,
    wMax: max(w), wP95: quantile(w, 0.95), wMean: w.length ? w.reduce((a, b) => a + b, 0) / w.length : null,
    fMax: max(f), fP95: quantile(f, 0.95),
    wlMax: max(wl), wlP95: quantile(wl, 0.95), wlN: wl.length,
    flMax: max(fl), flP95: quantile(fl, 0.95), flN: fl.length,
    // first and last third of the window: does the lag grow?
    wFirst: quantile(inWin.slice(0, Math.ceil(inWin.length / 3)).map((s) => s.rows[app]?.w).filter((v) => v != null), 0.5),
    wLast: quantile(inWin.slice(-Math.ceil(inWin.length / 3)).map((s) => s.rows[app]?.w).filter((v) => v != null), 0.5),
  };
}

/** Seconds from `from` (Date.now()) until pg_stat_replication shows `col` of `app` at or past lsn (bytes); null on timeout. */
async function waitPosition(app, col, lsnBytes, from, timeoutMs = 60_000) {
  const sql = `SELECT coalesce((pg_wal_lsn_diff(${col}, '0/0') >= ${lsnBytes})::text, 'none') FROM pg_stat_replication WHERE application_name = ${sq(app)} UNION ALL SELECT 'none' LIMIT 1`;
  try {
    await main.watch(sql, (row) => row === 'true', timeoutMs);
    return (Date.now() - from) / 1000;
  } catch (e) {
    results.notes.push(`${app}: ${col} did not reach ${lsnOf(lsnBytes)} within ${timeoutMs / 1000} s (${e.message.split('\n')[0]})`);
    return null;
  }
}

const lsnBytes = async (expr = 'pg_current_wal_lsn()') => BigInt(await main.psql(`SELECT pg_wal_lsn_diff(${expr}, '0/0')::bigint;`));

// ---------------------------------------------------------------------------
// pgbench
// ---------------------------------------------------------------------------

function parsePgbench(text) {
  const num = (re) => {
    const m = re.exec(text);
    return m ? Number(m[1]) : null;
  };
  return {
    tps: num(/^tps = ([\d.]+) \(without initial connection time\)/m) ?? num(/^tps = ([\d.]+)/m),
    latMs: num(/^latency average = ([\d.]+) ms/m),
    txns: num(/^number of transactions actually processed: (\d+)/m),
    failed: num(/^number of failed transactions: (\d+)/m),
  };
}

async function pgbench(args) {
  const full = ['-n', ...args];
  const t0 = Date.now();
  const r = await run(join(PG_BIN, 'pgbench'), full, { env: main.env, timeoutMs: (Number(args[args.indexOf('-T') + 1]) + 120) * 1000 });
  const t1 = Date.now();
  return { ...parsePgbench(r.stdout + r.stderr), t0, t1, command: `pgbench ${full.join(' ')}`, output: r.stdout.trim() };
}

// ---------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------

let main = null;
let pgarkRepo = null;
let pgarkSpool = null;

const { cleanup } = createCleanup({
  tmpRoot,
  keep: KEEP,
  log,
  before: [
    killSamplers,
    killReceivers,
    async () => {
      for (const c of [...clusters]) await c.stop('immediate');
    },
  ],
  budgetMs: TOTAL_BUDGET_MS,
  graceMs: 60_000,
});

async function setSyncNames(names) {
  await main.psql(`ALTER SYSTEM SET synchronous_standby_names = ${sq(names)}; SELECT pg_reload_conf();`);
  await sleep(1000); // the reload is asynchronous
}

async function lagPhase() {
  const pgrwDir = mkPgDir(join(tmpRoot, 'pg_receivewal'));
  // Both slots reserve WAL from the same position, so both receivers start with the same segment.
  await main.psql(`CHECKPOINT; SELECT pg_create_physical_replication_slot(${sq(SLOT.pgrw)}, true); SELECT pg_create_physical_replication_slot(${sq(SLOT.pgark)}, true);`);
  const slots = await main.psql('SELECT slot_name || \' \' || restart_lsn FROM pg_replication_slots ORDER BY 1;');
  log(`slots: ${slots.replace(/\n/g, ', ')}`);

  const pgrw = startReceiver('pgrw', 'pg_receivewal-async', pgrwWords(pgrwDir, APP.pgrw));
  const pgark = startReceiver('pgark', 'pgark-async', pgarkWords(APP.pgark));
  const res = { pgrwDir };
  try {
    await waitStreaming(APP.pgrw, pgrw);
    await waitStreaming(APP.pgark, pgark);
    log('both receivers streaming');
    await sleep(2000);
    const sampler = startSampler(main, 1);
    const fine = startSampler(main, FINE);
    await sleep(1500);
    const lsn0 = await lsnBytes();
    const cpu0 = cpuTimes();
    const load = loadavg()[0];
    log(`pgbench -c 4 -j 2 -T ${DURATION} (sampling pg_stat_replication every second)`);
    let bench;
    try {
      bench = await pgbench(['-c', '4', '-j', '2', '-T', String(DURATION)]);
    } catch (e) {
      sampler.stop();
      fine.stop();
      throw e;
    }
    const lsn1 = await lsnBytes();
    const cpu1 = cpuTimes();
    log(`pgbench: ${f1(bench.tps)} tps, WAL ${fMB(Number(lsn1 - lsn0))} MB`);
    // catch-up: until the reported positions reach the end of the load's WAL
    const [wPgrw, wPgark, fPgark] = await Promise.all([
      waitPosition(APP.pgrw, 'write_lsn', lsn1, bench.t1),
      waitPosition(APP.pgark, 'write_lsn', lsn1, bench.t1),
      waitPosition(APP.pgark, 'flush_lsn', lsn1, bench.t1),
    ]);
    await sleep(1500);
    sampler.stop();
    fine.stop();
    const samples = sampler.samples();
    const fineSamples = fine.samples();
    writeFileSync(join(tmpRoot, 'logs', 'samples.json'), JSON.stringify({ samples, fineSamples }));
    const t0 = bench.t0 / 1000;
    const t1 = bench.t1 / 1000;
    Object.assign(res, {
      bench,
      load,
      loadAfter: loadavg()[0],
      cpuBusyPct: busyPct(cpu0, cpu1),
      walBytes: Number(lsn1 - lsn0),
      lsn0: lsnOf(lsn0),
      lsn1: lsnOf(lsn1),
      secs: (bench.t1 - bench.t0) / 1000,
      stats: { pgrw: lagStats(samples, APP.pgrw, t0, t1), pgark: lagStats(samples, APP.pgark, t0, t1) },
      fine: { pgrw: lagStats(fineSamples, APP.pgrw, t0, t1), pgark: lagStats(fineSamples, APP.pgark, t0, t1) },
      catchUp: { pgrw: { w: wPgrw, f: null }, pgark: { w: wPgark, f: fPgark } },
      timeline: samples.filter((s) => s.t >= t0 - 2 && s.t <= t1 + 5).map((s) => ({ t: s.t - t0, pgrw: s.rows[APP.pgrw] ?? null, pgark: s.rows[APP.pgark] ?? null })),
    });

    // Complete the last segment: both hold whole segments up to the switch.
    const sw = await lsnBytes('pg_switch_wal()');
    const segEnd = ((sw + BigInt(SEG) - 1n) / BigInt(SEG)) * BigInt(SEG);
    log(`pg_switch_wal(): waiting for both flush positions to reach ${lsnOf(segEnd)}`);
    const now = Date.now();
    const [sPgrw, sPgark] = await Promise.all([waitPosition(APP.pgrw, 'flush_lsn', segEnd, now), waitPosition(APP.pgark, 'flush_lsn', segEnd, now)]);
    res.switchFlush = { lsn: lsnOf(segEnd), pgrw: sPgrw, pgark: sPgark };
  } finally {
    res.stopped = { pgrw: await stopReceiver(pgrw), pgark: await stopReceiver(pgark) };
    res.commands = { pgrw: T(pgrw.command), pgark: T(pgark.command) };
    res.stored = { pgrw: treeBytes(pgrwDir), pgark: treeBytes(pgarkRepo) };
    results.lag = res;
  }
}

/** Every segment pg_receivewal wrote, fetched back from pgark's repository and compared; wal-verify --read. */
async function verifyPhase() {
  const dir = results.lag.pgrwDir;
  const segs = listDir(dir).filter((n) => isSeg(n) && statSync(join(dir, n)).size === SEG);
  const partials = listDir(dir).filter((n) => !isSeg(n));
  const fetchDir = mkPgDir(join(tmpRoot, 'fetched'));
  const v = { segments: segs.length, first: segs[0], last: segs.at(-1), partials, identical: 0, missing: [], differ: [], fetchErrors: [] };
  log(`verify: fetching ${segs.length} segments (${v.first}..${v.last}) back from pgark's repository`);
  for (const s of segs) {
    const dest = join(fetchDir, s);
    const r = await run(NODE, [PGARK, 'wal-fetch', s, dest, '--repo', pgarkRepo, '--stanza', STANZA, '--prefetch', '0', '--fetch-received', 'false'], { asPg: true, allowFail: true, timeoutMs: 120_000 });
    if (r.code === 1) v.missing.push(s);
    else if (r.code !== 0) v.fetchErrors.push(`${s}: exit ${r.code ?? r.signal}: ${T(r.stderr.trim()).slice(-300)}`);
    else if (sha256(dest) === sha256(join(dir, s))) v.identical++;
    else v.differ.push(s);
    rmSync(dest, { force: true });
  }
  v.fetchCommand = T(`node bin/pgark.js wal-fetch <segment> $TMP/fetched/<segment> --repo ${pgarkRepo} --stanza ${STANZA} --prefetch 0 --fetch-received false`);
  const wv = await run(NODE, [PGARK, 'wal-verify', '--repo', pgarkRepo, '--stanza', STANZA, '--read', '--json'], { asPg: true, allowFail: true, timeoutMs: 300_000 });
  v.walVerifyCommand = T(`node bin/pgark.js wal-verify --repo ${pgarkRepo} --stanza ${STANZA} --read --json`);
  v.walVerifyCode = wv.code;
  try {
    const rep = JSON.parse(wv.stdout.slice(wv.stdout.indexOf('{')));
    v.walVerify = {
      ok: rep.ok,
      totalSegments: rep.totalSegments,
      gapCount: rep.gapCount,
      objectsRead: rep.objectsRead,
      damaged: rep.damaged?.length ?? 0,
      ranges: (rep.timelines ?? []).flatMap((t) => t.ranges.map((r) => `${r.first}..${r.last} (${r.count})`)),
      partials: (rep.timelines ?? []).flatMap((t) => t.partials),
      storedBytes: rep.totalStoredBytes,
    };
  } catch {
    v.walVerify = null;
    results.notes.push(`wal-verify output not JSON (exit ${wv.code}): ${T(wv.stdout + wv.stderr).slice(-1500)}`);
  }
  results.verify = v;
  log(`verify: ${v.identical}/${v.segments} identical, ${v.missing.length} missing, ${v.differ.length} differ, ${v.fetchErrors.length} fetch errors; wal-verify exit ${wv.code}`);
}

/**
 * The receiver process's CPU time so far (ns on CPU, every thread: /proc/<pid>/task/<tid>/schedstat)
 * and its read- and write-class system calls (/proc/<pid>/io syscr + syscw: read, write, pwritev,
 * recvfrom, sendto, ...; fdatasync, epoll and futex are not counted there). null when gone.
 */
function procUsage(pid) {
  if (!pid) return null;
  try {
    let ns = 0;
    for (const t of readdirSync(`/proc/${pid}/task`)) {
      try {
        ns += Number(readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ')[0]);
      } catch {
        /* thread gone */
      }
    }
    const io = readFileSync(`/proc/${pid}/io`, 'utf8');
    const n = (k) => Number(new RegExp(`^${k}: (\\d+)`, 'm').exec(io)?.[1] ?? NaN);
    return { cpuNs: ns, sysc: n('syscr') + n('syscw') };
  } catch {
    return null;
  }
}

/** The receiver's own process (GNU time's child). */
const receiverPid = (rec) => (rec ? procTable().find((r) => r.ppid === rec.child.pid)?.pid : undefined);

/** How long the idle CPU of each synchronous receiver is measured before its runs. */
const IDLE_MS = 3000;

async function syncRun(config, clients, rec) {
  await main.psql('CHECKPOINT;');
  const args = clients === 1 ? ['-c', '1', '-T', String(SYNC_DURATION)] : ['-c', String(clients), '-j', '2', '-T', String(SYNC_DURATION)];
  const load = loadavg()[0];
  const pid = receiverPid(rec);
  const u0 = procUsage(pid);
  const perf = PERF_DIR && pid ? spawn('perf', ['record', '-q', '-F', '999', '-g', '-p', String(pid), '-o', join(PERF_DIR, `${rec.label}-c${clients}.data`)], { stdio: 'ignore' }) : undefined;
  const strace = STRACE_DIR && pid ? spawn('strace', ['-c', '-f', '-p', String(pid), '-o', join(STRACE_DIR, `${rec.label}-c${clients}.txt`)], { stdio: 'ignore' }) : undefined;
  const b = await pgbench(args);
  const u1 = procUsage(pid);
  if (strace) {
    const done = new Promise((r) => strace.on('close', r));
    strace.kill('SIGINT');
    await done;
    try {
      writeFileSync(join(STRACE_DIR, `${rec.label}-c${clients}.txt`), `transactions ${b.txns}\n` + readFileSync(join(STRACE_DIR, `${rec.label}-c${clients}.txt`), 'utf8'));
    } catch {
      /* no output */
    }
  }
  if (perf) {
    const done = new Promise((r) => perf.on('close', r));
    perf.kill('SIGINT');
    await done;
    // perf script reads the JIT symbol map only when root owns it
    try {
      chownSync(`/tmp/perf-${pid}.map`, 0, 0);
    } catch {
      /* not a node receiver */
    }
  }
  const r = { config, clients, ...b, load };
  if (u0 && u1 && b.txns) {
    r.cpuMsPerTxn = (u1.cpuNs - u0.cpuNs) / 1e6 / b.txns;
    r.syscPerTxn = (u1.sysc - u0.sysc) / b.txns;
  }
  delete r.output;
  results.sync.push(r);
  log(`sync ${config} -c ${clients}: ${f1(b.tps)} tps, latency average ${fs3(b.latMs)} ms`);
}

async function syncPhase() {
  await setSyncNames('');
  for (const c of SYNC_CLIENTS) await syncRun('baseline', c);
  const configs = ['pgrw', 'pgark', ...(BASELINE_ROOT ? ['pgarkBase'] : [])];
  for (let round = 1; round <= ROUNDS; round++) {
    for (const key of configs) {
      const app = SYNC_APP[key];
      const tag = ROUNDS > 1 ? `-r${round}` : '';
      const rec =
        key === 'pgrw'
          ? startReceiver(key, `pg_receivewal-sync${tag}`, pgrwWords(mkPgDir(join(tmpRoot, `pg_receivewal-sync${tag}`)), app, ['--synchronous']))
          : startReceiver('pgark', `${key === 'pgark' ? 'pgark-sync' : 'pgark-baseline-sync'}${tag}`, pgarkWords(app, ['--synchronous'], key === 'pgarkBase'));
      try {
        await waitStreaming(app, rec);
        await setSyncNames(app);
        await waitStreaming(app, rec, { sync: true });
        // The receiver's CPU while idle (status replies, lock checks): per second, to tell it from per-commit CPU.
        const pid = receiverPid(rec);
        const i0 = procUsage(pid);
        await new Promise((r) => setTimeout(r, IDLE_MS));
        const i1 = procUsage(pid);
        if (i0 && i1) (results.idleCpu ??= []).push({ key, msPerSec: (i1.cpuNs - i0.cpuNs) / 1e6 / (IDLE_MS / 1000), syscPerSec: (i1.sysc - i0.sysc) / (IDLE_MS / 1000) });
        for (const c of SYNC_CLIENTS) await syncRun(key, c, rec);
      } finally {
        await setSyncNames('').catch(() => {});
        const stopped = await stopReceiver(rec);
        (results[`sync_${key}`] ??= []).push({ command: T(rec.command), stopped });
      }
    }
  }
}

/** Newest mtime (ms) of files under dir whose name ends with ext. */
function newestMtime(dir, ext) {
  let best = { ms: 0, file: null };
  const walk = (d) => {
    for (const e of listDir(d)) {
      const f = join(d, e);
      const st = statSync(f);
      if (st.isDirectory()) walk(f);
      else if (f.endsWith(ext) && st.mtimeMs > best.ms) best = { ms: st.mtimeMs, file: f };
    }
  };
  walk(dir);
  return best;
}

async function runBench() {
  checkPgarkReadableByPostgres();
  const src = newestMtime(join(ROOT, 'src'), '.ts');
  const dist = newestMtime(join(ROOT, 'dist', 'src'), '.js');
  if (src.ms > dist.ms) {
    results.staleDist = `${src.file.replace(ROOT + '/', '')} is newer than every file in dist/src`;
    log(`WARNING: ${results.staleDist}`);
  }
  mkPgDir(join(tmpRoot, 'rss'));
  mkPgDir(join(tmpRoot, 'logs'));
  pgarkRepo = await pgarkRepoCreate(run, mkPgDir(join(tmpRoot, 'repo-pgark')));
  pgarkSpool = mkPgDir(join(tmpRoot, 'spool-pgark'));
  if (BASELINE_ROOT) {
    // `${pgarkRepo}-base`, `${pgarkSpool}-base` (pgarkWords): the baseline build's own repository
    await pgarkRepoCreate(run, mkPgDir(`${pgarkRepo}-base`));
    mkPgDir(`${pgarkSpool}-base`);
  }

  const dataDir = join(mkPgDir(join(tmpRoot, 'main')), 'data');
  main = new Cluster('main', dataDir, await freePort());
  log(`initdb ${T(dataDir)} (port ${main.port})`);
  const conf = benchConf(main, { max_wal_senders: '10', max_replication_slots: '10', synchronous_standby_names: '' });
  await initCluster({ run }, main, { checksums: false, conf, comment: 'receive bench' });
  results.pgConf = conf;
  await main.start(120);
  results.pgVersion = await main.psql('SHOW server_version;');
  log(`pgbench -i -s ${SCALE}`);
  await run(join(PG_BIN, 'pgbench'), ['-i', '-q', '-s', String(SCALE)], { env: main.env, timeoutMs: 600_000 });
  await main.psql('VACUUM ANALYZE; CHECKPOINT;');

  if (!SYNC_ONLY) {
    await lagPhase();
    await verifyPhase();
  } else {
    await main.psql(`CHECKPOINT; SELECT pg_create_physical_replication_slot(${sq(SLOT.pgrw)}, true); SELECT pg_create_physical_replication_slot(${sq(SLOT.pgark)}, true);`);
  }
  await syncPhase();
  // the whole repository after both phases (lag + synchronous runs): still no gap
  const wv = await run(NODE, [PGARK, 'wal-verify', '--repo', pgarkRepo, '--stanza', STANZA, '--json'], { asPg: true, allowFail: true, timeoutMs: 300_000 });
  try {
    const rep = JSON.parse(wv.stdout.slice(wv.stdout.indexOf('{')));
    results.finalVerify = { code: wv.code, ok: rep.ok, totalSegments: rep.totalSegments, gapCount: rep.gapCount, ranges: (rep.timelines ?? []).flatMap((t) => t.ranges.map((r) => `${r.first}..${r.last} (${r.count})`)) };
  } catch {
    results.finalVerify = { code: wv.code, ok: false, error: T(wv.stdout + wv.stderr).slice(-1000) };
  }
}

// ---------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------

const verdict = (x) => (x == null ? 'n/a' : x <= TARGET ? `**met** (${f2(x)}x ≤ ${TARGET}x)` : `**not met** (${f2(x)}x > ${TARGET}x)`);

function report(failure) {
  const out = [MARKER, ''];
  out.push('## Environment', '');
  out.push(environmentLines({ started, startLoad, command: COMMAND }));
  out.push(`- CPU (/proc/cpuinfo): ${cpuInfo()}; kernel ${release()}; ${sh(PG_RECEIVEWAL, ['--version'])}`);
  if (results.staleDist) out.push(`- **dist/ is older than src/** (${results.staleDist}): run \`npm run build\` (the npm script does)`);
  if (SMOKE) out.push('- **smoke run** (`--smoke`): tiny scale and durations, numbers only show that the script works');
  out.push('');
  if (failure) out.push(`**Run failed:** \`${T(failure.message ?? String(failure)).split('\n')[0].slice(0, 500)}\` (partial results below).`, '');
  const c = results.pgConf;
  if (c) {
    out.push(
      `Cluster: PostgreSQL ${results.pgVersion ?? '15'} (16 MiB segments) on loopback, \`${['max_wal_size', 'checkpoint_timeout', 'shared_buffers', 'autovacuum', 'max_wal_senders', 'max_replication_slots'].map((k) => `${k}=${c[k]}`).join(' ')}\`, ` +
        `synchronous_commit=on (default), archive_command=/bin/true; \`pgbench -i -q -s ${SCALE}\`, \`VACUUM ANALYZE\`, \`CHECKPOINT\`. Everything runs as \`postgres\` except pgbench and psql (clients, as root). MB = 10^6 bytes.`,
      '',
    );
  }

  const L = results.lag;
  const sP = L?.stats?.pgrw;
  const sA = L?.stats?.pgark;
  // With --rounds: the median of each configuration's runs (latency, tps), transactions summed.
  const median = (xs) => {
    const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
    return v.length ? (v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2) : null;
  };
  const syncOf = (config, clients) => {
    const rs = results.sync.filter((r) => r.config === config && r.clients === clients);
    if (!rs.length) return undefined;
    return {
      ...rs[0], tps: median(rs.map((r) => r.tps)), latMs: median(rs.map((r) => r.latMs)), load: median(rs.map((r) => r.load)),
      txns: rs.reduce((a, r) => a + (r.txns ?? 0), 0), runs: rs.map((r) => r.latMs),
      cpuMsPerTxn: median(rs.map((r) => r.cpuMsPerTxn)), syscPerTxn: median(rs.map((r) => r.syscPerTxn)),
    };
  };

  // --- targets -----------------------------------------------------------------------------
  const fP = L?.fine?.pgrw;
  const fA = L?.fine?.pgark;
  out.push(
    '## Target',
    '',
    `Issue: pgark's max lag at most ${TARGET}x pg_receivewal's. pg_receivewal without \`--synchronous\` fsyncs (and reports flush) only when a segment is complete, so its flush lag is up to a segment by design; pgark's write and flush lag are both compared to pg_receivewal's **write** lag. ` +
      `Lag bytes = \`pg_current_wal_lsn()\` minus the reported position, max over the samples taken during the load; "1 s" = the samples every second, "${FINE} s" = a second connection sampling every ${FINE} s (both receivers reply about once a second, so 1 s samples see each at a nearly fixed point of its reply cycle; the ${FINE} s samples see the whole cycle).`,
    '',
  );
  out.push('| compared (max over the load) | pgark | pg_receivewal | ratio | result |', '|---|---|---|---|---|');
  const bytesRows = (tag, a, p) => {
    out.push(`| write-lag bytes (${tag} samples): pgark write vs pg_receivewal write | ${fMB(a.wMax)} MB | ${fMB(p.wMax)} MB | ${fx(ratio(a.wMax, p.wMax))} | ${verdict(ratio(a.wMax, p.wMax))} |`);
    out.push(`| flush-lag bytes (${tag} samples): pgark flush vs pg_receivewal write | ${fMB(a.fMax)} MB | ${fMB(p.wMax)} MB | ${fx(ratio(a.fMax, p.wMax))} | ${verdict(ratio(a.fMax, p.wMax))} |`);
  };
  if (sP && sA) bytesRows('1 s', sA, sP);
  if (fP && fA) bytesRows(`${FINE} s`, fA, fP);
  if (sP && sA) {
    out.push(`| write_lag seconds (1 s samples): pgark vs pg_receivewal | ${fs3(sA.wlMax)} s | ${fs3(sP.wlMax)} s | ${fx(ratio(sA.wlMax, sP.wlMax))} | see ² |`);
    out.push(`| flush_lag seconds (1 s samples): pgark flush vs pg_receivewal write | ${fs3(sA.flMax)} s | ${fs3(sP.wlMax)} s | ${fx(ratio(sA.flMax, sP.wlMax))} | see ² |`);
  }
  for (const n of SYNC_CLIENTS) {
    const p = syncOf('pgrw', n);
    const a = syncOf('pgark', n);
    if (p && a) out.push(`| synchronous commit latency, pgbench -c ${n} (no target in the issue) | ${fs3(a.latMs)} ms | ${fs3(p.latMs)} ms | ${fx(ratio(a.latMs, p.latMs))} | — |`);
  }
  out.push(
    '',
    '² write_lag / flush_lag are computed by the walsender when a reply arrives: the age of the WAL at the reported position, i.e. how long the receiver took from getting WAL to reporting it (pg_receivewal reports what it received as written at once, so its write_lag is about 0; pgark reports written and flushed together, after storing). They leave out the interval between replies, which the bytes include, and are counted from the first reply during the load that moved the position (before it the view still shows the value of the last reply before the load). When they are a few milliseconds, their ratio is large whatever the absolute difference, so no verdict is drawn from them; the bytes rows are the target.',
    '',
  );

  // --- lag ---------------------------------------------------------------------------------
  out.push('## 1. Lag under load (asynchronous)', '');
  if (L?.bench) {
    out.push(
      `Two physical slots created together (\`pg_create_physical_replication_slot(..., true)\`, same restart_lsn), both receivers streaming, then \`${L.bench.command}\` (TPC-B, right after a CHECKPOINT, so the first seconds write full-page images). ` +
        `pg_stat_replication was sampled every second on one connection (\`\\watch 1\`) and every ${FINE} s on another: per application_name \`pg_current_wal_lsn() - write_lsn\`, \`- flush_lsn\` and write_lag / flush_lag; statistics over the samples taken while pgbench ran. ` +
        'Both receivers send a status reply at least every second (`--status-interval 1`); pgark also stores what it received at least every second (`--flush-interval 1`).',
      '',
    );
    out.push(
      `- load: ${f2(L.secs)} s, ${f1(L.bench.tps)} tps (${L.bench.txns ?? '?'} transactions), **WAL generated ${fMB(L.walBytes)} MB** (${L.lsn0} → ${L.lsn1}) = **${f2(L.walBytes / MB / L.secs)} MB/s**; machine CPU ${f1(L.cpuBusyPct)}% busy; load average ${f1(L.load)} → ${f1(L.loadAfter)}`,
      '',
    );
    const lagTable = (stats) => {
      out.push('| receiver | samples (receiver present) | write-lag MB max | p95 | mean | flush-lag MB max | p95 | write_lag s max | p95 | flush_lag s max | p95 |', '|---|---|---|---|---|---|---|---|---|---|---|');
      for (const k of ['pgrw', 'pgark']) {
        const s = stats[k];
        const m = k === 'pgrw' ? ' ¹' : '';
        out.push(
          `| ${LABEL[k]} | ${s.present}/${s.samples}${s.notStreaming ? ` (${s.notStreaming} not streaming)` : ''} | ${fMB(s.wMax)} | ${fMB(s.wP95)} | ${fMB(s.wMean)} | ${fMB(s.fMax)}${m} | ${fMB(s.fP95)}${m} | ${fs3(s.wlMax)} | ${fs3(s.wlP95)} | ${fs3(s.flMax)}${m} | ${fs3(s.flP95)}${m} |`,
        );
      }
      out.push('');
    };
    out.push('Samples every second:', '');
    lagTable(L.stats);
    out.push(`Samples every ${FINE} s:`, '');
    lagTable(L.fine);
    out.push('¹ pg_receivewal without `--synchronous` fsyncs and reports a new flush position only when it completes a segment: its flush lag is up to one segment (16 MiB) by design and is not what the target compares.', '');
    out.push('Ratios pgark / pg_receivewal:', '', '| | max (1 s) | p95 (1 s) | max (' + FINE + ' s) | p95 (' + FINE + ' s) |', '|---|---|---|---|---|');
    const rr = (name, ka, kp, kpP95, kaP95) =>
      out.push(`| ${name} | ${fx(ratio(sA[ka], sP[kp]))} | ${fx(ratio(sA[kaP95], sP[kpP95]))} | ${fx(ratio(fA[ka], fP[kp]))} | ${fx(ratio(fA[kaP95], fP[kpP95]))} |`);
    rr('write-lag bytes (write vs write)', 'wMax', 'wMax', 'wP95', 'wP95');
    rr('pgark flush-lag bytes vs pg_receivewal write-lag bytes', 'fMax', 'wMax', 'wP95', 'fP95');
    rr('write_lag seconds (write vs write) ²', 'wlMax', 'wlMax', 'wlP95', 'wlP95');
    rr('pgark flush_lag seconds vs pg_receivewal write_lag seconds ²', 'flMax', 'wlMax', 'wlP95', 'flP95');
    out.push('');
    const cu = L.catchUp;
    out.push(
      `Lag trend (median write-lag MB of the first → last third of the ${FINE} s samples): pg_receivewal ${fMB(fP.wFirst)} → ${fMB(fP.wLast)}, pgark ${fMB(fA.wFirst)} → ${fMB(fA.wLast)}. ` +
        `After pgbench ended, the reported positions reached the load's WAL end after: pg_receivewal write ${f2(cu.pgrw.w)} s; pgark write ${f2(cu.pgark.w)} s, flush ${f2(cu.pgark.f)} s (polled every 50 ms). ` +
        `After \`pg_switch_wal()\` both flush positions reached the segment end ${L.switchFlush?.lsn ?? '?'} after ${f2(L.switchFlush?.pgrw)} s (pg_receivewal) and ${f2(L.switchFlush?.pgark)} s (pgark).`,
      '',
    );
    if (L.timeline?.length) {
      out.push('<details><summary>Every 1 s sample (seconds from the start of pgbench; MB behind pg_current_wal_lsn(); lag columns in seconds)</summary>', '');
      out.push('| t s | pg_receivewal write MB | pg_receivewal flush MB | pgark write MB | pgark flush MB | pg_receivewal write_lag | pgark write_lag | pgark flush_lag |', '|---|---|---|---|---|---|---|---|');
      for (const e of L.timeline) out.push(`| ${f1(e.t)} | ${fMB(e.pgrw?.w)} | ${fMB(e.pgrw?.f)} | ${fMB(e.pgark?.w)} | ${fMB(e.pgark?.f)} | ${fs3(e.pgrw?.wl)} | ${fs3(e.pgark?.wl)} | ${fs3(e.pgark?.fl)} |`);
      out.push('', '</details>', '');
    }
  }
  if (L?.stopped) {
    out.push('| receiver | stopped (SIGINT / SIGTERM) | exit | peak RSS MiB (%M) | CPU s (user+sys) | CPU ms per MB of WAL | stored MB (files) |', '|---|---|---|---|---|---|---|');
    for (const k of ['pgrw', 'pgark']) {
      const s = L.stopped[k];
      const st = L.stored?.[k];
      out.push(`| ${LABEL[k]} | ${s.stoppedCleanly ? 'cleanly' : '**no**'} | ${s.code ?? 'n/a'} | ${fmtMiB(s.rssKiB)} | ${f2(s.cpuSecs)} | ${L.walBytes && s.cpuSecs != null ? f1((1000 * s.cpuSecs) / (L.walBytes / MB)) : 'n/a'} | ${st ? `${fMB(st.bytes)} (${st.files})` : 'n/a'} |`);
    }
    out.push('', 'CPU and RSS cover each receiver\'s whole life (start, the load, catch-up, the switch, stop), measured by GNU time. pg_receivewal stores segments uncompressed; pgark compresses (its default codec) and checksums them.', '');
    const fin = L.stopped.pgark.final;
    if (fin) out.push(`pgark's final status (\`--json\`): state ${fin.state}, ${fin.bytesReceived} bytes received, ${fin.segmentsStored} segments and ${fin.piecesStored} pieces stored, ${fin.reconnects} reconnects, flush ${fin.flushLsn ?? '?'}${fin.lastError ? `, last error: ${T(fin.lastError)}` : ''}.`, '');
  }
  const V = results.verify;
  if (V) {
    out.push('### Correctness side check', '');
    out.push(
      `Both receivers stopped; every complete segment pg_receivewal wrote (${V.segments}: ${V.first}..${V.last}) fetched back from pgark's repository with \`pgark wal-fetch\` and compared by sha256: ` +
        `**${V.identical} identical, ${V.missing.length} missing, ${V.differ.length} different, ${V.fetchErrors.length} fetch errors**` +
        `${V.missing.length ? ` (missing: ${V.missing.join(', ')})` : ''}${V.differ.length ? ` (different: ${V.differ.join(', ')})` : ''}.`,
    );
    if (V.walVerify) {
      out.push(
        `\`pgark wal-verify --read --json\`: exit ${V.walVerifyCode}, ok ${V.walVerify.ok}, ${V.walVerify.totalSegments} segments in ${V.walVerify.ranges.join(', ') || 'no range'}, ${V.walVerify.gapCount} gaps, ${V.walVerify.objectsRead} objects re-read, ${V.walVerify.damaged} damaged${V.walVerify.partials.length ? `, partial files ${V.walVerify.partials.join(', ')}` : ''}.`,
      );
    }
    out.push('');
    if (V.fetchErrors.length) out.push('```', ...V.fetchErrors, '```', '');
  }

  // --- sync --------------------------------------------------------------------------------
  out.push('## 2. Synchronous commit latency', '');
  if (results.sync.length) {
    out.push(
      `Same cluster after phase 1 (both receivers stopped). One configuration at a time, only the receiver under test running: no synchronous standby (baseline), then \`pg_receivewal --synchronous\` (slot ${SLOT.pgrw}, \`application_name=${SYNC_APP.pgrw}\` in the connection string), then \`pgark receive --synchronous\` (slot ${SLOT.pgark}, \`--application-name ${SYNC_APP.pgark}\`), ` +
        `each the only name in synchronous_standby_names (ALTER SYSTEM + reload, waited for sync_state = sync). synchronous_commit = on: a commit returns once the standby reports the WAL flushed. A \`CHECKPOINT\` before every pgbench run; default TPC-B script, ${SYNC_DURATION} s per run.`,
      '',
    );
    if (ROUNDS > 1) out.push(`${ROUNDS} rounds, each starting and stopping every synchronous receiver in turn (${['pg_receivewal', 'pgark', ...(BASELINE_ROOT ? ['pgark baseline'] : [])].join(', ')}); tps, latency and load are the medians of the rounds, transactions their sum; every round's latency in the last column.`, '');
    out.push('| clients | configuration | tps | latency average ms | latency vs baseline | transactions | load avg | receiver CPU ms / transaction | receiver read+write syscalls / transaction | latency per round ms |', '|---|---|---|---|---|---|---|---|---|---|');
    const configs = [['baseline', 'no synchronous standby'], ['pgrw', 'pg_receivewal --synchronous'], ['pgark', 'pgark receive --synchronous'], ['pgarkBase', `pgark receive --synchronous, baseline build (${BASELINE_ROOT})`]];
    for (const n of SYNC_CLIENTS) {
      const base = syncOf('baseline', n);
      for (const [cfg, name] of configs) {
        const r = syncOf(cfg, n);
        if (!r) continue;
        out.push(`| ${n} | ${name} | ${f1(r.tps)} | ${fs3(r.latMs)} | ${cfg === 'baseline' ? '—' : fx(ratio(r.latMs, base?.latMs))} | ${r.txns ?? '?'}${r.failed ? ` (${r.failed} failed)` : ''} | ${f1(r.load)} | ${r.cpuMsPerTxn == null ? '—' : fs3(r.cpuMsPerTxn)} | ${r.syscPerTxn == null ? '—' : f2(r.syscPerTxn)} | ${r.runs.map(fs3).join(', ')} |`);
      }
    }
    out.push('');
    for (const n of SYNC_CLIENTS) {
      const p = syncOf('pgrw', n);
      const a = syncOf('pgark', n);
      const b = syncOf('pgarkBase', n);
      if (p && a) out.push(`- \`-c ${n}\`: latency pgark / pg_receivewal = **${fx(ratio(a.latMs, p.latMs))}** (${fs3(a.latMs)} vs ${fs3(p.latMs)} ms); tps ${f1(a.tps)} vs ${f1(p.tps)}${b ? `; baseline build / pg_receivewal = ${fx(ratio(b.latMs, p.latMs))} (${fs3(b.latMs)} ms)` : ''}; receiver CPU per transaction pgark ${fs3(a.cpuMsPerTxn)} ms, pg_receivewal ${fs3(p.cpuMsPerTxn)} ms${b ? `, baseline build ${fs3(b.cpuMsPerTxn)} ms` : ''}`);
    }
    out.push('');
    const sp = [...(results.sync_pgrw ?? []), ...(results.sync_pgark ?? []), ...(results.sync_pgarkBase ?? [])];
    if (sp.length) {
      out.push('| synchronous receiver | stopped (SIGINT / SIGTERM) | exit | peak RSS MiB | CPU s (whole life) | pgark: pieces / segments stored |', '|---|---|---|---|---|---|');
      for (const s of sp) {
        const fin = s.stopped.final;
        out.push(`| ${s.stopped.label} | ${s.stopped.stoppedCleanly ? 'cleanly' : '**no**'} | ${s.stopped.code ?? 'n/a'} | ${fmtMiB(s.stopped.rssKiB)} | ${f2(s.stopped.cpuSecs)} | ${fin ? `${fin.piecesStored} / ${fin.segmentsStored}` : '—'} |`);
      }
      const txns = results.sync.filter((r) => r.config === 'pgark').reduce((a, r) => a + (r.txns ?? 0), 0);
      const pieces = (results.sync_pgark ?? []).reduce((a, s) => a + (s.stopped.final?.piecesStored ?? 0), 0);
      const idle = (k) => median((results.idleCpu ?? []).filter((x) => x.key === k).map((x) => x.msPerSec));
      if ((results.idleCpu ?? []).length) {
        out.push('', `Receiver CPU while idle (synchronous standby, no transactions, ${IDLE_MS / 1000} s before each round's runs; median ms of CPU per second): pg_receivewal ${fs3(idle('pgrw'))}, pgark ${fs3(idle('pgark'))}${BASELINE_ROOT ? `, baseline build ${fs3(idle('pgarkBase'))}` : ''}. ` +
          'The CPU per transaction columns above are of the whole run (idle cost included: at low tps it weighs more); CPU is all threads\' time on CPU (/proc/<pid>/task/*/schedstat), syscalls are /proc/<pid>/io syscr + syscw (read/write-class calls: Node reads and writes its socket with read/write, counted; libpq uses recv/send, not counted; fdatasync, epoll and futex are not counted for either).');
      }
      if (pieces && txns) out.push('', `pgark --synchronous stores each batch of messages before it replies (on a local filesystem repository one record of the segment's received-WAL journal and one fdatasync; elsewhere one repository object): ${pieces} flushes for ${txns} pgbench transactions (${f2(pieces / txns)} per transaction).`);
      out.push('');
    }
  }
  if (results.finalVerify) {
    const fv = results.finalVerify;
    out.push(`At the end (both phases): \`pgark wal-verify --json\` exit ${fv.code}, ok ${fv.ok}, ${fv.totalSegments ?? '?'} segments, ${fv.gapCount ?? '?'} gaps${fv.ranges ? ` (${fv.ranges.join(', ')})` : ''}.`, '');
  }

  // --- commands ----------------------------------------------------------------------------
  out.push('## Exact commands', '', '`$TMP` is the run\'s temp dir. Receivers run as `postgres` under `/usr/bin/time -f \'%M %e %U %S\'`; pg_receivewal is stopped with SIGINT (PostgreSQL 15\'s pg_receivewal dies on SIGTERM), pgark receive with SIGTERM.', '');
  for (const c of results.commands) out.push(`- ${c.label}: \`${c.command}\``);
  if (L?.bench) out.push(`- load: \`${L.bench.command}\``);
  for (const r of results.sync) if (r.config === 'baseline') out.push(`- synchronous runs (each configuration): \`${r.command}\``);
  out.push(`- sampling (psql, \`\\watch 1\` on one connection, \`\\watch ${FINE}\` on another): \`${SAMPLE_SQL}\``);
  if (V) out.push(`- check: \`${V.fetchCommand}\` per segment; \`${V.walVerifyCommand}\``);
  out.push('');
  if (results.notes.length) out.push('## Notes', '', ...results.notes.map((n) => '```\n' + T(n) + '\n```'), '');
  out.push(`Total bench time: ${((Date.now() - started) / 1000).toFixed(0)} s.`, '');
  return out.join('\n');
}

// ---------------------------------------------------------------------------

let failure = null;
try {
  log(`temp dir ${tmpRoot}; scale ${SCALE}; load ${DURATION} s; synchronous runs ${SYNC_DURATION} s; budget ${TOTAL_BUDGET_MS / 1000} s; load average ${startLoad.map((l) => l.toFixed(2)).join(' ')}`);
  await runBench();
} catch (e) {
  failure = e;
  log(`FAILED: ${e.stack ?? e}`);
  for (const c of clusters) log(`--- ${c.name} log tail ---\n${c.logTail()}`);
  for (const r of receivers) log(`--- ${r.label} stderr ---\n${r.err().slice(-2000)}`);
} finally {
  await cleanup();
}

const md = report(failure);
console.log(md);
if (WRITE && (results.lag || results.sync.length)) {
  writeGenerated(RESULTS, MARKER, md, 'pgark receive vs pg_receivewal');
  log(`wrote ${RESULTS}`);
}
const v = results.verify;
const bad = failure || (!v && !SYNC_ONLY) || (v && (v.missing.length || v.differ.length || v.fetchErrors.length || (v.walVerify && !v.walVerify.ok)));
process.exit(bad ? 1 : 0);
