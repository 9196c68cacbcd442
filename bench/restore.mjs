// Restore benchmark: pgark restore vs pgBackRest restore (Debian's 2.45 and the newest, 2.59.1,
// with repo1-bundle=y repo1-block=y), same cluster, same backups, alternating runs.
//
//   node bench/restore.mjs [--scale 30] [--random-gb 0.4] [--datasets pgbench,random] [--rounds 3]
//                          [--jobs 2] [--pgbackrest /usr/bin/pgbackrest,/work/shared/tools/pgbackrest-2.59.1]
//                          [--cpu-prof DIR] [--no-check-restore] [--keep] [--budget-sec 3600]
//                          [--target-dir DIR] [--out FILE | --no-write]
//   smoke: node bench/restore.mjs --scale 1 --random-gb 0.01 --rounds 1 --out /tmp/restore-smoke.md
//
// The pgBackRest binaries come from --pgbackrest (comma-separated) or the environment variable
// PGARK_BENCH_PGBACKREST (same form); each gets its own repository and configuration; a binary of
// version 2.46 or newer gets repo1-bundle=y and repo1-block=y (its fastest restore layout).
//
// pgark runs through its launcher bin/pgark (PGARK_NODE = the Node running this script), as users
// run it. Method, per dataset (one fresh cluster, `initdb --data-checksums`): load; archive_command
// pushes every segment to each pgBackRest repository and to pgark's; one full backup per tool
// (lz4, --jobs / process-max = --jobs); then --rounds rounds of restores into empty directories,
// the order of the tools rotated every round (round 1: pgark first, round 2: second, ...), each
// restored directory removed before the next command, `sync` before each. Each restore runs as
// `postgres` under GNU time: CPU = user + sys of the command and the children it waited for
// (pgBackRest's local processes; pgark's worker threads are in its own process). Medians of the
// rounds are reported. CPU is the main figure on a shared machine: wall time depends on what the
// other tenants do. --target-dir DIR restores into DIR (another file system; default: next to the
// repositories, under the run's temporary directory). On an ext4 file system without a journal
// (this machine's root, /dev/vda), creating a file skips every inode of its group freed in the
// last 5-10 minutes (ext4 find_inode_bit / recently_deleted, only without a journal): each
// restore's removed copy makes the next restores' file creations slower, for every tool alike
// (0.1-0.5 s of system CPU per restore of ~1000 files, growing with the run's history);
// a journaled file system (any production one) does not do this. With --cpu-prof DIR one extra pgark restore per dataset runs with
// NODE_OPTIONS=--cpu-prof (main thread and every worker thread write a profile); bench/cpu-profile.mjs
// summarises them.
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { spawnSync } from 'node:child_process';
import { appendConf, Cluster as BaseCluster, switchAndWaitArchived as switchAndWaitArchivedOf, benchConf, initCluster, loadDataset } from './lib-pg.mjs';
import {
  writePgbackrestConf,
  pgarkRepoCreate,
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
  measureCommand,
  mkPgDir,
  NODE,
  pgarkCommand,
  parseBenchArgs,
  PG_BIN,
  pgbackrestBinaries,
  requireRootAndFiles,
  ROOT,
  sh,
  shq,
  sleep,
  sq,
  TIME,
  treeBytes,
  writeGenerated,
  writePgFile,
} from './lib-proc.mjs';
import { profileTotals, summariseProfiles } from './cpu-profile.mjs';

