/**
 * `pgark backup`: a full or block-incremental base backup of a running cluster on this host.
 *
 *  1. connect (libpq environment or --dsn), read the cluster facts, check the data directory
 *  2. take the stanza's backup lock; remove what uncommitted (killed) runs left behind
 *  3. choose the type (auto: incremental on the newest backup unless there is none, its chain is
 *     at incr-chain-max, or it is on another timeline)
 *  4. pg_backup_start; copy the data directory with worker threads (backup-worker.ts)
 *  5. pg_backup_stop; store backup_label and tablespace_map, then the manifest, while
 *  6. waiting until the WAL from start to stop is in the repository (or store it: --store-wal)
 *  7. the catalog entry, once 5 and 6 are done: the commit point
 */
import { hostname, availableParallelism } from 'node:os';
import { realpath, readFile, stat } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Client } from 'pg';
import { ConfigError, PgarkError } from '../common/errors.js';
import { log, PhaseTimer } from '../common/log.js';
import { Progress } from '../common/progress.js';
import { runLanes, runPool, startThreads, stopThreads, type StartedThreads } from '../common/worker-pool.js';
import type { RepositorySettings, Settings } from '../config/resolve.js';
import { readSystemIdentifier } from '../pg/control-file.js';
import { connectPg } from '../pg/connect.js';
import { catalogKey, dataObjectKey, manifestKey, pinKey, walKey } from '../repo/layout.js';
import { acquireRepoLock } from '../repo/repo-lock.js';
import type { Repository } from '../repo/repository.js';
import { PGARK_VERSION } from '../version.js';
import { BACKUP_INFO_FORMAT, type BackupInfo } from '../catalog/backup-info.js';
import { listBackups, readManifest, removeBackup, uncommittedBackupIds } from '../catalog/catalog.js';
import type { BackupWorkerInit, BackupTaskResult } from './backup-worker.js';
import { archiverState, backupStart, backupStop, clusterFacts, lastArchivedWal, parseBackupLabel, type ClusterFacts } from './pg-api.js';
import { inRepository, selfPushRefusal, StopWalPusher, waitForArchiver } from './stop-wal.js';
import { lsnToSegment, parseLsn, segmentName } from '../wal/segment-name.js';
import { pushTarget } from '../wal/fast-path.js';
import { requireRepo } from '../config/resolve.js';
import { join } from 'node:path';
import { manifestLines, MANIFEST_FORMAT, type FileEntry, type Manifest } from '../catalog/manifest.js';
import { planTasks, type BackupTask } from './tasks.js';
import { checkLabel, chooseBackupType, finishParts, mergeEntry, nextBackupId, walNeeded } from './backup-rules.js';
import type { CodecName } from '../io/codec.js';
import { walkDataDirectory, type WalkFile } from './walk.js';
import { reuseEntry, unchangedFiles } from './unchanged.js';
import { describeFileDecision } from './file-decision.js';
import { blockDeltaRefusal } from './block-delta.js';
import { dataDirectoryOwner, type DataOwner } from './data-owner.js';
import { describeLanes, LaneClock } from './lane-clock.js';
import { compressLz4OnCallingThread } from '../io/codecs/lz4-thread.js';

/**
 * What backup reads from the settings: the parallelism (the core count unless jobs was given),
 * --pgdata, the codec and level, incr-chain-max, archive-timeout, repo2/repo3 (whether the backup
 * may store its stop WAL itself: stop-wal.ts), and what the worker threads open the repository with.
 */
export type BackupSettings = Pick<Settings, 'jobs' | 'jobsExplicit' | 'pgdata' | 'codec' | 'codecExplicit' | 'compressLevel' | 'incrChainMax' | 'archiveTimeoutSec' | 'moreRepos'> & RepositorySettings;

