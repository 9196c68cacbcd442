// Apply throughput of an agent subscription (`pgark sets apply`) against a native PostgreSQL
// subscription, in ONE run on the same pgbench workload:
//   - a PostgreSQL 15 source with pgbench tables (scale S), REPLICA IDENTITY FULL on
//     pgbench_history, one set `bench` with the four pgbench tables;
//   - two targets with the same (empty) tables: one native subscriber, one agent subscriber, both
//     with the initial copy;
//   - backlog drain: the native subscription is disabled and the apply worker stopped, `pgbench
//     -c 4 -j 2 -T D` runs on the source, then both consumers are started at the same moment and
//     each target is polled (every 0.1 s) until its pgbench_history has the source's row count;
//     rows/s = row changes in the backlog (4 per pgbench transaction: 3 updates + 1 insert) /
//     drain time. Target: agent >= 0.8x native (issue 17). Finally the three databases are compared.
//
//   npm run bench:sets                      # as root (the clusters run as the `postgres` OS user)
//   node bench/sets-apply.mjs [--duration 30] [--scale 10] [--budget-sec S] [--keep] [--out FILE | --no-write]
//     [--pgark-root DIR]   # run the apply worker of another built checkout (DIR/bin/pgark.js), e.g. the code before a change
//   smoke (~1 min; scale 2, 8 s of load; writes /tmp/pgark-sets-apply-smoke.md unless --out):
//   node bench/sets-apply.mjs --smoke
//
// Needs: postgresql-15 (server, client, pgbench), a built pgark (dist/). Writes
// bench/results/sets-apply.md (text above the GENERATED marker is kept).
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Cluster, benchConf, initCluster } from './lib-pg.mjs';
import {
  BASE_ENV, createBudget, createCleanup, createRun, environmentLines, f1, f2, freePort, makeTmpRoot, NODE, PG_BIN, PGARK,
  parseBenchArgs, pkgVersion, requireRootAndFiles, ROOT, sleep, sq, writeGenerated,
} from './lib-proc.mjs';

const MARKER = '<!-- GENERATED: everything below is rewritten by bench/sets-apply.mjs -->';
const TARGET_RATIO = 0.8;
const args = parseBenchArgs(['--keep', '--no-write', '--smoke'], ['--duration', '--scale', '--budget-sec', '--out', '--pgark-root']);
const argv = args.argv;
const argValue = args.value;
const SMOKE = argv.includes('--smoke');
const DURATION = Number(argValue('--duration', SMOKE ? '8' : '30'));
const SCALE = Number(argValue('--scale', SMOKE ? '2' : '10'));
const TOTAL_BUDGET_MS = Number(argValue('--budget-sec', String(SMOKE ? 300 : 900 + DURATION * 10))) * 1000;
const KEEP = argv.includes('--keep');
// another built checkout's worker (e.g. the code before a change) against the same native peer
const WORKER_PGARK = argValue('--pgark-root', '') ? join(argValue('--pgark-root', ''), 'bin', 'pgark.js') : PGARK;
const WRITE = !argv.includes('--no-write');
const RESULTS = argValue('--out', SMOKE ? '/tmp/pgark-sets-apply-smoke.md' : join(ROOT, 'bench/results/sets-apply.md'));
for (const [k, v] of Object.entries({ DURATION, SCALE, TOTAL_BUDGET_MS })) {
  if (!Number.isFinite(v) || v <= 0) {
    console.error(`invalid ${k}: ${v}`);
    process.exit(2);
  }
}
requireRootAndFiles('bench/sets-apply.mjs', [join(PG_BIN, 'initdb'), join(PG_BIN, 'pgbench'), join(ROOT, 'dist/src/logical/apply-worker.js')]);

