/**
 * Files restore writes are its own: never written through a symbolic link, a hard link shared
 * with a file elsewhere, or a special file that happens to sit at the name (issue 14 item 6).
 * Whatever is at the name and is not a private regular file is removed first (for a link: the
 * link itself, never its target), and files are opened with O_NOFOLLOW (and O_EXCL when
 * created), so a link planted between the check and the open fails the open instead of being
 * followed. O_NONBLOCK keeps a FIFO from blocking an open; it changes nothing for regular files.
 */
import { closeSync, constants, fstatSync, lstatSync, openSync, rmSync, unlinkSync, type Stats } from 'node:fs';
import { lstat, open, rm, unlink, type FileHandle } from 'node:fs/promises';
import { InvalidInputError, isNodeError } from '../common/errors.js';

const { O_WRONLY, O_RDONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_NONBLOCK } = constants;

async function lstatOrNull(abs: string): Promise<Stats | null> {
  try {
    return await lstat(abs);
  } catch (err) {
    if (isNodeError(err, 'ENOENT') || isNodeError(err, 'ENOTDIR')) return null;
    throw err;
  }
}

/** A regular file with no other name (not a link, not hard-linked elsewhere). */
function isPrivateFile(st: Stats): boolean {
  return st.isFile() && st.nlink === 1;
}

/** Remove whatever is at `abs` (a link is removed, not followed; a directory with its contents). */
async function removeEntry(abs: string, st: Stats): Promise<void> {
  if (st.isDirectory()) await rm(abs, { recursive: true, force: true });
  else await unlink(abs).catch((err: unknown) => {
    if (!isNodeError(err, 'ENOENT')) throw err;
  });
}

/**
 * Open `abs` for writing as a private regular file. With `keepContent` an existing private
 * regular file is opened as it is (parts of it are written in place); anything else at the
 * name is removed and a new empty file is created (mode 0600).
 */
export async function openPrivateForWrite(abs: string, keepContent: boolean): Promise<FileHandle> {
  const st = await lstatOrNull(abs);
  if (st && keepContent && isPrivateFile(st)) {
    const fh = await open(abs, O_WRONLY | O_NOFOLLOW | O_NONBLOCK);
    const now = await fh.stat();
    if (now.ino === st.ino && now.dev === st.dev && isPrivateFile(now)) return fh;
    await fh.close();
    throw new InvalidInputError(`unable to restore '${abs}': it was replaced while restore was opening it (is something else writing into the target directory?)`);
  }
  if (st) await removeEntry(abs, st);
  return open(abs, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NONBLOCK, 0o600);
}

function lstatOrNullSync(abs: string): Stats | null {
  try {
    // A missing name (the usual case: an empty target) without an exception to build and catch.
    return lstatSync(abs, { throwIfNoEntry: false }) ?? null;
  } catch (err) {
    if (isNodeError(err, 'ENOENT') || isNodeError(err, 'ENOTDIR')) return null;
    throw err;
  }
}

/**
 * openPrivateForWrite as blocking calls, returning a descriptor (the caller closes it): for
 * restore's worker threads, which write one file at a time and gain nothing from handing each
 * call to the threadpool. Same checks, same order.
 */
export function openPrivateForWriteSync(abs: string, keepContent: boolean): number {
  const st = lstatOrNullSync(abs);
  if (st && keepContent && isPrivateFile(st)) {
    const fd = openSync(abs, O_WRONLY | O_NOFOLLOW | O_NONBLOCK);
    let now: Stats;
    try {
      now = fstatSync(fd);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
    if (now.ino === st.ino && now.dev === st.dev && isPrivateFile(now)) return fd;
    closeSync(fd);
    throw new InvalidInputError(`unable to restore '${abs}': it was replaced while restore was opening it (is something else writing into the target directory?)`);
  }
  if (st) {
    if (st.isDirectory()) rmSync(abs, { recursive: true, force: true });
    else {
      try {
        unlinkSync(abs);
      } catch (err) {
        if (!isNodeError(err, 'ENOENT')) throw err;
      }
    }
  }
  return openSync(abs, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NONBLOCK, 0o600);
}

/**
 * Open `abs` for reading when it is a private regular file, else null (a link, a hard-linked
 * file, a directory, a FIFO, nothing). What --delta may keep is read through this.
 */
export async function openPrivateForRead(abs: string): Promise<FileHandle | null> {
  const st = await lstatOrNull(abs);
  if (!st || !isPrivateFile(st)) return null;
  let fh: FileHandle;
  try {
    fh = await open(abs, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
  } catch (err) {
    if (isNodeError(err, 'ENOENT') || isNodeError(err, 'ELOOP')) return null;
    throw err;
  }
  const now = await fh.stat();
  if (now.ino === st.ino && now.dev === st.dev && isPrivateFile(now)) return fh;
  await fh.close();
  return null;
}

/** Open for writing the private regular file restore created at `abs`; an error if it is anything else now. */
export async function openOwnFile(abs: string): Promise<FileHandle> {
  const st = await lstatOrNull(abs);
  const fh = st && isPrivateFile(st) ? await open(abs, O_WRONLY | O_NOFOLLOW | O_NONBLOCK).catch(() => null) : null;
  const now = fh ? await fh.stat() : null;
  if (fh && now && st && now.ino === st.ino && now.dev === st.dev && isPrivateFile(now)) return fh;
  await fh?.close();
  throw new InvalidInputError(`unable to restore '${abs}': it is no longer the file restore wrote (is something else writing into the target directory?)`);
}
