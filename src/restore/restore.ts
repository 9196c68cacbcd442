/**
 * `pgark restore`: write a backup (and its chain) into a data directory, ready to start.
 *
 * Order: check the target and the recovery target before writing anything; create directories
 * and tablespace links; write every file through sha256 verification (worker threads); write
 * global/pg_control under a temporary name and rename it last, so that an interrupted restore
 * can never be started by mistake; then postgresql.auto.conf and the signal file.
 */
import { availableParallelism } from 'node:os';
import { chmod, lstat, mkdir, readFile, rename, rm, symlink } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ConfigError, isNodeError, PgarkError } from '../common/errors.js';
import { log, PhaseTimer } from '../common/log.js';
import { Progress } from '../common/progress.js';
import { isProcessAlive } from '../common/process.js';
import { buildRestoreCommand, selfCommand } from '../common/self-command.js';
import { runLanes, runPool, startThreads, stopThreads, type StartedThreads } from '../common/worker-pool.js';
import type { RepositorySettings, Settings } from '../config/resolve.js';
import { commandSettings } from '../config/settings-transport.js';
import type { Repository } from '../repo/repository.js';
import type { BackupInfo } from '../catalog/backup-info.js';
import { chainOf, listBackups, readManifest } from '../catalog/catalog.js';
import type { Manifest } from '../catalog/manifest.js';
import { planRestore, type MultiPieceFile, type RestoreTask } from './plan.js';
import { PartFiles } from './part-files.js';
import { mergeAutoConf, recoverySettings, signalFile } from './recovery-conf.js';
import { validateTarget, type RecoveryTarget } from './recovery-target.js';
import { parseTablespaceMap, resolveTablespaceMap } from './tablespace-map.js';
import { closeRestoreSources, runRestoreTask, type RestoreTaskResult, type RestoreWorkerInit } from './restore-worker.js';
import { targetPath, type PathMapping } from './restore-worker-paths.js';
import { openOwnFile, openPrivateForWrite } from './private-file.js';
import { fsyncDir, writeTextAtomic } from '../common/fs-atomic.js';
import { emptyTargets, HOLD_BACK, HOLD_BACK_AS, isEmptyDir, linkNotes, removeExtras } from './restore-clean.js';
import { tablespaceTargets, tablespaceMapText } from './restore-remap.js';
import { chooseBackup } from './restore-select.js';
import { chooseAcrossRepos, stateText, type RepoListing } from './repo-choice.js';
import { readFailure, type RestoreSource } from './restore-sources.js';
import { RepoSet } from '../repo/repo-set.js';
import { clusterById } from '../repo/stanza-meta.js';
import { chownTree, planRestoreOwner, type ChownPlan } from './owner-apply.js';

/**
 * What restore reads from the settings: the parallelism (the core count unless jobs was given),
 * what restore_command carries (config/settings-transport.ts commandSettings), and what the
 * worker threads open the repository with.
 */
export type RestoreSettings = Pick<Settings, 'jobs' | 'jobsExplicit' | 'configPath' | 'configIncludePath' | 'given'> & RepositorySettings;

export interface RestoreOptions {
  ref: string;
  pgdata: string;
  target: RecoveryTarget;
  standby: boolean;
  primaryConninfo?: string | undefined;
  primarySlotName?: string | undefined;
  keepArchive: boolean;
  tablespaceMap: string[];
  jobs?: number | undefined;
  delta: boolean;
  force: boolean;
  progress: boolean;
  /** `--owner user[:group]`: who owns the restored files when pgark runs as root (restore-owner.ts). */
  owner?: string | undefined;
}

export interface RestoreOutcome {
  backup: BackupInfo;
  /** The repository the backup was read from ('repo', or 'repo2', 'repo3': repo-choice.ts). */
  repo: string;
  pgdata: string;
  filesWritten: number;
  filesUnchanged: number;
  filesRemoved: number;
  bytesWritten: number;
  durationMs: number;
  settings: Array<[string, string]>;
  signal: string;
  notes: string[];
  /** Set when running as root: the files were given to this user (start PostgreSQL as them). */
  owner?: ChownPlan | undefined;
}

export { chooseBackup, parseTargetTime } from './restore-select.js';

