/**
 * `pgark restore`: write a backup (and its chain) into a data directory, ready to start.
 *
 * Order: check the target and the recovery target before writing anything; create directories
 * and tablespace links; write every file through sha256 verification (worker threads); write
 * global/pg_control under a temporary name and rename it last, so that an interrupted restore
 * can never be started by mistake; then postgresql.auto.conf and the signal file.
 */
import { availableParallelism } from 'node:os';
import { chmod, lstat, mkdir, readdir, readFile, readlink, rename, rm, symlink, unlink } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ConfigError, InvalidInputError, isNodeError, PgarkError } from '../common/errors.js';
import { Progress } from '../common/progress.js';
import { isProcessAlive } from '../common/process.js';
import { buildRestoreCommand, selfCommand } from '../common/self-command.js';
import { runPool } from '../common/worker-pool.js';
import type { Settings } from '../config/resolve.js';
import { commandSettings } from '../config/settings-transport.js';
import type { Repository } from '../repo/repository.js';
import { parseLsn } from '../wal/segment-name.js';
import type { BackupInfo } from '../catalog/backup-info.js';
import { chainOf, findBackup, listBackups, readManifest } from '../catalog/catalog.js';
import type { Manifest } from '../catalog/manifest.js';
import { planRestore, type RestoreTask } from './plan.js';
import { mergeAutoConf, recoverySettings, signalFile, validateTarget, type RecoveryTarget } from './recovery-conf.js';
import { parseTablespaceMap, resolveTablespaceMap } from './tablespace-map.js';
import type { RestoreTaskResult, RestoreWorkerInit } from './restore-worker.js';
import { targetPath } from './restore-worker-paths.js';
import { openOwnFile, openPrivateForWrite } from './private-file.js';
import { fsyncDir, writeTextAtomic } from '../common/fs-atomic.js';

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
}

export interface RestoreOutcome {
  backup: BackupInfo;
  pgdata: string;
  filesWritten: number;
  filesUnchanged: number;
  filesRemoved: number;
  bytesWritten: number;
  durationMs: number;
  settings: Array<[string, string]>;
  signal: string;
  notes: string[];
}

const HOLD_BACK = 'global/pg_control';
const HOLD_BACK_AS = 'global/pg_control.pgark-restore';

/** Choose the backup: the one named, or the newest that can reach the target. */
export function chooseBackup(backups: readonly BackupInfo[], ref: string, target: RecoveryTarget): { backup: BackupInfo; note?: string } {
  const limit = targetLimit(target);
  if (ref !== 'auto') {
    const b = findBackup(backups, ref);
    if (limit && !limit.reaches(b)) throw new InvalidInputError(`backup ${b.id} ends at ${b.stop.time} (LSN ${b.stop.lsn}), after the recovery target ${limit.text}: it cannot reach it; pick an older backup or 'auto'`);
    return { backup: b };
  }
  if (backups.length === 0) throw new PgarkError('the repository holds no backup of this stanza');
  if (!limit) return { backup: backups[backups.length - 1]!, note: 'no time or LSN target: restoring the newest backup' };
  const ok = backups.filter((b) => limit.reaches(b));
  if (ok.length === 0) throw new InvalidInputError(`no backup ends before the recovery target ${limit.text}: the oldest, ${backups[0]!.id}, ends at ${backups[0]!.stop.time} (LSN ${backups[0]!.stop.lsn})`);
  return { backup: ok[ok.length - 1]! };
}

function targetLimit(t: RecoveryTarget): { text: string; reaches: (b: BackupInfo) => boolean } | undefined {
  if (t.time !== undefined) {
    const ms = parseTargetTime(t.time);
    if (ms === undefined) throw new InvalidInputError(`unable to interpret --target-time '${t.time}' to choose a backup: name the backup to restore instead of 'auto'`);
    return { text: t.time, reaches: (b) => Date.parse(b.stop.time) <= ms };
  }
  if (t.lsn !== undefined) {
    const lsn = parseLsn(t.lsn);
    return { text: t.lsn, reaches: (b) => parseLsn(b.stop.lsn) <= lsn };
  }
  return undefined;
}

