// A/B of pgark builds' backup CPU: one PostgreSQL 15 cluster (`--data-checksums`, pgbench -i -s
// SCALE), one repository per build, full backups and then incrementals (each after `pgbench -T`)
// alternating between the builds (A B, B A, ...); CPU (user+sys) and peak RSS from /usr/bin/time
// of each `bin/pgark backup` (the launcher, with each build's node_modules/.bin/node); medians.
// CPU and RSS do not depend on the machine's load as wall time does, so this runs on a busy box.
//
//   node_modules/.bin/node bench/backup-ab.mjs --a /tmp/main-build --b . [--scale 10] [--rounds 5]
//        [--incr-seconds 5] [--jobs 2] [--perf DIR]
//   --perf DIR: after the rounds, one more full and incremental backup per build under
//        `perf record -g` (node --perf-basic-prof), with bench/perf-where.mjs tables of each.
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { benchConf, Cluster, initCluster, switchAndWaitArchived } from './lib-pg.mjs';
import { asPgArgv, BASE_ENV, createBudget, createRun, freePort, makeTmpRoot, mkPgDir, PG_BIN, shq, TIME } from './lib-proc.mjs';
import { whereSeconds } from './perf-where.mjs';

/** perf-where.mjs's categories as a backup does them (it compresses, reads data files, writes the repository). */
const BACKUP_LABELS = new Map([
  ['decompress (lz4)', 'compress (lz4)'],
  ['read (repository files)', 'read (data directory)'],
  ['write (data directory)', 'write (repository files)'],
  ['JS: restore loop, frame parsing, promises (JIT and builtins)', 'JS: backup loop, page checksums, promises (JIT and builtins)'],
]);

const argv = process.argv.slice(2);
const arg = (name, dflt) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : dflt;
};
const builds = { A: resolve(arg('--a', '')), B: resolve(arg('--b', '.')) };
const SCALE = Number(arg('--scale', '10'));
const ROUNDS = Number(arg('--rounds', '5'));
const INCR_SECONDS = Number(arg('--incr-seconds', '5'));
const JOBS = Number(arg('--jobs', '2'));
const PERF = arg('--perf', undefined);
for (const [k, dir] of Object.entries(builds)) {
  if (!existsSync(join(dir, 'dist/src/cli/main.js'))) throw new Error(`build ${k}: ${dir} has no dist/ (npm run build there)`);
}

const { log, bounded } = createBudget(3 * 3600_000);
const run = createRun({ bounded });
const tmpRoot = makeTmpRoot('/tmp/pgark-backup-ab-');
const ctx = { tmpRoot, run, bounded, log, clusters: new Set() };
const nodeOf = (dir) => realpathSync(join(dir, 'node_modules/.bin/node'));
/** The backup directories of the bench stanza in a repository. */
const backupDirs = (repo) => (existsSync(join(repo, 'bench/backup')) ? readdirSync(join(repo, 'bench/backup')).map((d) => join(repo, 'bench/backup', d)) : []);
/** Bytes of the files under a directory. */
function treeBytes(dir) {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) n += e.isDirectory() ? treeBytes(join(dir, e.name)) : statSync(join(dir, e.name)).size;
  return n;
}
const launcher = (dir) => join(dir, 'bin/pgark');

