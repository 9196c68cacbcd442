/**
 * The wake-up FIFO of the push records directory, `<pg_wal>/.pgark/pushed/.wake`: a
 * bin/pgark-wal-push call that waits for a segment's record blocks in `read` on it instead of
 * polling with a `sleep` process per poll. Whoever writes a record (the agent, a look-ahead
 * worker) drops the segment's lock and then calls wakePushWaiters: one newline into the FIFO when
 * a reader is there, nothing otherwise (non-blocking: a full pipe or no reader is ignored). The
 * caller bounds its own wait with a timer (see bin/pgark-wal-push), so a missed or lost wake-up
 * costs latency, never an answer.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, constants, lstatSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { log } from '../common/log.js';

export function pushWakePath(recordDir: string): string {
  return join(recordDir, '.wake');
}

/**
 * Make the FIFO (mode 0600, in the 0700 records directory) unless it exists. Node has no mkfifo:
 * coreutils' mkfifo, once per agent start. Without it the shell client polls as before.
 */
export function ensurePushWake(recordDir: string): boolean {
  const path = pushWakePath(recordDir);
  try {
    if (lstatSync(path).isFIFO()) return true;
    log.warn(`'${path}' is not a FIFO: archive_command calls that wait for a record poll instead`);
    return false;
  } catch {
    // absent: make it
  }
  const r = spawnSync('mkfifo', ['-m', '600', path], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  if (r.status !== 0) {
    log.debug(`mkfifo '${path}' failed (${r.error?.message ?? r.stderr.trim()}): archive_command calls that wait for a record poll instead`);
    return false;
  }
  return true;
}

/** Wake a call waiting on the FIFO (after a record was written and its lock dropped). Synchronous: three syscalls, none blocks. */
export function wakePushWaiters(recordDir: string): void {
  let fd: number;
  try {
    // ENXIO: nobody waits; ENOENT: no FIFO. O_NONBLOCK: never waits for a reader.
    fd = openSync(pushWakePath(recordDir), constants.O_WRONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW);
  } catch {
    return;
  }
  try {
    writeSync(fd, '\n');
  } catch {
    // EAGAIN: the pipe is full of wake-ups already
  } finally {
    closeSync(fd);
  }
}
