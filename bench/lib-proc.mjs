// Shared helpers of the benchmarks (bench/archive-drain.mjs, bench/backup.mjs,
// bench/remote-stores.mjs, bench/agent.mjs): paths, running commands as the `postgres` OS user with a time budget,
// files owned by postgres, peak RSS of process trees, timing a command under GNU time, cleanup of
// everything a run started, and the environment lines of the reports.
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, loadavg, totalmem } from 'node:os';
import { join, relative } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('..', import.meta.url)).replace(/\/$/, '');
export const PGARK = join(ROOT, 'bin', 'pgark.js');
/**
 * The Node.js that runs pgark in the benchmarks: the runtime the package ships
 * (node_modules/.bin/node, Node 24), whatever node started the benchmark script; the node running
 * the script only when the shipped one is missing.
 */
export const NODE = (() => {
  const shipped = join(ROOT, 'node_modules', '.bin', 'node');
  return existsSync(shipped) ? realpathSync(shipped) : process.execPath;
})();

/**
 * The pgark command the benches time: by default the launcher bin/pgark on NODE (as users run it:
 * its memory settings), with `env` (NAME=value strings) in its environment; `direct`: bin/pgark.js
 * on NODE without the launcher.
 */
export const pgarkCommand = ({ direct = false, env = [] } = {}) => (direct ? [NODE, PGARK] : ['/usr/bin/env', `PGARK_NODE=${NODE}`, ...env, join(ROOT, 'bin', 'pgark')]);
export const PG_BIN = process.env.PG_BIN ?? '/usr/lib/postgresql/15/bin';
/** The pgBackRest binary of the single-peer benchmarks: PGARK_BENCH_PGBACKREST (its first entry) or Debian's. */
export const PGBACKREST = (process.env.PGARK_BENCH_PGBACKREST ?? '').split(',').filter(Boolean)[0] ?? '/usr/bin/pgbackrest';
/** The newest pgBackRest, prebuilt for benchmarks (needs Debian's libssh2-1). */
export const PGBACKREST_NEWEST = '/work/shared/tools/pgbackrest-2.59.1';
/**
 * pgBackRest binaries to compare against: `list` (comma-separated, e.g. from --pgbackrest), else
 * PGARK_BENCH_PGBACKREST, else Debian's 2.45 and the newest (when present).
 */
