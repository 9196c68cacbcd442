// End-to-end cost of encryption (issue 18 item 4): full backup, restore and archive drain with
// encryption off and on, pgark next to pgBackRest (Debian's 2.45 and 2.59.1 with repo1-bundle=y
// repo1-block=y) with repo1-cipher-type=aes-256-cbc, on one PostgreSQL 15 cluster in one run;
// then `pgark copy` throughput between two stores (fs -> fs, fs -> s3rver with TLS), plain and
// encrypted.
//
//   node_modules/.bin/node bench/encryption-e2e.mjs [--scale 30] [--segments 12] [--rounds 3] [--jobs 2]
//        [--copy-rounds 2] [--pgbackrest BIN[,BIN...]] [--copy-stores fs,s3] [--phases backup,restore,copy,drain]
//        [--smoke] [--no-check-restore] [--keep] [--budget-sec 1800] [--out FILE | --no-write]
//   smoke: node_modules/.bin/node bench/encryption-e2e.mjs --smoke --out /tmp/enc-e2e-smoke.md
//
// Writes the end-to-end section of bench/results/encryption.md (below its own marker, after the
// object-layer section of bench/encryption.mjs, which is kept).
//
// Candidates: pgark, and each pgBackRest binary, each with encryption off and on (six with the
// default binaries), each with its own repository on the local filesystem:
//   - pgark on: `pgark key init --cipher-key-file KEK` (a raw 256-bit key, 64 hex digits, in a 0600
//     file owned by postgres); every pgark command then gets `--cipher-key-file KEK` (a path).
//   - pgBackRest on: `repo1-cipher-type=aes-256-cbc` and `repo1-cipher-pass=<random>` in its
//     configuration file (0600), never in argv.
// Everything else as bench/restore.mjs: lz4, --jobs / process-max = --jobs, start-fast.
//
// Method (one cluster, `initdb --data-checksums`, pgbench -i -s SCALE):
//  1. Full backups: --rounds rounds, the order of the candidates rotated every round. Before a
//     candidate's backup archive_command becomes that candidate's own push (a backup waits for its
//     WAL; its archive_command CPU is the archiver's and is not counted) and everything ready is
//     archived; `sync`; then the backup runs as postgres under GNU time.
//  2. Restores (cluster stopped) of each candidate's latest backup into an empty directory,
//     rounds rotated; the pgark restores of round 1 (off and on) are started and checked
//     (restore_command = pgark wal-fetch as restore wrote it, with the key file for "on"; the
//     copy must leave recovery with the source's row count).
//  3. Copies (cluster stopped): `pgark copy --all --to repo2` from the pgark repository (off: plain
//     -> a new plain repository; on: encrypted -> a new repository given `key init` with the same
//     KEK, i.e. its own data keys; shared: encrypted -> a new repository given
//     `key init --in repo2 --share-from repo`, the source's data keys, when this pgark has that
//     option) into fs and into s3rver (TLS on loopback), rounds rotated, a fresh target each time.
//     Whether copy moved the objects as stored or decrypted and encrypted them again is read from
//     its --json output (objects.asStored / objects.reEncoded) and printed with the figures.
//  4. Archive drains (cluster started again): per candidate and round a fresh backlog of
//     >= --segments `.ready` segments (archive_command=/bin/false, the pgbench mix of lib-pg.mjs),
//     then archive_command = the candidate, each call wrapped in GNU time, timed from the SIGHUP
//     until pg_stat_archiver shows the last segment. pgark `wal-push --push-ahead 0` and pgBackRest
//     `archive-push` synchronous: one process per segment, no detached workers, so the CPU of
//     the drain is the sum of the calls' user+sys (children included).
// Medians of the rounds; CPU = user + sys of the command and the children it waited for (the
// main figure on a shared machine), wall = elapsed. Encryption cost = on / off for each tool;
// pgark's on/off divided by pgBackRest's is the figure of the issue ("encryption should cost
// pgark less than it costs pgBackRest").
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { closeSync, openSync } from 'node:fs';
import { connect } from 'node:net';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import {
  appendConf,
  BACKLOG_BULK_SQL,
  BACKLOG_TABLE_SQL,
  backlogPgbenchArgs,
  benchConf,
  Cluster as BaseCluster,
  drain as drainBacklog,
  initCluster,
  makeBacklog,
  setArchiveCommand,
  switchAndWaitArchived,
} from './lib-pg.mjs';
import {
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
  makeCertificate,
  makeTmpRoot,
  measureCommand,
  mkPgDir,
  NODE,
  parseBenchArgs,
  PG_BIN,
  PGARK,
  pgarkRepoCreate,
  pgbackrestBinaries,
  pkgVersion,
  requireRootAndFiles,
  ROOT,
  rssStats,
  rssWrap,
  sh,
  shq,
  sleep,
  sq,
  TIME,
  treeBytes,
  waitToolIdle,
  writePgbackrestConf,
  writePgFile,
} from './lib-proc.mjs';