/** Offset (ms) of `zone` from UTC at instant `utcMs`, by Intl. */
function zoneOffsetMs(zone: string, utcMs: number): number | undefined {
  let parts: Intl.DateTimeFormatPart[];
  try {
    parts = new Intl.DateTimeFormat('en-US', { timeZone: zone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' }).formatToParts(new Date(utcMs));
  } catch {
    return undefined;
  }
  const get = (type: string) => Number(parts.find((p) => p.type === type)?.value);
  const asUtc = Date.UTC(get('year'), get('month') - 1, get('day'), get('hour') % 24, get('minute'), get('second'));
  return asUtc - Math.floor(utcMs / 1000) * 1000;
}

/** The largest UTC offset in use (+14:00): without a zone, assume the earliest instant the text can mean. */
const MAX_OFFSET_MS = 14 * 3600_000;

/**
 * The instant a recovery_target_time text means, as PostgreSQL reads timestamptz input:
 * 'YYYY-MM-DD[ T]HH:MM[:SS[.frac]]' followed by an optional zone: Z, UTC/GMT, +H, +HH, +HH:MM,
 * +HHMM (with or without a space before it), or a full zone name (Europe/Berlin). Without a
 * zone PostgreSQL uses the server's TimeZone, which pgark does not know: the earliest possible
 * instant is returned, so the backup chosen always ends before the target. undefined when the
 * text is not in one of these forms.
 */
export function parseTargetTime(text: string): number | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?)?\s*(.*)$/.exec(text.trim());
  if (!m) return undefined;
  const [, y, mo, d, h = '0', mi = '0', sec = '0', frac = ''] = m;
  const zone = m[8] ?? '';
  if (Number(mo) < 1 || Number(mo) > 12 || Number(d) < 1 || Number(d) > 31 || Number(h) > 24 || Number(mi) > 59 || Number(sec) > 60) return undefined;
  const local = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(sec)) + Math.floor(Number(`0${frac}`) * 1000);
  if (Number.isNaN(local) || new Date(local).getUTCDate() !== Number(d) && Number(h) < 24) return undefined;
  if (zone === '') return local - MAX_OFFSET_MS;
  if (/^(Z|UTC|GMT)$/i.test(zone)) return local;
  const off = /^([+-])(\d{1,2})(?::?(\d{2}))?$/.exec(zone);
  if (off) {
    const ms = (Number(off[2]) * 60 + Number(off[3] ?? 0)) * 60_000;
    return off[1] === '+' ? local - ms : local + ms;
  }
  if (/^[A-Za-z][A-Za-z0-9_+-]*(\/[A-Za-z0-9_+-]+)*$/.test(zone)) {
    const first = zoneOffsetMs(zone, local);
    if (first === undefined) return undefined;
    const second = zoneOffsetMs(zone, local - first) ?? first;
    return local - second;
  }
  return undefined;
}

async function isEmptyDir(dir: string): Promise<boolean | null> {
  try {
    return (await readdir(dir)).length === 0;
  } catch (err) {
    if (isNodeError(err, 'ENOENT')) return null;
    throw err;
  }
}

