// Archive drain / restore benchmark: pgark vs pgBackRest vs cp+fsync on ONE throwaway
// PostgreSQL 15 cluster with the same pgbench load.
//
//   npm run bench:archive                 # as root (the cluster runs as the `postgres` OS user)
//   node bench/archive-drain.mjs --segments 100 [--keep] [--no-write]
//
// Needs: postgresql-15 (+ client), pgbackrest, GNU time (/usr/bin/time, Debian package `time`),
// coreutils `sync FILE`. Writes bench/results/archive.md (text above the GENERATED marker is kept).
//
// Method (see bench/results/archive.md for the write-up):
//  1. drain: for each candidate, archive_command = '/bin/false' + reload, CHECKPOINT, pgbench until
//     >= N segments are .ready, pg_switch_wal(); then ALTER SYSTEM SET archive_command = <candidate>,
//     SIGHUP the postmaster and time until pg_stat_archiver.last_archived_wal reaches the last
//     ready segment (one persistent psql connection running `\watch 0.05`). Every candidate's
//     archive_command is wrapped in `/usr/bin/time -f %M -a -o FILE` for its peak RSS.
//  2. restore: a pg_basebackup -X none taken before a dedicated backlog archived by pgark,
//     pgBackRest and cp at once; each restore candidate gets a copy with recovery.signal and is
//     timed from `pg_ctl start` until pg_is_in_recovery() is false.
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import {
  appendFileSync,
  chmodSync,
  chownSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

// ---------------------------------------------------------------------------
// Settings
// ---------------------------------------------------------------------------

const ROOT = fileURLToPath(new URL('..', import.meta.url)).replace(/\/$/, '');
const PGARK = join(ROOT, 'bin', 'pgark.js');
const NODE = process.execPath;
const PG_BIN = process.env.PG_BIN ?? '/usr/lib/postgresql/15/bin';
const PGBACKREST = '/usr/bin/pgbackrest';
const TIME = '/usr/bin/time';
const RESULTS = join(ROOT, 'bench/results/archive.md');
const MARKER = '<!-- GENERATED: everything below is rewritten by bench/archive-drain.mjs -->';
const SEG = 16 * 1024 * 1024;
const MB = 1e6;

const argv = process.argv.slice(2);
const argValue = (name, dflt) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : dflt;
};
const SEGMENTS = Number(argValue('--segments', '100'));
const KEEP = argv.includes('--keep');
const WRITE = !argv.includes('--no-write');
const TOTAL_BUDGET_MS = Number(argValue('--budget-sec', '870')) * 1000; // whole run < 15 min
const DRAIN_TIMEOUT_MS = 240_000;
const BACKLOG_TIMEOUT_MS = 240_000;
const RESTORE_TIMEOUT_MS = 240_000;
const PGBENCH_SCALE = 20;
// TPC-B-like transactions mixed with small bulk inserts (1 in 5 transactions inserts 500 rows):
// a realistic OLTP + batch WAL mix that produces WAL about twice as fast as TPC-B alone on a
// small machine, so the six 100-segment backlogs fit in the time budget.
const BULK_SQL = `\\set aid random(1, 100000 * :scale)
INSERT INTO bench_bulk SELECT g, :aid + g, 'order ' || (:aid + g) || ' ref ' || md5((:aid + g)::text) || ' status shipped' FROM generate_series(1, 500) g;
`;
const PGBENCH_ARGS = ['-n', '-c', '4', '-j', '2', '-M', 'prepared', '-b', 'tpcb-like@4', '-f', 'BULK@1'];
const pgbenchArgs = () => PGBENCH_ARGS.map((a) => (a === 'BULK@1' ? `${join(tmpRoot, 'bulk.sql')}@1` : a));

const started = Date.now();
const deadline = started + TOTAL_BUDGET_MS;
const log = (...a) => console.error(`[${((Date.now() - started) / 1000).toFixed(1).padStart(6)}s]`, ...a);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const remaining = () => deadline - Date.now();
const bounded = (ms) => {
  const r = remaining();
  if (r <= 0) throw new Error('overall time budget exhausted');
  return Math.min(ms, r);
};

if (process.getuid?.() !== 0) {
  console.error('bench/archive-drain.mjs must run as root (the clusters run as the postgres OS user via setpriv).');
  process.exit(2);
}
for (const f of [join(PG_BIN, 'initdb'), PGBACKREST, TIME, join(ROOT, 'dist/src/cli/main.js')]) {
  if (!existsSync(f)) {
    const hint = f === TIME ? ' (apt-get install -y time)' : f.includes('dist') ? ' (npm run build)' : '';
    console.error(`missing ${f}${hint}`);
    process.exit(2);
  }
}

const PG_USER = { uid: Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' })), gid: Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' })) };
const BASE_ENV = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8', LC_MESSAGES: 'C' };

// ---------------------------------------------------------------------------
// Process helpers
// ---------------------------------------------------------------------------

/** Spawn with a timeout; as the postgres user via setpriv when asPg. Resolves {code, stdout, stderr}. */
function run(cmd, args, { asPg = false, env = {}, timeoutMs = 120_000, input, allowFail = false, cwd = '/' } = {}) {
  const file = asPg ? 'setpriv' : cmd;
  const fullArgs = asPg ? [`--reuid=${PG_USER.uid}`, `--regid=${PG_USER.gid}`, '--init-groups', '--', cmd, ...args] : args;
  const fullEnv = { ...BASE_ENV, HOME: asPg ? '/var/lib/postgresql' : '/root', ...env };
  return new Promise((resolve, reject) => {
    const child = spawn(file, fullArgs, { env: fullEnv, cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    const out = [];
    const err = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, bounded(timeoutMs));
    child.stdout.on('data', (d) => out.push(d));
    child.stderr.on('data', (d) => err.push(d));
    child.stdin.on('error', () => {});
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const r = { code, signal, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
      const what = `${cmd} ${args.join(' ')}`;
      if (timedOut) reject(new Error(`timed out after ${timeoutMs} ms: ${what}\n${r.stderr.slice(-2000)}`));
      else if (code !== 0 && !allowFail) reject(new Error(`exit ${code ?? signal}: ${what}\n${r.stdout.slice(-2000)}\n${r.stderr.slice(-2000)}`));
      else resolve(r);
    });
    child.stdin.end(input ?? '');
  });
}