export interface BackupOptions {
  type: 'full' | 'incr' | 'auto';
  label?: string | undefined;
  keep: boolean;
  jobs?: number | undefined;
  dsn?: string | undefined;
  fromStandby: boolean;
  checkpoint: 'fast' | 'spread';
  storeWal: boolean;
  progress: boolean;
  /** --delta: an incremental reads every file (no file is taken from the parent on size and mtime alone). */
  delta?: boolean;
}

export interface BackupOutcome {
  info: BackupInfo;
  checksumFailures: Array<{ path: string; blocks: number[] }>;
  notes: string[];
}

/** What the server check found: the cluster, where its data directory is, the codec to store with. */
interface ServerChecked {
  facts: ClusterFacts;
  fromStandby: boolean;
  pgdata: string;
  codec: CodecName;
}

/** What the steps that store objects read of the server check (a ServerChecked has it all). */
export type StoreFacts = Pick<ServerChecked, 'pgdata' | 'codec'> & {
  facts: Pick<ClusterFacts, 'pgVersion' | 'dataDirectory' | 'blockSize' | 'relsegBlocks' | 'tablespaces' | 'walSegmentSize'>;
};

/** What the copy of the data directory produced. */
export interface Copied {
  files: Map<string, FileEntry>;
  stats: { raw: number; stored: number; read: number; changed: number; reused: number; objects: number; unchanged: number; unchangedBytes: number };
}

export function emptyCopy(): Copied {
  return { files: new Map(), stats: { raw: 0, stored: 0, read: 0, changed: 0, reused: 0, objects: 0, unchanged: 0, unchangedBytes: 0 } };
}

/** Fold one copy task's result (one object) into the copy; files stored in parts are finished by finishParts once all are in. */
export function addTaskResult(copied: Copied, r: BackupTaskResult, id: string): void {
  for (const e of r.entries) {
    mergeEntry(copied.files, e);
    log.trace(() => `backup: ${describeFileDecision(e, id)}`);
  }
  copied.stats.raw += r.rawBytes;
  copied.stats.stored += r.storedBytes;
  copied.stats.read += r.readBytes;
  copied.stats.changed += r.changedBlocks;
  copied.stats.reused += r.reusedBlocks;
  copied.stats.objects++;
}

