// Backup timeline: where the WALL time of a full and an incremental backup goes, pgark against
// pgBackRest (2.59.1, repo1-bundle=y repo1-block=y), on one throwaway PostgreSQL 15 cluster.
//
//   node_modules/.bin/node bench/backup-timeline.mjs [--scale 10] [--jobs 2] [--rounds 1] [--incr-seconds 5]
//        [--pgbackrest /work/shared/tools/pgbackrest-2.59.1] [--pgark ROOT[,ROOT2...]] [--no-pgbackrest] [--solo-archive]
//   (as root: the cluster and the commands run as `postgres`)
//
// Each backup runs under /usr/bin/time (wall, user+sys). pgark runs with --log-level debug: its
// phase lines (PhaseTimer), "begins X s after the process started" and the copy lanes' line
// (backup/lane-clock.ts: per lane busy time, first start, last end; idle = lanes x span - busy,
// tail = idle after each lane's last object) give the timeline. pgBackRest runs with
// log-level-file=detail: its log lines carry millisecond timestamps (backup start, checkpoint,
// each file copied with the local process that copied it, backup stop, WAL wait, end).
// Times are seconds from the command's spawn (the bench's clock, so the spawn of /usr/bin/time and
// setpriv count as start-up for both tools alike).
// --pgark ROOT,ROOT2: alternate several pgark builds (A/B: each ROOT a checkout with dist/ built),
// each round runs every build; medians are printed per build.
//
// What both tools are given: a fast checkpoint (pgark's default --checkpoint fast; pgBackRest
// start-fast=y), archive_command = the timed tool's own push first (pgark wal-push / pgbackrest
// archive-push), then the other's; each waits for the stop segment in its own repository.
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { Cluster as BaseCluster, benchConf, initCluster, switchAndWaitArchived as switchOf } from './lib-pg.mjs';
import {
  createBudget, createCleanup, createRun, f2, freePort, makeTmpRoot, measureCommand, mkPgDir, NODE, PG_BIN, PGBACKREST_NEWEST,
  requireRootAndFiles, ROOT, shq, sleep, sq, TIME, writePgFile,
} from './lib-proc.mjs';

const argv = process.argv.slice(2);
const val = (n, d) => (argv.includes(n) ? argv[argv.indexOf(n) + 1] : d);
const SCALE = Number(val('--scale', '10'));
const JOBS = Number(val('--jobs', '2'));
const ROUNDS = Number(val('--rounds', '1'));
const INCR_SECONDS = Number(val('--incr-seconds', '5'));
const PGBR = argv.includes('--no-pgbackrest') ? undefined : val('--pgbackrest', PGBACKREST_NEWEST);
const BUILDS = val('--pgark', ROOT).split(',').filter(Boolean);
// --solo-archive: archive_command is the timed tool's own push alone (as in production), not the
// chain `own && others'`: a backup that waits for PostgreSQL's archiver to report its stop segment
// archived (pgark since branch b-wall, backup/stop-wal.ts) otherwise also waits for the other
// tools' pushes of it. A WAL switch after each change makes the last archived file the timed
// tool's own; the other repositories miss the WAL of the backups they do not take (no restore here).
const SOLO = argv.includes('--solo-archive');
const STANZA = 'bench';
requireRootAndFiles('bench/backup-timeline.mjs', [join(PG_BIN, 'initdb'), TIME, ...(PGBR ? [PGBR] : []), ...BUILDS.map((b) => join(b, 'dist/src/cli/main.js'))]);

const budget = createBudget(3600_000);
const run = createRun(budget);
const log = budget.log;
const tmpRoot = makeTmpRoot('/tmp/pgark-timeline-');
const clusters = new Set();
const ctx = { tmpRoot, run, bounded: budget.bounded, log, clusters };
const { cleanup } = createCleanup({ tmpRoot, keep: false, log, before: [async () => { for (const c of [...clusters]) await c.stop('immediate'); }], budgetMs: 3600_000 });
const pgarkJs = (root) => join(root, 'bin', 'pgark.js');

/** pgark's debug lines -> events (seconds from spawn). */
function pgarkTimeline(stderr, spawnMs) {
  const ev = [];
  const lanes = [];
  let idle;
  let tail;
  for (const line of stderr.split('\n')) {
    const m = /^(\S+Z) \S+ +pgark-backup\[\d+\]: (.*)$/.exec(line);
    if (!m) continue;
    const at = (Date.parse(m[1]) - spawnMs) / 1000;
    const msg = m[2];
    let x;
    if (msg === 'backup: session ended, lock released') ev.push(['PostgreSQL session ended, repository lock released', at, '']);
    else if ((x = /^backup: begins ([\d.]+)s after the process started/.exec(msg))) ev.push(['node process up, modules loaded (runBackup entered)', at, `${x[1]} s after node started`]);
    else if ((x = /^backup: (.+?) took ([\d.]+)s(?: \((.*)\))?$/.exec(msg))) ev.push([`end of ${x[1]}`, at, `${x[2]} s${x[3] ? `; ${x[3]}` : ''}`]);
    else if ((x = /^backup: copy lanes: span ([\d.]+)s, idle ([\d.]+)s \(of which after their last object ([\d.]+)s\); (.*)$/.exec(msg))) {
      idle = Number(x[2]);
      tail = Number(x[3]);
      for (const l of x[4].split('; ')) lanes.push(l);
    }
  }
  return { ev, lanes, idle, tail };
}