export const E2E_MARKER = '<!-- GENERATED-E2E: everything below is rewritten by bench/encryption-e2e.mjs -->';
const STANZA = 'bench';
const BUCKET = 'pgark-bench';
const S3RVER_JS = join(ROOT, 'node_modules/s3rver/bin/s3rver.js');
// s3rver's built-in account: a well-known value, still kept out of argv and the report.
const S3_KEY = 'S3RVER';
const S3_REGION = 'us-east-1';

const args = parseBenchArgs(
  ['--smoke', '--keep', '--no-check-restore', '--no-write'],
  ['--scale', '--segments', '--rounds', '--copy-rounds', '--jobs', '--pgbackrest', '--copy-stores', '--phases', '--budget-sec', '--out'],
);
const SMOKE = args.has('--smoke');
const SCALE = Number(args.value('--scale', SMOKE ? '1' : '30'));
const SEGMENTS = Number(args.value('--segments', SMOKE ? '4' : '12'));
const ROUNDS = Number(args.value('--rounds', SMOKE ? '1' : '3'));
const COPY_ROUNDS = Number(args.value('--copy-rounds', SMOKE ? '1' : '2'));
const JOBS = Number(args.value('--jobs', '2'));
const COPY_STORES = args.value('--copy-stores', 'fs,s3').split(',').map((s) => s.trim()).filter(Boolean);
const PHASES = new Set(args.value('--phases', 'backup,restore,copy,drain').split(',').map((s) => s.trim()).filter(Boolean));
const KEEP = args.has('--keep');
const CHECK_RESTORE = !args.has('--no-check-restore');
const WRITE = !args.has('--no-write');
const RESULTS = args.value('--out', join(ROOT, 'bench/results/encryption.md'));
const TOTAL_BUDGET_MS = Number(args.value('--budget-sec', SMOKE ? '900' : '1800')) * 1000;
const COMMAND_TIMEOUT_MS = 20 * 60_000;
for (const [k, v] of Object.entries({ SCALE, SEGMENTS, ROUNDS, COPY_ROUNDS, JOBS, TOTAL_BUDGET_MS })) {
  if (!Number.isFinite(v) || v <= 0) {
    console.error(`invalid ${k}: ${v}`);
    process.exit(2);
  }
}
for (const s of COPY_STORES) {
  if (!['fs', 's3'].includes(s)) {
    console.error(`--copy-stores: unknown store ${s} (fs, s3)`);
    process.exit(2);
  }
}
for (const p of PHASES) {
  if (!['backup', 'restore', 'copy', 'drain'].includes(p)) {
    console.error(`--phases: unknown phase ${p} (backup, restore, copy, drain)`);
    process.exit(2);
  }
}
if ((PHASES.has('restore') || PHASES.has('copy')) && !PHASES.has('backup')) {
  console.error('--phases: restore and copy need backup');
  process.exit(2);
}
const BINARIES = pgbackrestBinaries(args.value('--pgbackrest', undefined));
requireRootAndFiles('bench/encryption-e2e.mjs', [
  join(PG_BIN, 'initdb'), join(PG_BIN, 'pgbench'), TIME, join(ROOT, 'dist/src/cli/main.js'), ...BINARIES,
  ...(PHASES.has('copy') && COPY_STORES.includes('s3') ? [S3RVER_JS, '/usr/bin/openssl'] : []),
]);

const budget = createBudget(TOTAL_BUDGET_MS);
const { started, log, bounded } = budget;
const startLoad = loadavg();
const run = createRun(budget);
const tmpRoot = makeTmpRoot('/tmp/pgark-encbench-');
const clusters = new Set();
const ctx = { tmpRoot, run, bounded, log, clusters };
class Cluster extends BaseCluster {
  constructor(name, dataDir, port) {
    super(ctx, name, dataDir, port);
  }
}
const work = mkPgDir(join(tmpRoot, 'work'));
const measure = (label, cmd, argv, env = {}, shownEnv) => measureCommand({ run, log }, label, cmd, argv, { env, shownEnv, timeoutMs: COMMAND_TIMEOUT_MS, dir: work });

