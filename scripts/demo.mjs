#!/usr/bin/env node
// pgark end-to-end demo on a throwaway cluster with a local repository:
//   archive + full backup under pgbench load -> incremental backup -> restore point -> a mistake ->
//   verify -> point-in-time restore into a clone -> promote -> compare row counts -> a DR drill
//   (pgark drill: scratch restore, replay, promote, checks, RTO/RPO report stored in the repository).
// Everything lives under one temp directory that is removed at the end (--keep keeps it).
// As root, PostgreSQL and pgark run as the 'postgres' OS user (PostgreSQL refuses root).
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, appendFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const PGARK = join(ROOT, 'bin', 'pgark.js');
const keep = process.argv.includes('--keep');

function pgBin() {
  if (process.env.PG_BINDIR) return process.env.PG_BINDIR;
  const base = '/usr/lib/postgresql';
  const versions = existsSync(base) ? readdirSync(base).filter((v) => existsSync(join(base, v, 'bin', 'initdb'))).sort((a, b) => Number(b) - Number(a)) : [];
  if (!versions.length) {
    console.error('PostgreSQL server binaries not found: run `bash scripts/install-deps.sh` (apt-get install postgresql-15)');
    process.exit(1);
  }
  return join(base, versions[0], 'bin');
}
const BIN = pgBin();
const asUser = process.getuid() === 0 ? 'postgres' : null;
const uid = asUser ? Number(execFileSync('id', ['-u', asUser]).toString()) : process.getuid();
const gid = asUser ? Number(execFileSync('id', ['-g', asUser]).toString()) : process.getgid();

function run(cmd, args, opts = {}) {
  const full = asUser ? ['setpriv', ['--reuid', String(uid), '--regid', String(gid), '--init-groups', '--', cmd, ...args]] : [cmd, args];
  const r = spawnSync(full[0], full[1], { encoding: 'utf8', cwd: opts.cwd ?? '/', env: { ...process.env, ...opts.env }, timeout: opts.timeout ?? 300_000, input: opts.input });
  if (r.status !== 0 && !opts.allowFail) {
    throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal}):\n${r.stdout}${r.stderr}`);
  }
  return r;
}
const step = (s) => console.log(`\n=== ${s}`);
const freePort = () => new Promise((res) => { const s = createServer().listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => res(p)); }); });
const q = (s) => `'${s.replace(/'/g, `'\\''`)}'`;

const work = mkdtempSync(join(tmpdir(), 'pgark-demo-'));
chmodSync(work, 0o700);
if (asUser) chownSync(work, uid, gid);
const data = join(work, 'data');
const repo = join(work, 'repo');
const copy = join(work, 'restored');
const servers = [];

function pg(dir, port, sql) {
  return run(join(BIN, 'psql'), ['-X', '-A', '-t', '-q', '-h', work, '-p', String(port), '-U', 'postgres', '-d', 'postgres', '-v', 'ON_ERROR_STOP=1', '-c', sql]).stdout.trim();
}
function start(dir, port) {
  run(join(BIN, 'pg_ctl'), ['-D', dir, '-l', join(dir, 'server.log'), '-w', '-t', '300', '-o', `-p ${port} -k ${work} -c listen_addresses=''`, 'start']);
  servers.push(dir);
}
function pgark(args) {
  return run(process.execPath, [PGARK, ...args, '--repo', repo]).stdout;
}

