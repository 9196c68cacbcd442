// Memory benchmark: peak RSS of every pgark process type against pgBackRest on the same cluster,
// in the same run (issue 17 item 4: <= 96 MiB for backup, restore and the agent, <= 64 MiB for a
// full-path wal-push / wal-fetch).
//
//   node bench/memory.mjs [--scale 20] [--jobs 2] [--fetch-calls 4] [--agent-segments 24]
//                         [--pgbackrest /work/shared/tools/pgbackrest-2.59.1,...] [--keep]
//                         [--budget-sec 2400] [--out FILE | --no-write] [--direct]
//   smoke: node bench/memory.mjs --scale 1 --agent-segments 4 --out /tmp/memory-smoke.md
//
// Method (one cluster, `initdb --data-checksums`, pgbench -i -s SCALE): archive_command runs
// `pgark wal-push %p --push-ahead 0` (every call takes the full path: no look-ahead worker, no
// push record) and each pgBackRest's `archive-push %p`, each wrapped in GNU time (%M = peak RSS
// of the call); one full backup per tool (--jobs / process-max = --jobs, lz4); one restore per
// tool into an empty directory; --fetch-calls calls of `pgark wal-fetch SEG DEST --prefetch 0`
// and of pgBackRest's `archive-get`; finally a backlog of --agent-segments ready segments
// (archive_command = /bin/false) that `pgark agent` stores alone (agent's VmHWM read from /proc
// before SIGTERM, and GNU time's %M). Every figure is the peak of the single largest process
// (GNU time %M, which covers all of a Node process's worker threads) and, for the commands, the
// summed RSS of the process tree sampled every 100 ms (pgBackRest runs one process per job).
// Timing is not the subject (the machine is shared): only memory is reported.
// Where each pgark process's peak goes: while a process type runs, every pgark process of that
// type (its command line names `pgark.js <command>`) is sampled every 50 ms; at each new high of
// its RSS, /proc/<pid>/smaps is split into the node binary's pages (file-backed, shared), other
// files (libc, libstdc++, the lz4-napi addon), lz4-napi's mimalloc arenas (anonymous mappings in
// mimalloc's address range, 2-8 TiB), glibc's main heap and the rest of the anonymous memory
// (V8's heaps, Node's buffers and glibc's other arenas and mappings, thread stacks), with the
// process's threads by name. The table "Where the peak goes" reports that split at the highest
// sample (a sample every 50 ms can miss the very top by a little: GNU time's figure is the peak).
// pgark runs as users run it: through its launcher bin/pgark (the .deb's /usr/bin/pgark, the
// tarball's bin/pgark), which sets the memory settings only a starting process reads (glibc's
// malloc, V8's young generation; docs/OPERATIONS.md, Memory), with this checkout's Node runtime
// (PGARK_NODE). --direct runs `node bin/pgark.js` instead (a checkout or npm link, and the tests).
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { Cluster as BaseCluster, benchConf, initCluster, makeBacklog, readyFiles, switchAndWaitArchived, backlogPgbenchArgs, BACKLOG_BULK_SQL, BACKLOG_TABLE_SQL } from './lib-pg.mjs';
import {
  asPgArgv,
  BASE_ENV,
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
  measureCommand,
  mkPgDir,
  pgarkCommand,
  parseBenchArgs,
  PG_BIN,
  pgarkRepoCreate,
  pgbackrestBinaries,
  pkgVersion,
  procTable,
  requireRootAndFiles,
  ROOT,
  rssStats,
  rssWrap,
  sh,
  shq,
  sleep,
  sq,
  stopWithSignal,
  TIME,
  treeBytes,
  writeGenerated,
  writePgbackrestConf,
  writePgFile,
} from './lib-proc.mjs';