export async function runBackup(repo: Repository, settings: BackupSettings, o: BackupOptions): Promise<BackupOutcome> {
  checkLabel(o.label);
  // lz4 on this thread, each output freed once written (io/codecs/lz4-thread.ts): on libuv's
  // threadpool, lz4-napi's allocator kept what the main thread freed of its outputs, 110-250 MiB
  // peak RSS growing with the data's size and randomness; on this thread ~92 MiB for less CPU
  // (bench/results/memory.md, "Backup and the agent: lz4 on the main thread").
  compressLz4OnCallingThread();
  const notes: string[] = [];
  const jobs = o.jobs ?? (settings.jobsExplicit ? settings.jobs : availableParallelism());
  const phases = new PhaseTimer('backup');
  log.debug(`backup: begins ${(performance.now() / 1000).toFixed(3)}s after the process started (start-up, settings, module loading)`);
  const client = await connectPg(o.dsn, 'pgark backup');
  let lockRelease: (() => Promise<void>) | undefined;
  let early: StartedThreads | undefined;
  let pusher: StopWalPusher | undefined;
  try {
    const server = await checkServer(client, repo, settings, o, notes);
    const { facts } = server;
    phases.lap('connect and check the server');
    // The manifest's owner names (getent): looked up while the backup runs, awaited at the manifest.
    const owner = dataDirectoryOwner(server.pgdata);
    owner.catch(() => undefined);
    const lock = await acquireRepoLock(repo, 'backup', { purpose: 'backup' });
    lockRelease = () => lock.release();
    const existing = await listBackups(repo);
    const stale = await removeStale(repo, existing, notes);
    const { type, parent, note } = chooseBackupType(o.type, existing[existing.length - 1], facts.timeline, settings.incrChainMax, facts.systemIdentifier);
    if (note) notes.push(note);
    // The parent's manifest is read while pg_backup_start runs (it is needed after the walk).
    const parentManifestRead = parent ? readManifest(repo, parent) : Promise.resolve(undefined);
    parentManifestRead.catch(() => undefined);
    const id = nextBackupId(new Date(), type, [...existing.map((b) => b.id), ...stale]);
    phases.lap('lock and plan', `${type}${parent ? ` on ${parent.id}` : ''}, ${jobs} jobs, ${stale.length} interrupted backup(s) removed`);

    const started = Date.now();
    // The copy's module (lz4 binding, page checksums) loads, and beyond MAIN_THREAD_LANES jobs the
    // worker threads start (an isolate and their modules each), while the checkpoint runs; they
    // get their first task (and the init) only after the walk.
    const copyModule = import('./backup-worker.js');
    copyModule.catch(() => undefined);
    if (jobs > MAIN_THREAD_LANES) early = startThreads(BACKUP_WORKER, jobs - 1);
    const start = await backupStart(client, facts, `pgark backup ${id}`, o.checkpoint === 'fast');
    log.info(`backup ${id}: started at ${start.lsn} on timeline ${start.timeline}`);
    phases.lap('pg_backup_start', `checkpoint ${o.checkpoint === 'fast' ? 'fast' : 'spread'}`);
    const parentManifest = await parentManifestRead;
    const copyStartMs = Date.now();
    const walk = await walkDataDirectory(server.pgdata, facts.pgVersion);
    const skip = unchangedFiles(walk.files, parentManifest?.files, { delta: o.delta === true, copyStartMs, parentCopyStartMs: parentManifest?.header.copyStartMs });
    if (skip.readAll && parentManifest) notes.push(`incremental backup: ${skip.readAll}`);
    const toRead = skip.unchanged.size > 0 ? walk.files.filter((f) => !skip.unchanged.has(f.path)) : walk.files;
    const tasks = planTasks(toRead, parentManifest?.files);
    const total = toRead.reduce((n, f) => n + f.size, 0);
    phases.lap('walk the data directory', `${walk.files.length} files, ${total} bytes to read, ${skip.unchanged.size} unchanged since the parent (not read), ${walk.excluded} excluded; ${tasks.length} objects planned`);
    const progress = o.progress ? new Progress({ what: 'backup', totalBytes: total, out: process.stderr, tty: process.stderr.isTTY === true }) : undefined;
    const noDelta = parent ? blockDeltaRefusal(facts, parent) : undefined;
    if (noDelta) notes.push(`incremental backup: changed relation files are stored whole, not as page-LSN block deltas: ${noDelta}`);
    const init: BackupWorkerInit = {
      settings, backupId: id, codec: server.codec, level: settings.compressLevel, checksums: facts.dataChecksums, blockSize: facts.blockSize,
      relsegBlocks: facts.relsegBlocks, startLsn: start.lsn, ...(parent ? { parentStartLsn: parent.start.lsn, blockDelta: noDelta === undefined } : {}),
    };
    const copied = await copyDataFiles(repo, init, jobs, tasks, progress, id, await copyModule, early);
    if (parentManifest) addUnchanged(copied, walk.files, skip.unchanged, parentManifest.files, tasks.length);
    log.info(`backup ${id}: copied ${copied.stats.read} bytes into ${copied.stats.objects} objects`);
    phases.lap('copy files', `${copied.stats.read} bytes read, ${copied.stats.stored} stored in ${copied.stats.objects} objects` +
      (type === 'incr' ? `, ${copied.stats.changed} changed and ${copied.stats.reused} reused blocks, ${copied.stats.unchanged} files (${copied.stats.unchangedBytes} bytes) not read` : ''));

    progress?.phase('stopping backup');
    pusher = await stopWalPusher(client, repo, settings, o, server, start.timeline).catch((err: unknown) => {
      log.debug(`backup: the stop WAL is left to archive_command alone: ${(err as Error).message}`);
      return undefined;
    });
    const stop = await backupStop(client, facts);
    phases.lap('pg_backup_stop');
    const label = parseBackupLabel(stop.labelFile);
    if (parseLsn(label.startLsn) !== parseLsn(start.lsn)) throw new PgarkError(`backup_label start ${label.startLsn} differs from pg_backup_start's ${start.lsn}`);
    const stopTimeline = facts.inRecovery ? start.timeline : facts.timeline;
    const walNames = walNeeded(label.startWalFile, stop.lsn, stopTimeline, facts.walSegmentSize);
    log.info(`backup ${id}: stopped at ${stop.lsn}`);
    // backup_label (and with --store-wal the WAL) and then the manifest are written, each durable,
    // while the archiver pushes the WAL; the catalog entry, the commit point, comes only once all
    // of them are in the repository.
    if (o.storeWal) progress?.phase('storing WAL');
    const manifestWrite = (async () => {
      await storeExtras(repo, server, id, tasks.length, stop, o.storeWal ? walNames : [], copied);
      log.debug(`backup: ${o.storeWal ? 'backup_label and WAL' : 'backup_label'} stored: ${stop.spcmapFile !== '' ? 2 : 1} file(s)${o.storeWal ? ` and ${walNames.length} WAL segment(s)` : ''}`);
      return storeManifest(repo, server, { id, type, parent }, walk, o.storeWal, copied, copyStartMs, owner);
    })();
    manifestWrite.catch(() => undefined);
    if (!o.storeWal) {
      progress?.phase(`waiting for WAL ${walNames[0]}..${walNames[walNames.length - 1]} to be archived`);
      try {
        // The ready stop segments stored here (stop-wal.ts), so that archive_command answers from
        // their records; then every needed segment in the repository, and the archiver's word for
        // each one stored here.
        const selfPushed = pusher ? await pusher.push(walNames.slice(-SELF_PUSH_MAX)) : [];
        if (pusher) phases.lap('store the stop WAL ahead of archive_command', `${selfPushed.length} segment(s) stored: ${selfPushed.join(', ') || 'none'}`);
        const deadline = Date.now() + settings.archiveTimeoutSec * 1000;
        await waitForWal(repo, walNames, settings.archiveTimeoutSec, server.fromStandby);
        if (selfPushed.length > 0) await waitForArchiver(join(server.pgdata, 'pg_wal'), selfPushed, deadline, settings.archiveTimeoutSec, () => lastArchivedWal(client));
      } catch (err) {
        await manifestWrite.catch(() => undefined); // nothing writes once the lock is released
        throw err;
      }
      phases.lap('wait for WAL in the repository', `${walNames.length} segment(s); backup_label and manifest written meanwhile`);
    }
    log.info(`backup ${id}: WAL ${walNames[0]}..${walNames[walNames.length - 1]} in the repository`);

    const manifest = await manifestWrite;
    phases.lap(o.storeWal ? 'backup_label, WAL and manifest' : 'backup_label and manifest', `${copied.files.size} files, ${manifest.size} bytes of manifest`);
    const failures = [...copied.files.values()].filter((f) => f.checksumFailures).map((f) => ({ path: f.path, blocks: f.checksumFailures! }));
    const info: BackupInfo = {
      format: BACKUP_INFO_FORMAT, id, type, ...(parent ? { parent: parent.id } : {}), chain: parent ? [...parent.chain, id] : [id],
      ...(o.label !== undefined ? { label: o.label } : {}),
      start: { time: start.time.toISOString(), lsn: start.lsn, timeline: start.timeline, walFile: label.startWalFile },
      stop: { time: stop.time.toISOString(), lsn: stop.lsn, timeline: stopTimeline, walFile: walNames[walNames.length - 1]! },
      walRange: { first: walNames[0]!, last: walNames[walNames.length - 1]! }, walStored: o.storeWal,
      pgVersion: facts.pgVersion, systemIdentifier: facts.systemIdentifier, dataChecksums: facts.dataChecksums, fromStandby: server.fromStandby,
      size: {
        original: copied.stats.read, stored: copied.stats.stored, files: copied.files.size, objects: copied.stats.objects + 1,
        ...(type === 'incr' ? { changedBlocks: copied.stats.changed, reusedBlocks: copied.stats.reused, unchangedFiles: copied.stats.unchanged, unchangedBytes: copied.stats.unchangedBytes } : {}),
      },
      durationMs: Date.now() - started, checksumFailures: failures.reduce((n, f) => n + f.blocks.length, 0), codec: server.codec,
      manifest, pgarkVersion: PGARK_VERSION, host: hostname(),
    };
    await commitBackup(repo, lock, info, o.keep);
    phases.lap('catalog entry');
    phases.done(`backup ${id}`);
    progress?.finish({ id, type, bytes: copied.stats.read, stored: copied.stats.stored });
    return { info, checksumFailures: failures, notes };
  } finally {
    await pusher?.release().catch(() => undefined); // locks taken before a failure
    await stopThreads(early); // threads started early that the pool did not end (a failure before it ran)
    await client.end().catch(() => undefined); // ends an unfinished backup on the server side
    if (lockRelease) await lockRelease().catch(() => undefined);
    log.debug('backup: session ended, lock released');
  }
}