export function pgbackrestBinaries(list) {
  const given = (list ?? process.env.PGARK_BENCH_PGBACKREST ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  if (given.length) return given;
  return ['/usr/bin/pgbackrest', ...(existsSync(PGBACKREST_NEWEST) ? [PGBACKREST_NEWEST] : [])];
}
export const TIME = '/usr/bin/time';
export const MB = 1e6;
export const MIB = 2 ** 20;

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const sq = (s) => `'${String(s).replace(/'/g, "''")}'`; // SQL / postgresql.conf literal
export const shq = (s) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

export const f1 = (x) => (x == null || !Number.isFinite(x) ? 'n/a' : x.toFixed(1));
export const f2 = (x) => (x == null || !Number.isFinite(x) ? 'n/a' : x.toFixed(2));
export const fmtMiB = (kib) => (kib == null ? 'n/a' : (kib / 1024).toFixed(1));
export const fmtMB = (b) => (b == null ? 'n/a' : (b / MB).toFixed(1));

/** Exit 2 unless root and every file exists (hints for the usual missing ones). */
export function requireRootAndFiles(script, files) {
  if (process.getuid?.() !== 0) {
    console.error(`${script} must run as root (the clusters run as the postgres OS user via setpriv).`);
    process.exit(2);
  }
  for (const f of files) {
    if (!existsSync(f)) {
      const hint = f === TIME ? ' (apt-get install -y time)' : f.includes('dist') ? ' (npm run build)' : '';
      console.error(`missing ${f}${hint}`);
      process.exit(2);
    }
  }
}

let pgUser = null;
/** uid/gid of the postgres OS user (looked up on first use). */
export function pgUserIds() {
  pgUser ??= {
    uid: Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' })),
    gid: Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' })),
  };
  return pgUser;
}
export const BASE_ENV = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8', LC_MESSAGES: 'C' };
export const asPgArgv = (cmd, args) => {
  const { uid, gid } = pgUserIds();
  return ['setpriv', [`--reuid=${uid}`, `--regid=${gid}`, '--init-groups', '--', cmd, ...args]];
};

/** Overall time budget of a run: log() with elapsed seconds, bounded(ms) caps a wait at what is left. */
export function createBudget(totalMs) {
  const started = Date.now();
  const deadline = started + totalMs;
  const remaining = () => deadline - Date.now();
  return {
    started,
    totalMs,
    deadline,
    remaining,
    log: (...a) => console.error(`[${((Date.now() - started) / 1000).toFixed(1).padStart(6)}s]`, ...a),
    bounded: (ms) => {
      const r = remaining();
      if (r <= 0) throw new Error('overall time budget exhausted (--budget-sec)');
      return Math.min(ms, r);
    },
  };
}

/**
 * run(cmd, args, opts): spawn with a timeout (capped by the budget); as the postgres user via
 * setpriv when asPg. Resolves {code, signal, timedOut, stdout, stderr}; rejects on a non-zero exit
 * or a timeout unless allowFail. The child gets its own process group, so a timeout kills the whole
 * tree (time -> pgbackrest -> its local workers). onSpawn(child) is called right after the spawn.
 */
export function createRun({ bounded }) {
  return function run(cmd, args, { asPg = false, env = {}, timeoutMs = 120_000, input, allowFail = false, cwd = '/', onSpawn } = {}) {
    const [file, fullArgs] = asPg ? asPgArgv(cmd, args) : [cmd, args];
    const fullEnv = { ...BASE_ENV, HOME: asPg ? '/var/lib/postgresql' : '/root', ...env };
    return new Promise((resolve, reject) => {
      let limit;
      try {
        limit = bounded(timeoutMs);
      } catch (e) {
        return reject(e);
      }
      const child = spawn(file, fullArgs, { env: fullEnv, cwd, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
      onSpawn?.(child);
      const out = [];
      const err = [];
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          child.kill('SIGKILL');
        }
      }, limit);
      child.stdout.on('data', (d) => out.push(d));
      child.stderr.on('data', (d) => err.push(d));
      child.stdin.on('error', () => {});
      child.on('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        const r = { code, signal, timedOut, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
        const what = `${cmd} ${args.join(' ')}`;
        if (timedOut && !allowFail) reject(new Error(`timed out after ${limit} ms: ${what}\n${r.stderr.slice(-2000)}`));
        else if (code !== 0 && !allowFail) reject(new Error(`exit ${code ?? signal}: ${what}\n${r.stdout.slice(-2000)}\n${r.stderr.slice(-2000)}`));
        else resolve(r);
      });
      child.stdin.end(input ?? '');
    });
  };
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/**
 * `pgark repo create` as postgres (every other pgark command refuses a location without the
 * repository marker). `run` is a createRun() runner; `env` reaches remote stores. Returns `repo`.
 */
export async function pgarkRepoCreate(run, repo, env = {}) {
  await run(NODE, [PGARK, 'repo', 'create', '--repo', repo], { asPg: true, env, timeoutMs: 60_000 });
  return repo;
}

export function mkPgDir(p) {
  const { uid, gid } = pgUserIds();
  mkdirSync(p, { recursive: true, mode: 0o700 });
  chownSync(p, uid, gid);
  chmodSync(p, 0o700);
  return p;
}

export function writePgFile(p, content) {
  const { uid, gid } = pgUserIds();
  writeFileSync(p, content, { mode: 0o600 });
  chownSync(p, uid, gid);
}

/**
 * A pgBackRest configuration for one benchmark stanza, written as the PostgreSQL user: lz4,
 * `process-max=jobs`, synchronous archiving, console warnings only; `bundle` adds
 * repo1-bundle/repo1-block (2.46+, its best configuration); `extra` lines go into [global] (e.g.
 * repo1-cipher-type / repo1-cipher-pass: secrets belong in this 0600 file, never in argv). Returns
 * the file and its text.
 */