const MARKER = '<!-- GENERATED: everything below is rewritten by bench/memory.mjs -->';
const STANZA = 'bench';
const args = parseBenchArgs(['--keep', '--no-write', '--direct'], ['--scale', '--jobs', '--fetch-calls', '--agent-segments', '--pgbackrest', '--budget-sec', '--out', '--pgark-env']);
const SCALE = Number(args.value('--scale', '20'));
const JOBS = Number(args.value('--jobs', '2'));
const FETCH_CALLS = Number(args.value('--fetch-calls', '4'));
const AGENT_SEGMENTS = Number(args.value('--agent-segments', '24'));
const KEEP = args.has('--keep');
const WRITE = !args.has('--no-write');
const RESULTS = args.value('--out', join(ROOT, 'bench/results/memory.md'));
const TOTAL_BUDGET_MS = Number(args.value('--budget-sec', '2400')) * 1000;
const COMMAND_TIMEOUT_MS = 20 * 60_000;
/** How pgark is started: [program, ...arguments before pgark's own]. */
// --pgark-env K=V[,K=V...]: settings in every pgark process's environment (e.g. PGARK_LZ4_BLOCK_KIB=64,
// docs/OPERATIONS.md "Memory"); pgBackRest's runs are unchanged.
const PGARK_ENV = (args.value('--pgark-env', '') || '').split(',').filter(Boolean);
for (const kv of PGARK_ENV) if (!/^[A-Z_][A-Z0-9_]*=/.test(kv)) throw new Error(`--pgark-env takes NAME=value[,NAME=value], not '${kv}'`);
const PGARK_CMD = pgarkCommand({ direct: args.has('--direct'), env: PGARK_ENV });
const pgarkArgv = (...rest) => [PGARK_CMD[0], [...PGARK_CMD.slice(1), ...rest]];
for (const [k, v] of Object.entries({ SCALE, JOBS, FETCH_CALLS, AGENT_SEGMENTS, TOTAL_BUDGET_MS })) {
  if (!Number.isFinite(v) || v <= 0) {
    console.error(`invalid ${k}: ${v}`);
    process.exit(2);
  }
}
const BINARIES = pgbackrestBinaries(args.value('--pgbackrest', undefined));
requireRootAndFiles('bench/memory.mjs', [join(PG_BIN, 'initdb'), join(PG_BIN, 'pgbench'), TIME, join(ROOT, 'dist/src/cli/main.js'), ...BINARIES]);

const budget = createBudget(TOTAL_BUDGET_MS);
const { started, log, bounded } = budget;
const startLoad = loadavg();
const run = createRun(budget);
const tmpRoot = makeTmpRoot('/tmp/pgark-membench-');
const clusters = new Set();
const ctx = { tmpRoot, run, bounded, log, clusters };
const measure = (label, cmd, argv, dir, env = {}) => measureCommand({ run, log }, label, cmd, argv, { env, timeoutMs: COMMAND_TIMEOUT_MS, dir });

const peers = BINARIES.map((bin) => {
  const version = /pgBackRest ([\d.]+)/.exec(sh(bin, ['version']))?.[1] ?? '?';
  const [maj, min] = version.split('.').map(Number);
  const bundle = maj > 2 || (maj === 2 && min >= 46);
  return { bin, version, bundle, name: `pgBackRest ${version}${bundle ? ' (bundle+block)' : ''}`, key: `pgbackrest-${version}` };
});

/** rows[process type][tool] = { rssKiB, treeKiB, note } */
const rows = new Map();
const record = (what, tool, v) => {
  if (!rows.has(what)) rows.set(what, new Map());
  rows.get(what).set(tool, v);
};
const notes = [];
let dataset = null;

function vmHwmKiB(pid) {
  try {
    return Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
  } catch {
    return null;
  }
}

/** lz4-napi's mimalloc places its arenas from 2 TiB up (its address hints); nothing else maps there. */
const MIMALLOC_LO = 0x200_0000_0000;
const MIMALLOC_HI = 0x800_0000_0000;

