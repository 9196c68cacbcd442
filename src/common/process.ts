import { readFileSync } from 'node:fs';

/**
 * True when a process with this pid exists and has not exited. EPERM means it exists but
 * belongs to another user. A zombie (exited, not yet reaped: common in containers whose init
 * does not reap orphans, such as detached pgark workers) counts as gone.
 */
export function isProcessAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true; // no /proc (not Linux): kill(0) is all we know
  }
}
