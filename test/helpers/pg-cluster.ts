/**
 * Integration-test harness: throwaway PostgreSQL clusters.
 *
 * - Server binaries are located with findPgBin() (PG_BINDIR, then the highest
 *   /usr/lib/postgresql/<N>/bin, then `pg_config --bindir`). Missing binaries are
 *   an error, never a skip.
 * - postgres refuses to run as root, so when the test process is root every
 *   server-side command (initdb, pg_ctl, pg_basebackup, archive_command via the
 *   server, ...) runs as the unprivileged OS user `postgres` (override with
 *   PGARK_TEST_PG_USER). Switching is done with `setpriv` (util-linux): it execs
 *   the target directly (no PAM, no tty, no intermediate process), so timeouts
 *   kill the real process. Client tools (psql, pgbench) run as the current user.
 * - Every spawn has a bounded timeout and an explicit environment (nothing
 *   PG*-related leaks in from the caller's environment).
 * - Every cluster and every makeSharedTempDir() directory is registered in a
 *   module-level set; destroyAllClusters() (call it from afterAll) tears them all
 *   down, and a process 'exit' hook makes a last synchronous attempt.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, chmodSync, rmSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

// ---------------------------------------------------------------------------
// Binaries
// ---------------------------------------------------------------------------

const INSTALL_HINT =
  'Install the PostgreSQL server binaries: `apt-get install -y postgresql-15` (Debian/Ubuntu; ' +
  'or run `scripts/install-deps.sh` / `.ci/run` which install everything the tests need), ' +
  'or point PG_BINDIR at a directory containing initdb, pg_ctl, postgres, psql, pgbench and pg_basebackup.';

function isServerBinDir(dir: string): boolean {
  return ['initdb', 'pg_ctl', 'postgres'].every((b) => existsSync(path.join(dir, b)));
}

let cachedBinDir: string | undefined;

/** Directory holding initdb/pg_ctl/postgres/psql/pgbench/pg_basebackup. Throws if absent. */
export function findPgBin(): string {
  if (cachedBinDir) return cachedBinDir;
  const fromEnv = process.env['PG_BINDIR'];
  if (fromEnv) {
    if (!isServerBinDir(fromEnv)) {
      throw new Error(`PG_BINDIR=${fromEnv} does not contain initdb, pg_ctl and postgres. ${INSTALL_HINT}`);
    }
    return (cachedBinDir = fromEnv);
  }
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    const versions = readdirSync(root)
      .filter((v) => /^\d+(\.\d+)?$/.test(v))
      .sort((a, b) => Number(b) - Number(a));
    for (const v of versions) {
      const dir = path.join(root, v, 'bin');
      if (isServerBinDir(dir)) return (cachedBinDir = dir);
    }
  }
  const pgConfig = spawnSync('pg_config', ['--bindir'], { encoding: 'utf8', timeout: 10_000 });
  if (pgConfig.status === 0) {
    const dir = pgConfig.stdout.trim();
    if (dir && isServerBinDir(dir)) return (cachedBinDir = dir);
  }
  throw new Error(`PostgreSQL server binaries (initdb, pg_ctl, postgres) not found. ${INSTALL_HINT}`);
}

function pgBin(name: string): string {
  return path.join(findPgBin(), name);
}

/** Major version of the located server binaries, e.g. 15. */
export function pgMajorVersion(): number {
  const out = spawnSync(pgBin('postgres'), ['--version'], { encoding: 'utf8', timeout: 10_000 });
  const m = /(\d+)(?:\.\d+)?/.exec(out.stdout ?? '');
  if (!m?.[1]) throw new Error(`cannot parse \`postgres --version\` output: ${out.stdout} ${out.stderr}`);
  return Number(m[1]);
}

// ---------------------------------------------------------------------------
// Users
// ---------------------------------------------------------------------------