/** RSS (KiB) of `pid` split by what holds it (see the header), and its threads by name. */
function smapsBreakdown(pid) {
  const parts = { node: 0, files: 0, mimalloc: 0, brk: 0, anon: 0 };
  let cat = null;
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const m = /^([0-9a-f]+)-[0-9a-f]+ \S+ \S+ \S+ \S+ *(.*)$/.exec(line);
    if (m) {
      const start = parseInt(m[1], 16);
      const name = m[2];
      cat = name.endsWith('/bin/node') ? 'node' : name.startsWith('/') ? 'files' : name === '[heap]' ? 'brk' : !name && start >= MIMALLOC_LO && start < MIMALLOC_HI ? 'mimalloc' : 'anon';
    } else if (cat && line.startsWith('Rss:')) parts[cat] += Number(line.split(/\s+/)[1]);
  }
  const threads = {};
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    try {
      const comm = readFileSync(`/proc/${pid}/task/${t}/comm`, 'utf8').trim();
      threads[comm] = (threads[comm] ?? 0) + 1;
    } catch {
      /* gone */
    }
  }
  return { parts, threads };
}

/**
 * Samples every pgark process whose command line holds `pgark.js <command>` until stop(); stop()
 * returns the split of the highest sample seen ({ rssKiB, parts, threads }) or null.
 */
function peakSampler(command) {
  const needle = `pgark.js ${command} `;
  let best = null;
  const known = new Map();
  const tick = () => {
    for (const e of readdirSync('/proc')) {
      if (!/^\d+$/.test(e)) continue;
      try {
        // A process is looked at again once it execs (its name changes): `sh bin/pgark` becomes node.
        const comm = readFileSync(`/proc/${e}/comm`, 'utf8');
        let k = known.get(e);
        if (k?.comm !== comm) known.set(e, (k = { comm, match: readFileSync(`/proc/${e}/cmdline`, 'utf8').replaceAll('\0', ' ').includes(needle) }));
        if (!k.match) continue;
        const rss = Number(/^Rss:\s+(\d+)/m.exec(readFileSync(`/proc/${e}/smaps_rollup`, 'utf8'))?.[1]);
        if (best && rss <= best.rssKiB) continue;
        best = { rssKiB: rss, ...smapsBreakdown(e) };
      } catch {
        known.delete(e); // gone (or a pid reused later)
      }
    }
  };
  const timer = setInterval(tick, 50);
  return {
    stop() {
      clearInterval(timer);
      return best;
    },
  };
}
/** Where each process type's peak went (peakSampler), for the report. */
const peaks = new Map();
const sampled = async (what, command, fn) => {
  const s = peakSampler(command);
  try {
    return await fn();
  } finally {
    const p = s.stop();
    if (p) peaks.set(what, p);
  }
};