/**
 * Before anything is written: the cluster facts, a standby only with --from-standby (noted
 * otherwise), the data directory, the WAL's way into the repository, the stanza and the codec.
 */
async function checkServer(client: Client, repo: Repository, settings: BackupSettings, o: BackupOptions, notes: string[]): Promise<ServerChecked> {
  const facts = await clusterFacts(client);
  const fromStandby = facts.inRecovery;
  if (o.fromStandby && !facts.inRecovery) throw new ConfigError('--from-standby: the server is not a standby (pg_is_in_recovery() is false)');
  if (facts.inRecovery && !o.fromStandby) notes.push('the server is a hot standby: backing up from the standby');
  const pgdata = await checkDataDirectory(settings.pgdata, facts);
  if (!o.storeWal && !fromStandby && facts.archiveMode === 'off') {
    const { liveReceivers } = await import('../wal/received-wal.js');
    const receivers = await liveReceivers(repo);
    if (receivers.length === 0) {
      throw new ConfigError("archive_mode is off and no pgark receive is streaming into this stanza: the WAL this backup needs would never reach the repository; set archive_command = 'pgark wal-push %p', run pgark receive, or pass --store-wal");
    }
    notes.push(`archive_mode is off: the backup's WAL comes from pgark receive (${receivers.join(', ')})`);
  }
  const stanzaMeta = await repo.ensureStanza(
    { systemIdentifier: facts.systemIdentifier, pgVersion: facts.pgVersion, walSegmentSize: facts.walSegmentSize },
    settings.codec, 'backup');
  const codec = settings.codecExplicit ? settings.codec : stanzaMeta.codec;
  return { facts, fromStandby, pgdata, codec };
}

