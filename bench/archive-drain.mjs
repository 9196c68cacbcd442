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
import { appendFileSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import {
  BACKLOG_BULK_SQL,
  BACKLOG_PGBENCH_ARGS,
  backlogPgbenchArgs,
  Cluster as BaseCluster,
  drain as drainBacklog,
  makeBacklog as makeBacklogOf,
  SEG,
  segNo,
  setArchiveCommand as setArchiveCommandOf,
  benchConf,
  initCluster,
} from './lib-pg.mjs';
import {
  checkPgarkReadableByPostgres,
  createBudget,
  createCleanup,
  createRun,
  environmentLines,
  freePort,
  MB,
  makeTmpRoot,
  mkPgDir,
  pgarkRepoCreate,
  NODE,
  PG_BIN,
  PGARK,
  PGBACKREST,
  requireRootAndFiles,
  ROOT,
  rssStats,
  rssWrap,
  shq,
  sleep,
  sq,
  TIME,
  treeBytes,
  writeGenerated,
  writePgFile,
} from './lib-proc.mjs';

// ---------------------------------------------------------------------------
// Settings
// ---------------------------------------------------------------------------

const RESULTS = join(ROOT, 'bench/results/archive.md');
const MARKER = '<!-- GENERATED: everything below is rewritten by bench/archive-drain.mjs -->';

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
const BULK_SQL = BACKLOG_BULK_SQL;
const PGBENCH_ARGS = BACKLOG_PGBENCH_ARGS;
const pgbenchArgs = () => backlogPgbenchArgs(join(tmpRoot, 'bulk.sql'));

requireRootAndFiles('bench/archive-drain.mjs', [join(PG_BIN, 'initdb'), PGBACKREST, TIME, join(ROOT, 'dist/src/cli/main.js')]);

const budget = createBudget(TOTAL_BUDGET_MS);
const { started, log, remaining } = budget;
const startLoad = loadavg();
const run = createRun(budget);

// ---------------------------------------------------------------------------
// Cluster control
// ---------------------------------------------------------------------------

const tmpRoot = makeTmpRoot('/tmp/pgark-archbench-');
const clusters = new Set(); // clusters we started
const ctx = { tmpRoot, run, bounded: budget.bounded, log, clusters };
class Cluster extends BaseCluster {
  constructor(name, dataDir, port) {
    super(ctx, name, dataDir, port);
  }
}

// ---------------------------------------------------------------------------
// Candidates
// ---------------------------------------------------------------------------

const pgarkBase = (repo) => [NODE, PGARK, 'wal-push', '%p', '--repo', repo, '--stanza', 'main'];

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

const { cleanup, strayProcesses } = createCleanup({
  tmpRoot,
  keep: KEEP,
  log,
  before: [
    async () => {
      for (const c of [...clusters]) await c.stop('immediate');
    },
  ],
  budgetMs: TOTAL_BUDGET_MS,
  graceMs: 60_000,
});

async function setArchiveCommand(cmd) {
  await setArchiveCommandOf(main, cmd);
}

/** archive_command=/bin/false, CHECKPOINT, pgbench until >= SEGMENTS .ready, pg_switch_wal(). */
async function makeBacklog(label) {
  const b = await makeBacklogOf(ctx, main, { label, segments: SEGMENTS, pgbenchArgs: pgbenchArgs(), timeoutMs: BACKLOG_TIMEOUT_MS });
  results.backlogs.push(b);
  return b;
}

/** Set the candidate's archive_command, SIGHUP, time until last_archived_wal >= backlog.last. */
async function drain(label, cmd, backlog) {
  return drainBacklog(main, cmd, backlog, { timeoutMs: DRAIN_TIMEOUT_MS });
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
  checkPgarkReadableByPostgres();

  // --- cluster -------------------------------------------------------------
  const dataDir = join(mkPgDir(join(tmpRoot, 'main')), 'data');
  main = new Cluster('main', dataDir, await freePort());
  log(`initdb ${dataDir} (port ${main.port})`);
  const conf = benchConf(main, { max_wal_size: '64GB', wal_keep_size: '64GB', synchronous_commit: 'off' });
  await initCluster({ run }, main, { checksums: false, conf, comment: 'archive bench' });
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
  const dualPgark = await pgarkRepoCreate(run, mkPgDir(join(repos, 'dual-pgark')));
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
  for (const c of candidates) if (c.key.startsWith('pgark')) await pgarkRepoCreate(run, c.repo);

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

function environment() {
  return environmentLines({ started, startLoad });
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
  await cleanup();
}

const md = report(failure);
console.log(md);
if (WRITE && results.drain.length) {
  writeGenerated(RESULTS, MARKER, md, 'Archive drain and restore benchmark');
  log(`wrote ${RESULTS}`);
}
process.exit(failure ? 1 : 0);
