/**
 * `pgark backup`: a full or block-incremental base backup of a running cluster on this host.
 *
 *  1. connect (libpq environment or --dsn), read the cluster facts, check the data directory
 *  2. take the stanza's backup lock; remove what uncommitted (killed) runs left behind
 *  3. choose the type (auto: incremental on the newest backup unless there is none, its chain is
 *     at incr-chain-max, or it is on another timeline)
 *  4. pg_backup_start; copy the data directory with worker threads (backup-worker.ts)
 *  5. pg_backup_stop; store backup_label and tablespace_map
 *  6. wait until the WAL from start to stop is in the repository (or store it: --store-wal)
 *  7. write the manifest, then the catalog entry: the commit point
 */
import { hostname, availableParallelism } from 'node:os';
import { realpath, readFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Client } from 'pg';
import { ConfigError, InvalidInputError, PgarkError } from '../common/errors.js';
import { log } from '../common/log.js';
import { Progress } from '../common/progress.js';
import { runPool } from '../common/worker-pool.js';
import type { Settings } from '../config/resolve.js';
import { readSystemIdentifier } from '../pg/control-file.js';
import { connectPg } from '../pg/connect.js';
import { backupIdFor, catalogKey, dataObjectKey, manifestKey, pinKey, walKey } from '../repo/layout.js';
import { acquireRepoLock } from '../repo/repo-lock.js';
import type { Repository } from '../repo/repository.js';
import { lsnToSegment, parseLsn, parseSegmentName, segmentName } from '../wal/segment-name.js';
import { PGARK_VERSION } from '../version.js';
import { BACKUP_INFO_FORMAT, type BackupInfo } from '../catalog/backup-info.js';
import { listBackups, readManifest, removeBackup, uncommittedBackupIds } from '../catalog/catalog.js';
import type { BackupWorkerInit, BackupTaskResult } from './backup-worker.js';
import { backupStart, backupStop, clusterFacts, parseBackupLabel, type ClusterFacts } from './pg-api.js';
import { manifestLines, MANIFEST_FORMAT, partsDigest, type FileEntry, type Manifest } from '../catalog/manifest.js';
import { planTasks, type BackupTask } from './tasks.js';
import { walkDataDirectory } from './walk.js';

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
}

export interface BackupOutcome {
  info: BackupInfo;
  checksumFailures: Array<{ path: string; blocks: number[] }>;
  notes: string[];
}

const LABEL_MAX = 200;

