// Shared PostgreSQL helpers of the benchmarks: throwaway clusters run as the `postgres` OS user,
// the archiver's state, `.ready` backlogs and timed drains of them.
//
// Functions take a context `ctx` = { tmpRoot, run, bounded, log, clusters } (see lib-proc.mjs:
// createBudget, createRun); `clusters` is the Set of clusters started, stopped by the cleanup.
import { spawn, spawnSync } from 'node:child_process';
import { appendFileSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { asPgArgv, BASE_ENV, describeTree, mkPgDir, PG_BIN, sleep, sq } from './lib-proc.mjs';

export const SEG = 16 * 1024 * 1024;
export const segNo = (name) => parseInt(name.slice(8, 16), 16) * 0x100 + parseInt(name.slice(16, 24), 16);
export const isSeg = (n) => /^[0-9A-F]{24}$/.test(n);

export class Cluster {
  constructor(ctx, name, dataDir, port) {
    this.ctx = ctx;
    this.name = name;
    this.dataDir = dataDir;
    this.port = port;
    this.sockDir = mkPgDir(join(ctx.tmpRoot, `sock-${name}`));
    this.logFile = join(ctx.tmpRoot, `${name}.log`);
    this.env = { PGHOST: '127.0.0.1', PGPORT: String(port), PGUSER: 'postgres', PGDATABASE: 'postgres' };
  }
  /** pg_ctl start; serverEnv is the environment of the postmaster (and so of archive_command). */
  async start(timeoutSec = 120, serverEnv = {}) {
    this.ctx.clusters.add(this);
    await this.ctx.run(join(PG_BIN, 'pg_ctl'), ['-D', this.dataDir, '-l', this.logFile, '-w', '-t', String(timeoutSec), 'start'], {
      asPg: true,
      env: serverEnv,
      timeoutMs: (timeoutSec + 20) * 1000,
    });
  }
  pid() {
    try {
      const pid = Number(readFileSync(join(this.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
      process.kill(pid, 0);
      return pid;
    } catch {
      return null;
    }
  }
  async stop(mode = 'fast') {
    if (this.pid() === null) return this.ctx.clusters.delete(this);
    // not bounded by the overall budget: stopping must work after it ran out
    spawnSync(...asPgArgv(join(PG_BIN, 'pg_ctl'), ['-D', this.dataDir, '-m', mode, '-w', '-t', '60', 'stop']), { env: BASE_ENV, timeout: 90_000, stdio: 'ignore' });
    this.ctx.clusters.delete(this);
  }
  async psql(sql, timeoutMs = 60_000) {
    const r = await this.ctx.run(join(PG_BIN, 'psql'), ['-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1', '-f', '-'], { env: this.env, input: sql, timeoutMs });
    return r.stdout.trim();
  }
  logTail(n = 3000) {
    try {
      return readFileSync(this.logFile, 'utf8').slice(-n);
    } catch {
      return '(no log)';
    }
  }
  /**
   * One persistent connection running `<sql> \watch 0.05`; resolves with {row, at} (at =
   * performance.now() when the row arrived) for the first row for which pred(row) is true.
   * startedCb(firstRow) runs when the first row arrives (the connection is up).
   */
  watch(sql, pred, timeoutMs, startedCb) {
    return new Promise((resolve, reject) => {
      let limit;
      try {
        limit = this.ctx.bounded(timeoutMs);
      } catch (e) {
        return reject(e);
      }
      const child = spawn(join(PG_BIN, 'psql'), ['-X', '-A', '-t', '-q'], { env: { ...BASE_ENV, ...this.env }, stdio: ['pipe', 'pipe', 'pipe'] });
      let buf = '';
      let err = '';
      let last = null;
      let first = true;
      let done = false;
      const finish = (fn, v) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        child.kill('SIGKILL');
        fn(v);
      };
      const timer = setTimeout(() => finish(reject, new Error(`watch timed out after ${limit} ms (last row: ${last}) ${err}`)), limit);
      child.stdout.on('data', (d) => {
        const at = performance.now();
        buf += d.toString();
        let i;
        while ((i = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, i).trim();
          buf = buf.slice(i + 1);
          if (!line) continue;
          last = line;
          if (first) {
            first = false;
            try {
              startedCb?.(line);
            } catch (e) {
              return finish(reject, e);
            }
          }
          if (pred(line)) return finish(resolve, { row: line, at });
        }
      });
      child.stderr.on('data', (d) => (err += d.toString()));
      child.on('close', (code) => finish(reject, new Error(`psql \\watch exited (${code}): ${err}`)));
      child.stdin.on('error', () => {});
      child.stdin.write(`${sql} \\watch 0.05\n`);
    });
  }
}

/** Append settings to a data directory's config file (postgresql.auto.conf by default). */
export function appendConf(dataDir, conf, comment, file = 'postgresql.auto.conf') {
  appendFileSync(join(dataDir, file), `\n# ${comment}\n` + Object.entries(conf).map(([k, v]) => `${k} = ${sq(v)}`).join('\n') + '\n');
}

/**
 * postgresql.conf of every benchmark cluster (loopback only, archiving on with /bin/true until a
 * candidate's command is set, no time-driven checkpoints or WAL switches); scripts add or
 * override settings with `extra`.
 */
export function benchConf(cl, extra = {}) {
  return {
    listen_addresses: '127.0.0.1',
    port: String(cl.port),
    unix_socket_directories: cl.sockDir,
    logging_collector: 'off',
    wal_level: 'replica',
    archive_mode: 'on',
    archive_command: '/bin/true',
    archive_timeout: '0',
    max_wal_size: '16GB',
    min_wal_size: '1GB',
    checkpoint_timeout: '1h',
    shared_buffers: '256MB',
    autovacuum: 'off',
    ...extra,
  };
}

/** initdb (as postgres, trust auth on loopback) and write `conf` into postgresql.conf. */
export async function initCluster(ctx, cl, { checksums = false, conf, comment = 'bench' }) {
  const args = ['-D', cl.dataDir, '-U', 'postgres', '--auth=trust', '--encoding=UTF8', '--locale=C', '--no-sync'];
  if (checksums) args.push('--data-checksums');
  await ctx.run(join(PG_BIN, 'initdb'), args, { asPg: true });
  appendConf(cl.dataDir, conf, comment, 'postgresql.conf');
}

export function readyFiles(dataDir) {
  return readdirSync(join(dataDir, 'pg_wal', 'archive_status'))
    .filter((f) => f.endsWith('.ready'))
    .map((f) => f.slice(0, -'.ready'.length))
    .sort();
}

export async function archiverStats(cl) {
  const [last, count, failed] = (await cl.psql("SELECT coalesce(last_archived_wal,'-'), archived_count, failed_count FROM pg_stat_archiver")).split('|');
  return { last, count: Number(count), failed: Number(failed) };
}

export async function setArchiveCommand(cl, cmd, reload = false) {
  await cl.psql(`ALTER SYSTEM SET archive_command = ${sq(cmd)};${reload ? ' SELECT pg_reload_conf();' : ''}`);
}

/**
 * pg_switch_wal() and wait until the segment it completed (or the last completed one, when there
 * was nothing to switch) and everything before it is archived: no `.ready` file up to it is left.
 * (pg_stat_archiver.last_archived_wal alone is not enough: it can name a `.backup` file of an
 * earlier segment archived after the segment itself.)
 */
export async function switchAndWaitArchived(ctx, cl, timeoutMs = 5 * 60_000) {
  const seg = await cl.psql('SELECT pg_walfile_name(pg_switch_wal() - 1);');
  const until = Date.now() + ctx.bounded(timeoutMs);
  for (;;) {
    const pending = readyFiles(cl.dataDir).filter((f) => f.slice(0, 24) <= seg);
    if (!pending.length) return seg;
    if (Date.now() > until) {
      const row = await cl.psql("SELECT coalesce(last_archived_wal,'-') || '|' || failed_count || '|' || coalesce(last_failed_wal,'-') FROM pg_stat_archiver;");
      const [archived, failed, lastFailed] = row.split('|');
      throw new Error(`WAL ${seg} not archived after ${timeoutMs} ms (still ready: ${pending.join(', ')}; last archived ${archived}, failed_count ${failed}, last failed ${lastFailed})\nprocesses:\n${describeTree(cl.pid())}\n${cl.logTail()}`);
    }
    await sleep(200);
  }
}

// Load that fills a backlog: TPC-B-like transactions mixed with small bulk inserts (1 in 5
// transactions inserts 500 rows into bench_bulk(id bigint, aid int, payload text)): a realistic
// OLTP + batch WAL mix that produces WAL about twice as fast as TPC-B alone on a small machine.
export const BACKLOG_BULK_SQL = `\\set aid random(1, 100000 * :scale)
INSERT INTO bench_bulk SELECT g, :aid + g, 'order ' || (:aid + g) || ' ref ' || md5((:aid + g)::text) || ' status shipped' FROM generate_series(1, 500) g;
`;
export const BACKLOG_TABLE_SQL = 'CREATE TABLE bench_bulk (id bigint, aid int, payload text);';
/** pgbench arguments (without -T); BULK@1 stands for the file holding BACKLOG_BULK_SQL. */
export const BACKLOG_PGBENCH_ARGS = ['-n', '-c', '4', '-j', '2', '-M', 'prepared', '-b', 'tpcb-like@4', '-f', 'BULK@1'];
export const backlogPgbenchArgs = (bulkFile) => BACKLOG_PGBENCH_ARGS.map((a) => (a === 'BULK@1' ? `${bulkFile}@1` : a));

/**
 * archive_command = '/bin/false' + reload, CHECKPOINT, pgbench (pgbenchArgs, without -T) until
 * >= segments are .ready, pg_switch_wal(). Returns {label, count, first, last, startLsn, endLsn, genSecs}.
 */
export async function makeBacklog(ctx, cl, { label, segments, pgbenchArgs, timeoutMs = 240_000 }) {
  await setArchiveCommand(cl, '/bin/false', true);
  await sleep(500); // let the archiver pick up /bin/false (it is idle: nothing is ready)
  if (readyFiles(cl.dataDir).length) throw new Error(`backlog ${label}: .ready files left over from the previous round`);
  await cl.psql('CHECKPOINT;');
  const before = await archiverStats(cl);
  const startLsn = await cl.psql('SELECT pg_current_wal_lsn();');
  const t0 = performance.now();
  const bench = spawn(join(PG_BIN, 'pgbench'), [...pgbenchArgs, '-T', '600'], { env: { ...BASE_ENV, ...cl.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let benchOut = '';
  bench.stdout.on('data', (d) => (benchOut += d));
  bench.stderr.on('data', (d) => (benchOut += d));
  const exited = new Promise((r) => bench.on('close', r));
  const until = Date.now() + ctx.bounded(timeoutMs);
  try {
    while (readyFiles(cl.dataDir).length < segments - 1) {
      if (bench.exitCode !== null) throw new Error(`pgbench exited early: ${benchOut.slice(-2000)}`);
      if (Date.now() > until) throw new Error(`backlog ${label}: fewer than ${segments} ready segments after ${timeoutMs} ms`);
      await sleep(100);
    }
  } finally {
    if (bench.exitCode === null) bench.kill('SIGINT');
    await Promise.race([exited, sleep(10_000)]);
    if (bench.exitCode === null && bench.signalCode === null) bench.kill('SIGKILL');
  }
  await cl.psql('SELECT pg_switch_wal();');
  const genSecs = (performance.now() - t0) / 1000;
  const endLsn = await cl.psql('SELECT pg_current_wal_lsn();');
  const after = await archiverStats(cl);
  const ready = readyFiles(cl.dataDir);
  if (after.count !== before.count) throw new Error(`backlog ${label}: ${after.count - before.count} segments were archived while /bin/false was set`);
  if (!ready.every(isSeg)) throw new Error(`backlog ${label}: unexpected ready files ${ready.filter((f) => !isSeg(f))}`);
  const first = ready[0];
  const last = ready.at(-1);
  if (segNo(last) - segNo(first) + 1 !== ready.length) throw new Error(`backlog ${label}: ready segments not contiguous (${first}..${last}, ${ready.length})`);
  const b = { label, count: ready.length, first, last, startLsn, endLsn, genSecs };
  ctx.log(`backlog ${label}: ${b.count} ready segments ${first}..${last} in ${genSecs.toFixed(1)} s`);
  return b;
}

/**
 * Set the candidate's archive_command, SIGHUP the postmaster and time until
 * pg_stat_archiver.last_archived_wal reaches backlog.last (one connection polling every 50 ms).
 * onStart() runs when the clock starts. Returns {secs, archived, failedDelta}.
 */
export async function drain(cl, cmd, backlog, { timeoutMs = 240_000, onStart } = {}) {
  await setArchiveCommand(cl, cmd);
  const before = await archiverStats(cl);
  let t0 = 0;
  const pid = cl.pid();
  const { at, row } = await cl.watch(
    "SELECT coalesce(last_archived_wal,'-') || '|' || archived_count || '|' || failed_count FROM pg_stat_archiver",
    (line) => {
      const [last] = line.split('|');
      return t0 > 0 && isSeg(last.slice(0, 24)) && last.slice(0, 24) >= backlog.last;
    },
    timeoutMs,
    () => {
      // first row seen: the connection is up, start the clock and reload
      onStart?.();
      t0 = performance.now();
      process.kill(pid, 'SIGHUP');
    },
  );
  const secs = (at - t0) / 1000;
  const [, count, failed] = row.split('|');
  return { secs, archived: Number(count) - before.count, failedDelta: Number(failed) - before.failed };
}

/** The random dataset's rows: base64 of this many random bytes each (~7 rows per 8 KiB heap page). */
export const RANDOM_BYTES_PER_ROW = 750;
const RANDOM_HEAP_BYTES_PER_ROW = 8192 / 7;
const RANDOM_BATCH = 50_000;

/**
 * Load one of the benches' datasets into `cl` (bench/restore.mjs, backup.mjs, profile.mjs):
 * 'pgbench' (`pgbench -i -q -s scale`) or 'random' (~randomGb GB of base64 random rows in
 * random_data, primary key on id), then VACUUM ANALYZE and CHECKPOINT. `run` is the bench's
 * command runner (createRun). Returns the largest table, what loaded it, the seconds it took, the
 * database's and the table's size and the table's row count.
 */
export async function loadDataset(run, cl, name, { scale, randomGb, timeoutMs }) {
  const t0 = performance.now();
  let table;
  let loadCmd;
  if (name === 'pgbench') {
    loadCmd = `pgbench -i -q -s ${scale}`;
    await run(join(PG_BIN, 'pgbench'), ['-i', '-q', '-s', String(scale)], { env: cl.env, timeoutMs });
    table = 'pgbench_accounts';
  } else {
    const rows = Math.max(1000, Math.round((randomGb * 1e9) / RANDOM_HEAP_BYTES_PER_ROW));
    const stmts = ['CREATE EXTENSION IF NOT EXISTS pgcrypto;', 'CREATE TABLE random_data (id bigint NOT NULL, payload text NOT NULL);'];
    for (let a = 1; a <= rows; a += RANDOM_BATCH) {
      const b = Math.min(rows, a + RANDOM_BATCH - 1);
      stmts.push(`INSERT INTO random_data SELECT g, encode(gen_random_bytes(${RANDOM_BYTES_PER_ROW}), 'base64') FROM generate_series(${a}, ${b}) g;`);
    }
    stmts.push('ALTER TABLE random_data ADD PRIMARY KEY (id);');
    loadCmd = `CREATE EXTENSION pgcrypto; ${rows} rows of (id bigint, encode(gen_random_bytes(${RANDOM_BYTES_PER_ROW}), 'base64')) in batches of ${RANDOM_BATCH}; primary key on id`;
    await cl.psql(stmts.join('\n'), timeoutMs);
    table = 'random_data';
  }
  await cl.psql('VACUUM ANALYZE;', timeoutMs);
  await cl.psql('CHECKPOINT;', timeoutMs);
  const loadSecs = (performance.now() - t0) / 1000;
  const [dbBytes, tableBytes, count] = (await cl.psql(`SELECT pg_database_size(current_database()), pg_total_relation_size(${sq(table)}), (SELECT count(*) FROM ${table});`, timeoutMs)).split('|').map(Number);
  return { table, loadCmd, loadSecs, dbBytes, tableBytes, count };
}
