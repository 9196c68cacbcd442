// Where each second of pgark's CPU goes (issue 17 item 1), in one command: CPU profiles of a full
// backup, an incremental backup, a restore and the agent storing a backlog of ready WAL segments,
// on a pgbench dataset and a random-data dataset, with pgBackRest (2.59.1 by default, repo1-bundle=y
// repo1-block=y, process-max = --jobs) doing the same operations in the same run.
//
//   node_modules/.bin/node bench/profile.mjs [--scale 10] [--random-gb 0.15] [--datasets pgbench,random]
//        [--ops full,restore,incr,agent] [--jobs 2] [--segments 16] [--incr-tx 1500]
//        [--pgbackrest BIN] [--perf | --no-perf] [--prof-dir DIR] [--target-dir DIR] [--keep] [--budget-sec 900]
//        [--out FILE | --no-write]
//   smoke: node bench/profile.mjs --scale 1 --random-gb 0.02 --segments 4 --incr-tx 200 --out /tmp/profile-smoke.md
//
// Every pgark command runs as `postgres` through the launcher bin/pgark (PGARK_NODE = the shipped
// Node 24), as users run it. Each operation runs pgark two or three times ("variants"):
//   plain  under GNU time (user + sys of the process: the figure compared with pgBackRest), with the
//          CPU of each of its threads read from /proc/PID/task every 50 ms (main thread, worker
//          threads, libuv's pool, V8's platform threads): the pool threads run lz4-napi, sha256 of
//          crypto.hash calls made async, and file I/O, and --cpu-prof cannot see them;
//   prof   NODE_OPTIONS="--cpu-prof --cpu-prof-dir=DIR": one .cpuprofile per JavaScript thread (main
//          and every worker thread), summarised by bench/cpu-profile.mjs's categories. V8 samples
//          each thread on a wall clock: on a loaded machine a thread's descheduled time is charged
//          to whatever it was running, so the sampled total can exceed the thread's CPU;
//   perf   (--perf; default when `perf` is installed and this runs as root) `perf record -F 999 -g`
//          of the process and all its threads with node --perf-basic-prof, summarised by
//          bench/perf-where.mjs (each sample by its whole call chain; CPU time only, kernel
//          included, every thread).
// Categories of both are mapped onto one list (read, decompress, compress, hash, page checksum,
// copy, write, fsync, open/close/metadata, messaging, GC, start-up, JIT, JS other, ...).
//
// Method, per dataset (one fresh PostgreSQL 15 cluster, `initdb --data-checksums`):
//  1. load (pgbench -i -s SCALE, or RANDOM_GB of random base64 rows below the TOAST threshold),
//     VACUUM ANALYZE, CHECKPOINT; archive_command pushes every segment to pgark and pgBackRest.
//  2. full backups: pgark per variant, then pgBackRest.
//  3. restores of the last pgark full backup (--jobs) into an empty directory per variant, then
//     pgBackRest's restore of its full backup; each restored directory is removed afterwards.
//  4. incrementals: per pgark variant one round of change (pgbench -t INCR_TX -c 2 -j 2, or an
//     UPDATE of 1 % of the random rows), then pgark's incremental and pgBackRest's (so both store
//     the same change); the pgBackRest round paired with the plain pgark run is the peer.
//  5. agent: archive_command = /bin/false, load until SEGMENTS segments are ready (pgbench dataset:
//     bench/lib-pg.mjs's backlog mix, TPC-B + bulk inserts, the WAL of bench/agent.mjs's drains;
//     random dataset: inserts of random base64 rows), the ready segments copied into a scratch
//     pg_wal with .ready files; `pgark agent` stores them into a fresh repository (per variant, plus
//     one idle agent for its start-up cost), stopped (SIGTERM) once every segment has its push
//     record. The peer: pgBackRest archive-push with --archive-async (process-max = --jobs) drains
//     the cluster's real backlog; its CPU = the archive_command calls (GNU time per call) + its
//     detached async process and its local processes (utime + stime of each, or the async process's
//     cutime + cstime for its waited-for locals when larger; from /proc every 20 ms).
// Writes bench/results/profile.md (text above the GENERATED marker is kept).
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Cluster as BaseCluster, benchConf, drain, initCluster, loadDataset, makeBacklog, readyFiles, switchAndWaitArchived as switchAndWaitArchivedOf, BACKLOG_BULK_SQL, BACKLOG_TABLE_SQL, backlogPgbenchArgs, RANDOM_BYTES_PER_ROW } from './lib-pg.mjs';
import {
  asPgArgv,
  checkPgarkReadableByPostgres,
  createBudget,
  createCleanup,
  createRun,
  environmentLines,
  f2,
  fmtMB,
  fmtMiB,
  freePort,
  makeTmpRoot,
  MB,
  mkPgDir,
  NODE,
  parseBenchArgs,
  PG_BIN,
  PGBACKREST_NEWEST,
  pgarkRepoCreate,
  pidsWhere,
  requireRootAndFiles,
  ROOT,
  rssWrap,
  sh,
  shq,
  sleep,
  sq,
  TIME,
  timeRecords,
  treeBytes,
  writeGenerated,
  writePgbackrestConf,
  writePgFile,
} from './lib-proc.mjs';
import { profileTotals } from './cpu-profile.mjs';
import { whereSeconds } from './perf-where.mjs';

