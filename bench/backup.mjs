// Backup / restore benchmark: pgark vs pgBackRest (vs pg_basebackup / cp -a for reference) on a
// throwaway PostgreSQL 15 cluster per dataset.
//
//   npm run bench:backup                  # as root (the clusters run as the `postgres` OS user)
//   node_modules/.bin/node bench/backup.mjs [--scale 100] [--random-gb 1.5] [--datasets pgbench,random] [--keep]
//                         [--skip-incr] [--no-check-restore] [--incr-seconds 30] [--jobs 2]
//                         [--pgbackrest /usr/bin/pgbackrest,/work/shared/tools/pgbackrest-2.59.1]
//                         [--budget-sec 3600] [--out FILE | --no-write] [--cpu-prof DIR] [--rounds 3]
//   --rounds N: every full and incremental backup runs N times (rounds), the order of the
//     candidates rotated by one each round; the tables show medians (wall, CPU, RSS, bytes) and
//     ratios of medians, with every round's values listed below them. Restores run as before.
//   --cpu-prof DIR: pgark's backups run under node --cpu-prof; a "where the CPU goes" table per backup is printed (use with --no-write: times are perturbed)
//   smoke: node_modules/.bin/node bench/backup.mjs --scale 1 --random-gb 0.02 --incr-seconds 5 --out /tmp/backup-smoke.md
// pgark runs under the node that runs this script (node_modules/.bin/node: the shipped runtime),
// through its launcher bin/pgark (PGARK_NODE), as users run it.
// The pgBackRest binaries come from --pgbackrest (comma-separated) or PGARK_BENCH_PGBACKREST (same
// form), else Debian's 2.45 and /work/shared/tools/pgbackrest-2.59.1 when present; each gets its own
// repository and configuration, and 2.46 or newer gets repo1-bundle=y repo1-block=y (its best).
//
// Needs: postgresql-15 (+ client, contrib for pgcrypto), pgbackrest, GNU time (/usr/bin/time,
// Debian package `time`), a built pgark (npm run build). Writes bench/results/backup.md (text above
// the GENERATED marker is kept).
//
// Method, per dataset (one fresh cluster each, `initdb --data-checksums`):
//  1. load the dataset with archive_command = '/bin/true' (the load's WAL is not needed by any
//     backup), VACUUM ANALYZE, CHECKPOINT; then `pgbackrest stanza-create` per pgBackRest; during each
//     candidate's backups archive_command = its own push alone (with --chain-archive: its push, then
//     the others', so every repository gets the same WAL).
//  2. full backups in --rounds rounds: round 1 in the order pgark, each pgBackRest, every further
//     round that order rotated by one more; then pg_basebackup once (reference).
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
//  4. incremental (unless --skip-incr), per round: pgbench -T 30 -c 2 (pgbench dataset) or an
//     UPDATE of 1% of the rows with fresh random bytes (random dataset; round k updates the rows
//     with id % 100 = k - 1), then pgark backup --type incr and pgbackrest --type=incr backup in
//     the round's rotated order (each incremental is on the candidate's previous backup, so every
//     candidate stores the same round's change); bytes stored = growth of the repository without
//     its WAL archive (and pgark's WAL audit log). Then once: pgark's incremental with --delta.
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import {
  appendConf,
  Cluster as BaseCluster,
  switchAndWaitArchived as switchAndWaitArchivedOf,
  benchConf,
  initCluster,
  loadDataset,
  RANDOM_BYTES_PER_ROW,
} from './lib-pg.mjs';
import {
  checkPgarkReadableByPostgres,
  createBudget,
  createCleanup,
  createRun,
  environmentLines,
  f1,
  f2,
  fmtMB,
  fmtMiB,
  freePort,
  listDir,
  makeTmpRoot,
  MB,
  measureCommand,
  mkPgDir,
  pgarkRepoCreate,
  pgarkCommand,
  PG_BIN,
  pgbackrestBinaries,
  requireRootAndFiles,
  sh,
  ROOT,
  shq,
  sleep,
  sq,
  TIME,
  treeBytes,
  writeGenerated,
  writePgbackrestConf,
  writePgFile,
} from './lib-proc.mjs';

// ---------------------------------------------------------------------------
// Settings
// ---------------------------------------------------------------------------

const MARKER = '<!-- GENERATED: everything below is rewritten by bench/backup.mjs -->';
const STANZA = 'bench';