const MARKER = '<!-- GENERATED: everything below is rewritten by bench/restore.mjs -->';
const STANZA = 'bench';
const args = parseBenchArgs(
  ['--keep', '--no-check-restore', '--no-write'],
  ['--scale', '--random-gb', '--datasets', '--rounds', '--jobs', '--pgbackrest', '--cpu-prof', '--budget-sec', '--out', '--target-dir'],
);
const SCALE = Number(args.value('--scale', '30'));
const RANDOM_GB = Number(args.value('--random-gb', '0.4'));
const DATASETS = args.value('--datasets', 'pgbench,random').split(',').filter(Boolean);
const ROUNDS = Number(args.value('--rounds', '3'));
const JOBS = Number(args.value('--jobs', '2'));
const PROF_DIR = args.value('--cpu-prof', undefined);
const TARGET_DIR = args.value('--target-dir', undefined);
const KEEP = args.has('--keep');
const CHECK_RESTORE = !args.has('--no-check-restore');
const WRITE = !args.has('--no-write');
const RESULTS = args.value('--out', join(ROOT, 'bench/results/restore.md'));
const TOTAL_BUDGET_MS = Number(args.value('--budget-sec', '3600')) * 1000;
const COMMAND_TIMEOUT_MS = 30 * 60_000;
for (const [k, v] of Object.entries({ SCALE, RANDOM_GB, ROUNDS, JOBS, TOTAL_BUDGET_MS })) {
  if (!Number.isFinite(v) || v <= 0) {
    console.error(`invalid ${k}: ${v}`);
    process.exit(2);
  }
}
const BINARIES = pgbackrestBinaries(args.value('--pgbackrest', undefined));
requireRootAndFiles('bench/restore.mjs', [join(PG_BIN, 'initdb'), join(PG_BIN, 'pgbench'), TIME, join(ROOT, 'dist/src/cli/main.js'), ...BINARIES]);

const budget = createBudget(TOTAL_BUDGET_MS);
const { started, log, bounded } = budget;
const startLoad = loadavg();
const run = createRun(budget);
const tmpRoot = makeTmpRoot('/tmp/pgark-restorebench-');
const clusters = new Set();
const ctx = { tmpRoot, run, bounded, log, clusters };
class Cluster extends BaseCluster {
  constructor(name, dataDir, port) {
    super(ctx, name, dataDir, port);
  }
}
// pgark runs as users run it: through its launcher bin/pgark (glibc's malloc settings, V8's young
// generation for backup and restore; bench/memory.mjs), started with the Node running this bench
// (PGARK_NODE). An argument NAME=VALUE before the pgark command goes into its environment
// (NODE_OPTIONS for --cpu-prof: the launcher takes no Node flags).
const PGARK_CMD = pgarkCommand();
const pgarkArgv = (...rest) => {
  const vars = rest.filter((a, i) => rest.slice(0, i + 1).every((x) => /^[A-Z_]+=/.test(x)));
  return [PGARK_CMD[0], [PGARK_CMD[1], ...vars, ...PGARK_CMD.slice(2), ...rest.slice(vars.length)]];
};
const measure = (label, cmd, argv, dir, env = {}) => measureCommand({ run, log }, label, cmd, argv, { env, timeoutMs: COMMAND_TIMEOUT_MS, dir });

/** pgBackRest candidates: binary, version, whether bundling/block incremental is on. */
const peers = BINARIES.map((bin) => {
  const version = /pgBackRest ([\d.]+)/.exec(sh(bin, ['version']))?.[1] ?? '?';
  const [maj, min] = version.split('.').map(Number);
  const bundle = maj > 2 || (maj === 2 && min >= 46);
  return { bin, version, bundle, name: `pgBackRest ${version}${bundle ? ' (bundle+block)' : ''}`, key: `pgbackrest-${version}` };
});