/**
 * Write a backup into a data directory, in steps: validate the options and the target, select the
 * backup and its chain, remap the tablespaces, clean (--force, --delta), lay out the directories
 * and links, process the files (worker threads), then the configuration, and pg_control last.
 */
export async function runRestore(repos: Repository | RepoSet, settings: RestoreSettings, o: RestoreOptions): Promise<RestoreOutcome> {
  const early: { threads?: StartedThreads | undefined } = {};
  try {
    return await restoreWith(repos, settings, o, early);
  } finally {
    // Worker threads started early (earlyThreads) and not ended by the pool: a failure before it ran.
    await stopThreads(early.threads);
  }
}

async function restoreWith(repos: Repository | RepoSet, settings: RestoreSettings, o: RestoreOptions, early: { threads?: StartedThreads | undefined }): Promise<RestoreOutcome> {
  const started = Date.now();
  const phases = new PhaseTimer('restore');
  const notes: string[] = [];
  const target = validateTarget(o.target);
  const pgdata = resolve(o.pgdata);
  const jobs = o.jobs ?? (settings.jobsExplicit ? settings.jobs : availableParallelism());
  if (o.delta && o.force) throw new ConfigError('--delta and --force cannot be used together');
  // Build the recovery settings first: a bad flag must fail before anything is written.
  // Repository, stanza, config file and storage settings given by flag or environment travel
  // with restore_command (config/settings-transport.ts).
  const restoreCommand = buildRestoreCommand({ ...selfCommand(), ...commandSettings(settings) });
  const gucs = recoverySettings({ restoreCommand, target, standby: o.standby, keepArchive: o.keepArchive,
    ...(o.primaryConninfo !== undefined ? { primaryConninfo: o.primaryConninfo } : {}),
    ...(o.primarySlotName !== undefined ? { primarySlotName: o.primarySlotName } : {}) });

  const empty = await checkTargetDirectory(pgdata, o);
  const set = repos instanceof RepoSet ? repos : new RepoSet([{ name: 'repo', mode: 'required', repo: repos, settings }]);
  // The worker threads start while the manifests are read (earlyThreads).
  const { backup, manifests, manifest, source } = await selectBackupFromSet(set, o.ref, target, notes, (b) => (early.threads = earlyThreads(jobs, b)));
  // Running as root: decide who gets the files before anything is written (or refuse).
  const owner = await planRestoreOwner({ option: o.owner, recorded: manifest.header.owner, backupId: backup.id, pgdata });
  if (owner) notes.push(`running as root: the restored files belong to ${owner.user}:${owner.group} (${owner.source}); start PostgreSQL as ${owner.user}`);
  phases.lap('choose the backup and read its manifests', `${backup.id}, chain of ${manifests.length}`);
  const tablespaces = await remapTablespaces(manifest, o);
  if (o.force && empty === false) await emptyTargets(pgdata, tablespaces);
  await mkdir(pgdata, { recursive: true, mode: 0o700 });
  await chmod(pgdata, 0o700);
  // Fails here, before any file is written, where chown is impossible (e.g. NFS root_squash).
  if (owner) await chownTree(pgdata, owner);
  const init: RestoreWorkerInit = {
    settings: source.settings, repoName: source.name, fallbacks: source.fallbacks, pgdata, tablespaces, delta: o.delta, holdBack: { [HOLD_BACK]: HOLD_BACK_AS },
  };
  let removed = 0;
  if (o.delta) {
    const extras = await removeExtras(pgdata, manifest, tablespaces, init);
    removed = extras.removed;
    notes.push(...linkNotes(extras.links));
  }
  await layOut(init, manifest);
  phases.lap('prepare directories', `${manifest.dirs.length} directories${o.delta ? `, ${removed} extra entries removed (--delta)` : ''}`);
  const { res, progress, tasks, here } = await processFiles(source.repo, init, manifests, jobs, o, early.threads);
  phases.lap('copy files', `${res.written} written (${res.bytes} bytes), ${res.skipped} unchanged, ${tasks} tasks, ${jobs} jobs${here ? ' on this thread' : ''}`);
  await syncDirectories(init, manifest);
  const signal = await writeConfiguration(init, backup, manifest, gucs, o.standby, owner);
  phases.lap('recovery settings and pg_control');
  phases.done(`backup ${backup.id}${set.members.length > 1 ? ` from ${source.name}` : ''} into ${pgdata}`);
  progress?.finish({ id: backup.id, files: res.written, unchanged: res.skipped });
  return {
    backup, repo: source.name, pgdata, filesWritten: res.written, filesUnchanged: res.skipped, filesRemoved: removed, bytesWritten: res.bytes,
    durationMs: Date.now() - started, settings: gucs, signal, notes, ...(owner ? { owner } : {}),
  };
}

