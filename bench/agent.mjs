// Archive agent benchmark (issue 5, deliver item 6): in ONE run, on ONE PostgreSQL 15 cluster
// with the same pgbench load,
//   1. drain rate of a >= 100-segment `.ready` backlog: pgark with `pgark agent` and
//      archive_command = bin/pgark-wal-push, pgBackRest archive-push async (process-max 2) and
//      cp+fsync on the fs repository; pgark agent vs pgBackRest async on s3rver (TLS);
//   2. replay rate of a pg_basebackup -X none copy: restore_command = bin/pgark-wal-fetch
//      (prefetch on) vs pgbackrest archive-get async (and cp as the replay-bound reference);
//   3. per-call latency: bin/pgark-wal-push answering from the agent's record, the full
//      `pgark wal-push`, the shell client falling back to it, pgbackrest archive-push async;
//   4. peak RSS and CPU of the agent.
//
//   npm run bench:agent                   # as root (the cluster runs as the `postgres` OS user)
//   node bench/agent.mjs [--segments 100] [--rounds 2] [--latency-calls 60] [--full-calls 20]
//                        [--agent-jobs N] [--stores fs,s3] [--skip-replay] [--scale 20]
//                        [--phases replay,latency,drain] [--push-client FILE] (development: a subset
//                        of the phases; other archive_command clients for the agent drains, comma-
//                        separated: each round drains with every one) [--drain-tools agent,pgbackrest,cp]
//                        [--fetch-client-base DIR] (development: a second built checkout whose
//                        bin/pgark-wal-fetch replays too, alternating with this one: before/after)
//                        [--budget-sec 900] [--keep] [--out FILE | --no-write]
//                        [--pgbackrest BIN[,BIN...]]
//   smoke: node bench/agent.mjs --segments 12 --rounds 1 --latency-calls 20 --full-calls 5 --stores fs --out /tmp/agent-smoke.md
//
// pgBackRest peers: --pgbackrest (comma-separated) or PGARK_BENCH_PGBACKREST, else Debian's 2.45
// and /work/shared/tools/pgbackrest-2.59.1 when present, each drained and replayed in the same
// run; 2.46 and newer get repo1-bundle=y repo1-block=y (backup options: archive-push and
// archive-get ignore them, so the async archive settings are the same for every version).
// The latency phase and the replay archive (written with archive-push, sync) use the first peer.
//
// Needs: postgresql-15 (+ client), pgbackrest (Debian 2.45), GNU time (/usr/bin/time), openssl,
// the devDependency s3rver, a built pgark (dist/src/agent/agent.js). Writes bench/results/agent.md
// (text above the GENERATED marker is kept). Method: see bench/README.md, "Agent benchmark".
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import {
  appendConf,
  BACKLOG_BULK_SQL,
  BACKLOG_PGBENCH_ARGS,
  BACKLOG_TABLE_SQL,
  backlogPgbenchArgs,
  Cluster as BaseCluster,
  drain as drainBacklog,
  makeBacklog as makeBacklogOf,
  readyFiles,
  SEG,
  segNo,
  setArchiveCommand,
  switchAndWaitArchived,
  benchConf,
  initCluster,
} from './lib-pg.mjs';
import {
  argvOf,
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
  MB,
  makeTmpRoot,
  mkPgDir,
  pgarkRepoCreate,
  NODE,
  PG_BIN,
  PGARK,
  pgbackrestBinaries,
  pidsWhere,
  procTable,
  requireRootAndFiles,
  ROOT,
  shq,
  sleep,
  TIME,
  timeRecords,
  treeBytes,
  writeGenerated,
  writePgFile,
  parseBenchArgs,
  stopWithSignal,
  pkgVersion,
  makeCertificate,
  toolPred,
  waitToolIdle,
} from './lib-proc.mjs';

// ---------------------------------------------------------------------------
// Settings
// ---------------------------------------------------------------------------

const MARKER = '<!-- GENERATED: everything below is rewritten by bench/agent.mjs -->';
const STANZA = 'main';
const PUSH_CLIENT = join(ROOT, 'bin', 'pgark-wal-push');
// Development: the archive_command client of the agent drains (to try a variant of bin/pgark-wal-push).
// Several (comma-separated): every round drains with each of them in turn (before/after runs).
const DRAIN_PUSH_CLIENTS = (() => {
  const i = process.argv.indexOf('--push-client');
  return i >= 0 ? process.argv[i + 1].split(',') : [PUSH_CLIENT];
})();
const DRAIN_PUSH_CLIENT = DRAIN_PUSH_CLIENTS[0];
// Development: only these drains (agent, pgbackrest, cp; default all).
const DRAIN_TOOLS = (() => {
  const i = process.argv.indexOf('--drain-tools');
  return i >= 0 ? process.argv[i + 1].split(',') : ['agent', 'pgbackrest', 'cp'];
})();
const FETCH_CLIENT = join(ROOT, 'bin', 'pgark-wal-fetch');
// Development: another built checkout whose bin/pgark-wal-fetch replays too, alternating with this
// one in the same run on the same archive (before/after comparisons on a loaded machine).
const FETCH_BASE = (() => {
  const i = process.argv.indexOf('--fetch-client-base');
  return i >= 0 ? process.argv[i + 1] : null;
})();
const S3RVER_JS = join(ROOT, 'node_modules/s3rver/bin/s3rver.js');
const BUCKET = 'pgark-bench';
// s3rver's built-in account: a well-known value, still handled as a secret (environment and 0600
// files only, redacted in the report).
const S3_ACCESS_KEY = 'S3RVER';
const S3_SECRET_KEY = 'S3RVER';
const S3_REGION = 'us-east-1';
const SECRET_VARS = new Set(['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY']);

const args = parseBenchArgs(['--keep', '--no-write', '--skip-replay'], ['--push-client', '--drain-tools', '--fetch-client-base', '--phases', '--segments', '--rounds', '--latency-calls', '--full-calls', '--agent-jobs', '--stores', '--scale', '--budget-sec', '--out', '--pgbackrest']);
const argv = args.argv;
const argValue = args.value;
const SEGMENTS = Number(argValue('--segments', '100'));
const ROUNDS = Number(argValue('--rounds', '2'));
const LAT_CALLS = Number(argValue('--latency-calls', '60'));
const FULL_CALLS = Number(argValue('--full-calls', '20'));
const AGENT_JOBS = argValue('--agent-jobs', null);
const STORES = argValue('--stores', 'fs,s3').split(',').map((s) => s.trim()).filter(Boolean);
const SCALE = Number(argValue('--scale', '20'));
const TOTAL_BUDGET_MS = Number(argValue('--budget-sec', '900')) * 1000; // two pgBackRest peers: one more drain per round and one more replay than with one
const KEEP = argv.includes('--keep');
const WRITE = !argv.includes('--no-write');
const PHASES = argValue('--phases', 'replay,latency,drain').split(',').map((s) => s.trim());
const SKIP_REPLAY = argv.includes('--skip-replay') || !PHASES.includes('replay');
const RESULTS = argValue('--out', join(ROOT, 'bench/results/agent.md'));
/** pgBackRest peers: binary, version, key of their rows; the first one also serves the latency phase and the replay archive. */
const PEERS = pgbackrestBinaries(argValue('--pgbackrest', undefined)).map((bin) => {
  const version = /pgBackRest (\S+)/.exec(spawnSync(bin, ['version'], { encoding: 'utf8' }).stdout ?? '')?.[1] ?? 'unknown';
  const [maj, min] = version.split('.').map(Number);
  const bundle = maj > 2 || (maj === 2 && min >= 46);
  return { bin, version, bundle, key: `pgbr-${version}`, name: `pgBackRest ${version}` };
});
const PGBACKREST = PEERS[0].bin;
/** The newest peer: the issue's targets are against it. */
const NEWEST = PEERS.at(-1);
const DRAIN_TIMEOUT_MS = 240_000;
const BACKLOG_TIMEOUT_MS = 240_000;
const RESTORE_TIMEOUT_MS = 240_000;
for (const [k, v] of Object.entries({ SEGMENTS, ROUNDS, LAT_CALLS, FULL_CALLS, SCALE, TOTAL_BUDGET_MS })) {
  if (!Number.isFinite(v) || v <= 0) {
    console.error(`invalid ${k}: ${v}`);
    process.exit(2);
  }
}
if (AGENT_JOBS !== null && !/^\d+$/.test(AGENT_JOBS)) {
  console.error(`invalid --agent-jobs ${AGENT_JOBS}`);
  process.exit(2);
}
if (2 * FULL_CALLS > LAT_CALLS) {
  console.error('--full-calls must be at most half of --latency-calls (the full path and the fallback each take their own segments)');
  process.exit(2);
}
if (!STORES.length || STORES.some((s) => s !== 'fs' && s !== 's3')) {
  console.error(`--stores: fs, s3 or both (got ${STORES.join(',')})`);
  process.exit(2);
}

requireRootAndFiles('bench/agent.mjs', [
  join(PG_BIN, 'initdb'),
  join(PG_BIN, 'pgbench'),
  join(PG_BIN, 'pg_basebackup'),
  ...PEERS.map((p) => p.bin),
  TIME,
  PUSH_CLIENT,
  FETCH_CLIENT,
  join(ROOT, 'dist/src/cli/main.js'),
  join(ROOT, 'dist/src/agent/agent.js'),
  ...(STORES.includes('s3') ? ['/usr/bin/openssl', S3RVER_JS] : []),
]);

const budget = createBudget(TOTAL_BUDGET_MS);
const { started, log, bounded, remaining } = budget;
const startLoad = loadavg();
const run = createRun(budget);

const tmpRoot = makeTmpRoot('/tmp/pgark-agentbench-');
const clusters = new Set();
const ctx = { tmpRoot, run, bounded, log, clusters };
class Cluster extends BaseCluster {
  constructor(name, dataDir, port) {
    super(ctx, name, dataDir, port);
  }
}

const results = { drains: [], latency: [], agentStore: null, restores: [], backlogs: [], notes: [], verify: [], skipped: [] };
const T = (s) => String(s).replaceAll(tmpRoot, '$TMP');

// ---------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------

