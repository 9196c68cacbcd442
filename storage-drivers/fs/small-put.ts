/**
 * The fs driver's put of a small buffer, done with synchronous system calls: temp file, write,
 * fsync, link (put-if-absent) or rename, fsync of the directory. Same atomicity and durability
 * as the streaming path; it blocks the event loop for well under a millisecond on a local disk,
 * and saves the ten thread-pool round trips that dominate the latency of a tiny write (a
 * synchronous receiver stores one per commit batch).
 */
import { chmodSync, closeSync, existsSync, fsyncSync, linkSync, mkdirSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { AlreadyExistsError } from '../../src/common/errors.js';
import { errnoOf } from './errors.js';
import { removeStaleTempsSync } from './temp.js';

/** Buffers up to this size take the synchronous path. */
export const SMALL_PUT_MAX = 256 * 1024;

function ensureDirSync(dir: string): void {
  const first = mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (first === undefined) return;
  for (let p = dir; ; p = dirname(p)) {
    chmodSync(p, 0o700);
    if (p === first || dirname(p) === p) break;
  }
}

function fsyncDirSync(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } catch (err) {
    const code = errnoOf(err);
    if (code !== 'EINVAL' && code !== 'ENOTSUP') throw err;
  } finally {
    closeSync(fd);
  }
}

/** Throws AlreadyExistsError (ifAbsent and the key exists) or the system error. `key` names the object in errors. */
export function putSmallSync(key: string, finalPath: string, tmp: string, body: Buffer, ifAbsent: boolean, openAttempts: number): void {
  if (ifAbsent && existsSync(finalPath)) throw new AlreadyExistsError(key);
  let fd = -1;
  for (let attempt = 1; fd < 0; attempt++) {
    try {
      fd = openSync(tmp, 'wx', 0o600);
    } catch (err) {
      if (errnoOf(err) !== 'ENOENT' || attempt >= openAttempts) throw err;
      ensureDirSync(dirname(tmp));
    }
  }
  let linked = false;
  try {
    try {
      for (let done = 0; done < body.length; ) done += writeSync(fd, body, done, body.length - done);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    if (ifAbsent) {
      try {
        linkSync(tmp, finalPath);
      } catch (err) {
        if (errnoOf(err) === 'EEXIST') throw new AlreadyExistsError(key);
        throw err;
      }
      linked = true;
      try {
        unlinkSync(tmp);
      } catch {
        // committed; a leftover temp of a live pid is swept later
      }
    } else {
      renameSync(tmp, finalPath);
      linked = true;
    }
    fsyncDirSync(dirname(finalPath));
    removeStaleTempsSync(finalPath);
  } catch (err) {
    if (!linked) {
      try {
        unlinkSync(tmp);
      } catch {
        // nothing to remove
      }
    }
    throw err;
  }
}