/** The backup stores at most this many of the newest segments of its range itself (the archiver takes the older ones meanwhile). */
const SELF_PUSH_MAX = 16;

/**
 * Just before pg_backup_stop: whether this backup stores its ready stop segments itself
 * (stop-wal.ts selfPushRefusal, the reason logged when not), and if so the lock of the segment
 * the stop record goes into, taken now (StopWalPusher.prelock).
 */
async function stopWalPusher(client: Client, repo: Repository, settings: BackupSettings, o: BackupOptions, server: ServerChecked, startTimeline: number): Promise<StopWalPusher | undefined> {
  const { facts } = server;
  const possible = !o.storeWal && !server.fromStandby && settings.moreRepos.length === 0 && (facts.archiveMode === 'on' || facts.archiveMode === 'always');
  const archiver = possible ? await archiverState(client) : undefined;
  const lastArchivedInRepo = archiver?.lastArchivedWal !== undefined ? await inRepository(repo, archiver.lastArchivedWal) : undefined;
  const walDir = join(server.pgdata, 'pg_wal');
  const ownsWalDir = possible && (await stat(walDir).then((st) => st.uid === process.getuid?.(), () => false));
  const refusal = selfPushRefusal({
    storeWal: o.storeWal, fromStandby: server.fromStandby, archiveMode: facts.archiveMode, moreRepos: settings.moreRepos.length, ownsWalDir,
    startTimeline, stopTimeline: facts.timeline, archiver: archiver ?? { lastArchivedWal: undefined, lastArchivedAt: undefined, lastFailedAt: undefined }, lastArchivedInRepo,
  });
  if (refusal !== undefined || archiver === undefined) {
    log.debug(`backup: the stop WAL is left to archive_command alone: ${refusal ?? 'not possible'}`);
    return undefined;
  }
  const pusher = new StopWalPusher(repo, walDir, pushTarget(requireRepo(settings), settings.stanza), server.codec, settings.compressLevel);
  await pusher.prelock(segmentName(lsnToSegment(parseLsn(archiver.insertLsn), facts.timeline, facts.walSegmentSize), facts.walSegmentSize));
  return pusher;
}