const median = (xs) => {
  const v = xs.filter((x) => x != null && Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return null;
  return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
};

const results = [];

async function runDataset(name) {
  const R = { name, candidates: [], notes: [] };
  results.push(R);
  const dsDir = mkPgDir(join(tmpRoot, name));
  const dataDir = join(dsDir, 'data');
  const work = mkPgDir(join(dsDir, 'work'));
  const cl = new Cluster(name, dataDir, await freePort());
  try {
    await initCluster({ run }, cl, { checksums: true, conf: benchConf(cl, { max_wal_senders: '10' }), comment: 'restore bench' });
    await cl.start();
    log(`[${name}] loading`);
    R.dataset = await loadDataset(run, cl, name, { scale: SCALE, randomGb: RANDOM_GB, timeoutMs: COMMAND_TIMEOUT_MS });
    log(`[${name}] loaded in ${R.dataset.loadSecs.toFixed(1)} s: database ${fmtMB(R.dataset.dbBytes)} MB`);

    const pgarkRepo = await pgarkRepoCreate(run, mkPgDir(join(dsDir, 'repo-pgark')));
    const push = [[...PGARK_CMD, 'wal-push', '%p', '--repo', pgarkRepo, '--stanza', STANZA].map(shq).join(' ')];
    for (const p of peers) {
      p.repo = mkPgDir(join(dsDir, `repo-${p.key}`));
      p.conf = writePgbackrestConf(join(dsDir, p.key), { repo: p.repo, pgPath: dataDir, port: cl.port, sockDir: cl.sockDir, stanza: STANZA, jobs: JOBS, bundle: p.bundle });
      await run(p.bin, [`--config=${p.conf.conf}`, `--stanza=${STANZA}`, 'stanza-create'], { asPg: true, timeoutMs: 120_000 });
      push.push([p.bin, `--config=${p.conf.conf}`, `--stanza=${STANZA}`, 'archive-push', '%p'].map(shq).join(' '));
    }
    await cl.psql(`ALTER SYSTEM SET archive_command = ${sq(push.join(' && '))}; SELECT pg_reload_conf();`);
    await sleep(500);
    const waitArchived = () => switchAndWaitArchivedOf(ctx, cl, 5 * 60_000);
    await waitArchived();

    // Backups (not the subject here: timed only for the record).
    const cands = [];
    const b = await measure(`${name} pgark full backup`, ...pgarkArgv('backup', '--type', 'full', '--repo', pgarkRepo, '--stanza', STANZA, '--pgdata', dataDir, '--jobs', String(JOBS)), work, cl.env);
    if (b.ok) {
      cands.push({
        key: 'pgark',
        name: 'pgark',
        backup: b,
        restore: (target, nodeOptions = []) => pgarkArgv(...(nodeOptions.length ? [`NODE_OPTIONS=${nodeOptions.join(' ')}`] : []), 'restore', 'latest', '--repo', pgarkRepo, '--stanza', STANZA, '--pgdata', target, '--jobs', String(JOBS)),
      });
    } else R.notes.push(`pgark full backup failed: ${b.stderr.slice(-300)}`);
    for (const p of peers) {
      await waitArchived();
      const pb = await measure(`${name} ${p.name} full backup`, p.bin, [`--config=${p.conf.conf}`, `--stanza=${STANZA}`, '--type=full', 'backup'], work);
      if (pb.ok) cands.push({ key: p.key, name: p.name, backup: pb, restore: (target) => [p.bin, [`--config=${p.conf.conf}`, `--stanza=${STANZA}`, `--pg1-path=${target}`, 'restore']] });
      else R.notes.push(`${p.name} full backup failed: ${pb.stderr.slice(-300)}`);
    }
    await cl.stop('fast');

    for (const c of cands) {
      c.runs = [];
      R.candidates.push(c);
    }
    for (let round = 0; round < ROUNDS; round++) {
      const order = cands.map((_, i) => cands[(i + round) % cands.length]);
      for (const c of order) {
        const target = mkPgDir(join(TARGET_DIR ?? dsDir, `${TARGET_DIR ? `${name}-` : ''}restore-${c.key}`));
        const [cmd, argv] = c.restore(target);
        const r = await measure(`${name} ${c.name} restore (round ${round + 1})`, cmd, argv, work);
        c.runs.push(r);
        if (r.ok && R.restoredBytes === undefined) R.restoredBytes = treeBytes(target).bytes;
        if (r.ok && c.key === 'pgark' && round === 0) {
          if (CHECK_RESTORE) R.check = await checkRestore(name, target, pgarkRepo, R);
        }
        rmSync(target, { recursive: true, force: true });
      }
    }
    if (PROF_DIR) {
      const pgark = cands.find((c) => c.key === 'pgark');
      if (pgark) {
        const dir = join(PROF_DIR, name);
        rmSync(dir, { recursive: true, force: true });
        mkdirSync(dir, { recursive: true });
        spawnSync('chown', ['postgres', dir]);
        const target = mkPgDir(join(TARGET_DIR ?? dsDir, `${TARGET_DIR ? `${name}-` : ''}restore-prof`));
        const [cmd, argv] = pgark.restore(target, ['--cpu-prof', `--cpu-prof-dir=${dir}`]);
        const r = await measure(`${name} pgark restore (--cpu-prof)`, cmd, argv, work);
        rmSync(target, { recursive: true, force: true });
        if (r.ok) {
          const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).map((f) => join(dir, f));
          R.profile = `${summariseProfiles(files)}\n\n${perThread(files)}`;
        }
      }
    }
  } catch (e) {
    R.error = e;
    log(`[${name}] FAILED: ${e.stack ?? e}`);
  } finally {
    await cl.stop('immediate');
    if (!KEEP) rmSync(dsDir, { recursive: true, force: true, maxRetries: 3 });
  }
}