export async function runBackup(settings: Settings, repo: Repository, o: BackupOptions): Promise<BackupOutcome> {
  if (o.label !== undefined && (o.label.length > LABEL_MAX || /[\n\r\0]/.test(o.label))) {
    throw new InvalidInputError(`invalid --label: at most ${LABEL_MAX} characters on one line`);
  }
  const notes: string[] = [];
  const jobs = o.jobs ?? (settings.jobsExplicit ? settings.jobs : availableParallelism());
  const client = await connectPg(o.dsn, 'pgark backup');
  let lockRelease: (() => Promise<void>) | undefined;
  try {
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
    const lock = await acquireRepoLock(repo, 'backup', { purpose: 'backup' });
    lockRelease = () => lock.release();

    const existing = await listBackups(repo);
    const stale = await uncommittedBackupIds(repo, new Set(existing.map((b) => b.id)));
    for (const id of stale) {
      const n = await removeBackup(repo, id, false);
      notes.push(`removed ${n} objects of backup ${id}, which never committed (interrupted run)`);
    }

    // Type and parent.
    let type: 'full' | 'incr' = o.type === 'incr' ? 'incr' : 'full';
    const newest = existing[existing.length - 1];
    if (o.type !== 'full') {
      const why = !newest ? 'there is no backup to build on'
        : newest.chain.length - 1 >= settings.incrChainMax ? `the chain of ${newest.id} already has ${newest.chain.length - 1} incremental backups (incr-chain-max ${settings.incrChainMax})`
        : newest.stop.timeline !== facts.timeline ? `the newest backup ${newest.id} is on timeline ${newest.stop.timeline}, the cluster on ${facts.timeline}`
        : undefined;
      if (why && o.type === 'incr') throw new ConfigError(`cannot take an incremental backup: ${why} (use --type full or auto)`);
      if (why) notes.push(`taking a full backup: ${why}`);
      else type = 'incr';
    }
    const parent = type === 'incr' ? newest! : undefined;
    const parentManifest = parent ? await readManifest(repo, parent) : undefined;

    // Ids sort by time and are never reused, not even the id of an interrupted run whose objects
    // were just removed: a new id is later than every committed and every stale one.
    let now = new Date();
    const last = [...existing.map((b) => b.id), ...stale].sort().pop();
    let id = backupIdFor(now, type);
    while (last !== undefined && id.slice(0, 15) <= last.slice(0, 15)) {
      now = new Date(now.getTime() + 1000);
      id = backupIdFor(now, type);
    }

    const started = Date.now();
    const start = await backupStart(client, facts, `pgark backup ${id}`, o.checkpoint === 'fast');
    log.info(`backup ${id}: started at ${start.lsn} on timeline ${start.timeline}`);

    const walk = await walkDataDirectory(pgdata, facts.pgVersion);
    const tasks = planTasks(walk.files, parentManifest?.files);
    const total = walk.files.reduce((n, f) => n + f.size, 0);
    const progress = o.progress ? new Progress({ what: 'backup', totalBytes: total, out: process.stderr, tty: process.stderr.isTTY === true }) : undefined;

    const init: BackupWorkerInit = {
      settings,
      backupId: id,
      codec,
      level: settings.compressLevel,
      checksums: facts.dataChecksums,
      blockSize: facts.blockSize,
      relsegBlocks: facts.relsegBlocks,
      startLsn: start.lsn,
      ...(parent ? { parentStartLsn: parent.start.lsn } : {}),
    };
    const files = new Map<string, FileEntry>();
    const stats = { raw: 0, stored: 0, read: 0, changed: 0, reused: 0, objects: 0 };
    await runPool<BackupWorkerInit, BackupTask, BackupTaskResult>(
      new URL('./backup-worker.js', import.meta.url), jobs, init, tasks,
      (bytes) => progress?.add(bytes),
      (r) => {
        for (const e of r.entries) {
          const had = files.get(e.path);
          if (e.parts && had?.parts) {
            had.parts.push(...e.parts);
            had.size = Math.max(had.size, e.size);
            if (e.checksumFailures) had.checksumFailures = [...(had.checksumFailures ?? []), ...e.checksumFailures];
          } else files.set(e.path, e);
        }
        stats.raw += r.rawBytes;
        stats.stored += r.storedBytes;
        stats.read += r.readBytes;
        stats.changed += r.changedBlocks;
        stats.reused += r.reusedBlocks;
        stats.objects++;
      });

    for (const e of files.values()) {
      if (!e.parts) continue;
      e.parts = e.parts.filter((p) => p.size > 0).sort((x, y) => x.start - y.start);
      const lastPart = e.parts[e.parts.length - 1];
      e.size = lastPart ? lastPart.start + lastPart.size : 0;
      e.sha256 = partsDigest(e.parts);
      if (e.checksumFailures) e.checksumFailures.sort((x, y) => x - y);
    }
    log.info(`backup ${id}: copied ${stats.read} bytes into ${stats.objects} objects`);
    progress?.phase('stopping backup');
    const stop = await backupStop(client, facts);
    const label = parseBackupLabel(stop.labelFile);
    if (parseLsn(label.startLsn) !== parseLsn(start.lsn)) throw new PgarkError(`backup_label start ${label.startLsn} differs from pg_backup_start's ${start.lsn}`);
    const stopTimeline = facts.inRecovery ? start.timeline : facts.timeline;
    // The last byte of WAL needed is just before the stop LSN.
    const firstSeg = parseSegmentName(label.startWalFile, facts.walSegmentSize);
    const lastSeg = lsnToSegment(parseLsn(stop.lsn) - 1n, stopTimeline, facts.walSegmentSize);
    const walNames: string[] = [];
    for (let s = firstSeg.segno; s <= lastSeg.segno; s++) walNames.push(segmentName({ timeline: stopTimeline, segno: s }, facts.walSegmentSize));

    // backup_label and tablespace_map (and the WAL with --store-wal) go in one more object.
    const extra: Array<{ path: string; body: () => Promise<Buffer> }> = [
      { path: 'backup_label', body: async () => Buffer.from(stop.labelFile) },
    ];
    if (stop.spcmapFile !== '') extra.push({ path: 'tablespace_map', body: async () => Buffer.from(stop.spcmapFile) });
    if (o.storeWal) {
      progress?.phase('storing WAL');
      for (const name of walNames) extra.push({ path: `pg_wal/${name}`, body: () => readWalForBackup(pgdata, name, facts.walSegmentSize) });
    }
    const extraN = tasks.length;
    const extraEntries: FileEntry[] = [];
    const extraRes = await repo.putObject(dataObjectKey(repo.stanza, id, extraN), () => Readable.from((async function* () {
      extraEntries.length = 0;
      let offset = 0;
      for (const x of extra) {
        const body = await x.body();
        extraEntries.push({ t: 'file', path: x.path, size: body.length, mode: 0o600, mtimeMs: Date.now(), sha256: createHash('sha256').update(body).digest('hex'),
          ...(body.length > 0 ? { object: { backup: id, n: extraN, offset } } : {}) });
        offset += body.length;
        yield body;
      }
    })()), { codec });
    for (const e of extraEntries) files.set(e.path, e);
    stats.raw += extraRes.rawSize;
    stats.stored += extraRes.storedSize;
    stats.objects++;

    log.info(`backup ${id}: stopped at ${stop.lsn}`);
    if (!o.storeWal) {
      progress?.phase(`waiting for WAL ${walNames[0]}..${walNames[walNames.length - 1]} to be archived`);
      await waitForWal(repo, walNames, settings.archiveTimeoutSec, fromStandby);
    }

    log.info(`backup ${id}: WAL ${walNames[0]}..${walNames[walNames.length - 1]} in the repository`);
    // Manifest, then the catalog entry.
    const dirs = [...walk.dirs].sort((a, b) => (a.path < b.path ? -1 : 1));
    if (o.storeWal && !dirs.some((d) => d.path === 'pg_wal')) dirs.push({ t: 'dir', path: 'pg_wal', mode: 0o700 });
    const manifest: Manifest = {
      header: {
        t: 'header', format: MANIFEST_FORMAT, id, type, ...(parent ? { parent: parent.id } : {}),
        pgVersion: facts.pgVersion, pgdata: facts.dataDirectory, blockSize: facts.blockSize, relsegBlocks: facts.relsegBlocks,
        tablespaces: facts.tablespaces,
      },
      dirs,
      links: walk.links,
      files: new Map([...files.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1))),
    };
    const body = Buffer.from([...manifestLines(manifest)].join(''));
    const mres = await repo.putObject(manifestKey(repo.stanza, id), () => Readable.from([body]), { codec });
    stats.stored += mres.storedSize;

    const failures = [...files.values()].filter((f) => f.checksumFailures).map((f) => ({ path: f.path, blocks: f.checksumFailures! }));
    const info: BackupInfo = {
      format: BACKUP_INFO_FORMAT,
      id,
      type,
      ...(parent ? { parent: parent.id } : {}),
      chain: parent ? [...parent.chain, id] : [id],
      ...(o.label !== undefined ? { label: o.label } : {}),
      start: { time: start.time.toISOString(), lsn: start.lsn, timeline: start.timeline, walFile: label.startWalFile },
      stop: { time: stop.time.toISOString(), lsn: stop.lsn, timeline: stopTimeline, walFile: walNames[walNames.length - 1]! },
      walRange: { first: walNames[0]!, last: walNames[walNames.length - 1]! },
      walStored: o.storeWal,
      pgVersion: facts.pgVersion,
      systemIdentifier: facts.systemIdentifier,
      dataChecksums: facts.dataChecksums,
      fromStandby,
      size: {
        original: stats.read, stored: stats.stored, files: files.size, objects: stats.objects + 1,
        ...(type === 'incr' ? { changedBlocks: stats.changed, reusedBlocks: stats.reused } : {}),
      },
      durationMs: Date.now() - started,
      checksumFailures: failures.reduce((n, f) => n + f.blocks.length, 0),
      codec,
      manifest: { key: manifestKey(repo.stanza, id), sha256: createHash('sha256').update(body).digest('hex'), size: body.length },
      pgarkVersion: PGARK_VERSION,
      host: hostname(),
    };
    if (lock.lost) throw new PgarkError('the backup lock was taken over by another process during the backup; not committing');
    if (o.keep) await repo.putJson(pinKey(repo.stanza, id), { id, pinnedAt: new Date().toISOString(), by: 'backup --keep' });
    await repo.putJson(catalogKey(repo.stanza, id), info, true);
    progress?.finish({ id, type, bytes: stats.read, stored: stats.stored });
    return { info, checksumFailures: failures, notes };
  } finally {
    await client.end().catch(() => undefined); // ends an unfinished backup on the server side
    if (lockRelease) await lockRelease().catch(() => undefined);
  }
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

async function waitForWal(repo: Repository, names: string[], timeoutSec: number, fromStandby: boolean): Promise<void> {
  const deadline = Date.now() + timeoutSec * 1000;
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
    await sleep(100);
  }
}