export interface OsUser {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

const userCache = new Map<string, OsUser>();

export function lookupUser(name: string): OsUser {
  const hit = userCache.get(name);
  if (hit) return hit;
  const r = spawnSync('getent', ['passwd', name], { encoding: 'utf8', timeout: 10_000 });
  const fields = (r.stdout ?? '').trim().split(':');
  if (r.status !== 0 || fields.length < 6) {
    throw new Error(
      `OS user "${name}" not found (needed because postgres refuses to run as root). ` +
        `The Debian postgresql-15 package creates it: \`apt-get install -y postgresql-15\`, ` +
        `or create it: \`useradd --system --home-dir /var/lib/postgresql --shell /bin/bash ${name}\`.`,
    );
  }
  const u: OsUser = {
    name,
    uid: Number(fields[2]),
    gid: Number(fields[3]),
    home: fields[5] && existsSync(fields[5]) ? fields[5] : '/',
  };
  userCache.set(name, u);
  return u;
}

/**
 * The OS user server-side commands run as: 'postgres' (or $PGARK_TEST_PG_USER) when
 * the test process is root, otherwise null (= run as the current user).
 */
export function pgRunAsUser(): string | null {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return null;
  return process.env['PGARK_TEST_PG_USER'] || 'postgres';
}

/**
 * Make every ancestor of `p` traversable (o+x) so the run-as user can reach it.
 * Only when we are root and only adds the search bit (never read/write).
 */
export function makeAncestorsTraversable(p: string): void {
  if (pgRunAsUser() === null) return;
  let dir = path.dirname(path.resolve(p));
  for (;;) {
    try {
      const st = statSync(dir);
      if ((st.mode & 0o001) === 0) chmodSync(dir, (st.mode & 0o7777) | 0o001);
    } catch {
      /* ignore */
    }
    const parent = path.dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
}

async function chownRecursive(p: string, uid: number, gid: number): Promise<void> {
  await fsp.lchown(p, uid, gid);
  const st = await fsp.lstat(p);
  if (st.isDirectory()) {
    for (const e of await fsp.readdir(p)) await chownRecursive(path.join(p, e), uid, gid);
  }
}

// ---------------------------------------------------------------------------
// Spawning
// ---------------------------------------------------------------------------

export interface RunOptions {
  /**
   * OS user to run as. Default: pgRunAsUser() ('postgres' when root, else current user).
   * Pass null to force running as the current user.
   */
  user?: string | null;
  /** Extra environment, merged over the explicit base env (PATH, HOME, LANG, LC_MESSAGES, TZ). */
  env?: Record<string, string | undefined>;
  /** Also inherit process.env underneath the base env (default false). */
  inheritEnv?: boolean;
  /** Working directory (must be accessible to the user). Default '/'. */
  cwd?: string;
  /** Written to stdin (stdin is closed afterwards; /dev/null-like when omitted). */
  input?: string | Buffer;
  /** Kill (SIGKILL) and fail after this long. Default 120 s. */
  timeoutMs?: number;
  /** Resolve instead of throwing on non-zero exit. Default false. */
  allowFail?: boolean;
}

export interface RunResult {
  command: string;
  args: string[];
  user: string | null;
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export class CommandError extends Error {
  constructor(
    message: string,
    readonly result: RunResult,
  ) {
    super(message);
    this.name = 'CommandError';
  }
}

function baseEnv(user: OsUser | null): Record<string, string> {
  const env: Record<string, string> = {
    PATH: `${cachedBinDir ? cachedBinDir + ':' : ''}/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`,
    HOME: user ? user.home : (process.env['HOME'] ?? '/'),
    LANG: 'C.UTF-8',
    LC_MESSAGES: 'C',
  };
  if (user) {
    env['USER'] = user.name;
    env['LOGNAME'] = user.name;
  }
  if (process.env['TZ']) env['TZ'] = process.env['TZ'];
  return env;
}

function tail(s: string, max = 4000): string {
  return s.length > max ? '…' + s.slice(-max) : s;
}

/**
 * Spawn `cmd args` (as the postgres OS user when we are root, see RunOptions.user),
 * capture stdout/stderr, enforce a timeout, and throw a CommandError carrying
 * stdout/stderr on non-zero exit (unless allowFail).
 *
 * As root this runs: setpriv --reuid=<uid> --regid=<gid> --init-groups -- cmd args
 */
export function runAsUser(cmd: string, args: string[] = [], opts: RunOptions = {}): Promise<RunResult> {
  const userName = opts.user === undefined ? pgRunAsUser() : opts.user;
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const switchUser = userName !== null && isRoot && userName !== 'root';
  const user = switchUser ? lookupUser(userName) : null;
  const env: Record<string, string> = {
    ...(opts.inheritEnv ? (process.env as Record<string, string>) : {}),
    ...baseEnv(user),
  };
  for (const [k, v] of Object.entries(opts.env ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  const file = switchUser ? 'setpriv' : cmd;
  const argv = switchUser
    ? [`--reuid=${user!.uid}`, `--regid=${user!.gid}`, '--init-groups', '--', cmd, ...args]
    : args;
  const timeoutMs = opts.timeoutMs ?? 120_000;
  const display = [cmd, ...args].map(shellQuote).join(' ') + (switchUser ? `  (as ${userName})` : '');

  return new Promise<RunResult>((resolve, reject) => {
    const child = spawn(file, argv, {
      cwd: opts.cwd ?? '/',
      env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    let spawnError: Error | null = null;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.stdin.on('error', () => {
      /* EPIPE if the child exits early; the exit status tells the story */
    });
    child.on('error', (e) => {
      spawnError = e;
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const result: RunResult = {
        command: cmd,
        args,
        user: switchUser ? userName : null,
        code,
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      };
      const detail = `\n--- stdout ---\n${tail(result.stdout)}\n--- stderr ---\n${tail(result.stderr)}`;
      if (spawnError) {
        reject(new CommandError(`failed to spawn ${display}: ${spawnError.message}`, result));
      } else if (timedOut) {
        reject(new CommandError(`timed out after ${timeoutMs} ms: ${display}${detail}`, result));
      } else if (code !== 0 && !opts.allowFail) {
        reject(
          new CommandError(
            `command failed (${signal ? `signal ${signal}` : `exit code ${code}`}): ${display}${detail}`,
            result,
          ),
        );
      } else {
        resolve(result);
      }
    });
    if (opts.input !== undefined) child.stdin.end(opts.input);
    else child.stdin.end();
  });
}

// ---------------------------------------------------------------------------
// Quoting, pgark command line
// ---------------------------------------------------------------------------

/** POSIX-shell single-quote a word (left bare when it is obviously safe). */
export function shellQuote(s: string): string {
  if (s !== '' && /^[A-Za-z0-9_@%+=:,./-]+$/.test(s)) return s;
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Quote a value as a postgresql.conf string literal: 'value' with ' doubled. */
export function pgConfQuote(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

function findProjectRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(path.join(dir, 'bin', 'pgark.js')) && existsSync(path.join(dir, 'package.json'))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('cannot locate the project root (bin/pgark.js) from ' + import.meta.url);
    dir = parent;
  }
}

export const PROJECT_ROOT = findProjectRoot();
export const PGARK_BIN = path.join(PROJECT_ROOT, 'bin', 'pgark.js');

let pgarkAccessChecked = false;

/**
 * Make sure the run-as user can execute `node bin/pgark.js` (archive_command runs
 * as the postgres user). Adds o+x to the ancestors of the project dir when root.
 */
export function ensurePgarkAccessible(): void {
  if (pgarkAccessChecked) return;
  const userName = pgRunAsUser();
  if (userName !== null) {
    makeAncestorsTraversable(PGARK_BIN);
    const u = lookupUser(userName);
    makeAncestorsTraversable(process.execPath);
    const asUser = (cmd: string, args: string[]) =>
      spawnSync('setpriv', [`--reuid=${u.uid}`, `--regid=${u.gid}`, '--init-groups', '--', cmd, ...args], { timeout: 10_000 });
    if (asUser('test', ['-r', PGARK_BIN]).status !== 0) {
      throw new Error(
        `OS user ${userName} cannot read ${PGARK_BIN}; archive_command would fail. ` +
          `Make the checkout world-readable (umask 022, chmod -R o+rX ${PROJECT_ROOT}).`,
      );
    }
    // The runtime (node_modules/.bin/node under npm scripts) is what archive_command starts.
    if (asUser(process.execPath, ['-e', '0']).status !== 0) {
      throw new Error(`OS user ${userName} cannot run ${process.execPath}; archive_command would fail. Make it world-readable and executable.`);
    }
  }
  pgarkAccessChecked = true;
}

/** Pids of live pgark processes whose command line contains `text` (zombies have none). */
export function pgarkProcessesMentioning(text: string): number[] {
  const pids: number[] = [];
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue;
    let cmdline: string;
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
    } catch {
      continue;
    }
    if (cmdline.includes(PGARK_BIN) && cmdline.includes(text)) pids.push(Number(pid));
  }
  return pids;
}

/** SIGKILL every pgark process whose command line contains `text` (e.g. a data directory). */
export function killProcessesMentioning(text: string): number {
  let killed = 0;
  for (const pid of pgarkProcessesMentioning(text)) {
    try {
      process.kill(pid, 'SIGKILL');
      killed++;
    } catch {
      // already gone
    }
  }
  return killed;
}

/** argv prefix to run the CLI: [node, <abs>/bin/pgark.js]. */
export function pgarkCommand(): string[] {
  return [process.execPath, PGARK_BIN];
}

export interface PgarkShellCommandOptions {
  /** pgark subcommand and its positional args, e.g. ['wal-push', '%p']. */
  subcommand: string[];
  repo?: string;
  stanza?: string;
  /** Further options, appended as given (e.g. ['--compress', 'lz4']). */
  extraArgs?: string[];
  /** Environment assignments prefixed to the command (`env K=V ... node ...`). */
  env?: Record<string, string>;
}

/**
 * A POSIX-shell command line running pgark, e.g.
 *   /usr/bin/node /work/main/bin/pgark.js wal-push %p --repo /tmp/x --stanza main
 * %p / %f / %r placeholders are left untouched (they are shell-safe) for PostgreSQL to expand.
 * This is the raw value; PgCluster's `conf` quotes it for postgresql.conf.
 */
export function pgarkShellCommand(o: PgarkShellCommandOptions): string {
  ensurePgarkAccessible();
  const words = [...pgarkCommand(), ...o.subcommand];
  if (o.repo !== undefined) words.push('--repo', o.repo);
  if (o.stanza !== undefined) words.push('--stanza', o.stanza);
  words.push(...(o.extraArgs ?? []));
  const envPrefix = Object.entries(o.env ?? {}).map(([k, v]) => `${k}=${shellQuote(v)}`);
  return [...(envPrefix.length ? ['env', ...envPrefix] : []), ...words.map(shellQuote)].join(' ');
}

/** Raw archive_command value: `<node> <pgark.js> wal-push %p [--repo R] [--stanza S] ...`. */
export function archiveCommand(o: Omit<PgarkShellCommandOptions, 'subcommand'> = {}): string {
  return pgarkShellCommand({ ...o, subcommand: ['wal-push', '%p'] });
}

/** Raw restore_command value: `<node> <pgark.js> wal-fetch %f %p [--repo R] [--stanza S] ...`. */
export function restoreCommand(o: Omit<PgarkShellCommandOptions, 'subcommand'> = {}): string {
  return pgarkShellCommand({ ...o, subcommand: ['wal-fetch', '%f', '%p'] });
}

/** A full postgresql.conf line: `archive_command = '...'` (single quotes doubled). */
export function archiveCommandConfLine(o: Omit<PgarkShellCommandOptions, 'subcommand'> = {}): string {
  return `archive_command = ${pgConfQuote(archiveCommand(o))}`;
}

// ---------------------------------------------------------------------------
// Ports, temp dirs, registry
// ---------------------------------------------------------------------------

/** A TCP port that was free on 127.0.0.1 a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen({ port: 0, host: '127.0.0.1', exclusive: true }, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close((e) => (e ? reject(e) : port ? resolve(port) : reject(new Error('no port assigned'))));
    });
  });
}

const clusters = new Set<PgCluster>();
const sharedTempDirs = new Set<string>();

async function mkUserTempDir(prefix: string, baseDir?: string): Promise<string> {
  const base = baseDir ?? os.tmpdir();
  await fsp.mkdir(base, { recursive: true });
  const dir = await fsp.mkdtemp(path.join(base, prefix));
  const userName = pgRunAsUser();
  if (userName !== null) {
    makeAncestorsTraversable(path.join(dir, 'x'));
    const u = lookupUser(userName);
    await fsp.chown(dir, u.uid, u.gid);
  }
  await fsp.chmod(dir, 0o700);
  return dir;
}

/**
 * A fresh 0700 directory under os.tmpdir() owned by the run-as (postgres) user,
 * e.g. for a pgark repository written by archive_command and read by the tests
 * (root reads anything). Removed by destroyAllClusters() / removeSharedTempDir().
 */
export async function makeSharedTempDir(prefix = 'pgark-test-'): Promise<string> {
  installExitHooks();
  const dir = await mkUserTempDir(prefix);
  sharedTempDirs.add(dir);
  return dir;
}

export async function removeSharedTempDir(dir: string): Promise<void> {
  sharedTempDirs.delete(dir);
  await fsp.rm(dir, { recursive: true, force: true, maxRetries: 3 });
}

/** chown -R a path to the run-as user (no-op when not root). */
export async function chownToRunAs(p: string): Promise<void> {
  const userName = pgRunAsUser();
  if (userName === null) return;
  const u = lookupUser(userName);
  await chownRecursive(p, u.uid, u.gid);
}

/** Destroy every cluster created in this process and remove makeSharedTempDir() dirs. Use in afterAll. */
export async function destroyAllClusters(): Promise<void> {
  const errors: unknown[] = [];
  for (const c of [...clusters]) {
    try {
      await c.destroy();
    } catch (e) {
      errors.push(e);
    }
  }
  for (const d of [...sharedTempDirs]) {
    try {
      await removeSharedTempDir(d);
    } catch (e) {
      errors.push(e);
    }
  }
  if (errors.length) throw new AggregateError(errors, 'destroyAllClusters: some cleanups failed');
}

/** Last resort for clusters a test forgot to destroy: synchronous immediate stop + rm. */
function destroyAllSync(): void {
  for (const c of [...clusters]) c.destroySync();
  for (const d of [...sharedTempDirs]) {
    try {
      rmSync(d, { recursive: true, force: true });
    } catch {
      /* ignore */
    }
  }
  sharedTempDirs.clear();
}

let exitHooksInstalled = false;
/**
 * Installed on first use. vitest ends its fork workers with SIGTERM (so 'exit' alone
 * would not fire); on a signal we clean up and then re-raise it with default handling.
 */
function installExitHooks(): void {
  if (exitHooksInstalled) return;
  exitHooksInstalled = true;
  process.once('exit', destroyAllSync);
  const sigs = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const;
  const handlers = new Map<NodeJS.Signals, () => void>();
  for (const sig of sigs) {
    const handler = (): void => {
      destroyAllSync();
      for (const [s, h] of handlers) process.removeListener(s, h);
      process.kill(process.pid, sig);
    };
    handlers.set(sig, handler);
    process.once(sig, handler);
  }
}

/** True if `pid` exists at all (including as an unreaped zombie). */
function pidExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** True if `pid` exists and is not a zombie (unreaped zombies are common when PID 1 is not an init). */
function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return true;
  }
}

/** Child PIDs of `pid` (from /proc). */
function childPids(pid: number): number[] {
  const res: number[] = [];
  let entries: string[] = [];
  try {
    entries = readdirSync('/proc');
  } catch {
    return res;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      const afterComm = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(afterComm[1]) === pid) res.push(Number(e));
    } catch {
      /* raced with exit */
    }
  }
  return res;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------
// PgCluster
// ---------------------------------------------------------------------------

export interface PgClusterCreateOptions {
  /** Used in the temp dir name. */
  name?: string;
  dataChecksums?: boolean;
  /** initdb --wal-segsize (MB, power of two 1..1024). */
  walSegmentSizeMB?: number;
  /** postgresql.conf settings; values are raw and get quoted ('...', ' doubled). */
  conf?: Record<string, string>;
  /** Parent of the temp dir (default os.tmpdir()). */
  baseDir?: string;
  /** Extra initdb arguments. */
  initdbArgs?: string[];
}

export interface FromDataDirOptions {
  port?: number;
  name?: string;
  /** Settings merged over those found in the data dir's harness block. */
  conf?: Record<string, string>;
  /** destroy() also removes dataDir (default false). */
  ownsDataDir?: boolean;
  /** chown -R dataDir to the run-as user and chmod it 0700 (default true when root). */
  fixOwnership?: boolean;
  /** Write recovery.signal / standby.signal. */
  signal?: 'recovery' | 'standby';
  baseDir?: string;
}

export interface BasebackupOptions {
  /** -X method. Default 'fetch'. */
  walMethod?: 'none' | 'fetch' | 'stream';
  /** Appended to the pg_basebackup command line. */
  extraArgs?: string[];
  timeoutMs?: number;
}

export interface ArchiverStats {
  archived_count: number;
  last_archived_wal: string | null;
  failed_count: number;
  last_failed_wal: string | null;
}

const BLOCK_BEGIN = '# >>> pgark test harness settings (managed, rewritten) >>>';
const BLOCK_END = '# <<< pgark test harness settings <<<';

export class PgCluster {
  readonly host = '127.0.0.1';
  /** Name of the OS user the server runs as, or null for the current user. */
  readonly runAs: string | null;
  private settings = new Map<string, string>();
  private running = false;
  private destroyed = false;

  private constructor(
    /** Temp dir holding data/, the socket and the log. */
    readonly baseDir: string,
    readonly dataDir: string,
    private _port: number,
    private readonly ownsDataDir: boolean,
  ) {
    this.runAs = pgRunAsUser();
    installExitHooks();
    clusters.add(this);
  }

  get port(): number {
    return this._port;
  }
  get socketDir(): string {
    return this.baseDir;
  }
  get logFile(): string {
    return path.join(this.baseDir, 'postgres.log');
  }
  get isRunning(): boolean {
    return this.running;
  }
  /** libpq connection string (TCP). */
  get connString(): string {
    return `host=${this.host} port=${this.port} user=postgres dbname=postgres`;
  }
  /** Env for libpq clients (PGHOST/PGPORT/PGUSER/PGDATABASE). */
  clientEnv(db = 'postgres'): Record<string, string> {
    return { PGHOST: this.host, PGPORT: String(this.port), PGUSER: 'postgres', PGDATABASE: db };
  }

  static async create(opts: PgClusterCreateOptions = {}): Promise<PgCluster> {
    findPgBin();
    const safeName = (opts.name ?? 'pg').replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 20);
    const baseDir = await mkUserTempDir(`pgark-${safeName}-`, opts.baseDir);
    const dataDir = path.join(baseDir, 'data');
    const cluster = new PgCluster(baseDir, dataDir, await freePort(), true);
    try {
      const args = ['-D', dataDir, '-U', 'postgres', '--auth=trust', '--encoding=UTF8', '--locale=C', '--no-sync'];
      if (opts.dataChecksums) args.push('--data-checksums');
      if (opts.walSegmentSizeMB !== undefined) args.push(`--wal-segsize=${opts.walSegmentSizeMB}`);
      args.push(...(opts.initdbArgs ?? []));
      await runAsUser(pgBin('initdb'), args, { cwd: baseDir, timeoutMs: 120_000 });
      cluster.settings.set('listen_addresses', '127.0.0.1');
      cluster.settings.set('port', String(cluster.port));
      cluster.settings.set('unix_socket_directories', baseDir);
      cluster.settings.set('logging_collector', 'off');
      for (const [k, v] of Object.entries(opts.conf ?? {})) cluster.settings.set(k, v);
      await cluster.writeConf();
      return cluster;
    } catch (e) {
      await cluster.destroy().catch(() => undefined);
      throw e;
    }
  }

  /**
   * Wrap an existing data directory (e.g. a restored backup) so it can be started with
   * this helper. Port, socket dir and listen address are rewritten; other harness
   * settings found in the copied postgresql.conf are kept unless overridden by `conf`.
   */
  static async fromDataDir(dataDir: string, portOrOpts?: number | FromDataDirOptions): Promise<PgCluster> {
    const opts: FromDataDirOptions = typeof portOrOpts === 'number' ? { port: portOrOpts } : (portOrOpts ?? {});
    findPgBin();
    const abs = path.resolve(dataDir);
    if (!existsSync(path.join(abs, 'PG_VERSION'))) throw new Error(`${abs} is not a PostgreSQL data directory`);
    const safeName = (opts.name ?? 'copy').replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 20);
    const baseDir = await mkUserTempDir(`pgark-${safeName}-`, opts.baseDir);
    const cluster = new PgCluster(baseDir, abs, opts.port ?? (await freePort()), opts.ownsDataDir ?? false);
    try {
      if (cluster.runAs !== null && opts.fixOwnership !== false) {
        makeAncestorsTraversable(path.join(abs, 'x'));
        await chownToRunAs(abs);
      }
      await fsp.chmod(abs, 0o700);
      const confPath = path.join(abs, 'postgresql.conf');
      const existing = existsSync(confPath) ? await fsp.readFile(confPath, 'utf8') : '';
      for (const [k, v] of parseHarnessBlock(existing)) cluster.settings.set(k, v);
      cluster.settings.set('listen_addresses', '127.0.0.1');
      cluster.settings.set('port', String(cluster.port));
      cluster.settings.set('unix_socket_directories', baseDir);
      for (const [k, v] of Object.entries(opts.conf ?? {})) cluster.settings.set(k, v);
      await cluster.writeConf();
      if (opts.signal) await cluster.writeDataFile(`${opts.signal}.signal`, '');
      return cluster;
    } catch (e) {
      await cluster.destroy().catch(() => undefined);
      throw e;
    }
  }

