/**
 * `pgark receive`: stream WAL from a physical replication slot into the repository. Resumes
 * right after the stored WAL, follows timeline switches, reconnects with backoff, and reports as
 * flushed only what is durably stored, so that it can be a synchronous standby.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { LockedError } from '../common/errors.js';
import { acquirePidLock, type HeldPidLock } from '../common/pid-lock.js';
import { log } from '../common/log.js';
import type { CodecName } from '../io/codec.js';
import { acquireRepoLock, type RepoLock } from '../repo/repo-lock.js';
import type { RepoSet } from '../repo/repo-set.js';
import type { Repository } from '../repo/repository.js';
import type { ReceiverStatus } from './receiver-status.js';
import { ReceiverRun } from './receiver-run.js';

export interface ReceiverOptions {
  dsn?: string | undefined;
  slot?: string | undefined;
  createSlot: boolean;
  /** application_name, the name to list in synchronous_standby_names. */
  name: string;
  synchronous: boolean;
  flushIntervalMs: number;
  statusIntervalMs: number;
  spoolDir: string;
  codec: CodecName;
  /** Use `codec` even when the stanza was created with another one. */
  codecExplicit?: boolean;
  connectTimeoutSec?: number;
  maxBackoffMs?: number;
  signal: AbortSignal;
  onStatus?: (s: ReceiverStatus) => void;
}

/** The spool directory's lock file. */
export const SPOOL_LOCK_FILE = 'receiver.pid';

/** Name of the repository lock of the receiver named `name` (`<stanza>/lock/receive-<name>`). */
export function receiverLockName(name: string): string {
  return `receive-${name}`;
}

export interface ReceiverLocks {
  spool: HeldPidLock;
  repo: RepoLock;
  /** Throws LockedError when either lock was lost (taken over, or its file removed). */
  check(): void;
  release(): Promise<void>;
}

/**
 * One receiver per stanza and name: the spool directory's lock (a pid file; a dead holder's is
 * taken over) and the repository lock `receive-<name>` (the backup lock's rules: a dead holder on
 * this host, or a lease not renewed for 10 minutes, is taken over). A second receiver gets a
 * LockedError (exit 6) naming the holder, before it touches the spool or the repository's WAL.
 */
export async function acquireReceiverLocks(repo: Repository, name: string, spoolDir: string): Promise<ReceiverLocks> {
  await mkdir(spoolDir, { recursive: true, mode: 0o700 });
  const path = join(spoolDir, SPOOL_LOCK_FILE);
  const got = await acquirePidLock(path);
  if ('owner' in got) {
    throw new LockedError(
      `another pgark receive (pid ${got.owner}${got.host ? ` on host '${got.host}'` : ''}) is using the spool directory '${spoolDir}' (stanza '${repo.stanza}', name '${name}'); ` +
      `only one receiver per stanza and --application-name may run. If no such process runs, remove '${path}'`,
    );
  }
  const spool = got.lock;
  let lock: RepoLock;
  try {
    lock = await acquireRepoLock(repo, receiverLockName(name), { purpose: `receive '${name}'` });
  } catch (err) {
    await spool.release();
    if (err instanceof LockedError) {
      throw new LockedError(`another pgark receive for stanza '${repo.stanza}' and name '${name}' is running: ${err.message}`, { cause: err });
    }
    throw err;
  }
  return {
    spool,
    repo: lock,
    check() {
      if (lock.lost) throw new LockedError(`the repository lock '${lock.key}' was taken over by another process: stopping so that only one receiver stores WAL`);
      if (!spool.owns()) throw new LockedError(`the spool lock '${path}' was removed or taken over: stopping so that only one receiver writes the spool`);
    },
    async release() {
      await lock.release().catch((err: unknown) => log.warn(`receive: unable to release the lock '${lock.key}': ${(err as Error).message}`));
      await spool.release();
    },
  };
}

/** Run a receiver into the set's repositories (the first alone with one); with `held`, under locks the caller took (acquireReceiverLocks) and releases. */
export async function runReceiver(set: RepoSet, o: ReceiverOptions, held?: ReceiverLocks): Promise<ReceiverStatus> {
  if (held) return new ReceiverRun(set, o, held).run();
  const locks = await acquireReceiverLocks(set.first, o.name, o.spoolDir);
  try {
    return await new ReceiverRun(set, o, locks).run();
  } finally {
    await locks.release();
  }
}