/** pgBackRest's detail log (this run's lines) -> events. */
function pgbrTimeline(logText, spawnMs) {
  const ev = [];
  const perLane = new Map();
  let first;
  const lines = logText.split('\n');
  for (const line of lines) {
    const m = /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d\.\d{3}) (P\d+) +(\w+): (.*)$/.exec(line);
    if (!m) continue;
    const t = new Date(`${m[1]}T${m[2]}`).getTime();
    if (t < spawnMs - 1000) continue;
    const at = (t - spawnMs) / 1000;
    const [, , , proc, , msg] = m;
    if (/^backup file /.test(msg)) {
      const l = perLane.get(proc) ?? { n: 0, first: at, last: at };
      l.n++;
      l.last = at;
      perLane.set(proc, l);
      first ??= at;
      continue;
    }
    if (/^(backup command begin|execute non-exclusive backup start|backup start archive|check archive for prior segment|execute non-exclusive backup stop|backup stop archive|check archive for segment|new backup label|backup command end|full backup size|incr backup size|last backup label|backup reference)/.test(msg)) {
      ev.push([msg.slice(0, 110), at, '']);
    }
  }
  const lanes = [...perLane].map(([p, l]) => `${p}: ${l.n} files done between +${l.first.toFixed(3)} and +${l.last.toFixed(3)} s`);
  return { ev, lanes, first };
}

function table(title, r, tl) {
  const out = [`#### ${title}: wall ${f2(r.secs)} s, CPU ${f2(r.cpuSecs)} s (user+sys)`, '', '| at (s from spawn) | event | detail |', '|---|---|---|'];
  for (const [what, at, detail] of tl.ev.sort((a, b) => a[1] - b[1])) out.push(`| ${at.toFixed(3)} | ${what} | ${detail} |`);
  out.push(`| ${f2(r.secs)} | process exited | |`, '');
  for (const l of tl.lanes) out.push(`- ${l}`);
  if (tl.idle !== undefined) out.push(`- lane idle within the copy: ${tl.idle.toFixed(3)} s (of which after a lane's last object: ${tl.tail.toFixed(3)} s)`);
  out.push('');
  return out.join('\n');
}

const median = (xs) => {
  const v = xs.filter((x) => x != null && Number.isFinite(x)).sort((a, b) => a - b);
  return v.length ? (v.length % 2 ? v[v.length >> 1] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2) : null;
};

