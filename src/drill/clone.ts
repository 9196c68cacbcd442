/**
 * `pgark clone`: a new standby built from the repository, with no load on the primary. The
 * backup is restored as a standby (standby.signal, primary_conninfo for streaming, pgark's
 * restore_command as the fallback), then recovery_min_apply_delay (--delay) and the port are
 * added to postgresql.auto.conf, and with --start the server is started with pg_ctl.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ConfigError, PgarkError } from '../common/errors.js';
import { findBackup, listBackups } from '../catalog/catalog.js';
import { findPgProgram } from '../pg/pg-bin.js';
import { assertNotRoot, findPgCtl, pgCtlStart, runningPostmaster } from '../pg/pg-ctl.js';
import { mergeAutoConf } from '../restore/recovery-conf.js';
import { listRepoSet, runRestore, type RestoreOutcome, type RestoreSettings } from '../restore/restore.js';
import { chooseAcrossRepos } from '../restore/repo-choice.js';
import { RepoSet } from '../repo/repo-set.js';
import type { Repository } from '../repo/repository.js';
import { cloneSettings } from './clone-settings.js';
import { assertNoPassword } from '../pg/conninfo.js';
import { lastLines, recoveryLogFacts } from './scratch-settings.js';
import { writeTextAtomic } from '../common/fs-atomic.js';
import { chownTree } from '../restore/owner-apply.js';

export interface CloneOptions {
  ref: string;
  pgdata: string;
  primaryConninfo?: string | undefined;
  primarySlotName?: string | undefined;
  delayMs?: number | undefined;
  port?: number | undefined;
  start: boolean;
  startTimeoutSec: number;
  tablespaceMap: string[];
  jobs?: number | undefined;
  delta: boolean;
  force: boolean;
  progress: boolean;
  /** `--owner user[:group]` when run as root (see restore-owner.ts). */
  owner?: string | undefined;
}

export interface CloneOutcome {
  restore: RestoreOutcome;
  /** Settings written after the recovery settings (delay, port). */
  extra: Array<[string, string]>;
  logFile: string;
  /** The command that starts the clone (run as the OS user owning the directory). */
  startCommand: string;
  started: boolean;
  notes: string[];
}

export const CLONE_LOG = 'log/pgark-clone.log';


const shq = (s: string) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

/** A clone is a standby restore: it reads what restore reads. */
export async function runClone(repo: Repository | RepoSet, settings: RestoreSettings, o: CloneOptions): Promise<CloneOutcome> {
  if (o.start) assertNotRoot('pgark clone --start');
  if (o.primaryConninfo !== undefined) assertNoPassword(o.primaryConninfo, '--primary-conninfo');
  const pgdata = resolve(o.pgdata);
  const extra = cloneSettings({ delayMs: o.delayMs, port: o.port });
  // Fail before writing anything when --start could not work.
  let pgCtl = 'pg_ctl';
  if (o.start) {
    // Without a recovery target, 'auto' is the newest backup too.
    const ref = o.ref === 'auto' ? 'latest' : o.ref;
    // With several repositories, the backup restore will choose (restore/repo-choice.ts).
    pgCtl = await findPgCtl((repo instanceof RepoSet ? chooseAcrossRepos((await listRepoSet(repo)).listings, ref, {}).backup : findBackup(await listBackups(repo), ref)).pgVersion);
  }
  const restore = await runRestore(repo, settings, {
    ref: o.ref, pgdata, target: {}, standby: true, primaryConninfo: o.primaryConninfo, primarySlotName: o.primarySlotName,
    keepArchive: false, tablespaceMap: o.tablespaceMap, jobs: o.jobs, delta: o.delta, force: o.force, progress: o.progress, owner: o.owner,
  });
  if (extra.length > 0) {
    const autoConf = join(pgdata, 'postgresql.auto.conf');
    await writeTextAtomic(autoConf, mergeAutoConf(await readFile(autoConf, 'utf8'), extra, `clone ${restore.backup.id} at ${new Date().toISOString()}`));
  }
  await mkdir(join(pgdata, 'log'), { recursive: true, mode: 0o700 });
  const logFile = join(pgdata, CLONE_LOG);
  // Run as root: what clone wrote after the restore belongs to the cluster's user too.
  if (restore.owner) for (const p of [join(pgdata, 'postgresql.auto.conf'), join(pgdata, 'log')]) await chownTree(p, restore.owner);
  if (!o.start) pgCtl = findPgProgram('pg_ctl', restore.backup.pgVersion) ?? 'pg_ctl';
  const startCommand = `${restore.owner ? `sudo -u ${shq(restore.owner.user)} ` : ''}${shq(pgCtl)} start -D ${shq(pgdata)} -l ${shq(logFile)}`;
  const notes: string[] = [];
  if (!existsSync(join(pgdata, 'postgresql.conf'))) {
    notes.push(`the backup holds no postgresql.conf (the primary keeps it outside its data directory, as Debian does): put the configuration in place before starting the clone`);
  }
  if (!o.start) return { restore, extra, logFile, startCommand, started: false, notes };
  if (notes.length > 0) throw new ConfigError(`not started: ${notes[0]}; then run: ${startCommand}`);

  const r = await pgCtlStart(pgCtl, { pgdata, logFile, timeoutSec: o.startTimeoutSec });
  if (r.code !== 0) {
    const logText = await readFile(logFile, 'utf8').catch(() => '');
    const facts = recoveryLogFacts(logText);
    const running = (await runningPostmaster(pgdata)) !== undefined;
    const why = running ? `the clone did not become ready within ${o.startTimeoutSec} s (--start-timeout); it is still starting`
      : `the clone did not start${facts.fatal.length ? `: ${facts.fatal[facts.fatal.length - 1]}` : ''}`;
    throw new PgarkError(`${why}\n  ${lastLines(logText, 8).join('\n  ')}\n  (log: ${logFile}; data directory restored: start it again with ${startCommand})`);
  }
  return { restore, extra, logFile, startCommand, started: true, notes };
}

