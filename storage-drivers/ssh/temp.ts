/**
 * Temp names of in-progress puts on the SSH server (pure).
 *
 * Same shape as the fs driver's (`<basename>.pgark-tmp-<pid>-<hex>`, storage-drivers/temp-names.ts)
 * so that a repository copied with rsync and opened with the fs driver never lists them. The pid
 * field is always 0: a client pid means nothing on the server, and the fs driver's dead-writer
 * cleanup (which checks pids on its own host) leaves pid 0 alone, so a pgark running the fs
 * driver on the backup server never removes an SSH client's in-progress temp file. Leftovers of
 * dead SSH writers are removed by age instead (SshDriver.sweep).
 */
import { randomBytes } from 'node:crypto';
import { posix } from 'node:path';
import { isTempName, tempStem } from '../temp-names.js';

export { isTempName };

/** `<basename>.pgark-tmp-0-<hex>` next to `finalPath` (a server path). */
export function sshTempPathFor(finalPath: string): string {
  const stem = tempStem(finalPath);
  return posix.join(posix.dirname(finalPath), `${stem}0-${randomBytes(8).toString('hex')}`);
}

/** Leftover temp files older than this are removed by sweep (see docs/storage/ssh.md). */
export function sweepMinAgeMs(timeoutMs: number): number {
  return Math.max(60 * 60_000, 2 * timeoutMs);
}
