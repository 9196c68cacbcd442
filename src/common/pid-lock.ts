/**
 * Advisory locks as files holding the owner's pid, created with O_EXCL. A lock whose owner is
 * dead counts as free. bin/fast-path.cjs has the synchronous reader of the same files.
 */
import { open, readFile, rm } from 'node:fs/promises';
import { isProcessAlive } from './process.js';

export async function lockOwner(path: string): Promise<number | undefined> {
  const pid = Number.parseInt(await readFile(path, 'utf8').catch(() => ''), 10);
  return pid > 0 ? pid : undefined;
}

/** True when the lock file names a live process. */
export async function lockHeld(path: string): Promise<boolean> {
  const pid = await lockOwner(path);
  return pid !== undefined && isProcessAlive(pid);
}

/** Create the lock for `pid` (default: this process); false when a live owner holds it. */
export async function tryLock(path: string, pid: number = process.pid): Promise<boolean> {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fh = await open(path, 'wx', 0o600);
      try {
        await fh.writeFile(String(pid));
      } finally {
        await fh.close();
      }
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      if (await lockHeld(path)) return false;
      await rm(path, { force: true }); // left by a dead process
    }
  }
  return false;
}
