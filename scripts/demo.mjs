#!/usr/bin/env node
// pgark end-to-end demo on a throwaway cluster with a local repository:
//   archive under pgbench load -> verify -> recover a copy with wal-fetch -> compare.
// Everything lives under one temp directory that is removed at the end (--keep keeps it).
// As root, PostgreSQL and pgark run as the 'postgres' OS user (PostgreSQL refuses root).
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, cpSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
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
  const archive = `${q(process.execPath)} ${q(PGARK)} wal-push %p --repo ${q(repo)}`;
  appendFileSync(join(data, 'postgresql.conf'),
    `\narchive_mode = on\narchive_command = '${archive.replace(/'/g, "''")}'\nwal_keep_size = 2GB\nmax_wal_size = 2GB\n`);
  console.log(`archive_command = '${archive}'`);
  start(data, port);

  step('2. pgbench load while pgark archives');
  run(join(BIN, 'pgbench'), ['-h', work, '-p', String(port), '-U', 'postgres', '-i', '-s', '5', '-q', 'postgres']);
  run(join(BIN, 'pg_basebackup'), ['-h', work, '-p', String(port), '-U', 'postgres', '-D', join(work, 'base'), '-X', 'none', '-c', 'fast']);
  run(join(BIN, 'pgbench'), ['-h', work, '-p', String(port), '-U', 'postgres', '-c', '4', '-j', '2', '-T', '15', '-n', 'postgres']);
  pg(data, port, 'CREATE TABLE demo_marker AS SELECT now() AS made, count(*) AS n FROM pgbench_history');
  const last = pg(data, port, 'SELECT pg_walfile_name(pg_switch_wal())');
  const deadline = Date.now() + 180_000;
  while (pg(data, port, 'SELECT coalesce(last_archived_wal, \'\') FROM pg_stat_archiver') < last) {
    if (Date.now() > deadline) throw new Error('archiving did not catch up within 3 minutes');
    await new Promise((r) => setTimeout(r, 200));
  }
  console.log(`pg_stat_archiver: ${pg(data, port, "SELECT archived_count || ' archived, ' || failed_count || ' failed' FROM pg_stat_archiver")}`);

  step('3. pgark info');
  process.stdout.write(pgark(['info']));
  step('4. pgark wal-verify --read (re-reads and checks every object)');
  process.stdout.write(pgark(['wal-verify', '--read']));

  step('5. recover the base backup with restore_command = pgark wal-fetch');
  cpSync(join(work, 'base'), copy, { recursive: true });
  if (asUser) execFileSync('chown', ['-R', `${uid}:${gid}`, copy]);
  chmodSync(copy, 0o700);
  const fetch = `${q(process.execPath)} ${q(PGARK)} wal-fetch %f %p --repo ${q(repo)}`;
  appendFileSync(join(copy, 'postgresql.conf'), `\narchive_mode = off\nrestore_command = '${fetch.replace(/'/g, "''")}'\nrecovery_target_action = promote\n`);
  writeFileSync(join(copy, 'recovery.signal'), '');
  if (asUser) chownSync(join(copy, 'recovery.signal'), uid, gid);
  const port2 = await freePort();
  const r0 = Date.now();
  start(copy, port2);
  while (pg(copy, port2, 'SELECT pg_is_in_recovery()') === 't') await new Promise((r) => setTimeout(r, 200));
  const source = pg(data, port, 'SELECT n FROM demo_marker');
  const restored = pg(copy, port2, 'SELECT n FROM demo_marker');
  console.log(`recovery reached the end of the archive in ${((Date.now() - r0) / 1000).toFixed(1)} s`);
  console.log(`pgbench_history rows at the marker: source ${source}, restored ${restored}`);
  if (source !== restored) throw new Error('restored copy differs from the source');

  step('6. pgark wal-log (audit trail, last 8 events)');
  process.stdout.write(pgark(['wal-log', '--since', '1h']).trim().split('\n').slice(-8).join('\n') + '\n');
  console.log(`\ndemo OK in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
} catch (err) {
  console.error(`\ndemo FAILED: ${err.message}`);
  process.exitCode = 1;
} finally {
  for (const dir of servers.reverse()) run(join(BIN, 'pg_ctl'), ['-D', dir, '-m', 'immediate', 'stop'], { allowFail: true });
  if (keep) console.log(`kept ${work}`);
  else rmSync(work, { recursive: true, force: true });
}