  /** Current harness-managed settings (raw values). */
  getConf(): Record<string, string> {
    return Object.fromEntries(this.settings);
  }

  /** Merge settings (raw values; undefined removes) and rewrite postgresql.conf. Does not reload. */
  async setConf(settings: Record<string, string | undefined>): Promise<void> {
    for (const [k, v] of Object.entries(settings)) {
      if (v === undefined) this.settings.delete(k);
      else this.settings.set(k, v);
    }
    await this.writeConf();
  }

  /** Write a file into the data dir owned by the run-as user (e.g. recovery.signal). */
  async writeDataFile(rel: string, content: string): Promise<string> {
    const p = path.join(this.dataDir, rel);
    await fsp.writeFile(p, content, { mode: 0o600 });
    await this.chownPath(p);
    return p;
  }

  private async chownPath(p: string): Promise<void> {
    if (this.runAs === null) return;
    const u = lookupUser(this.runAs);
    await fsp.chown(p, u.uid, u.gid);
  }

  private async writeConf(): Promise<void> {
    const confPath = path.join(this.dataDir, 'postgresql.conf');
    const existing = existsSync(confPath) ? await fsp.readFile(confPath, 'utf8') : '';
    const stripped = stripHarnessBlock(existing).replace(/\n*$/, '\n');
    const lines = [...this.settings].map(([k, v]) => `${k} = ${pgConfQuote(v)}`);
    await fsp.writeFile(confPath, `${stripped}\n${BLOCK_BEGIN}\n${lines.join('\n')}\n${BLOCK_END}\n`, {
      mode: 0o600,
    });
    await this.chownPath(confPath);
  }