const sq = (s) => `'${String(s).replace(/'/g, "''")}'`; // SQL / postgresql.conf literal
const shq = (s) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function mkPgDir(p) {
  mkdirSync(p, { recursive: true, mode: 0o700 });
  chownSync(p, PG_USER.uid, PG_USER.gid);
  chmodSync(p, 0o700);
  return p;
}

function writePgFile(p, content) {
  writeFileSync(p, content, { mode: 0o600 });
  chownSync(p, PG_USER.uid, PG_USER.gid);
}

/** Make every ancestor of p searchable by others (o+x only), as the test harness does. */
function makeAncestorsTraversable(p) {
  let dir = p;
  for (;;) {
    const parent = join(dir, '..');
    if (parent === dir) break;
    dir = parent;
    const st = statSync(dir);
    if ((st.mode & 0o001) === 0) chmodSync(dir, (st.mode & 0o7777) | 0o001);
    if (dir === '/') break;
  }
}

function treeBytes(p) {
  let total = 0;
  let files = 0;
  const walk = (d) => {
    for (const e of readdirSync(d)) {
      const f = join(d, e);
      const st = lstatSync(f);
      if (st.isDirectory()) walk(f);
      else if (st.isFile()) {
        total += st.size;
        files++;
      }
    }
  };
  if (existsSync(p)) walk(p);
  return { bytes: total, files };
}

const segNo = (name) => parseInt(name.slice(8, 16), 16) * 0x100 + parseInt(name.slice(16, 24), 16);
const isSeg = (n) => /^[0-9A-F]{24}$/.test(n);

// ---------------------------------------------------------------------------
// Cluster control
// ---------------------------------------------------------------------------

const tmpRoot = mkdtempSync('/tmp/pgark-archbench-');
chownSync(tmpRoot, PG_USER.uid, PG_USER.gid);
chmodSync(tmpRoot, 0o711);
const clusters = new Set(); // data dirs we started