const MARKER = '<!-- GENERATED: everything below is rewritten by bench/profile.mjs -->';
const STANZA = 'bench';
const args = parseBenchArgs(
  ['--keep', '--no-write', '--perf', '--no-perf'],
  ['--scale', '--random-gb', '--datasets', '--ops', '--jobs', '--segments', '--incr-tx', '--pgbackrest', '--prof-dir', '--target-dir', '--budget-sec', '--out'],
);
const SCALE = Number(args.value('--scale', '10'));
const RANDOM_GB = Number(args.value('--random-gb', '0.15'));
const DATASETS = args.value('--datasets', 'pgbench,random').split(',').filter(Boolean);
const OPS = args.value('--ops', 'full,restore,incr,agent').split(',').filter(Boolean);
const JOBS = Number(args.value('--jobs', '2'));
const SEGMENTS = Number(args.value('--segments', '16'));
const INCR_TX = Number(args.value('--incr-tx', '1500'));
const PEER_BIN = args.value('--pgbackrest', (process.env.PGARK_BENCH_PGBACKREST ?? '').split(',').filter(Boolean)[0] ?? PGBACKREST_NEWEST);
const KEEP = args.has('--keep');
/** --target-dir DIR: restores go there (another file system), else next to the repositories. */
const TARGET_DIR = args.value('--target-dir', undefined);
const WRITE = !args.has('--no-write');
const RESULTS = args.value('--out', join(ROOT, 'bench/results/profile.md'));
const TOTAL_BUDGET_MS = Number(args.value('--budget-sec', '900')) * 1000;
const COMMAND_TIMEOUT_MS = 10 * 60_000;
const perfUsable = () => process.getuid() === 0 && spawnSync('perf', ['--version'], { stdio: 'ignore' }).status === 0;
const PERF = args.has('--no-perf') ? false : args.has('--perf') ? true : perfUsable();
const VARIANTS = ['plain', 'prof', ...(PERF ? ['perf'] : [])];
for (const [k, v] of Object.entries({ SCALE, RANDOM_GB, JOBS, SEGMENTS, INCR_TX, TOTAL_BUDGET_MS })) {
  if (!Number.isFinite(v) || v <= 0) {
    console.error(`invalid ${k}: ${v}`);
    process.exit(2);
  }
}
for (const d of DATASETS) if (d !== 'pgbench' && d !== 'random') (console.error(`unknown dataset ${d} (pgbench, random)`), process.exit(2));
for (const o of OPS) if (!['full', 'restore', 'incr', 'agent'].includes(o)) (console.error(`unknown operation ${o} (full, restore, incr, agent)`), process.exit(2));
requireRootAndFiles('bench/profile.mjs', [join(PG_BIN, 'initdb'), join(PG_BIN, 'pgbench'), TIME, join(ROOT, 'dist/src/cli/main.js'), PEER_BIN]);
if (PERF && !perfUsable()) (console.error('--perf: perf is not installed (linux-perf) or this does not run as root'), process.exit(2));

const peerVersion = /pgBackRest ([\d.]+)/.exec(sh(PEER_BIN, ['version']))?.[1] ?? '?';
const [pMaj, pMin] = peerVersion.split('.').map(Number);
const PEER_BUNDLE = pMaj > 2 || (pMaj === 2 && pMin >= 46);
const PEER_NAME = `pgBackRest ${peerVersion}${PEER_BUNDLE ? ' (bundle+block)' : ''}`;

const budget = createBudget(TOTAL_BUDGET_MS);
const { started, log, bounded } = budget;
const startLoad = loadavg();
const loads = [];
const run = createRun(budget);
const tmpRoot = makeTmpRoot('/tmp/pgark-profilebench-');
const PROF_ROOT = args.value('--prof-dir', join(tmpRoot, 'profiles'));
const clusters = new Set();
const ctx = { tmpRoot, run, bounded, log, clusters };
class Cluster extends BaseCluster {
  constructor(name, dataDir, port) {
    super(ctx, name, dataDir, port);
  }
}
const { cleanup } = createCleanup({ tmpRoot, keep: KEEP, log, before: [async () => { for (const c of [...clusters]) await c.stop('immediate'); }], budgetMs: TOTAL_BUDGET_MS, graceMs: 120_000 });
const LAUNCHER = join(ROOT, 'bin', 'pgark');

// ---------------------------------------------------------------------------
// Per-thread CPU of a process from /proc (every 50 ms; a thread that exits loses its last < 50 ms)
// ---------------------------------------------------------------------------