const budget = createBudget(TOTAL_BUDGET_MS);
const { started, log, bounded } = budget;
const startLoad = loadavg();
const run = createRun(budget);
const tmpRoot = makeTmpRoot('/tmp/pgark-setsbench-');
const clusters = new Set();
const ctx = { tmpRoot, run, bounded, log, clusters };
let worker = null;
const stopWorker = async () => {
  if (!worker || worker.exitCode !== null || worker.signalCode !== null) return;
  const exited = new Promise((r) => worker.once('exit', r));
  worker.kill('SIGTERM');
  const t = Date.now();
  const clean = await Promise.race([exited.then(() => true), sleep(30_000).then(() => false)]);
  if (!clean) {
    worker.kill('SIGKILL');
    results.notes.push(`the apply worker did not stop within 30 s of SIGTERM (killed); output tail:\n${worker.output()}`);
  }
  log(`apply worker stopped in ${((Date.now() - t) / 1000).toFixed(1)} s${clean ? '' : ' (killed)'}`);
};
const { cleanup } = createCleanup({
  tmpRoot, keep: KEEP, log, budgetMs: TOTAL_BUDGET_MS,
  before: [stopWorker, async () => {
    for (const c of [...clusters]) await c.stop('immediate');
  }],
});

const dsn = (c) => `host=127.0.0.1 port=${c.port} user=postgres dbname=postgres`;
const TABLES = ['pgbench_accounts', 'pgbench_branches', 'pgbench_tellers', 'pgbench_history'];

async function newCluster(name, extra) {
  const port = await freePort();
  const cl = new Cluster(ctx, name, join(tmpRoot, name), port);
  await initCluster(ctx, cl, { conf: benchConf(cl, extra) });
  await cl.start();
  return cl;
}

const pgbench = (cl, args, timeoutMs) => run(join(PG_BIN, 'pgbench'), args, { env: cl.env, timeoutMs });
const count = async (cl) => Number(await cl.psql('SELECT count(*) FROM pgbench_history'));
const fingerprint = (cl) => cl.psql('SELECT (SELECT sum(abalance) FROM pgbench_accounts), (SELECT sum(bbalance) FROM pgbench_branches), (SELECT sum(tbalance) FROM pgbench_tellers), (SELECT count(*) FROM pgbench_history)');

