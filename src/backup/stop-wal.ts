/**
 * The backup's last WAL segments, stored by the backup itself as pgark agent stores ahead, so that
 * PostgreSQL's archive_command for them answers from a push record (bin/pgark-wal-push in the
 * shell, bin/pgark.js before any ES module) instead of starting the full wal-push: the WAL wait at
 * the end of a backup then no longer carries a Node start-up of archive_command.
 *
 * The same protocol as the agent (src/agent/agent.ts) and the look-ahead worker (wal/push-ahead.ts):
 * the segment's lock `<pg_wal>/.pgark/pushed/<name>.lock` (O_EXCL, our pid) first, only for a
 * segment PostgreSQL marked `.ready` that has no record; then wal-push's own store
 * (pushWalFile: the page headers checked while read, put-if-absent, an identical copy accepted,
 * a different one a mismatch that stores nothing); the record (formatPushRecord: inode, size,
 * mtime and ctime in ns, sha256, the repository and stanza) only once the object is durable; then
 * the lock goes. Whoever holds the lock pushes; whoever loses leaves the segment alone.
 *
 * The backup does not count its own store as archiving: it commits only once PostgreSQL's
 * archiver reports each segment it stored archived (waitForArchiver: archive_status `.done`, or
 * pg_stat_archiver past it when the status file is already gone), i.e. archive_command ran and
 * exited 0 for it. And it stores nothing itself unless the archiver's latest archived file is in
 * this repository and archiving is not failing (selfPushRefusal): evidence that archive_command
 * stores into this repository and stanza, which a record can only confirm, not replace. The
 * safety argument in full: docs/ARCHITECTURE.md, "The backup's stop segment".
 */
