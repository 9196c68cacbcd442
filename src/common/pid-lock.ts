/**
 * Advisory locks as files holding the owner's pid, created with O_EXCL. A lock whose owner is
 * dead counts as free. bin/fast-path.cjs has the synchronous reader of the same files.
 */
import { randomBytes } from 'node:crypto';
import { statSync } from 'node:fs';
import { link, open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
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

/** An exclusive lock held by this process (acquirePidLock). */
export interface HeldPidLock {
  readonly path: string;
  /** True while the lock file is still the one this process created (not removed or replaced). */
  owns(): boolean;
  /** Remove the lock file if it is still ours. Idempotent. */
  release(): Promise<void>;
}

const TAKEOVER_ATTEMPTS = 5;

/**
 * Take the lock at `path` for this process, or learn who holds it. Unlike tryLock, the pid is in
 * the file before it appears (written to a temp file, then hard-linked into place, which fails
 * when the lock exists), and a dead holder's file is replaced without a window in which two
 * processes both believe they took it over: the stale file is renamed aside and only counts as
 * removed if the renamed inode is the one judged dead; a live lock moved aside by a racing taker
 * is linked back. `owns()` compares the lock file's inode and mtime with ours, so a holder
 * notices when its file was removed or replaced.
 */
export async function acquirePidLock(path: string): Promise<{ lock: HeldPidLock } | { owner: number }> {
  const tag = `${process.pid}.${randomBytes(4).toString('hex')}`;
  const tmp = `${path}.${tag}.new`;
  const aside: string[] = [];
  await writeFile(tmp, String(process.pid), { mode: 0o600, flag: 'wx' });
  try {
    const st = await stat(tmp, { bigint: true });
    const id = { ino: st.ino, mtimeNs: st.mtimeNs };
    for (let attempt = 0; attempt < TAKEOVER_ATTEMPTS; attempt++) {
      try {
        await link(tmp, path);
        return { lock: new OwnPidLock(path, id) };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const holder = await readHolder(path);
      if (!holder) continue; // released meanwhile
      if (holder.pid !== undefined && isProcessAlive(holder.pid)) return { owner: holder.pid };
      // Dead (or not a pid at all: no live process can be relying on it). Move it aside.
      const to = `${path}.${tag}.stale${attempt}`;
      try {
        await rename(path, to);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw err;
      }
      aside.push(to);
      if ((await stat(to)).ino !== holder.ino) {
        // A racing process took it over between our look and the rename: give it back.
        await link(to, path).catch(() => undefined);
      }
    }
    const holder = await readHolder(path);
    if (holder?.pid !== undefined) return { owner: holder.pid };
    throw new Error(`unable to take the lock '${path}': it keeps changing`);
  } finally {
    // Kept until now so that no new file can reuse a stale inode while others may judge it.
    for (const p of [tmp, ...aside]) await rm(p, { force: true });
  }
}

async function readHolder(path: string): Promise<{ pid: number | undefined; ino: number } | undefined> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    const st = await fh.stat();
    const pid = Number.parseInt(await fh.readFile('utf8'), 10);
    return { pid: pid > 0 ? pid : undefined, ino: st.ino };
  } finally {
    await fh.close();
  }
}

class OwnPidLock implements HeldPidLock {
  private released = false;
  /** Inode and modification time of our file: a file written in its place (even on the same inode) differs. */
  constructor(readonly path: string, private readonly id: { ino: bigint; mtimeNs: bigint }) {}

  owns(): boolean {
    if (this.released) return false;
    try {
      const st = statSync(this.path, { bigint: true });
      return st.ino === this.id.ino && st.mtimeNs === this.id.mtimeNs;
    } catch {
      return false;
    }
  }

  async release(): Promise<void> {
    if (this.owns()) await rm(this.path, { force: true });
    this.released = true;
  }
}