/** Machine-wide CPU jiffies (all cores) from /proc/stat: busy and total. */
function cpuTimes() {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
  const idle = f[3] + f[4]; // idle + iowait
  return { busy: total - idle, total };
}
const busyPct = (a, b) => (b.total > a.total ? (100 * (b.busy - a.busy)) / (b.total - a.total) : null);

const quantile = (xs, q) => {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo] + (s[hi] - s[lo]) * (pos - lo);
};

const lsnOf = (bytes) => `${(BigInt(bytes) >> 32n).toString(16).toUpperCase()}/${(BigInt(bytes) & 0xffffffffn).toString(16).toUpperCase()}`;
const fileSize = (f) => (existsSync(f) ? statSync(f).size : 0);
const linesSince = (f, offset) => (existsSync(f) ? readFileSync(f).subarray(offset).toString('utf8').split('\n').filter(Boolean) : []);

const redactEnv = (env) => Object.fromEntries(Object.entries(env).map(([k, v]) => [k, SECRET_VARS.has(k) ? '***' : T(v)]));
const showEnv = (env) => Object.entries(redactEnv(env)).map(([k, v]) => `${k}=${v}`).join(' ');
const redactText = (s) => T(s).replace(/^(repo1-s3-key(?:-secret)?)=.*$/gm, '$1=***');

// ---------------------------------------------------------------------------
// s3rver with TLS (as bench/remote-stores.mjs)
// ---------------------------------------------------------------------------

const servers = [];
let s3 = null; // { port, endpoint, cert, env, command }


const tcpReady = (port) =>
  new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port }, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });

async function startS3() {
  const tls = makeCertificate(join(tmpRoot, 'tls'));
  const dir = join(tmpRoot, 's3rver');
  mkdirSync(join(dir, 'data'), { recursive: true, mode: 0o700 });
  const port = await freePort();
  const logFile = join(dir, 'access.log');
  const args = ['--openssl-legacy-provider', S3RVER_JS, '-d', join(dir, 'data'), '-a', '127.0.0.1', '-p', String(port), '--key', tls.key, '--cert', tls.cert, '--no-vhost-buckets', '--configure-bucket', BUCKET];
  const fd = openSync(logFile, 'a', 0o600);
  const child = spawn(NODE, args, { cwd: ROOT, env: { ...BASE_ENV, HOME: '/root' }, stdio: ['ignore', fd, fd], detached: true });
  closeSync(fd);
  servers.push(child);
  let exited = null;
  child.on('exit', (code, signal) => (exited = `${code ?? signal}`));
  const until = Date.now() + bounded(60_000);
  while (!(await tcpReady(port))) {
    if (exited !== null) throw new Error(`s3rver exited (${exited}) at start:\n${readFileSync(logFile, 'utf8').slice(-2000)}`);
    if (Date.now() > until) throw new Error(`s3rver did not listen on 127.0.0.1:${port} within 60 s`);
    await sleep(200);
  }
  const endpoint = `https://127.0.0.1:${port}`;
  return {
    port,
    endpoint,
    cert: tls.cert,
    command: `node ${args.map((a) => shq(T(a).replace(ROOT + '/', ''))).join(' ')}`,
    env: {
      PGARK_S3_ENDPOINT: endpoint,
      PGARK_S3_PATH_STYLE: 'true',
      PGARK_S3_REGION: S3_REGION,
      AWS_REGION: S3_REGION,
      AWS_ACCESS_KEY_ID: S3_ACCESS_KEY,
      AWS_SECRET_ACCESS_KEY: S3_SECRET_KEY,
      NODE_EXTRA_CA_CERTS: tls.cert,
    },
    pgbrRepoLines: [
      'repo1-type=s3',
      `repo1-s3-bucket=${BUCKET}`,
      'repo1-s3-endpoint=127.0.0.1',
      `repo1-storage-port=${port}`,
      'repo1-s3-uri-style=path',
      `repo1-s3-region=${S3_REGION}`,
      `repo1-s3-key=${S3_ACCESS_KEY}`,
      `repo1-s3-key-secret=${S3_SECRET_KEY}`,
      `repo1-storage-ca-file=${tls.cert}`,
    ],
  };
}