const report = [];
try {
  const cl = new (class extends BaseCluster {})(ctx, 'tl', join(mkPgDir(join(tmpRoot, 'pg')), 'data'), await freePort());
  await initCluster({ run }, cl, { checksums: true, conf: benchConf(cl, {}), comment: 'timeline bench' });
  await cl.start();
  log(`pgbench -i -s ${SCALE}`);
  await run(join(PG_BIN, 'pgbench'), ['-i', '-q', '-s', String(SCALE)], { env: cl.env, timeoutMs: 1800_000 });
  await cl.psql('VACUUM ANALYZE; CHECKPOINT;', 600_000);
  const work = mkPgDir(join(tmpRoot, 'work'));
  const repos = BUILDS.map((b, i) => ({ root: b, key: `pgark${BUILDS.length > 1 ? String.fromCharCode(65 + i) : ''}`, repo: mkPgDir(join(tmpRoot, `repo-pgark-${i}`)) }));
  for (const p of repos) await run(NODE, [pgarkJs(p.root), 'repo', 'create', '--repo', p.repo], { asPg: true, timeoutMs: 60_000 });
  const pushes = new Map(repos.map((p) => [p.key, [NODE, pgarkJs(p.root), 'wal-push', '%p', '--repo', p.repo, '--stanza', STANZA].map(shq).join(' ')]));
  let br;
  if (PGBR) {
    const dir = mkPgDir(join(tmpRoot, 'pgbr'));
    for (const d of ['log', 'lock', 'spool', 'repo']) mkPgDir(join(dir, d));
    const conf = join(dir, 'pgbackrest.conf');
    writePgFile(conf, ['[global]', `repo1-path=${join(dir, 'repo')}`, 'repo1-retention-full=10', 'repo1-bundle=y', 'repo1-block=y', `log-path=${join(dir, 'log')}`,
      `lock-path=${join(dir, 'lock')}`, `spool-path=${join(dir, 'spool')}`, 'compress-type=lz4', `process-max=${JOBS}`, 'start-fast=y', 'archive-async=n',
      'log-level-console=warn', 'log-level-stderr=warn', 'log-level-file=detail', 'log-timestamp=y', '', `[${STANZA}]`, `pg1-path=${cl.dataDir}`, `pg1-port=${cl.port}`,
      `pg1-socket-path=${cl.sockDir}`, 'pg1-user=postgres', ''].join('\n'));
    br = { key: 'pgbackrest', conf, logFile: join(dir, 'log', `${STANZA}-backup.log`) };
    await run(PGBR, [`--config=${conf}`, `--stanza=${STANZA}`, 'stanza-create'], { asPg: true, timeoutMs: 120_000 });
    pushes.set('pgbackrest', [PGBR, `--config=${conf}`, `--stanza=${STANZA}`, 'archive-push', '%p'].map(shq).join(' '));
  }
  let first;
  const pushFirst = async (key) => {
    if (first === key) return;
    first = key;
    const cmd = SOLO ? pushes.get(key) : [pushes.get(key), ...[...pushes].filter(([k]) => k !== key).map(([, c]) => c)].join(' && ');
    await cl.psql(`ALTER SYSTEM SET archive_command = ${sq(cmd)}; SELECT pg_reload_conf();`);
    await sleep(300);
    // A write, so that the switch in one() completes a segment the new command archives (a switch
    // with no WAL since the last one archives nothing): its last archived file is then its own.
    if (SOLO) await cl.psql('CREATE TABLE IF NOT EXISTS timeline_switch (x int); INSERT INTO timeline_switch VALUES (1);');
  };
  const keys = [...repos.map((p) => p.key), ...(br ? ['pgbackrest'] : [])];
  const results = {};
  const one = async (key, type, round) => {
    await pushFirst(key);
    await switchOf(ctx, cl);
    let r;
    let tl;
    // measureCommand runs `sync` before it spawns: the spawn is `secs` before the command ended.
    const spawnOf = (res) => Date.now() - res.secs * 1000;
    if (key === 'pgbackrest') {
      r = await measureCommand({ run, log }, `${key} ${type} r${round}`, PGBR, [`--config=${br.conf}`, `--stanza=${STANZA}`, `--type=${type}`, 'backup'], { env: {}, dir: work });
      tl = pgbrTimeline(existsSync(br.logFile) ? readFileSync(br.logFile, 'utf8') : '', spawnOf(r));
    } else {
      const p = repos.find((x) => x.key === key);
      r = await measureCommand({ run, log }, `${key} ${type} r${round}`, NODE, [pgarkJs(p.root), 'backup', '--type', type, '--repo', p.repo, '--stanza', STANZA, '--pgdata', cl.dataDir,
        '--jobs', String(JOBS), '--no-progress', '--log-level', 'debug'], { env: cl.env, dir: work });
      tl = pgarkTimeline(r.stderr, spawnOf(r));
    }
    if (!r.ok) throw new Error(`${key} ${type} failed: ${r.stderr.slice(-2000)}`);
    (results[`${key} ${type}`] ??= []).push({ r, tl });
    if (round === 1) report.push(table(`${key === 'pgbackrest' ? 'pgBackRest' : key} ${type} backup (round ${round})`, r, tl));
  };
  for (let round = 1; round <= ROUNDS; round++) {
    const order = [...keys.slice((round - 1) % keys.length), ...keys.slice(0, (round - 1) % keys.length)];
    for (const k of order) await one(k, 'full', round);
    await run(join(PG_BIN, 'pgbench'), ['-T', String(INCR_SECONDS), '-c', '2', '-j', '2'], { env: cl.env, timeoutMs: (INCR_SECONDS + 300) * 1000 });
    for (const k of order) await one(k, 'incr', round);
  }
  const sum = ['| backup | rounds | wall s (median) | CPU s (median) | lane idle s (median) | tail s (median) |', '|---|---|---|---|---|---|'];
  for (const [k, xs] of Object.entries(results)) {
    sum.push(`| ${k} | ${xs.length} | ${f2(median(xs.map((x) => x.r.secs)))} | ${f2(median(xs.map((x) => x.r.cpuSecs)))} | ${f2(median(xs.map((x) => x.tl.idle)))} | ${f2(median(xs.map((x) => x.tl.tail)))} |`);
  }
  report.unshift(`### Timeline: pgbench -s ${SCALE}, --jobs ${JOBS}, ${ROUNDS} round(s), archive_command ${SOLO ? 'the timed tool\'s alone' : 'the timed tool\'s && the others\''}, load avg ${(await import('node:os')).loadavg()[0].toFixed(2)} at the end`, '', ...sum, '');
  if (BUILDS.length > 1) report.unshift(`pgark builds: ${repos.map((p) => `${p.key} = ${p.root}`).join(', ')}`, '');
} catch (e) {
  log(`FAILED: ${e.stack ?? e}`);
  process.exitCode = 1;
} finally {
  await cleanup();
}
console.log(report.join('\n'));
