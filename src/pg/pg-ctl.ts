/**
 * Running PostgreSQL's programs (pg_ctl start/stop/promote, pg_waldump, pg_amcheck) with a bound
 * on every call, and reading postmaster.pid. Programs are found with pg-bin.ts; pg_ctl must be
 * of the data directory's major version.
 */
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError, isNodeError, PgarkError } from '../common/errors.js';
import { isProcessAlive } from '../common/process.js';
import { requirePgProgram } from './pg-bin.js';

export interface ProgramResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** stdout (its last `keepBytes` when longer). */
  stdout: string;
  /** The last 64 KiB of stderr. */
  stderr: string;
  timedOut: boolean;
}

export interface RunProgramOptions {
  timeoutMs: number;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Called for every complete stdout line (pg_waldump output can be large). */
  onLine?: (line: string) => void;
  /** How much of stdout to keep (default 1 MiB, the tail). */
  keepBytes?: number;
}

const tailOf = (s: string, max: number) => (s.length > max ? s.slice(s.length - max) : s);

/** Run `program args`, killed (SIGKILL) after `timeoutMs`; never throws for a non-zero exit. */
export function runProgram(program: string, args: string[], o: RunProgramOptions): Promise<ProgramResult> {
  const keep = o.keepBytes ?? 1024 * 1024;
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, { env: o.env ?? process.env, cwd: o.cwd ?? '/', stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let partial = '';
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, o.timeoutMs);
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (d: string) => {
      stdout = tailOf(stdout + d, keep);
      if (o.onLine) {
        const lines = (partial + d).split('\n');
        partial = lines.pop() ?? '';
        for (const l of lines) o.onLine(l);
      }
    });
    child.stderr.on('data', (d: string) => {
      stderr = tailOf(stderr + d, 64 * 1024);
    });
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new PgarkError(`unable to run '${program}': ${err.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (o.onLine && partial !== '') o.onLine(partial);
      resolve({ code, signal, stdout, stderr, timedOut });
    });
  });
}

/** Major version a PostgreSQL program reports (`pg_ctl (PostgreSQL) 15.8` -> 15). */
export async function programMajor(program: string): Promise<number> {
  const r = await runProgram(program, ['--version'], { timeoutMs: 10_000 });
  const m = /\(PostgreSQL\)\s+(\d+)/.exec(r.stdout);
  if (r.code !== 0 || !m) throw new PgarkError(`unable to run '${program} --version': ${(r.stderr || r.stdout).trim().slice(0, 300) || `exit ${r.code}`}`);
  return Number(m[1]);
}

/** pg_ctl of PostgreSQL `major`; a ConfigError when only another version is installed. */
export async function findPgCtl(major: number): Promise<string> {
  const pgCtl = requirePgProgram('pg_ctl', major);
  const found = await programMajor(pgCtl);
  if (found !== major) {
    throw new ConfigError(`'${pgCtl}' is PostgreSQL ${found}, the data directory needs ${major}: install postgresql-${major} or set PGARK_PG_BINDIR to its bin directory`);
  }
  return pgCtl;
}

/** PostgreSQL refuses to run as root: say so before anything is written. */
export function assertNotRoot(what: string): void {
  if (typeof process.getuid === 'function' && process.getuid() === 0) {
    throw new ConfigError(`${what}: PostgreSQL refuses to run as root; run pgark as the OS user that owns the data directory (for example: sudo -u postgres pgark ...)`);
  }
}

export interface PostmasterPid {
  pid: number;
  dataDir: string;
  startTime: number;
  port: number;
  /** First unix_socket_directories entry ('' when there is none). */
  socketDir: string;
  /** First listen_addresses entry ('' when there is none). */
  listenAddress: string;
  /** 'starting', 'stopping', 'ready' or 'standby' (PostgreSQL 10+). */
  status: string;
}

/**
 * postmaster.pid: pid, data directory, start time, port, socket directory, listen address,
 * shared memory key, status. undefined when incomplete (being written) or not one.
 */
export function parsePostmasterPid(text: string): PostmasterPid | undefined {
  const l = text.split('\n');
  const pid = Number(l[0]);
  const port = Number(l[3]);
  if (!Number.isInteger(pid) || pid <= 0 || l.length < 6 || !Number.isInteger(port) || port <= 0) return undefined;
  return {
    pid, dataDir: l[1] ?? '', startTime: Number(l[2]), port, socketDir: (l[4] ?? '').trim(), listenAddress: (l[5] ?? '').trim(), status: (l[7] ?? '').trim(),
  };
}

export async function readPostmasterPid(pgdata: string): Promise<PostmasterPid | undefined> {
  try {
    return parsePostmasterPid(await readFile(join(pgdata, 'postmaster.pid'), 'utf8'));
  } catch (err) {
    if (isNodeError(err, 'ENOENT')) return undefined;
    throw err;
  }
}

/** The pid of the live postmaster of `pgdata`, or undefined. */
export async function runningPostmaster(pgdata: string): Promise<number | undefined> {
  const p = await readPostmasterPid(pgdata).catch(() => undefined);
  return p && isProcessAlive(p.pid) ? p.pid : undefined;
}

const detail = (r: ProgramResult) => (r.timedOut ? 'timed out' : (r.stderr || r.stdout).trim().split('\n').slice(-5).join(' / ') || `exit ${r.code}`);

/** `pg_ctl start -D pgdata -l logFile -w -t timeoutSec`. */
export async function pgCtlStart(pgCtl: string, o: { pgdata: string; logFile: string; timeoutSec: number; env?: NodeJS.ProcessEnv }): Promise<ProgramResult> {
  return runProgram(pgCtl, ['start', '-D', o.pgdata, '-l', o.logFile, '-w', '-t', String(o.timeoutSec)], {
    timeoutMs: (o.timeoutSec + 30) * 1000, ...(o.env ? { env: o.env } : {}),
  });
}

/** `pg_ctl promote -D pgdata -w -t timeoutSec`; PgarkError with pg_ctl's words when it fails. */
export async function pgCtlPromote(pgCtl: string, pgdata: string, timeoutSec: number): Promise<void> {
  const r = await runProgram(pgCtl, ['promote', '-D', pgdata, '-w', '-t', String(timeoutSec)], { timeoutMs: (timeoutSec + 30) * 1000 });
  if (r.code !== 0) throw new PgarkError(`pg_ctl promote -D ${pgdata} failed: ${detail(r)}`);
}

/**
 * Stop the server of `pgdata` for sure: pg_ctl stop -m fast (bounded), then -m immediate, then
 * SIGKILL of the postmaster. Returns how it ended; a server already down is 'not running'.
 */
export async function stopServer(pgCtl: string, pgdata: string, fastTimeoutSec = 60): Promise<'fast' | 'immediate' | 'killed' | 'not running'> {
  if ((await runningPostmaster(pgdata)) === undefined) return 'not running';
  for (const [mode, t] of [['fast', fastTimeoutSec], ['immediate', 30]] as const) {
    const r = await runProgram(pgCtl, ['stop', '-D', pgdata, '-m', mode, '-w', '-t', String(t)], { timeoutMs: (t + 15) * 1000 });
    if (r.code === 0 || (await runningPostmaster(pgdata)) === undefined) return mode;
  }
  const pid = await runningPostmaster(pgdata);
  if (pid === undefined) return 'immediate';
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone meanwhile
  }
  const end = Date.now() + 15_000;
  while (isProcessAlive(pid) && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
  if (isProcessAlive(pid)) throw new PgarkError(`unable to stop the server of '${pgdata}' (pid ${pid})`);
  return 'killed';
}