async function stopServers() {
  for (const child of servers.splice(0)) {
    if (child.exitCode !== null || child.signalCode !== null) continue;
    const gone = new Promise((r) => child.once('exit', r));
    try {
      process.kill(-child.pid, 'SIGTERM');
    } catch {
      /* gone */
    }
    if ((await Promise.race([gone.then(() => true), sleep(5000).then(() => false)])) === false) {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }
}

// ---------------------------------------------------------------------------
// pgBackRest configurations
// ---------------------------------------------------------------------------

/** A pgBackRest config (0600, owner postgres) in its own directory with log, lock and spool. */
function pgbrConfig(name, { repoLines, repoPath, pgPath, port, sockDir, async, extra = {}, peer = PEERS[0] }) {
  const dir = mkPgDir(join(tmpRoot, `pgbr-${name}`));
  for (const d of ['log', 'lock', 'spool']) mkPgDir(join(dir, d));
  const lines = [
    '[global]',
    ...repoLines,
    `repo1-path=${repoPath}`,
    `log-path=${join(dir, 'log')}`,
    `lock-path=${join(dir, 'lock')}`,
    `spool-path=${join(dir, 'spool')}`,
    'compress-type=lz4',
    `archive-async=${async ? 'y' : 'n'}`,
    'log-level-console=warn',
    'log-level-stderr=warn',
    'log-level-file=info',
    ...Object.entries(extra).map(([k, v]) => `${k}=${v}`),
    ...(peer.bundle ? ['repo1-bundle=y', 'repo1-block=y'] : []),
    '',
    `[${STANZA}]`,
    `pg1-path=${pgPath}`,
    ...(port ? [`pg1-port=${port}`, `pg1-socket-path=${sockDir}`, 'pg1-user=postgres'] : []),
    '',
  ];
  const conf = join(dir, 'pgbackrest.conf');
  writePgFile(conf, lines.join('\n'));
  return { conf, dir, text: lines.join('\n'), bin: peer.bin };
}

async function stanzaCreate(br) {
  const r = await run(br.bin, [`--config=${br.conf}`, `--stanza=${STANZA}`, 'stanza-create'], { asPg: true, timeoutMs: 120_000, allowFail: true });
  if (r.code !== 0) throw new Error(`pgbackrest stanza-create (${T(br.conf)}) failed (exit ${r.code}):\n${r.stdout}${r.stderr}`);
}

// ---------------------------------------------------------------------------
// The agent
// ---------------------------------------------------------------------------

const agents = new Set();
const agentArgs = (repo, dataDir) => [PGARK, 'agent', '--pgdata', dataDir, '--repo', repo, '--stanza', STANZA, '--json', ...(AGENT_JOBS ? ['--jobs', AGENT_JOBS] : [])];

/** Start `pgark agent` as postgres under GNU time (for %M and CPU of the agent process). */
/**
 * The agent runs as users run it: through the launcher bin/pgark (its memory env and flags),
 * with this bench's Node as PGARK_NODE; the launcher execs node, so GNU time's child is the agent.
 */
const LAUNCHER = join(ROOT, 'bin', 'pgark');
const agentWords = (repo, dataDir) => [LAUNCHER, ...agentArgs(repo, dataDir).slice(1)];

function startAgent(label, repo, dataDir, env = {}) {
  const timeFile = join(tmpRoot, 'rss', `agent-${label}.txt`);
  writePgFile(timeFile, '');
  env = { PGARK_NODE: NODE, ...env };
  const words = agentWords(repo, dataDir);
  const [file, args] = asPgArgv(TIME, ['-f', '%M %e %U %S', '-o', timeFile, ...words]);
  const child = spawn(file, args, { env: { ...BASE_ENV, HOME: '/var/lib/postgresql', ...env }, cwd: '/', stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  const exited = new Promise((r) => child.on('close', r));
  const a = { label, child, timeFile, exited, out: () => out, err: () => err, command: words.map(shq).join(' '), env };
  agents.add(a);
  return a;
}

function vmHwmKiB(pid) {
  try {
    return Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
  } catch {
    return null;
  }
}

/** SIGTERM the agent's node process (not GNU time), wait for it, collect %M, CPU, VmHWM, final counters. */
async function stopAgent(a) {
  const nodePid = procTable().find((r) => r.ppid === a.child.pid)?.pid;
  const hwm = nodePid ? vmHwmKiB(nodePid) : null;
  const ok = await stopWithSignal({ pid: nodePid, child: a.child, exited: a.exited });
  agents.delete(a);
  writeFileSync(join(tmpRoot, 'logs', `agent-${a.label}.log`), a.err());
  const rec = timeRecords(a.timeFile).at(-1);
  let final = null;
  try {
    const text = a.out();
    final = JSON.parse(text.slice(text.indexOf('{')));
  } catch {
    final = null;
  }
  return {
    rssKiB: rec?.[0] ?? null,
    wallSecs: rec?.[1] ?? null,
    cpuSecs: rec ? rec[2] + rec[3] : null,
    hwmKiB: hwm,
    final,
    stoppedCleanly: ok,
    stderrTail: T(a.err().slice(-1500)),
  };
}

async function killAgents() {
  for (const a of [...agents]) {
    try {
      process.kill(-a.child.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
    agents.delete(a);
  }
}

// ---------------------------------------------------------------------------
// Processes of a tool (Σ RSS, idle)
// ---------------------------------------------------------------------------


const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/** Fields of /proc/<pid>/stat after the command name (index 0 = state, 1 = ppid, 11 = utime, 12 = stime, 13 = cutime, 14 = cstime). */
function statFields(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return s.slice(s.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/** The archiver process of a cluster (child of the postmaster named `postgres: archiver`). */
function archiverPid(cl) {
  const pm = cl.pid();
  if (!pm) return null;
  for (const r of procTable()) {
    if (r.ppid !== pm) continue;
    if ((argvOf(r.pid)[0] ?? '').startsWith('postgres: archiver')) return r.pid;
  }
  return null;
}

/**
 * Every 100 ms: summed RSS of the tool's processes (peak), and their CPU. CPU of archive_command
 * calls = growth of the archiver's cutime + cstime (it waits for every call and its waited-for
 * children, exactly); CPU of detached processes (the agent, pgark look-ahead workers, pgBackRest's
 * async worker and its local processes: anything of the tool outside the archiver's tree) = the
 * last utime + stime seen per process (a process that exits loses at most one interval).
 */
function toolSampler(tool, rootPid, { fromZero = false } = {}) {
  const pred = tool === 'none' ? null : tool === 'pgark-base' ? basePred : toolPred(tool, tmpRoot);
  const cpu = new Map(); // pid -> {ticks, detached}
  let peak = 0;
  let root = typeof rootPid === 'function' ? null : rootPid;
  let base = null;
  let lastChildren = null;
  let lastSelf = null;
  const readRoot = () => {
    if (root == null && typeof rootPid === 'function') root = rootPid();
    const f = root ? statFields(root) : null;
    if (!f) return;
    lastChildren = Number(f[13]) + Number(f[14]);
    lastSelf = Number(f[11]) + Number(f[12]);
    if (base == null) base = fromZero ? 0 : lastChildren;
  };
  readRoot();
  const tick = () => {
    readRoot();
    if (!pred) return;
    const pids = pidsWhere(pred);
    if (!pids.length) return;
    const parent = new Map(procTable().map((r) => [r.pid, r.ppid]));
    let sum = 0;
    for (const pid of pids) {
      const f = statFields(pid);
      if (!f) continue;
      let p = pid;
      let inRoot = false;
      for (let i = 0; i < 64 && p > 1; i++) {
        if (p === root) {
          inRoot = true;
          break;
        }
        p = parent.get(p) ?? 0;
      }
      try {
        sum += Number(readFileSync(`/proc/${pid}/statm`, 'utf8').split(' ')[1]) * 4096;
      } catch {
        /* gone */
      }
      const e = cpu.get(pid) ?? { ticks: 0, detached: false };
      e.ticks = Math.max(e.ticks, Number(f[11]) + Number(f[12]));
      e.detached ||= !inRoot;
      cpu.set(pid, e);
    }
    if (sum > peak) peak = sum;
  };
  const timer = setInterval(tick, 100);
  return {
    stop() {
      clearInterval(timer);
      tick();
      let detached = 0;
      let n = 0;
      for (const e of cpu.values()) {
        if (!e.detached) continue;
        detached += e.ticks;
        n++;
      }
      return {
        sumKiB: Math.round(peak / 1024),
        callsCpuSecs: base != null && lastChildren != null ? (lastChildren - base) / CLK_TCK : null,
        rootCpuSecs: lastSelf != null ? lastSelf / CLK_TCK : null,
        detachedCpuSecs: detached / CLK_TCK,
        detachedProcs: n,
      };
    },
  };
}

/** Processes of the --fetch-client-base checkout's pgark (its prefetch workers) in this run. */
function basePred(cmd, pid) {
  const a = argvOf(pid);
  return a[0] === NODE && a[1] === join(FETCH_BASE, 'bin', 'pgark.js') && cmd.includes(tmpRoot);
}

/** The startup process of a cluster in recovery (child of the postmaster named `postgres: startup`). */
function startupPid(cl) {
  const pm = cl.pid();
  if (!pm) return null;
  for (const r of procTable()) if (r.ppid === pm && (argvOf(r.pid)[0] ?? '').startsWith('postgres: startup')) return r.pid;
  return null;
}


// ---------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------

let main = null;
let nodeCounter = null; // { script, file }: PGARK_NODE wrapper that logs every Node start of the shell clients

const { cleanup, strayProcesses } = createCleanup({
  tmpRoot,
  keep: KEEP,
  log,
  before: [
    killAgents,
    async () => {
      for (const c of [...clusters]) await c.stop('immediate');
    },
    stopServers,
  ],
  budgetMs: TOTAL_BUDGET_MS,
  graceMs: 60_000,
});

const cpArchive = (dir) => `test ! -f ${dir}/%f && cp %p ${dir}/%f.tmp && sync ${dir}/%f.tmp && mv ${dir}/%f.tmp ${dir}/%f`;
const pushClientCmd = (repo, client = DRAIN_PUSH_CLIENT) => [client, '%p', '--repo', repo, '--stanza', STANZA].map(shq).join(' ');

async function makeBacklog(label, segments = SEGMENTS) {
  const b = await makeBacklogOf(ctx, main, { label, segments, pgbenchArgs: backlogPgbenchArgs(join(tmpRoot, 'bulk.sql')), timeoutMs: BACKLOG_TIMEOUT_MS });
  results.backlogs.push(b);
  return b;
}

/**
 * One drain: fresh backlog; archive_command = the candidate; for pgark the agent is started at the
 * same instant as the SIGHUP; timed until pg_stat_archiver has archived the backlog.
 */
async function drainStep(c) {
  const id = `${c.store} ${c.tool} #${c.run}`;
  const backlog = await makeBacklog(id);
  await c.prepare?.();
  const nodeMark = fileSize(nodeCounter.file);
  const nodeCpuMark = fileSize(nodeCounter.cpuFile);
  const logMark = fileSize(main.logFile);
  const archPid = archiverPid(main);
  let agent = null;
  let sampler = null;
  let cpu0 = null;
  const load = loadavg()[0];
  log(`drain ${id}: archive_command = ${T(c.cmd)}${c.agentRepo ? ` + agent on ${T(c.agentRepo)}` : ''}`);
  let d = null;
  let error = null;
  try {
    d = await drainBacklog(main, c.cmd, backlog, {
      timeoutMs: DRAIN_TIMEOUT_MS,
      onStart: () => {
        cpu0 = cpuTimes();
        if (c.agentRepo) agent = startAgent(`${c.store}-${c.run}`, c.agentRepo, main.dataDir, c.agentEnv);
        sampler = toolSampler(c.rssTool, archPid);
      },
    });
  } catch (e) {
    error = e;
  }
  const cpu1 = cpuTimes();
  const agentRes = agent ? await stopAgent(agent) : null;
  const idle = c.rssTool === 'none' ? true : await waitToolIdle(c.rssTool, tmpRoot);
  const sampled = sampler?.stop() ?? {};
  const nodeLines = linesSince(nodeCounter.file, nodeMark);
  const nodeStarts = nodeLines.length;
  const nodeStartsLocked = nodeLines.filter((l) => l.endsWith(' locked')).length;
  // user + sys of those Node starts (GNU time in the wrapper): part of callsCpuSecs.
  const nodeCpuSecs = linesSince(nodeCounter.cpuFile, nodeCpuMark)
    .map((l) => /^cpu ([\d.]+) ([\d.]+)$/.exec(l.trim()))
    .reduce((a, m) => a + (m ? Number(m[1]) + Number(m[2]) : 0), 0);
  const r = {
    ...c,
    id,
    ok: !error,
    error: error ? error.message.split('\n')[0] : null,
    segments: backlog.count,
    secs: d?.secs ?? null,
    segPerSec: d ? backlog.count / d.secs : null,
    failedDelta: d?.failedDelta ?? null,
    load,
    loadAfter: loadavg()[0],
    cpuBusyPct: cpu0 ? busyPct(cpu0, cpu1) : null,
    agent: agentRes,
    sumKiB: sampled.sumKiB ?? null,
    callsCpuSecs: sampled.callsCpuSecs ?? null,
    detachedCpuSecs: sampled.detachedCpuSecs ?? null,
    detachedProcs: sampled.detachedProcs ?? null,
    archiverFound: archPid != null,
    idle,
    nodeStarts,
    nodeStartsLocked,
    nodeCpuSecs,
    stored: c.storedDir ? treeBytes(c.storedDir) : null,
  };
  delete r.prepare;
  if (r.failedDelta) {
    // The archiver may still run the backlog's /bin/false in the instant before the SIGHUP: those
    // failures are not the candidate's.
    const lines = linesSince(main.logFile, logMark);
    r.binFalseFailures = lines.filter((l) => l.includes('The failed archive command was: /bin/false')).length;
    const shown = lines.filter((l) => /archive command failed|failed archive command|ERROR|FATAL|WARNING/.test(l) && !l.includes('/bin/false')).slice(0, 12);
    if (r.failedDelta > r.binFalseFailures) results.notes.push(`${id}: pg_stat_archiver.failed_count rose by ${r.failedDelta} (${r.binFalseFailures} of them /bin/false before the SIGHUP); server log:\n${T(shown.join('\n'))}`);
  }
  results.drains.push(r);
  if (error) {
    log(`drain ${id}: FAILED: ${r.error}`);
    results.notes.push(`drain ${id} failed: ${T(error.message).slice(0, 3000)}`);
    // leave nothing ready for the next step
    await setArchiveCommand(main, '/bin/true', true);
    const until = Date.now() + 60_000;
    while (readyFiles(main.dataDir).length && Date.now() < until) await sleep(500);
  } else {
    log(
      `drain ${id}: ${backlog.count} segments in ${d.secs.toFixed(2)} s = ${r.segPerSec.toFixed(1)} seg/s; machine CPU ${f1(r.cpuBusyPct)}% busy; ` +
        (agentRes ? `agent %M ${fmtMiB(agentRes.rssKiB)} MiB, CPU ${f2(agentRes.cpuSecs)} s, pushed ${agentRes.final?.pushed ?? '?'}; ` : '') +
        `calls CPU ${f2(r.callsCpuSecs)} s (Node starts ${f2(r.nodeCpuSecs)} s; shell calls ${r.callsCpuSecs == null ? 'n/a' : ((1000 * (r.callsCpuSecs - r.nodeCpuSecs)) / backlog.count).toFixed(1)} ms/segment), detached CPU ${f2(r.detachedCpuSecs)} s; ` +
        `Node starts ${nodeStarts}; failures ${d.failedDelta}`,
    );
  }
  return r;
}

/** Write the per-call timer (runs as postgres: spawnSync('/bin/sh', ['-c', cmd]) per call, hrtime around it). */
function writeCallTimer() {
  const file = join(tmpRoot, 'calltimer.cjs');
  writeFileSync(
    file,
    `'use strict';
const { spawnSync } = require('node:child_process');
const { readFileSync } = require('node:fs');
const spec = JSON.parse(readFileSync(0, 'utf8'));
// user + sys of the reaped children (the sh -c, the command and everything it waited for), in
// clock ticks (USER_HZ 100): /proc/self/stat fields 16 and 17. Per call 10 ms steps; summed, exact.
const childTicks = () => { const f = readFileSync('/proc/self/stat', 'utf8'); const w = f.slice(f.lastIndexOf(')') + 2).split(' '); return Number(w[13]) + Number(w[14]); };
const out = [];
for (const cmd of spec.cmds) {
  const c0 = childTicks();
  const t0 = process.hrtime.bigint();
  const r = spawnSync('/bin/sh', ['-c', cmd], { env: spec.env, stdio: ['ignore', 'ignore', 'pipe'] });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  out.push({ ms, cpuMs: (childTicks() - c0) * 10, code: r.status, err: r.status === 0 ? '' : String(r.stderr).slice(-400) });
}
process.stdout.write(JSON.stringify(out));
`,
  );
  chmodSync(file, 0o644);
  return file;
}

/** Time each command (a `sh -c` string, as PostgreSQL runs archive_command) as postgres. */
async function timeCalls(timer, label, cmds, env, note) {
  const fullEnv = { ...BASE_ENV, HOME: '/var/lib/postgresql', ...env };
  const load = loadavg()[0];
  const r = await run(NODE, [timer], { asPg: true, input: JSON.stringify({ cmds, env: fullEnv }), timeoutMs: 300_000 });
  const calls = JSON.parse(r.stdout);
  const ms = calls.map((c) => c.ms);
  const failed = calls.filter((c) => c.code !== 0);
  const res = {
    label,
    note,
    calls: calls.length,
    failed: failed.length,
    firstErr: failed[0]?.err ? T(failed[0].err) : null,
    median: quantile(ms, 0.5),
    p90: quantile(ms, 0.9),
    min: Math.min(...ms),
    max: Math.max(...ms),
    first: ms[0],
    mean: ms.reduce((a, b) => a + b, 0) / ms.length,
    cpuMs: calls.reduce((a, c) => a + (c.cpuMs ?? 0), 0) / calls.length,
    example: T(cmds[0]),
    env: showEnv(env),
    load,
  };
  results.latency.push(res);
  log(`latency ${label}: ${res.calls} calls, median ${f1(res.median)} ms, p90 ${f1(res.p90)} ms, max ${f1(res.max)} ms, CPU ${f1(res.cpuMs)} ms/call, failed ${res.failed}`);
  return res;
}

async function runBench() {
  checkPgarkReadableByPostgres();
  for (const f of [PUSH_CLIENT, FETCH_CLIENT]) {
    const ok = spawnSync(...asPgArgv('test', ['-x', f]));
    if (ok.status !== 0) throw new Error(`postgres cannot execute ${f}`);
  }
  mkPgDir(join(tmpRoot, 'rss'));
  mkPgDir(join(tmpRoot, 'logs'));
  const repos = mkPgDir(join(tmpRoot, 'repos'));

  // Every Node start of the shell clients' fallback goes through this wrapper (PGARK_NODE), which
  // logs one line per start: how often archive_command / restore_command could not answer alone.
  nodeCounter = { script: join(tmpRoot, 'node-counted'), file: join(tmpRoot, 'node-starts.log'), cpuFile: join(tmpRoot, 'node-starts-cpu.log') };
  writePgFile(nodeCounter.file, '');
  chmodSync(nodeCounter.file, 0o600);
  writePgFile(nodeCounter.cpuFile, '');
  chmodSync(nodeCounter.cpuFile, 0o600);
  // For wal-push it also notes whether a worker held the segment's lock at that moment (then the
  // call only waits for that worker's record) or not (then it pushes the segment itself).
  writePgFile(
    nodeCounter.script,
    [
      '#!/bin/sh',
      // The shell clients pass Node flags (--max-semi-space-size=1) and pgark.js before the command.
      'state=- cmd=- file=- prev=',
      'for a in "$@"; do',
      '  case $prev in wal-push | wal-fetch) cmd=$prev file=$a; break ;; esac',
      '  prev=$a',
      'done',
      'if [ "$cmd" = wal-push ]; then',
      '  if [ -e "${file%/*}/.pgark/pushed/${file##*/}.lock" ]; then state=locked; else state=unlocked; fi',
      'fi',
      `echo "$cmd $file $state" >> ${nodeCounter.file}`,
      // Its CPU too: the drains report the shell calls' CPU without these Node starts.
      `exec ${TIME} -a -o ${nodeCounter.cpuFile} -f 'cpu %U %S' ${NODE} "$@"`,
      '',
    ].join('\n'),
  );
  chmodSync(nodeCounter.script, 0o755);
  // restore_command's client (bin/pgark-wal-fetch) through its own wrapper, logging which file
  // each Node start was for (the word after wal-fetch, behind the Node flags the client passes).
  nodeCounter.fetchScript = join(tmpRoot, 'node-counted-fetch');
  writePgFile(
    nodeCounter.fetchScript,
    [
      '#!/bin/sh',
      'prev= file=-',
      'for a in "$@"; do [ "$prev" = wal-fetch ] && { file=$a; break; }; prev=$a; done',
      `echo "wal-fetch $file" >> ${nodeCounter.file}`,
      `exec ${NODE} "$@"`,
      '',
    ].join('\n'),
  );
  chmodSync(nodeCounter.fetchScript, 0o755);

  // --- s3rver ------------------------------------------------------------------------------
  if (STORES.includes('s3') && PHASES.includes('drain')) {
    s3 = await startS3();
    log(`s3rver on ${s3.endpoint}`);
  }

  // --- cluster -----------------------------------------------------------------------------
  const dataDir = join(mkPgDir(join(tmpRoot, 'main')), 'data');
  main = new Cluster('main', dataDir, await freePort());
  log(`initdb ${dataDir} (port ${main.port})`);
  const conf = benchConf(main, { synchronous_commit: 'off' });
  await initCluster({ run }, main, { checksums: false, conf, comment: 'agent bench' });
  results.pgConf = conf;
  // The postmaster's environment reaches archive_command: the node of the shell client's
  // fallback, and for s3 the store's settings (never in argv or postgresql.conf).
  const serverEnv = { PGARK_NODE: nodeCounter.script, ...(s3 ? s3.env : {}) };
  results.serverEnv = showEnv(serverEnv);
  await main.start(120, serverEnv);
  log(`pgbench -i -s ${SCALE}`);
  await run(join(PG_BIN, 'pgbench'), ['-i', '-q', '-s', String(SCALE)], { env: main.env, timeoutMs: 300_000 });
  await main.psql(`${BACKLOG_TABLE_SQL} SELECT pg_switch_wal(); CHECKPOINT;`);
  writeFileSync(join(tmpRoot, 'bulk.sql'), BACKLOG_BULK_SQL);

  const fsBr = (name, opts) => {
    const repo = mkPgDir(join(repos, `pgbackrest-${name}`));
    return { ...pgbrConfig(name, { repoLines: [], repoPath: repo, pgPath: dataDir, port: main.port, sockDir: main.sockDir, ...opts }), repo };
  };

  // --- replay archive: a base backup, then a backlog archived by pgark, pgBackRest and cp ------
  let replay = null;
  if (!SKIP_REPLAY) {
    const brDual = fsBr('replay', { async: false });
    await stanzaCreate(brDual);
    const dualPgark = await pgarkRepoCreate(run, mkPgDir(join(repos, 'pgark-replay')));
    const dualCp = mkPgDir(join(repos, 'cp-replay'));
    const dualCmd = [
      [NODE, PGARK, 'wal-push', '%p', '--repo', dualPgark, '--stanza', STANZA].map(shq).join(' '),
      [PGBACKREST, `--config=${brDual.conf}`, `--stanza=${STANZA}`, 'archive-push', '%p'].map(shq).join(' '),
      `cp %p ${dualCp}/%f.tmp && mv ${dualCp}/%f.tmp ${dualCp}/%f`,
    ].join(' && ');
    await setArchiveCommand(main, dualCmd, true);
    await sleep(300);
    const baseDir = mkPgDir(join(tmpRoot, 'base'));
    log('pg_basebackup -X none (archive_command = pgark && pgbackrest && cp)');
    await run(join(PG_BIN, 'pg_basebackup'), ['-D', baseDir, '-h', '127.0.0.1', '-p', String(main.port), '-U', 'postgres', '-X', 'none', '--checkpoint=fast', '--no-password'], { asPg: true, timeoutMs: 300_000 });
    const label = readFileSync(join(baseDir, 'backup_label'), 'utf8');
    const baseStart = /START WAL LOCATION: .* \(file ([0-9A-F]{24})\)/.exec(label)?.[1];
    if (!baseStart) throw new Error(`cannot parse backup_label:\n${label}`);
    await switchAndWaitArchived(ctx, main);
    const backlog = await makeBacklog('replay archive (pgark wal-push && pgbackrest && cp)');
    const d = await drainBacklog(main, dualCmd, backlog, { timeoutMs: DRAIN_TIMEOUT_MS });
    log(`replay archive: ${backlog.count} segments archived by all three in ${d.secs.toFixed(1)} s`);
    // Nothing after this backlog may reach the replay archives (a shutdown switches WAL and archives it).
    await setArchiveCommand(main, '/bin/true', true);
    replay = { baseDir, baseStart, backlog, brDual, dualPgark, dualCp, dualCmd, segments: segNo(backlog.last) - segNo(baseStart) + 1 };
    results.replayArchive = { segments: replay.segments, first: baseStart, last: backlog.last, secs: d.secs, command: T(dualCmd) };
    await waitToolIdle('pgark', tmpRoot);
  }

  // --- per-call latency ----------------------------------------------------------------------
  if (PHASES.includes('latency')) {
    const timer = writeCallTimer();
    const lat = await makeBacklog('latency', LAT_CALLS);
    const segs = readyFiles(dataDir);
    const walDir = join(dataDir, 'pg_wal');
    const latRepo = await pgarkRepoCreate(run, mkPgDir(join(repos, 'pgark-latency-agent')));
    // The agent alone stores the backlog (archive_command stays /bin/false): its raw rate.
    log(`latency: agent stores ${segs.length} segments (archive_command = /bin/false)`);
    const t0 = performance.now();
    const cpu0 = cpuTimes();
    const a = startAgent('latency', latRepo, dataDir);
    const pushedDir = join(walDir, '.pgark', 'pushed');
    const until = Date.now() + bounded(180_000);
    for (;;) {
      const have = segs.filter((s) => existsSync(join(pushedDir, s))).length;
      if (have === segs.length) break;
      if (Date.now() > until || a.child.exitCode !== null) throw new Error(`agent stored ${have} of ${segs.length} latency segments:\n${a.err().slice(-2000)}`);
      await sleep(20);
    }
    const secs = (performance.now() - t0) / 1000;
    const cpuBusy = busyPct(cpu0, cpuTimes());
    const ar = await stopAgent(a);
    results.agentStore = { segments: segs.length, secs, segPerSec: segs.length / secs, cpuBusyPct: cpuBusy, agent: ar, command: T(a.command), stored: treeBytes(latRepo) };
    log(`latency: agent stored ${segs.length} segments in ${secs.toFixed(2)} s (${(segs.length / secs).toFixed(1)} seg/s, start-up included), %M ${fmtMiB(ar.rssKiB)} MiB, CPU ${f2(ar.cpuSecs)} s`);

    const p = (s) => join(walDir, s);
    await timeCalls(timer, 'sh -c /bin/true (baseline: start of any archive_command)', segs.map(() => '/bin/true'), {}, 'what the archiver pays for any command: fork + /bin/sh + exec');
    // PGARK_NODE=/bin/false: a call that does not answer from the record fails, so exit 0 proves the fast path.
    await timeCalls(
      timer,
      'bin/pgark-wal-push, segment stored by the agent (fast path)',
      segs.map((s) => [PUSH_CLIENT, p(s), '--repo', latRepo, '--stanza', STANZA].map(shq).join(' ')),
      { PGARK_NODE: '/bin/false' },
      'PGARK_NODE=/bin/false: any fallback to Node would fail the call',
    );
    const fullRepo = await pgarkRepoCreate(run, mkPgDir(join(repos, 'pgark-latency-full')));
    await timeCalls(
      timer,
      'pgark wal-push --push-ahead 0 (full path, new segment)',
      segs.slice(0, FULL_CALLS).map((s) => [NODE, PGARK, 'wal-push', p(s), '--repo', fullRepo, '--stanza', STANZA, '--push-ahead', '0'].map(shq).join(' ')),
      {},
      'Node start + CLI + read, sha256, lz4, write, fsync of one segment; the first call creates the stanza',
    );
    const fbRepo = await pgarkRepoCreate(run, mkPgDir(join(repos, 'pgark-latency-fallback')));
    await timeCalls(
      timer,
      'bin/pgark-wal-push, no record (falls back to pgark wal-push --push-ahead 0)',
      segs.slice(FULL_CALLS, 2 * FULL_CALLS).map((s) => [PUSH_CLIENT, p(s), '--repo', fbRepo, '--stanza', STANZA, '--push-ahead', '0'].map(shq).join(' ')),
      { PGARK_NODE: NODE },
      'what archive_command costs when the agent is down or behind',
    );
    const cpDir = mkPgDir(join(repos, 'cp-latency'));
    await timeCalls(
      timer,
      'cp + sync (fsync) + mv (the cp+fsync archive_command)',
      segs.slice(0, FULL_CALLS).map((s) => cpArchive(cpDir).replaceAll('%p', p(s)).replaceAll('%f', s)),
      {},
      'copy of 16 MiB, fsync, rename',
    );
    const brLat = fsBr('latency-async', { async: true, extra: { 'process-max': '2' } });
    await stanzaCreate(brLat);
    const brCmd = (s) => [PGBACKREST, `--config=${brLat.conf}`, `--stanza=${STANZA}`, 'archive-push', p(s)].map(shq).join(' ');
    await timeCalls(timer, 'pgbackrest archive-push, async: first call', [brCmd(segs[0])], {}, 'starts the async worker (process-max=2) and waits until it has pushed this segment');
    // The async worker pushes every ready segment; once it is done, the calls only find the
    // result in the spool (the counterpart of the agent's record).
    await waitToolIdle('pgbackrest', tmpRoot, 120_000);
    await timeCalls(timer, 'pgbackrest archive-push, async, segment already pushed by the async worker', segs.slice(1).map(brCmd), {}, 'the call finds the segment\'s .ok in the spool');
    await waitToolIdle('pgbackrest', tmpRoot);
    // These segments are needed by nothing: let the archiver mark them done.
    await setArchiveCommand(main, '/bin/true', true);
    await switchAndWaitArchived(ctx, main);
  }

  // --- drains --------------------------------------------------------------------------------
  const fsCandidates = {
    agent: (n, client = DRAIN_PUSH_CLIENT) => {
      const k = DRAIN_PUSH_CLIENTS.indexOf(client);
      const repo = join(repos, `pgark-agent-${n}${k > 0 ? `-c${k}` : ''}`);
      const tool = DRAIN_PUSH_CLIENTS.length > 1 ? `pgark agent (${client.replace(`${ROOT}/`, '')})` : 'pgark agent';
      return { store: 'fs', tool, key: 'agent', run: n, rssTool: 'pgark', cmd: pushClientCmd(repo, client), agentRepo: repo, agentEnv: {}, storedDir: repo, prepare: () => pgarkRepoCreate(run, mkPgDir(repo)) };
    },
    pgbr: (n, peer) => {
      const br = fsBr(`async-${peer.version}-${n}`, { async: true, extra: { 'process-max': '2' }, peer });
      return {
        store: 'fs', tool: `${peer.name} async`, key: peer.key, run: n, rssTool: 'pgbackrest', storedDir: br.repo, pgbrConf: redactText(br.text),
        cmd: [peer.bin, `--config=${br.conf}`, `--stanza=${STANZA}`, 'archive-push', '%p'].map(shq).join(' '),
        prepare: () => stanzaCreate(br),
      };
    },
    cp: (n) => {
      const dir = join(repos, `cp-${n}`);
      return { store: 'fs', tool: 'cp+fsync', key: 'cp', run: n, rssTool: 'none', cmd: cpArchive(dir), storedDir: dir, prepare: () => mkPgDir(dir) };
    },
  };
  const s3Candidates = {
    agent: (n) => {
      const repo = `s3://${BUCKET}/pgark-agent-${n}`;
      return { store: 's3', tool: 'pgark agent', key: 'agent', run: n, rssTool: 'pgark', cmd: pushClientCmd(repo), agentRepo: repo, agentEnv: s3.env, prepare: () => pgarkRepoCreate(run, repo, s3.env) };
    },
    pgbr: (n, peer) => {
      const br = pgbrConfig(`s3-async-${peer.version}-${n}`, { repoLines: s3.pgbrRepoLines, repoPath: `/pgbackrest-async-${peer.version}-${n}`, pgPath: dataDir, port: main.port, sockDir: main.sockDir, async: true, extra: { 'process-max': '2' }, peer });
      return {
        store: 's3', tool: `${peer.name} async`, key: peer.key, run: n, rssTool: 'pgbackrest', pgbrConf: redactText(br.text),
        cmd: [peer.bin, `--config=${br.conf}`, `--stanza=${STANZA}`, 'archive-push', '%p'].map(shq).join(' '),
        prepare: () => stanzaCreate(br),
      };
    },
  };
  // Order: fs agent, each pgBackRest, cp, (round 2) each pgBackRest in reverse, agent; s3 likewise without cp.
  const plan = [];
  const reversed = [...PEERS].reverse();
  if (STORES.includes('fs') && PHASES.includes('drain')) {
    const agents = (n) => (DRAIN_TOOLS.includes('agent') ? (n % 2 ? DRAIN_PUSH_CLIENTS : [...DRAIN_PUSH_CLIENTS].reverse()).map((c) => fsCandidates.agent(n, c)) : []);
    const peers = (n, list) => (DRAIN_TOOLS.includes('pgbackrest') ? list.map((p) => fsCandidates.pgbr(n, p)) : []);
    plan.push(...agents(1), ...peers(1, PEERS), ...(DRAIN_TOOLS.includes('cp') ? [fsCandidates.cp(1)] : []));
    for (let n = 2; n <= ROUNDS; n++) plan.push(...[...peers(n, n % 2 ? PEERS : reversed), ...agents(n)].map((c) => ({ ...c, optional: true })));
  }
  if (STORES.includes('s3') && PHASES.includes('drain')) {
    plan.push(s3Candidates.agent(1), ...PEERS.map((p) => s3Candidates.pgbr(1, p)));
    if (ROUNDS >= 2) plan.push(...reversed.map((p) => ({ ...s3Candidates.pgbr(2, p), optional: true })), { ...s3Candidates.agent(2), optional: true });
  }
  // Round-2 drains are dropped first when time runs short; the replay phase needs about this much.
  const replayReserveMs = replay ? 150_000 : 30_000;
  const drainCostMs = () => {
    const done = results.drains.filter((r) => r.ok);
    const per = done.length ? done.reduce((a, r) => a + r.secs, 0) / done.length : 10;
    const gen = results.backlogs.length ? results.backlogs.reduce((a, b) => a + b.genSecs, 0) / results.backlogs.length : 30;
    return (per + gen + 10) * 1000;
  };
  for (const c of plan) {
    if (c.optional && remaining() < replayReserveMs + drainCostMs()) {
      results.skipped.push(`${c.store} ${c.tool} #${c.run} (time budget)`);
      log(`skipping ${c.store} ${c.tool} #${c.run}: time budget`);
      continue;
    }
    await drainStep(c);
  }

  // integrity of what the agent stored
  const verifyRepo = async (label, repo, env, read) => {
    const r = await run(NODE, [PGARK, 'wal-verify', '--repo', repo, '--stanza', STANZA, ...(read ? ['--read'] : [])], { asPg: true, env, allowFail: true, timeoutMs: 180_000 });
    results.verify.push({ label, command: `pgark wal-verify --repo ${T(repo)} --stanza ${STANZA}${read ? ' --read' : ''}`, code: r.code, out: T((r.stdout + r.stderr).trim()).slice(0, 800) });
    log(`wal-verify ${label}: exit ${r.code}`);
  };
  const fsAgent = results.drains.find((r) => r.store === 'fs' && r.key === 'agent' && r.ok);
  if (fsAgent) await verifyRepo('fs agent #1', fsAgent.agentRepo, {}, true);
  const s3Agent = results.drains.find((r) => r.store === 's3' && r.key === 'agent' && r.ok);
  if (s3Agent) await verifyRepo('s3 agent #1', s3Agent.agentRepo, s3.env, false);

  await main.stop('fast');

  // --- replay ----------------------------------------------------------------------------------
  if (replay) {
    const candidates = [
      { key: 'pgark', tool: 'pgark', label: 'bin/pgark-wal-fetch (prefetch on: defaults --prefetch 8 --jobs 4)', cmd: () => [FETCH_CLIENT, '%f', '%p', '--repo', replay.dualPgark, '--stanza', STANZA].map(shq).join(' ') },
      ...(FETCH_BASE ? [{ key: 'pgark-base', tool: 'pgark-base', label: `bin/pgark-wal-fetch of ${FETCH_BASE} (--fetch-client-base)`, cmd: () => [join(FETCH_BASE, 'bin', 'pgark-wal-fetch'), '%f', '%p', '--repo', replay.dualPgark, '--stanza', STANZA].map(shq).join(' ') }] : []),
      ...PEERS.map((peer) => ({ key: peer.key, peer, tool: 'pgbackrest', label: `${peer.name} archive-get, async (process-max=2, archive-get-queue-max=128MiB)`, async: true, cmd: (brConf) => [peer.bin, `--config=${brConf}`, `--stanza=${STANZA}`, 'archive-get', '%f', '%p'].map(shq).join(' ') })),
      { key: 'cp', tool: 'none', label: 'cp from an uncompressed archive (replay-bound reference)', cmd: () => `cp ${replay.dualCp}/%f %p` },
    ];
    const peerCands = candidates.filter((c) => c.peer);
    const order = [...candidates];
    const ours = candidates.filter((c) => c.key.startsWith('pgark'));
    if (ROUNDS >= 2) order.push(...[...peerCands].reverse().map((c) => ({ ...c, optional: true })), ...[...ours].reverse().map((c) => ({ ...c, optional: true })));
    const lastRestoreMs = () => 1000 * Math.max(15, ...results.restores.map((r) => r.secs ?? 0));
    let n = 0;
    for (const c of order) {
      n++;
      if (c.optional && remaining() < 2 * lastRestoreMs() + 20_000) {
        results.skipped.push(`replay ${c.key} #2 (time budget)`);
        continue;
      }
      await restoreStep(replay, c, n);
    }
  }
}

async function restoreStep(replay, c, n) {
  const dir = mkPgDir(join(tmpRoot, `restore-${n}-${c.key}`));
  const data = join(dir, 'data');
  await run('cp', ['-a', replay.baseDir, data], { timeoutMs: 300_000 });
  const cl = new Cluster(`restore-${n}-${c.key}`, data, await freePort());
  let brConf = null;
  if (c.async) {
    const br = pgbrConfig(`restore-${n}`, { repoLines: [], repoPath: replay.brDual.repo, pgPath: data, async: true, extra: { 'process-max': '2', 'archive-get-queue-max': '128MiB' }, peer: c.peer });
    brConf = br.conf;
  }
  const cmd = c.cmd(brConf);
  appendConf(data, { port: String(cl.port), unix_socket_directories: cl.sockDir, archive_mode: 'off', archive_command: '', restore_command: cmd, recovery_target_action: 'promote', hot_standby: 'on' }, 'agent bench restore');
  writePgFile(join(data, 'recovery.signal'), '');
  const lastStart = lsnOf(BigInt(segNo(replay.backlog.last)) * BigInt(SEG));
  const nodeMark = fileSize(nodeCounter.file);
  log(`replay ${c.key} (#${n}): restore_command = ${T(cmd)}`);
  const load = loadavg()[0];
  const cpu0 = cpuTimes();
  // From zero: the startup process is new; its cutime + cstime = CPU of the restore_command calls.
  const sampler = toolSampler(c.tool, () => startupPid(cl), { fromZero: true });
  const t0 = performance.now();
  let secs = null;
  let replayedSecs = null;
  let error = null;
  try {
    await cl.start(Math.ceil(RESTORE_TIMEOUT_MS / 1000), { PGARK_NODE: nodeCounter.fetchScript });
    const { at } = await cl.watch(
      `SELECT pg_is_in_recovery()::text || '|' || coalesce((pg_last_wal_replay_lsn() >= '${lastStart}')::text, 'false')`,
      (line) => {
        const [inRec, reached] = line.split('|');
        if (reached === 'true' && replayedSecs === null) replayedSecs = (performance.now() - t0) / 1000;
        return inRec === 'false';
      },
      RESTORE_TIMEOUT_MS,
    );
    secs = (at - t0) / 1000;
  } catch (e) {
    error = e;
  }
  const cpuBusy = busyPct(cpu0, cpuTimes());
  const sampled = sampler.stop();
  await cl.stop('immediate');
  const serverLog = existsSync(cl.logFile) ? readFileSync(cl.logFile, 'utf8') : '';
  const redo = /redo done at ([0-9A-F]+)\/([0-9A-F]+)/.exec(serverLog);
  let redoSeg = null;
  if (redo) {
    const seg = ((BigInt('0x' + redo[1]) << 32n) | BigInt('0x' + redo[2])) / BigInt(SEG);
    redoSeg = '00000001' + (seg / 256n).toString(16).toUpperCase().padStart(8, '0') + (seg % 256n).toString(16).toUpperCase().padStart(8, '0');
  }
  const r = {
    key: c.key,
    label: c.label,
    n,
    command: T(cmd),
    ok: !error,
    error: error ? error.message.split('\n')[0] : null,
    segments: replay.segments,
    secs,
    replayedSecs,
    segPerSec: secs ? replay.segments / secs : null,
    complete: redoSeg === replay.backlog.last,
    redoDone: redo ? `${redo[1]}/${redo[2]}` : null,
    restored: (serverLog.match(/restored log file "[0-9A-F]{24}" from archive/g) ?? []).length,
    nodeStarts: linesSince(nodeCounter.file, nodeMark).length,
    nodeStartFiles: linesSince(nodeCounter.file, nodeMark).map((l) => l.split(' ')[1]),
    cpuBusyPct: cpuBusy,
    replayCpuSecs: sampled.rootCpuSecs,
    callsCpuSecs: sampled.callsCpuSecs,
    detachedCpuSecs: sampled.detachedCpuSecs,
    sumKiB: sampled.sumKiB,
    load,
  };
  results.restores.push(r);
  if (error) {
    log(`replay ${c.key}: FAILED: ${r.error}`);
    results.notes.push(`replay ${c.key} #${n} failed: ${T(error.message).slice(0, 1500)}\n${T(serverLog.slice(-2500))}`);
  } else {
    log(`replay ${c.key}: ${r.segments} segments in ${secs.toFixed(2)} s = ${r.segPerSec.toFixed(1)} seg/s (last segment reached at ${f2(replayedSecs)} s), redo done at ${r.redoDone} (${r.complete ? 'complete' : 'INCOMPLETE'}), Node starts ${r.nodeStarts}${r.nodeStarts ? ` (${r.nodeStartFiles.join(' ')})` : ''}`);
    if (!r.complete) results.notes.push(`replay ${c.key} #${n}: redo ended in ${redoSeg}, expected ${replay.backlog.last}`);
  }
  // detached prefetch / async workers finish before the copy goes
  const until = Date.now() + 15_000;
  while (strayProcesses().some((pid) => (argvOf(pid).join(' ') ?? '').includes(dir)) && Date.now() < until) await sleep(200);
  rmSync(dir, { recursive: true, force: true });
}

// ---------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------

const ratio = (a, b) => (a == null || b == null || !(b > 0) ? null : a / b);
const mbps = (segPerSec) => (segPerSec == null ? null : (segPerSec * SEG) / MB);
const verdict = (x, target) => (x == null ? 'n/a' : x >= target ? `**met** (${f2(x)}x ≥ ${target}x)` : `**not met** (${f2(x)}x < ${target}x)`);

/** Pooled rate (total segments / total seconds) of the successful runs of one store+tool. */
function pooled(store, key) {
  const rows = results.drains.filter((r) => r.store === store && r.key === key && r.ok);
  if (!rows.length) return null;
  const segs = rows.reduce((a, r) => a + r.segments, 0);
  const secs = rows.reduce((a, r) => a + r.secs, 0);
  return { runs: rows.length, rate: segs / secs, rates: rows.map((r) => r.segPerSec), label: rows[0].tool };
}
function pooledRestore(key) {
  const rows = results.restores.filter((r) => r.key === key && r.ok && r.complete);
  if (!rows.length) return null;
  const segs = rows.reduce((a, r) => a + r.segments, 0);
  const secs = rows.reduce((a, r) => a + r.secs, 0);
  const rep = rows.filter((r) => r.replayedSecs != null);
  const repSecs = rep.reduce((a, r) => a + r.replayedSecs, 0);
  return { runs: rows.length, rate: segs / secs, rates: rows.map((r) => r.segPerSec), replayRate: rep.length ? rep.reduce((a, r) => a + segNoSpan(r), 0) / repSecs : null, label: rows[0].label };
}
function toolCpuCell(r) {
  if (r.callsCpuSecs == null) return 'n/a';
  const total = r.callsCpuSecs + (r.detachedCpuSecs ?? 0);
  return `${f2(r.callsCpuSecs)} + ${f2(r.detachedCpuSecs ?? 0)} = ${((1000 * total) / r.segments).toFixed(0)}`;
}

/** Segments fully replayed when replay entered the last archived segment. */
const segNoSpan = (r) => r.segments - 1;

function report(error) {
  const out = [MARKER, ''];
  out.push('## Environment', '', environmentLines({ started, startLoad, command: `node bench/agent.mjs${argv.length ? ' ' + argv.join(' ') : ''}` }), '');
  if (s3) out.push(`- s3rver ${pkgVersion('s3rver')} with TLS: \`${s3.command}\``, '');
  if (DRAIN_PUSH_CLIENTS.some((c) => c !== PUSH_CLIENT)) out.push(`**Development run:** the agent drains used \`${DRAIN_PUSH_CLIENTS.join('`, `')}\` (bin/pgark-wal-push: ${PUSH_CLIENT}).`, '');
  if (error) out.push(`**Run failed:** \`${T(String(error.message ?? error).split('\n')[0])}\` — tables below are partial.`, '');
  out.push(
    `Cluster: PostgreSQL 15, 16 MiB segments, \`${Object.entries(results.pgConf ?? {})
      .filter(([k]) => ['shared_buffers', 'max_wal_size', 'synchronous_commit', 'autovacuum', 'checkpoint_timeout'].includes(k))
      .map(([k, v]) => `${k}=${v}`)
      .join(' ')}\`; \`pgbench -i -s ${SCALE}\` once, then per backlog archive_command=/bin/false, \`CHECKPOINT\`, \`pgbench ${BACKLOG_PGBENCH_ARGS.join(' ').replace('BULK@1', 'bulk.sql@1')}\` until ${SEGMENTS} segments are \`.ready\` (${LAT_CALLS} for the latency backlog), \`pg_switch_wal()\` (bulk.sql as in bench/archive-drain.mjs). ` +
      `Environment of the postmaster (reaches archive_command): \`${results.serverEnv ?? ''}\`. MB = 10^6 bytes, MiB = 2^20 bytes.`,
    '',
  );

  // --- targets -----------------------------------------------------------------------------
  const fsA = pooled('fs', 'agent');
  const fsC = pooled('fs', 'cp');
  const s3A = pooled('s3', 'agent');
  const rA = pooledRestore('pgark');
  const rC = pooledRestore('cp');
  // The targets are against the newest peer (issue 17); every peer gets its ratio.
  const fsB = pooled('fs', NEWEST.key);
  const rB = pooledRestore(NEWEST.key);
  const fast = results.latency.find((l) => l.label.includes('fast path'));
  const base = results.latency.find((l) => l.label.includes('baseline'));
  out.push('## Targets', '', '| target (issue 17 item 5; issue 5) | measured | result |', '|---|---|---|');
  for (const peer of [...PEERS].reverse()) {
    const b = pooled('fs', peer.key);
    out.push(`| fs drain: agent ≥ 1.3× ${peer.name} async${peer === NEWEST ? '' : ' (older peer)'} | ${f1(fsA?.rate)} vs ${f1(b?.rate)} segments/s | ${verdict(ratio(fsA?.rate, b?.rate), 1.3)} |`);
  }
  out.push(`| fs drain: agent ≥ 0.9× cp+fsync | ${f1(fsA?.rate)} vs ${f1(fsC?.rate)} segments/s | ${verdict(ratio(fsA?.rate, fsC?.rate), 0.9)} |`);
  for (const peer of [...PEERS].reverse()) {
    const b = pooledRestore(peer.key);
    out.push(`| replay: pgark prefetch ≥ 1.0× ${peer.name} async archive-get (until promoted)${peer === NEWEST ? '' : ' (older peer)'} | ${f1(rA?.rate)} vs ${f1(b?.rate)} segments/s | ${verdict(ratio(rA?.rate, b?.rate), 1.0)} |`);
  }
  if (fast) {
    const net = base ? fast.median - base.median : null;
    out.push(`| fast path median per-call overhead ≤ 10 ms | median ${f1(fast.median)} ms per call (${f1(net)} ms above \`sh -c /bin/true\`), p90 ${f1(fast.p90)} ms, ${fast.calls} calls | ${fast.failed ? '**calls failed**' : fast.median <= 10 ? '**met**' : '**not met**'} |`);
  }
  if (s3A) out.push('', `s3rver (no target in the issue): agent ${f1(s3A.rate)} segments/s; ${PEERS.map((peer) => { const b = pooled('s3', peer.key); return `${peer.name} async ${f1(b?.rate)} = ${f2(ratio(s3A.rate, b?.rate))}x`; }).join('; ')}.`, '');
  else out.push('');

  // --- drains ------------------------------------------------------------------------------
  out.push('## 1. Drain of a ready backlog', '');
  out.push(
    'Each run on its own fresh backlog. Clock: from the SIGHUP that installs the candidate\'s archive_command until `pg_stat_archiver.last_archived_wal` reaches the last ready segment (one connection polling every 50 ms). ' +
      'For pgark the agent (`pgark agent`, started at the same instant as the SIGHUP, i.e. when the backlog already exists) stores segments ahead and `archive_command = bin/pgark-wal-push %p ...` answers from its records; a segment without a record makes the client run the full `pgark wal-push` (Node), counted as "Node starts" (with how many of them found the segment locked by a worker storing it, in which case Node only waits for that worker\'s record; the others push the segment themselves). ' +
      `pgBackRest (${PEERS.map((p) => `\`${p.bin}\` = ${p.version}`).join(', ')}): \`archive-async=y\`, \`process-max=2\`, \`compress-type=lz4\`, spool path; 2.46 and newer also \`repo1-bundle=y repo1-block=y\` (backup options, which archive-push and archive-get ignore). cp: \`cp\`, \`sync FILE\` (fsync), \`mv\`, uncompressed. pgark and pgBackRest compress with lz4.`,
    '',
  );
  out.push(`| store | candidate | runs | segments/s (pooled) | MB/s | ${PEERS.map((p) => `vs ${p.name} async`).join(' | ')} | vs cp+fsync | per-run segments/s |`, `|---|---|---|---|---|${PEERS.map(() => '---|').join('')}---|---|`);
  for (const store of ['fs', 's3']) {
    for (const key of ['agent', ...PEERS.map((p) => p.key), 'cp']) {
      const p = pooled(store, key);
      if (!p) continue;
      const c = pooled(store, 'cp');
      out.push(`| ${store} | ${p.label} | ${p.runs} | ${f1(p.rate)} | ${mbps(p.rate).toFixed(0)} | ${PEERS.map((peer) => `${f2(ratio(p.rate, pooled(store, peer.key)?.rate))}x`).join(' | ')} | ${c ? f2(ratio(p.rate, c.rate)) + 'x' : '—'} | ${p.rates.map(f1).join(', ')} |`);
    }
  }
  out.push('', 'Every run, in execution order:', '');
  out.push('| # | store | candidate | run | result | segments | seconds | segments/s | stored MB | agent: stored / already there / errors | Node starts | agent peak RSS MiB (%M; VmHWM) | agent CPU s (ms/segment) | tool CPU s: calls + detached = ms/segment | Σ RSS of the tool MiB | machine CPU busy | failed_count Δ | load avg |');
  out.push('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  results.drains.forEach((r, i) => {
    const a = r.agent;
    out.push(
      `| ${i + 1} | ${r.store} | ${r.tool} | ${r.run} | ${r.ok ? 'ok' : 'FAILED'} | ${r.segments} | ${f2(r.secs)} | ${f1(r.segPerSec)} | ${r.stored ? (r.stored.bytes / MB).toFixed(0) : '—'} | ${a ? `${a.final?.pushed ?? '?'} / ${a.final?.alreadyArchived ?? '?'} / ${a.final?.errors ?? '?'}` : '—'} | ${r.key === 'agent' ? `${r.nodeStarts} (${r.nodeStartsLocked} locked)` : '—'} | ${a ? `${fmtMiB(a.rssKiB)}; ${fmtMiB(a.hwmKiB)}` : '—'} | ${a ? `${f2(a.cpuSecs)} (${a.cpuSecs == null ? 'n/a' : ((1000 * a.cpuSecs) / r.segments).toFixed(0)})` : '—'} | ${toolCpuCell(r)} | ${r.rssTool === 'none' ? '—' : fmtMiB(r.sumKiB)} | ${f1(r.cpuBusyPct)}% | ${r.failedDelta == null ? 'n/a' : r.failedDelta - (r.binFalseFailures ?? 0)} | ${f1(r.load)} → ${f1(r.loadAfter)} |`,
    );
  });
  out.push(
    '',
    '"agent: stored / already there / errors" are the agent\'s final counters (`--json` when stopped): segments it stored, found already stored (by a fallback call or a look-ahead worker), and failed attempts. ' +
      '"Node starts": calls of the shell client that could not answer from a record and ran the full `pgark wal-push` (logged by the `PGARK_NODE` wrapper); each such full call also starts a detached look-ahead worker (--push-ahead 16) that stores further ready segments alongside the agent. ' +
      'Agent CPU = user + system of the agent process (GNU time), not of the fallback calls. Tool CPU: "calls" = CPU of every archive_command invocation (growth of the archiver\'s cutime + cstime: the shell client, its fallbacks, pgBackRest\'s archive-push calls, cp), "detached" = CPU of the tool\'s processes outside the archiver (the agent, pgark look-ahead workers, pgBackRest\'s async worker and its local processes), last utime + stime seen per process every 100 ms. Σ RSS = summed RSS of all the tool\'s processes of the run (agent, fallback calls and their workers; pgBackRest\'s archive-push calls and async worker), sampled every 100 ms. ' +
      'Machine CPU busy = share of both cores busy during the drain (/proc/stat, every process on the machine). failed_count Δ = failures of the candidate\'s archive_command during the drain (the backlog\'s /bin/false, still retried in the instant before the SIGHUP, is not counted). Load avg = 1-minute load average before → after.',
    '',
  );
  if (results.skipped.length) out.push(`Skipped for the time budget: ${results.skipped.join(', ')}.`, '');
  if (results.verify.length) {
    out.push('Integrity of what the agent stored:', '');
    for (const v of results.verify) out.push(`- ${v.label}: \`${v.command}\` → exit ${v.code}: ${v.out.split('\n').slice(-2).join(' / ')}`);
    out.push('');
  }

  // --- latency -----------------------------------------------------------------------------
  out.push('## 2. Per-call latency of archive_command', '');
  const as = results.agentStore;
  if (as) {
    out.push(
      `A backlog of ${as.segments} ready segments with archive_command=/bin/false; \`pgark agent\` alone stored all of it in ${f2(as.secs)} s (${f1(as.segPerSec)} segments/s including its start-up; peak RSS ${fmtMiB(as.agent.rssKiB)} MiB, CPU ${f2(as.agent.cpuSecs)} s = ${((1000 * (as.agent.cpuSecs ?? 0)) / as.segments).toFixed(0)} ms/segment; machine CPU ${f1(as.cpuBusyPct)}% busy), then it was stopped. ` +
        'Each command below was then run directly as `postgres` through `/bin/sh -c` (as the archiver runs archive_command), one call per segment, timed by a small Node process around `spawnSync` (its own fork cost is in the baseline row).',
      '',
    );
  }
  out.push('| command | calls | failed | median ms | p90 ms | min ms | max ms | first call ms | CPU ms/call (user+sys, mean) | load avg |', '|---|---|---|---|---|---|---|---|---|---|');
  for (const l of results.latency) out.push(`| ${l.label} | ${l.calls} | ${l.failed} | ${f1(l.median)} | ${f1(l.p90)} | ${f1(l.min)} | ${f1(l.max)} | ${f1(l.first)} | ${f1(l.cpuMs)} | ${f1(l.load)} |`);
  out.push('');
  for (const l of results.latency) out.push(`- ${l.label}: ${l.note}; e.g. \`${l.env ? l.env + ' ' : ''}${l.example}\`${l.firstErr ? ` — first failure: \`${l.firstErr.replace(/\n/g, ' ')}\`` : ''}`);
  out.push('');

  // --- agent RSS ---------------------------------------------------------------------------
  out.push('## 3. Peak RSS of the agent', '');
  const agentRows = [...(as ? [{ what: `stores ${as.segments} segments alone (fs)`, a: as.agent }] : []), ...results.drains.filter((r) => r.agent).map((r) => ({ what: `${r.store} drain #${r.run} (${r.segments} segments)`, a: r.agent }))];
  out.push('| agent run | %M MiB (GNU time) | VmHWM MiB (/proc, before SIGTERM) | CPU s | wall s | stopped cleanly |', '|---|---|---|---|---|---|');
  for (const { what, a } of agentRows) out.push(`| ${what} | ${fmtMiB(a.rssKiB)} | ${fmtMiB(a.hwmKiB)} | ${f2(a.cpuSecs)} | ${f1(a.wallSecs)} | ${a.stoppedCleanly ? 'yes' : 'no (killed)'} |`);
  out.push('');

  // --- replay ------------------------------------------------------------------------------
  out.push('## 4. Replay from the archive (restore_command)', '');
  if (results.replayArchive) {
    const ra = results.replayArchive;
    out.push(
      `A \`pg_basebackup -X none\` copy taken before a ${SEGMENTS}-segment backlog that archive_command = pgark wal-push && pgbackrest archive-push (sync) && cp stored in all three archives (${ra.segments} segments ${ra.first}..${ra.last} to replay; archived in ${f1(ra.secs)} s). ` +
        'Per candidate a fresh copy with `recovery.signal`, `recovery_target_action=promote`, `hot_standby=on`, timed from `pg_ctl start` until `pg_is_in_recovery()` is false (start-up, replay of every segment, the end of the archive found, promotion with its end-of-recovery checkpoint); ' +
        '"last segment reached" is when `pg_last_wal_replay_lsn()` passed the start of the last archived segment (replay only). All archives are in the page cache; the main cluster was stopped.',
      '',
    );
  }
  out.push(`| candidate | runs | segments/s until promoted (pooled) | vs ${NEWEST.name} async | segments/s until the last segment (pooled) | vs ${NEWEST.name} async | ${PEERS.length > 1 ? PEERS.slice(0, -1).map((p) => `until promoted vs ${p.name} async | `).join('') : ''}per-run segments/s |`, `|---|---|---|---|---|---|${PEERS.slice(0, -1).map(() => '---|').join('')}---|`);
  for (const p of [rA, pooledRestore('pgark-base'), ...PEERS.map((peer) => pooledRestore(peer.key)), rC]) {
    if (!p) continue;
    out.push(`| ${p.label} | ${p.runs} | ${f1(p.rate)} | ${f2(ratio(p.rate, rB?.rate))}x | ${f1(p.replayRate)} | ${f2(ratio(p.replayRate, rB?.replayRate))}x | ${PEERS.slice(0, -1).map((peer) => `${f2(ratio(p.rate, pooledRestore(peer.key)?.rate))}x | `).join('')}${p.rates.map(f1).join(', ')} |`);
  }
  out.push('', 'Every run, in execution order:', '');
  out.push('| # | candidate | result | segments | seconds until promoted | seconds until the last segment | segments/s | redo complete | "restored log file" lines | Node starts | replay CPU s (startup process) | tool CPU s: calls + detached = ms/segment | Σ RSS of the tool MiB | machine CPU busy | load avg |', '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const r of results.restores) {
    out.push(`| ${r.n} | ${r.key} | ${r.ok ? 'ok' : 'FAILED'} | ${r.segments} | ${f2(r.secs)} | ${f2(r.replayedSecs)} | ${f1(r.segPerSec)} | ${r.complete ? 'yes' : 'NO'} (${r.redoDone ?? '-'}) | ${r.restored} | ${r.key.startsWith('pgark') ? r.nodeStarts : '—'} | ${f2(r.replayCpuSecs)} | ${toolCpuCell(r)} | ${r.key === 'cp' ? '—' : fmtMiB(r.sumKiB)} | ${f1(r.cpuBusyPct)}% | ${f1(r.load)} |`);
  }
  out.push('', 'Replay CPU = user + system of the startup process (it replays WAL and runs restore_command), last value sampled every 100 ms. Tool CPU: "calls" = CPU of the restore_command invocations (the startup process\'s cutime + cstime, sampled every 100 ms, so the calls of the last 100 ms before promotion can be missing), "detached" = the tool\'s processes outside the startup process (pgark\'s prefetch worker, pgBackRest\'s async archive-get and its local processes).', '');
  out.push('"Node starts": restore_command calls that bin/pgark-wal-fetch could not answer in the shell (from the prefetch area, or by asking the prefetch worker that serves its options) and that ran the full `pgark wal-fetch`, with the file each was for: typically the timeline history probe before any segment (no worker yet) and the first segment, which starts the prefetch worker.', '');
  const starts = results.restores.filter((r) => r.key.startsWith('pgark') && r.nodeStartFiles);
  if (starts.length) out.push(...starts.map((r) => `- run #${r.n} (${r.key}): ${r.nodeStartFiles.length ? r.nodeStartFiles.map((f) => `\`${f}\``).join(', ') : 'none'}`), '');

  // --- commands ----------------------------------------------------------------------------
  out.push('## Exact commands', '', '`$TMP` is the run\'s temp dir; secrets are redacted (`***`). Everything runs as `postgres`.', '');
  const seen = new Set();
  for (const r of results.drains) {
    out.push(`- ${r.store} ${r.tool} #${r.run}: archive_command = \`${T(r.cmd)}\``);
    if (r.agentRepo) out.push(`  - agent: \`${showEnv(r.agentEnv ?? {}) ? showEnv(r.agentEnv) + ' ' : ''}${TIME} -f '%M %e %U %S' -o $TMP/rss/agent-${r.store}-${r.run}.txt PGARK_NODE=${T(NODE)} ${T(agentWords(r.agentRepo, '$PGDATA').map(shq).join(' '))}\` (PGDATA = \`${T(main?.dataDir ?? '')}\`), SIGTERM when the drain is over`);
  }
  if (results.replayArchive) out.push(`- replay archive: archive_command = \`${results.replayArchive.command}\``);
  for (const r of results.restores) {
    if (seen.has(r.key)) continue;
    seen.add(r.key);
    out.push(`- replay ${r.key}: restore_command = \`${r.command}\`${r.key.startsWith('pgark') ? ' (postmaster environment `PGARK_NODE=$TMP/node-counted-fetch`)' : ''}`);
  }
  out.push(`- the \`PGARK_NODE\` wrapper \`$TMP/node-counted\`: appends \`<command> <file> locked|unlocked|-\` (the words after the Node flags and pgark.js) to \`$TMP/node-starts.log\` (locked: \`<pg_wal>/.pgark/pushed/<segment>.lock\` exists), then \`exec ${NODE} "$@"\``, '');
  const confs = new Map();
  for (const r of results.drains) if (r.pgbrConf && !confs.has(r.store)) confs.set(r.store, r.pgbrConf);
  for (const [store, text] of confs) out.push(`pgbackrest.conf of the ${store} async drain (run 1; mode 0600, owner postgres):`, '', '```ini', text.trim(), '```', '');

  out.push('## Backlogs', '', '| backlog | ready segments | range | pgbench seconds |', '|---|---|---|---|');
  for (const b of results.backlogs) out.push(`| ${b.label} | ${b.count} | ${b.first}..${b.last} | ${f1(b.genSecs)} |`);
  out.push('');
  const notes = [...results.notes];
  for (const r of results.drains) if (r.agent && (r.agent.final?.errors || !r.agent.stoppedCleanly)) notes.push(`${r.id}: agent stderr tail:\n${r.agent.stderrTail}`);
  for (const r of results.drains) if (!r.idle && r.rssTool !== 'none') notes.push(`${r.id}: processes of the tool still running 30 s after the drain`);
  if (notes.length) out.push('## Notes', '', ...notes.map((n) => '```\n' + n + '\n```'), '');
  out.push(`Total bench time: ${((Date.now() - started) / 1000).toFixed(0)} s.`, '');
  return out.join('\n');
}


// ---------------------------------------------------------------------------

let failure = null;
try {
  log(`temp dir ${tmpRoot}; ${SEGMENTS} segments; rounds ${ROUNDS}; stores ${STORES.join(', ')}; budget ${TOTAL_BUDGET_MS / 1000} s; load average ${startLoad.map((l) => l.toFixed(2)).join(' ')}`);
  await runBench();
} catch (e) {
  failure = e;
  log(`FAILED: ${e.stack ?? e}`);
  for (const c of clusters) log(`--- ${c.name} log tail ---\n${c.logTail()}`);
  for (const a of agents) log(`--- agent ${a.label} stderr ---\n${a.err().slice(-2000)}`);
} finally {
  await cleanup();
}

const md = report(failure);
console.log(md);
if (WRITE && (results.drains.length || results.restores.length || results.latency.length)) {
  writeGenerated(RESULTS, MARKER, md, 'Archive agent benchmark');
  log(`wrote ${RESULTS}`);
}
process.exit(failure || results.drains.some((r) => !r.ok) || results.restores.some((r) => !r.ok || !r.complete) ? 1 : 0);