/** Remove what uncommitted (killed) runs left behind, under the backup lock; their ids. */
export async function removeStale(repo: Repository, existing: readonly BackupInfo[], notes: string[]): Promise<string[]> {
  const stale = [...await uncommittedBackupIds(repo, new Set(existing.map((b) => b.id)))];
  for (const id of stale) {
    const n = await removeBackup(repo, id, false);
    notes.push(`removed ${n} objects of backup ${id}, which never committed (interrupted run)`);
  }
  return stale;
}

/**
 * Up to this many --jobs lanes run on the main thread itself, without worker threads: a lane's
 * JS work per byte is small (sha256 and page checksums, ~1 ms per MiB), its reads run on
 * libuv's threadpool (UV_THREADPOOL_SIZE = jobs, bin/pgark.js), while a worker thread costs its
 * own isolate: start-up, JIT warm-up and GC heap (measured at --jobs 2 on a loaded machine:
 * 6-33 MiB less peak RSS, CPU the same or less; bench/results/backup.md). lz4 runs on the thread
 * of the lane since issue 17's memory work (runBackup; lz4-napi's allocator kept the threadpool's
 * outputs): both lanes here compress on this thread (bench/results/memory.md for what that did to
 * CPU and wall time). 1 gives the previous layout (one lane here, the others in workers).
 */
export const MAIN_THREAD_LANES = 2;

const BACKUP_WORKER = new URL('./backup-worker.js', import.meta.url);

/** Copy the data directory: --jobs lanes on this thread, or with worker threads beyond MAIN_THREAD_LANES (backup-worker.ts). */
async function copyDataFiles(repo: Repository, init: BackupWorkerInit, jobs: number, tasks: BackupTask[], progress: Progress | undefined, id: string, worker: typeof import('./backup-worker.js'), started: StartedThreads | undefined): Promise<Copied> {
  const copied = emptyCopy();
  const { runBackupTask } = worker;
  const done = (r: BackupTaskResult) => addTaskResult(copied, r, id);
  if (jobs <= MAIN_THREAD_LANES) {
    const clock = log.enabled('debug') ? new LaneClock(Math.min(jobs, tasks.length), performance.now()) : undefined;
    await runLanes(jobs, tasks, async (task) => {
      if (!clock) return runBackupTask(init, task, (bytes) => progress?.add(bytes), repo);
      const ticket = clock.start(performance.now());
      const r = await runBackupTask(init, task, (bytes) => progress?.add(bytes), repo);
      clock.end(ticket, performance.now(), task.bytes);
      return r;
    }, done);
    if (clock) log.debug(`backup: ${describeLanes(clock.summary())}`);
  } else {
    // One lane runs on this thread (one isolate fewer); its heavy work (reads, sha256, lz4) is native.
    await runPool<BackupWorkerInit, BackupTask, BackupTaskResult>(
      BACKUP_WORKER, jobs, init, tasks,
      (bytes) => progress?.add(bytes),
      done,
      (_init, task, onProgress) => runBackupTask(init, task, onProgress, repo),
      started);
  }
  finishParts(copied.files.values());
  return copied;
}