const RESTORE_WORKER = new URL('./restore-worker.js', import.meta.url);

/**
 * The worker threads of a restore that will run them (!lanesHere), started as soon as the backup
 * is chosen: their start-up (~0.1-0.2 s CPU each: an isolate, restore-worker's modules) then runs
 * on a core left idle while this thread reads the manifests and lays out the directories, instead
 * of after. Decided on the bytes the backup read (a full backup's are the restore's; an
 * incremental's fewer: then its threads start when the pool does, as before).
 */
function earlyThreads(jobs: number, backup: BackupInfo): StartedThreads | undefined {
  return jobs >= 2 && !lanesHere(jobs, backup.size.original) ? startThreads(RESTORE_WORKER, jobs - 1) : undefined;
}

/** Refuse a target where a server runs, or that is not empty without --delta or --force. Whether it was empty (null: absent). */
export async function checkTargetDirectory(pgdata: string, o: Pick<RestoreOptions, 'delta' | 'force'>): Promise<boolean | null> {
  const empty = await isEmptyDir(pgdata);
  if (empty === false) {
    const pid = await readFile(join(pgdata, 'postmaster.pid'), 'utf8').catch(() => undefined);
    if (pid !== undefined) {
      const n = Number(pid.split('\n')[0]);
      if (Number.isInteger(n) && n > 0 && isProcessAlive(n)) throw new ConfigError(`a PostgreSQL server (pid ${n}) is running in '${pgdata}': stop it before restoring into it`);
    }
    if (!o.delta && !o.force) throw new ConfigError(`target directory '${pgdata}' is not empty: pass --delta to update it in place (only files that differ are written) or --force to replace its contents`);
  }
  return empty;
}

/** Each repository's backups, or why it could not answer (repo-choice.ts RepoListing), and the open ones by name. */
export async function listRepoSet(set: RepoSet): Promise<{ listings: RepoListing[]; byName: Map<string, { repo: Repository; settings: RepositorySettings }> }> {
  const listings: RepoListing[] = [];
  const byName = new Map<string, { repo: Repository; settings: RepositorySettings }>();
  for (const m of set.members) {
    const repo = await set.use(m);
    if (!repo) {
      listings.push({ name: m.name, error: m.openError });
      continue;
    }
    try {
      listings.push({ name: m.name, backups: await listBackups(repo) });
      if (!m.settings) throw new Error(`restore: no settings for ${m.name}`);
      byName.set(m.name, { repo, settings: m.settings });
    } catch (err) {
      listings.push({ name: m.name, error: err });
    }
  }
  return { listings, byName };
}

/**
 * With several repositories: list each (an unreachable one is skipped with a warning, never
 * taken as "no backups"), choose the repository and the backup (repo-choice.ts), and read the
 * chain's manifests from it, or from the next repository holding the same backup when it cannot
 * be read. Which repository the objects are read from, and the ones to fail over to.
 */