function startAgent(src) {
  const child = spawn(NODE, [WORKER_PGARK, 'sets', 'apply', 'bench', '--name', 'agt', '--source', dsn(src), '--log-level', 'info'], { env: { ...BASE_ENV, HOME: '/root' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  child.output = () => out.slice(-3000);
  return child;
}

/** Poll until pgbench_history on `cl` has `want` rows; seconds from t0 (performance.now()). */
async function drained(cl, want, t0, what, proc) {
  const until = Date.now() + bounded(20 * 60_000);
  for (;;) {
    if (proc && (proc.exitCode !== null || proc.signalCode !== null)) throw new Error(`${what} exited (${proc.exitCode ?? proc.signalCode})`);
    if ((await count(cl)) >= want) return (performance.now() - t0) / 1000;
    if (Date.now() > until) throw new Error(`${what} did not catch up`);
    await sleep(100);
  }
}

const results = { notes: [] };
/** utime + stime of a process, seconds (Linux /proc). */
function cpuSeconds(pid) {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return null;
  }
}
let failed = false;
try {
  const { createSet } = await import(join(ROOT, 'dist/src/logical/sets-admin.js'));
  const { subscribeNative } = await import(join(ROOT, 'dist/src/logical/subscribe-native.js'));
  const { subscribeAgent } = await import(join(ROOT, 'dist/src/logical/agent-subscribe.js'));
  log(`clusters (scale ${SCALE}, ${DURATION} s of pgbench -c 4 -j 2)`);
  const src = await newCluster('source', { wal_level: 'logical', max_replication_slots: '10', max_wal_senders: '10' });
  const nat = await newCluster('native', {});
  const agt = await newCluster('agent', {});
  await pgbench(src, ['-i', '-q', '-s', String(SCALE)], 600_000);
  await src.psql('ALTER TABLE pgbench_history REPLICA IDENTITY FULL');
  for (const t of [nat, agt]) await pgbench(t, ['-i', '-q', '-I', 'dtp', '-s', String(SCALE)], 120_000);

  await createSet({ set: 'bench', sourceDsn: dsn(src), tables: TABLES.join(',') });
  await subscribeNative({ set: 'bench', sourceDsn: dsn(src), targetDsn: dsn(nat), name: 'nat', syncStructure: false, copyData: true, waitSync: 600 });
  await subscribeAgent({ set: 'bench', sourceDsn: dsn(src), targetDsn: dsn(agt), name: 'agt', syncStructure: false, copyData: true });
  log('subscribed (initial copies done)');

  // live: both consumers running while pgbench runs; catch-up after it ends
  worker = startAgent(src);
  await sleep(2000);
  {
    const before = await count(src);
    log(`live: pgbench -c 4 -j 2 -T ${DURATION}`);
    const tStart = performance.now();
    const pb = await pgbench(src, ['-n', '-c', '4', '-j', '2', '-T', String(DURATION)], (DURATION + 120) * 1000);
    const tEnd = performance.now();
    const want = await count(src);
    const rows = (want - before) * 4;
    const [natSec, agtSec] = await Promise.all([drained(nat, want, tStart, 'the native subscription'), drained(agt, want, tStart, 'the agent', worker)]);
    const loadSec = (tEnd - tStart) / 1000;
    results.live = { tps: /tps = ([\d.]+)/.exec(pb.stdout)?.[1], rows, loadSec, natSec, agtSec, natRate: rows / natSec, agtRate: rows / agtSec };
    log(`live: ${rows} row changes in ${f1(loadSec)} s of load; native caught up at ${f2(natSec)} s, agent at ${f2(agtSec)} s`);
  }
  await stopWorker();

  // backlog: native subscription disabled, apply worker not running
  await nat.psql('ALTER SUBSCRIPTION nat DISABLE');
  await sleep(1000);
  const before = await count(src);
  log(`pgbench -c 4 -j 2 -T ${DURATION}`);
  const pb = await pgbench(src, ['-n', '-c', '4', '-j', '2', '-T', String(DURATION)], (DURATION + 120) * 1000);
  const tps = /tps = ([\d.]+)/.exec(pb.stdout)?.[1];
  const want = await count(src);
  const txs = want - before;
  const rows = txs * 4;
  const backlogBytes = Number(await src.psql("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn) FROM pg_replication_slots WHERE slot_name = 'pgark_bench_agt'"));
  log(`backlog: ${txs} transactions, ${rows} row changes, ${(backlogBytes / 2 ** 20).toFixed(1)} MiB of WAL`);

  const t0 = performance.now();
  await nat.psql('ALTER SUBSCRIPTION nat ENABLE');
  worker = startAgent(src);
  const [natSec, agtSec] = await Promise.all([
    drained(nat, want, t0, 'the native subscription'),
    drained(agt, want, t0, 'the agent', worker).catch((e) => {
      throw new Error(`${e.message}\n${worker.output()}`);
    }),
  ]);
  const cpu = cpuSeconds(worker.pid);
  await stopWorker();
  const fs = await Promise.all([fingerprint(src), fingerprint(nat), fingerprint(agt)]);
  const same = fs[0] === fs[1] && fs[0] === fs[2];
  if (!same) results.notes.push(`MISMATCH: source ${fs[0]}, native ${fs[1]}, agent ${fs[2]}`);
  Object.assign(results, { cpu, tps, txs, rows, backlogBytes, natSec, agtSec, natRate: rows / natSec, agtRate: rows / agtSec, same, fp: fs[0] });
  results.ratio = results.agtRate / results.natRate;
  log(`agent worker CPU ${f2(cpu)} s`);
  log(`native ${f2(natSec)} s (${f1(results.natRate)} rows/s), agent ${f2(agtSec)} s (${f1(results.agtRate)} rows/s): ratio ${f2(results.ratio)}`);
  failed = !same;
  if (results.ratio < TARGET_RATIO) results.notes.push(`backlog drain: agent/native ${f2(results.ratio)}x is below the ${TARGET_RATIO}x target`);
} catch (e) {
  failed = true;
  results.error = e.stack ?? String(e);
  log(results.error);
} finally {
  await cleanup();
}

const r = results;
const md = `${MARKER}

## Run

${environmentLines({ started, startLoad, command: `node bench/sets-apply.mjs ${argv.join(' ')}`.trim() })}
- pg-logical-replication ${pkgVersion('pg-logical-replication')}, pg ${pkgVersion('pg')}
- workload: pgbench scale ${SCALE}, \`pgbench -n -c 4 -j 2 -T ${DURATION}\` (TPC-B-like: 3 updates + 1 insert per transaction), pgbench_history with REPLICA IDENTITY FULL${SMOKE ? ' (SMOKE run: too short to judge)' : ''}

${r.live ? `## Live: both consumers running during the load

| | value |
|---|---|
| pgbench on the source | ${r.live.tps} tps, ${r.live.rows} row changes in ${f1(r.live.loadSec)} s |
| native subscription caught up | ${f2(r.live.natSec)} s after the load started (${f1(r.live.natRate)} rows/s over the run) |
| agent caught up | ${f2(r.live.agtSec)} s after the load started (${f1(r.live.agtRate)} rows/s over the run) |
| agent / native | **${f2(r.live.agtRate / r.live.natRate)}x** |

` : ''}${r.error ? `**Run failed:**\n\n\`\`\`\n${r.error}\n\`\`\`\n` : `## Backlog drain (both consumers started at the same moment)

| | value |
|---|---|
| pgbench on the source | ${r.tps} tps, ${r.txs} transactions, ${r.rows} row changes, ${(r.backlogBytes / 2 ** 20).toFixed(1)} MiB of WAL behind the slot |
| native subscription | ${f2(r.natSec)} s, ${f1(r.natRate)} rows/s |
| agent (\`pgark sets apply\`) | ${f2(r.agtSec)} s, ${f1(r.agtRate)} rows/s (the worker process used ${f2(r.cpu)} s of CPU in total) |
| agent / native | **${f2(r.ratio)}x** (target >= ${TARGET_RATIO}x: ${r.ratio >= TARGET_RATIO ? 'met' : 'NOT met'}) |
| source, native and agent targets identical (sums of balances, history rows) | ${r.same ? 'yes' : 'NO'} (${r.fp}) |
`}
${r.notes.length ? `Notes:\n\n${r.notes.map((n) => `- ${n}`).join('\n')}\n` : ''}
How: live, both consumers run while pgbench runs and each target is polled until its
pgbench_history has the source's row count (both keep up when the apply capacity exceeds the
source's rate: the ratio is then ~1). Backlog drain (apply capacity): the native subscription is
disabled and the apply worker stopped while pgbench builds the backlog; then \`ALTER SUBSCRIPTION
... ENABLE\` and \`pgark sets apply\` start together. The native apply worker runs inside the
target server and commits with synchronous_commit = off (the subscription default). The agent
groups the source transactions waiting in the stream (up to 1000; while draining a backlog a group
waits up to 50 ms for the next message) into one target transaction with its position row, and
confirms the slot after that commit (synchronous_commit on). Within a group, the changes of
trigger-free target tables (all four pgbench tables here) go per table as multi-row statements
(INSERT ... VALUES, UPDATE ... FROM (VALUES ...) with repeated updates of a key folded, DELETE ...
USING (VALUES ...)); other changes as prepared single-row statements, several per round trip,
pipelined.
`;
if (WRITE) {
  writeGenerated(RESULTS, MARKER, md, 'Agent apply vs native subscription');
  log(`wrote ${RESULTS}`);
}
process.exit(failed ? 1 : 0);