/**
 * The files an incremental took from its parent without reading them (unchanged.ts): their
 * entries, built from the parent's; `extraN` is the number of the object storeExtras writes.
 */
export function addUnchanged(copied: Copied, files: readonly WalkFile[], unchanged: ReadonlySet<string>, parent: ReadonlyMap<string, FileEntry>, extraN: number): void {
  if (unchanged.size === 0) return;
  for (const f of files) {
    if (!unchanged.has(f.path)) continue;
    const e = reuseEntry(parent.get(f.path)!, f, extraN);
    copied.files.set(e.path, e);
    copied.stats.unchanged++;
    copied.stats.unchangedBytes += e.size;
    log.trace(() => `backup: ${e.path}: ${e.size} bytes, size and mtime unchanged since the parent: not read, its copy is used`);
  }
}

/** backup_label and tablespace_map (and the WAL `walNames`, with --store-wal) go in one more object, number `n`. */
export async function storeExtras(repo: Repository, server: StoreFacts, id: string, n: number, stop: { labelFile: string; spcmapFile: string }, walNames: string[], copied: Copied): Promise<void> {
  const extra: Array<{ path: string; body: () => Promise<Buffer> }> = [
    { path: 'backup_label', body: async () => Buffer.from(stop.labelFile) },
  ];
  if (stop.spcmapFile !== '') extra.push({ path: 'tablespace_map', body: async () => Buffer.from(stop.spcmapFile) });
  for (const name of walNames) extra.push({ path: `pg_wal/${name}`, body: () => readWalForBackup(server.pgdata, name, server.facts.walSegmentSize) });
  const extraEntries: FileEntry[] = [];
  const extraRes = await repo.putObject(dataObjectKey(repo.stanza, id, n), () => Readable.from((async function* () {
    extraEntries.length = 0;
    let offset = 0;
    for (const x of extra) {
      const body = await x.body();
      extraEntries.push({ t: 'file', path: x.path, size: body.length, mode: 0o600, mtimeMs: Date.now(), sha256: createHash('sha256').update(body).digest('hex'),
        ...(body.length > 0 ? { object: { backup: id, n, offset } } : {}) });
      offset += body.length;
      yield body;
    }
  })()), { codec: server.codec });
  for (const e of extraEntries) copied.files.set(e.path, e);
  copied.stats.raw += extraRes.rawSize;
  copied.stats.stored += extraRes.storedSize;
  copied.stats.objects++;
}

/** Write the manifest (files sorted, pg_wal listed with --store-wal); what the catalog entry says of it. `owner`: the data directory's, looked up earlier (else here). */
export async function storeManifest(repo: Repository, server: StoreFacts, b: { id: string; type: 'full' | 'incr'; parent: Pick<BackupInfo, 'id'> | undefined }, walk: { dirs: Manifest['dirs']; links: Manifest['links'] }, storeWal: boolean, copied: Copied, copyStartMs?: number, owner?: Promise<DataOwner>): Promise<BackupInfo['manifest']> {
  const { facts } = server;
  const dirs = [...walk.dirs].sort((x, y) => (x.path < y.path ? -1 : 1));
  if (storeWal && !dirs.some((d) => d.path === 'pg_wal')) dirs.push({ t: 'dir', path: 'pg_wal', mode: 0o700 });
  const manifest: Manifest = {
    header: {
      t: 'header', format: MANIFEST_FORMAT, id: b.id, type: b.type, ...(b.parent ? { parent: b.parent.id } : {}),
      pgVersion: facts.pgVersion, pgdata: facts.dataDirectory, blockSize: facts.blockSize, relsegBlocks: facts.relsegBlocks,
      tablespaces: facts.tablespaces, owner: await (owner ?? dataDirectoryOwner(server.pgdata)), ...(copyStartMs !== undefined ? { copyStartMs } : {}),
    },
    dirs,
    links: walk.links,
    files: new Map([...copied.files.entries()].sort((x, y) => (x[0] < y[0] ? -1 : 1))),
  };
  const body = Buffer.from([...manifestLines(manifest)].join(''));
  const mres = await repo.putObject(manifestKey(repo.stanza, b.id), () => Readable.from([body]), { codec: server.codec });
  copied.stats.stored += mres.storedSize;
  return { key: manifestKey(repo.stanza, b.id), sha256: createHash('sha256').update(body).digest('hex'), size: body.length };
}