const port = await freePort();
const cl = new Cluster(ctx, 'ab', join(tmpRoot, 'data'), port);
await initCluster(ctx, cl, { checksums: true, conf: benchConf(cl) });
await cl.start();
try {
  await run(join(PG_BIN, 'pgbench'), ['-i', '-q', '-s', String(SCALE)], { env: cl.env, timeoutMs: 1800_000 });
  await cl.psql('VACUUM ANALYZE; CHECKPOINT;', 600_000);
  const repos = {};
  const pushes = [];
  for (const [k, dir] of Object.entries(builds)) {
    repos[k] = mkPgDir(join(tmpRoot, `repo-${k}`));
    await run(nodeOf(dir), [join(dir, 'bin/pgark.js'), 'repo', 'create', '--repo', repos[k]], { asPg: true, timeoutMs: 60_000 });
    pushes.push([launcher(dir), 'wal-push', '%p', '--repo', repos[k], '--stanza', 'bench'].map(shq).join(' '));
  }
  await cl.psql(`ALTER SYSTEM SET archive_command = '${pushes.join(' && ').replace(/'/g, "''")}'; SELECT pg_reload_conf();`);
  await new Promise((r) => setTimeout(r, 500));
  await switchAndWaitArchived(ctx, cl);

  const timed = async (k, type) => {
    const out = join(tmpRoot, `time-${k}.txt`);
    const args = [launcher(builds[k]), 'backup', '--type', type, '--repo', repos[k], '--stanza', 'bench', '--pgdata', cl.dataDir, '--jobs', String(JOBS), '--no-progress'];
    spawnSync('sync');
    const before = new Set(backupDirs(repos[k]));
    await run(TIME, ['-f', '%U %S %M %e', '-o', out, ...args], { asPg: true, env: { PGARK_NODE: nodeOf(builds[k]), ...cl.env }, timeoutMs: 1800_000 });
    const [u, s, m, e] = readFileSync(out, 'utf8').trim().split('\n').at(-1).split(' ').map(Number);
    // Stored: the new backup's directory (its objects, backup_label, manifest), as bench/backup.mjs counts it.
    const fresh = backupDirs(repos[k]).filter((d) => !before.has(d));
    return { cpu: u + s, rssMiB: m / 1024, wall: e, storedMB: fresh.reduce((n, d) => n + treeBytes(d), 0) / 1e6 };
  };
  const res = { full: { A: [], B: [] }, incr: { A: [], B: [] } };
  const order = (r) => (r % 2 === 0 ? ['A', 'B'] : ['B', 'A']);
  for (let r = 0; r < ROUNDS; r++) {
    for (const k of order(r)) {
      await switchAndWaitArchived(ctx, cl);
      const x = await timed(k, 'full');
      res.full[k].push(x);
      log(`full r${r + 1} ${k}: CPU ${x.cpu.toFixed(2)} s, wall ${x.wall.toFixed(2)} s, RSS ${x.rssMiB.toFixed(1)} MiB, stored ${x.storedMB.toFixed(1)} MB`);
    }
  }
  for (let r = 0; r < ROUNDS; r++) {
    await run(join(PG_BIN, 'pgbench'), ['-T', String(INCR_SECONDS), '-c', '2', '-j', '2'], { env: cl.env, timeoutMs: (INCR_SECONDS + 300) * 1000 });
    for (const k of order(r)) {
      await switchAndWaitArchived(ctx, cl);
      const x = await timed(k, 'incr');
      res.incr[k].push(x);
      log(`incr r${r + 1} ${k}: CPU ${x.cpu.toFixed(2)} s, wall ${x.wall.toFixed(2)} s, RSS ${x.rssMiB.toFixed(1)} MiB, stored ${x.storedMB.toFixed(1)} MB`);
    }
  }
  const med = (xs) => {
    const v = [...xs].sort((a, b) => a - b);
    const m = v.length >> 1;
    return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
  };
  const rng = (xs) => `${Math.min(...xs).toFixed(2)}-${Math.max(...xs).toFixed(2)}`;
  console.log(`\npgbench -s ${SCALE}, --jobs ${JOBS}, ${ROUNDS} rounds alternating; A = ${builds.A}, B = ${builds.B}\n`);
  console.log('| backup | A CPU s median (range) | B CPU s median (range) | B/A | A wall s | B wall s | A peak RSS MiB | B peak RSS MiB | A stored MB | B stored MB |\n|---|---|---|---|---|---|---|---|---|---|');
  for (const t of ['full', 'incr']) {
    const a = res[t].A.map((x) => x.cpu);
    const b = res[t].B.map((x) => x.cpu);
    const m = (k, f) => med(res[t][k].map((x) => x[f])).toFixed(f === 'wall' ? 2 : 1);
    console.log(`| ${t} | ${med(a).toFixed(2)} (${rng(a)}) | ${med(b).toFixed(2)} (${rng(b)}) | ${(med(b) / med(a)).toFixed(3)} | ${m('A', 'wall')} | ${m('B', 'wall')} | ${m('A', 'rssMiB')} | ${m('B', 'rssMiB')} | ${m('A', 'storedMB')} | ${m('B', 'storedMB')} |`);
  }

  if (PERF) {
    mkdirSync(PERF, { recursive: true });
    chmodSync(PERF, 0o777);
    for (const t of ['full', 'incr']) {
      if (t === 'incr') await run(join(PG_BIN, 'pgbench'), ['-T', String(INCR_SECONDS), '-c', '2', '-j', '2'], { env: cl.env, timeoutMs: (INCR_SECONDS + 300) * 1000 });
      for (const k of ['A', 'B']) {
        await switchAndWaitArchived(ctx, cl);
        const data = join(PERF, `${t}-${k}.data`);
        rmSync(data, { force: true });
        // perf as root around the postgres-owned command; node --perf-basic-prof names JIT frames.
        const args = [launcher(builds[k]), 'backup', '--type', t, '--repo', repos[k], '--stanza', 'bench', '--pgdata', cl.dataDir, '--jobs', String(JOBS), '--no-progress'];
        const [file, pgArgs] = asPgArgv(args[0], args.slice(1));
        const env = { ...BASE_ENV, HOME: '/var/lib/postgresql', ...cl.env, PGARK_NODE: nodeOf(builds[k]), NODE_OPTIONS: '--perf-basic-prof' };
        const r = spawnSync('perf', ['record', '-F', '999', '-g', '-o', data, '--', file, ...pgArgs], { env, stdio: ['ignore', 'ignore', 'pipe'], timeout: 1800_000 });
        if (r.status !== 0) throw new Error(`perf record ${t} ${k}: ${r.stderr}`);
        const { seconds, by } = whereSeconds(data, 999, BACKUP_LABELS);
        console.log(`\n### ${t} backup, build ${k}: where each second goes (perf, ${seconds.toFixed(2)} s sampled)\n\n| category | CPU s | share |\n|---|---|---|`);
        for (const [c, v] of [...by].sort((x, y) => y[1] - x[1])) console.log(`| ${c} | ${v.toFixed(2)} | ${((100 * v) / seconds).toFixed(1)} % |`);
      }
    }
  }
} finally {
  await cl.stop();
  rmSync(tmpRoot, { recursive: true, force: true });
}