export async function selectBackupFromSet(set: RepoSet, ref: string, target: RecoveryTarget, notes: string[], chosen?: (backup: BackupInfo) => void): Promise<{ backup: BackupInfo; manifests: Manifest[]; manifest: Manifest; source: RestoreSource & { fallbacks: RestoreSource[]; repo: Repository } }> {
  const { listings, byName } = await listRepoSet(set);
  const choice = chooseAcrossRepos(listings, ref, target);
  for (const u of choice.unreachable) {
    log.warn(`${stateText(u.name, u.error)}: skipped (its backups could not be listed)`);
    notes.push(`${u.name} could not be read and was skipped: ${u.error instanceof Error ? u.error.message : String(u.error)}`);
  }
  if (choice.unreachable.length > 0) {
    // wal-fetch never answers "missing" while a repository cannot answer (wal/wal-fetch-set.ts).
    notes.push(`restore_command names every repository: while ${choice.unreachable.map((u) => u.name).join(', ')} cannot be read, PostgreSQL stops recovery at the first file no repository has ` +
      '(a timeline history file at start) instead of ending it early; to recover from the others alone, restore with --repo <their location>');
  }
  if (choice.note) notes.push(choice.note);
  chosen?.(choice.backup);
  const order = [choice.repo, ...choice.fallbacks];
  for (const [i, name] of order.entries()) {
    const { repo } = byName.get(name)!;
    try {
      const manifests: Manifest[] = [];
      for (const b of choice.chain) manifests.push(await readManifest(repo, b));
      const stanza = await repo.requireStanza();
      if (!clusterById(stanza, choice.backup.systemIdentifier)) throw new PgarkError(`backup ${choice.backup.id} belongs to system ${choice.backup.systemIdentifier}, the stanza to ${stanza.systemIdentifier}`);
      if (set.members.length > 1) {
        log.info(`restoring backup ${choice.backup.id} from ${name} (${repo.location})${order.length > i + 1 ? `; ${order.slice(i + 1).join(', ')} hold${order.length - i - 1 === 1 ? 's' : ''} it too` : ''}`);
        notes.push(`backup ${choice.backup.id} is read from ${name}`);
      }
      const source = (n: string): RestoreSource => ({ name: n, settings: byName.get(n)!.settings });
      return { backup: choice.backup, manifests, manifest: manifests[manifests.length - 1]!, source: { ...source(name), fallbacks: order.slice(i + 1).map(source), repo } };
    } catch (err) {
      if (i + 1 >= order.length || !readFailure(err)) throw err;
      log.warn(`${name}: unable to read the manifests of backup ${choice.backup.id} (${err instanceof Error ? err.message : String(err)}): reading them from ${order[i + 1]}`);
    }
  }
  throw new Error('selectBackupFromSet: unreachable');
}

/** The backup (restore-select.ts), the manifests of its chain (full first), checked against the stanza. */
export async function selectBackup(repo: Repository, ref: string, target: RecoveryTarget, notes: string[]): Promise<{ backup: BackupInfo; manifests: Manifest[]; manifest: Manifest }> {
  const backups = await listBackups(repo);
  const chosen = chooseBackup(backups, ref, target);
  if (chosen.note) notes.push(chosen.note);
  const backup = chosen.backup;
  const manifests: Manifest[] = [];
  for (const b of chainOf(backups, backup)) manifests.push(await readManifest(repo, b));
  const stanza = await repo.requireStanza();
  // A backup of a cluster the stanza held before `stanza-upgrade` stays restorable.
  if (!clusterById(stanza, backup.systemIdentifier)) throw new PgarkError(`backup ${backup.id} belongs to system ${backup.systemIdentifier}, the stanza to ${stanza.systemIdentifier}`);
  return { backup, manifests, manifest: manifests[manifests.length - 1]! };
}

/** Where each tablespace goes (restore-remap.ts); a location that is not empty needs --delta or --force. */
export async function remapTablespaces(manifest: Manifest, o: Pick<RestoreOptions, 'tablespaceMap' | 'delta' | 'force'>): Promise<Record<string, string>> {
  const tsMap = resolveTablespaceMap(parseTablespaceMap(o.tablespaceMap), manifest.header.tablespaces);
  const tablespaces = tablespaceTargets(manifest.links, tsMap);
  for (const [oid, loc] of Object.entries(tablespaces)) {
    const e = await isEmptyDir(loc);
    if (e === false && !o.delta && !o.force) throw new ConfigError(`tablespace directory '${loc}' (tablespace ${oid}) is not empty: pass --tablespace-map ${oid}=NEWDIR, --delta or --force`);
  }
  return tablespaces;
}

/** The tablespace directories and their pg_tblspc links, then every directory of the backup with its mode. */
export async function layOut(init: RestoreWorkerInit, manifest: Manifest): Promise<void> {
  const { pgdata, tablespaces } = init;
  for (const [oid, loc] of Object.entries(tablespaces)) {
    await mkdir(loc, { recursive: true, mode: 0o700 });
    const link = join(pgdata, 'pg_tblspc', oid);
    await mkdir(join(pgdata, 'pg_tblspc'), { recursive: true, mode: 0o700 });
    const cur = await lstat(link).catch(() => undefined);
    if (cur) await rm(link, { recursive: true, force: true });
    await symlink(loc, link);
  }
  for (const d of manifest.dirs) {
    const abs = targetPath(init, d.path);
    await mkdir(abs, { recursive: true, mode: 0o700 });
    await chmod(abs, d.mode & 0o7777);
  }
}