class Cluster {
  constructor(name, dataDir, port) {
    this.name = name;
    this.dataDir = dataDir;
    this.port = port;
    this.sockDir = mkPgDir(join(tmpRoot, `sock-${name}`));
    this.logFile = join(tmpRoot, `${name}.log`);
    this.env = { PGHOST: '127.0.0.1', PGPORT: String(port), PGUSER: 'postgres', PGDATABASE: 'postgres' };
  }
  async start(timeoutSec = 120) {
    clusters.add(this);
    await run(join(PG_BIN, 'pg_ctl'), ['-D', this.dataDir, '-l', this.logFile, '-w', '-t', String(timeoutSec), 'start'], {
      asPg: true,
      timeoutMs: (timeoutSec + 20) * 1000,
    });
  }
  pid() {
    try {
      const pid = Number(readFileSync(join(this.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
      process.kill(pid, 0);
      return pid;
    } catch {
      return null;
    }
  }
  async stop(mode = 'fast') {
    if (this.pid() === null) return clusters.delete(this);
    await run(join(PG_BIN, 'pg_ctl'), ['-D', this.dataDir, '-m', mode, '-w', '-t', '60', 'stop'], { asPg: true, timeoutMs: 90_000, allowFail: true });
    clusters.delete(this);
  }
  async psql(sql, timeoutMs = 60_000) {
    const r = await run(join(PG_BIN, 'psql'), ['-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1', '-f', '-'], { env: this.env, input: sql, timeoutMs });
    return r.stdout.trim();
  }
  /**
   * One persistent connection running `<sql> \watch 0.05`; resolves with {row, at} (at =
   * performance.now() when the row arrived) for the first row for which pred(row) is true.
   */
  watch(sql, pred, timeoutMs, startedCb) {
    return new Promise((resolve, reject) => {
      const child = spawn(join(PG_BIN, 'psql'), ['-X', '-A', '-t', '-q'], { env: { ...BASE_ENV, ...this.env }, stdio: ['pipe', 'pipe', 'pipe'] });
      let buf = '';
      let err = '';
      let last = null;
      let first = true;
      let done = false;
      const finish = (fn, v) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        child.kill('SIGKILL');
        fn(v);
      };
      const timer = setTimeout(() => finish(reject, new Error(`watch timed out after ${timeoutMs} ms (last row: ${last}) ${err}`)), bounded(timeoutMs));
      child.stdout.on('data', (d) => {
        const at = performance.now();
        buf += d.toString();
        let i;
        while ((i = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, i).trim();
          buf = buf.slice(i + 1);
          if (!line) continue;
          last = line;
          if (first) {
            first = false;
            try {
              startedCb?.(line);
            } catch (e) {
              return finish(reject, e);
            }
          }
          if (pred(line)) return finish(resolve, { row: line, at });
        }
      });
      child.stderr.on('data', (d) => (err += d.toString()));
      child.on('close', (code) => finish(reject, new Error(`psql \\watch exited (${code}): ${err}`)));
      child.stdin.on('error', () => {});
      child.stdin.write(`${sql} \\watch 0.05\n`);
    });
  }
}

// ---------------------------------------------------------------------------
// Candidates
// ---------------------------------------------------------------------------

const pgarkBase = (repo) => [NODE, PGARK, 'wal-push', '%p', '--repo', repo, '--stanza', 'main'];
// one line per invocation: peak RSS KiB, wall s, user CPU s, system CPU s
const rssWrap = (file, words) => [TIME, '-f', '%M %e %U %S', '-a', '-o', file, ...words].map(shq).join(' ');

function pgbrConfig(dir, { repo, pgPath, port, sockDir, async = false, extra = {} }) {
  mkPgDir(dir);
  for (const d of ['log', 'lock', 'spool']) mkPgDir(join(dir, d));
  const lines = [
    '[global]',
    `repo1-path=${repo}`,
    `log-path=${join(dir, 'log')}`,
    `lock-path=${join(dir, 'lock')}`,
    `spool-path=${join(dir, 'spool')}`,
    'compress-type=lz4',
    `archive-async=${async ? 'y' : 'n'}`,
    'log-level-console=warn',
    'log-level-stderr=warn',
    ...Object.entries(extra).map(([k, v]) => `${k}=${v}`),
    '',
    '[main]',
    `pg1-path=${pgPath}`,
    ...(port ? [`pg1-port=${port}`, `pg1-socket-path=${sockDir}`, 'pg1-user=postgres'] : []),
    '',
  ];
  const conf = join(dir, 'pgbackrest.conf');
  writePgFile(conf, lines.join('\n'));
  return conf;
}

const cpArchive = (dir) => `test ! -f ${dir}/%f && cp %p ${dir}/%f.tmp && sync ${dir}/%f.tmp && mv ${dir}/%f.tmp ${dir}/%f`;

// ---------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------

const results = { drain: [], restore: [], backlogs: [], notes: [] };
let main;
let restoreCluster = null;

function strayProcesses() {
  // Processes started (indirectly) by this run: anything whose command line mentions tmpRoot
  // (pgark wal-prefetch workers, pgbackrest async workers, a leftover postgres).
  const pids = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    try {
      const cmd = readFileSync(`/proc/${e}/cmdline`, 'utf8');
      if (cmd.includes(tmpRoot)) pids.push(Number(e));
    } catch {
      /* gone */
    }
  }
  return pids;
}

async function cleanup() {
  for (const c of [...clusters]) {
    try {
      await c.stop('immediate');
    } catch (e) {
      log(`stop ${c.name}: ${e.message}`);
    }
  }
  const deadline2 = Date.now() + 10_000;
  let stray = strayProcesses();
  while (stray.length && Date.now() < deadline2) {
    await sleep(200);
    stray = strayProcesses();
  }
  for (const pid of stray) {
    log(`killing leftover process ${pid}: ${readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').slice(0, 200)}`);
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  if (KEEP) log(`--keep: left ${tmpRoot}`);
  else rmSync(tmpRoot, { recursive: true, force: true, maxRetries: 3 });
}

let cleaningUp = null;
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, () => {
    log(`${sig}: cleaning up`);
    (cleaningUp ??= cleanup()).finally(() => process.exit(130));
  });
}
// Hard stop: never run much past the budget even if something hangs outside a bounded wait.
const watchdog = setTimeout(() => {
  log('watchdog: budget exceeded by 60 s, cleaning up');
  (cleaningUp ??= cleanup()).finally(() => process.exit(3));
}, TOTAL_BUDGET_MS + 60_000);
watchdog.unref();

function readyFiles(dataDir) {
  return readdirSync(join(dataDir, 'pg_wal', 'archive_status'))
    .filter((f) => f.endsWith('.ready'))
    .map((f) => f.slice(0, -'.ready'.length))
    .sort();
}

async function setArchiveCommand(cmd) {
  await main.psql(`ALTER SYSTEM SET archive_command = ${sq(cmd)};`);
}

async function archiverStats() {
  const [last, count, failed] = (await main.psql("SELECT coalesce(last_archived_wal,'-'), archived_count, failed_count FROM pg_stat_archiver")).split('|');
  return { last, count: Number(count), failed: Number(failed) };
}