try {
  const t0 = Date.now();
  step(`1. a throwaway PostgreSQL cluster in ${work}`);
  run(join(BIN, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '--data-checksums'], { cwd: work });
  const port = await freePort();
  process.stdout.write(pgark(['repo', 'create'])); // the repository: every other command refuses a location without it
  const archive = `${q(process.execPath)} ${q(PGARK)} wal-push %p --repo ${q(repo)}`;
  appendFileSync(join(data, 'postgresql.conf'),
    `\narchive_mode = on\narchive_command = '${archive.replace(/'/g, "''")}'\nwal_keep_size = 2GB\nmax_wal_size = 2GB\n`);
  console.log(`archive_command = '${archive}'`);
  start(data, port);

  const env = { PGHOST: work, PGPORT: String(port), PGUSER: 'postgres', PGDATABASE: 'postgres' };
  const backup = (type) => run(process.execPath, [PGARK, 'backup', '--type', type, '--repo', repo, '--pgdata', data, '--no-progress'], { env }).stdout;

  step('2. pgbench data, then a full backup (pgark backup) while pgbench writes');
  run(join(BIN, 'pgbench'), ['-h', work, '-p', String(port), '-U', 'postgres', '-i', '-s', '5', '-q', 'postgres']);
  const load = spawn(...(asUser ? ['setpriv', ['--reuid', String(uid), '--regid', String(gid), '--init-groups', '--', join(BIN, 'pgbench'), '-h', work, '-p', String(port), '-U', 'postgres', '-c', '2', '-T', '8', '-n', 'postgres']]
    : [join(BIN, 'pgbench'), ['-h', work, '-p', String(port), '-U', 'postgres', '-c', '2', '-T', '8', '-n', 'postgres']]), { stdio: 'ignore' });
  const loadDone = new Promise((res) => load.on('exit', res));
  process.stdout.write(backup('full'));
  await loadDone;

  step('3. more writes, then an incremental backup (only changed blocks are stored)');
  run(join(BIN, 'pgbench'), ['-h', work, '-p', String(port), '-U', 'postgres', '-c', '2', '-T', '5', '-n', 'postgres']);
  process.stdout.write(backup('auto'));

  step('4. more writes, a restore point, then writes we will NOT want back');
  run(join(BIN, 'pgbench'), ['-h', work, '-p', String(port), '-U', 'postgres', '-c', '2', '-T', '3', '-n', 'postgres']);
  const atPoint = pg(data, port, 'SELECT count(*) FROM pgbench_history');
  pg(data, port, "SELECT pg_create_restore_point('before_mistake')");
  pg(data, port, 'DELETE FROM pgbench_history WHERE mtime > now() - interval \'2 seconds\'');
  const afterMistake = pg(data, port, 'SELECT count(*) FROM pgbench_history');
  const last = pg(data, port, 'SELECT pg_walfile_name(pg_switch_wal())');
  const deadline = Date.now() + 180_000;
  while (pg(data, port, 'SELECT coalesce(last_archived_wal, \'\') FROM pg_stat_archiver') < last) {
    if (Date.now() > deadline) throw new Error('archiving did not catch up within 3 minutes');
    await new Promise((r) => setTimeout(r, 200));
  }
  console.log(`pgbench_history rows: ${atPoint} at the restore point, ${afterMistake} now`);

  step('5. pgark list and pgark verify');
  process.stdout.write(pgark(['list']));
  process.stdout.write(pgark(['verify']));

  step("6. point-in-time restore into a clone: pgark restore auto --target-name before_mistake --target-action promote");
  mkdirSync(copy, { mode: 0o700 });
  if (asUser) chownSync(copy, uid, gid);
  process.stdout.write(pgark(['restore', 'auto', '--pgdata', copy, '--target-name', 'before_mistake', '--target-action', 'promote', '--no-progress']));
  const port2 = await freePort();
  const r0 = Date.now();
  start(copy, port2);
  while (pg(copy, port2, 'SELECT pg_is_in_recovery()') === 't') await new Promise((r) => setTimeout(r, 200));
  const restored = pg(copy, port2, 'SELECT count(*) FROM pgbench_history');
  console.log(`the clone replayed WAL to the restore point and was promoted in ${((Date.now() - r0) / 1000).toFixed(1)} s`);
  console.log(`pgbench_history rows: source now ${afterMistake}, clone ${restored} (expected ${atPoint}, as at the restore point)`);
  if (restored !== atPoint) throw new Error('the clone does not match the restore point');

  step('7. pgark wal-log (audit trail, last 8 events)');
  process.stdout.write(pgark(['wal-log', '--since', '1h']).trim().split('\n').slice(-8).join('\n') + '\n');

  step('8. DR drill: pgark drill restores the newest backup into a scratch server, replays to the end of the archive, promotes, checks, and reports RTO/RPO');
  const checks = join(work, 'drill-checks.sql');
  writeFileSync(checks, `-- each statement must return one row with one boolean true\nSELECT count(*) = ${afterMistake} FROM pgbench_history;\nSELECT count(*) > 0 FROM pgbench_accounts;\n`);
  if (asUser) chownSync(checks, uid, gid);
  process.stdout.write(pgark(['drill', '--checks', checks, '--no-progress']));
  process.stdout.write(pgark(['drills']));
  console.log(`\ndemo OK in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
} catch (err) {
  console.error(`\ndemo FAILED: ${err.message}`);
  process.exitCode = 1;
} finally {
  for (const dir of servers.reverse()) run(join(BIN, 'pg_ctl'), ['-D', dir, '-m', 'immediate', 'stop'], { allowFail: true });
  if (keep) console.log(`kept ${work}`);
  else rmSync(work, { recursive: true, force: true });
}