/**
 * A restore of at most this many bytes at --jobs 1 or 2 runs on this thread alone: a worker
 * thread's isolate costs ~0.09 s of CPU and ~21 MiB to start, and more in JIT warm-up and
 * messaging, while the restore's own work (lz4 decode, sha256, writes) runs on the thread that
 * runs its lane. Measured (bench/results/restore.md): 44 MiB restored at --jobs 2, lanes here
 * vs one worker thread: CPU 0.57 vs 0.86 s, wall 0.48 vs 0.61 s, peak RSS 88 vs 107 MiB; 180 MiB:
 * CPU 0.89 vs 1.00 s but wall 0.77 vs 0.58 s (one thread does the work of two), hence the limit.
 */
export const LANES_HERE_MAX_BYTES = 64 * 1024 * 1024;

/** Whether a restore of `bytes` with `jobs` runs its lanes on this thread (no worker thread). */
export function lanesHere(jobs: number, bytes: number): boolean {
  return jobs <= 2 && bytes <= LANES_HERE_MAX_BYTES;
}

/** Write every file through sha256 verification with worker threads and this one (restore-worker.ts); files in parts get size, mode and mtime at the end. */
async function processFiles(repo: Repository, init: RestoreWorkerInit, manifests: Manifest[], jobs: number, o: Pick<RestoreOptions, 'delta' | 'progress'>, early: StartedThreads | undefined): Promise<{ res: { written: number; skipped: number; bytes: number }; progress: Progress | undefined; tasks: number; here: boolean }> {
  const { tasks, multi } = planRestore(manifests);
  await createPartFiles(init, multi);
  const total = tasks.reduce((n, t) => n + t.bytes, 0);
  const progress = o.progress ? new Progress({ what: 'restore', totalBytes: total, out: process.stderr, tty: process.stderr.isTTY === true }) : undefined;
  const res = { written: 0, skipped: 0, bytes: 0 };
  const here = lanesHere(jobs, total);
  // Threads started for a larger restore than this one turned out to be (an estimate): not used.
  if (here) await stopThreads(early);
  const add = (r: RestoreTaskResult) => {
    res.written += r.written;
    res.skipped += r.skipped;
    res.bytes += r.bytes;
  };
  // Files in parts are finished (and written back) as their parts complete, while lanes go on.
  const parts = new PartFiles(tasks, multi, { writeback: (f) => writeBackPartFile(init, f), finish: (f) => finishPartFile(init, f) });
  const done = (r: RestoreTaskResult, task: RestoreTask) => {
    add(r);
    parts.taskDone(task);
  };
  try {
    if (here) {
      // A small restore: its --jobs lanes take turns on this thread, no worker thread is started.
      await runLanes(jobs, tasks, (task) => runRestoreTask(init, task, (bytes) => progress?.add(bytes), repo), done);
    } else {
      await runPool<RestoreWorkerInit, RestoreTask, RestoreTaskResult>(
        RESTORE_WORKER, jobs, init, tasks,
        (bytes) => progress?.add(bytes),
        done,
        // This thread writes files too (it only waits otherwise): --jobs N runs N-1 worker threads.
        // It reads through the caller's repository (a second one opened here would stay open).
        (i, task, report) => runRestoreTask(i, task, report, repo),
        // Parts of one file may run side by side: with 64 KiB writes (restore-worker.ts WRITE_MAX)
        // two lanes in pgbench_accounts' 1 GiB segment restored it faster than one lane at a time
        // (bench/results/restore.md, 2026-12-07 integrator).
        early);
    }
  } catch (err) {
    await parts.abandon();
    throw err;
  } finally {
    await closeRestoreSources();
  }
  await parts.finishAll();
  return { res, progress, tasks: tasks.length, here };
}

/** Files written in parts by several workers (planRestore's `multi`): created (empty) before the tasks run. */
export async function createPartFiles(init: Pick<RestoreWorkerInit, 'pgdata' | 'tablespaces' | 'holdBack' | 'delta'>, multi: readonly MultiPieceFile[]): Promise<void> {
  for (const f of multi) {
    // A private regular file: with --delta an existing one keeps its content (parts that match
    // are not rewritten); a link or a file hard-linked elsewhere is replaced.
    await (await openPrivateForWrite(targetPath(init, f.path), init.delta)).close();
  }
}