  /**
   * Environment for the postmaster (and so for archive_command/restore_command), e.g. storage
   * credentials, which must not be written into the command line. Applies from the next start.
   */
  serverEnv: Record<string, string> = {};

  /** Run a server-side tool from the bin dir as the run-as user. */
  runServerTool(tool: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
    return runAsUser(pgBin(tool), args, { cwd: this.baseDir, ...opts });
  }

  private pidFilePid(): number | null {
    try {
      const first = readFileSync(path.join(this.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0];
      const pid = Number(first);
      return Number.isInteger(pid) && pid > 0 ? pid : null;
    } catch {
      return null;
    }
  }

  /** PID of the running postmaster, or null. */
  postmasterPid(): number | null {
    const pid = this.pidFilePid();
    return pid !== null && pidAlive(pid) ? pid : null;
  }

  /** Tail of the server log. */
  async readLog(maxChars = 20_000): Promise<string> {
    try {
      return tail(await fsp.readFile(this.logFile, 'utf8'), maxChars);
    } catch {
      return '';
    }
  }

  /**
   * pg_ctl start -w. If the port was taken in the meantime, picks a new port and retries.
   */
  async start(opts: { timeoutSec?: number } = {}): Promise<void> {
    if (this.destroyed) throw new Error('cluster was destroyed');
    const timeoutSec = opts.timeoutSec ?? 90;
    for (let attempt = 1; ; attempt++) {
      const logBefore = await fsp.stat(this.logFile).then((s) => s.size, () => 0);
      const r = await this.runServerTool(
        'pg_ctl',
        ['-D', this.dataDir, '-l', this.logFile, '-w', '-t', String(timeoutSec), 'start'],
        { allowFail: true, timeoutMs: (timeoutSec + 30) * 1000, env: this.serverEnv },
      );
      if (r.code === 0) {
        this.running = true;
        return;
      }
      const log = await fsp.readFile(this.logFile, 'utf8').then((s) => s.slice(logBefore), () => '');
      if (attempt < 5 && /could not bind|Address already in use|could not create any TCP\/IP sockets/.test(log)) {
        this._port = await freePort();
        this.settings.set('port', String(this._port));
        await this.writeConf();
        continue;
      }
      throw new Error(
        `pg_ctl start failed (exit ${r.code}) for ${this.dataDir}\n--- pg_ctl stdout ---\n${tail(r.stdout)}` +
          `\n--- pg_ctl stderr ---\n${tail(r.stderr)}\n--- server log (${this.logFile}) ---\n${tail(log)}`,
      );
    }
  }

  /** pg_ctl stop -m <mode> -w. No-op when not running. */
  async stop(mode: 'smart' | 'fast' | 'immediate' = 'fast'): Promise<void> {
    if (this.postmasterPid() === null) {
      this.running = false;
      return;
    }
    await this.runServerTool('pg_ctl', ['-D', this.dataDir, '-m', mode, '-w', '-t', '90', 'stop'], {
      timeoutMs: 120_000,
    });
    this.running = false;
  }

  /** pg_ctl restart (fast). */
  async restart(): Promise<void> {
    await this.stop('fast');
    await this.start();
  }

  /** pg_ctl reload (SIGHUP). */
  async reload(): Promise<void> {
    await this.runServerTool('pg_ctl', ['-D', this.dataDir, 'reload'], { timeoutMs: 30_000 });
  }

  /**
   * SIGKILL the postmaster (crash simulation), then wait (up to 15 s) for its children to
   * notice and exit so the data dir can be started again; stragglers get SIGKILL too.
   */
  async kill9(): Promise<void> {
    const pid = this.postmasterPid();
    this.running = false;
    if (pid === null) return;
    const children = childPids(pid);
    process.kill(pid, 'SIGKILL');
    const deadline = Date.now() + 15_000;
    const alive = () => [pid, ...children].filter(pidAlive);
    while (alive().length && Date.now() < deadline) await sleep(50);
    for (const p of alive()) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    const deadline2 = Date.now() + 5_000;
    while (alive().length && Date.now() < deadline2) await sleep(50);
    // The server refuses to start while the old postmaster PID still exists, and a zombie
    // counts (kill(pid, 0) succeeds). Normally PID 1 reaps it quickly; if it does not
    // (container without an init), the stale postmaster.pid is removed instead.
    const deadline3 = Date.now() + 10_000;
    while (pidExists(pid) && Date.now() < deadline3) await sleep(50);
    if (pidExists(pid) && !pidAlive(pid) && this.pidFilePid() === pid) {
      await fsp.rm(path.join(this.dataDir, 'postmaster.pid'), { force: true });
    }
  }

  /**
   * psql -X -A -t -q -v ON_ERROR_STOP=1 against this cluster; `sql` is fed on stdin (so
   * multiple statements each print their result). Returns trimmed stdout; throws with stderr.
   * Rows are newline-separated, columns '|'-separated.
   */
  async psql(sql: string, db = 'postgres', opts: { timeoutMs?: number } = {}): Promise<string> {
    const r = await runAsUser(pgBin('psql'), ['-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1', '-f', '-'], {
      user: null,
      env: this.clientEnv(db),
      input: sql,
      timeoutMs: opts.timeoutMs ?? 60_000,
    });
    return r.stdout.trim();
  }

  /** Run pgbench against this cluster (connection via PGHOST/PGPORT/PGUSER/PGDATABASE). */
  async pgbench(args: string[], opts: { db?: string; timeoutMs?: number } = {}): Promise<RunResult> {
    return runAsUser(pgBin('pgbench'), args, {
      user: null,
      env: this.clientEnv(opts.db ?? 'postgres'),
      timeoutMs: opts.timeoutMs ?? 300_000,
    });
  }

  /** `SELECT pg_walfile_name(pg_switch_wal())`: the name of the segment just completed. */
  async switchWal(): Promise<string> {
    return this.psql('SELECT pg_walfile_name(pg_switch_wal())');
  }

  async archiverStats(): Promise<ArchiverStats> {
    const row = await this.psql(
      "SELECT archived_count, coalesce(last_archived_wal, ''), failed_count, coalesce(last_failed_wal, '') FROM pg_stat_archiver",
    );
    const [a, b, c, d] = row.split('|');
    return {
      archived_count: Number(a),
      last_archived_wal: b ? b : null,
      failed_count: Number(c),
      last_failed_wal: d ? d : null,
    };
  }

  /**
   * Poll pg_stat_archiver until last_archived_wal >= walFileName (segment names compare by
   * their 24-hex prefix; other names such as history files must match exactly).
   */
  async waitForArchived(walFileName: string, timeoutMs = 30_000): Promise<ArchiverStats> {
    const deadline = Date.now() + timeoutMs;
    const seg = /^[0-9A-F]{24}$/.test(walFileName);
    let stats: ArchiverStats | undefined;
    for (;;) {
      stats = await this.archiverStats();
      const last = stats.last_archived_wal;
      if (last) {
        const lastSeg = /^[0-9A-F]{24}/.exec(last)?.[0];
        if (seg ? lastSeg !== undefined && lastSeg >= walFileName : last === walFileName) return stats;
      }
      if (Date.now() >= deadline) break;
      await sleep(100);
    }
    throw new Error(
      `WAL ${walFileName} not archived within ${timeoutMs} ms; pg_stat_archiver=${JSON.stringify(stats)}` +
        `\n--- server log tail ---\n${await this.readLog(6000)}`,
    );
  }

  /**
   * pg_basebackup into targetDir (created and chowned to the run-as user), as the run-as
   * user, with --checkpoint=fast and -X <walMethod> (default fetch).
   */
  async basebackup(targetDir: string, opts: BasebackupOptions | string[] = {}): Promise<RunResult> {
    const o: BasebackupOptions = Array.isArray(opts) ? { extraArgs: opts } : opts;
    await fsp.mkdir(targetDir, { recursive: true, mode: 0o700 });
    if (this.runAs !== null) {
      makeAncestorsTraversable(path.join(targetDir, 'x'));
      await this.chownPath(targetDir);
    }
    await fsp.chmod(targetDir, 0o700);
    return this.runServerTool(
      'pg_basebackup',
      [
        '-D',
        targetDir,
        '-h',
        this.host,
        '-p',
        String(this.port),
        '-U',
        'postgres',
        '-X',
        o.walMethod ?? 'fetch',
        '--checkpoint=fast',
        '--no-password',
        ...(o.extraArgs ?? []),
      ],
      { timeoutMs: o.timeoutMs ?? 300_000 },
    );
  }

  /** Stop (immediate) if running and remove the temp dir (and dataDir when owned). Idempotent. */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    try {
      if (this.postmasterPid() !== null) {
        await this.runServerTool('pg_ctl', ['-D', this.dataDir, '-m', 'immediate', '-w', '-t', '30', 'stop'], {
          allowFail: true,
          timeoutMs: 45_000,
        }).catch(() => undefined);
        if (this.postmasterPid() !== null) await this.kill9();
      }
      this.running = false;
      // Detached pgark workers (look-ahead pushes, prefetch) started for this cluster name its
      // data directory in their argv; stop them before their directories disappear.
      killProcessesMentioning(this.dataDir);
      if (this.ownsDataDir) await fsp.rm(this.dataDir, { recursive: true, force: true, maxRetries: 3 });
      await fsp.rm(this.baseDir, { recursive: true, force: true, maxRetries: 3 });
    } finally {
      clusters.delete(this);
    }
  }