import { access, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { causeText, PgarkError } from '../common/errors.js';
import { log } from '../common/log.js';
import { lockOwner, tryLock } from '../common/pid-lock.js';
import type { CodecName } from '../io/codec.js';
import type { Repository } from '../repo/repository.js';
import { pushLockPath, pushRecordDir } from '../wal/fast-path.js';
import { inspectLocalWal } from '../wal/inspect-local.js';
import { pushWalFile } from '../wal/push-file.js';
import { assertWalFileName } from '../wal/segment-name.js';
import { ensureDir, PushRecords } from '../wal/spool.js';
import { walKey } from '../repo/layout.js';
import { segmentOfArchivedName } from '../pg/wal-names.js';
import type { ArchiverState } from './pg-api.js';

/** What decides whether the backup may store its stop segments itself. */
export interface SelfPushFacts {
  storeWal: boolean;
  fromStandby: boolean;
  archiveMode: string;
  /** repo2, repo3 configured: a record then has to name the whole set (only the agent writes those). */
  moreRepos: number;
  /** The backup's start and stop timelines (a primary's are one). */
  startTimeline: number;
  stopTimeline: number;
  archiver: Pick<ArchiverState, 'lastArchivedWal' | 'lastArchivedAt' | 'lastFailedAt'>;
  /**
   * Whether this process runs as the owner of pg_wal (PostgreSQL's OS user): records and locks
   * are written as it, so archive_command (run by PostgreSQL) and the agent can read and remove them.
   */
  ownsWalDir: boolean;
  /** Whether archiver.lastArchivedWal is in this repository (undefined: not looked up). */
  lastArchivedInRepo: boolean | undefined;
}

/**
 * Why the backup leaves its WAL to archive_command alone (pure); undefined when it may store the
 * ready stop segments itself. Everything refused here keeps the behaviour before: wait for the
 * segments to reach the repository through archive_command (or the agent).
 */
export function selfPushRefusal(f: SelfPushFacts): string | undefined {
  if (f.storeWal) return '--store-wal';
  if (f.fromStandby) return 'a standby backup (the primary archives its WAL)';
  if (f.archiveMode !== 'on' && f.archiveMode !== 'always') return `archive_mode is ${f.archiveMode}`;
  if (f.moreRepos > 0) return 'more than one repository (archive_command stores to every one)';
  if (!f.ownsWalDir) return "pgark backup does not run as pg_wal's owner (PostgreSQL's OS user)";
  if (f.startTimeline !== f.stopTimeline) return 'the timeline changed during the backup';
  if (f.archiver.lastArchivedWal === undefined) return 'PostgreSQL has archived nothing yet (pg_stat_archiver): no evidence that archive_command works';
  if (f.archiver.lastFailedAt !== undefined && (f.archiver.lastArchivedAt === undefined || f.archiver.lastFailedAt >= f.archiver.lastArchivedAt)) {
    return 'archive_command failed more recently than it succeeded (pg_stat_archiver)';
  }
  if (f.lastArchivedInRepo !== true) return `the last file PostgreSQL archived (${f.archiver.lastArchivedWal}) is not in this repository: archive_command may store elsewhere`;
  return undefined;
}

/**
 * Whether PostgreSQL's archiver has archived segment `name` (pure): its `.done` status file says
 * so; a `.ready` one says not yet; with neither (the segment was archived and then removed or
 * recycled at a checkpoint, which removes `.done` with it), pg_stat_archiver's last archived file
 * at or past it on the same timeline does (the archiver takes files in name order and never skips
 * one that fails).
 */
export function archivedPerStatus(name: string, status: { done: boolean; ready: boolean }, lastArchivedWal: string | undefined): boolean {
  if (status.done) return true;
  if (status.ready) return false;
  if (lastArchivedWal === undefined) return false;
  const seg = segmentOfArchivedName(lastArchivedWal);
  return seg !== undefined && seg.slice(0, 8) === name.slice(0, 8) && seg >= name;
}

const exists = (path: string): Promise<boolean> => access(path).then(() => true, () => false);

/** Whether the file PostgreSQL last archived is in this repository (a name pgark cannot key: false). */
export async function inRepository(repo: Repository, name: string): Promise<boolean> {
  let key: string;
  try {
    key = walKey(repo.stanza, name);
  } catch {
    return false;
  }
  return (await repo.stat(key)) !== null;
}

/**
 * Stores ready stop segments under the push protocol. `prelock` takes a segment's lock before
 * PostgreSQL finishes it (the one pg_backup_stop will switch out of), so that an archive_command
 * started the instant the segment is ready waits for the record instead of racing the backup with
 * a full push; `push` stores what is ready and releases every lock this holds, `release` only
 * releases (on a failure).
 */
export class StopWalPusher {
  private readonly held = new Set<string>();
  private readonly records: PushRecords;

  constructor(private readonly repo: Repository, private readonly walDir: string, private readonly target: string,
    private readonly codec: CodecName, private readonly level: number | undefined) {
    this.records = new PushRecords(walDir);
  }

  async prelock(name: string): Promise<void> {
    try {
      await ensureDir(pushRecordDir(this.walDir));
      if (await tryLock(pushLockPath(this.walDir, name))) this.held.add(name);
    } catch (err) {
      log.debug(`backup: lock of ${name} not taken (${causeText(err)}): archive_command pushes it itself`);
    }
  }

  /** Store each of `names` (oldest first) that is ready, has no record and whose lock is ours; the names stored. */
  async push(names: readonly string[]): Promise<string[]> {
    const pushed: string[] = [];
    try {
      try {
        await ensureDir(pushRecordDir(this.walDir));
      } catch (err) {
        log.warn(`backup: the stop WAL is left to archive_command: ${causeText(err)}`);
        return pushed;
      }
      for (const name of names) {
        if (!(await this.stillToPush(name))) continue;
        if (!this.held.has(name)) {
          if (!(await tryLock(pushLockPath(this.walDir, name)).catch(() => false))) continue; // the agent or a look-ahead worker has it
          this.held.add(name);
          if (!(await this.stillToPush(name))) continue;
        }
        try {
          const file = await inspectLocalWal(join(this.walDir, name), assertWalFileName(name), name);
          if (file.identity) await this.repo.ensureStanza(file.identity, this.codec, `WAL file '${name}'`);
          const r = await pushWalFile(this.repo, file, { codec: this.codec, level: this.level });
          await this.records.add(file, r.sha256, this.target);
          pushed.push(name);
          log.debug(`backup: WAL segment ${name} stored by the backup (${r.status}); archive_command answers from its push record`);
        } catch (err) {
          // archive_command pushes it itself and reports what is wrong; the backup waits for that.
          log.warn(`backup: storing WAL segment '${name}' ahead of archive_command failed: ${causeText(err)}`);
        }
        await this.releaseOne(name);
      }
    } finally {
      await this.release();
    }
    return pushed;
  }

  async release(): Promise<void> {
    for (const name of [...this.held]) await this.releaseOne(name);
  }

  private async releaseOne(name: string): Promise<void> {
    this.held.delete(name);
    const lock = pushLockPath(this.walDir, name);
    if ((await lockOwner(lock)) === process.pid) await rm(lock, { force: true });
  }

  /** Marked ready by PostgreSQL, and no record of a store yet. */
  private async stillToPush(name: string): Promise<boolean> {
    const [record, ready] = await Promise.all([
      exists(join(pushRecordDir(this.walDir), name)),
      exists(join(this.walDir, 'archive_status', `${name}.ready`)),
    ]);
    return !record && ready;
  }
}

/**
 * Until PostgreSQL's archiver has archived each of `names` (archivedPerStatus), or `deadlineMs`.
 * Polls the status files every 20 ms for the first second, then every 100 ms; pg_stat_archiver
 * (`lastArchived`) only when a segment has neither status file.
 */
export async function waitForArchiver(walDir: string, names: readonly string[], deadlineMs: number, timeoutSec: number,
  lastArchived: () => Promise<string | undefined>): Promise<void> {
  const began = Date.now();
  const missing = new Set(names);
  for (;;) {
    for (const name of [...missing]) {
      const status = join(walDir, 'archive_status', name);
      const [done, ready] = await Promise.all([exists(`${status}.done`), exists(`${status}.ready`)]);
      const last = !done && !ready ? await lastArchived() : undefined;
      if (archivedPerStatus(name, { done, ready }, last)) missing.delete(name);
    }
    if (missing.size === 0) return;
    if (Date.now() > deadlineMs) {
      throw new PgarkError(`WAL segment ${[...missing].join(', ')} is in the repository (the backup stored it), but PostgreSQL's archiver did not archive it within ${timeoutSec}s (archive-timeout): ` +
        "archive_command is failing or stalled; check archive_command = 'pgark wal-push %p' and pg_stat_archiver. The backup was not committed");
    }
    await sleep(Date.now() - began < 1000 ? 20 : 100);
  }
}