/** After every task: each file written in parts gets its size, mode and mtime, and is synced. */
export async function finishPartFiles(init: Pick<RestoreWorkerInit, 'pgdata' | 'tablespaces' | 'holdBack'>, multi: readonly MultiPieceFile[]): Promise<void> {
  for (const f of multi) await finishPartFile(init, f);
}

/** A file written in parts, all of them written: its size, mode and mtime, then fsync. */
async function finishPartFile(init: Pick<RestoreWorkerInit, 'pgdata' | 'tablespaces' | 'holdBack'>, f: MultiPieceFile): Promise<void> {
  const fh = await openOwnFile(targetPath(init, f.path));
  try {
    await fh.truncate(f.size);
    await fh.chmod(f.mode & 0o7777);
    await fh.utimes(new Date(f.mtimeMs), new Date(f.mtimeMs));
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Some parts of a file written: their writeback starts now (part-files.ts), not at the final fsync. */
async function writeBackPartFile(init: Pick<RestoreWorkerInit, 'pgdata' | 'tablespaces' | 'holdBack'>, f: MultiPieceFile): Promise<void> {
  const fh = await openOwnFile(targetPath(init, f.path));
  try {
    await fh.datasync();
  } finally {
    await fh.close();
  }
}

/** Directories fsynced at once (each an open, fsync and close on the threadpool). */
const DIR_SYNC_GROUP = 16;

/**
 * Every directory of the backup (and each tablespace location) fsynced, after the files in them
 * were and before pg_control is: the names of the files restore created are durable too, not
 * only their bytes (as PostgreSQL's fsync_pgdata and pgBackRest's restore do).
 */
export async function syncDirectories(init: PathMapping, manifest: Pick<Manifest, 'dirs'>): Promise<void> {
  const dirs = [...new Set([init.pgdata, ...Object.values(init.tablespaces), ...manifest.dirs.map((d) => targetPath(init, d.path))])];
  for (let i = 0; i < dirs.length; i += DIR_SYNC_GROUP) await Promise.all(dirs.slice(i, i + DIR_SYNC_GROUP).map((d) => fsyncDir(d)));
}

/**
 * tablespace_map for the locations restored into, the recovery configuration and the signal
 * file, then pg_control: from then on the directory can start. The signal file's name.
 */
export async function writeConfiguration(init: RestoreWorkerInit, backup: BackupInfo, manifest: Manifest, gucs: Array<[string, string]>, standby: boolean, owner: ChownPlan | undefined): Promise<string> {
  const { pgdata } = init;
  if (manifest.files.has('tablespace_map')) await writeTextAtomic(join(pgdata, 'tablespace_map'), tablespaceMapText(manifest.links, init.tablespaces));
  const autoConf = join(pgdata, 'postgresql.auto.conf');
  const existing = await readFile(autoConf, 'utf8').catch((err: unknown) => {
    if (isNodeError(err, 'ENOENT')) return '# Do not edit this file manually!\n# It will be overwritten by the ALTER SYSTEM command.\n';
    throw err;
  });
  const stamp = `${backup.id} at ${new Date().toISOString()}`;
  await writeTextAtomic(autoConf, mergeAutoConf(existing, gucs, stamp));
  // A backup of a standby holds standby.signal: only the signal asked for may remain.
  for (const sig of ['recovery.signal', 'standby.signal']) await rm(join(pgdata, sig), { force: true });
  const signal = signalFile(standby);
  await writeTextAtomic(join(pgdata, signal), '');
  // Before pg_control: a directory whose chown did not finish cannot be started.
  if (owner) for (const dir of [pgdata, ...Object.values(init.tablespaces)]) await chownTree(dir, owner);
  if (!manifest.files.has(HOLD_BACK)) throw new PgarkError(`backup ${backup.id} has no global/pg_control`);
  await rename(join(pgdata, HOLD_BACK_AS), join(pgdata, HOLD_BACK));
  await fsyncDir(join(pgdata, 'global'));
  await fsyncDir(pgdata);
  return signal;
}