  /** Synchronous best-effort destroy (process exit hook). */
  destroySync(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    clusters.delete(this);
    try {
      if (this.postmasterPid() !== null) {
        const user = this.runAs ? lookupUser(this.runAs) : null;
        const argv = ['-D', this.dataDir, '-m', 'immediate', '-w', '-t', '10', 'stop'];
        if (user) {
          spawnSync('setpriv', [`--reuid=${user.uid}`, `--regid=${user.gid}`, '--init-groups', '--', pgBin('pg_ctl'), ...argv], {
            timeout: 15_000,
            stdio: 'ignore',
            cwd: '/',
            env: baseEnv(user),
          });
        } else {
          spawnSync(pgBin('pg_ctl'), argv, { timeout: 15_000, stdio: 'ignore', env: baseEnv(null) });
        }
        const pid = this.postmasterPid();
        if (pid !== null) process.kill(pid, 'SIGKILL');
      }
      if (this.ownsDataDir) rmSync(this.dataDir, { recursive: true, force: true });
      rmSync(this.baseDir, { recursive: true, force: true });
    } catch {
      /* best effort */
    }
  }
}

function stripHarnessBlock(conf: string): string {
  const start = conf.indexOf(BLOCK_BEGIN);
  if (start < 0) return conf;
  const end = conf.indexOf(BLOCK_END, start);
  return conf.slice(0, start) + (end < 0 ? '' : conf.slice(end + BLOCK_END.length));
}

