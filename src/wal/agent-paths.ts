/** Where the archive agent keeps its state, under `<pg_wal>/.pgark/agent/` (pure). */
import { join } from 'node:path';

export function agentDir(walDir: string): string {
  return join(walDir, '.pgark', 'agent');
}
/** The agent's JSON status, rewritten after every round (read by `pgark info --pgdata`). */
export function agentStatusPath(walDir: string): string {
  return join(agentDir(walDir), 'status.json');
}
/** The agent's pid lock: one agent per data directory; wal-push starts no look-ahead worker while it is held. */
export function agentPidPath(walDir: string): string {
  return join(agentDir(walDir), 'agent.pid');
}
