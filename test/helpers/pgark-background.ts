/** Run a long-running pgark command (agent, receive) in the background as the PostgreSQL OS user. */
import { spawn, type ChildProcess } from 'node:child_process';
import { lookupUser, PGARK_BIN, pgRunAsUser } from './pg-cluster.js';

export type BackgroundPgark = ChildProcess & { output: () => string; stdout: () => string; exited: Promise<number | null> };

export function startPgark(args: string[], env: Record<string, string> = {}): BackgroundPgark {
  const runAs = pgRunAsUser();
  const isRoot = process.getuid?.() === 0;
  const user = runAs && isRoot ? lookupUser(runAs) : null;
  const childEnv = { PATH: '/usr/local/bin:/usr/bin:/bin', HOME: user?.home ?? '/tmp', LANG: 'C.UTF-8', ...env };
  const all = [PGARK_BIN, ...args];
  const child = user
    ? spawn('setpriv', [`--reuid=${user.uid}`, `--regid=${user.gid}`, '--init-groups', '--', process.execPath, ...all], { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn(process.execPath, all, { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let stdout = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
    stdout += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return Object.assign(child, { output: () => out, stdout: () => stdout, exited });
}

/** Stop it with `signal` and wait (at most 30 s) for it to exit; returns the exit code. */
export async function stopPgark(p: BackgroundPgark, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
  if (p.exitCode !== null || p.signalCode !== null) return p.exitCode;
  p.kill(signal);
  return Promise.race([p.exited, new Promise<null>((r) => setTimeout(() => r(null), 30_000))]);
}