export function writePgbackrestConf(dir, { repo, pgPath, port, sockDir, stanza, jobs, bundle = false, extra = [] }) {
  mkPgDir(dir);
  for (const d of ['log', 'lock', 'spool']) mkPgDir(join(dir, d));
  const lines = [
    '[global]',
    `repo1-path=${repo}`,
    'repo1-retention-full=10',
    ...(bundle ? ['repo1-bundle=y', 'repo1-block=y'] : []),
    ...extra,
    `log-path=${join(dir, 'log')}`,
    `lock-path=${join(dir, 'lock')}`,
    `spool-path=${join(dir, 'spool')}`,
    'compress-type=lz4',
    `process-max=${jobs}`,
    'start-fast=y',
    'archive-async=n',
    'log-level-console=warn',
    'log-level-stderr=warn',
    'log-level-file=info',
    '',
    `[${stanza}]`,
    `pg1-path=${pgPath}`,
    `pg1-port=${port}`,
    `pg1-socket-path=${sockDir}`,
    'pg1-user=postgres',
    '',
  ];
  const conf = join(dir, 'pgbackrest.conf');
  writePgFile(conf, lines.join('\n'));
  return { conf, text: lines.join('\n') };
}

/** A temp dir under /tmp owned by postgres, mode 0711 (others may traverse, not list). */
export function makeTmpRoot(prefix) {
  const { uid, gid } = pgUserIds();
  const dir = mkdtempSync(prefix);
  chownSync(dir, uid, gid);
  chmodSync(dir, 0o711);
  return dir;
}

/** Make every ancestor of p searchable by others (o+x only), as the test harness does. */
export function makeAncestorsTraversable(p) {
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

/** Make bin/pgark.js reachable and dist/ readable for the postgres user, or throw. */
export function checkPgarkReadableByPostgres() {
  makeAncestorsTraversable(PGARK);
  const access = spawnSync(...asPgArgv('test', ['-r', join(ROOT, 'dist/src/cli/main.js')]));
  if (access.status !== 0) throw new Error(`postgres cannot read ${ROOT}/dist; chmod -R o+rX ${ROOT}`);
}

/** Sum of regular file sizes under p (like `du -sb`, without directory entries); skip(relPath) prunes. */
export function treeBytes(p, skip = () => false) {
  let total = 0;
  let files = 0;
  const walk = (d) => {
    for (const e of readdirSync(d)) {
      const f = join(d, e);
      if (skip(relative(p, f))) continue;
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

export const listDir = (p) => (existsSync(p) ? readdirSync(p).sort() : []);

// ---------------------------------------------------------------------------
// Processes: peak RSS of a process tree, sampled from /proc (complements GNU time's %M, which is
// the peak of the single largest process, not the sum of pgBackRest's or pgark's workers)
// ---------------------------------------------------------------------------

const PAGE = 4096;
export function procTable() {
  const rows = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const rss = Number(readFileSync(`/proc/${e}/statm`, 'utf8').split(' ')[1]) * PAGE;
      rows.push({ pid: Number(e), ppid, rss });
    } catch {
      /* gone */
    }
  }
  return rows;
}

/** Sample the summed RSS of root's descendants (root itself = /usr/bin/time, excluded). */
export function treeRssSampler(rootPid) {
  let peak = 0;
  const tick = () => {
    const rows = procTable();
    const kids = new Map();
    for (const r of rows) {
      if (!kids.has(r.ppid)) kids.set(r.ppid, []);
      kids.get(r.ppid).push(r);
    }
    let sum = 0;
    const stack = [...(kids.get(rootPid) ?? [])];
    while (stack.length) {
      const r = stack.pop();
      sum += r.rss;
      stack.push(...(kids.get(r.pid) ?? []));
    }
    if (sum > peak) peak = sum;
  };
  const timer = setInterval(tick, 100);
  return {
    stop() {
      clearInterval(timer);
      return Math.round(peak / 1024); // KiB
    },
  };
}

/** argv of a process (empty when it is gone). */
export function argvOf(pid) {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((a, i, all) => a !== '' || i < all.length - 1);
  } catch {
    return [];
  }
}

export function cmdlineOf(pid) {
  const a = argvOf(pid);
  return a.length ? a.join(' ').trim() : null;
}

/** Pids (other than this process) whose command line satisfies pred(cmdline, pid). */
export function pidsWhere(pred) {
  const pids = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    const cmd = cmdlineOf(e);
    if (cmd != null && pred(cmd, Number(e))) pids.push(Number(e));
  }
  return pids;
}