/** archive_command=/bin/false, CHECKPOINT, pgbench until >= SEGMENTS .ready, pg_switch_wal(). */
async function makeBacklog(label) {
  await setArchiveCommand('/bin/false');
  await main.psql('SELECT pg_reload_conf();');
  await sleep(500); // let the archiver pick up /bin/false (it is idle: nothing is ready)
  if (readyFiles(main.dataDir).length) throw new Error(`backlog ${label}: .ready files left over from the previous round`);
  await main.psql('CHECKPOINT;');
  const before = await archiverStats();
  const startLsn = await main.psql('SELECT pg_current_wal_lsn();');
  const t0 = performance.now();
  const bench = spawn(join(PG_BIN, 'pgbench'), [...pgbenchArgs(), '-T', '600'], { env: { ...BASE_ENV, ...main.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let benchOut = '';
  bench.stdout.on('data', (d) => (benchOut += d));
  bench.stderr.on('data', (d) => (benchOut += d));
  const exited = new Promise((r) => bench.on('close', r));
  const until = Date.now() + bounded(BACKLOG_TIMEOUT_MS);
  try {
    while (readyFiles(main.dataDir).length < SEGMENTS - 1) {
      if (bench.exitCode !== null) throw new Error(`pgbench exited early: ${benchOut.slice(-2000)}`);
      if (Date.now() > until) throw new Error(`backlog ${label}: fewer than ${SEGMENTS} ready segments after ${BACKLOG_TIMEOUT_MS} ms`);
      await sleep(100);
    }
  } finally {
    if (bench.exitCode === null) bench.kill('SIGINT');
    await Promise.race([exited, sleep(10_000)]);
    if (bench.exitCode === null && bench.signalCode === null) bench.kill('SIGKILL');
  }
  await main.psql('SELECT pg_switch_wal();');
  const genSecs = (performance.now() - t0) / 1000;
  const endLsn = await main.psql('SELECT pg_current_wal_lsn();');
  const after = await archiverStats();
  const ready = readyFiles(main.dataDir);
  if (after.count !== before.count) throw new Error(`backlog ${label}: ${after.count - before.count} segments were archived while /bin/false was set`);
  if (!ready.every(isSeg)) throw new Error(`backlog ${label}: unexpected ready files ${ready.filter((f) => !isSeg(f))}`);
  const first = ready[0];
  const last = ready.at(-1);
  if (segNo(last) - segNo(first) + 1 !== ready.length) throw new Error(`backlog ${label}: ready segments not contiguous (${first}..${last}, ${ready.length})`);
  const b = { label, count: ready.length, first, last, startLsn, endLsn, genSecs };
  results.backlogs.push(b);
  log(`backlog ${label}: ${b.count} ready segments ${first}..${last} in ${genSecs.toFixed(1)} s`);
  return b;
}

/** Set the candidate's archive_command, SIGHUP, time until last_archived_wal >= backlog.last. */
async function drain(label, cmd, backlog) {
  await setArchiveCommand(cmd);
  const before = await archiverStats();
  let t0 = 0;
  const pid = main.pid();
  const { at, row } = await main.watch(
    "SELECT coalesce(last_archived_wal,'-') || '|' || archived_count || '|' || failed_count FROM pg_stat_archiver",
    (line) => {
      const [last] = line.split('|');
      return t0 > 0 && isSeg(last.slice(0, 24)) && last.slice(0, 24) >= backlog.last;
    },
    DRAIN_TIMEOUT_MS,
    () => {
      // first row seen: the connection is up, start the clock and reload
      t0 = performance.now();
      process.kill(pid, 'SIGHUP');
    },
  );
  const secs = (at - t0) / 1000;
  const [, count, failed] = row.split('|');
  return { secs, archived: Number(count) - before.count, failedDelta: Number(failed) - before.failed };
}

function rssStats(file) {
  if (!existsSync(file)) return { max: null, calls: 0, cpu: 0, wallMax: null, wallMean: null };
  const rows = readFileSync(file, 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => /^\d+ [\d.]+ [\d.]+ [\d.]+$/.test(l))
    .map((l) => l.split(' ').map(Number));
  if (!rows.length) return { max: null, calls: 0, cpu: 0, wallMax: null, wallMean: null };
  const walls = rows.map((r) => r[1]);
  return {
    max: Math.max(...rows.map((r) => r[0])),
    calls: rows.length,
    cpu: rows.reduce((a, r) => a + r[2] + r[3], 0),
    wallMax: Math.max(...walls),
    wallMean: walls.reduce((a, b) => a + b, 0) / walls.length,
    wallFirst: walls[0],
  };
}

async function pgarkInfo(repo) {
  const r = await run(NODE, [PGARK, 'info', '--repo', repo, '--stanza', 'main', '--json'], { asPg: true, allowFail: true, timeoutMs: 60_000 });
  try {
    return JSON.parse(r.stdout);
  } catch {
    return { error: (r.stdout + r.stderr).slice(0, 500) };
  }
}

async function runBench() {
  makeAncestorsTraversable(PGARK);
  const access = spawnSync('setpriv', [`--reuid=${PG_USER.uid}`, `--regid=${PG_USER.gid}`, '--init-groups', '--', 'test', '-r', join(ROOT, 'dist/src/cli/main.js')]);
  if (access.status !== 0) throw new Error(`postgres cannot read ${ROOT}/dist; chmod -R o+rX ${ROOT}`);

  // --- cluster -------------------------------------------------------------
  const dataDir = join(mkPgDir(join(tmpRoot, 'main')), 'data');
  main = new Cluster('main', dataDir, await freePort());
  log(`initdb ${dataDir} (port ${main.port})`);
  await run(join(PG_BIN, 'initdb'), ['-D', dataDir, '-U', 'postgres', '--auth=trust', '--encoding=UTF8', '--locale=C', '--no-sync'], { asPg: true });
  const conf = {
    listen_addresses: '127.0.0.1',
    port: String(main.port),
    unix_socket_directories: main.sockDir,
    logging_collector: 'off',
    wal_level: 'replica',
    archive_mode: 'on',
    archive_command: '/bin/true',
    archive_timeout: '0',
    max_wal_size: '64GB',
    min_wal_size: '1GB',
    wal_keep_size: '64GB',
    checkpoint_timeout: '1h',
    shared_buffers: '256MB',
    synchronous_commit: 'off',
    autovacuum: 'off',
  };
  appendFileSync(join(dataDir, 'postgresql.conf'), '\n# archive bench\n' + Object.entries(conf).map(([k, v]) => `${k} = ${sq(v)}`).join('\n') + '\n');
  await main.start();
  log(`pgbench -i -s ${PGBENCH_SCALE}`);
  await run(join(PG_BIN, 'pgbench'), ['-i', '-q', '-s', String(PGBENCH_SCALE)], { env: main.env, timeoutMs: 300_000 });
  await main.psql('CREATE TABLE bench_bulk (id bigint, aid int, payload text); SELECT pg_switch_wal(); CHECKPOINT;');
  writeFileSync(join(tmpRoot, 'bulk.sql'), BULK_SQL);

  // --- repositories ----------------------------------------------------------
  const repos = mkPgDir(join(tmpRoot, 'repos'));
  const rssDir = mkPgDir(join(tmpRoot, 'rss'));
  const pgbr = (name, opts) => {
    const repo = mkPgDir(join(repos, name));
    return { repo, conf: pgbrConfig(join(tmpRoot, `pgbr-${name}`), { repo, pgPath: dataDir, port: main.port, sockDir: main.sockDir, ...opts }) };
  };
  const brSync = pgbr('pgbackrest-sync', {});
  const brAsync = pgbr('pgbackrest-async', { async: true, extra: { 'process-max': '2' } });
  const brDual = pgbr('dual-pgbackrest', {});
  const brSync2 = pgbr('pgbackrest-sync-2', {});
  for (const br of [brSync, brSync2, brAsync, brDual]) {
    await run(PGBACKREST, [`--config=${br.conf}`, '--stanza=main', 'stanza-create'], { asPg: true, timeoutMs: 60_000 });
  }
  const dualPgark = mkPgDir(join(repos, 'dual-pgark'));
  const dualCp = mkPgDir(join(repos, 'dual-cp'));

  // Each run gets its own repository (stored size = that run only). pgark and pgBackRest sync run
  // twice in ABAB order, to show how much the shared machine's noise moves a single run.
  const pgarkCmd = (repo) => pgarkBase(repo);
  const brSyncCmd = (br) => () => [PGBACKREST, `--config=${br.conf}`, '--stanza=main', 'archive-push', '%p'];
  const candidates = [
    { key: 'pgark', run: 1, label: 'pgark wal-push (defaults: lz4, --push-ahead 16 --jobs 4)', repo: mkPgDir(join(repos, 'pgark')), cmd: pgarkCmd },
    { key: 'pgbackrest-sync', run: 1, label: 'pgbackrest archive-push (sync, lz4)', repo: brSync.repo, cmd: brSyncCmd(brSync) },
    { key: 'pgark-pa0', run: 1, label: 'pgark wal-push --push-ahead 0', repo: mkPgDir(join(repos, 'pgark-pa0')), cmd: (repo) => [...pgarkBase(repo), '--push-ahead', '0'] },
    { key: 'pgbackrest-async', run: 1, label: 'pgbackrest archive-push (async, process-max=2, lz4)', repo: brAsync.repo, cmd: () => [PGBACKREST, `--config=${brAsync.conf}`, '--stanza=main', 'archive-push', '%p'] },
    { key: 'pgark-zstd', run: 1, label: 'pgark wal-push --codec zstd (level 3)', repo: mkPgDir(join(repos, 'pgark-zstd')), cmd: (repo) => [...pgarkBase(repo), '--codec', 'zstd'] },
    { key: 'cp', run: 1, label: 'cp + sync (fsync) + mv, uncompressed', repo: mkPgDir(join(repos, 'cp')), cmd: (repo) => ['sh', '-c', cpArchive(repo)] },
    { key: 'pgbackrest-sync', run: 2, label: 'pgbackrest archive-push (sync, lz4)', repo: brSync2.repo, cmd: brSyncCmd(brSync2) },
    { key: 'pgark', run: 2, label: 'pgark wal-push (defaults: lz4, --push-ahead 16 --jobs 4)', repo: mkPgDir(join(repos, 'pgark-2')), cmd: pgarkCmd },
  ];

  // --- dedicated backlog for the restore test (archived by pgark, pgBackRest and cp) --------
  const dualCmd = [
    [...pgarkBase(dualPgark)].map(shq).join(' '),
    [PGBACKREST, `--config=${brDual.conf}`, '--stanza=main', 'archive-push', '%p'].map(shq).join(' '),
    `cp %p ${dualCp}/%f.tmp && mv ${dualCp}/%f.tmp ${dualCp}/%f`,
  ].join(' && ');
  await setArchiveCommand(dualCmd);
  await main.psql('SELECT pg_reload_conf();');
  const baseDir = join(tmpRoot, 'base');
  mkPgDir(baseDir);
  log('pg_basebackup -X none (archive_command = pgark && pgbackrest && cp)');
  await run(join(PG_BIN, 'pg_basebackup'), ['-D', baseDir, '-h', '127.0.0.1', '-p', String(main.port), '-U', 'postgres', '-X', 'none', '--checkpoint=fast', '--no-password'], {
    asPg: true,
    timeoutMs: 300_000,
  });
  const label = readFileSync(join(baseDir, 'backup_label'), 'utf8');
  const baseStart = /START WAL LOCATION: .* \(file ([0-9A-F]{24})\)/.exec(label)?.[1];
  if (!baseStart) throw new Error(`cannot parse backup_label:\n${label}`);
  const sw = await main.psql('SELECT pg_walfile_name(pg_switch_wal());');
  await main.watch("SELECT coalesce(last_archived_wal,'-') FROM pg_stat_archiver", (l) => l.slice(0, 24) >= sw, 120_000);
  const dualBacklog = await makeBacklog('restore (pgark + pgbackrest + cp)');
  const dualDrain = await drain('dual', dualCmd, dualBacklog);
  log(`dual drain: ${dualBacklog.count} segments in ${dualDrain.secs.toFixed(2)} s`);
  results.dualDrain = { ...dualDrain, count: dualBacklog.count };

  // --- drain rounds ------------------------------------------------------------------------
  for (const c of candidates) {
    const id = `${c.key}#${c.run}`;
    const rssFile = join(rssDir, `${c.key}-${c.run}.txt`);
    writePgFile(rssFile, '');
    const backlog = await makeBacklog(id);
    const cmd = rssWrap(rssFile, c.cmd(c.repo));
    log(`drain ${c.key}: ${cmd}`);
    const load = loadavg()[0];
    const d = await drain(c.key, cmd, backlog);
    // pgbackrest async / pgark may still be finishing in the background after the last
    // archive_command returned: give them a moment so the stored size is final.
    await sleep(1000);
    const stored = treeBytes(c.repo);
    const rss = rssStats(rssFile);
    const raw = backlog.count * SEG;
    const r = {
      key: c.key,
      run: c.run,
      label: c.label,
      command: cmd,
      segments: backlog.count,
      secs: d.secs,
      segPerSec: backlog.count / d.secs,
      mbPerSec: raw / MB / d.secs,
      rawBytes: raw,
      storedBytes: stored.bytes,
      storedFiles: stored.files,
      failedDelta: d.failedDelta,
      archived: d.archived,
      rssMaxKiB: rss.max,
      calls: rss.calls,
      cpuSecs: rss.cpu,
      wallMean: rss.wallMean,
      wallMax: rss.wallMax,
      wallFirst: rss.wallFirst,
      load,
      loadAfter: loadavg()[0],
    };
    if (c.key.startsWith('pgark') && c.run === 1) r.info = await pgarkInfo(c.repo);
    results.drain.push(r);
    log(`drain ${id}: ${r.segments} segments in ${r.secs.toFixed(2)} s = ${r.segPerSec.toFixed(1)} seg/s, ${r.mbPerSec.toFixed(0)} MB/s, stored ${(r.storedBytes / MB).toFixed(1)} MB, peak RSS ${r.rssMaxKiB} KiB over ${r.calls} calls, failures ${r.failedDelta}`);
  }

  const verify = await run(NODE, [PGARK, 'wal-verify', '--repo', candidates[0].repo, '--stanza', 'main'], { asPg: true, allowFail: true, timeoutMs: 120_000 });
  results.walVerify = { code: verify.code, out: (verify.stdout + verify.stderr).trim().slice(0, 1500) };
  log(`pgark wal-verify (pgark repo): exit ${verify.code}`);

  await main.stop('fast');

  // --- restore rounds ----------------------------------------------------------------------
  const restoreSegments = segNo(dualBacklog.last) - segNo(baseStart) + 1;
  const restoreCandidates = [
    { key: 'pgark', label: 'pgark wal-fetch (defaults: --prefetch 8 --jobs 4)', cmd: () => [NODE, PGARK, 'wal-fetch', '%f', '%p', '--repo', dualPgark, '--stanza', 'main'] },
    { key: 'pgbackrest-sync', label: 'pgbackrest archive-get (sync)', cmd: (d) => [PGBACKREST, `--config=${d.brConf}`, '--stanza=main', 'archive-get', '%f', '%p'] },
    { key: 'pgbackrest-async', label: 'pgbackrest archive-get (async, process-max=2, archive-get-queue-max=128MiB)', async: true, cmd: (d) => [PGBACKREST, `--config=${d.brConf}`, '--stanza=main', 'archive-get', '%f', '%p'] },
    { key: 'cp', label: 'cp (uncompressed, replay-bound reference)', cmd: () => ['cp', `${dualCp}/%f`, '%p'] },
    { key: 'pgark-pf0', optional: true, label: 'pgark wal-fetch --prefetch 0', cmd: () => [NODE, PGARK, 'wal-fetch', '%f', '%p', '--repo', dualPgark, '--stanza', 'main', '--prefetch', '0'] },
  ];
  const lastRestoreSecs = () => Math.max(0, ...results.restore.map((r) => r.secs));
  for (const c of restoreCandidates) {
    if (c.optional && remaining() < 2 * lastRestoreSecs() * 1000 + 30_000) {
      results.notes.push(`skipped optional restore candidate ${c.key}: time budget`);
      continue;
    }
    const dir = mkPgDir(join(tmpRoot, `restore-${c.key}`));
    const data = join(dir, 'data');
    await run('cp', ['-a', baseDir, data], { timeoutMs: 300_000 });
    const cl = new Cluster(`restore-${c.key}`, data, await freePort());
    const brConf = pgbrConfig(join(dir, 'pgbr'), {
      repo: brDual.repo,
      pgPath: data,
      async: !!c.async,
      extra: c.async ? { 'process-max': '2', 'archive-get-queue-max': '128MiB' } : {},
    });
    const rssFile = join(rssDir, `restore-${c.key}.txt`);
    writePgFile(rssFile, '');
    const cmd = rssWrap(rssFile, c.cmd({ brConf }));
    const rconf = {
      port: String(cl.port),
      unix_socket_directories: cl.sockDir,
      archive_mode: 'off',
      archive_command: '',
      restore_command: cmd,
      recovery_target_action: 'promote',
      hot_standby: 'on',
    };
    appendFileSync(join(data, 'postgresql.auto.conf'), '\n' + Object.entries(rconf).map(([k, v]) => `${k} = ${sq(v)}`).join('\n') + '\n');
    writePgFile(join(data, 'recovery.signal'), '');
    log(`restore ${c.key}: ${cmd}`);
    restoreCluster = cl;
    const load = loadavg()[0];
    const t0 = performance.now();
    await cl.start(Math.ceil(RESTORE_TIMEOUT_MS / 1000));
    const { at } = await cl.watch('SELECT pg_is_in_recovery()', (l) => l === 'f', RESTORE_TIMEOUT_MS);
    const secs = (at - t0) / 1000;
    await cl.stop('immediate');
    restoreCluster = null;
    const serverLog = readFileSync(cl.logFile, 'utf8');
    const redoDone = /redo done at ([0-9A-F]+)\/([0-9A-F]+)/.exec(serverLog);
    let redoSeg = null;
    if (redoDone) {
      const lsn = (BigInt('0x' + redoDone[1]) << 32n) | BigInt('0x' + redoDone[2]);
      const seg = lsn / BigInt(SEG);
      redoSeg = '00000001' + (seg / 256n).toString(16).toUpperCase().padStart(8, '0') + (seg % 256n).toString(16).toUpperCase().padStart(8, '0');
    }
    const complete = redoSeg === dualBacklog.last;
    const rss = rssStats(rssFile);
    const restoredLines = (serverLog.match(/restored log file "[0-9A-F]{24}" from archive/g) ?? []).length;
    const r = {
      key: c.key,
      label: c.label,
      command: cmd,
      segments: restoreSegments,
      secs,
      segPerSec: restoreSegments / secs,
      mbPerSec: (restoreSegments * SEG) / MB / secs,
      redoDone: redoDone ? `${redoDone[1]}/${redoDone[2]}` : null,
      complete,
      restoredLines,
      rssMaxKiB: rss.max,
      calls: rss.calls,
      cpuSecs: rss.cpu,
      wallMean: rss.wallMean,
      wallMax: rss.wallMax,
      load,
    };
    results.restore.push(r);
    log(`restore ${c.key}: ${restoreSegments} segments in ${secs.toFixed(2)} s = ${r.segPerSec.toFixed(1)} seg/s, redo done at ${r.redoDone} (${complete ? 'complete' : 'INCOMPLETE, expected ' + dualBacklog.last}), peak RSS ${r.rssMaxKiB} KiB`);
    if (!complete) results.notes.push(`restore ${c.key}: redo ended in ${redoSeg}, expected ${dualBacklog.last}\n${serverLog.slice(-3000)}`);
    // let detached prefetch / async workers finish before removing the copy
    const until = Date.now() + 10_000;
    while (strayProcesses().length && Date.now() < until) await sleep(200);
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------

const sh = (cmd, args) => {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return ((r.stdout || '') + (r.stderr || '')).trim();
};

function environment() {
  const cpu = cpus()[0]?.model ?? 'unknown';
  const commit = sh('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD']);
  const dirty = sh('git', ['-C', ROOT, 'status', '--porcelain', '--', 'src', 'bin']) ? ' (+ uncommitted changes in src/)' : '';
  return [
    `- date: ${new Date().toISOString()}`,
    `- CPU: ${cpu}, nproc ${cpus().length}, RAM ${(totalmem() / 2 ** 30).toFixed(1)} GiB`,
    `- /tmp filesystem: ${sh('findmnt', ['-n', '-o', 'FSTYPE,SOURCE', '--target', '/tmp'])}`,
    `- node ${process.version}, ${sh(join(PG_BIN, 'postgres'), ['--version'])}, ${sh(PGBACKREST, ['version'])}`,
    `- pgark ${JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version}, git ${commit}${dirty}`,
  ].join('\n');
}

const f1 = (x) => (x == null ? 'n/a' : x.toFixed(1));
const f2 = (x) => (x == null ? 'n/a' : x.toFixed(2));

/** Per candidate: runs, total segments / total seconds (= mean rate), min and max seg/s. */
function summarize(rows) {
  const m = new Map();
  for (const r of rows) {
    const e = m.get(r.key) ?? { key: r.key, label: r.label, runs: 0, segs: 0, secs: 0, rates: [] };
    e.runs++;
    e.segs += r.segments;
    e.secs += r.secs;
    e.rates.push(r.segPerSec);
    m.set(r.key, e);
  }
  for (const e of m.values()) e.segPerSec = e.segs / e.secs;
  return [...m.values()];
}

function report(error) {
  const drainSummary = summarize(results.drain);
  const bySync = drainSummary.find((r) => r.key === 'pgbackrest-sync');
  const rBySync = results.restore.find((r) => r.key === 'pgbackrest-sync');
  const out = [];
  out.push(MARKER, '');
  out.push('## Environment', '', environment(), '');
  out.push(`Command: \`npm run bench:archive\` (= \`npm run build && node bench/archive-drain.mjs\`; options \`--segments ${SEGMENTS}\`), as root.`, '');
  out.push(
    `Cluster: PostgreSQL 15, 16 MiB segments, \`shared_buffers=256MB synchronous_commit=off autovacuum=off max_wal_size=64GB wal_keep_size=64GB checkpoint_timeout=1h\`; ` +
      `load: \`pgbench -i -s ${PGBENCH_SCALE}\` once, then per backlog \`CHECKPOINT\` + \`pgbench ${PGBENCH_ARGS.join(' ').replace('BULK@1', 'bulk.sql@1')}\` until ${SEGMENTS} segments are ready, then \`pg_switch_wal()\`. MB = 10^6 bytes.`,
    '',
    'bulk.sql:',
    '',
    '```',
    BULK_SQL.trim(),
    '```',
    '',
  );
  if (error) out.push(`**Run failed:** \`${String(error.message ?? error).split('\n')[0]}\` — tables below are partial.`, '');

  out.push('## 1+2. Drain of a ready backlog (archive_command), peak RSS per invocation', '');
  out.push('Timed from the SIGHUP that installs the candidate\'s archive_command until `pg_stat_archiver.last_archived_wal` reaches the last ready segment (polled every 50 ms over one connection). Candidates ran in the order listed, each on its own freshly generated backlog.', '');
  out.push('Summary (runs pooled: total segments / total seconds; ratio against pgBackRest sync pooled the same way):', '');
  out.push('| candidate | runs | segments/s | MB/s | vs pgbackrest sync | per-run segments/s |', '|---|---|---|---|---|---|');
  for (const e of drainSummary) {
    out.push(`| ${e.label} | ${e.runs} | ${f1(e.segPerSec)} | ${((e.segPerSec * SEG) / MB).toFixed(0)} | ${bySync ? f2(e.segPerSec / bySync.segPerSec) + 'x' : 'n/a'} | ${e.rates.map(f1).join(', ')} |`);
  }
  out.push('', 'Every run (in execution order):', '');
  out.push('| candidate | run | segments | seconds | segments/s | MB/s | vs pgbackrest sync (pooled) | stored MB | stored / raw | peak RSS MiB | calls | wall/call mean (first, max) s | CPU ms/segment | failures | load avg |');
  out.push('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const r of results.drain) {
    out.push(
      `| ${r.label} | ${r.run} | ${r.segments} | ${f2(r.secs)} | ${f1(r.segPerSec)} | ${r.mbPerSec.toFixed(0)} | ${bySync ? f2(r.segPerSec / bySync.segPerSec) + 'x' : 'n/a'} | ${(r.storedBytes / MB).toFixed(1)} | ${((100 * r.storedBytes) / r.rawBytes).toFixed(1)}% | ${r.rssMaxKiB == null ? 'n/a' : (r.rssMaxKiB / 1024).toFixed(1)} | ${r.calls} | ${f2(r.wallMean)} (${f2(r.wallFirst)}, ${f2(r.wallMax)}) | ${((1000 * r.cpuSecs) / r.segments).toFixed(0)} | ${r.failedDelta} | ${f1(r.load)} → ${f1(r.loadAfter)} |`,
    );
  }
  out.push('');
  out.push(
    '`calls` = archive_command invocations recorded by `/usr/bin/time -f \'%M %e %U %S\'` (one per segment); wall/CPU per call come from the same records (10 ms resolution; CPU = user + system of the invocation and its waited-for children, not of detached helpers such as pgBackRest\'s async worker). ' +
      '`failures` = increase of `pg_stat_archiver.failed_count` during the drain. Peak RSS is the largest `%M` of one invocation. `stored` counts every file in the repository (WAL plus metadata). ' +
      '`load avg` = 1-minute load average of the machine before and after the drain (other jobs share this machine; nproc is small, so compare rows with that in mind).',
    '',
  );
  if (results.dualDrain) {
    out.push(`The restore backlog (${results.dualDrain.count} segments, archive_command = pgark && pgbackrest && cp) drained in ${f2(results.dualDrain.secs)} s.`, '');
  }
  out.push('Exact archive_command values:', '');
  for (const r of results.drain) out.push(`- ${r.key} #${r.run}: \`${r.command}\``);
  out.push('');
  const info = results.drain.find((r) => r.key === 'pgark' && r.info)?.info;
  if (info) out.push('`pgark info --json` of the pgark repository after its drain:', '', '```json', JSON.stringify(info, null, 2).slice(0, 3000), '```', '');
  if (results.walVerify) out.push(`\`pgark wal-verify\` on that repository: exit ${results.walVerify.code}`, '', '```', results.walVerify.out, '```', '');

  out.push('## 3. Recovery from the archive (restore_command)', '');
  out.push(
    'A `pg_basebackup -X none` copy taken before the restore backlog; per candidate a fresh copy with `recovery.signal` and `recovery_target_action=promote`, timed from `pg_ctl start` until `pg_is_in_recovery()` is false (includes start-up and replay; replay itself is single-threaded and is the floor, see the cp row). All candidates read the same WAL, from repositories in the page cache.',
    '',
  );
  out.push('| candidate | segments | seconds | segments/s | MB/s | vs pgbackrest sync | redo complete | peak RSS MiB | calls | wall/call mean (max) s | CPU ms/segment | load avg |');
  out.push('|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const r of results.restore) {
    out.push(
      `| ${r.label} | ${r.segments} | ${f2(r.secs)} | ${f1(r.segPerSec)} | ${r.mbPerSec.toFixed(0)} | ${rBySync ? f2(r.segPerSec / rBySync.segPerSec) + 'x' : 'n/a'} | ${r.complete ? 'yes' : 'NO'} (${r.redoDone}) | ${r.rssMaxKiB == null ? 'n/a' : (r.rssMaxKiB / 1024).toFixed(1)} | ${r.calls} | ${f2(r.wallMean)} (${f2(r.wallMax)}) | ${((1000 * r.cpuSecs) / r.segments).toFixed(0)} | ${f1(r.load)} |`,
    );
  }
  out.push('');
  out.push('`calls` includes the final call for the first missing segment (which ends recovery) and timeline-history probes. Peak RSS excludes detached prefetch workers (pgark wal-prefetch, pgBackRest async).', '');
  out.push('Exact restore_command values:', '');
  for (const r of results.restore) out.push(`- ${r.key}: \`${r.command}\``);
  out.push('');
  out.push('## Backlogs', '', '| backlog | ready segments | range | pgbench seconds |', '|---|---|---|---|');
  for (const b of results.backlogs) out.push(`| ${b.label} | ${b.count} | ${b.first}..${b.last} | ${f1(b.genSecs)} |`);
  out.push('');
  if (results.notes.length) out.push('## Notes', '', ...results.notes.map((n) => '```\n' + n + '\n```'), '');
  out.push(`Total bench time: ${((Date.now() - started) / 1000).toFixed(0)} s.`, '');
  return out.join('\n');
}

let failure = null;
try {
  await runBench();
} catch (e) {
  failure = e;
  log(`FAILED: ${e.stack ?? e}`);
  for (const c of [main, restoreCluster]) {
    if (c) {
      try {
        log(`--- ${c.name} log tail ---\n${readFileSync(c.logFile, 'utf8').slice(-3000)}`);
      } catch {
        /* no log */
      }
    }
  }
} finally {
  await (cleaningUp ??= cleanup());
}

const md = report(failure);
console.log(md);
if (WRITE && results.drain.length) {
  const existing = existsSync(RESULTS) ? readFileSync(RESULTS, 'utf8') : '# Archive drain and restore benchmark\n\n';
  const head = existing.includes(MARKER) ? existing.slice(0, existing.indexOf(MARKER)) : existing.replace(/\n*$/, '\n\n');
  writeFileSync(RESULTS, head + md);
  log(`wrote ${RESULTS}`);
}
process.exit(failure ? 1 : 0);