const argv = process.argv.slice(2);
const KNOWN = new Set(['--scale', '--random-gb', '--datasets', '--keep', '--skip-incr', '--check-restore', '--no-check-restore', '--incr-seconds', '--jobs', '--budget-sec', '--out', '--no-write', '--pgbackrest', '--cpu-prof', '--rounds', '--chain-archive']);
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
// archive_command during a candidate's backups: its own push alone (default, as with one tool in
// production), or with --chain-archive its push first and then the others' (every repository gets
// all the WAL; before 2026-12-07 the only way). pgark's backup waits until PostgreSQL's archiver
// reports its stop segment archived (src/backup/stop-wal.ts), so in a chain it also waits for the
// other tools' pushes of that segment, which pgBackRest's backup (waiting for its own repository)
// does not.
const CHAIN_ARCHIVE = argv.includes('--chain-archive');
const CHECK_RESTORE = !argv.includes('--no-check-restore');
const INCR_SECONDS = Number(argValue('--incr-seconds', '30'));
const JOBS = Number(argValue('--jobs', '2'));
const WRITE = !argv.includes('--no-write');
const RESULTS = argValue('--out', join(ROOT, 'bench/results/backup.md'));
const TOTAL_BUDGET_MS = Number(argValue('--budget-sec', '3600')) * 1000;
/** Rounds of every full and incremental backup (candidate order rotated each round); medians are reported. */
const ROUNDS = Number(argValue('--rounds', '3'));
/** --cpu-prof DIR: pgark's backups run under `node --cpu-prof` (main thread and workers), one directory per command, summarised at the end (times are then not comparable). */
const CPU_PROF = argValue('--cpu-prof', undefined);
const cpuProfiles = [];
/** Arguments of a timed pgark backup: with --cpu-prof DIR, NODE_OPTIONS=--cpu-prof into its own directory first. */
const profiled = (label, args) => {
  if (!CPU_PROF) return args;
  mkPgDir(CPU_PROF); // postgres must be able to enter it (a root-only parent left every profile unwritten)
  const dir = mkPgDir(join(CPU_PROF, label.replace(/[^A-Za-z0-9]+/g, '-')));
  cpuProfiles.push({ label, dir });
  return [`NODE_OPTIONS=--cpu-prof --cpu-prof-dir=${dir}`, ...args];
};
// pgark runs as users run it: through its launcher bin/pgark (glibc's malloc settings, V8's young
// generation for backup and restore; bench/memory.mjs), started with the Node running this bench
// (PGARK_NODE). Arguments NAME=VALUE before the pgark command go into its environment
// (NODE_OPTIONS for --cpu-prof: the launcher takes no Node flags).
const PGARK_CMD = pgarkCommand();
const pgarkArgv = (...rest) => {
  const vars = rest.filter((a, i) => rest.slice(0, i + 1).every((x) => /^[A-Z_]+=/.test(x)));
  return [PGARK_CMD[0], [PGARK_CMD[1], ...vars, ...PGARK_CMD.slice(2), ...rest.slice(vars.length)]];
};
const COMMAND_TIMEOUT_MS = 30 * 60_000; // one backup / restore / load step
const ARCHIVE_WAIT_MS = 5 * 60_000;
const CHECK_TIMEOUT_MS = 10 * 60_000;
for (const [k, v] of Object.entries({ SCALE, RANDOM_GB, INCR_SECONDS, JOBS, TOTAL_BUDGET_MS, ROUNDS })) {
  if (!Number.isFinite(v) || v <= 0 || (k === 'ROUNDS' && !Number.isInteger(v))) {
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

const BINARIES = pgbackrestBinaries(argValue('--pgbackrest', undefined));
requireRootAndFiles('bench/backup.mjs', [join(PG_BIN, 'initdb'), join(PG_BIN, 'pgbench'), ...BINARIES, TIME, join(ROOT, 'dist/src/cli/main.js')]);

/** pgBackRest peers: binary, version, whether bundling/block incremental is on (2.46 and newer: its best layout). */
const peers = BINARIES.map((bin) => {
  const version = /pgBackRest ([\d.]+)/.exec(sh(bin, ['version']))?.[1] ?? '?';
  const [maj, min] = version.split('.').map(Number);
  const bundle = maj > 2 || (maj === 2 && min >= 46);
  return { bin, version, bundle, name: `pgBackRest ${version}${bundle ? ' (bundle+block)' : ''}`, key: `pgbackrest-${version}` };
});

const budget = createBudget(TOTAL_BUDGET_MS);
const { started, log, remaining, bounded } = budget;
const startLoad = loadavg();
const run = createRun(budget);

// ---------------------------------------------------------------------------
// Cluster control
// ---------------------------------------------------------------------------

const tmpRoot = makeTmpRoot('/tmp/pgark-backupbench-');
const clusters = new Set(); // clusters we started
const ctx = { tmpRoot, run, bounded, log, clusters };
class Cluster extends BaseCluster {
  constructor(name, dataDir, port) {
    super(ctx, name, dataDir, port);
  }
}

/** pg_switch_wal() and wait until the segment it completed (or the last completed one) is archived. */
const switchAndWaitArchived = (cl) => switchAndWaitArchivedOf(ctx, cl, ARCHIVE_WAIT_MS);


// ---------------------------------------------------------------------------
// Timed commands
// ---------------------------------------------------------------------------

/**
 * Run one candidate command as postgres under /usr/bin/time, after `sync`. Never throws for a
 * failing command (the result has ok=false and the stderr); throws only when the budget is gone.
 */
/**
 * Run one candidate command as postgres under /usr/bin/time, after `sync`. Never throws for a
 * failing command (the result has ok=false and the stderr); throws only when the budget is gone.
 */
const measure = (label, cmd, args, { env = {}, timeoutMs = COMMAND_TIMEOUT_MS, dir }) => measureCommand({ run, log }, label, cmd, args, { env, timeoutMs, dir });

/** Median of the finite numbers in xs (the mean of the middle two for an even count); null when there are none. */
function median(xs) {
  const v = xs.filter((x) => x != null && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

/**
 * One row of the summary tables for a candidate's rounds: the median of every measured figure
 * over the successful rounds (each figure on its own: wall, CPU, RSS and bytes need not come from
 * the same round), `runs` = every round. When no round succeeded, the first failed round stands for them.
 */
function medianRow(runs) {
  const ok = runs.filter((r) => r?.ok);
  if (ok.length === 0) return runs.find(Boolean);
  const m = (f) => median(ok.map(f));
  const first = ok[0];
  return {
    ...first,
    label: first.label.replace(/ \(round \d+\)$/, ''),
    secs: m((r) => r.secs),
    cpuSecs: m((r) => r.cpuSecs),
    rssKiB: m((r) => r.rssKiB),
    treeKiB: m((r) => r.treeKiB),
    stored: first.stored ? { backupBytes: m((r) => r.stored?.backupBytes), repoDelta: m((r) => r.stored?.repoDelta) } : undefined,
    read: first.read ? { read: m((r) => r.read?.read), unchangedFiles: m((r) => r.read?.unchangedFiles), unchangedBytes: m((r) => r.read?.unchangedBytes) } : undefined,
    runs,
    failedRuns: runs.length - ok.length,
  };
}

// ---------------------------------------------------------------------------
// Datasets
// ---------------------------------------------------------------------------

// Poorly compressible rows: 750 random bytes as base64 (1000 chars + newlines) per row, below the
// TOAST threshold so the bytes stay in the heap as they are; ~7 rows per 8 KiB page.
/** Round `round` (0-based) of the random dataset's change: another 1 % of the rows each round. */
const incrRandomSql = (round) => `UPDATE random_data SET payload = encode(gen_random_bytes(${RANDOM_BYTES_PER_ROW}), 'base64') WHERE id % 100 = ${round % 100};`;

async function changeForIncr(name, cl, round = 0) {
  const t0 = performance.now();
  let what;
  if (name === 'pgbench') {
    const r = await run(join(PG_BIN, 'pgbench'), ['-T', String(INCR_SECONDS), '-c', '2', '-j', '2'], { env: cl.env, timeoutMs: (INCR_SECONDS + 300) * 1000 });
    const tps = /tps = ([\d.]+)/.exec(r.stdout)?.[1];
    const tx = /number of transactions actually processed: (\d+)/.exec(r.stdout)?.[1];
    what = `\`pgbench -T ${INCR_SECONDS} -c 2 -j 2\`: ${tx ?? '?'} transactions, ${tps ? Number(tps).toFixed(0) : '?'} tps`;
  } else {
    const sql = incrRandomSql(round);
    const updated = await cl.psql(`WITH u AS (${sql.replace(/;$/, '')} RETURNING 1) SELECT count(*) FROM u;`, COMMAND_TIMEOUT_MS);
    what = `\`${sql}\` (${updated} rows)`;
  }
  return { what, secs: (performance.now() - t0) / 1000 };
}

// ---------------------------------------------------------------------------
// Candidates
// ---------------------------------------------------------------------------

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
  const R = { name, rows: {}, all: [], notes: [], commands: [] };
  results.datasets.push(R);
  const dsDir = mkPgDir(join(tmpRoot, name));
  const dataDir = join(dsDir, 'data');
  const cl = new Cluster(name, dataDir, await freePort());
  const work = mkPgDir(join(dsDir, 'work'));
  try {
    log(`[${name}] initdb --data-checksums ${dataDir} (port ${cl.port})`);
    const conf = benchConf(cl, { max_wal_senders: '10' });
    await initCluster({ run }, cl, { checksums: true, conf, comment: 'backup bench' });
    R.pgConf = conf;
    await cl.start();

    log(`[${name}] loading`);
    R.dataset = await loadDataset(run, cl, name, { scale: SCALE, randomGb: RANDOM_GB, timeoutMs: COMMAND_TIMEOUT_MS });
    log(`[${name}] loaded in ${R.dataset.loadSecs.toFixed(1)} s: database ${(R.dataset.dbBytes / MB).toFixed(0)} MB, ${R.dataset.table} ${(R.dataset.tableBytes / MB).toFixed(0)} MB, ${R.dataset.count} rows`);

    // --- repositories and archiving to both ------------------------------------------------
    const pgarkRepo = await pgarkRepoCreate(run, mkPgDir(join(dsDir, 'repo-pgark')));
    const brs = peers.map((p) => {
      const repo = mkPgDir(join(dsDir, `repo-${p.key}`));
      return { ...p, repo, ...writePgbackrestConf(join(dsDir, p.key), { repo, pgPath: dataDir, port: cl.port, sockDir: cl.sockDir, stanza: STANZA, jobs: JOBS, bundle: p.bundle }) };
    });
    R.peers = brs.map((b) => ({ key: b.key, name: b.name, version: b.version, bin: b.bin, conf: b.text }));
    for (const b of brs) await run(b.bin, [`--config=${b.conf}`, `--stanza=${STANZA}`, 'stanza-create'], { asPg: true, timeoutMs: 120_000 });
    const pushes = new Map([
      ...brs.map((b) => [b.key, [b.bin, `--config=${b.conf}`, `--stanza=${STANZA}`, 'archive-push', '%p'].map(shq).join(' ')]),
      ['pgark', [...PGARK_CMD, 'wal-push', '%p', '--repo', pgarkRepo, '--stanza', STANZA].map(shq).join(' ')],
    ]);
    /**
     * archive_command pushes to every repository; the candidate about to be timed comes first, so
     * that its backup waits for its own push only (as with one tool in production), not for the
     * other tools' pushes of the same segment.
     */
    const archiveCommandFor = (first) => (CHAIN_ARCHIVE ? [pushes.get(first), ...[...pushes].filter(([k]) => k !== first).map(([, c]) => c)].join(' && ') : pushes.get(first));
    let archiveFirst;
    const pushFirst = async (key) => {
      if (archiveFirst === key) return;
      archiveFirst = key;
      await cl.psql(`ALTER SYSTEM SET archive_command = ${sq(archiveCommandFor(key))}; SELECT pg_reload_conf();`);
      await sleep(300); // the archiver reloads its configuration before the next segment
      // A write, so that the switch before the timed command completes a segment this command
      // archives (a switch with no WAL since the last one archives nothing): the last archived
      // file is then the candidate's own, as in production.
      if (!CHAIN_ARCHIVE) await cl.psql('CREATE TABLE IF NOT EXISTS bench_archive_switch (x int); INSERT INTO bench_archive_switch VALUES (1);');
    };
    R.archiveCommand = archiveCommandFor('pgark');
    await pushFirst('pgark');
    await sleep(200);
    await switchAndWaitArchived(cl);

    const pgEnv = cl.env;
    const pgarkArgs = (type) => ['backup', '--type', type, '--repo', pgarkRepo, '--stanza', STANZA, '--pgdata', dataDir, '--jobs', String(JOBS), '--json', '--no-progress'];
    const brArgs = (b, type) => [`--config=${b.conf}`, `--stanza=${STANZA}`, `--type=${type}`, 'backup'];
    /** What pgark's backup said it read (its --json output). */
    const pgarkRead = (r) => {
      try {
        const j = JSON.parse(r.stdout);
        return { read: j.size.original, unchangedFiles: j.size.unchangedFiles ?? 0, unchangedBytes: j.size.unchangedBytes ?? 0 };
      } catch {
        return undefined;
      }
    };

    // --- full backups ------------------------------------------------------------------------
    // ROUNDS rounds; each round runs every candidate once, the order rotated by one per round.
    const candidates = ['pgark', ...brs.map((b) => b.key)];
    const roundOrder = (r) => [...candidates.slice(r % candidates.length), ...candidates.slice(0, r % candidates.length)];
    const roundLabel = (r) => (ROUNDS > 1 ? ` (round ${r + 1})` : '');
    R.rounds = { full: Object.fromEntries(candidates.map((k) => [k, []])), incr: Object.fromEntries(candidates.map((k) => [k, []])), order: { full: [], incr: [] } };
    const record = (r) => {
      R.all.push(r);
      return r;
    };
    let snap;
    for (let round = 0; round < ROUNDS; round++) {
      R.rounds.order.full.push(roundOrder(round));
      for (const key of roundOrder(round)) {
        await pushFirst(key);
        await switchAndWaitArchived(cl);
        if (key === 'pgark') {
          snap = snapshot('pgark', pgarkRepo);
          const r = record(await measure(`${name} pgark full backup${roundLabel(round)}`, ...pgarkArgv(...profiled(`${name} full r${round + 1}`, pgarkArgs('full'))), { env: pgEnv, dir: work }));
          r.stored = storedBy('pgark', pgarkRepo, snap);
          r.read = pgarkRead(r);
          R.rounds.full.pgark.push(r);
        } else {
          const b = brs.find((x) => x.key === key);
          snap = snapshot('pgbackrest', b.repo);
          const r = record(await measure(`${name} ${b.name} full backup${roundLabel(round)}`, b.bin, brArgs(b, 'full'), { env: {}, dir: work }));
          r.stored = storedBy('pgbackrest', b.repo, snap);
          R.rounds.full[key].push(r);
        }
      }
    }
    const pgarkFull = medianRow(R.rounds.full.pgark);
    R.rows.pgarkFull = pgarkFull;
    const brFull = {};
    for (const b of brs) R.rows[`full:${b.key}`] = brFull[b.key] = medianRow(R.rounds.full[b.key]);
    // A later step needs a full backup of the candidate: the last round's must have succeeded.
    const lastOk = (key) => R.rounds.full[key].at(-1)?.ok === true;

    await switchAndWaitArchived(cl);
    const baseDir = mkPgDir(join(dsDir, 'basebackup'));
    const pgbb = record(await measure(`${name} pg_basebackup`, join(PG_BIN, 'pg_basebackup'), ['-D', baseDir, '-h', '127.0.0.1', '-p', String(cl.port), '-U', 'postgres', '-X', 'none', '-c', 'fast', '--no-password'], {
      env: {},
      dir: work,
    }));
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
      const r = record(await measure(`${name} pgark restore (run ${round})`, ...pgarkArgv('restore', 'latest', '--repo', pgarkRepo, '--stanza', STANZA, '--pgdata', target, '--jobs', String(JOBS)), { env: {}, dir: work }));
      if (r.ok && round === 1) {
        R.restoredBytes = treeBytes(target).bytes;
        if (CHECK_RESTORE) R.check = await checkRestore(name, target, pgarkRepo, R);
      }
      rmSync(target, { recursive: true, force: true });
      return r;
    };
    const brRestore = async (b, round) => {
      const target = mkPgDir(join(dsDir, `restore-${b.key}-${round}`));
      const r = record(await measure(`${name} ${b.name} restore (run ${round})`, b.bin, [`--config=${b.conf}`, `--stanza=${STANZA}`, `--pg1-path=${target}`, 'restore'], { env: {}, dir: work }));
      rmSync(target, { recursive: true, force: true });
      return r;
    };
    if (!lastOk('pgark')) R.notes.push('pgark restore and incremental skipped: the pgark full backup (last round) failed.');
    for (const b of brs) if (!lastOk(b.key)) R.notes.push(`${b.name} restore and incremental skipped: its full backup (last round) failed.`);
    const p1 = lastOk('pgark') ? await pgarkRestore(1) : undefined;
    const bRuns = {};
    for (const b of brs) bRuns[b.key] = [lastOk(b.key) ? await brRestore(b, 1) : undefined];
    for (const b of brs) bRuns[b.key].push(lastOk(b.key) ? await brRestore(b, 2) : undefined);
    const p2 = lastOk('pgark') ? await pgarkRestore(2) : undefined;
    if (p1 || p2) R.rows.pgarkRestore = best(p1, p2);
    R.restoreRuns = { pgark: [p1?.secs, p2?.secs] };
    for (const b of brs) {
      const [b1, b2] = bRuns[b.key];
      if (b1 || b2) R.rows[`restore:${b.key}`] = best(b1, b2);
      R.restoreRuns[b.name] = [b1?.secs, b2?.secs];
    }

    if (pgbb.ok) {
      const target = join(dsDir, 'restore-cp');
      R.rows.cpRestore = record(await measure(`${name} cp -a of pg_basebackup`, 'cp', ['-a', baseDir, target], { env: {}, dir: work }));
      if (!KEEP) rmSync(target, { recursive: true, force: true });
    }
    if (!KEEP) rmSync(baseDir, { recursive: true, force: true });

    // --- incremental -------------------------------------------------------------------------
    if (!SKIP_INCR && candidates.some(lastOk)) {
      R.changes = [];
      for (let round = 0; round < ROUNDS; round++) {
        log(`[${name}] changing data for the incremental backups${roundLabel(round)}`);
        const change = await changeForIncr(name, cl, round);
        R.changes.push(change);
        log(`[${name}] ${change.what} (${change.secs.toFixed(1)} s)`);
        R.rounds.order.incr.push(roundOrder(round));
        for (const key of roundOrder(round)) {
          if (!lastOk(key)) continue;
          await pushFirst(key);
          await switchAndWaitArchived(cl);
          if (key === 'pgark') {
            snap = snapshot('pgark', pgarkRepo);
            const r = record(await measure(`${name} pgark incr backup${roundLabel(round)}`, ...pgarkArgv(...profiled(`${name} incr r${round + 1}`, pgarkArgs('incr'))), { env: pgEnv, dir: work }));
            r.stored = storedBy('pgark', pgarkRepo, snap);
            r.read = pgarkRead(r);
            R.rounds.incr.pgark.push(r);
          } else {
            const b = brs.find((x) => x.key === key);
            snap = snapshot('pgbackrest', b.repo);
            const r = record(await measure(`${name} ${b.name} incr backup${roundLabel(round)}`, b.bin, brArgs(b, 'incr'), { env: {}, dir: work }));
            r.stored = storedBy('pgbackrest', b.repo, snap);
            R.rounds.incr[key].push(r);
          }
        }
      }
      if (R.rounds.incr.pgark.length) R.rows.pgarkIncr = medianRow(R.rounds.incr.pgark);
      for (const b of brs) if (R.rounds.incr[b.key].length) R.rows[`incr:${b.key}`] = medianRow(R.rounds.incr[b.key]);
      if (lastOk('pgark')) {
        // For reference, once: an incremental that reads every file (--delta; what every pgark
        // incremental did before it took unchanged files unread), on the incremental just taken.
        await pushFirst('pgark');
        await switchAndWaitArchived(cl);
        snap = snapshot('pgark', pgarkRepo);
        const r = record(await measure(`${name} pgark incr backup --delta (reads every file)`, ...pgarkArgv(...profiled(`${name} incr delta`, [...pgarkArgs('incr'), '--delta'])), { env: pgEnv, dir: work }));
        r.stored = storedBy('pgark', pgarkRepo, snap);
        r.read = pgarkRead(r);
        R.rows.pgarkIncrDelta = r;
      }
    }
    R.walArchived = { pgark: treeBytes(join(pgarkRepo, STANZA, 'wal')).bytes };
    for (const b of brs) R.walArchived[b.name] = treeBytes(join(b.repo, 'archive')).bytes;
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
        restore_command: [...PGARK_CMD, 'wal-fetch', '%f', '%p', '--repo', pgarkRepo, '--stanza', STANZA].map(shq).join(' '),
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

const { cleanup } = createCleanup({
  tmpRoot,
  keep: KEEP,
  log,
  before: [
    async () => {
      for (const c of runningClusters()) await c.stop('immediate');
    },
  ],
  budgetMs: TOTAL_BUDGET_MS,
  graceMs: 120_000,
});


// ---------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------

function environment() {
  return `${environmentLines({ started, startLoad, command: `node bench/backup.mjs${argv.length ? ' ' + argv.join(' ') : ''}` })}\n- pgark started as users run it: bin/pgark (the launcher: MALLOC_ARENA_MAX=2, MALLOC_MMAP_THRESHOLD_=131072, --max-semi-space-size=1), PGARK_NODE = this Node`;
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

/** Display name of a candidate key ('pgark' or a peer's key) of dataset R. */
const nameOf = (R) => (key) => (key === 'pgark' ? 'pgark' : (R.peers ?? []).find((p) => p.key === key)?.name ?? key);

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
  const ps = R.peers ?? [];
  const newest = ps[ps.length - 1];
  const secs = (r) => (r?.ok ? r.secs : null);
  const cpu = (r) => (r?.ok ? r.cpuSecs : null);
  const incrBytes = (r) => (r?.ok ? r.stored.repoDelta : null);
  const cpuCell = (r) => statusOf(r) ?? f1(r.cpuSecs);
  const mbCell = (r, v) => (r?.ok ? fmtMB(v) : statusOf(r));
  // every pgark command of every round counts for its peak RSS, not the medians
  const pgarkPeaks = (R.all ?? []).filter((r) => / pgark /.test(` ${r.label} `)).map(peakOf).filter((x) => x != null);
  const pgarkPeak = pgarkPeaks.length ? Math.max(...pgarkPeaks) : null;
  /** One metric: pgark, each peer, a reference, pgark ÷ each peer, the target against the newest peer. */
  const line = (metric, kind, cell, value, ref, target) => {
    const peerRows = ps.map((p) => rows[`${kind}:${p.key}`]);
    const pg = rows[`pgark${kind[0].toUpperCase()}${kind.slice(1)}`];
    const ratios = peerRows.map((r) => ratio(value(pg), value(r)));
    const vsNewest = ratios[ratios.length - 1] ?? null;
    out.push(`| ${metric} | ${cell(pg)} | ${peerRows.map(cell).join(' | ')} | ${ref} | ${ratios.map(f2).join(' | ')} | ${target ? target[0] : '—'} | ${target ? verdict(vsNewest, target[1]) : ''} |`);
  };
  out.push(`| metric | pgark | ${ps.map((p) => p.name).join(' | ')} | reference | ${ps.map((p) => `pgark / ${p.version}`).join(' | ')} | target (vs ${newest?.version ?? '—'}) | met |`);
  out.push(`|${'---|'.repeat(6 + 2 * ps.length)}`);
  line('full backup time, s', 'full', secsCell, secs, `${secsCell(rows.pgbb)} (pg_basebackup)`, ['≤ 0.75', 0.75]);
  line('full backup CPU, s (user+sys)', 'full', cpuCell, cpu, `${cpuCell(rows.pgbb)} (pg_basebackup)`, ['≤ 0.75', 0.75]);
  line('full backup stored, MB', 'full', (r) => mbCell(r, st(r)), (r) => st(r), `${mbCell(rows.pgbb, st(rows.pgbb))} (uncompressed)`);
  line('full backup peak RSS, MiB', 'full', rssCell, peakOf, rssCell(rows.pgbb));
  line('restore time, s', 'restore', secsCell, secs, `${secsCell(rows.cpRestore)} (cp -a)`, ['≤ 1.0', 1.0]);
  line('restore CPU, s', 'restore', cpuCell, cpu, `${cpuCell(rows.cpRestore)} (cp -a)`);
  line('restore peak RSS, MiB', 'restore', rssCell, peakOf, rssCell(rows.cpRestore));
  if (!SKIP_INCR) {
    line('incr backup time, s', 'incr', secsCell, secs, '—', ['≤ 0.75', 0.75]);
    line('incr backup CPU, s', 'incr', cpuCell, cpu, '—', ['≤ 0.75', 0.75]);
    line('incr bytes stored, MB', 'incr', (r) => mbCell(r, incrBytes(r)), incrBytes, '—', ['≤ 1.0', 1.0]);
    line('incr peak RSS, MiB', 'incr', rssCell, peakOf, '—');
  }
  out.push(`| pgark peak RSS over its commands, MiB | ${fmtMiB(pgarkPeak)} | ${ps.map(() => '').join(' | ')} | | ${ps.map(() => '').join(' | ')} | ≤ 96 | ${verdict(pgarkPeak, 96 * 1024)} |`);
  const rd = (r) => (r?.read ? `${fmtMB(r.read.read)} MB read${r.read.unchangedFiles ? `, ${r.read.unchangedFiles} unchanged files (${fmtMB(r.read.unchangedBytes)} MB) not read` : ''}` : 'n/a');
  if (ROUNDS > 1) out.push('', `Medians of ${ROUNDS} rounds for the full and incremental backups (each figure its own median; ratios are ratios of medians); every round's values are in the next table. Restores: the faster of two runs.`);
  out.push('', `pgark bytes read (its --json \`size\`, medians): full backup ${rd(rows.pgarkFull)}; incremental ${rd(rows.pgarkIncr)}; incremental --delta on it ${rd(rows.pgarkIncrDelta)} (CPU ${cpuCell(rows.pgarkIncrDelta)} s).`);
  out.push('');
  out.push(
    'Peak RSS cells: GNU time `%M` of the largest single process (Σ = summed RSS of the whole process tree, sampled every 100 ms; shared pages count once per process). The 256 MiB target is checked against the larger of the two. ' +
      'Full backup stored = the new backup directory (pgark: `<repo>/bench/backup/<id>/` + its catalog entry; pgBackRest: `<repo1-path>/backup/bench/<label>/`), sum of file sizes. ' +
      'Incr bytes stored = growth of the repository without the WAL archive (pgark: without `bench/wal/` and `bench/log/`; pgBackRest: without `archive/`) across the incremental backup.',
    '',
  );
  if (R.rounds) {
    out.push(`Every round (order of round 1: ${R.rounds.order.full[0]?.map(nameOf(R)).join(', ') ?? 'n/a'}; each further round rotated by one):`, '');
    out.push(`| metric | candidate | ${Array.from({ length: ROUNDS }, (_, i) => `round ${i + 1}`).join(' | ')} | median | ÷ ${newest?.version ?? 'peer'} (median) |`, `|${'---|'.repeat(ROUNDS + 4)}`);
    const metrics = [
      ['wall s', (r) => r.secs, f2],
      ['CPU s', (r) => r.cpuSecs, f2],
      ['peak RSS MiB', peakOf, fmtMiB],
      // as in the summary: a full backup's new backup directory, an incremental's repository growth
      ['stored MB', (r, kind) => (kind === 'full' ? r.stored?.backupBytes : r.stored?.repoDelta), fmtMB],
    ];
    for (const kind of ['full', 'incr']) {
      if (kind === 'incr' && SKIP_INCR) continue;
      for (const [metric, valueOf, fmt] of metrics) {
        const value = (r) => valueOf(r, kind);
        const med = (key) => median((R.rounds[kind][key] ?? []).filter((r) => r?.ok).map(value));
        for (const key of ['pgark', ...ps.map((p) => p.key)]) {
          const runs = R.rounds[kind][key] ?? [];
          if (!runs.length) continue;
          const cells = Array.from({ length: ROUNDS }, (_, i) => (runs[i] ? statusOf(runs[i]) ?? fmt(value(runs[i])) : 'not run'));
          const vsNewest = key === 'pgark' && newest ? f2(ratio(med('pgark'), med(newest.key))) : '';
          out.push(`| ${kind} ${metric} | ${nameOf(R)(key)} | ${cells.join(' | ')} | ${fmt(med(key))} | ${vsNewest} |`);
        }
      }
    }
    out.push('');
  }
  for (const [i, c] of (R.changes ?? []).entries()) out.push(`Change before the incremental backups${ROUNDS > 1 ? ` of round ${i + 1}` : ''}: ${c.what}, ${f1(c.secs)} s.`);
  if (R.changes?.length) out.push('');
  if (R.check) out.push(`pgark restore check: ${R.check.summary}`, '');
  else if (CHECK_RESTORE && rows.pgarkRestore?.ok) out.push('pgark restore check: not run', '');
  if (R.restoredBytes != null) out.push(`pgark-restored data directory: ${fmtMB(R.restoredBytes)} MB.`, '');
  if (R.walArchived) out.push(`WAL archive after the run: ${Object.entries(R.walArchived).map(([k, v]) => `${k} ${fmtMB(v)} MB`).join(', ')}.`, '');

  out.push('Every timed command (in execution order):', '');
  out.push('| command | exit | wall s | CPU s (user+sys) | peak RSS MiB (%M) | tree Σ MiB | stored MB | new backup dir MB | load avg before |', '|---|---|---|---|---|---|---|---|---|');
  for (const r of R.all) {
    out.push(
      `| ${r.label.replace(`${R.name} `, '')} | ${r.timedOut ? 'timeout' : r.code ?? r.signal} | ${f2(r.secs)} | ${f1(r.cpuSecs)} | ${fmtMiB(r.rssKiB)} | ${fmtMiB(r.treeKiB)} | ${r.ok ? fmtMB(r.stored?.repoDelta ?? r.stored?.backupBytes) : 'n/a'} | ${r.ok ? fmtMB(r.stored?.backupBytes) : 'n/a'} | ${f1(r.load)} |`,
    );
  }
  out.push('', 'Exact commands (run as `postgres`, each as `/usr/bin/time -f \'%M %e %U %S\' -o FILE <command>`; every round runs the same command):', '');
  for (const r of Object.values(rows)) {
    const env = Object.entries(r.env ?? {}).map(([k, v]) => `${k}=${v}`).join(' ');
    out.push(`- ${r.label.replace(`${R.name} `, '')}: \`${env ? env + ' ' : ''}${r.command}\``);
  }
  out.push('');
  if (R.archiveCommand) out.push(`archive_command (for pgark's backups; ${CHAIN_ARCHIVE ? "before another candidate's backups its own push comes first" : "before another candidate's backups that candidate's own push alone"}): \`${R.archiveCommand}\``, '');
  for (const p of R.peers ?? []) out.push(`pgbackrest.conf of ${p.name} (\`${p.bin}\`):`, '', '```ini', p.conf.trim(), '```', '');
  const failures = R.all.filter((r) => !r.ok);
  const notes = [...R.notes];
  if (R.restoreRuns) {
    const f = (xs) => xs.map((x) => (x == null ? 'n/a' : `${x.toFixed(2)} s`)).join(' / ');
    notes.push(`restore runs (order pgark, each pgBackRest, each pgBackRest again, pgark; the faster of each is in the table): ${Object.entries(R.restoreRuns).map(([k, v]) => `${k} ${f(v)}`).join(', ')}`);
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
      .join(' ')}), loaded with archive_command=/bin/true, then ${CHAIN_ARCHIVE ? "archive_command = each pgBackRest's archive-push && pgark wal-push (every repository receives the same WAL; before each backup the candidate being timed is moved to the front, so its backup waits for its own push first)" : "archive_command = the timed candidate's own push alone during its backups, as with one tool in production (a write and a WAL switch after each change, so the last archived segment is its own; each repository holds the WAL of its own backups)"}. ` +
      `${ROUNDS > 1 ? `Full and incremental backups: ${ROUNDS} rounds, every candidate once per round, the order rotated by one each round (pgark first in round 1, last in round 2, ...); the summary tables show medians and ratios of medians, the per-round table every value. Restores: each tool twice (pgark, pgBackRest, pgBackRest, pgark), the faster counts. ` : 'Each candidate ran ONCE, in the order of the per-command table. '}All with \`--jobs ${JOBS}\` / \`process-max=${JOBS}\`, pgBackRest \`compress-type=lz4 start-fast=y\` (page checksums verified, its default with data checksums on). ` +
      'Before each timed command: `pg_switch_wal()`, wait until that segment is archived, `sync`. Page cache WARM for every candidate (the dataset fits in RAM; caches are not dropped). ' +
      'Restores go to empty directories on the same filesystem; only the restore command is timed (`cp -a` does not fsync; pgark and pgBackRest do). MB = 10^6 bytes, MiB = 2^20 bytes.',
    '',
  );
  out.push(`- pgBackRest binaries (\`--pgbackrest a,b\` or PGARK_BENCH_PGBACKREST): ${peers.map((p) => `\`${p.bin}\` = ${p.version}${p.bundle ? ' (repo1-bundle=y, repo1-block=y)' : ''}`).join('; ')}`, '');
  out.push('Targets (issue 17, against the newest pgBackRest in the run): full and incremental backup time ≤ 0.75×, restore time ≤ 1.0×, incremental bytes stored ≤ 1.0×, pgark peak RSS ≤ 96 MiB. The machine may be shared: CPU s (user+sys) is the load-independent figure.', '');
  for (const R of results.datasets) out.push(datasetSection(R));
  return out.join('\n');
}

// ---------------------------------------------------------------------------
// CPU profiles (--cpu-prof)
// ---------------------------------------------------------------------------

/**
 * Self time of every sampled frame, put in the bucket of the first frame on its stack (leaf to
 * root) that a rule matches: a native call such as sha256 counts where it runs, the glue around
 * it in its caller's bucket. Samples are taken on the thread's wall clock while it runs JS or a
 * native call (not while idle in the event loop), so a blocking call (spawnSync) counts whole.
 */
const PROFILE_BUCKETS = [
  ['GC', (k) => /^\(garbage collector\)@/.test(k)],
  ['(idle)', (k) => /^\(idle\)@/.test(k)],
  ['hash (sha256)', (k) => /^(update|digest)@node:internal\/crypto\/hash/.test(k)],
  ['page checksums (page-checksum.ts, block-delta.ts)', (k) => /page-checksum\.js|block-delta\.js/.test(k)],
  ['compress (lz4)', (k) => /codecs\/lz4\.js|lz4-napi/.test(k)],
  ['fsync', (k) => /^(fsync|fdatasync|sync)@/.test(k)],
  ['write (fs)', (k) => /^(write|writev|writeBuffer|writeBuffers|pwrite|rename)@/.test(k)],
  ['getent for the manifest owner (spawnSync)', (k) => /os-accounts\.js/.test(k)],
  ['start-up: module loading, compile', (k) => /internal\/modules|compileForInternalLoader|bootstrap\/realm|run_main_module|getCLIOptions|^\(program\)@/.test(k)],
  ['worker threads, messaging', (k) => /worker-pool\.js|internal\/worker|postMessage|MessagePort|onmessage/i.test(k)],
  ['read (fs: open, read, close, stat, walk)', (k) => /^(read|readInto|openFileHandle|close|fstat|lstat|stat|open|readdir)@|pooled-file-stream|backup\/walk\.js/.test(k)],
  ['PostgreSQL client (pg)', (k) => /node_modules\/pg|pg-protocol|src\/pg\/|pg-api\.js/.test(k)],
  ['manifest (parse parent, write)', (k) => /catalog\/manifest\.js|catalog\/catalog\.js/.test(k)],
  ['object stream, repository', (k) => /\/repo\/|object-stream|object-format|storage-drivers/.test(k)],
  ['backup JS (block loop, streams)', (k) => /\/backup\//.test(k)],
];

function backupProfileTable(dir) {
  const by = new Map();
  let total = 0;
  const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')) : [];
  for (const f of files) {
    const p = JSON.parse(readFileSync(join(dir, f), 'utf8'));
    const nodes = new Map(p.nodes.map((n) => [n.id, n]));
    const parent = new Map();
    for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
    const self = new Map();
    for (let i = 0; i < p.samples.length; i++) self.set(p.samples[i], (self.get(p.samples[i]) ?? 0) + (p.timeDeltas[i + 1] ?? 0));
    for (const [id, us] of self) {
      let cat = 'other';
      find: for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
        const { functionName, url } = nodes.get(cur).callFrame;
        const k = `${functionName}@${url}`;
        for (const [name, test] of PROFILE_BUCKETS) if (test(k)) { cat = name; break find; }
      }
      if (cat === '(idle)') continue;
      by.set(cat, (by.get(cat) ?? 0) + us);
      total += us;
    }
  }
  const lines = [`${files.length} profile(s) (threads), ${(total / 1e6).toFixed(2)} s sampled`, '', '| where | s | share |', '|---|---|---|'];
  for (const [cat, us] of [...by].sort((a, b) => b[1] - a[1])) lines.push(`| ${cat} | ${(us / 1e6).toFixed(2)} | ${((100 * us) / total).toFixed(1)} % |`);
  return lines.join('\n');
}

// ---------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------

let failure = null;
try {
  checkPgarkReadableByPostgres();
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
  await cleanup();
}

const md = report(failure);
console.log(md);
if (CPU_PROF) for (const { label, dir } of cpuProfiles) console.log(`\n### pgark ${label}: where the CPU goes (--cpu-prof, ${dir})\n\n${backupProfileTable(dir)}`);
if (WRITE && results.datasets.some((R) => R.all.length)) {
  writeGenerated(RESULTS, MARKER, md, 'Backup and restore benchmark');
  log(`wrote ${RESULTS}`);
}
// exit 1 when anything failed (a dataset, a timed command or the restore check); the report is written anyway
const anyError = failure || results.datasets.some((R) => R.error || R.all.some((r) => !r.ok) || (R.check && !R.check.ok));
process.exit(anyError ? 1 : 0);
