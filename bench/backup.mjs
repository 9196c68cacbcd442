// Backup / restore benchmark: pgark vs pgBackRest (vs pg_basebackup / cp -a for reference) on a
// throwaway PostgreSQL 15 cluster per dataset.
//
//   npm run bench:backup                  # as root (the clusters run as the `postgres` OS user)
//   node bench/backup.mjs [--scale 100] [--random-gb 1.5] [--datasets pgbench,random] [--keep]
//                         [--skip-incr] [--no-check-restore] [--incr-seconds 30] [--jobs 2]
//                         [--budget-sec 3600] [--out FILE | --no-write]
//   smoke: node bench/backup.mjs --scale 1 --random-gb 0.02 --incr-seconds 5 --out /tmp/backup-smoke.md
//
// Needs: postgresql-15 (+ client, contrib for pgcrypto), pgbackrest, GNU time (/usr/bin/time,
// Debian package `time`), a built pgark (npm run build). Writes bench/results/backup.md (text above
// the GENERATED marker is kept).
//
// Method, per dataset (one fresh cluster each, `initdb --data-checksums`):
//  1. load the dataset with archive_command = '/bin/true' (the load's WAL is not needed by any
//     backup), VACUUM ANALYZE, CHECKPOINT; then `pgbackrest stanza-create`, archive_command =
//     `pgbackrest archive-push %p && pgark wal-push %p` (both repositories get the same WAL).
//  2. full backups, one run each, in this order: pgark, pgBackRest, pg_basebackup (reference).
//     Before every timed command: pg_switch_wal(), wait until it is archived, `sync`. Each command
//     runs as `postgres` under `/usr/bin/time -f '%M %e %U %S'`; its process tree's summed RSS is
//     also sampled every 100 ms from /proc. Caches are warm (the dataset fits in RAM; page cache
//     cannot be dropped fairly on a shared machine), for every candidate alike.
//  3. restores into empty directories, each tool twice in the order pgark, pgBackRest, pgBackRest,
//     pgark (the faster run counts; each restored directory is removed before the next command):
//     pgark restore latest, pgbackrest restore, cp -a of the
//     pg_basebackup copy. Only the restore command is timed. With --check-restore (default) the
//     pgark-restored copy is started (restore_command = pgark wal-fetch, archive_mode off) and must
//     leave recovery and return the same row count for the largest table.
//  4. incremental (unless --skip-incr): pgbench -T 30 -c 2 (pgbench dataset) or an UPDATE of 1% of
//     the rows with fresh random bytes (random dataset), then pgark backup --type incr and
//     pgbackrest --type=incr backup; bytes stored = growth of the repository without its WAL
//     archive (and pgark's WAL audit log).
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { appendFileSync, chmodSync, chownSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, loadavg, totalmem } from 'node:os';
import { join, relative } from 'node:path';
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
const MARKER = '<!-- GENERATED: everything below is rewritten by bench/backup.mjs -->';
const STANZA = 'bench';
const MB = 1e6;
const MIB = 2 ** 20;
const RSS_TARGET_KIB = 256 * 1024; // 256 MiB

const argv = process.argv.slice(2);
const KNOWN = new Set(['--scale', '--random-gb', '--datasets', '--keep', '--skip-incr', '--check-restore', '--no-check-restore', '--incr-seconds', '--jobs', '--budget-sec', '--out', '--no-write']);
for (const a of argv) {
  if (a.startsWith('--') && !KNOWN.has(a)) {
    console.error(`unknown option ${a}`);
    process.exit(2);
  }
}
const argValue = (name, dflt) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : dflt;
};
const SCALE = Number(argValue('--scale', '100'));
const RANDOM_GB = Number(argValue('--random-gb', '1.5'));
const DATASETS = argValue('--datasets', 'pgbench,random').split(',').map((s) => s.trim()).filter(Boolean);
const KEEP = argv.includes('--keep');
const SKIP_INCR = argv.includes('--skip-incr');
const CHECK_RESTORE = !argv.includes('--no-check-restore');
const INCR_SECONDS = Number(argValue('--incr-seconds', '30'));
const JOBS = Number(argValue('--jobs', '2'));
const WRITE = !argv.includes('--no-write');
const RESULTS = argValue('--out', join(ROOT, 'bench/results/backup.md'));
const TOTAL_BUDGET_MS = Number(argValue('--budget-sec', '3600')) * 1000;
const COMMAND_TIMEOUT_MS = 30 * 60_000; // one backup / restore / load step
const ARCHIVE_WAIT_MS = 5 * 60_000;
const CHECK_TIMEOUT_MS = 10 * 60_000;
for (const [k, v] of Object.entries({ SCALE, RANDOM_GB, INCR_SECONDS, JOBS, TOTAL_BUDGET_MS })) {
  if (!Number.isFinite(v) || v <= 0) {
    console.error(`invalid ${k}: ${v}`);
    process.exit(2);
  }
}
for (const d of DATASETS) {
  if (d !== 'pgbench' && d !== 'random') {
    console.error(`unknown dataset ${d} (pgbench, random)`);
    process.exit(2);
  }
}

const started = Date.now();
const startLoad = loadavg();
const deadline = started + TOTAL_BUDGET_MS;
const log = (...a) => console.error(`[${((Date.now() - started) / 1000).toFixed(1).padStart(6)}s]`, ...a);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const remaining = () => deadline - Date.now();
const bounded = (ms) => {
  const r = remaining();
  if (r <= 0) throw new Error('overall time budget exhausted (--budget-sec)');
  return Math.min(ms, r);
};

if (process.getuid?.() !== 0) {
  console.error('bench/backup.mjs must run as root (the clusters run as the postgres OS user via setpriv).');
  process.exit(2);
}
for (const f of [join(PG_BIN, 'initdb'), join(PG_BIN, 'pgbench'), PGBACKREST, TIME, join(ROOT, 'dist/src/cli/main.js')]) {
  if (!existsSync(f)) {
    const hint = f === TIME ? ' (apt-get install -y time)' : f.includes('dist') ? ' (npm run build)' : '';
    console.error(`missing ${f}${hint}`);
    process.exit(2);
  }
}