function parseHarnessBlock(conf: string): Map<string, string> {
  const m = new Map<string, string>();
  const start = conf.indexOf(BLOCK_BEGIN);
  if (start < 0) return m;
  const end = conf.indexOf(BLOCK_END, start);
  const body = conf.slice(start + BLOCK_BEGIN.length, end < 0 ? undefined : end);
  for (const line of body.split('\n')) {
    const mm = /^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*=\s*'((?:[^']|'')*)'\s*$/.exec(line);
    if (mm?.[1] !== undefined && mm[2] !== undefined) m.set(mm[1], mm[2].replace(/''/g, "'"));
  }
  return m;
}

/** libpq environment for a cluster through its Unix socket directory, as user and database postgres. */
/** Wait until `c` is out of recovery (promoted); the server log's tail in the error otherwise. */
export async function waitPromoted(c: PgCluster, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if ((await c.psql('SELECT pg_is_in_recovery()').catch(() => 't')) === 'f') return;
    if (Date.now() > deadline) throw new Error(`recovery did not end within ${timeoutMs} ms\n--- server log ---\n${await c.readLog(8000)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

export function connEnv(c: PgCluster): Record<string, string> {
  return { PGHOST: c.socketDir, PGPORT: String(c.port), PGUSER: 'postgres', PGDATABASE: 'postgres' };
}
