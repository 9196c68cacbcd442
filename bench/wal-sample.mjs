// Produces real PostgreSQL WAL for the codec benchmark: a throwaway cluster owned by the
// unprivileged `postgres` OS user (initdb/postgres refuse to run as root), loaded with pgbench.
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';

const PG_BIN = process.env.PG_BIN ?? '/usr/lib/postgresql/15/bin';
const SEGMENT_SIZE = 16 * 1024 * 1024;

function asPostgres(cmd, args, opts = {}) {
  const argv = process.getuid?.() === 0 ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args];
  return execFileSync(argv[0], argv[1], { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', ...opts });
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Copies the newest `count` completed WAL segments of a pgbench-loaded throwaway cluster into `destDir`. */
export async function collectWalSample(destDir, count, log = console.error) {
  const root = mkdtempSync('/tmp/pgark-bench-pg-');
  chmodSync(root, 0o755);
  const { uid, gid } = process.getuid() === 0 ? idsOf('postgres') : { uid: process.getuid(), gid: process.getgid() };
  chownSync(root, uid, gid);
  const data = join(root, 'data');
  const port = await freePort();
  const pg = (bin) => join(PG_BIN, bin);
  const conn = ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres'];
  let started = false;
  try {
    log(`initdb in ${data}, port ${port}`);
    asPostgres(pg('initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync']);
    const opts = `-c port=${port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=${root} -c max_wal_size=8GB -c min_wal_size=1GB -c fsync=off -c synchronous_commit=off`;
    asPostgres(pg('pg_ctl'), ['-D', data, '-l', join(root, 'server.log'), '-o', opts, '-w', 'start']);
    started = true;
    log('pgbench -i -s 20');
    asPostgres(pg('pgbench'), [...conn, '-i', '-s', '20', 'postgres']);
    log('pgbench -T 20 -c 4 -j 2');
    asPostgres(pg('pgbench'), [...conn, '-T', '20', '-c', '4', '-j', '2', 'postgres']);
    asPostgres(pg('psql'), [...conn, '-qAtc', 'SELECT pg_switch_wal()', 'postgres']);
    const current = asPostgres(pg('psql'), [...conn, '-qAtc', 'SELECT pg_walfile_name(pg_current_wal_lsn())', 'postgres']).trim();
    const walDir = join(data, 'pg_wal');
    const done = readdirSync(walDir)
      .filter((f) => /^[0-9A-F]{24}$/.test(f) && f < current && statSync(join(walDir, f)).size === SEGMENT_SIZE)
      .sort()
      .slice(-count);
    mkdirSync(destDir, { recursive: true });
    for (const f of done) copyFileSync(join(walDir, f), join(destDir, f));
    log(`copied ${done.length} segments (${done[0]} .. ${done.at(-1)})`);
    return done.map((f) => join(destDir, f));
  } finally {
    if (started) asPostgres(pg('pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop']);
    rmSync(root, { recursive: true, force: true });
  }
}

function idsOf(user) {
  return {
    uid: Number(execFileSync('id', ['-u', user], { encoding: 'utf8' })),
    gid: Number(execFileSync('id', ['-g', user], { encoding: 'utf8' })),
  };
}