const median = (xs) => {
  const v = xs.filter((x) => x != null && Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return null;
  return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
};
const ratio = (a, b) => (a == null || b == null || !(b > 0) ? null : a / b);

// ---------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------

/** pgark's key-encryption key: a raw 256-bit key (64 hex digits) in a 0600 file owned by postgres. */
const KEK_FILE = join(mkPgDir(join(tmpRoot, 'keys')), 'kek');
writePgFile(KEK_FILE, `${randomBytes(32).toString('hex')}\n`);
/** pgBackRest's repo1-cipher-pass (only in its 0600 configuration files). */
const PGBR_CIPHER_PASS = randomBytes(48).toString('base64');
const pgarkKeyFlags = (on) => (on ? ['--cipher-key-file', KEK_FILE] : []);

// ---------------------------------------------------------------------------
// Candidates
// ---------------------------------------------------------------------------

const peers = BINARIES.map((bin) => {
  const version = /pgBackRest ([\d.]+)/.exec(sh(bin, ['version']))?.[1] ?? '?';
  const [maj, min] = version.split('.').map(Number);
  const bundle = maj > 2 || (maj === 2 && min >= 46);
  return { bin, version, bundle, name: `pgBackRest ${version}${bundle ? ' (bundle+block)' : ''}`, key: `pgbackrest-${version}` };
});
const tools = [{ key: 'pgark', name: 'pgark' }, ...peers.map((p) => ({ key: p.key, name: p.name, peer: p }))];
/** One candidate per tool and encryption setting. */
const candidates = tools.flatMap((t) => [false, true].map((on) => ({ tool: t, on, key: `${t.key}-${on ? 'on' : 'off'}`, label: `${t.name}, encryption ${on ? 'on' : 'off'}`, runs: { backup: [], restore: [], drain: [] } })));

/** Set up each candidate's repository for cluster `cl`: push / backup / restore commands. */
async function setUpCandidates(cl) {
  for (const c of candidates) {
    const dir = mkPgDir(join(tmpRoot, `repo-${c.key}`));
    if (c.tool.key === 'pgark') {
      c.repo = await pgarkRepoCreate(run, dir);
      if (c.on) await run(NODE, [PGARK, 'key', 'init', '--repo', c.repo, '--stanza', STANZA, ...pgarkKeyFlags(true)], { asPg: true, timeoutMs: 60_000 });
      const base = ['--repo', c.repo, '--stanza', STANZA, ...pgarkKeyFlags(c.on)];
      c.pushWords = [NODE, PGARK, 'wal-push', '%p', ...base, '--push-ahead', '0'];
      c.backup = () => [NODE, [PGARK, 'backup', '--type', 'full', ...base, '--pgdata', cl.dataDir, '--jobs', String(JOBS)], cl.env];
      c.restore = (target) => [NODE, [PGARK, 'restore', 'latest', ...base, '--pgdata', target, '--jobs', String(JOBS)]];
    } else {
      const p = c.tool.peer;
      const conf = writePgbackrestConf(join(tmpRoot, `conf-${c.key}`), {
        repo: dir, pgPath: cl.dataDir, port: cl.port, sockDir: cl.sockDir, stanza: STANZA, jobs: JOBS, bundle: p.bundle,
        extra: c.on ? ['repo1-cipher-type=aes-256-cbc', `repo1-cipher-pass=${PGBR_CIPHER_PASS}`] : [],
      }).conf;
      c.repo = dir;
      const base = [`--config=${conf}`, `--stanza=${STANZA}`];
      await run(p.bin, [...base, 'stanza-create'], { asPg: true, timeoutMs: 120_000 });
      c.pushWords = [p.bin, ...base, 'archive-push', '%p'];
      c.backup = () => [p.bin, [...base, '--type=full', 'backup'], {}];
      c.restore = (target) => [p.bin, [...base, `--pg1-path=${target}`, 'restore']];
    }
    c.push = c.pushWords.map(shq).join(' ');
  }
}

/** Round r's order: the candidates rotated by r. */
const rotated = (list, r) => list.map((_, i) => list[(i + r) % list.length]);

// ---------------------------------------------------------------------------
// s3rver (TLS on loopback), as bench/remote-stores.mjs starts it
// ---------------------------------------------------------------------------

let s3 = null;
function tcpReady(port) {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port }, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}
async function startS3() {
  const tls = makeCertificate(join(tmpRoot, 'tls'));
  const dir = join(tmpRoot, 's3rver');
  mkdirSync(join(dir, 'data'), { recursive: true, mode: 0o700 });
  const port = await freePort();
  const logFile = join(dir, 'access.log');
  const argv = ['--openssl-legacy-provider', S3RVER_JS, '-d', join(dir, 'data'), '-a', '127.0.0.1', '-p', String(port), '--key', tls.key, '--cert', tls.cert, '--no-vhost-buckets', '--configure-bucket', BUCKET];
  const fd = openSync(logFile, 'a', 0o600);
  const child = spawn(NODE, argv, { cwd: ROOT, env: { ...BASE_ENV, HOME: '/root' }, stdio: ['ignore', fd, fd], detached: true });
  closeSync(fd);
  let exited = null;
  child.on('exit', (code, signal) => (exited = `${code ?? signal}`));
  s3 = { child, port, endpoint: `https://127.0.0.1:${port}` };
  const until = Date.now() + bounded(60_000);
  while (!(await tcpReady(port))) {
    if (exited !== null) throw new Error(`s3rver exited (${exited}) at start:\n${readFileSync(logFile, 'utf8').slice(-2000)}`);
    if (Date.now() > until) throw new Error(`s3rver did not listen on 127.0.0.1:${port} within 60 s`);
    await sleep(200);
  }
  s3.env = { PGARK_S3_ENDPOINT: s3.endpoint, PGARK_S3_PATH_STYLE: 'true', AWS_ACCESS_KEY_ID: S3_KEY, AWS_SECRET_ACCESS_KEY: S3_KEY, AWS_REGION: S3_REGION, NODE_EXTRA_CA_CERTS: tls.cert };
  s3.shownEnv = { ...s3.env, AWS_ACCESS_KEY_ID: '***', AWS_SECRET_ACCESS_KEY: '***', NODE_EXTRA_CA_CERTS: '$TMP/tls/cert.pem' };
  s3.command = `node ${argv.map((a) => shq(a.replace(tmpRoot, '$TMP').replace(ROOT + '/', ''))).join(' ')}`;
  log(`s3rver on ${s3.endpoint}`);
}
async function stopS3() {
  if (!s3 || s3.child.exitCode !== null || s3.child.signalCode !== null) return;
  const gone = new Promise((r) => s3.child.once('exit', r));
  try {
    process.kill(-s3.child.pid, 'SIGTERM');
  } catch {
    /* gone */
  }
  if (!(await Promise.race([gone.then(() => true), sleep(5000).then(() => false)]))) {
    try {
      process.kill(-s3.child.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
}

// ---------------------------------------------------------------------------
// Phases
// ---------------------------------------------------------------------------

const R = { notes: [], copies: [], checks: [], backlogs: [], phaseSecs: {} };
/** Run a phase and record how long it took (for the report: where the run's time goes). */
async function phase(name, fn) {
  const t0 = performance.now();
  try {
    return await fn();
  } finally {
    R.phaseSecs[name] = (performance.now() - t0) / 1000;
  }
}

async function loadDataset(cl) {
  const t0 = performance.now();
  await run(join(PG_BIN, 'pgbench'), ['-i', '-q', '-s', String(SCALE)], { env: cl.env, timeoutMs: COMMAND_TIMEOUT_MS });
  await cl.psql(`${BACKLOG_TABLE_SQL} VACUUM ANALYZE;`, COMMAND_TIMEOUT_MS);
  await cl.psql('CHECKPOINT;', COMMAND_TIMEOUT_MS);
  const [dbBytes, count] = (await cl.psql('SELECT pg_database_size(current_database()), (SELECT count(*) FROM pgbench_accounts);', COMMAND_TIMEOUT_MS)).split('|').map(Number);
  return { table: 'pgbench_accounts', dbBytes, count, loadSecs: (performance.now() - t0) / 1000 };
}

async function useArchiveCommand(cl, cmd) {
  await setArchiveCommand(cl, cmd, true);
  await sleep(300);
  await switchAndWaitArchived(ctx, cl, 5 * 60_000);
}

async function backups(cl) {
  // The load's WAL goes nowhere: each repository gets only what its own backups need (and the
  // segment switched after each), so the copy phase's pgark sources hold comparable WAL.
  await useArchiveCommand(cl, '/bin/true');
  for (let round = 0; round < ROUNDS; round++) {
    for (const c of rotated(candidates, round)) {
      await useArchiveCommand(cl, c.push);
      const [cmd, argv, env] = c.backup();
      const r = await measure(`${c.key} full backup (round ${round + 1})`, cmd, argv, env);
      c.runs.backup.push(r);
      if (!r.ok) R.notes.push(`${c.label}: full backup round ${round + 1} failed: ${r.stderr.slice(-300).replaceAll(tmpRoot, '$TMP')}`);
      await switchAndWaitArchived(ctx, cl, 5 * 60_000);
    }
  }
  await useArchiveCommand(cl, '/bin/true');
}

async function restores() {
  for (let round = 0; round < ROUNDS; round++) {
    for (const c of rotated(candidates, round)) {
      if (!c.runs.backup.some((b) => b.ok)) continue;
      const target = mkPgDir(join(tmpRoot, `restore-${c.key}`));
      const [cmd, argv] = c.restore(target);
      const r = await measure(`${c.key} restore (round ${round + 1})`, cmd, argv);
      c.runs.restore.push(r);
      if (r.ok && R.restoredBytes === undefined) R.restoredBytes = treeBytes(target).bytes;
      if (!r.ok) R.notes.push(`${c.label}: restore round ${round + 1} failed: ${r.stderr.slice(-300).replaceAll(tmpRoot, '$TMP')}`);
      if (r.ok && round === 0 && c.tool.key === 'pgark' && CHECK_RESTORE) R.checks.push({ label: c.label, ...(await checkRestore(c, target)) });
      rmSync(target, { recursive: true, force: true });
    }
  }
}

/** Start the pgark-restored copy (restore_command as restore wrote it): it must leave recovery with the same row count. */
async function checkRestore(c, target) {
  const cl = new Cluster(`check-${c.key}`, target, await freePort());
  try {
    const auto = readFileSync(join(target, 'postgresql.auto.conf'), 'utf8');
    const rc = /restore_command = '(.*)'/.exec(auto)?.[1] ?? '';
    if (c.on && !rc.includes('--cipher-key-file')) throw new Error(`restore_command does not name the key file: ${rc}`);
    appendConf(target, { port: String(cl.port), listen_addresses: '127.0.0.1', unix_socket_directories: cl.sockDir, archive_mode: 'off', recovery_target_action: 'promote' }, 'encryption bench: check');
    await cl.start(600);
    const until = Date.now() + bounded(600_000);
    while ((await cl.psql('SELECT pg_is_in_recovery();')) !== 'f') {
      if (Date.now() > until) throw new Error('still in recovery');
      await sleep(200);
    }
    const count = Number(await cl.psql(`SELECT count(*) FROM ${R.dataset.table};`, COMMAND_TIMEOUT_MS));
    const ok = count === R.dataset.count;
    log(`${c.key} restore check: ${ok ? 'ok' : 'WRONG ROW COUNT'} (${count})`);
    return { ok, summary: `${ok ? 'ok' : 'WRONG ROW COUNT'}: started (restore_command = pgark wal-fetch${c.on ? ' --cipher-key-file …' : ''}, as restore wrote it), left recovery, count(*) FROM ${R.dataset.table} = ${count} (source ${R.dataset.count})` };
  } catch (e) {
    return { ok: false, summary: `FAILED: ${String(e.message ?? e).split('\n')[0].replaceAll(tmpRoot, '$TMP')}` };
  } finally {
    await cl.stop('immediate');
  }
}

/**
 * Whether this pgark can give a new keyring the data keys of another repository of the stanza
 * (`pgark key init --in repo2 --share-from repo`): then copy moves encrypted objects as stored.
 */
const SHARE_KEYS = /--share-from\b/.test(sh(NODE, [PGARK, 'key', 'init', '--help']));
/** Copy variants: encryption off; on with the target's own keyring; on with shared data keys (when SHARE_KEYS). */
const COPY_ENCS = ['off', 'on', ...(SHARE_KEYS ? ['shared'] : [])];
const COPY_ENC_TEXT = { off: 'off', on: 'on, own data keys', shared: 'on, shared data keys' };

/** pgark copy --all from the pgark repository (off or on) to a fresh repository on `store`. */
async function copies() {
  const sources = Object.fromEntries(candidates.filter((c) => c.tool.key === 'pgark' && c.runs.backup.some((b) => b.ok)).map((c) => [c.on ? 'on' : 'off', c]));
  const srcOf = (enc) => sources[enc === 'off' ? 'off' : 'on'];
  const variants = COPY_STORES.flatMap((store) => COPY_ENCS.filter((k) => srcOf(k)).map((enc) => ({ store, enc, key: `${store}-${enc}`, runs: [] })));
  if (!variants.length) return;
  if (COPY_STORES.includes('s3')) await startS3();
  for (const v of variants) {
    const src = srcOf(v.enc);
    // Stored bytes of what copy --all reads from the source stanza (WAL, backups, catalog, stanza
    // metadata; not the audit trail, the keyring or locks), and its object count.
    const t = treeBytes(join(src.repo, STANZA), (rel) => !['wal', 'backup', 'catalog', 'stanza.json'].includes(rel.split('/')[0]));
    v.sourceBytes = t.bytes;
    v.sourceFiles = t.files;
    R.copies.push(v);
  }
  let n = 0;
  for (let round = 0; round < COPY_ROUNDS; round++) {
    for (const v of rotated(variants, round)) {
      const src = srcOf(v.enc);
      const on = v.enc !== 'off';
      n++;
      const env = v.store === 's3' ? s3.env : {};
      const target = v.store === 's3' ? `s3://${BUCKET}/copy-${n}` : mkPgDir(join(tmpRoot, `copy-${n}`));
      await pgarkRepoCreate(run, target, env);
      // The target's encryption: `key init` with the same KEK, either its own data keys ("on") or
      // the source's data keys wrapped under the target's KEK ("shared": --share-from).
      if (v.enc === 'on') await run(NODE, [PGARK, 'key', 'init', '--repo', target, '--stanza', STANZA, ...pgarkKeyFlags(true)], { asPg: true, env, timeoutMs: 60_000 });
      if (v.enc === 'shared') {
        await run(NODE, [PGARK, 'key', 'init', '--in', 'repo2', '--share-from', 'repo', '--repo', src.repo, '--repo2', target, '--stanza', STANZA, '--cipher-key-file', KEK_FILE, '--repo2-cipher-key-file', KEK_FILE], { asPg: true, env, timeoutMs: 60_000 });
      }
      const argv = [PGARK, 'copy', '--all', '--to', 'repo2', '--repo', src.repo, '--repo2', target, '--stanza', STANZA, '--json', ...(on ? ['--cipher-key-file', KEK_FILE, '--repo2-cipher-key-file', KEK_FILE] : [])];
      const r = await measure(`copy ${v.key} (round ${round + 1})`, NODE, argv, env, v.store === 's3' ? s3.shownEnv : {});
      if (r.ok) {
        try {
          const j = JSON.parse(r.stdout);
          r.copy = j.objects;
          if (j.objects.existing !== 0) R.notes.push(`copy ${v.key} round ${round + 1}: ${j.objects.existing} objects already in the fresh target`);
        } catch (e) {
          r.ok = false;
          R.notes.push(`copy ${v.key}: unreadable --json output: ${r.stdout.slice(0, 200)}`);
        }
      } else R.notes.push(`copy ${v.key} round ${round + 1} failed: ${r.stderr.slice(-300).replaceAll(tmpRoot, '$TMP')}`);
      v.runs.push(r);
      if (v.store === 'fs') rmSync(target, { recursive: true, force: true });
    }
  }
  await stopS3();
}

async function drains(cl) {
  const bulk = join(tmpRoot, 'bulk.sql');
  writeFileSync(bulk, BACKLOG_BULK_SQL, { mode: 0o644 });
  for (let round = 0; round < ROUNDS; round++) {
    for (const c of rotated(candidates, round)) {
      const label = `${c.key} drain (round ${round + 1})`;
      const backlog = await makeBacklog(ctx, cl, { label, segments: SEGMENTS, pgbenchArgs: backlogPgbenchArgs(bulk), timeoutMs: bounded(600_000) });
      R.backlogs.push(backlog.count);
      const timeFile = join(work, `drain-${c.key}-${round}.time`);
      writePgFile(timeFile, '');
      const load = loadavg()[0];
      const d = await drainBacklog(cl, rssWrap(timeFile, c.pushWords), backlog, { timeoutMs: 10 * 60_000 });
      await waitToolIdle(c.tool.key === 'pgark' ? 'pgark' : 'pgbackrest', tmpRoot, 30_000);
      const s = rssStats(timeFile);
      // A failing call leaves "Command exited with non-zero status N" (or "terminated by signal")
      // next to its record. (pg_stat_archiver's failed_count also counts /bin/false's retries
      // between the backlog and the SIGHUP, so it cannot tell.)
      const failed = readFileSync(timeFile, 'utf8').split('\n').filter((l) => /^Command (exited with non-zero status|terminated by signal)/.test(l)).length;
      const ok = failed === 0 && s.calls >= backlog.count;
      const r = { ok, secs: d.secs, cpuSecs: s.cpu, rssKiB: s.max, calls: s.calls, segments: backlog.count, failed, load };
      log(`${label}: ${backlog.count} segments in ${d.secs.toFixed(2)} s, CPU ${s.cpu.toFixed(2)} s over ${s.calls} calls, ${failed} failed calls`);
      if (!ok) R.notes.push(`${c.label}: drain round ${round + 1}: ${failed} failed archive_command calls, ${s.calls} calls for ${backlog.count} segments (not counted)`);
      c.runs.drain.push(r);
    }
  }
  await setArchiveCommand(cl, '/bin/true', true);
}

// ---------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------

function report(failure) {
  const out = [E2E_MARKER, '', '## End to end: backup, restore, archive drain, copy', ''];
  if (SMOKE) out.push('**Smoke run** (`--smoke`: tiny sizes, one round): proves the script works; the figures mean little.', '');
  const endLoad = loadavg();
  if (Math.max(startLoad[0], endLoad[0]) > cpus().length / 2) {
    out.push(`**Loaded machine**: load average ${f2(startLoad[0])} at the start and ${f2(endLoad[0])} at the end on ${cpus().length} CPUs (other jobs running): wall times are noise; CPU times are closer to right but inflated too (cache and frequency sharing). Rerun on a quiet machine for figures to quote.`, '');
  }
  out.push(environmentLines({ started, startLoad, command: `node_modules/.bin/node bench/encryption-e2e.mjs ${args.argv.join(' ')}` }));
  out.push(`- pgBackRest binaries: ${peers.map((p) => `\`${p.bin}\` = ${p.version}${p.bundle ? ' (repo1-bundle=y, repo1-block=y)' : ''}`).join('; ')}`);
  out.push(`- dataset: pgbench -i -s ${SCALE}${R.dataset ? `, database ${fmtMB(R.dataset.dbBytes)} MB, restored data directory ${fmtMB(R.restoredBytes)} MB` : ''}; \`initdb --data-checksums\``);
  out.push(`- ${ROUNDS} round(s) of backups, restores and drains, ${COPY_ROUNDS} of copies, order rotated each round; medians; --jobs ${JOBS} / process-max=${JOBS}; lz4; warm page cache`);
  out.push(`- time per phase, s: ${Object.entries(R.phaseSecs).map(([k, v]) => `${k} ${v.toFixed(0)}`).join(', ') || 'n/a'}`);
  out.push('- encryption on: pgark `key init` + `--cipher-key-file` (raw 256-bit KEK, AES-256-GCM); pgBackRest `repo1-cipher-type=aes-256-cbc`, `repo1-cipher-pass` in its 0600 config file');
  out.push(`- drains: backlogs of ${SEGMENTS}+ segments (${R.backlogs.length ? `${Math.min(...R.backlogs)}-${Math.max(...R.backlogs)}` : 'none'}), pgark \`wal-push --push-ahead 0\`, pgBackRest \`archive-push\` synchronous; CPU = Σ user+sys of the archive_command calls`);
  out.push('');
  if (failure) out.push(`**Run failed:** \`${String(failure.message ?? failure).split('\n')[0].replaceAll(tmpRoot, '$TMP')}\``, '');

  const med = (c, op, k) => median(c.runs[op].map((r) => (r.ok ? r[k] : null)));
  const ops = [['backup', 'full backup'], ['restore', 'restore'], ['drain', `archive drain (${SEGMENTS}+ segments)`]].filter(([op]) => candidates.some((c) => c.runs[op].length));
  if (ops.length) {
    out.push('### Cost of encryption per tool (on ÷ off, medians)', '');
    out.push('| operation | tool | CPU s off | CPU s on | CPU on÷off | wall s off | wall s on | wall on÷off | pgark CPU on÷off ÷ this tool\'s | pgark wall on÷off ÷ this tool\'s |', '|---|---|---|---|---|---|---|---|---|---|');
    for (const [op, opName] of ops) {
      const cost = (t, k) => {
        const off = candidates.find((c) => c.tool === t && !c.on);
        const on = candidates.find((c) => c.tool === t && c.on);
        return { off: med(off, op, k), on: med(on, op, k), r: ratio(med(on, op, k), med(off, op, k)) };
      };
      const pg = tools[0];
      for (const t of tools) {
        const cpu = cost(t, 'cpuSecs');
        const wall = cost(t, 'secs');
        const rel = (k, x) => (t === pg ? '—' : f2(ratio(cost(pg, k).r, x.r)));
        out.push(`| ${opName} | ${t.name} | ${f2(cpu.off)} | ${f2(cpu.on)} | ${f2(cpu.r)} | ${f2(wall.off)} | ${f2(wall.on)} | ${f2(wall.r)} | ${rel('cpuSecs', cpu)} | ${rel('secs', wall)} |`);
      }
    }
    out.push('', 'Below 1 in the last two columns: encryption costs pgark relatively less than it costs that pgBackRest.', '');
    out.push('### Every candidate (medians; all runs as wall/CPU s)', '');
    out.push('| operation | candidate | wall s | CPU s | peak RSS MiB (Σ tree) | load (1 min) | runs wall/CPU |', '|---|---|---|---|---|---|---|');
    for (const [op, opName] of ops) {
      for (const c of candidates) {
        const rs = c.runs[op];
        const ok = rs.filter((r) => r.ok);
        const rss = ok.length ? Math.max(...ok.map((r) => r.rssKiB ?? 0)) : null;
        const tree = ok.length && op !== 'drain' ? Math.max(...ok.map((r) => r.treeKiB ?? 0)) : null;
        out.push(`| ${opName} | ${c.label} | ${f2(med(c, op, 'secs'))} | ${f2(med(c, op, 'cpuSecs'))} | ${fmtMiB(rss)}${tree != null ? ` (Σ ${fmtMiB(tree)})` : ''} | ${f2(median(rs.map((r) => r.load)))} | ${rs.map((r) => (r.ok ? `${f2(r.secs)}/${f2(r.cpuSecs)}` : 'failed')).join(', ')} |`);
      }
    }
    out.push('', 'Peak RSS: GNU time `%M` of the largest process (for drains: of the largest archive_command call); Σ = summed RSS of the command\'s process tree, sampled every 100 ms.', '');
  }
  for (const ch of R.checks) out.push(`- restore check (${ch.label}): ${ch.summary}`);
  if (R.checks.length) out.push('');

  if (R.copies.length) {
    out.push('### `pgark copy --all` between two stores', '');
    out.push(`Source: the pgark repository of the backups above (off: plain; on: encrypted) on the local filesystem, after ${ROUNDS} full backup(s) and the WAL they need (${COPY_ROUNDS} round(s)); target: a new repository each time (fs: a local directory; s3: s3rver ${pkgVersion('s3rver')} with TLS on loopback, \`${s3?.command ?? 'not started'}\`). Encrypted target: "on, own data keys" = \`pgark key init\` with the same key-encryption key (a keyring of its own: other data keys); "on, shared data keys" = \`pgark key init --in repo2 --share-from repo\` (the source's data keys wrapped under the target's key-encryption key)${SHARE_KEYS ? '' : ' — not measured: this pgark has no \`key init --share-from\`'}. Stored MB read: the source's WAL, backups, catalog and stanza metadata as stored (compressed, and encrypted for "on"); content MB: the uncompressed size of the objects copied (\`objects.bytes\`). MB/s = those MB ÷ wall; CPU s/GB per stored GB. How: from \`--json\` (objects.asStored / objects.reEncoded): "re-encoded" means decoded (decrypted, decompressed, verified) and encoded again (compressed, encrypted with the target's data key).`, '');
    out.push('| copy | encryption | stored MB read (objects) | content MB (uncompressed) | wall s | MB/s (stored) | MB/s (content) | CPU s | CPU s / GB stored | how | runs wall/CPU |', '|---|---|---|---|---|---|---|---|---|---|---|');
    for (const v of R.copies) {
      const ok = v.runs.filter((r) => r.ok);
      const w = median(ok.map((r) => r.secs));
      const cpu = median(ok.map((r) => r.cpuSecs));
      const last = ok.at(-1)?.copy;
      const how = !last ? 'n/a' : last.reEncoded === 0 ? `as stored (${last.asStored})` : last.asStored === 0 ? `re-encoded (${last.reEncoded}): decrypted and encrypted again` : `${last.asStored} as stored, ${last.reEncoded} re-encoded`;
      out.push(`| fs → ${v.store === 's3' ? 's3rver' : 'fs'} | ${COPY_ENC_TEXT[v.enc]} | ${fmtMB(v.sourceBytes)} (${v.sourceFiles}) | ${last ? fmtMB(last.bytes) : 'n/a'} | ${f2(w)} | ${f2(w ? v.sourceBytes / 1e6 / w : null)} | ${f2(w && last ? last.bytes / 1e6 / w : null)} | ${f2(cpu)} | ${f2(cpu != null ? cpu / (v.sourceBytes / 1e9) : null)} | ${how} | ${v.runs.map((r) => (r.ok ? `${f2(r.secs)}/${f2(r.cpuSecs)}` : 'failed')).join(', ')} |`);
    }
    out.push('');
    const on = R.copies.filter((v) => v.enc !== 'off');
    for (const v of on) {
      const off = R.copies.find((x) => x.store === v.store && x.enc === 'off');
      if (!off) continue;
      const c = (x) => median(x.runs.filter((r) => r.ok).map((r) => r.cpuSecs / (x.sourceBytes / 1e9)));
      out.push(`- fs → ${v.store === 's3' ? 's3rver' : 'fs'}, encryption ${COPY_ENC_TEXT[v.enc]}: CPU per stored GB ÷ the plain copy's: ${f2(ratio(c(v), c(off)))}`);
    }
    out.push('');
  }
  for (const n of R.notes) out.push(`- ${n}`);
  return out.join('\n');
}

/** Write md as the end-to-end part of `file`: replace everything from E2E_MARKER on (or append). */
function writeE2E(file, md) {
  const existing = existsSync(file) ? readFileSync(file, 'utf8') : '# Encryption\n\n';
  const i = existing.indexOf(E2E_MARKER);
  const head = i >= 0 ? existing.slice(0, i) : existing.replace(/\n*$/, '\n\n');
  writeFileSync(file, `${head}${md}\n`);
}

// ---------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------

const { cleanup } = createCleanup({
  tmpRoot,
  keep: KEEP,
  log,
  before: [async () => { for (const c of [...clusters]) await c.stop('immediate'); }, stopS3],
  budgetMs: TOTAL_BUDGET_MS,
  graceMs: 120_000,
});

let failure = null;
try {
  checkPgarkReadableByPostgres();
  log(`temp dir ${tmpRoot}; scale ${SCALE}, ${SEGMENTS} segments, ${ROUNDS} rounds; candidates: ${candidates.map((c) => c.key).join(', ')}`);
  const cl = new Cluster('main', join(mkPgDir(join(tmpRoot, 'main')), 'data'), await freePort());
  await initCluster({ run }, cl, { checksums: true, conf: benchConf(cl, { max_wal_senders: '10', synchronous_commit: 'off' }), comment: 'encryption bench' });
  await cl.start();
  R.dataset = await loadDataset(cl);
  log(`loaded pgbench -s ${SCALE} in ${R.dataset.loadSecs.toFixed(1)} s: ${fmtMB(R.dataset.dbBytes)} MB`);
  await setUpCandidates(cl);
  R.phaseSecs.load = (Date.now() - started) / 1000;
  if (PHASES.has('backup')) await phase('backups', () => backups(cl));
  await cl.stop('fast');
  if (PHASES.has('restore')) await phase('restores', () => restores());
  if (PHASES.has('copy')) await phase('copies', () => copies());
  if (PHASES.has('drain')) {
    await phase('drains', async () => {
      await cl.start();
      await setArchiveCommand(cl, '/bin/true', true);
      await sleep(300);
      await switchAndWaitArchived(ctx, cl, 5 * 60_000);
      await drains(cl);
    });
  }
  await cl.stop('fast');
} catch (e) {
  failure = e;
  log(`FAILED: ${e.stack ?? e}`);
} finally {
  await cleanup();
}
const md = report(failure);
console.log(md);
if (WRITE && candidates.some((c) => c.runs.backup.length || c.runs.drain.length)) {
  writeE2E(RESULTS, md);
  log(`wrote ${RESULTS}`);
}
const bad = failure || R.checks.some((c) => !c.ok) || candidates.some((c) => Object.values(c.runs).some((rs) => rs.some((r) => !r.ok))) || R.copies.some((v) => v.runs.some((r) => !r.ok));
process.exit(bad ? 1 : 0);
