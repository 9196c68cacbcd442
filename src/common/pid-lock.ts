/**
 * Advisory locks as files holding the owner's pid, created with O_EXCL. A lock whose owner is
 * dead counts as free. src/wal/fast-path.cjs has the synchronous reader of the same files.
 */
import { randomBytes } from 'node:crypto';
import { statSync } from 'node:fs';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
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
/** How long a new holder waits before checking that its lock file is still in place. */
const SETTLE_MS = 100;

/**
 * Take the lock at `path` for this process, or learn who holds it. The file holds the pid and the
 * host name; a holder on another host (the directory is shared) is never taken over. Unlike
 * tryLock, the content is in the file before it appears (written to a temp file, then
 * hard-linked into place, which fails when the lock exists), and a dead holder's file is replaced
 * so that two racing takers do not both end up believing they hold it: the stale file is renamed
 * aside and only counts as removed if the renamed inode is the one judged dead; a live lock moved
 * aside by a racing taker is linked back, and a new holder checks after a moment that its file is
 * still in place. Without
 * flock() a taker stalled between its look and its rename can still displace a holder later:
 * `owns()` compares the lock file's inode and mtime with ours, so a holder that checks it (the
 * receiver does, about once a second and before every spool file operation) notices and stops.
 */
export async function acquirePidLock(path: string): Promise<{ lock: HeldPidLock } | { owner: number; host?: string }> {
  const tag = `${process.pid}.${randomBytes(4).toString('hex')}`;
  const tmp = `${path}.${tag}.new`;
  const aside: string[] = [];
  const host = hostname();
  await writeFile(tmp, `${process.pid}\n${host}\n`, { mode: 0o600, flag: 'wx' });
  try {
    const st = await stat(tmp, { bigint: true });
    const id = { ino: st.ino, mtimeNs: st.mtimeNs };
    for (let attempt = 0; attempt < TAKEOVER_ATTEMPTS; attempt++) {
      try {
        await link(tmp, path);
        // A taker that judged the old file stale just before we replaced it may move ours aside
        // for a moment (and put it back, or lose it to a third process): look again after that.
        await sleep(SETTLE_MS);
        const lock = new OwnPidLock(path, id);
        if (lock.owns()) return { lock };
        continue;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const holder = await readHolder(path);
      if (!holder) continue; // released meanwhile
      if (holder.ino === id.ino) {
        // Ours, put back by a taker that had moved it aside.
        const lock = new OwnPidLock(path, id);
        if (lock.owns()) return { lock };
        continue;
      }
      // A holder on another host (a shared home directory) cannot be judged from here: it counts as live.
      if (holder.pid !== undefined && holder.host !== undefined && holder.host !== host) return { owner: holder.pid, host: holder.host };
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
      if ((await stat(to, { bigint: true })).ino !== holder.ino) {
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

async function readHolder(path: string): Promise<{ pid: number | undefined; host: string | undefined; ino: bigint } | undefined> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    const st = await fh.stat({ bigint: true });
    const [pidLine, hostLine] = (await fh.readFile('utf8')).split('\n');
    const pid = Number.parseInt(pidLine ?? '', 10);
    return { pid: pid > 0 ? pid : undefined, host: hostLine?.trim() || undefined, ino: st.ino };
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
