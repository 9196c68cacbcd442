// Object-store benchmark: pgark vs pgBackRest 2.45 on s3rver (S3) and Azurite (Azure Blob), both
// started on loopback with TLS by this script, in ONE run on ONE PostgreSQL 15 cluster.
//
//   npm run bench:stores                  # as root (the cluster runs as the `postgres` OS user)
//   node bench/remote-stores.mjs [--scale 30] [--segments 64] [--jobs 2] [--stores s3,azure]
//                                [--budget-sec 900] [--keep] [--out FILE | --no-write]
//   smoke: node bench/remote-stores.mjs --scale 1 --segments 8 --out /tmp/stores-smoke.md
//
// Needs: postgresql-15 (+ client), pgbackrest (Debian 2.45), GNU time (/usr/bin/time), openssl,
// the devDependencies s3rver and azurite, a built pgark (npm run build) with the s3 and azure
// drivers. Writes bench/results/remote-stores.md (text above the GENERATED marker is kept).
//
// Method:
//  0. A self-signed certificate for 127.0.0.1/localhost (openssl, in the temp dir); s3rver
//     (`node --openssl-legacy-provider`, --key/--cert) and azurite-blob (--cert/--key) on free
//     loopback ports with their data in the temp dir. pgBackRest trusts the certificate through
//     repo1-storage-ca-file, pgark through NODE_EXTRA_CA_CERTS. Credentials live only in the
//     environment (pgark, and the postmaster's environment for archive_command) and in the
//     pgBackRest config files (mode 0600), never in argv.
//  1. Full backup (pgark --jobs 2 --codec lz4; pgBackRest process-max=2 compress-type=lz4), while
//     archive_command is the tool under test's own push. Order: s3 pgark, s3 pgBackRest, azure
//     pgBackRest, azure pgark (the first writer alternates).
//  2. Restore of that backup into an empty directory, same order.
//  3. Archive drain, per store and tool, each on its own fresh backlog: archive_command =
//     /bin/false, pgbench until >= N segments are .ready, then archive_command = the tool and time
//     until pg_stat_archiver has archived the backlog (lib-pg.mjs, as bench/archive-drain.mjs).
//     pgark wal-push with its defaults (look-ahead); pgBackRest archive-push with archive-async=y,
//     process-max=2 and a spool path. Same order. (The backlogs' bulk inserts would grow the
//     database by gigabytes, hence the drains come last.)
// Each timed step also records the requests the store received (from the servers' access logs),
// the requests pgark reports itself (PGARK_STORAGE_STATS=1) and the bytes it added to the store.
import { spawn, spawnSync as spawnSyncImpl } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import {
  appendConf,
  archiverStats,
  BACKLOG_BULK_SQL,
  BACKLOG_PGBENCH_ARGS,
  BACKLOG_TABLE_SQL,
  backlogPgbenchArgs,
  Cluster as BaseCluster,
  drain as drainBacklog,
  makeBacklog,
  setArchiveCommand,
  switchAndWaitArchived,
  benchConf,
  initCluster,
} from './lib-pg.mjs';
import {
  argvOf,
  BASE_ENV,
  checkPgarkReadableByPostgres,
  createBudget,
  createCleanup,
  createRun,
  environmentLines,
  f1,
  f2,
  fmtMB,
  fmtMiB,
  freePort,
  makeTmpRoot,
  matchingRssSampler,
  measureCommand,
  mkPgDir,
  pgarkRepoCreate,
  NODE,
  pgarkCommand,
  PG_BIN,
  PGBACKREST,
  pidsWhere,
  requireRootAndFiles,
  ROOT,
  rssStats,
  rssWrap,
  shq,
  sleep,
  TIME,
  treeBytes,
  writeGenerated,
  writePgFile,
  pkgVersion,
  makeCertificate,
  toolPred,
  waitToolIdle,
} from './lib-proc.mjs';

// ---------------------------------------------------------------------------
// Settings
// ---------------------------------------------------------------------------

const MARKER = '<!-- GENERATED: everything below is rewritten by bench/remote-stores.mjs -->';
const STANZA = 'bench';
const BUCKET = 'pgark-bench'; // S3 bucket and Azure container
const S3RVER_JS = join(ROOT, 'node_modules/s3rver/bin/s3rver.js');
const AZURITE_JS = join(ROOT, 'node_modules/azurite/dist/src/blob/main.js');
// s3rver's built-in account and Azurite's published development account: well-known values,
// still handled as secrets here (environment and 0600 files only, redacted in the report).
const S3_ACCESS_KEY = 'S3RVER';
const S3_SECRET_KEY = 'S3RVER';
const S3_REGION = 'us-east-1';
const AZ_ACCOUNT = 'devstoreaccount1';
const AZ_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';
const SECRET_VARS = new Set(['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AZURE_STORAGE_KEY']);
const PGARK_PREFIX = 'pgark';
const PGBR_PREFIX = 'pgbackrest';

const argv = process.argv.slice(2);
const KNOWN = new Set(['--scale', '--segments', '--jobs', '--stores', '--budget-sec', '--keep', '--out', '--no-write', '--direct']);
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (!KNOWN.has(a)) {
    console.error(`unknown option ${a}`);
    process.exit(2);
  }
  if (!['--keep', '--no-write', '--direct'].includes(a)) i++;
}
const argValue = (name, dflt) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : dflt;
};
const SCALE = Number(argValue('--scale', '30'));
const SEGMENTS = Number(argValue('--segments', '64'));
const JOBS = Number(argValue('--jobs', '2'));
const STORES = argValue('--stores', 's3,azure').split(',').map((s) => s.trim()).filter(Boolean);
const KEEP = argv.includes('--keep');
const WRITE = !argv.includes('--no-write');
const RESULTS = argValue('--out', join(ROOT, 'bench/results/remote-stores.md'));
const TOTAL_BUDGET_MS = Number(argValue('--budget-sec', '900')) * 1000;
// pgark as users run it: the launcher bin/pgark (its memory settings) on the shipped runtime;
// --direct runs bin/pgark.js without them, as this bench did before 2026-12-07.
const PGARK_CMD = pgarkCommand({ direct: argv.includes('--direct') });
const COMMAND_TIMEOUT_MS = 10 * 60_000;
const DRAIN_TIMEOUT_MS = 300_000;
const BACKLOG_TIMEOUT_MS = 240_000;
for (const [k, v] of Object.entries({ SCALE, SEGMENTS, JOBS, TOTAL_BUDGET_MS })) {
  if (!Number.isFinite(v) || v <= 0) {
    console.error(`invalid ${k}: ${v}`);
    process.exit(2);
  }
}
if (!STORES.length || STORES.some((s) => s !== 's3' && s !== 'azure')) {
  console.error(`--stores: s3, azure or both (got ${STORES.join(',')})`);
  process.exit(2);
}

