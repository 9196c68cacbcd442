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
