/** Run the pgark CLI in tests, as the PostgreSQL OS user when we are root. */
import { PGARK_BIN, runAsUser, type RunResult } from './pg-cluster.js';

export interface PgarkRunOptions {
  allowFail?: boolean;
  env?: Record<string, string>;
  cwd?: string;
  timeoutMs?: number;
}

export async function pgark(args: string[], o: PgarkRunOptions = {}): Promise<RunResult> {
  return runAsUser(process.execPath, [PGARK_BIN, ...args], {
    allowFail: o.allowFail ?? false,
    env: o.env ?? {},
    cwd: o.cwd ?? '/',
    timeoutMs: o.timeoutMs ?? 120_000,
  });
}

export async function pgarkJson<T>(args: string[], o: PgarkRunOptions = {}): Promise<T> {
  const r = await pgark([...args, '--json'], o);
  return JSON.parse(r.stdout) as T;
}

/** Run the pgark CLI and fail with its output's tail unless it exits 0. */
export async function pgarkOk(args: string[], env: Record<string, string>, timeoutMs = 240_000): Promise<RunResult> {
  const r = await pgark(args, { env, timeoutMs, allowFail: true });
  if (r.code !== 0) throw new Error(`pgark ${args.join(' ')} exited ${r.code}\n--- stdout ---\n${r.stdout.slice(-4000)}\n--- stderr ---\n${r.stderr.slice(-6000)}`);
  return r;
}