requireRootAndFiles('bench/remote-stores.mjs', [join(PG_BIN, 'initdb'), join(PG_BIN, 'pgbench'), PGBACKREST, TIME, '/usr/bin/openssl', S3RVER_JS, AZURITE_JS, join(ROOT, 'dist/src/cli/main.js')]);

const budget = createBudget(TOTAL_BUDGET_MS);
const { started, log, bounded } = budget;
const startLoad = loadavg();
const run = createRun(budget);

const tmpRoot = makeTmpRoot('/tmp/pgark-storesbench-');
const clusters = new Set();
const ctx = { tmpRoot, run, bounded, log, clusters };
class Cluster extends BaseCluster {
  constructor(name, dataDir, port) {
    super(ctx, name, dataDir, port);
  }
}

/** Which pgark drivers dist/ has (the registry maps a scheme to a driver module only once it exists). */
function builtDrivers() {
  const reg = join(ROOT, 'dist/storage-drivers/registry.js');
  const text = existsSync(reg) ? readFileSync(reg, 'utf8') : '';
  return { s3: /['"]s3:['"]\s*:/.test(text), azure: /['"]azure:['"]\s*:/.test(text) };
}

// ---------------------------------------------------------------------------
// TLS and the two servers
// ---------------------------------------------------------------------------

const servers = []; // {name, child}



function tcpReady(port) {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port }, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

/** Start a server as root in its own process group, stdout+stderr appended to logFile; wait for its port. */
async function startServer(name, args, logFile, port, env = {}) {
  const fd = openSync(logFile, 'a', 0o600);
  const child = spawn(NODE, args, { cwd: ROOT, env: { ...BASE_ENV, HOME: '/root', ...env }, stdio: ['ignore', fd, fd], detached: true });
  closeSync(fd);
  servers.push({ name, child });
  let exited = null;
  child.on('exit', (code, signal) => (exited = `${code ?? signal}`));
  const until = Date.now() + bounded(60_000);
  while (!(await tcpReady(port))) {
    if (exited !== null) throw new Error(`${name} exited (${exited}) at start:\n${readFileSync(logFile, 'utf8').slice(-2000)}`);
    if (Date.now() > until) throw new Error(`${name} did not listen on 127.0.0.1:${port} within 60 s:\n${readFileSync(logFile, 'utf8').slice(-2000)}`);
    await sleep(200);
  }
  return child;
}

async function stopServers() {
  for (const s of servers.splice(0)) {
    if (s.child.exitCode !== null || s.child.signalCode !== null) continue;
    const gone = new Promise((r) => s.child.once('exit', r));
    try {
      process.kill(-s.child.pid, 'SIGTERM');
    } catch {
      /* gone */
    }
    if ((await Promise.race([gone.then(() => true), sleep(5000).then(() => false)])) === false) {
      try {
        process.kill(-s.child.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }
}

/** Run a small Node.js script (ES module) with the SDKs of node_modules; secrets go in env, never argv. */
async function nodeScript(code, env, timeoutMs = 60_000) {
  const r = await run(NODE, ['--input-type=module', '-e', code], { env: { HOME: '/root', ...env }, cwd: ROOT, timeoutMs, allowFail: true });
  if (r.code !== 0) throw new Error(`helper script failed (exit ${r.code}): ${r.stderr.slice(-1500)}`);
  return r.stdout;
}

// Object listing (bytes per top-level prefix), used for "stored" after each step.
const LIST_S3 = `
import { S3Client, ListObjectsV2Command } from '@aws-sdk/client-s3';
const c = new S3Client({ endpoint: process.env.EP, forcePathStyle: true, region: process.env.AWS_REGION });
const out = {}; let token;
do {
  const r = await c.send(new ListObjectsV2Command({ Bucket: process.env.BUCKET, ContinuationToken: token }));
  for (const o of r.Contents ?? []) { const p = o.Key.split('/')[0]; out[p] = (out[p] ?? 0) + o.Size; out['#' + p] = (out['#' + p] ?? 0) + 1; }
  token = r.IsTruncated ? r.NextContinuationToken : undefined;
} while (token);
console.log(JSON.stringify(out));`;
const LIST_AZ = `
import { BlobServiceClient, StorageSharedKeyCredential } from '@azure/storage-blob';
const svc = new BlobServiceClient(process.env.EP, new StorageSharedKeyCredential(process.env.ACCOUNT, process.env.AZURE_STORAGE_KEY));
const cc = svc.getContainerClient(process.env.BUCKET);
if (process.env.CREATE === '1') { await cc.createIfNotExists(); console.log('{}'); process.exit(0); }
const out = {};
for await (const b of cc.listBlobsFlat()) { const p = b.name.split('/')[0]; out[p] = (out[p] ?? 0) + b.properties.contentLength; out['#' + p] = (out['#' + p] ?? 0) + 1; }
console.log(JSON.stringify(out));`;

class Store {
  constructor(name, port, logFile, certFile) {
    this.name = name;
    this.port = port;
    this.logFile = logFile;
    this.cert = certFile;
  }
  /** Byte offset of the access log: requests after it belong to the step that follows. */
  mark() {
    return existsSync(this.logFile) ? statSync(this.logFile).size : 0;
  }
  /** Requests in the access log since mark, by kind. */
  requestsSince(mark) {
    const buf = readFileSync(this.logFile);
    const text = buf.subarray(mark).toString('utf8');
    const counts = { list: 0, head: 0, get: 0, put: 0, post: 0, delete: 0, other: 0, total: 0 };
    for (const line of text.split('\n')) {
      const req = this.parseLine(line);
      if (!req) continue;
      counts[classify(req, this.name)]++;
      counts.total++;
    }
    return counts;
  }
}

/** list / head / get / put / post / delete / other from method and URL (path-style). */
function classify({ method, url }, store) {
  const q = url.includes('?') ? url.slice(url.indexOf('?') + 1) : '';
  const path = url.split('?')[0];
  if (method === 'GET') {
    if (store === 's3') {
      // /bucket or /bucket/ with list parameters = ListObjects(V2); /bucket/key = GetObject
      const parts = path.split('/').filter(Boolean);
      return parts.length <= 1 ? 'list' : 'get';
    }
    return /(^|&)comp=list(&|$)/.test(q) ? 'list' : 'get';
  }
  if (method === 'HEAD') return 'head';
  if (method === 'PUT') return 'put';
  if (method === 'POST') return /(^|&)delete(=|&|$)/.test(q) ? 'delete' : 'post';
  if (method === 'DELETE') return 'delete';
  return 'other';
}

class S3Store extends Store {
  constructor(port, logFile, certFile) {
    super('s3', port, logFile, certFile);
    this.endpoint = `https://127.0.0.1:${port}`;
    this.pgarkRepo = `s3://${BUCKET}/${PGARK_PREFIX}`;
    this.pgarkEnv = {
      PGARK_S3_ENDPOINT: this.endpoint,
      PGARK_S3_PATH_STYLE: 'true',
      AWS_ACCESS_KEY_ID: S3_ACCESS_KEY,
      AWS_SECRET_ACCESS_KEY: S3_SECRET_KEY,
      AWS_REGION: S3_REGION,
      NODE_EXTRA_CA_CERTS: certFile,
    };
  }
  // s3rver logs each response through koa-logger and winston: "info: GET /bucket/key?x=y 404 15ms -".
  // It cuts the first 16 characters of koa-logger's line, which are "  --> " plus colour codes
  // only when colours are on, hence FORCE_COLOR=1 at its start (the codes are stripped here).
  parseLine(line) {
    const m = /^info:\s+([A-Z]+)\s+(\/\S*)\s+(\d{3})\s/.exec(line.replace(/\x1b\[[0-9;]*m/g, ''));
    return m ? { method: m[1], url: m[2] } : null;
  }
  pgbrRepoLines() {
    return [
      'repo1-type=s3',
      `repo1-s3-bucket=${BUCKET}`,
      'repo1-s3-endpoint=127.0.0.1',
      `repo1-storage-port=${this.port}`,
      'repo1-s3-uri-style=path',
      `repo1-s3-region=${S3_REGION}`,
      `repo1-s3-key=${S3_ACCESS_KEY}`,
      `repo1-s3-key-secret=${S3_SECRET_KEY}`,
      `repo1-storage-ca-file=${this.cert}`,
    ];
  }
  async listBytes() {
    return JSON.parse(await nodeScript(LIST_S3, { EP: this.endpoint, BUCKET, AWS_ACCESS_KEY_ID: S3_ACCESS_KEY, AWS_SECRET_ACCESS_KEY: S3_SECRET_KEY, AWS_REGION: S3_REGION, NODE_EXTRA_CA_CERTS: this.cert }));
  }
}

class AzureStore extends Store {
  constructor(port, logFile, certFile) {
    super('azure', port, logFile, certFile);
    this.endpoint = `https://127.0.0.1:${port}/${AZ_ACCOUNT}`;
    this.pgarkRepo = `azure://${AZ_ACCOUNT}/${BUCKET}/${PGARK_PREFIX}`;
    this.pgarkEnv = { PGARK_AZURE_ENDPOINT: this.endpoint, AZURE_STORAGE_KEY: AZ_KEY, NODE_EXTRA_CA_CERTS: certFile };
  }
  // Azurite's access log: 127.0.0.1 - - [23/Nov/2026:17:44:05 +0000] "GET /account/container?... HTTP/1.1" 200 -
  parseLine(line) {
    const m = /"([A-Z]+) (\S+) HTTP\/[\d.]+" (\d{3})/.exec(line);
    return m ? { method: m[1], url: m[2] } : null;
  }
  pgbrRepoLines() {
    return [
      'repo1-type=azure',
      `repo1-azure-account=${AZ_ACCOUNT}`,
      `repo1-azure-key=${AZ_KEY}`,
      `repo1-azure-container=${BUCKET}`,
      'repo1-azure-uri-style=path',
      'repo1-storage-host=127.0.0.1',
      `repo1-storage-port=${this.port}`,
      `repo1-storage-ca-file=${this.cert}`,
    ];
  }
  async listBytes() {
    return JSON.parse(await nodeScript(LIST_AZ, { EP: this.endpoint, BUCKET, ACCOUNT: AZ_ACCOUNT, AZURE_STORAGE_KEY: AZ_KEY, NODE_EXTRA_CA_CERTS: this.cert }));
  }
  async createContainer() {
    await nodeScript(LIST_AZ, { EP: this.endpoint, BUCKET, ACCOUNT: AZ_ACCOUNT, AZURE_STORAGE_KEY: AZ_KEY, NODE_EXTRA_CA_CERTS: this.cert, CREATE: '1' });
  }
}

async function startS3(tls) {
  const dir = join(tmpRoot, 's3rver');
  mkdirSync(join(dir, 'data'), { recursive: true, mode: 0o700 });
  const port = await freePort();
  const logFile = join(dir, 'access.log');
  const args = ['--openssl-legacy-provider', S3RVER_JS, '-d', join(dir, 'data'), '-a', '127.0.0.1', '-p', String(port), '--key', tls.key, '--cert', tls.cert, '--no-vhost-buckets', '--configure-bucket', BUCKET];
  await startServer('s3rver', args, logFile, port, { FORCE_COLOR: '1' });
  const store = new S3Store(port, logFile, tls.cert);
  store.command = `node ${args.map((a) => shq(a.replace(tmpRoot, '$TMP').replace(ROOT + '/', ''))).join(' ')}`;
  return store;
}

async function startAzure(tls) {
  const dir = join(tmpRoot, 'azurite');
  mkdirSync(join(dir, 'data'), { recursive: true, mode: 0o700 });
  const port = await freePort();
  const logFile = join(dir, 'access.log');
  const args = [AZURITE_JS, '--blobHost', '127.0.0.1', '--blobPort', String(port), '--cert', tls.cert, '--key', tls.key, '--location', join(dir, 'data'), '--disableTelemetry', '--skipApiVersionCheck'];
  await startServer('azurite-blob', args, logFile, port);
  const store = new AzureStore(port, logFile, tls.cert);
  store.command = `node ${args.map((a) => shq(a.replace(tmpRoot, '$TMP').replace(ROOT + '/', ''))).join(' ')}`;
  await store.createContainer();
  return store;
}

// ---------------------------------------------------------------------------
// Tools
// ---------------------------------------------------------------------------

const redactEnv = (env) => Object.fromEntries(Object.entries(env).map(([k, v]) => [k, SECRET_VARS.has(k) ? '***' : String(v).replaceAll(tmpRoot, '$TMP')]));
const showEnv = (env) => Object.entries(redactEnv(env)).map(([k, v]) => `${k}=${v}`).join(' ');
const redactText = (s) => s.replaceAll(AZ_KEY, '***').replace(/^(repo1-s3-key(?:-secret)?|repo1-azure-key)=.*$/gm, '$1=***').replaceAll(tmpRoot, '$TMP');

function pgbrConfig(store, cl) {
  const dir = mkPgDir(join(tmpRoot, `pgbackrest-${store.name}`));
  for (const d of ['log', 'lock', 'spool']) mkPgDir(join(dir, d));
  const lines = [
    '[global]',
    ...store.pgbrRepoLines(),
    `repo1-path=/${PGBR_PREFIX}`,
    'repo1-retention-full=10',
    `log-path=${join(dir, 'log')}`,
    `lock-path=${join(dir, 'lock')}`,
    `spool-path=${join(dir, 'spool')}`,
    'compress-type=lz4',
    `process-max=${JOBS}`,
    'archive-async=y',
    'start-fast=y',
    'log-level-console=warn',
    'log-level-stderr=warn',
    'log-level-file=info',
    '',
    `[${STANZA}]`,
    `pg1-path=${cl.dataDir}`,
    `pg1-port=${cl.port}`,
    `pg1-socket-path=${cl.sockDir}`,
    'pg1-user=postgres',
    '',
  ];
  const conf = join(dir, 'pgbackrest.conf');
  writePgFile(conf, lines.join('\n')); // 0600, owned by postgres: it holds the store's key
  return { conf, text: lines.join('\n'), logDir: join(dir, 'log') };
}



/** Sum of the `{"pgarkStorageRequests":{...}}` lines in text (one per pgark process). */
function pgarkReported(text) {
  const sum = { processes: 0, list: 0, head: 0, get: 0, put: 0, delete: 0, other: 0, total: 0 };
  for (const line of text.split('\n')) {
    const i = line.indexOf('{"pgarkStorageRequests":');
    if (i < 0) continue;
    try {
      const c = JSON.parse(line.slice(i)).pgarkStorageRequests;
      sum.processes++;
      for (const [k, v] of Object.entries(c)) {
        sum[k] = (sum[k] ?? 0) + v;
        sum.total += v;
      }
    } catch {
      /* partial line */
    }
  }
  return sum;
}

const fileSize = (f) => (existsSync(f) ? statSync(f).size : 0);
const readFrom = (f, offset) => (existsSync(f) ? readFileSync(f).subarray(offset).toString('utf8') : '');

// ---------------------------------------------------------------------------
// Steps
// ---------------------------------------------------------------------------

const results = { stores: [], steps: [], backlogs: [], notes: [], dataset: null };
const PREFIX_OF = { pgark: PGARK_PREFIX, pgbackrest: PGBR_PREFIX };

async function storedOf(store, tool) {
  try {
    const l = await store.listBytes();
    return { bytes: l[PREFIX_OF[tool]] ?? 0, objects: l['#' + PREFIX_OF[tool]] ?? 0 };
  } catch (e) {
    results.notes.push(`listing ${store.name} failed: ${e.message.split('\n')[0]}`);
    return null;
  }
}

/** Bookkeeping around one timed step: access-log window, pgark's own counts, bytes added to the store. */
async function around(store, tool, cl, fn) {
  const before = await storedOf(store, tool);
  const mark = store.mark();
  const pgLog = fileSize(cl.logFile);
  const step = await fn();
  if (step.stderr) writeFileSync(join(tmpRoot, 'work', `${step.label.replace(/[^A-Za-z0-9]+/g, '-')}.stderr`), step.stderr);
  step.idle = await waitToolIdle(tool, tmpRoot);
  await sleep(500); // access log lines of the last responses
  step.requests = store.requestsSince(mark);
  if (tool === 'pgark') step.reported = pgarkReported((step.stderr ?? '') + '\n' + readFrom(cl.logFile, pgLog));
  const after = await storedOf(store, tool);
  step.stored = before && after ? { bytes: after.bytes - before.bytes, objects: after.objects - before.objects } : null;
  return step;
}

async function drainStep(cl, store, tool, tools) {
  const label = `${store.name} ${tool} drain`;
  const rssFile = join(tmpRoot, 'rss', `${store.name}-${tool}-drain.txt`);
  writePgFile(rssFile, '');
  const words = tool === 'pgark' ? [...PGARK_CMD, 'wal-push', '%p', '--repo', store.pgarkRepo, '--stanza', STANZA] : [PGBACKREST, `--config=${tools.pgbr[store.name].conf}`, `--stanza=${STANZA}`, 'archive-push', '%p'];
  const cmd = rssWrap(rssFile, words);
  const backlog = await makeBacklog(ctx, cl, { label, segments: SEGMENTS, pgbenchArgs: backlogPgbenchArgs(join(tmpRoot, 'bulk.sql')), timeoutMs: BACKLOG_TIMEOUT_MS });
  results.backlogs.push(backlog);
  return around(store, tool, cl, async () => {
    log(`${label}: archive_command = ${cmd}`);
    const load = loadavg()[0];
    let sampler;
    let d;
    let error = null;
    try {
      d = await drainBacklog(cl, cmd, backlog, { timeoutMs: DRAIN_TIMEOUT_MS, onStart: () => (sampler = matchingRssSampler(toolPred(tool, tmpRoot))) });
    } catch (e) {
      error = e;
    }
    await waitToolIdle(tool, tmpRoot);
    const treeKiB = sampler?.stop() ?? null;
    const rss = rssStats(rssFile);
    const archiver = await archiverStats(cl).catch(() => null);
    const step = {
      phase: 'drain', store: store.name, tool, label, command: cmd.replaceAll(tmpRoot, '$TMP'), env: tool === 'pgark' ? store.pgarkEnv : {},
      ok: !error, secs: d?.secs ?? null, segments: backlog.count, failedDelta: d?.failedDelta ?? null, load,
      rssKiB: rss.max, treeKiB, calls: rss.calls, cpuSecs: rss.cpu,
      stderr: '',
    };
    if (error) {
      step.error = error.message.split('\n')[0];
      step.stderr = `archiver: ${JSON.stringify(archiver)}\n${cl.logTail(4000)}`;
      log(`${label}: FAILED: ${step.error}`);
      // leave nothing ready for the next step
      await setArchiveCommand(cl, '/bin/true', true);
      const until = Date.now() + 60_000;
      while ((await archiverStats(cl)).last < backlog.last && Date.now() < until) await sleep(500);
    } else {
      log(`${label}: ${backlog.count} segments in ${d.secs.toFixed(2)} s = ${(backlog.count / d.secs).toFixed(1)} seg/s; peak RSS per call ${fmtMiB(rss.max)} MiB, all processes ${fmtMiB(treeKiB)} MiB; failures ${d.failedDelta}`);
    }
    return step;
  });
}

/** archive_command = the tool's own push to this store (wrapped in nothing), reload, archive what is ready. */
async function archiveTo(cl, store, tool, tools) {
  const cmd =
    tool === 'pgark'
      ? [...PGARK_CMD, 'wal-push', '%p', '--repo', store.pgarkRepo, '--stanza', STANZA].map(shq).join(' ')
      : [PGBACKREST, `--config=${tools.pgbr[store.name].conf}`, `--stanza=${STANZA}`, 'archive-push', '%p'].map(shq).join(' ');
  await setArchiveCommand(cl, cmd, true);
  await sleep(300);
  await switchAndWaitArchived(ctx, cl);
  await waitToolIdle(tool, tmpRoot);
  return cmd;
}

async function backupStep(cl, store, tool, tools, work) {
  const label = `${store.name} ${tool} full backup`;
  const archiveCommand = await archiveTo(cl, store, tool, tools);
  return around(store, tool, cl, async () => {
    let r;
    if (tool === 'pgark') {
      const env = { ...cl.env, ...store.pgarkEnv, PGARK_STORAGE_STATS: '1' };
      r = await measureCommand({ run, log }, label, PGARK_CMD[0], [...PGARK_CMD.slice(1), 'backup', '--type', 'full', '--repo', store.pgarkRepo, '--stanza', STANZA, '--pgdata', cl.dataDir, '--jobs', String(JOBS), '--codec', 'lz4', '--no-progress'], { env, shownEnv: redactEnv(env), timeoutMs: COMMAND_TIMEOUT_MS, dir: work });
    } else {
      r = await measureCommand({ run, log }, label, PGBACKREST, [`--config=${tools.pgbr[store.name].conf}`, `--stanza=${STANZA}`, '--type=full', 'backup'], { env: {}, timeoutMs: COMMAND_TIMEOUT_MS, dir: work });
    }
    return { ...r, phase: 'backup', store: store.name, tool, archiveCommand: archiveCommand.replaceAll(tmpRoot, '$TMP') };
  });
}

async function restoreStep(cl, store, tool, tools, work) {
  const label = `${store.name} ${tool} restore`;
  const target = mkPgDir(join(tmpRoot, `restore-${store.name}-${tool}`));
  const step = await around(store, tool, cl, async () => {
    let r;
    if (tool === 'pgark') {
      const env = { ...store.pgarkEnv, PGARK_STORAGE_STATS: '1' };
      r = await measureCommand({ run, log }, label, PGARK_CMD[0], [...PGARK_CMD.slice(1), 'restore', 'latest', '--repo', store.pgarkRepo, '--stanza', STANZA, '--pgdata', target, '--jobs', String(JOBS), '--no-progress'], { env, shownEnv: redactEnv(env), timeoutMs: COMMAND_TIMEOUT_MS, dir: work });
    } else {
      r = await measureCommand({ run, log }, label, PGBACKREST, [`--config=${tools.pgbr[store.name].conf}`, `--stanza=${STANZA}`, `--pg1-path=${target}`, 'restore'], { env: {}, timeoutMs: COMMAND_TIMEOUT_MS, dir: work });
    }
    return { ...r, phase: 'restore', store: store.name, tool };
  });
  if (step.ok) {
    const t = treeBytes(target);
    step.restored = { bytes: t.bytes, files: t.files, pgControl: existsSync(join(target, 'global', 'pg_control')) };
  }
  rmSync(target, { recursive: true, force: true });
  return step;
}

// ---------------------------------------------------------------------------
// Main run
// ---------------------------------------------------------------------------

const { cleanup } = createCleanup({
  tmpRoot,
  keep: KEEP,
  log,
  before: [
    async () => {
      for (const c of [...clusters]) await c.stop('immediate');
    },
    stopServers,
  ],
  budgetMs: TOTAL_BUDGET_MS,
  graceMs: 90_000,
});

async function runBench() {
  checkPgarkReadableByPostgres();
  const drivers = builtDrivers();
  results.drivers = drivers;
  for (const s of STORES) if (!drivers[s]) results.notes.push(`pgark: dist/ has no ${s} driver (dist/storage-drivers/registry.js does not map '${s}:'); the pgark ${s} steps are expected to fail. Run npm run build.`);

  // --- TLS and servers -----------------------------------------------------------------------
  const tls = makeCertificate(join(tmpRoot, 'tls'));
  results.tls = 'self-signed RSA 2048 certificate, CN=127.0.0.1, subjectAltName IP:127.0.0.1, DNS:127.0.0.1, DNS:localhost (openssl req -x509)';
  const stores = {};
  if (STORES.includes('s3')) {
    stores.s3 = await startS3(tls);
    log(`s3rver on https://127.0.0.1:${stores.s3.port}`);
  }
  if (STORES.includes('azure')) {
    stores.azure = await startAzure(tls);
    log(`azurite-blob on https://127.0.0.1:${stores.azure.port}`);
  }
  results.stores = Object.values(stores).map((s) => ({ name: s.name, command: s.command, endpoint: s.endpoint, pgarkRepo: s.pgarkRepo, pgarkEnv: redactEnv(s.pgarkEnv) }));
  // pgark refuses a location without the repository marker: create each repository first (not measured).
  for (const s of Object.values(stores)) await pgarkRepoCreate(run, s.pgarkRepo, s.pgarkEnv);

  // --- cluster -------------------------------------------------------------------------------
  const dataDir = join(mkPgDir(join(tmpRoot, 'main')), 'data');
  const cl = new Cluster('main', dataDir, await freePort());
  log(`initdb --data-checksums ${dataDir} (port ${cl.port})`);
  const conf = benchConf(cl, { synchronous_commit: 'off' });
  await initCluster({ run }, cl, { checksums: true, conf, comment: 'remote-stores bench' });
  results.pgConf = conf;
  // The postmaster's environment reaches archive_command: the stores' settings and credentials
  // for pgark (never in argv or postgresql.conf), and the request report of every pgark process.
  const serverEnv = { PGARK_STORAGE_STATS: '1' };
  for (const s of Object.values(stores)) Object.assign(serverEnv, s.pgarkEnv);
  results.serverEnv = redactEnv(serverEnv);
  await cl.start(120, serverEnv);

  log(`pgbench -i -s ${SCALE}`);
  const t0 = performance.now();
  await run(join(PG_BIN, 'pgbench'), ['-i', '-q', '-s', String(SCALE)], { env: cl.env, timeoutMs: COMMAND_TIMEOUT_MS });
  await cl.psql(`${BACKLOG_TABLE_SQL} VACUUM ANALYZE; CHECKPOINT;`, COMMAND_TIMEOUT_MS);
  const [dbBytes, count] = (await cl.psql('SELECT pg_database_size(current_database()), (SELECT count(*) FROM pgbench_accounts);')).split('|').map(Number);
  results.dataset = { loadSecs: (performance.now() - t0) / 1000, dbBytes, count };
  writeFileSync(join(tmpRoot, 'bulk.sql'), BACKLOG_BULK_SQL);
  log(`loaded: database ${fmtMB(dbBytes)} MB`);

  // --- pgBackRest stanzas --------------------------------------------------------------------
  const tools = { pgbr: {} };
  for (const s of Object.values(stores)) {
    tools.pgbr[s.name] = pgbrConfig(s, cl);
    const r = await run(PGBACKREST, [`--config=${tools.pgbr[s.name].conf}`, `--stanza=${STANZA}`, 'stanza-create'], { asPg: true, timeoutMs: 120_000, allowFail: true });
    if (r.code !== 0) throw new Error(`pgbackrest stanza-create on ${s.name} failed (exit ${r.code}):\n${r.stdout}${r.stderr}`);
    log(`pgbackrest stanza-create on ${s.name}: ok`);
  }
  results.pgbrConfs = Object.fromEntries(Object.entries(tools.pgbr).map(([k, v]) => [k, redactText(v.text)]));
  mkPgDir(join(tmpRoot, 'rss'));
  const work = mkPgDir(join(tmpRoot, 'work'));

  // Alternating order: s3 pgark first, then pgBackRest; azure pgBackRest first, then pgark.
  const order = [];
  for (const [i, s] of Object.values(stores).entries()) {
    const pair = i % 2 === 0 ? ['pgark', 'pgbackrest'] : ['pgbackrest', 'pgark'];
    for (const t of pair) order.push([s, t]);
  }
  results.order = order.map(([s, t]) => `${s.name} ${t}`);

  // Backups first, so that they copy exactly the pgbench dataset (the drains' backlogs grow
  // bench_bulk by gigabytes); then the restores of those backups; then the drains.
  // --- full backups --------------------------------------------------------------------------
  for (const [s, t] of order) results.steps.push(await backupStep(cl, s, t, tools, work));
  // --- restores ------------------------------------------------------------------------------
  for (const [s, t] of order) {
    const b = results.steps.find((x) => x.phase === 'backup' && x.store === s.name && x.tool === t);
    if (!b?.ok) {
      results.notes.push(`${s.name} ${t} restore skipped: its backup failed`);
      continue;
    }
    results.steps.push(await restoreStep(cl, s, t, tools, work));
  }
  // --- archive drains ------------------------------------------------------------------------
  for (const [s, t] of order) results.steps.push(await drainStep(cl, s, t, tools));
  // pgBackRest's own log of the async archive-push, for the notes when something failed
  for (const s of Object.values(stores)) {
    results.pgbrLogTail ??= {};
    const f = join(tools.pgbr[s.name].logDir, `${STANZA}-archive-push-async.log`);
    if (existsSync(f)) results.pgbrLogTail[s.name] = redactText(readFileSync(f, 'utf8').slice(-1500));
  }
  await cl.stop('fast');
}

// ---------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------

const ratio = (a, b) => (a == null || b == null || !(b > 0) ? null : a / b);
const stepOf = (phase, store, tool) => results.steps.find((s) => s.phase === phase && s.store === store && s.tool === tool);
const statusOf = (r) => (!r ? 'not run' : r.ok ? null : r.timedOut ? 'timed out' : r.error ? 'failed' : `failed (exit ${r.code ?? r.signal})`);
const secsCell = (r) => statusOf(r) ?? f2(r.secs);
const peakOf = (r) => (r?.ok ? Math.max(r.rssKiB ?? 0, r.treeKiB ?? 0) : null);
const rssCell = (r) => statusOf(r) ?? `${fmtMiB(r.rssKiB)} (Σ ${fmtMiB(r.treeKiB)})`;
const reqCell = (c) => (c ? `${c.total} (L ${c.list}, H ${c.head}, G ${c.get}, P ${c.put}${c.post ? `, POST ${c.post}` : ''}${c.delete ? `, D ${c.delete}` : ''})` : 'n/a');
const reportedCell = (c) => (c ? (c.processes ? `${c.total} from ${c.processes} process${c.processes > 1 ? 'es' : ''} (L ${c.list}, H ${c.head}, G ${c.get}, P ${c.put}${c.delete ? `, D ${c.delete}` : ''}${c.other ? `, other ${c.other}` : ''})` : 'none printed') : '—');

function storeSection(name) {
  const out = [];
  const label = name === 's3' ? 'S3: s3rver' : 'Azure Blob: Azurite';
  out.push(`## ${label}`, '');
  const D = (t) => stepOf('drain', name, t);
  const B = (t) => stepOf('backup', name, t);
  const R = (t) => stepOf('restore', name, t);
  const segRate = (r) => (r?.ok ? r.segments / r.secs : null);
  out.push('| metric | pgark | pgBackRest | pgark / pgBackRest |', '|---|---|---|---|');
  const row = (metric, a, b, ra) => out.push(`| ${metric} | ${a} | ${b} | ${ra} |`);
  const secRatio = (a, b) => f2(ratio(a?.ok ? a.secs : null, b?.ok ? b.secs : null));
  row(`archive drain of ${D('pgark')?.segments ?? D('pgbackrest')?.segments ?? SEGMENTS} segments, s`, secsCell(D('pgark')), secsCell(D('pgbackrest')), secRatio(D('pgark'), D('pgbackrest')));
  row('archive drain, segments/s', f1(segRate(D('pgark'))), f1(segRate(D('pgbackrest'))), f2(ratio(segRate(D('pgark')), segRate(D('pgbackrest')))));
  row('full backup, s', secsCell(B('pgark')), secsCell(B('pgbackrest')), secRatio(B('pgark'), B('pgbackrest')));
  row('restore, s', secsCell(R('pgark')), secsCell(R('pgbackrest')), secRatio(R('pgark'), R('pgbackrest')));
  row('drain peak RSS, MiB: one archive_command call (Σ all processes of the tool)', rssCell(D('pgark')), rssCell(D('pgbackrest')), f2(ratio(peakOf(D('pgark')), peakOf(D('pgbackrest')))));
  row('backup peak RSS, MiB (Σ process tree)', rssCell(B('pgark')), rssCell(B('pgbackrest')), f2(ratio(peakOf(B('pgark')), peakOf(B('pgbackrest')))));
  row('restore peak RSS, MiB (Σ process tree)', rssCell(R('pgark')), rssCell(R('pgbackrest')), f2(ratio(peakOf(R('pgark')), peakOf(R('pgbackrest')))));
  for (const [what, f] of [['drain', D], ['backup', B], ['restore', R]]) {
    const a = f('pgark');
    const b = f('pgbackrest');
    row(`${what}: requests received by the store`, reqCell(a?.requests), reqCell(b?.requests), f2(ratio(a?.requests?.total, b?.requests?.total)));
  }
  for (const [what, f] of [['drain', D], ['backup', B], ['restore', R]]) row(`${what}: requests pgark reports (PGARK_STORAGE_STATS=1)`, reportedCell(f('pgark')?.reported), '—', '');
  for (const [what, f] of [['drain', D], ['backup', B]]) {
    const a = f('pgark');
    const b = f('pgbackrest');
    const cell = (r) => (r?.stored ? `${fmtMB(r.stored.bytes)} (${r.stored.objects} objects)` : 'n/a');
    row(`${what}: bytes added to the store, MB`, cell(a), cell(b), f2(ratio(a?.stored?.bytes, b?.stored?.bytes)));
  }
  const rb = (r) => (r?.restored ? `${fmtMB(r.restored.bytes)} (${r.restored.files} files${r.restored.pgControl ? '' : ', NO global/pg_control'})` : statusOf(r) ?? 'n/a');
  row('restored data directory, MB', rb(R('pgark')), rb(R('pgbackrest')), '');
  out.push('');
  return out.join('\n');
}

function report(error) {
  const out = [MARKER, ''];
  out.push('## Environment', '', environmentLines({ started, startLoad, command: `node bench/remote-stores.mjs${argv.length ? ' ' + argv.join(' ') : ''}` }), '');
  out.push(`- s3rver ${pkgVersion('s3rver')} (\`node --openssl-legacy-provider\`), Azurite ${pkgVersion('azurite')} (blob), @aws-sdk/client-s3 ${pkgVersion('@aws-sdk/client-s3')}, @azure/storage-blob ${pkgVersion('@azure/storage-blob')}, ${runQuiet('/usr/bin/openssl', ['version'])}`, '');
  if (error) out.push(`**Run failed:** \`${String(error.message ?? error).split('\n')[0]}\` — results are partial.`, '');
  const ds = results.dataset;
  out.push(
    `Method: one PostgreSQL 15 cluster (\`initdb --data-checksums\`, ${Object.entries(results.pgConf ?? {})
      .filter(([k]) => ['shared_buffers', 'max_wal_size', 'synchronous_commit', 'autovacuum', 'wal_level', 'checkpoint_timeout'].includes(k))
      .map(([k, v]) => `${k}=${v}`)
      .join(' ')}) loaded with \`pgbench -i -s ${SCALE}\`${ds ? ` (database ${fmtMB(ds.dbBytes)} MB, ${ds.count} rows in pgbench_accounts, ${f1(ds.loadSecs)} s)` : ''}; ` +
      'both object stores run at the same time on loopback with TLS (self-signed certificate); every step below ran once, in the order ' +
      `${(results.order ?? []).join(', ')} (the first tool alternates between the stores): first all full backups (so that they copy exactly the pgbench dataset), then all restores, then all archive drains. ` +
      `Drain: per step a fresh backlog of ≥ ${SEGMENTS} \`.ready\` segments made with archive_command=/bin/false and \`pgbench ${BACKLOG_PGBENCH_ARGS.join(' ').replace('BULK@1', 'bulk.sql@1')}\`, then archive_command = the tool, timed from the SIGHUP until \`pg_stat_archiver\` shows the last segment archived. ` +
      `pgark \`wal-push\` with its defaults (look-ahead: --push-ahead 16 --jobs 4, lz4); pgBackRest \`archive-push\` with archive-async=y, process-max=${JOBS}, spool-path, compress-type=lz4. ` +
      `Backup: \`pgark backup --type full --jobs ${JOBS} --codec lz4\` vs \`pgbackrest --type=full backup\` (process-max=${JOBS}, compress-type=lz4, start-fast=y, page checksums verified), with archive_command = the tool's own push during its backup (a backup waits for its WAL). ` +
      `Restore: \`pgark restore latest --jobs ${JOBS}\` vs \`pgbackrest restore\` (process-max=${JOBS}) into an empty directory, only the restore command timed. Page cache warm; MB = 10^6 bytes, MiB = 2^20 bytes.`,
    '',
  );
  for (const s of results.stores) out.push(storeSection(s.name));
  out.push(
    'Peak RSS: for drains, `%M` of the largest single archive_command invocation (GNU time around each call), Σ = summed RSS of all the tool\'s processes of this run, detached workers included (pgark\'s look-ahead pusher, pgBackRest\'s async archive-push and its local processes), sampled every 100 ms; for backups and restores, `%M` of the largest process and Σ = summed RSS of the command\'s process tree. ' +
      'Requests received by the store: lines of the server\'s access log (s3rver\'s koa-logger, Azurite\'s access log) during the step, only the tool under test being active; L = list, H = HEAD, G = GET of an object, P = PUT (single-request uploads, multipart parts, Azure blocks and block lists), POST = multipart create/complete, D = DELETE. ' +
      'Requests pgark reports: the sum of the `{"pgarkStorageRequests":...}` lines printed by pgark processes (archive_command output lands in the server log). pgark\'s detached look-ahead worker runs with stdio ignored, so its requests are missing from the drain\'s reported sum; the store\'s count is the complete one. ' +
      'Bytes added: growth of the tool\'s prefix (`pgark/`, `pgbackrest/`) in the bucket/container, listed after each step.',
    '',
  );

  out.push('## Every step (execution order)', '');
  out.push('| step | result | wall s | CPU s | peak RSS MiB (%M) | Σ MiB | calls | store requests | load avg before |', '|---|---|---|---|---|---|---|---|---|');
  for (const r of results.steps) {
    const label = r.phase === 'drain' ? `${r.store} ${r.tool} drain (${r.segments} segments)` : r.label;
    out.push(`| ${label} | ${r.ok ? 'ok' : statusOf(r)} | ${f2(r.secs)} | ${f1(r.cpuSecs)} | ${fmtMiB(r.rssKiB)} | ${fmtMiB(r.treeKiB)} | ${r.calls ?? ''} | ${r.requests?.total ?? 'n/a'} | ${f1(r.load)} |`);
  }
  out.push('', 'CPU s for drains = user + system of the archive_command invocations (not of detached workers).', '');
  out.push('## Exact commands', '', 'Secrets are redacted (`***`); `$TMP` is the run\'s temp dir. Timed commands run as `postgres` under `/usr/bin/time -f \'%M %e %U %S\'`.', '');
  for (const s of results.stores) out.push(`- ${s.name} server: \`${s.command}\``, `- pgark on ${s.name}: \`--repo ${s.pgarkRepo}\` with \`${showEnv(s.pgarkEnv)}\``);
  if (results.serverEnv) out.push(`- environment of the postmaster (reaches archive_command): \`${showEnv(results.serverEnv)}\``);
  for (const r of results.steps) {
    if (r.phase === 'drain') out.push(`- ${r.store} ${r.tool} drain, archive_command: \`${r.command}\``);
    else {
      const env = r.tool === 'pgark' ? showEnv(r.env ?? {}) : '';
      out.push(`- ${r.label}: \`${env ? env + ' ' : ''}${r.command.replaceAll(tmpRoot, '$TMP')}\`${r.archiveCommand ? ` (archive_command: \`${r.archiveCommand}\`)` : ''}`);
    }
  }
  out.push('');
  for (const [name, text] of Object.entries(results.pgbrConfs ?? {})) out.push(`pgbackrest.conf for ${name} (mode 0600, owner postgres):`, '', '```ini', text.trim(), '```', '');
  if (results.backlogs.length) {
    out.push('Backlogs:', '', '| step | ready segments | range | pgbench seconds |', '|---|---|---|---|');
    for (const b of results.backlogs) out.push(`| ${b.label} | ${b.count} | ${b.first}..${b.last} | ${f1(b.genSecs)} |`);
    out.push('');
  }
  const notes = [...results.notes];
  for (const r of results.steps.filter((x) => !x.ok)) notes.push(`${r.label} ${statusOf(r)}${r.error ? `: ${r.error}` : ''}; output tail:\n${redactText((r.stderr || '(empty)').trim().slice(-2500))}`);
  for (const r of results.steps.filter((x) => x.ok && x.idle === false)) notes.push(`${r.label}: processes of ${r.tool} were still running 30 s after the step; request counts may be incomplete`);
  // A restore is one pgark process and nothing else talks to the store: both counts must agree.
  for (const r of results.steps.filter((x) => x.phase === 'restore' && x.tool === 'pgark' && x.ok && x.reported && x.requests && x.reported.total !== x.requests.total)) {
    notes.push(`${r.label}: pgark reported ${r.reported.total} requests (${JSON.stringify(r.reported)}), the store received ${r.requests.total} (${JSON.stringify(r.requests)}) from that one process`);
  }
  for (const r of results.steps.filter((x) => x.phase === 'drain' && x.ok && x.failedDelta)) notes.push(`${r.label}: pg_stat_archiver.failed_count rose by ${r.failedDelta} during the drain`);
  if (results.steps.some((x) => !x.ok) && results.pgbrLogTail) for (const [k, v] of Object.entries(results.pgbrLogTail)) notes.push(`pgBackRest async archive-push log tail (${k}):\n${v}`);
  if (notes.length) out.push('## Notes', '', ...notes.map((n) => '```\n' + n + '\n```'), '');
  return out.join('\n');
}

function runQuiet(cmd, args) {
  const r = spawnSyncImpl(cmd, args, { encoding: 'utf8' });
  return ((r.stdout || '') + (r.stderr || '')).trim();
}

// ---------------------------------------------------------------------------

let failure = null;
try {
  log(`temp dir ${tmpRoot}; stores ${STORES.join(', ')}; scale ${SCALE}; ${SEGMENTS} segments; budget ${TOTAL_BUDGET_MS / 1000} s; load average ${startLoad.map((l) => l.toFixed(2)).join(' ')}`);
  await runBench();
} catch (e) {
  failure = e;
  log(`FAILED: ${e.stack ?? e}`);
  for (const c of clusters) log(`--- ${c.name} log tail ---\n${c.logTail()}`);
} finally {
  await cleanup();
}

const md = report(failure);
console.log(md);
if (WRITE && results.steps.length) {
  writeGenerated(RESULTS, MARKER, md, 'Object stores: pgark vs pgBackRest on s3rver and Azurite');
  log(`wrote ${RESULTS}`);
}
process.exit(failure || results.steps.some((r) => !r.ok) ? 1 : 0);