async function main() {
  const dir = mkPgDir(join(tmpRoot, 'ds'));
  const dataDir = join(dir, 'data');
  const work = mkPgDir(join(dir, 'work'));
  const cl = new BaseCluster(ctx, 'mem', dataDir, await freePort());
  await initCluster({ run }, cl, { checksums: true, conf: benchConf(cl, { max_wal_senders: '10' }), comment: 'memory bench' });
  await cl.start();

  // archive_command: pgark's full path and every peer, each call under GNU time.
  const pgarkRepo = await pgarkRepoCreate(run, mkPgDir(join(dir, 'repo-pgark')));
  const pushFile = join(work, 'wal-push.txt');
  writePgFile(pushFile, '');
  const pushSampler = peakSampler('wal-push');
  const push = [rssWrap(pushFile, [...PGARK_CMD, 'wal-push', '%p', '--repo', pgarkRepo, '--stanza', STANZA, '--push-ahead', '0'])];
  for (const p of peers) {
    p.repo = mkPgDir(join(dir, `repo-${p.key}`));
    p.conf = writePgbackrestConf(join(dir, p.key), { repo: p.repo, pgPath: dataDir, port: cl.port, sockDir: cl.sockDir, stanza: STANZA, jobs: JOBS, bundle: p.bundle });
    await run(p.bin, [`--config=${p.conf.conf}`, `--stanza=${STANZA}`, 'stanza-create'], { asPg: true, timeoutMs: 120_000 });
    p.pushFile = join(work, `archive-push-${p.key}.txt`);
    writePgFile(p.pushFile, '');
    push.push(rssWrap(p.pushFile, [p.bin, `--config=${p.conf.conf}`, `--stanza=${STANZA}`, 'archive-push', '%p']));
  }
  await cl.psql(`ALTER SYSTEM SET archive_command = ${sq(push.join(' && '))}; SELECT pg_reload_conf();`);
  await sleep(500);

  log(`loading pgbench -i -s ${SCALE}`);
  await run(join(PG_BIN, 'pgbench'), ['-i', '-q', '-s', String(SCALE)], { env: cl.env, timeoutMs: COMMAND_TIMEOUT_MS });
  await cl.psql(BACKLOG_TABLE_SQL);
  await cl.psql('VACUUM ANALYZE; CHECKPOINT;', COMMAND_TIMEOUT_MS);
  const dbBytes = Number(await cl.psql('SELECT pg_database_size(current_database());'));
  const waitArchived = () => switchAndWaitArchived(ctx, cl, 10 * 60_000);
  await waitArchived();
  const pushPeak = pushSampler.stop();
  if (pushPeak) peaks.set('wal-push (full path)', pushPeak);
  const ps = rssStats(pushFile);
  record('wal-push (full path)', 'pgark', { rssKiB: ps.max, note: `${ps.calls} calls` });
  for (const p of peers) {
    const s = rssStats(p.pushFile);
    record('wal-push (full path)', p.name, { rssKiB: s.max, note: `${s.calls} calls of archive-push` });
  }

  // Backups.
  const backup = await sampled(`backup --jobs ${JOBS}`, 'backup', () => measure('pgark full backup', ...pgarkArgv('backup', '--type', 'full', '--repo', pgarkRepo, '--stanza', STANZA, '--pgdata', dataDir, '--jobs', String(JOBS)), work, cl.env));
  record(`backup --jobs ${JOBS}`, 'pgark', { ...backup, note: `CPU ${f2(backup.cpuSecs)} s` });
  for (const p of peers) {
    await waitArchived();
    const b = await measure(`${p.name} full backup`, p.bin, [`--config=${p.conf.conf}`, `--stanza=${STANZA}`, '--type=full', 'backup'], work);
    record(`backup --jobs ${JOBS}`, p.name, { ...b, note: `CPU ${f2(b.cpuSecs)} s` });
  }
  await waitArchived();
  dataset = { dbBytes, dataBytes: treeBytes(dataDir).bytes };

  // Agent: a backlog the agent stores alone (archive_command = /bin/false).
  const bulk = join(work, 'bulk.sql');
  writePgFile(bulk, BACKLOG_BULK_SQL);
  const backlog = await makeBacklog(ctx, cl, { label: 'agent', segments: AGENT_SEGMENTS, pgbenchArgs: backlogPgbenchArgs(bulk) });
  const segs = readyFiles(dataDir);
  const agentRepo = await pgarkRepoCreate(run, mkPgDir(join(dir, 'repo-agent')));
  const agentTime = join(work, 'agent-time.txt');
  writePgFile(agentTime, '');
  const agentArgv = [...PGARK_CMD, 'agent', '--pgdata', dataDir, '--repo', agentRepo, '--stanza', STANZA];
  log(`agent: ${agentArgv.map(shq).join(' ')} (${segs.length} ready segments)`);
  const [file, argv] = asPgArgv(TIME, ['-f', '%M %e %U %S', '-o', agentTime, ...agentArgv]);
  const agentSampler = peakSampler('agent');
  const child = spawn(file, argv, { env: { ...BASE_ENV, HOME: '/var/lib/postgresql' }, cwd: '/', stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  let agentErr = '';
  child.stderr.on('data', (d) => (agentErr += d));
  const exited = new Promise((r) => child.on('close', r));
  const pushedDir = join(dataDir, 'pg_wal', '.pgark', 'pushed');
  const until = Date.now() + bounded(300_000);
  let hwm = null;
  let agentPid = null;
  for (;;) {
    agentPid ??= procTable().find((r) => r.ppid === child.pid)?.pid ?? null;
    // the node process may be below setpriv's exec: setpriv execs, so the child of time is node
    if (agentPid) hwm = vmHwmKiB(agentPid) ?? hwm;
    const have = segs.filter((s) => existsSync(join(pushedDir, s))).length;
    if (have === segs.length) break;
    if (Date.now() > until || child.exitCode !== null) throw new Error(`agent stored ${have} of ${segs.length} segments:\n${agentErr.slice(-2000)}`);
    await sleep(100);
  }
  if (agentPid) hwm = vmHwmKiB(agentPid) ?? hwm;
  const agentPeak = agentSampler.stop();
  if (agentPeak) peaks.set('agent', agentPeak);
  await stopWithSignal({ pid: agentPid, child, exited });
  const agentRec = readFileSync(agentTime, 'utf8').trim().split('\n').at(-1)?.split(' ').map(Number);
  record('agent', 'pgark', { rssKiB: agentRec?.[0] ?? hwm, note: `stored a backlog of ${segs.length} segments alone; VmHWM ${fmtMiB(hwm)} MiB` });
  notes.push(`agent backlog ${backlog.first}..${backlog.last}; pgBackRest has no resident agent (its async archive-push: see bench/results/agent.md)`);
  await cl.stop('fast');

  // Restores.
  const target = mkPgDir(join(dir, 'restore'));
  const r = await sampled(`restore --jobs ${JOBS}`, 'restore', () => measure('pgark restore', ...pgarkArgv('restore', 'latest', '--repo', pgarkRepo, '--stanza', STANZA, '--pgdata', target, '--jobs', String(JOBS)), work));
  record(`restore --jobs ${JOBS}`, 'pgark', { ...r, note: `CPU ${f2(r.cpuSecs)} s` });
  rmSync(target, { recursive: true, force: true });
  for (const p of peers) {
    const t = mkPgDir(join(dir, 'restore'));
    const pr = await measure(`${p.name} restore`, p.bin, [`--config=${p.conf.conf}`, `--stanza=${STANZA}`, `--pg1-path=${t}`, 'restore'], work);
    record(`restore --jobs ${JOBS}`, p.name, { ...pr, note: `CPU ${f2(pr.cpuSecs)} s` });
    rmSync(t, { recursive: true, force: true });
  }

  // wal-fetch: full path (no prefetch) of segments every tool archived.
  const fetchSegs = readdirSegments(pgarkRepo, backlog.first).slice(0, FETCH_CALLS);
  const dest = mkPgDir(join(dir, 'fetch'));
  const fetchMax = (label, tool, mk) => async () => {
    let best = null;
    for (const s of fetchSegs) {
      const m = await measure(`${label} ${s}`, ...mk(s, join(dest, s)), work);
      if (!m.ok) notes.push(`${label} ${s} failed: ${m.stderr.slice(-200)}`);
      if (!best || (m.rssKiB ?? 0) > (best.rssKiB ?? 0)) best = m;
      rmSync(join(dest, s), { force: true });
    }
    if (best) record('wal-fetch (full path)', tool, { ...best, note: `${fetchSegs.length} calls` });
  };
  await sampled('wal-fetch (full path)', 'wal-fetch', fetchMax('pgark wal-fetch', 'pgark', (s, d) => pgarkArgv('wal-fetch', s, d, '--repo', pgarkRepo, '--stanza', STANZA, '--prefetch', '0')));
  for (const p of peers) await fetchMax(`${p.name} archive-get`, p.name, (s, d) => [p.bin, [`--config=${p.conf.conf}`, `--stanza=${STANZA}`, 'archive-get', s, d]])();
}

/** Segment names before `before` that the load archived (from the archive_status of the data dir we cannot see any more: list the pgark repository). */
function readdirSegments(repo, before) {
  const out = sh('find', [repo, '-type', 'f']).split('\n');
  const names = new Set();
  for (const f of out) {
    const m = /\/([0-9A-F]{24})(?:[^/]*)$/.exec(f);
    if (m && m[1] < before) names.add(m[1]);
  }
  return [...names].sort().reverse();
}

const { cleanup } = createCleanup({ tmpRoot, keep: KEEP, log, before: [async () => { for (const c of [...clusters]) await c.stop('immediate'); }], budgetMs: TOTAL_BUDGET_MS, graceMs: 120_000 });

const TARGET = { 'wal-push (full path)': 64, 'wal-fetch (full path)': 64, agent: 96 };
function report(failure) {
  const out = [MARKER, '', '## Run', '', environmentLines({ started, startLoad, command: `node bench/memory.mjs ${args.argv.join(' ')}` })];
  out.push(`- pgBackRest binaries: ${peers.map((p) => `\`${p.bin}\` = ${p.version}${p.bundle ? ' (repo1-bundle=y, repo1-block=y)' : ''}`).join('; ')}`);
  out.push(`- pgark started as ${args.has('--direct') ? '`node bin/pgark.js` (--direct: no launcher settings)' : 'users run it: bin/pgark (the launcher: MALLOC_ARENA_MAX=2, MALLOC_MMAP_THRESHOLD_=131072; --max-semi-space-size=1 for backup, restore, wal-push, wal-fetch)'}${PGARK_ENV.length ? `; pgark's environment also: ${PGARK_ENV.map((e) => `\`${e}\``).join(' ')}` : ''}`);
  out.push(`- lz4-napi ${pkgVersion('lz4-napi')}; --jobs ${JOBS} / process-max=${JOBS}; lz4; pgbench -i -s ${SCALE}${dataset ? `: database ${fmtMB(dataset.dbBytes)} MB, data directory ${fmtMB(dataset.dataBytes)} MB` : ''}`, '');
  if (failure) out.push(`**Run failed:** \`${String(failure.message ?? failure).split('\n')[0]}\``, '');
  const tools = ['pgark', ...peers.map((p) => p.name)];
  out.push(`| process | target MiB | ${tools.map((t) => `${t} peak RSS MiB (Σ tree)`).join(' | ')} | ${peers.map((p) => `pgark ÷ ${p.version}`).join(' | ')} |`);
  out.push(`|---|---|${tools.map(() => '---|').join('')}${peers.map(() => '---|').join('')}`);
  for (const [what, byTool] of rows) {
    const cell = (v) => (v ? (v.ok === false ? 'failed' : `${fmtMiB(v.rssKiB)}${v.treeKiB ? ` (Σ ${fmtMiB(v.treeKiB)})` : ''}`) : '—');
    const mine = byTool.get('pgark');
    const ratio = (p) => {
      const o = byTool.get(p.name);
      return mine?.rssKiB && o?.rssKiB ? (mine.rssKiB / o.rssKiB).toFixed(2) : '—';
    };
    const target = TARGET[what] ?? 96;
    out.push(`| ${what} | ${target} | ${tools.map((t) => cell(byTool.get(t))).join(' | ')} | ${peers.map(ratio).join(' | ')} |`);
  }
  out.push('');
  if (peaks.size) {
    out.push('Where the peak goes (pgark, MiB of RSS at the highest 50 ms sample; see bench/memory.mjs):', '');
    out.push('| process | RSS | node binary (file, shared) | other files | lz4-napi mimalloc | glibc main heap | other anonymous (V8 heaps, buffers, glibc arenas, stacks) | threads |');
    out.push('|---|---|---|---|---|---|---|---|');
    for (const [what, p] of peaks) {
      const t = Object.entries(p.threads).sort(([a], [b]) => a.localeCompare(b)).map(([n, c]) => `${n} ${c}`).join(', ');
      out.push(`| ${what} | ${fmtMiB(p.rssKiB)} | ${fmtMiB(p.parts.node)} | ${fmtMiB(p.parts.files)} | ${fmtMiB(p.parts.mimalloc)} | ${fmtMiB(p.parts.brk)} | ${fmtMiB(p.parts.anon)} | ${t} |`);
    }
    out.push('');
  }
  for (const [what, byTool] of rows) for (const [tool, v] of byTool) if (v.note) out.push(`- ${what}, ${tool}: ${v.note}`);
  for (const n of notes) out.push(`- ${n}`);
  out.push('');
  return out.join('\n');
}

let failure = null;
try {
  checkPgarkReadableByPostgres();
  log(`temp dir ${tmpRoot}; peers ${peers.map((p) => p.name).join(', ')}`);
  await main();
} catch (e) {
  failure = e;
  log(`FAILED: ${e.stack ?? e}`);
} finally {
  await cleanup();
}
const md = report(failure);
console.log(md);
if (WRITE && rows.size) {
  writeGenerated(RESULTS, MARKER, md, 'Memory benchmark');
  log(`wrote ${RESULTS}`);
}
process.exit(failure ? 1 : 0);