/**
 * Sample the summed RSS of every process whose command line satisfies pred(cmdline, pid) (detached workers
 * included: pgark's look-ahead pushers, pgBackRest's async archive-push), every 100 ms.
 */
export function matchingRssSampler(pred) {
  let peak = 0;
  const timer = setInterval(() => {
    let sum = 0;
    for (const pid of pidsWhere(pred)) {
      try {
        sum += Number(readFileSync(`/proc/${pid}/statm`, 'utf8').split(' ')[1]) * PAGE;
      } catch {
        /* gone */
      }
    }
    if (sum > peak) peak = sum;
  }, 100);
  return {
    stop() {
      clearInterval(timer);
      return Math.round(peak / 1024); // KiB
    },
  };
}

/** Command lines of a process tree (diagnostics for a hanging archive_command). */
export function describeTree(rootPid) {
  if (rootPid == null) return '(not running)';
  const rows = procTable();
  const lines = [];
  const walk = (pid, depth) => {
    lines.push(`${'  '.repeat(depth)}${pid} ${(cmdlineOf(pid) ?? '?').slice(0, 300)}`);
    for (const r of rows) if (r.ppid === pid) walk(r.pid, depth + 1);
  };
  walk(rootPid, 0);
  return lines.join('\n');
}

// ---------------------------------------------------------------------------
// GNU time records
// ---------------------------------------------------------------------------

/** Lines `%M %e %U %S` (peak RSS KiB, wall s, user s, system s) of a GNU time output file. */
export function timeRecords(file) {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => /^\d+ [\d.]+ [\d.]+ [\d.]+$/.test(l))
    .map((l) => l.split(' ').map(Number));
}