/** The commit point: the pin (--keep), then the catalog entry, only while the backup lock is still ours. */
export async function commitBackup(repo: Repository, lock: { lost: boolean }, info: BackupInfo, keep: boolean): Promise<void> {
  if (lock.lost) throw new PgarkError('the backup lock was taken over by another process during the backup; not committing');
  if (keep) await repo.putJson(pinKey(repo.stanza, info.id), { id: info.id, pinnedAt: new Date().toISOString(), by: 'backup --keep' });
  await repo.putJson(catalogKey(repo.stanza, info.id), info, true);
}

/** The data directory given (or the server's own) must be this cluster's. */
async function checkDataDirectory(given: string | undefined, facts: ClusterFacts): Promise<string> {
  const dir = given ?? facts.dataDirectory;
  let sysid: string;
  try {
    sysid = await readSystemIdentifier(dir);
  } catch (err) {
    throw new ConfigError(`unable to read the data directory '${dir}' (pgark backup runs on the database host, as a user that can read it): ${(err as Error).message}`);
  }
  if (sysid !== facts.systemIdentifier) {
    throw new ConfigError(`data directory '${dir}' belongs to system ${sysid}, but the server pgark connected to is system ${facts.systemIdentifier}: check --pgdata and the connection settings`);
  }
  return realpath(dir);
}

async function readWalForBackup(pgdata: string, name: string, segmentSize: number): Promise<Buffer> {
  const buf = await readFile(`${pgdata}/pg_wal/${name}`).catch((err: unknown) => {
    throw new PgarkError(`--store-wal: unable to read WAL segment ${name} from pg_wal: ${(err as Error).message}`);
  });
  if (buf.length !== segmentSize) throw new PgarkError(`--store-wal: pg_wal/${name} is ${buf.length} bytes, expected ${segmentSize}`);
  return buf;
}

/**
 * Until every segment `names` is in the repository, or archive-timeout. Polls every 20 ms for the
 * first second (the stop segment usually arrives within one archive_command run), then every 100 ms.
 */
export async function waitForWal(repo: Repository, names: string[], timeoutSec: number, fromStandby: boolean): Promise<void> {
  const began = Date.now();
  const deadline = began + timeoutSec * 1000;
  const missing = new Set(names);
  for (;;) {
    for (const name of [...missing]) if (await repo.stat(walKey(repo.stanza, name))) missing.delete(name);
    if (missing.size === 0) return;
    if (Date.now() > deadline) {
      const list = [...missing].slice(0, 5).join(', ');
      throw new PgarkError(`WAL needed by the backup did not reach the repository within ${timeoutSec}s (archive-timeout): missing ${list}` +
        (fromStandby ? '; on a standby, the primary archives the last segment when it switches WAL (pg_switch_wal() or archive_timeout on the primary)'
          : "; check archive_command = 'pgark wal-push %p' and pg_stat_archiver"));
    }
    await sleep(Date.now() - began < 1000 ? 20 : 100);
  }
}