const PG_USER = { uid: Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' })), gid: Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' })) };
const BASE_ENV = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8', LC_MESSAGES: 'C' };
const asPgArgv = (cmd, args) => ['setpriv', [`--reuid=${PG_USER.uid}`, `--regid=${PG_USER.gid}`, '--init-groups', '--', cmd, ...args]];

// ---------------------------------------------------------------------------
// Process helpers
// ---------------------------------------------------------------------------

/**
 * Spawn with a timeout; as the postgres user via setpriv when asPg. Resolves {code, stdout, stderr}.
 * onSpawn(child) is called right after the spawn (used by the RSS sampler).
 */
function run(cmd, args, { asPg = false, env = {}, timeoutMs = 120_000, input, allowFail = false, cwd = '/', onSpawn } = {}) {
  const [file, fullArgs] = asPg ? asPgArgv(cmd, args) : [cmd, args];
  const fullEnv = { ...BASE_ENV, HOME: asPg ? '/var/lib/postgresql' : '/root', ...env };
  return new Promise((resolve, reject) => {
    let limit;
    try {
      limit = bounded(timeoutMs);
    } catch (e) {
      return reject(e);
    }
    // own process group, so a timeout kills the whole tree (time -> pgbackrest -> its local workers)
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

/** Sum of regular file sizes under p (like `du -sb`, without directory entries); skip(relPath) prunes. */
function treeBytes(p, skip = () => false) {
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

const listDir = (p) => (existsSync(p) ? readdirSync(p).sort() : []);

// ---------------------------------------------------------------------------
// Peak RSS of a process tree, sampled from /proc (complements GNU time's %M, which is the peak of
// the single largest process, not the sum of pgBackRest's or pgark's worker processes)
// ---------------------------------------------------------------------------

const PAGE = 4096;
function procTable() {
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
function treeRssSampler(rootPid) {
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

// ---------------------------------------------------------------------------
// Cluster control
// ---------------------------------------------------------------------------

const tmpRoot = mkdtempSync('/tmp/pgark-backupbench-');
chownSync(tmpRoot, PG_USER.uid, PG_USER.gid);
chmodSync(tmpRoot, 0o711);
const clusters = new Set(); // clusters we started

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
    // not bounded by the overall budget: stopping must work after it ran out
    spawnSync('setpriv', asPgArgv(join(PG_BIN, 'pg_ctl'), ['-D', this.dataDir, '-m', mode, '-w', '-t', '60', 'stop'])[1], { env: BASE_ENV, timeout: 90_000, stdio: 'ignore' });
    clusters.delete(this);
  }
  async psql(sql, timeoutMs = 60_000) {
    const r = await run(join(PG_BIN, 'psql'), ['-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1', '-f', '-'], { env: this.env, input: sql, timeoutMs });
    return r.stdout.trim();
  }
  logTail(n = 3000) {
    try {
      return readFileSync(this.logFile, 'utf8').slice(-n);
    } catch {
      return '(no log)';
    }
  }
}

function appendConf(dataDir, conf, comment) {
  appendFileSync(join(dataDir, 'postgresql.auto.conf'), `\n# ${comment}\n` + Object.entries(conf).map(([k, v]) => `${k} = ${sq(v)}`).join('\n') + '\n');
}

/** Command lines of a process tree (diagnostics for a hanging archive_command). */
function describeTree(rootPid) {
  if (rootPid == null) return '(not running)';
  const rows = procTable();
  const lines = [];
  const walk = (pid, depth) => {
    let cmd = '?';
    try {
      cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim().slice(0, 300);
    } catch {
      /* gone */
    }
    lines.push(`${'  '.repeat(depth)}${pid} ${cmd}`);
    for (const r of rows) if (r.ppid === pid) walk(r.pid, depth + 1);
  };
  walk(rootPid, 0);
  return lines.join('\n');
}

/** pg_switch_wal() and wait until the segment it completed (or the last completed one) is archived. */
async function switchAndWaitArchived(cl) {
  const seg = await cl.psql('SELECT pg_walfile_name(pg_switch_wal() - 1);');
  const until = Date.now() + bounded(ARCHIVE_WAIT_MS);
  let last = '';
  for (;;) {
    const row = await cl.psql("SELECT coalesce(last_archived_wal,'-') || '|' || failed_count || '|' || coalesce(last_failed_wal,'-') FROM pg_stat_archiver;");
    const [archived, failed, lastFailed] = row.split('|');
    last = row;
    if (archived !== '-' && archived.slice(0, 24) >= seg) return seg;
    if (Date.now() > until) {
      throw new Error(`WAL ${seg} not archived after ${ARCHIVE_WAIT_MS} ms (last archived ${archived}, failed_count ${failed}, last failed ${lastFailed})\nprocesses:\n${describeTree(cl.pid())}\n${cl.logTail()}`);
    }
    await sleep(200);
  }
}

// ---------------------------------------------------------------------------
// Timed commands
// ---------------------------------------------------------------------------

/**
 * Run one candidate command as postgres under /usr/bin/time, after `sync`. Never throws for a
 * failing command (the result has ok=false and the stderr); throws only when the budget is gone.
 */
async function measure(label, cmd, args, { env = {}, timeoutMs = COMMAND_TIMEOUT_MS, dir }) {
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
  const tl = readFileSync(timeFile, 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => /^\d+ [\d.]+ [\d.]+ [\d.]+$/.test(l))
    .at(-1);
  const [rssKiB, , user, sys] = tl ? tl.split(' ').map(Number) : [null, null, null, null];
  const ok = r.code === 0 && !r.timedOut;
  const res = { label, command: shown, env, ok, code: r.code, signal: r.signal, timedOut: r.timedOut, secs, rssKiB, treeKiB, cpuSecs: user == null ? null : user + sys, load, stdout: r.stdout, stderr: r.stderr };
  if (ok) log(`${label}: ${secs.toFixed(2)} s, peak RSS ${fmtMiB(rssKiB)} MiB (tree ${fmtMiB(treeKiB)} MiB), CPU ${f1(res.cpuSecs)} s`);
  else {
    log(`${label}: FAILED (${r.timedOut ? 'timed out' : `exit ${r.code ?? r.signal}`}) after ${secs.toFixed(2)} s`);
    console.error(`----- ${label} stderr -----\n${(r.stderr || '(empty)').slice(-4000)}\n----- ${label} stdout -----\n${(r.stdout || '(empty)').slice(-2000)}\n-----`);
  }
  return res;
}

// ---------------------------------------------------------------------------
// Datasets
// ---------------------------------------------------------------------------

// Poorly compressible rows: 750 random bytes as base64 (1000 chars + newlines) per row, below the
// TOAST threshold so the bytes stay in the heap as they are; ~7 rows per 8 KiB page.
const RANDOM_BYTES_PER_ROW = 750;
const RANDOM_HEAP_BYTES_PER_ROW = 8192 / 7;
const RANDOM_BATCH = 50_000;

async function loadDataset(name, cl) {
  const t0 = performance.now();
  let table;
  let loadCmd;
  if (name === 'pgbench') {
    loadCmd = `pgbench -i -q -s ${SCALE}`;
    await run(join(PG_BIN, 'pgbench'), ['-i', '-q', '-s', String(SCALE)], { env: cl.env, timeoutMs: COMMAND_TIMEOUT_MS });
    table = 'pgbench_accounts';
  } else {
    const rows = Math.max(1000, Math.round((RANDOM_GB * 1e9) / RANDOM_HEAP_BYTES_PER_ROW));
    const stmts = ['CREATE EXTENSION IF NOT EXISTS pgcrypto;', 'CREATE TABLE random_data (id bigint NOT NULL, payload text NOT NULL);'];
    for (let a = 1; a <= rows; a += RANDOM_BATCH) {
      const b = Math.min(rows, a + RANDOM_BATCH - 1);
      stmts.push(`INSERT INTO random_data SELECT g, encode(gen_random_bytes(${RANDOM_BYTES_PER_ROW}), 'base64') FROM generate_series(${a}, ${b}) g;`);
    }
    stmts.push('ALTER TABLE random_data ADD PRIMARY KEY (id);');
    loadCmd = `CREATE EXTENSION pgcrypto; ${rows} rows of (id bigint, encode(gen_random_bytes(${RANDOM_BYTES_PER_ROW}), 'base64')) in batches of ${RANDOM_BATCH}; primary key on id`;
    await cl.psql(stmts.join('\n'), COMMAND_TIMEOUT_MS);
    table = 'random_data';
  }
  await cl.psql('VACUUM ANALYZE;', COMMAND_TIMEOUT_MS);
  await cl.psql('CHECKPOINT;', COMMAND_TIMEOUT_MS);
  const loadSecs = (performance.now() - t0) / 1000;
  const [dbBytes, tableBytes, count] = (await cl.psql(`SELECT pg_database_size(current_database()), pg_total_relation_size(${sq(table)}), (SELECT count(*) FROM ${table});`, COMMAND_TIMEOUT_MS)).split('|').map(Number);
  return { table, loadCmd, loadSecs, dbBytes, tableBytes, count };
}

const INCR_RANDOM_SQL = `UPDATE random_data SET payload = encode(gen_random_bytes(${RANDOM_BYTES_PER_ROW}), 'base64') WHERE id % 100 = 0;`;

async function changeForIncr(name, cl) {
  const t0 = performance.now();
  let what;
  if (name === 'pgbench') {
    const r = await run(join(PG_BIN, 'pgbench'), ['-T', String(INCR_SECONDS), '-c', '2', '-j', '2'], { env: cl.env, timeoutMs: (INCR_SECONDS + 300) * 1000 });
    const tps = /tps = ([\d.]+)/.exec(r.stdout)?.[1];
    const tx = /number of transactions actually processed: (\d+)/.exec(r.stdout)?.[1];
    what = `\`pgbench -T ${INCR_SECONDS} -c 2 -j 2\`: ${tx ?? '?'} transactions, ${tps ? Number(tps).toFixed(0) : '?'} tps`;
  } else {
    const updated = await cl.psql(`WITH u AS (${INCR_RANDOM_SQL.replace(/;$/, '')} RETURNING 1) SELECT count(*) FROM u;`, COMMAND_TIMEOUT_MS);
    what = `\`${INCR_RANDOM_SQL}\` (${updated} rows)`;
  }
  return { what, secs: (performance.now() - t0) / 1000 };
}

// ---------------------------------------------------------------------------
// Candidates
// ---------------------------------------------------------------------------

function pgbrConfig(dir, { repo, pgPath, port, sockDir }) {
  mkPgDir(dir);
  for (const d of ['log', 'lock', 'spool']) mkPgDir(join(dir, d));
  const lines = [
    '[global]',
    `repo1-path=${repo}`,
    'repo1-retention-full=10',
    `log-path=${join(dir, 'log')}`,
    `lock-path=${join(dir, 'lock')}`,
    `spool-path=${join(dir, 'spool')}`,
    'compress-type=lz4',
    `process-max=${JOBS}`,
    'start-fast=y',
    'archive-async=n',
    'log-level-console=warn',
    'log-level-stderr=warn',
    'log-level-file=info',
    '',
    `[${STANZA}]`,
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

const PGARK_BACKUP_EXCLUDE = (rel) => rel === `${STANZA}/wal` || rel === `${STANZA}/log`;
const PGBR_BACKUP_EXCLUDE = (rel) => rel === 'archive';
const isPgbrLabel = (n) => /^\d{8}-\d{6}F(_\d{8}-\d{6}[DI])?$/.test(n);

/** Size of the backups a command added: new entries of backupDir (+ pgark catalog) and the growth of the repository without WAL. */
function storedBy(kind, repo, before) {
  const backupDir = kind === 'pgark' ? join(repo, STANZA, 'backup') : join(repo, 'backup', STANZA);
  const now = listDir(backupDir).filter((n) => (kind === 'pgark' ? true : isPgbrLabel(n)));
  const added = now.filter((n) => !before.entries.includes(n));
  let bytes = 0;
  for (const n of added) bytes += treeBytes(join(backupDir, n)).bytes;
  if (kind === 'pgark') {
    for (const n of added) {
      const cat = join(repo, STANZA, 'catalog', `${n}.json`);
      if (existsSync(cat)) bytes += statSync(cat).size;
    }
  }
  const repoNow = treeBytes(repo, kind === 'pgark' ? PGARK_BACKUP_EXCLUDE : PGBR_BACKUP_EXCLUDE).bytes;
  return { ids: added, backupBytes: added.length ? bytes : null, repoDelta: repoNow - before.repoBytes };
}

function snapshot(kind, repo) {
  const backupDir = kind === 'pgark' ? join(repo, STANZA, 'backup') : join(repo, 'backup', STANZA);
  return { entries: listDir(backupDir), repoBytes: treeBytes(repo, kind === 'pgark' ? PGARK_BACKUP_EXCLUDE : PGBR_BACKUP_EXCLUDE).bytes };
}

// ---------------------------------------------------------------------------
// One dataset
// ---------------------------------------------------------------------------

const results = { datasets: [] };
const runningClusters = () => [...clusters];

async function runDataset(name) {
  const R = { name, rows: {}, notes: [], commands: [] };
  results.datasets.push(R);
  const dsDir = mkPgDir(join(tmpRoot, name));
  const dataDir = join(dsDir, 'data');
  const cl = new Cluster(name, dataDir, await freePort());
  const work = mkPgDir(join(dsDir, 'work'));
  try {
    log(`[${name}] initdb --data-checksums ${dataDir} (port ${cl.port})`);
    await run(join(PG_BIN, 'initdb'), ['-D', dataDir, '-U', 'postgres', '--auth=trust', '--encoding=UTF8', '--locale=C', '--data-checksums', '--no-sync'], { asPg: true });
    const conf = {
      listen_addresses: '127.0.0.1',
      port: String(cl.port),
      unix_socket_directories: cl.sockDir,
      logging_collector: 'off',
      wal_level: 'replica',
      max_wal_senders: '10',
      archive_mode: 'on',
      archive_command: '/bin/true',
      archive_timeout: '0',
      max_wal_size: '16GB',
      min_wal_size: '1GB',
      checkpoint_timeout: '1h',
      shared_buffers: '256MB',
      autovacuum: 'off',
    };
    R.pgConf = conf;
    appendFileSync(join(dataDir, 'postgresql.conf'), '\n# backup bench\n' + Object.entries(conf).map(([k, v]) => `${k} = ${sq(v)}`).join('\n') + '\n');
    await cl.start();

    log(`[${name}] loading`);
    R.dataset = await loadDataset(name, cl);
    log(`[${name}] loaded in ${R.dataset.loadSecs.toFixed(1)} s: database ${(R.dataset.dbBytes / MB).toFixed(0)} MB, ${R.dataset.table} ${(R.dataset.tableBytes / MB).toFixed(0)} MB, ${R.dataset.count} rows`);

    // --- repositories and archiving to both ------------------------------------------------
    const pgarkRepo = mkPgDir(join(dsDir, 'repo-pgark'));
    const brRepo = mkPgDir(join(dsDir, 'repo-pgbackrest'));
    const br = pgbrConfig(join(dsDir, 'pgbackrest'), { repo: brRepo, pgPath: dataDir, port: cl.port, sockDir: cl.sockDir });
    R.pgbrConf = br.text;
    await run(PGBACKREST, [`--config=${br.conf}`, `--stanza=${STANZA}`, 'stanza-create'], { asPg: true, timeoutMs: 120_000 });
    const archiveCommand = [
      [PGBACKREST, `--config=${br.conf}`, `--stanza=${STANZA}`, 'archive-push', '%p'].map(shq).join(' '),
      [NODE, PGARK, 'wal-push', '%p', '--repo', pgarkRepo, '--stanza', STANZA].map(shq).join(' '),
    ].join(' && ');
    R.archiveCommand = archiveCommand;
    await cl.psql(`ALTER SYSTEM SET archive_command = ${sq(archiveCommand)}; SELECT pg_reload_conf();`);
    await sleep(500);
    await switchAndWaitArchived(cl);

    const pgEnv = cl.env;
    const pgarkArgs = (type) => [PGARK, 'backup', '--type', type, '--repo', pgarkRepo, '--stanza', STANZA, '--pgdata', dataDir, '--jobs', String(JOBS)];
    const brArgs = (type) => [`--config=${br.conf}`, `--stanza=${STANZA}`, `--type=${type}`, 'backup'];

    // --- full backups ------------------------------------------------------------------------
    await switchAndWaitArchived(cl);
    let snap = snapshot('pgark', pgarkRepo);
    const pgarkFull = await measure(`${name} pgark full backup`, NODE, pgarkArgs('full'), { env: pgEnv, dir: work });
    pgarkFull.stored = storedBy('pgark', pgarkRepo, snap);
    R.rows.pgarkFull = pgarkFull;

    await switchAndWaitArchived(cl);
    snap = snapshot('pgbackrest', brRepo);
    const brFull = await measure(`${name} pgBackRest full backup`, PGBACKREST, brArgs('full'), { env: {}, dir: work });
    brFull.stored = storedBy('pgbackrest', brRepo, snap);
    R.rows.brFull = brFull;

    await switchAndWaitArchived(cl);
    const baseDir = mkPgDir(join(dsDir, 'basebackup'));
    const pgbb = await measure(`${name} pg_basebackup`, join(PG_BIN, 'pg_basebackup'), ['-D', baseDir, '-h', '127.0.0.1', '-p', String(cl.port), '-U', 'postgres', '-X', 'none', '-c', 'fast', '--no-password'], {
      env: {},
      dir: work,
    });
    pgbb.stored = { backupBytes: pgbb.ok ? treeBytes(baseDir).bytes : null };
    R.rows.pgbb = pgbb;

    // --- restores ----------------------------------------------------------------------------
    // Each tool restores twice, in the order pgark, pgBackRest, pgBackRest, pgark, every run into
    // a fresh directory that is removed afterwards; the faster run of each counts. A restore's
    // cost depends on the page cache the previous command left (the first writer after the
    // backups pays more in this VM), and alternating evens that out.
    const best = (a, b) => (!a?.ok ? b : !b?.ok ? a : a.secs <= b.secs ? a : b);
    const pgarkRestore = async (round) => {
      const target = mkPgDir(join(dsDir, `restore-pgark-${round}`));
      const r = await measure(`${name} pgark restore (run ${round})`, NODE, [PGARK, 'restore', 'latest', '--repo', pgarkRepo, '--stanza', STANZA, '--pgdata', target, '--jobs', String(JOBS)], { env: {}, dir: work });
      if (r.ok && round === 1) {
        R.restoredBytes = treeBytes(target).bytes;
        if (CHECK_RESTORE) R.check = await checkRestore(name, target, pgarkRepo, R);
      }
      rmSync(target, { recursive: true, force: true });
      return r;
    };
    const brRestore = async (round) => {
      const target = mkPgDir(join(dsDir, `restore-pgbackrest-${round}`));
      const r = await measure(`${name} pgBackRest restore (run ${round})`, PGBACKREST, [`--config=${br.conf}`, `--stanza=${STANZA}`, `--pg1-path=${target}`, 'restore'], { env: {}, dir: work });
      rmSync(target, { recursive: true, force: true });
      return r;
    };
    if (!pgarkFull.ok) R.notes.push('pgark restore and incremental skipped: the pgark full backup failed.');
    if (!brFull.ok) R.notes.push('pgBackRest restore and incremental skipped: the pgBackRest full backup failed.');
    const p1 = pgarkFull.ok ? await pgarkRestore(1) : undefined;
    const b1 = brFull.ok ? await brRestore(1) : undefined;
    const b2 = brFull.ok ? await brRestore(2) : undefined;
    const p2 = pgarkFull.ok ? await pgarkRestore(2) : undefined;
    if (p1 || p2) R.rows.pgarkRestore = best(p1, p2);
    if (b1 || b2) R.rows.brRestore = best(b1, b2);
    R.restoreRuns = { pgark: [p1?.secs, p2?.secs], pgbackrest: [b1?.secs, b2?.secs] };

    if (pgbb.ok) {
      const target = join(dsDir, 'restore-cp');
      R.rows.cpRestore = await measure(`${name} cp -a of pg_basebackup`, 'cp', ['-a', baseDir, target], { env: {}, dir: work });
      if (!KEEP) rmSync(target, { recursive: true, force: true });
    }
    if (!KEEP) rmSync(baseDir, { recursive: true, force: true });

    // --- incremental -------------------------------------------------------------------------
    if (!SKIP_INCR && (pgarkFull.ok || brFull.ok)) {
      log(`[${name}] changing data for the incremental backups`);
      R.change = await changeForIncr(name, cl);
      log(`[${name}] ${R.change.what} (${R.change.secs.toFixed(1)} s)`);
      if (pgarkFull.ok) {
        await switchAndWaitArchived(cl);
        snap = snapshot('pgark', pgarkRepo);
        const r = await measure(`${name} pgark incr backup`, NODE, pgarkArgs('incr'), { env: pgEnv, dir: work });
        r.stored = storedBy('pgark', pgarkRepo, snap);
        R.rows.pgarkIncr = r;
      }
      if (brFull.ok) {
        await switchAndWaitArchived(cl);
        snap = snapshot('pgbackrest', brRepo);
        const r = await measure(`${name} pgBackRest incr backup`, PGBACKREST, brArgs('incr'), { env: {}, dir: work });
        r.stored = storedBy('pgbackrest', brRepo, snap);
        R.rows.brIncr = r;
      }
    }
    R.walArchived = {
      pgark: treeBytes(join(pgarkRepo, STANZA, 'wal')).bytes,
      pgbackrest: treeBytes(join(brRepo, 'archive')).bytes,
    };
  } catch (e) {
    R.error = e;
    log(`[${name}] FAILED: ${e.stack ?? e}`);
    log(`--- ${cl.name} log tail ---\n${cl.logTail()}`);
  } finally {
    await cl.stop('immediate');
    if (!KEEP) rmSync(dsDir, { recursive: true, force: true, maxRetries: 3 });
  }
  return R;
}

/** Start the pgark-restored copy with pgark wal-fetch as restore_command; it must leave recovery with the same row count. */
async function checkRestore(name, target, pgarkRepo, R) {
  const t0 = performance.now();
  const cl = new Cluster(`${name}-check`, target, await freePort());
  const check = { ok: false };
  try {
    const notes = [];
    if (existsSync(join(target, 'standby.signal'))) {
      rmSync(join(target, 'standby.signal'));
      notes.push('removed standby.signal written by pgark restore');
    }
    if (!existsSync(join(target, 'recovery.signal'))) {
      writePgFile(join(target, 'recovery.signal'), '');
      notes.push('recovery.signal added (pgark restore did not write one)');
    }
    appendConf(
      target,
      {
        port: String(cl.port),
        listen_addresses: '127.0.0.1',
        unix_socket_directories: cl.sockDir,
        archive_mode: 'off',
        restore_command: [NODE, PGARK, 'wal-fetch', '%f', '%p', '--repo', pgarkRepo, '--stanza', STANZA].map(shq).join(' '),
        recovery_target_action: 'promote',
      },
      'backup bench: restore check',
    );
    await cl.start(Math.ceil(bounded(CHECK_TIMEOUT_MS) / 1000));
    const until = Date.now() + bounded(CHECK_TIMEOUT_MS);
    for (;;) {
      if ((await cl.psql('SELECT pg_is_in_recovery();')) === 'f') break;
      if (Date.now() > until) throw new Error('still in recovery');
      await sleep(200);
    }
    const count = Number(await cl.psql(`SELECT count(*) FROM ${R.dataset.table};`, COMMAND_TIMEOUT_MS));
    check.count = count;
    check.ok = count === R.dataset.count;
    check.secs = (performance.now() - t0) / 1000;
    check.notes = notes;
    check.summary = `${check.ok ? 'ok' : 'WRONG ROW COUNT'}: started with restore_command = pgark wal-fetch, left recovery, count(*) FROM ${R.dataset.table} = ${count} (source ${R.dataset.count}) in ${check.secs.toFixed(1)} s${notes.length ? '; ' + notes.join('; ') : ''}`;
  } catch (e) {
    check.summary = `FAILED: ${String(e.message ?? e).split('\n')[0]}`;
    check.log = cl.logTail();
  } finally {
    await cl.stop('immediate');
  }
  log(`[${name}] restore check ${check.summary}`);
  return check;
}

// ---------------------------------------------------------------------------
// Cleanup
// ---------------------------------------------------------------------------

function strayProcesses() {
  // Processes started (indirectly) by this run: anything whose command line mentions tmpRoot
  // (pgark wal-push workers, pgbackrest helpers, a leftover postgres).
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
  for (const c of runningClusters()) {
    try {
      await c.stop('immediate');
    } catch (e) {
      log(`stop ${c.name}: ${e.message}`);
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
      log(`killing leftover process ${pid}: ${readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').slice(0, 200)}`);
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
  log('watchdog: budget exceeded by 120 s, cleaning up');
  (cleaningUp ??= cleanup()).finally(() => process.exit(3));
}, TOTAL_BUDGET_MS + 120_000);
watchdog.unref();

// ---------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------

const sh = (cmd, args) => {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return ((r.stdout || '') + (r.stderr || '')).trim();
};
const f1 = (x) => (x == null || !Number.isFinite(x) ? 'n/a' : x.toFixed(1));
const f2 = (x) => (x == null || !Number.isFinite(x) ? 'n/a' : x.toFixed(2));
const fmtMiB = (kib) => (kib == null ? 'n/a' : (kib / 1024).toFixed(1));
const fmtMB = (b) => (b == null ? 'n/a' : (b / MB).toFixed(1));

function environment() {
  const cpu = cpus()[0]?.model ?? 'unknown';
  const commit = sh('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD']);
  const dirty = sh('git', ['-C', ROOT, 'status', '--porcelain', '--', 'src', 'bin', 'storage-drivers']) ? ' (+ uncommitted changes in src/, bin/ or storage-drivers/)' : '';
  return [
    `- date: ${new Date(started).toISOString()} (run took ${((Date.now() - started) / 1000).toFixed(0)} s)`,
    `- machine: ${cpu}, nproc ${cpus().length}, RAM ${(totalmem() / 2 ** 30).toFixed(1)} GiB, load average at start ${startLoad.map((l) => l.toFixed(2)).join(' ')}`,
    `- /tmp filesystem: ${sh('findmnt', ['-n', '-o', 'FSTYPE,SOURCE', '--target', '/tmp'])}`,
    `- node ${process.version}, ${sh(join(PG_BIN, 'postgres'), ['--version'])}, ${sh(PGBACKREST, ['version'])}`,
    `- pgark ${JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version}, git ${commit}${dirty}`,
    `- command: \`node bench/backup.mjs${argv.length ? ' ' + argv.join(' ') : ''}\` (as root)`,
  ].join('\n');
}

const statusOf = (r) => (!r ? 'not run' : r.ok ? null : r.timedOut ? 'timed out' : `failed (exit ${r.code ?? r.signal})`);
const secsCell = (r) => statusOf(r) ?? f2(r.secs);
const rssCell = (r) => statusOf(r) ?? `${fmtMiB(r.rssKiB)} (Σ ${fmtMiB(r.treeKiB)})`;
const peakOf = (r) => (r?.ok ? Math.max(r.rssKiB ?? 0, r.treeKiB ?? 0) : null);
const ratio = (a, b) => (a == null || b == null || !(b > 0) ? null : a / b);

function verdict(x, limit, strictLess = false) {
  if (x == null) return 'n/a';
  return (strictLess ? x < limit : x <= limit) ? 'yes' : '**no**';
}

function datasetSection(R) {
  const out = [];
  const { rows } = R;
  const title = R.name === 'pgbench' ? `pgbench -i -s ${SCALE}` : `random (${RANDOM_GB} GB target, base64 of random bytes)`;
  out.push(`## Dataset: ${title}`, '');
  if (R.error) out.push(`**Dataset run failed:** \`${String(R.error.message ?? R.error).split('\n')[0]}\` — the table below is partial.`, '');
  if (R.dataset) {
    out.push(
      `Loaded in ${f1(R.dataset.loadSecs)} s (\`${R.dataset.loadCmd}\`, then \`VACUUM ANALYZE; CHECKPOINT\`): database ${fmtMB(R.dataset.dbBytes)} MB, largest table \`${R.dataset.table}\` ${fmtMB(R.dataset.tableBytes)} MB with ${R.dataset.count} rows.`,
      '',
    );
  }
  const st = (r, k = 'backupBytes') => (r?.ok ? r.stored?.[k] : null);
  const pgarkFullBytes = st(rows.pgarkFull);
  const brFullBytes = st(rows.brFull);
  const pgarkIncrBytes = rows.pgarkIncr?.ok ? rows.pgarkIncr.stored.repoDelta : null;
  const brIncrBytes = rows.brIncr?.ok ? rows.brIncr.stored.repoDelta : null;
  const tFull = ratio(rows.pgarkFull?.ok ? rows.pgarkFull.secs : null, rows.brFull?.ok ? rows.brFull.secs : null);
  const tRestore = ratio(rows.pgarkRestore?.ok ? rows.pgarkRestore.secs : null, rows.brRestore?.ok ? rows.brRestore.secs : null);
  const tIncr = ratio(rows.pgarkIncr?.ok ? rows.pgarkIncr.secs : null, rows.brIncr?.ok ? rows.brIncr.secs : null);
  const bIncr = ratio(pgarkIncrBytes, brIncrBytes);
  const rss = (a, b) => ratio(peakOf(a), peakOf(b));
  const pgarkPeaks = [rows.pgarkFull, rows.pgarkRestore, rows.pgarkIncr].map(peakOf).filter((x) => x != null);
  const pgarkPeak = pgarkPeaks.length ? Math.max(...pgarkPeaks) : null;

  out.push('| metric | pgark | pgBackRest | reference | pgark / pgBackRest | target | met |', '|---|---|---|---|---|---|---|');
  out.push(`| full backup time, s | ${secsCell(rows.pgarkFull)} | ${secsCell(rows.brFull)} | ${secsCell(rows.pgbb)} (pg_basebackup) | ${f2(tFull)} | ≤ 0.75 | ${verdict(tFull, 0.75)} |`);
  out.push(`| full backup stored, MB | ${rows.pgarkFull?.ok ? fmtMB(pgarkFullBytes) : secsCell(rows.pgarkFull)} | ${rows.brFull?.ok ? fmtMB(brFullBytes) : secsCell(rows.brFull)} | ${rows.pgbb?.ok ? fmtMB(st(rows.pgbb)) : secsCell(rows.pgbb)} (uncompressed) | ${f2(ratio(pgarkFullBytes, brFullBytes))} | — | |`);
  out.push(`| full backup peak RSS, MiB | ${rssCell(rows.pgarkFull)} | ${rssCell(rows.brFull)} | ${rssCell(rows.pgbb)} | ${f2(rss(rows.pgarkFull, rows.brFull))} | pgark < 256 | ${verdict(peakOf(rows.pgarkFull), RSS_TARGET_KIB, true)} |`);
  out.push(`| restore time, s | ${secsCell(rows.pgarkRestore)} | ${secsCell(rows.brRestore)} | ${secsCell(rows.cpRestore)} (cp -a) | ${f2(tRestore)} | ≤ 1.0 | ${verdict(tRestore, 1.0)} |`);
  out.push(`| restore peak RSS, MiB | ${rssCell(rows.pgarkRestore)} | ${rssCell(rows.brRestore)} | ${rssCell(rows.cpRestore)} | ${f2(rss(rows.pgarkRestore, rows.brRestore))} | pgark < 256 | ${verdict(peakOf(rows.pgarkRestore), RSS_TARGET_KIB, true)} |`);
  if (!SKIP_INCR) {
    out.push(`| incr backup time, s | ${secsCell(rows.pgarkIncr)} | ${secsCell(rows.brIncr)} | — | ${f2(tIncr)} | — | |`);
    out.push(`| incr bytes stored, MB | ${rows.pgarkIncr?.ok ? fmtMB(pgarkIncrBytes) : secsCell(rows.pgarkIncr)} | ${rows.brIncr?.ok ? fmtMB(brIncrBytes) : secsCell(rows.brIncr)} | — | ${f2(bIncr)} | ≤ 1.0 | ${verdict(bIncr, 1.0)} |`);
    out.push(`| incr peak RSS, MiB | ${rssCell(rows.pgarkIncr)} | ${rssCell(rows.brIncr)} | — | ${f2(rss(rows.pgarkIncr, rows.brIncr))} | pgark < 256 | ${verdict(peakOf(rows.pgarkIncr), RSS_TARGET_KIB, true)} |`);
  }
  out.push(`| pgark peak RSS over its commands, MiB | ${fmtMiB(pgarkPeak)} | | | | < 256 | ${verdict(pgarkPeak, RSS_TARGET_KIB, true)} |`);
  out.push('');
  out.push(
    'Peak RSS cells: GNU time `%M` of the largest single process (Σ = summed RSS of the whole process tree, sampled every 100 ms; shared pages count once per process). The 256 MiB target is checked against the larger of the two. ' +
      'Full backup stored = the new backup directory (pgark: `<repo>/bench/backup/<id>/` + its catalog entry; pgBackRest: `<repo1-path>/backup/bench/<label>/`), sum of file sizes. ' +
      'Incr bytes stored = growth of the repository without the WAL archive (pgark: without `bench/wal/` and `bench/log/`; pgBackRest: without `archive/`) across the incremental backup.',
    '',
  );
  if (R.change) out.push(`Change before the incremental backups: ${R.change.what}, ${f1(R.change.secs)} s.`, '');
  if (R.check) out.push(`pgark restore check: ${R.check.summary}`, '');
  else if (CHECK_RESTORE && rows.pgarkRestore?.ok) out.push('pgark restore check: not run', '');
  if (R.restoredBytes != null) out.push(`pgark-restored data directory: ${fmtMB(R.restoredBytes)} MB.`, '');
  if (R.walArchived) out.push(`WAL archive after the run: pgark ${fmtMB(R.walArchived.pgark)} MB, pgBackRest ${fmtMB(R.walArchived.pgbackrest)} MB.`, '');

  out.push('Every timed command (one run each, in execution order):', '');
  out.push('| command | exit | wall s | CPU s (user+sys) | peak RSS MiB (%M) | tree Σ MiB | stored MB | new backup dir MB | load avg before |', '|---|---|---|---|---|---|---|---|---|');
  for (const r of Object.values(rows)) {
    out.push(
      `| ${r.label.replace(`${R.name} `, '')} | ${r.timedOut ? 'timeout' : r.code ?? r.signal} | ${f2(r.secs)} | ${f1(r.cpuSecs)} | ${fmtMiB(r.rssKiB)} | ${fmtMiB(r.treeKiB)} | ${r.ok ? fmtMB(r.stored?.repoDelta ?? r.stored?.backupBytes) : 'n/a'} | ${r.ok ? fmtMB(r.stored?.backupBytes) : 'n/a'} | ${f1(r.load)} |`,
    );
  }
  out.push('', 'Exact commands (run as `postgres`, each as `/usr/bin/time -f \'%M %e %U %S\' -o FILE <command>`):', '');
  for (const r of Object.values(rows)) {
    const env = Object.entries(r.env ?? {}).map(([k, v]) => `${k}=${v}`).join(' ');
    out.push(`- ${r.label.replace(`${R.name} `, '')}: \`${env ? env + ' ' : ''}${r.command}\``);
  }
  out.push('');
  if (R.archiveCommand) out.push(`archive_command: \`${R.archiveCommand}\``, '');
  if (R.pgbrConf) out.push('pgbackrest.conf:', '', '```ini', R.pgbrConf.trim(), '```', '');
  const failures = Object.values(rows).filter((r) => !r.ok);
  const notes = [...R.notes];
  if (R.restoreRuns) {
    const f = (xs) => xs.map((x) => (x == null ? 'n/a' : `${x.toFixed(2)} s`)).join(' / ');
    notes.push(`restore runs (order pgark, pgBackRest, pgBackRest, pgark; the faster of each is in the table): pgark ${f(R.restoreRuns.pgark)}, pgBackRest ${f(R.restoreRuns.pgbackrest)}`);
  }
  for (const r of failures) notes.push(`${r.label} ${statusOf(r)}; stderr tail:\n${(r.stderr || '(empty)').trim().slice(-1500)}`);
  if (R.check && !R.check.ok && R.check.log) notes.push(`restore check server log tail:\n${R.check.log}`);
  if (notes.length) out.push('Notes:', '', ...notes.map((n) => '```\n' + n + '\n```'), '');
  return out.join('\n');
}

function report(error) {
  const out = [MARKER, ''];
  out.push('## Environment', '', environment(), '');
  if (error) out.push(`**Run failed:** \`${String(error.message ?? error).split('\n')[0]}\` — results are partial.`, '');
  out.push(
    `Method: one fresh PostgreSQL 15 cluster per dataset (\`initdb --data-checksums\`, ${Object.entries(results.datasets[0]?.pgConf ?? {})
      .filter(([k]) => ['shared_buffers', 'max_wal_size', 'checkpoint_timeout', 'autovacuum', 'wal_level'].includes(k))
      .map(([k, v]) => `${k}=${v}`)
      .join(' ')}), loaded with archive_command=/bin/true, then archive_command = pgBackRest archive-push && pgark wal-push (both repositories receive the same WAL). ` +
      `Each candidate ran ONCE, in the order of the per-command table, with \`--jobs ${JOBS}\` / \`process-max=${JOBS}\`, pgBackRest \`compress-type=lz4 start-fast=y\` (page checksums verified, its default with data checksums on). ` +
      'Before each timed command: `pg_switch_wal()`, wait until that segment is archived, `sync`. Page cache WARM for every candidate (the dataset fits in RAM; caches are not dropped). ' +
      'Restores go to empty directories on the same filesystem; only the restore command is timed (`cp -a` does not fsync; pgark and pgBackRest do). MB = 10^6 bytes, MiB = 2^20 bytes.',
    '',
  );
  out.push('Targets: full backup time ≤ 0.75× pgBackRest, restore time ≤ 1.0× pgBackRest, incremental bytes stored ≤ pgBackRest, pgark peak RSS < 256 MiB.', '');
  for (const R of results.datasets) out.push(datasetSection(R));
  return out.join('\n');
}

// ---------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------

let failure = null;
try {
  makeAncestorsTraversable(PGARK);
  const access = spawnSync(...asPgArgv('test', ['-r', join(ROOT, 'dist/src/cli/main.js')]));
  if (access.status !== 0) throw new Error(`postgres cannot read ${ROOT}/dist; chmod -R o+rX ${ROOT}`);
  log(`temp dir ${tmpRoot}; datasets ${DATASETS.join(', ')}; budget ${TOTAL_BUDGET_MS / 1000} s`);
  for (const ds of DATASETS) {
    const R = await runDataset(ds);
    if (R.error && remaining() <= 0) {
      failure = R.error;
      break;
    }
  }
} catch (e) {
  failure = e;
  log(`FAILED: ${e.stack ?? e}`);
} finally {
  await (cleaningUp ??= cleanup());
}

const md = report(failure);
console.log(md);
if (WRITE && results.datasets.some((R) => Object.keys(R.rows).length)) {
  const existing = existsSync(RESULTS) ? readFileSync(RESULTS, 'utf8') : '# Backup and restore benchmark\n\n';
  const head = existing.includes(MARKER) ? existing.slice(0, existing.indexOf(MARKER)) : existing.replace(/\n*$/, '\n\n');
  writeFileSync(RESULTS, head + md);
  log(`wrote ${RESULTS}`);
}
// exit 1 when anything failed (a dataset, a timed command or the restore check); the report is written anyway
const anyError = failure || results.datasets.some((R) => R.error || Object.values(R.rows).some((r) => !r.ok) || (R.check && !R.check.ok));
process.exit(anyError ? 1 : 0);