/** Summary of the records one archive/restore command wrapper appended (one per invocation). */
export function rssStats(file) {
  const rows = timeRecords(file);
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

/** archive_command / restore_command wrapper: one `%M %e %U %S` line per invocation appended to file. */
export const rssWrap = (file, words) => [TIME, '-f', '%M %e %U %S', '-a', '-o', file, ...words].map(shq).join(' ');

/**
 * Run one candidate command as postgres under /usr/bin/time, after `sync`. Never throws for a
 * failing command (the result has ok=false and the stderr); throws only when the budget is gone.
 * `shownEnv` is what the report prints for the environment (secrets redacted); `env` is what runs.
 */
export async function measureCommand({ run, log }, label, cmd, args, { env = {}, shownEnv, timeoutMs, dir }) {
  spawnSync('sync', [], { stdio: 'ignore', timeout: 120_000 });
  const timeFile = join(dir, `time-${label.replace(/[^A-Za-z0-9]+/g, '-')}.txt`);
  writePgFile(timeFile, '');
  let sampler;
  const shown = [cmd, ...args].map(shq).join(' ');
  log(`${label}: ${shown}`);
  const load = loadavg()[0];
  const t0 = performance.now();
  const r = await run(TIME, ['-f', '%M %e %U %S', '-o', timeFile, cmd, ...args], {
    asPg: true,
    env,
    timeoutMs,
    allowFail: true,
    onSpawn: (child) => (sampler = treeRssSampler(child.pid)),
  });
  const secs = (performance.now() - t0) / 1000;
  const treeKiB = sampler?.stop() ?? null;
  const tl = timeRecords(timeFile).at(-1);
  const [rssKiB, , user, sys] = tl ?? [null, null, null, null];
  const ok = r.code === 0 && !r.timedOut;
  const res = { label, command: shown, env: shownEnv ?? env, ok, code: r.code, signal: r.signal, timedOut: r.timedOut, secs, rssKiB, treeKiB, cpuSecs: user == null ? null : user + sys, load, stdout: r.stdout, stderr: r.stderr };
  if (ok) log(`${label}: ${secs.toFixed(2)} s, peak RSS ${fmtMiB(rssKiB)} MiB (tree ${fmtMiB(treeKiB)} MiB), CPU ${f1(res.cpuSecs)} s`);
  else {
    log(`${label}: FAILED (${r.timedOut ? 'timed out' : `exit ${r.code ?? r.signal}`}) after ${secs.toFixed(2)} s`);
    console.error(`----- ${label} stderr -----\n${(r.stderr || '(empty)').slice(-4000)}\n----- ${label} stdout -----\n${(r.stdout || '(empty)').slice(-2000)}\n-----`);
  }
  return res;
}

// ---------------------------------------------------------------------------
// Cleanup
// ---------------------------------------------------------------------------

/**
 * cleanup() (idempotent): run the `before` hooks (stop clusters, servers), wait up to 10 s for
 * processes whose command line names tmpRoot to exit (detached pgark / pgBackRest helpers, a
 * leftover postgres), SIGKILL the rest, remove tmpRoot unless keep. Also installed for SIGINT /
 * SIGTERM (exit 130) and as a watchdog graceMs after the budget (exit 3).
 */
export function createCleanup({ tmpRoot, keep, log, before = [], budgetMs, graceMs = 60_000 }) {
  const strayProcesses = () => pidsWhere((cmd) => cmd.includes(tmpRoot));
  const doCleanup = async () => {
    for (const fn of before) {
      try {
        await fn();
      } catch (e) {
        log(`cleanup: ${e.message}`);
      }
    }
    const until = Date.now() + 10_000;
    let stray = strayProcesses();
    while (stray.length && Date.now() < until) {
      await sleep(200);
      stray = strayProcesses();
    }
    for (const pid of stray) {
      try {
        log(`killing leftover process ${pid}: ${(cmdlineOf(pid) ?? '?').slice(0, 200)}`);
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    if (keep) log(`--keep: left ${tmpRoot}`);
    else rmSync(tmpRoot, { recursive: true, force: true, maxRetries: 3 });
  };
  let cleaningUp = null;
  const cleanup = () => (cleaningUp ??= doCleanup());
  for (const sig of ['SIGINT', 'SIGTERM']) {
    process.once(sig, () => {
      log(`${sig}: cleaning up`);
      cleanup().finally(() => process.exit(130));
    });
  }
  // Hard stop: never run much past the budget even if something hangs outside a bounded wait.
  const watchdog = setTimeout(() => {
    log(`watchdog: budget exceeded by ${graceMs / 1000} s, cleaning up`);
    cleanup().finally(() => process.exit(3));
  }, budgetMs + graceMs);
  watchdog.unref();
  return { cleanup, strayProcesses };
}

// ---------------------------------------------------------------------------
// Reports
// ---------------------------------------------------------------------------

export const sh = (cmd, args) => {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return ((r.stdout || '') + (r.stderr || '')).trim();
};

/** Environment lines of a report: date, machine (+ load average at start), versions, git, command. */
export function environmentLines({ started, startLoad, command }) {
  const cpu = cpus()[0]?.model ?? 'unknown';
  const commit = sh('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD']);
  const dirty = sh('git', ['-C', ROOT, 'status', '--porcelain', '--', 'src', 'bin', 'storage-drivers']) ? ' (+ uncommitted changes in src/, bin/ or storage-drivers/)' : '';
  const lines = [
    `- date: ${new Date(started).toISOString()} (run took ${((Date.now() - started) / 1000).toFixed(0)} s)`,
    `- machine: ${cpu}, nproc ${cpus().length}, RAM ${(totalmem() / 2 ** 30).toFixed(1)} GiB${startLoad ? `, load average at start ${startLoad.map((l) => l.toFixed(2)).join(' ')}` : ''}`,
    `- /tmp filesystem: ${sh('findmnt', ['-n', '-o', 'FSTYPE,SOURCE', '--target', '/tmp'])}`,
    `- node ${sh(NODE, ['--version'])} (pgark's runtime: ${NODE}), ${sh(join(PG_BIN, 'postgres'), ['--version'])}, ${sh(PGBACKREST, ['version'])}`,
    `- pgark ${JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version}, git ${commit}${dirty}`,
  ];
  if (command) lines.push(`- command: \`${command}\` (as root)`);
  return lines.join('\n');
}

/** Write md below MARKER in file, keeping the hand-written text above the marker. */
export function writeGenerated(file, marker, md, title) {
  const existing = existsSync(file) ? readFileSync(file, 'utf8') : `# ${title}\n\n`;
  const head = existing.includes(marker) ? existing.slice(0, existing.indexOf(marker)) : existing.replace(/\n*$/, '\n\n');
  writeFileSync(file, head + md);
}

/** Version of an installed npm package, or '?'. */
export function pkgVersion(name) {
  try {
    return JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')).version;
  } catch {
    return '?';
  }
}

/**
 * A self-signed certificate (its own CA) for 127.0.0.1 in `dir`: `{ key, cert }`. The IP SAN is
 * for Node; the DNS entries for clients that match only DNS names (pgBackRest checks the host it
 * connects to against the DNS names of the certificate).
 */
export function makeCertificate(dir) {
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  chmodSync(dir, 0o755);
  const key = join(dir, 'key.pem');
  const cert = join(dir, 'cert.pem');
  const r = spawnSync('/usr/bin/openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-days', '2',
    '-keyout', key, '-out', cert, '-subj', '/CN=127.0.0.1',
    '-addext', 'subjectAltName=IP:127.0.0.1,DNS:127.0.0.1,DNS:localhost',
    '-addext', 'basicConstraints=critical,CA:TRUE',
  ], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl req failed: ${r.stderr}`);
  chmodSync(key, 0o600); // read by the servers, which run as root
  chmodSync(cert, 0o644); // read by pgark and pgBackRest, which run as postgres
  return { key, cert };
}

/**
 * Predicate for pidsWhere: processes of `tool` ('pgark': node bin/pgark.js; 'pgbackrest') that
 * belong to this run (their command line or working directory under `tmpRoot`).
 */
export function toolPred(tool, tmpRoot) {
  return (cmd, pid) => {
    const a = argvOf(pid);
    const isTool = tool === 'pgark' ? a[0] === NODE && a[1] === PGARK : tool === 'pgbackrest' ? /(^|\/)pgbackrest[^/]*$/.test(a[0] ?? '') : false; // Debian's and e.g. pgbackrest-2.59.1
    if (!isTool) return false;
    if (cmd.includes(tmpRoot)) return true;
    try {
      return readlinkSync(`/proc/${pid}/cwd`).startsWith(tmpRoot);
    } catch {
      return false;
    }
  };
}

/** Wait (at most `ms`) until no process of `tool` of this run is left; false on timeout. */
export async function waitToolIdle(tool, tmpRoot, ms = 30_000) {
  const until = Date.now() + ms;
  while (pidsWhere(toolPred(tool, tmpRoot)).length) {
    if (Date.now() > until) return false;
    await sleep(100);
  }
  return true;
}

/**
 * Stop a process started under GNU time: send `signal` to `pid` (the tool itself, not time),
 * wait up to `graceMs` for `exited`; if it has not exited, SIGKILL the whole process group of
 * `child` and wait a little more. Returns true when it stopped by itself.
 */
export async function stopWithSignal({ pid, child, exited, signal = 'SIGTERM', graceMs = 30_000 }) {
  if (pid) {
    try {
      process.kill(pid, signal);
    } catch {
      /* gone */
    }
  }
  const clean = await Promise.race([exited.then(() => true), sleep(graceMs).then(() => false)]);
  if (!clean) {
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
    await Promise.race([exited, sleep(5000)]);
  }
  return clean;
}

/**
 * Command-line options of a bench script: `flags` take no value, `options` take one. An
 * unknown option exits 2. Returns `has(flag)`, `value(option, default)` and the raw argv.
 */
export function parseBenchArgs(flags, options, argv = process.argv.slice(2)) {
  const flagSet = new Set(flags);
  const known = new Set([...flags, ...options]);
  for (let i = 0; i < argv.length; i++) {
    if (!known.has(argv[i])) {
      console.error(`unknown option ${argv[i]}`);
      process.exit(2);
    }
    if (!flagSet.has(argv[i])) i++;
  }
  return {
    argv,
    has: (flag) => argv.includes(flag),
    value: (name, dflt) => {
      const i = argv.indexOf(name);
      return i >= 0 ? argv[i + 1] : dflt;
    },
  };
}