const TICK = Number(sh('getconf', ['CLK_TCK'])) || 100;
function threadKind(pid, tid, comm) {
  if (tid === pid) return 'main thread (JS)';
  if (comm === 'WorkerThread') return 'worker threads (JS)';
  if (comm === 'libuv-worker') return "libuv pool (lz4-napi, fs, crypto's async work)";
  if (comm === 'V8Worker' || comm === 'DelayedTaskSche') return 'V8 platform (concurrent GC, compilers)';
  if (/ProfEvnt/.test(comm)) return 'the CPU profiler itself';
  return `other threads (${comm})`;
}
function threadSampler(getPid) {
  const last = new Map(); // tid -> {kind, secs}
  let pid = null;
  const tick = () => {
    pid ??= getPid();
    if (pid == null) return;
    let tids;
    try {
      tids = readdirSync(`/proc/${pid}/task`);
    } catch {
      return;
    }
    for (const t of tids) {
      try {
        const stat = readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8');
        const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
        const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        const secs = (Number(f[11]) + Number(f[12])) / TICK; // utime, stime
        last.set(t, { kind: threadKind(pid, Number(t), comm), secs });
      } catch {
        /* gone */
      }
    }
  };
  const timer = setInterval(tick, 50);
  return {
    stop() {
      clearInterval(timer);
      const by = new Map();
      for (const { kind, secs } of last.values()) by.set(kind, (by.get(kind) ?? 0) + secs);
      return { by, threads: last.size };
    },
  };
}
/** The first child of pid (GNU time's child: the launcher, which execs node, so the node process). */
function childOf(pid) {
  try {
    const c = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    return c[0] ?? null;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------
// Running pgark variants and the peer
// ---------------------------------------------------------------------------

let profSeq = 0;
/**
 * One pgark command as postgres through the launcher, in a variant; `until` (optional) is polled
 * every 50 ms: when it returns true the node process gets SIGTERM (the agent). Returns
 * {ok, wall, cpu, rssKiB, threads, prof, perf, stderr}.
 */
async function pgarkRun(label, variant, pgarkArgs, { env = {}, until, timeoutMs = COMMAND_TIMEOUT_MS } = {}) {
  const dir = mkPgDir(join(tmpRoot, 'time'));
  const timeFile = join(dir, `${++profSeq}.txt`);
  writePgFile(timeFile, '');
  const nodeEnv = { PGARK_NODE: NODE, ...env };
  let profDir;
  let perfData;
  if (variant === 'prof') {
    mkPgDir(PROF_ROOT);
    profDir = mkPgDir(join(PROF_ROOT, `${profSeq}-${label.replace(/[^A-Za-z0-9]+/g, '-')}`));
    nodeEnv.NODE_OPTIONS = `--cpu-prof --cpu-prof-dir=${profDir}`;
  }
  if (variant === 'perf') {
    mkPgDir(PROF_ROOT);
    perfData = join(PROF_ROOT, `${profSeq}-${label.replace(/[^A-Za-z0-9]+/g, '-')}.perf.data`);
    nodeEnv.NODE_OPTIONS = '--perf-basic-prof';
  }
  const words = [LAUNCHER, ...pgarkArgs];
  const envWords = Object.entries(nodeEnv).map(([k, v]) => `${k}=${v}`);
  let cmd;
  let argv;
  let asPg;
  if (variant === 'perf') {
    // perf as root around the postgres-owned command (perf's own CPU is not in its samples)
    const [f, a] = asPgArgv('/usr/bin/env', [...envWords, ...words]);
    [cmd, argv, asPg] = ['perf', ['record', '-F', '999', '-g', '-q', '-o', perfData, '--', f, ...a], false];
  } else [cmd, argv, asPg] = [TIME, ['-f', '%M %e %U %S', '-o', timeFile, '/usr/bin/env', ...envWords, ...words], true];
  log(`${label} [${variant}]: pgark ${pgarkArgs.join(' ')}`);
  let spawned = null;
  const sampler = variant === 'plain' ? threadSampler(() => (spawned ? childOf(spawned.pid) : null)) : null;
  const t0 = performance.now();
  const p = run(cmd, argv, { asPg, env: { HOME: '/var/lib/postgresql', ...env }, timeoutMs, allowFail: true, onSpawn: (c) => (spawned = c) });
  let stoppedAt = null;
  let perfPid = null;
  if (variant === 'perf') {
    (async () => {
      while (perfPid == null && spawned?.exitCode == null) {
        perfPid = spawned ? childOf(spawned.pid) : null;
        await sleep(20);
      }
    })();
  }
  if (until) {
    let done = false;
    p.finally(() => (done = true));
    while (!done) {
      if (await until()) {
        stoppedAt = performance.now();
        const nodePid = childOf(spawned.pid);
        if (nodePid) process.kill(nodePid, 'SIGTERM');
        break;
      }
      await sleep(50);
    }
  }
  const r = await p;
  const wall = ((stoppedAt ?? performance.now()) - t0) / 1000;
  const threads = sampler?.stop() ?? null;
  const ok = !r.timedOut && (until ? stoppedAt != null && (r.code === 0 || r.code === 143 || r.signal === 'SIGTERM') : r.code === 0);
  const rec = timeRecords(timeFile).at(-1);
  const res = { label, variant, ok, wall, cpu: rec ? rec[2] + rec[3] : null, rssKiB: rec?.[0] ?? null, threads, stdout: r.stdout, stderr: r.stderr, code: r.code };
  if (!ok) {
    log(`${label} [${variant}]: FAILED (${r.timedOut ? 'timed out' : `exit ${r.code ?? r.signal}`})\n${r.stderr.slice(-3000)}`);
    return res;
  }
  if (variant === 'prof') {
    const files = readdirSync(profDir).filter((f) => f.endsWith('.cpuprofile')).map((f) => join(profDir, f));
    res.prof = { files: files.length, ...profileTotals(files) };
    if (files.length < 1) res.ok = false;
  }
  if (variant === 'perf') {
    res.perf = whereSeconds(perfData, 999);
    if (perfPid) rmSync(`/tmp/perf-${perfPid}.map`, { force: true }); // node --perf-basic-prof's JIT symbol map
    if (!KEEP && !args.has('--prof-dir')) rmSync(perfData, { force: true });
  }
  log(`${label} [${variant}]: ${wall.toFixed(2)} s${res.cpu != null ? `, CPU ${res.cpu.toFixed(2)} s, peak RSS ${fmtMiB(res.rssKiB)} MiB` : ''}${res.prof ? `, ${res.prof.files} profiles, sampled ${(res.prof.total / 1e6).toFixed(2)} s` : ''}${res.perf ? `, perf ${res.perf.seconds.toFixed(2)} s` : ''}`);
  return res;
}

/** The peer's command as postgres under GNU time (CPU includes the local processes it waits for). */
async function peerRun(label, peerArgs) {
  const dir = mkPgDir(join(tmpRoot, 'time'));
  const timeFile = join(dir, `${++profSeq}.txt`);
  writePgFile(timeFile, '');
  spawnSync('sync', [], { stdio: 'ignore', timeout: 120_000 });
  log(`${label} [${PEER_NAME}]`);
  const t0 = performance.now();
  const r = await run(TIME, ['-f', '%M %e %U %S', '-o', timeFile, PEER_BIN, ...peerArgs], { asPg: true, timeoutMs: COMMAND_TIMEOUT_MS, allowFail: true });
  const wall = (performance.now() - t0) / 1000;
  const rec = timeRecords(timeFile).at(-1);
  const ok = r.code === 0 && !r.timedOut;
  if (!ok) log(`${label} [peer]: FAILED (exit ${r.code}):\n${(r.stderr + r.stdout).slice(-2000)}`);
  else log(`${label} [peer]: ${wall.toFixed(2)} s, CPU ${(rec[2] + rec[3]).toFixed(2)} s`);
  return { ok, wall, cpu: rec ? rec[2] + rec[3] : null, rssKiB: rec?.[0] ?? null };
}

// ---------------------------------------------------------------------------
// Datasets
// ---------------------------------------------------------------------------

async function changeForIncr(name, cl, round) {
  if (name === 'pgbench') {
    const r = await run(join(PG_BIN, 'pgbench'), ['-n', '-t', String(INCR_TX), '-c', '2', '-j', '2'], { env: cl.env, timeoutMs: COMMAND_TIMEOUT_MS });
    return `pgbench -n -t ${INCR_TX} -c 2 -j 2 (${/number of transactions actually processed: (\d+)/.exec(r.stdout)?.[1] ?? '?'} transactions)`;
  }
  const sql = `UPDATE random_data SET payload = encode(gen_random_bytes(${RANDOM_BYTES_PER_ROW}), 'base64') WHERE id % 100 = ${round % 100}`;
  const n = await cl.psql(`WITH u AS (${sql} RETURNING 1) SELECT count(*) FROM u;`, COMMAND_TIMEOUT_MS);
  return `${sql} (${n} rows)`;
}
const RANDOM_FILL_SQL = `INSERT INTO wal_fill SELECT g, encode(gen_random_bytes(${RANDOM_BYTES_PER_ROW}), 'base64') FROM generate_series(1, 2000) g;\n`;

// ---------------------------------------------------------------------------
// One dataset
// ---------------------------------------------------------------------------

const results = [];
async function runDataset(name) {
  const R = { name, ops: {}, notes: [] };
  results.push(R);
  const dsDir = mkPgDir(join(tmpRoot, name));
  const dataDir = join(dsDir, 'data');
  const cl = new Cluster(name, dataDir, await freePort());
  const note = () => loads.push(loadavg()[0]);
  try {
    await initCluster({ run }, cl, { checksums: true, conf: benchConf(cl, { max_wal_senders: '10' }), comment: 'profile bench' });
    await cl.start();
    log(`[${name}] loading`);
    R.dataset = await loadDataset(run, cl, name, { scale: SCALE, randomGb: RANDOM_GB, timeoutMs: COMMAND_TIMEOUT_MS });
    log(`[${name}] loaded in ${R.dataset.loadSecs.toFixed(1)} s: ${fmtMB(R.dataset.dbBytes)} MB`);
    const pgarkRepo = await pgarkRepoCreate(run, mkPgDir(join(dsDir, 'repo-pgark')));
    const peerRepo = mkPgDir(join(dsDir, 'repo-peer'));
    const { conf } = writePgbackrestConf(join(dsDir, 'peer'), { repo: peerRepo, pgPath: dataDir, port: cl.port, sockDir: cl.sockDir, stanza: STANZA, jobs: JOBS, bundle: PEER_BUNDLE });
    await run(PEER_BIN, [`--config=${conf}`, `--stanza=${STANZA}`, 'stanza-create'], { asPg: true, timeoutMs: 120_000 });
    const pushCmd = [['/usr/bin/env', `PGARK_NODE=${NODE}`, LAUNCHER, 'wal-push', '%p', '--repo', pgarkRepo, '--stanza', STANZA].map(shq).join(' '), [PEER_BIN, `--config=${conf}`, `--stanza=${STANZA}`, 'archive-push', '%p'].map(shq).join(' ')].join(' && ');
    await cl.psql(`ALTER SYSTEM SET archive_command = ${sq(pushCmd)}; SELECT pg_reload_conf();`);
    await sleep(300);
    const waitArchived = () => switchAndWaitArchivedOf(ctx, cl, 5 * 60_000);
    await waitArchived();
    const backupArgs = (type) => ['backup', '--type', type, '--repo', pgarkRepo, '--stanza', STANZA, '--pgdata', dataDir, '--jobs', String(JOBS), '--no-progress'];
    const peerBackup = (type) => [`--config=${conf}`, `--stanza=${STANZA}`, `--type=${type}`, 'backup'];

    if (OPS.includes('full') || OPS.includes('restore') || OPS.includes('incr')) {
      const op = (R.ops.full = { runs: {} });
      for (const v of VARIANTS) {
        await waitArchived();
        note();
        op.runs[v] = await pgarkRun(`${name} full backup`, v, backupArgs('full'), { env: cl.env });
      }
      await waitArchived();
      op.peer = await peerRun(`${name} full backup`, peerBackup('full'));
    }
    if (OPS.includes('restore')) {
      const op = (R.ops.restore = { runs: {} });
      for (const v of VARIANTS) {
        const target = mkPgDir(join(TARGET_DIR ?? dsDir, `${name}-restore-${v}`));
        spawnSync('sync', [], { stdio: 'ignore', timeout: 120_000 });
        note();
        op.runs[v] = await pgarkRun(`${name} restore`, v, ['restore', 'latest', '--repo', pgarkRepo, '--stanza', STANZA, '--pgdata', target, '--jobs', String(JOBS)]);
        if (op.runs[v].ok && R.restoredBytes === undefined) R.restoredBytes = treeBytes(target).bytes;
        rmSync(target, { recursive: true, force: true });
      }
      const target = mkPgDir(join(TARGET_DIR ?? dsDir, `${name}-restore-peer`));
      op.peer = await peerRun(`${name} restore`, [`--config=${conf}`, `--stanza=${STANZA}`, `--pg1-path=${target}`, 'restore']);
      rmSync(target, { recursive: true, force: true });
    }
    if (OPS.includes('incr')) {
      const op = (R.ops.incr = { runs: {}, changes: [], peerRounds: [] });
      let round = 0;
      for (const v of VARIANTS) {
        op.changes.push(await changeForIncr(name, cl, round++));
        await waitArchived();
        note();
        op.runs[v] = await pgarkRun(`${name} incr backup`, v, backupArgs('incr'), { env: cl.env });
        await waitArchived();
        const p = await peerRun(`${name} incr backup`, peerBackup('incr'));
        op.peerRounds.push(p);
        if (v === 'plain') op.peer = p;
      }
    }
    if (OPS.includes('agent')) {
      const op = (R.ops.agent = { runs: {} });
      let bulk = null;
      let pgbenchArgs;
      if (name === 'pgbench') {
        await cl.psql(BACKLOG_TABLE_SQL);
        bulk = join(dsDir, 'bulk.sql');
        writePgFile(bulk, BACKLOG_BULK_SQL);
        pgbenchArgs = backlogPgbenchArgs(bulk);
        op.load = `pgbench ${pgbenchArgs.join(' ').replace(bulk, 'BULK')} (BULK: bench/lib-pg.mjs BACKLOG_BULK_SQL)`;
      } else {
        await cl.psql('CREATE TABLE wal_fill (id bigint, payload text);');
        bulk = join(dsDir, 'fill.sql');
        writePgFile(bulk, RANDOM_FILL_SQL);
        pgbenchArgs = ['-n', '-c', '2', '-j', '2', '-f', bulk];
        op.load = `pgbench -n -c 2 -j 2 -f FILL (FILL: ${RANDOM_FILL_SQL.trim()})`;
      }
      const backlog = await makeBacklog(ctx, cl, { label: name, segments: SEGMENTS, pgbenchArgs, timeoutMs: 6 * 60_000 });
      const segs = readyFiles(dataDir).slice(0, SEGMENTS);
      op.segments = segs.length;
      op.walDir = mkPgDir(join(dsDir, 'wal-sample'));
      for (const s of segs) cpSync(join(dataDir, 'pg_wal', s), join(op.walDir, s));
      const agentOnce = async (v, idle) => {
        const w = mkPgDir(join(dsDir, `agent-${v}${idle ? '-idle' : ''}`));
        const pgdata = mkPgDir(join(w, 'pgdata'));
        mkPgDir(join(pgdata, 'pg_wal'));
        mkPgDir(join(pgdata, 'pg_wal', 'archive_status'));
        for (const s of idle ? [] : segs) {
          cpSync(join(op.walDir, s), join(pgdata, 'pg_wal', s));
          writePgFile(join(pgdata, 'pg_wal', 'archive_status', `${s}.ready`), '');
        }
        spawnSync('chown', ['-R', 'postgres:postgres', pgdata]);
        const repo = await pgarkRepoCreate(run, mkPgDir(join(w, 'repo')));
        const pushed = join(pgdata, 'pg_wal', '.pgark', 'pushed');
        const status = join(pgdata, 'pg_wal', '.pgark', 'agent', 'status.json');
        const until = idle ? async () => existsSync(status) : async () => existsSync(pushed) && segs.every((s) => existsSync(join(pushed, s)));
        note();
        const r = await pgarkRun(`${name} agent${idle ? ' (idle)' : ''}`, v, ['agent', '--pgdata', pgdata, '--repo', repo, '--stanza', 'main', '--poll-ms', '200'], { until });
        if (r.ok && !idle) r.stored = treeBytes(repo).bytes;
        rmSync(w, { recursive: true, force: true });
        return r;
      };
      op.idle = await agentOnce('plain', true);
      for (const v of VARIANTS) op.runs[v] = await agentOnce(v, false);
      // The peer drains the cluster's real backlog, archive-push --archive-async
      const callTimes = join(dsDir, 'peer-calls.txt');
      writePgFile(callTimes, '');
      // pid -> {role, self: utime + stime, children: cutime + cstime}, last seen (every 20 ms)
      const detached = new Map();
      const asyncPred = (c) => c.includes(conf) && /archive-push:(async|local)/.test(c);
      const sampler = setInterval(() => {
        for (const pid of pidsWhere(asyncPred)) {
          try {
            const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
            const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
            const role = /archive-push:async/.test(readFileSync(`/proc/${pid}/cmdline`, 'utf8')) ? 'async' : 'local';
            detached.set(pid, { role, self: (Number(f[11]) + Number(f[12])) / TICK, children: (Number(f[13]) + Number(f[14])) / TICK });
          } catch {
            /* gone */
          }
        }
      }, 20);
      const peerCmd = rssWrap(callTimes, [PEER_BIN, `--config=${conf}`, `--stanza=${STANZA}`, '--archive-async', 'archive-push', '%p']);
      note();
      log(`${name} agent [${PEER_NAME} archive-push --archive-async]: drain of ${backlog.count} segments`);
      let d;
      try {
        d = await drain(cl, peerCmd, backlog, { timeoutMs: 6 * 60_000 });
      } finally {
        clearInterval(sampler);
      }
      await sleep(300);
      const calls = timeRecords(callTimes);
      const callsCpu = calls.reduce((a, r) => a + r[2] + r[3], 0);
      // The async process's own CPU, and its local processes': each local's last sample, or the
      // async process's cutime + cstime (the locals it waited for) when that is larger (a local's
      // last < 20 ms, or a local never seen, are in it only if the async process was sampled after).
      const sum = (role, k) => [...detached.values()].filter((e) => e.role === role).reduce((a, e) => a + e[k], 0);
      const detachedCpu = sum('async', 'self') + Math.max(sum('async', 'children'), sum('local', 'self'));
      op.peer = { ok: d.archived >= backlog.count, wall: d.secs, cpu: callsCpu + detachedCpu, callsCpu, detachedCpu, calls: calls.length, segments: backlog.count };
      log(`${name} agent [peer]: ${d.secs.toFixed(2)} s, CPU ${op.peer.cpu.toFixed(2)} s (calls ${callsCpu.toFixed(2)} + async ${detachedCpu.toFixed(2)}: own ${sum('async', 'self').toFixed(2)}, waited-for locals ${sum('async', 'children').toFixed(2)}, locals seen ${sum('local', 'self').toFixed(2)})`);
      if (![...detached.values()].some((e) => e.role === 'async')) R.notes.push(`${PEER_NAME} async drain: no archive-push:async process was seen; its CPU is missing`);
    }
  } catch (e) {
    R.error = e;
    log(`[${name}] FAILED: ${e.stack ?? e}`);
  } finally {
    await cl.stop('immediate');
    if (!KEEP) rmSync(dsDir, { recursive: true, force: true, maxRetries: 3 });
  }
}

// ---------------------------------------------------------------------------
// Categories: both profilers' categories on one list
// ---------------------------------------------------------------------------

/** cpu-profile.mjs category -> the report's category (op: full/incr/restore/agent). */
function fromCpuProf(cat, op) {
  const writes = op === 'restore' ? 'data directory' : 'repository';
  const reads = op === 'restore' ? 'repository' : op === 'agent' ? 'WAL segments' : 'data directory';
  const m = {
    GC: 'GC',
    '(program)': 'native outside JS frames ((program))',
    'hash (sha256)': 'hash (sha256)',
    'page checksum (WASM)': 'page checksum',
    'WAL segment checks (JS)': 'WAL page checks',
    'compress (lz4, native)': 'compress (lz4)',
    'decompress (lz4 block decode, JS)': 'decompress (lz4)',
    'lz4 frame parsing (JS)': op === 'restore' ? 'decompress (lz4)' : 'compress (lz4)',
    'write (fs)': `write (${writes})`,
    fsync: 'fsync',
    'read (fs)': `read (${reads})`,
    'open / close / stat / mkdir / rename (fs)': 'open / close / metadata',
    'copy / Buffer operations': 'copy (memory)',
    'messaging (postMessage, worker)': 'messaging (threads)',
    'child processes (spawn, execFile)': 'child processes (spawn)',
    'PostgreSQL client (pg)': 'PostgreSQL client (pg)',
    'streams machinery': 'streams / promises / async glue',
    'promises / async glue': 'streams / promises / async glue',
    'startup / module loading': 'start-up (Node, modules)',
    'JSON parse / stringify': 'JSON parse / stringify',
    'manifests and catalog (JS)': 'manifests and catalog (JS)',
  };
  return m[cat] ?? (/^pgark|restore worker|object stream|node internals/.test(cat) ? 'JS other (pgark, node internals)' : 'native / V8 runtime other');
}
/** perf-where.mjs category -> the report's category. */
function fromPerf(cat, op) {
  const writes = op === 'restore' ? 'data directory' : 'repository';
  const reads = op === 'restore' ? 'repository' : op === 'agent' ? 'WAL segments' : 'data directory';
  if (cat === 'GC') return 'GC';
  if (/^hash/.test(cat)) return 'hash (sha256)';
  if (/lz4/.test(cat)) return op === 'restore' ? 'decompress (lz4)' : 'compress (lz4)';
  if (/^page checksum/.test(cat)) return 'page checksum';
  if (/^messaging/.test(cat)) return 'messaging (threads)';
  if (/^read/.test(cat)) return `read (${reads})`;
  if (/^write/.test(cat)) return `write (${writes})`;
  if (cat === 'fsync') return 'fsync';
  if (/^open/.test(cat)) return 'open / close / metadata';
  if (/^JIT/.test(cat)) return 'JIT compilers';
  if (/^startup/.test(cat)) return 'start-up (Node, modules)';
  if (/^manifests/.test(cat)) return 'manifests and catalog (JS)';
  if (/^memory/.test(cat)) return 'memory (page faults, mmap)';
  if (/^copy/.test(cat)) return 'copy (memory)';
  if (/^malloc/.test(cat)) return 'malloc / free';
  if (/^scheduling/.test(cat)) return 'scheduling';
  if (/^WAL page/.test(cat)) return 'WAL page checks';
  if (/^JS/.test(cat)) return 'JS other (pgark, node internals)';
  if (/^kernel/.test(cat)) return 'kernel other';
  return 'native / V8 runtime other';
}
const ORDER = ['read', 'decompress', 'compress', 'hash', 'page checksum', 'WAL page', 'copy', 'write', 'fsync', 'open', 'messaging', 'GC', 'start-up', 'JIT', 'child', 'PostgreSQL', 'JSON', 'manifests', 'streams', 'JS other', 'memory', 'malloc', 'scheduling', 'kernel', 'native'];
const orderOf = (c) => {
  const i = ORDER.findIndex((p) => c.startsWith(p));
  return i < 0 ? ORDER.length : i;
};

// ---------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------

const OP_TITLES = { full: 'full backup', incr: 'incremental backup', restore: `restore (--jobs ${JOBS})`, agent: 'agent storing a backlog' };
const s2 = (x) => (x == null || !Number.isFinite(x) ? 'n/a' : x.toFixed(2));
const ms = (s) => (s == null ? '—' : String(Math.round(s * 1000)));
const pct = (a, b) => (a == null || !b ? '—' : `${((100 * a) / b).toFixed(1)} %`);

/** Rows {cat, profS, perfS} of an operation. */
function categoryRows(name, op) {
  const rows = new Map();
  const add = (cat, k, s) => {
    const r = rows.get(cat) ?? { cat, prof: 0, perf: 0 };
    r[k] += s;
    rows.set(cat, r);
  };
  const p = op.runs.prof?.prof;
  if (p) for (const [c, us] of p.by) add(fromCpuProf(c, name), 'prof', us / 1e6);
  const q = op.runs.perf?.perf;
  if (q) for (const [c, s] of q.by) add(fromPerf(c, name), 'perf', s);
  return [...rows.values()].sort((a, b) => orderOf(a.cat) - orderOf(b.cat) || b.perf + b.prof - (a.perf + a.prof));
}

function opSection(R, key) {
  const op = R.ops[key];
  const out = [`### ${R.name}: ${OP_TITLES[key]}`, ''];
  const plain = op.runs.plain;
  const prof = op.runs.prof;
  const perfRun = op.runs.perf;
  if (op.changes) out.push(`Change before each incremental (one round per pgark run, the peer's incremental right after): ${op.changes.map((c) => `\`${c}\``).join('; ')}.`, '');
  if (key === 'agent') out.push(`Backlog: ${op.segments} segments of \`${op.load}\`; pgark agent alone on a copy of them (scratch pg_wal, fresh repository, \`--poll-ms 200\`, default jobs), stopped once all are stored; idle agent (start-up + shut-down, nothing to store): ${op.idle?.ok ? `${s2(op.idle.cpu)} s CPU` : 'failed'}. Peer: ${PEER_NAME} \`archive-push --archive-async\` (process-max ${JOBS}) as archive_command draining the cluster's backlog: CPU = ${op.peer ? `calls ${s2(op.peer.callsCpu)} s (${op.peer.calls} calls) + async process ${s2(op.peer.detachedCpu)} s` : 'n/a'}.`, '');
  const row = (what, r) => `| ${what} | ${r?.ok ? s2(r.wall) : 'failed'} | ${r?.ok ? s2(r.cpu) : '—'} | ${r?.ok && r.rssKiB ? fmtMiB(r.rssKiB) : '—'} |`;
  out.push('| run | wall s | CPU s (user+sys) | peak RSS MiB |', '|---|---|---|---|');
  out.push(row('pgark (plain)', plain), row('pgark under --cpu-prof', prof));
  if (perfRun) out.push(`| pgark under perf record | ${perfRun.ok ? s2(perfRun.wall) : 'failed'} | ${perfRun.ok ? `${s2(perfRun.perf.seconds)} (samples)` : '—'} | — |`);
  out.push(row(PEER_NAME, op.peer));
  out.push('', `pgark ÷ ${PEER_NAME}: CPU ${plain?.ok && op.peer?.ok ? f2(plain.cpu / op.peer.cpu) : 'n/a'}, wall ${plain?.ok && op.peer?.ok ? f2(plain.wall / op.peer.wall) : 'n/a'} (wall on a loaded machine is noise).`, '');
  if (plain?.threads) {
    const tot = [...plain.threads.by.values()].reduce((a, b) => a + b, 0);
    out.push(`CPU by thread of the plain run (/proc/PID/task every 50 ms, ${plain.threads.threads} threads; Σ ${s2(tot)} s of the ${s2(plain.cpu)} s GNU time counted):`, '', '| thread | CPU ms | share |', '|---|---|---|');
    for (const [k, v] of [...plain.threads.by].filter(([, v]) => v > 0).sort((a, b) => b[1] - a[1])) out.push(`| ${k} | ${ms(v)} | ${pct(v, tot)} |`);
    out.push('');
  }
  const rows = categoryRows(key, op);
  if (rows.length) {
    const profTotal = prof?.prof ? prof.prof.total / 1e6 : null;
    const perfTotal = perfRun?.perf?.seconds ?? null;
    const peerCpu = op.peer?.ok ? op.peer.cpu : null;
    out.push(
      `Where the time goes. --cpu-prof: ${prof?.prof ? `${prof.prof.files} JavaScript threads, ${s2(profTotal)} s sampled outside idle (idle ${s2(prof.prof.idle / 1e6)} s) against ${s2(prof.cpu)} s CPU of that run` : 'n/a'}. perf: ${perfTotal != null ? `${s2(perfTotal)} s of CPU samples, every thread` : 'not run'}. "÷ peer" = the category's perf ms ÷ ${PEER_NAME}'s whole CPU for the operation.`,
      '',
      `| category | --cpu-prof ms | % of sampled | perf ms | % of pgark CPU (perf) | ÷ peer CPU |`,
      '|---|---|---|---|---|---|',
    );
    for (const r of rows) out.push(`| ${r.cat} | ${profTotal != null ? ms(r.prof) : '—'} | ${pct(r.prof, profTotal)} | ${perfTotal != null ? ms(r.perf) : '—'} | ${pct(r.perf, perfTotal)} | ${perfTotal != null && peerCpu ? f2(r.perf / peerCpu) : '—'} |`);
    out.push(`| **total** | **${profTotal != null ? ms(profTotal) : '—'}** | | **${perfTotal != null ? ms(perfTotal) : '—'}** | | ${perfTotal != null && peerCpu ? `**${f2(perfTotal / peerCpu)}**` : '—'} |`);
    if (prof?.prof) {
      out.push('', '<details><summary>top functions (--cpu-prof self time)</summary>', '', '| function | ms |', '|---|---|');
      for (const [k, us] of [...prof.prof.top].sort((a, b) => b[1] - a[1]).slice(0, 12)) out.push(`| \`${k.replace(/\|/g, '\\|')}\` | ${ms(us / 1e6)} |`);
      out.push('', '</details>');
    }
  }
  out.push('');
  return out.join('\n');
}

