import { chmod, mkdir, open, rmdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { errnoOf } from './errors.js';

/** mkdir -p with 0700, then chmod what we created so the umask cannot widen it. */
export async function ensureDir(dir: string): Promise<void> {
  const first = await mkdir(dir, { recursive: true, mode: 0o700 });
  if (first === undefined) return;
  for (let p = dir; ; p = dirname(p)) {
    await chmod(p, 0o700);
    if (p === first || dirname(p) === p) break;
  }
}

/** Make a rename/link in `dir` durable. */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } catch (err) {
    // Some network and FUSE filesystems cannot fsync a directory; the data file itself was synced.
    const code = errnoOf(err);
    if (code !== 'EINVAL' && code !== 'ENOTSUP') throw err;
  } finally {
    await fh.close();
  }
}

/**
 * Remove `dir` and its ancestors while they are empty, stopping before `root`. Best effort:
 * a concurrent put re-creates what it needs (see FsDriver.openTemp).
 */
export async function removeEmptyDirs(root: string, dir: string, done: Set<string>): Promise<void> {
  for (let p = dir; p !== root && p.startsWith(root) && !done.has(p); p = dirname(p)) {
    done.add(p);
    try {
      await rmdir(p);
    } catch {
      return;
    }
  }
}