/** The file system a directory is on, and whether it is ext4 without a journal (see the header). */
function targetFs(dir) {
  const r = spawnSync('findmnt', ['-n', '-o', 'SOURCE,FSTYPE', '-T', dir], { encoding: 'utf8' });
  const [source, fstype] = (r.stdout ?? '').trim().split(/\s+/);
  if (!source) return 'file system unknown';
  let journal = '';
  if (fstype === 'ext4') {
    const dev = source.replace(/^\/dev\//, '');
    const task = spawnSync('cat', [`/sys/fs/ext4/${dev}/journal_task`], { encoding: 'utf8' }).stdout?.trim();
    if (task) journal = task === '<none>' ? ', no journal' : ', journaled';
  }
  return `${source}, ${fstype}${journal}`;
}

/**
 * Sampled CPU per thread (one profile each: Node names them CPU.<time>.<pid>.<threadId>.<n>.cpuprofile,
 * thread 0 being the main thread): how the restore's work splits between the main thread's lane
 * and the worker threads, and what each thread's start-up is next to its share.
 */
function perThread(files) {
  const rows = files.map((f) => {
    const tid = Number(/\.(\d+)\.\d+\.cpuprofile$/.exec(f)?.[1] ?? NaN);
    const t = profileTotals([f]);
    return { tid, cpu: t.total / 1e6, idle: t.idle / 1e6, startup: (t.by.get('startup / module loading') ?? 0) / 1e6 };
  }).sort((a, b) => a.tid - b.tid);
  const lines = ['| thread | sampled CPU s | of which start-up / module loading | idle s |', '|---|---|---|---|'];
  for (const r of rows) lines.push(`| ${r.tid === 0 ? 'main' : `worker ${r.tid}`} | ${f2(r.cpu)} | ${f2(r.startup)} | ${f2(r.idle)} |`);
  return lines.join('\n');
}

/** Start the pgark-restored copy (restore_command = pgark wal-fetch): it must leave recovery with the same row count. */
async function checkRestore(name, target, pgarkRepo, R) {
  const cl = new Cluster(`${name}-check`, target, await freePort());
  try {
    appendConf(target, {
      port: String(cl.port),
      listen_addresses: '127.0.0.1',
      unix_socket_directories: cl.sockDir,
      archive_mode: 'off',
      recovery_target_action: 'promote',
    }, 'restore bench: check');
    // restore_command is the launcher (bin/pgark, PGARK_LAUNCHER): it finds this Node through PGARK_NODE.
    await cl.start(600, { PGARK_NODE: NODE });
    const until = Date.now() + bounded(600_000);
    while ((await cl.psql('SELECT pg_is_in_recovery();')) !== 'f') {
      if (Date.now() > until) throw new Error('still in recovery');
      await sleep(200);
    }
    const count = Number(await cl.psql(`SELECT count(*) FROM ${R.dataset.table};`, COMMAND_TIMEOUT_MS));
    const ok = count === R.dataset.count;
    log(`[${name}] restore check: ${ok ? 'ok' : 'WRONG ROW COUNT'} (${count})`);
    return { ok, summary: `${ok ? 'ok' : 'WRONG ROW COUNT'}: the pgark-restored copy started (restore_command = pgark wal-fetch, as restore wrote it), left recovery, count(*) FROM ${R.dataset.table} = ${count} (source ${R.dataset.count})` };
  } catch (e) {
    return { ok: false, summary: `FAILED: ${String(e.message ?? e).split('\n')[0]}` };
  } finally {
    await cl.stop('immediate');
  }
}

const { cleanup } = createCleanup({ tmpRoot, keep: KEEP, log, before: [async () => { for (const c of [...clusters]) await c.stop('immediate'); }], budgetMs: TOTAL_BUDGET_MS, graceMs: 120_000 });

function report(failure) {
  const out = [MARKER, '', '## Run', '', environmentLines({ started, startLoad, command: `node bench/restore.mjs ${args.argv.join(' ')}` })];
  out.push(`- pgBackRest binaries: ${peers.map((p) => `\`${p.bin}\` = ${p.version}${p.bundle ? ' (repo1-bundle=y, repo1-block=y)' : ''}`).join('; ')}`);
  out.push('- pgark started as users run it: bin/pgark (the launcher: MALLOC_ARENA_MAX=2, MALLOC_MMAP_THRESHOLD_=131072, --max-semi-space-size=1), PGARK_NODE = this Node');
  out.push(`- ${ROUNDS} rounds per dataset, tool order rotated each round; medians; --jobs ${JOBS} / process-max=${JOBS}; lz4; warm page cache; restores fsync (both tools)`);
  out.push(`- restored into ${TARGET_DIR ? `\`${TARGET_DIR}\`` : 'the run\'s temporary directory'} (${targetFs(TARGET_DIR ?? tmpRoot)})`, '');
  if (failure) out.push(`**Run failed:** \`${String(failure.message ?? failure).split('\n')[0]}\``, '');
  for (const R of results) {
    const title = R.name === 'pgbench' ? `pgbench -i -s ${SCALE}` : `random (${RANDOM_GB} GB target, base64 of random bytes)`;
    out.push(`## Dataset: ${title}`, '');
    if (R.error) out.push(`**Dataset failed:** \`${String(R.error.message ?? R.error).split('\n')[0]}\``, '');
    if (R.dataset) out.push(`Database ${fmtMB(R.dataset.dbBytes)} MB; restored data directory ${fmtMB(R.restoredBytes)} MB.`, '');
    const ref = R.candidates.find((c) => c.key === 'pgark');
    const med = (c, k) => median(c.runs.map((r) => (r.ok ? r[k] : null)));
    out.push('| restore | wall s (median) | CPU s (median) | CPU s per GB restored | peak RSS MiB (Σ tree) | pgark ÷ this, wall | pgark ÷ this, CPU | runs wall / CPU |', '|---|---|---|---|---|---|---|---|');
    for (const c of R.candidates) {
      const w = med(c, 'secs');
      const cpu = med(c, 'cpuSecs');
      const rss = Math.max(...c.runs.filter((r) => r.ok).map((r) => r.rssKiB ?? 0));
      const tree = Math.max(...c.runs.filter((r) => r.ok).map((r) => r.treeKiB ?? 0));
      const pw = ref ? med(ref, 'secs') : null;
      const pc = ref ? med(ref, 'cpuSecs') : null;
      const ratio = (a, b) => (a == null || b == null || !(b > 0) ? 'n/a' : f2(a / b));
      const perGB = cpu != null && R.restoredBytes ? cpu / (R.restoredBytes / 1e9) : null;
      out.push(`| ${c.name} | ${f2(w)} | ${f2(cpu)} | ${f2(perGB)} | ${fmtMiB(rss)} (Σ ${fmtMiB(tree)}) | ${c === ref ? '—' : ratio(pw, w)} | ${c === ref ? '—' : ratio(pc, cpu)} | ${c.runs.map((r) => (r.ok ? `${f2(r.secs)}/${f2(r.cpuSecs)}` : 'failed')).join(', ')} |`);
    }
    out.push('');
    for (const c of R.candidates) out.push(`- backup (for the record) ${c.name}: ${c.backup.ok ? `${f2(c.backup.secs)} s, CPU ${f2(c.backup.cpuSecs)} s` : 'failed'}`);
    if (R.check) out.push(`- restore check: ${R.check.summary}`);
    for (const n of R.notes) out.push(`- ${n}`);
    if (R.profile) out.push('', `pgark restore CPU profile (\`node --cpu-prof\`, main thread + workers; self time by category):`, '', R.profile);
    out.push('');
  }
  return out.join('\n');
}

let failure = null;
try {
  checkPgarkReadableByPostgres();
  log(`temp dir ${tmpRoot}; datasets ${DATASETS.join(', ')}; peers ${peers.map((p) => p.name).join(', ')}`);
  for (const ds of DATASETS) await runDataset(ds);
} catch (e) {
  failure = e;
  log(`FAILED: ${e.stack ?? e}`);
} finally {
  await cleanup();
}
const md = report(failure);
console.log(md);
if (WRITE && results.some((R) => R.candidates.length)) {
  if (!existsSync(join(ROOT, 'bench/results'))) mkdirSync(join(ROOT, 'bench/results'));
  writeGenerated(RESULTS, MARKER, md, 'Restore benchmark');
  log(`wrote ${RESULTS}`);
}
process.exit(failure || results.some((R) => R.error || R.candidates.some((c) => c.runs.some((r) => !r.ok)) || (R.check && !R.check.ok)) ? 1 : 0);