function top5(R, key) {
  const op = R.ops[key];
  const rows = categoryRows(key, op);
  const usePerf = rows.some((r) => r.perf > 0);
  const tot = rows.reduce((a, r) => a + (usePerf ? r.perf : r.prof), 0);
  return rows
    .sort((a, b) => (usePerf ? b.perf - a.perf : b.prof - a.prof))
    .slice(0, 5)
    .map((r) => `${r.cat} ${ms(usePerf ? r.perf : r.prof)} (${pct(usePerf ? r.perf : r.prof, tot)})`)
    .join('; ');
}

function report(failure) {
  const out = [MARKER, '', '## Run', '', environmentLines({ started, startLoad, command: `node_modules/.bin/node bench/profile.mjs ${args.argv.join(' ')}` })];
  out.push(`- peer: \`${PEER_BIN}\` = pgBackRest ${peerVersion}${PEER_BUNDLE ? ' (repo1-bundle=y, repo1-block=y)' : ''}, process-max=${JOBS}, lz4; pgark --jobs ${JOBS}, lz4 (default)`);
  out.push(`- 1-minute load average during the run: ${loads.length ? `${Math.min(...loads).toFixed(1)}-${Math.max(...loads).toFixed(1)} (sampled before each pgark run)` : 'n/a'}; at the end ${loadavg()[0].toFixed(2)}`);
  out.push(`- restores into ${TARGET_DIR ? `\`${TARGET_DIR}\`` : "the run's temporary directory"} (${sh('findmnt', ['-n', '-o', 'SOURCE,FSTYPE', '-T', TARGET_DIR ?? '/tmp'])})`);
  out.push(`- variants per operation: ${VARIANTS.join(', ')}${PERF ? '' : ' (perf not run: --no-perf, or perf missing)'}; perf ${sh('perf', ['--version']) || 'missing'}`);
  out.push('- pgark runs as `postgres` through bin/pgark (launcher: MALLOC_ARENA_MAX=2, MALLOC_MMAP_THRESHOLD_=131072, --max-semi-space-size=1 for backup/restore), PGARK_NODE = the shipped Node');
  out.push('');
  if (failure) out.push(`**Run failed:** \`${String(failure.message ?? failure).split('\n')[0]}\``, '');
  out.push(
    'How to read the tables: CPU s = user + sys of the whole process (GNU time), every thread. "CPU by thread" splits the plain run by thread from /proc: libuv\'s pool threads (lz4-napi\'s compression, the fs calls, crypto work made async) and V8\'s platform threads (concurrent marking, compilers) are real CPU that `--cpu-prof` does not sample (it profiles JavaScript threads only). The `--cpu-prof` column is wall-clock sampling of the JavaScript threads without their idle time; on a loaded machine it counts a thread\'s descheduled time where the thread was, so its total can exceed the CPU. The perf column is CPU time of every thread, kernel included (`bench/perf-where.mjs` call-chain categories): use it for shares. On an ext4 file system without a journal (this machine\'s root) "open / close / metadata" of a restore includes ext4\'s skipping of recently freed inodes (bench/restore.mjs, header), for every tool alike; --target-dir restores elsewhere.',
    '',
  );
  out.push('## Summary: top 5 costs per operation (perf where run, else --cpu-prof)', '', `| dataset | operation | pgark CPU s | ${PEER_NAME} CPU s | CPU ratio | top 5 (ms, % of pgark's sampled CPU) |`, '|---|---|---|---|---|---|');
  for (const R of results) {
    for (const key of ['full', 'incr', 'restore', 'agent']) {
      const op = R.ops[key];
      if (!op) continue;
      const p = op.runs.plain;
      out.push(`| ${R.name} | ${OP_TITLES[key]} | ${p?.ok ? s2(p.cpu) : 'failed'} | ${op.peer?.ok ? s2(op.peer.cpu) : 'n/a'} | ${p?.ok && op.peer?.ok ? f2(p.cpu / op.peer.cpu) : 'n/a'} | ${top5(R, key)} |`);
    }
  }
  out.push('');
  for (const R of results) {
    out.push(`## ${R.name}`, '');
    if (R.dataset) out.push(`Dataset: \`${R.dataset.loadCmd}\`, database ${fmtMB(R.dataset.dbBytes)} MB${R.restoredBytes ? `, restored ${fmtMB(R.restoredBytes)} MB` : ''}.`, '');
    if (R.error) out.push(`**Failed:** \`${String(R.error.message ?? R.error).split('\n')[0]}\``, '');
    for (const n of R.notes) out.push(`- ${n}`);
    for (const key of ['full', 'incr', 'restore', 'agent']) if (R.ops[key]) out.push(opSection(R, key));
  }
  return out.join('\n');
}

let failure = null;
try {
  checkPgarkReadableByPostgres();
  log(`temp dir ${tmpRoot}; datasets ${DATASETS.join(', ')}; operations ${OPS.join(', ')}; variants ${VARIANTS.join(', ')}; peer ${PEER_NAME}`);
  for (const ds of DATASETS) await runDataset(ds);
} catch (e) {
  failure = e;
  log(`FAILED: ${e.stack ?? e}`);
} finally {
  await cleanup();
}
const md = report(failure);
console.log(md);
if (WRITE && results.some((R) => Object.keys(R.ops).length)) {
  writeGenerated(RESULTS, MARKER, md, 'Where each second goes: CPU profiles of backup, restore and the agent');
  log(`wrote ${RESULTS}`);
}
const bad = failure || results.some((R) => R.error || Object.values(R.ops).some((op) => Object.values(op.runs).some((r) => !r?.ok) || !op.peer?.ok));
process.exit(bad ? 1 : 0);