export async function runRestore(settings: Settings, repo: Repository, o: RestoreOptions): Promise<RestoreOutcome> {
  const started = Date.now();
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

  const empty = await isEmptyDir(pgdata);
  if (empty === false) {
    const pid = await readFile(join(pgdata, 'postmaster.pid'), 'utf8').catch(() => undefined);
    if (pid !== undefined) {
      const n = Number(pid.split('\n')[0]);
      if (Number.isInteger(n) && n > 0 && isProcessAlive(n)) throw new ConfigError(`a PostgreSQL server (pid ${n}) is running in '${pgdata}': stop it before restoring into it`);
    }
    if (!o.delta && !o.force) throw new ConfigError(`target directory '${pgdata}' is not empty: pass --delta to update it in place (only files that differ are written) or --force to replace its contents`);
  }

  const backups = await listBackups(repo);
  const chosen = chooseBackup(backups, o.ref, target);
  if (chosen.note) notes.push(chosen.note);
  const backup = chosen.backup;
  const chain = chainOf(backups, backup);
  const manifests: Manifest[] = [];
  for (const b of chain) manifests.push(await readManifest(repo, b));
  const manifest = manifests[manifests.length - 1]!;
  const stanza = await repo.requireStanza();
  if (stanza.systemIdentifier !== backup.systemIdentifier) throw new PgarkError(`backup ${backup.id} belongs to system ${backup.systemIdentifier}, the stanza to ${stanza.systemIdentifier}`);

  const tsMap = resolveTablespaceMap(parseTablespaceMap(o.tablespaceMap), manifest.header.tablespaces);
  const tablespaces: Record<string, string> = {};
  for (const l of manifest.links) {
    const oid = Number(l.path.slice('pg_tblspc/'.length));
    const loc = tsMap.get(oid) ?? l.target;
    if (loc === pgdata || loc.startsWith(`${pgdata}/`) && !loc.startsWith(`${pgdata}/pg_tblspc/`)) {
      // A tablespace inside the data directory is allowed by PostgreSQL (with a warning); keep it.
    }
    tablespaces[String(oid)] = loc;
    const e = await isEmptyDir(loc);
    if (e === false && !o.delta && !o.force) throw new ConfigError(`tablespace directory '${loc}' (tablespace ${oid}) is not empty: pass --tablespace-map ${oid}=NEWDIR, --delta or --force`);
  }

  // Prepare the directories.
  if (o.force && empty === false) {
    for (const name of await readdir(pgdata)) await rm(join(pgdata, name), { recursive: true, force: true });
    for (const loc of Object.values(tablespaces)) {
      if ((await isEmptyDir(loc)) === false) for (const name of await readdir(loc)) await rm(join(loc, name), { recursive: true, force: true });
    }
  }
  await mkdir(pgdata, { recursive: true, mode: 0o700 });
  await chmod(pgdata, 0o700);
  const init: RestoreWorkerInit = { settings, pgdata, tablespaces, delta: o.delta, holdBack: { [HOLD_BACK]: HOLD_BACK_AS } };
  let removed = 0;
  if (o.delta) {
    const extras = await removeExtras(pgdata, manifest, tablespaces, init);
    removed = extras.removed;
    notes.push(...linkNotes(extras.links));
  }
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

  const { tasks, multi } = planRestore(manifests);
  // Files written in parts by several workers: create them (empty) first; size, mode and mtime at the end.
  for (const f of multi) {
    // A private regular file: with --delta an existing one keeps its content (parts that match
    // are not rewritten); a link or a file hard-linked elsewhere is replaced.
    await (await openPrivateForWrite(targetPath(init, f.path), o.delta)).close();
  }
  const total = tasks.reduce((n, t) => n + t.bytes, 0);
  const progress = o.progress ? new Progress({ what: 'restore', totalBytes: total, out: process.stderr, tty: process.stderr.isTTY === true }) : undefined;
  const res = { written: 0, skipped: 0, bytes: 0 };
  await runPool<RestoreWorkerInit, RestoreTask, RestoreTaskResult>(
    new URL('./restore-worker.js', import.meta.url), jobs, init, tasks,
    (bytes) => progress?.add(bytes),
    (r) => {
      res.written += r.written;
      res.skipped += r.skipped;
      res.bytes += r.bytes;
    });

  for (const f of multi) {
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

  // PostgreSQL recreates pg_tblspc links from tablespace_map during recovery: it must name the
  // locations restored into, not the source's.
  if (manifest.files.has('tablespace_map')) {
    const esc = (p: string) => p.replace(/[\\\n\r]/g, (c) => `\\${c}`);
    const lines = manifest.links.map((l) => {
      const oid = l.path.slice('pg_tblspc/'.length);
      return `${oid} ${esc(tablespaces[oid] ?? l.target)}\n`;
    });
    await writeTextAtomic(join(pgdata, 'tablespace_map'), lines.join(''));
  }

  // Recovery configuration, then pg_control: from now on the directory can start.
  const autoConf = join(pgdata, 'postgresql.auto.conf');
  const existing = await readFile(autoConf, 'utf8').catch((err: unknown) => {
    if (isNodeError(err, 'ENOENT')) return '# Do not edit this file manually!\n# It will be overwritten by the ALTER SYSTEM command.\n';
    throw err;
  });
  const stamp = `${backup.id} at ${new Date().toISOString()}`;
  await writeTextAtomic(autoConf, mergeAutoConf(existing, gucs, stamp));
  // A backup of a standby holds standby.signal: only the signal asked for may remain.
  for (const sig of ['recovery.signal', 'standby.signal']) await rm(join(pgdata, sig), { force: true });
  const signal = signalFile(o.standby);
  await writeTextAtomic(join(pgdata, signal), '');
  if (manifest.files.has(HOLD_BACK)) {
    await rename(join(pgdata, HOLD_BACK_AS), join(pgdata, HOLD_BACK));
    await fsyncDir(join(pgdata, 'global'));
  } else {
    throw new PgarkError(`backup ${backup.id} has no global/pg_control`);
  }
  await fsyncDir(pgdata);
  progress?.finish({ id: backup.id, files: res.written, unchanged: res.skipped });
  return {
    backup, pgdata, filesWritten: res.written, filesUnchanged: res.skipped, filesRemoved: removed, bytesWritten: res.bytes,
    durationMs: Date.now() - started, settings: gucs, signal, notes,
  };
}

/** A symbolic link --delta found in the target and removed (restore never writes through one). */
export interface RemovedLink {
  path: string;
  target: string;
}

const MAX_LINK_NOTES = 10;

/** Notes on the links --delta replaced: the DBA should know something linked out of the target. */
export function linkNotes(links: readonly RemovedLink[]): string[] {
  const notes = links.slice(0, MAX_LINK_NOTES).map((l) =>
    `removed the symbolic link '${l.path}' -> '${l.target}' from the target (restore never writes through a link it did not create; ` +
    `what the backup holds there was restored in its place, and the link's target was not touched)` +
    (/\/pg_wal$/.test(l.path) ? '; to keep WAL on another disk, move pg_wal there and link it again before starting the server' : ''));
  if (links.length > MAX_LINK_NOTES) notes.push(`removed ${links.length - MAX_LINK_NOTES} more symbolic links from the target`);
  return notes;
}

/**
 * --delta: remove what the backup does not hold (files, directories), and every symbolic link
 * except the pg_tblspc/<oid> links of the tablespaces restored (restore re-creates those): a
 * link in a data directory or tablespace is never followed, whether the backup holds a file or a
 * directory at its name or nothing. Tablespace locations themselves are walked separately.
 */
async function removeExtras(pgdata: string, m: Manifest, tablespaces: Record<string, string>, init: RestoreWorkerInit): Promise<{ removed: number; links: RemovedLink[] }> {
  // pg_control is removed first (not counted): an interrupted delta restore must not be startable.
  await rm(join(pgdata, HOLD_BACK), { force: true });
  const real = { ...init, holdBack: {} };
  const keepFiles = new Set<string>([...m.files.keys()].map((p) => targetPath(real, p)));
  const keepDirs = new Set<string>(m.dirs.map((d) => targetPath(init, d.path)));
  keepDirs.add(pgdata);
  for (const [oid, loc] of Object.entries(tablespaces)) {
    keepDirs.add(loc);
    keepDirs.add(join(pgdata, 'pg_tblspc'));
    keepFiles.add(join(pgdata, 'pg_tblspc', oid)); // the link itself
  }
  const ownLinks = new Set(Object.keys(tablespaces).map((oid) => join(pgdata, 'pg_tblspc', oid)));
  let removed = 0;
  const links: RemovedLink[] = [];
  const walk = async (dir: string): Promise<void> => {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      if (isNodeError(err, 'ENOENT')) return;
      throw err;
    }
    for (const e of entries) {
      const abs = join(dir, e.name);
      if (e.isSymbolicLink()) {
        if (ownLinks.has(abs)) continue;
        const target = await readlink(abs).catch(() => '?');
        await unlink(abs);
        links.push({ path: abs, target });
        removed++;
      } else if (e.isDirectory()) {
        if (keepDirs.has(abs)) await walk(abs);
        else {
          await rm(abs, { recursive: true, force: true });
          removed++;
        }
      } else if (!keepFiles.has(abs)) {
        await rm(abs, { force: true });
        removed++;
      }
    }
  };
  await walk(pgdata);
  for (const loc of Object.values(tablespaces)) await walk(loc);
  return { removed, links };
}
