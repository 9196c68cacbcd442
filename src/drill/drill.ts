/**
 * `pgark drill`: prove that a backup restores, replays to a target, promotes and serves correct
 * data, and measure how long that took.
 *
 * Restore (runRestore) into a private scratch directory; start the copy with pg_ctl on its own
 * unix socket (no TCP, no archiving); wait, bounded, until recovery has ended at the target and
 * the server is promoted and accepts a write; run the checks; compute RTO (restore + replay +
 * promote) and RPO (newest archived commit - last replayed commit); store the report (passed
 * or failed) under `<stanza>/drill/<id>.json`; stop the server and remove the scratch directory
 * unless --keep. Phases: restore = runRestore wall time; replay = pg_ctl start until
 * pg_is_in_recovery() is false; promote = from there until a write (txid_current()) succeeds.
 */
import { rmSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Client } from 'pg';
import { causeText, PgarkError } from '../common/errors.js';
import { log, notice } from '../common/log.js';
import { listBackups, readManifest } from '../catalog/catalog.js';
import type { BackupInfo } from '../catalog/backup-info.js';
import { chooseBackup, runRestore, type RestoreSettings } from '../restore/restore.js';
import { validateTarget } from '../restore/recovery-target.js';
import type { Repository } from '../repo/repository.js';
import { findPgCtl, pgCtlStart, runningPostmaster, stopServer } from '../pg/pg-ctl.js';
import { amcheckCheck, sqlChecks, tableCounts, userDatabases } from './drill-checks.js';
import { DRILL_REPORT_FORMAT, oneLine, recoveryTargetOf, rpoOf, rtoOf, secondsBetween, type DrillReport, type DrillTarget } from './drill-report.js';
import { storeDrillReport, unusedDrillId } from './drill-store.js';
import { newestArchivedCommit } from './rpo.js';
import { configureScratch, connectAnyRole, createScratch, freePort, readServerLog, removeScratch, type ScratchServer } from './scratch-server.js';
import { checkSocketDir, lastLines, recoveryLogFacts } from './scratch-settings.js';
import type { SqlStatement } from './sql-split.js';

export interface DrillOptions {
  /** Backup id, 'latest' or 'auto' (the newest that can reach the target). */
  ref: string;
  target: DrillTarget;
  exclusive: boolean;
  checks?: { file: string; database: string; statements: SqlStatement[] } | undefined;
  keep: boolean;
  /** Parent of the scratch directory (default: the temp directory). */
  scratchParent?: string | undefined;
  /** Bound of start + replay + promote, in seconds. */
  timeoutSec: number;
  jobs?: number | undefined;
  progress: boolean;
}

export interface DrillOutcome {
  report: DrillReport;
  /** Where the report is stored, when it could be stored. */
  key?: string;
  storeError?: string;
  scratch?: ScratchServer;
  user?: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A drill failure with the text that goes into the report. */
class DrillFailure extends PgarkError {}

/** Why the scratch server stopped or did not start, from its log. */
function serverFailure(what: string, logText: string): DrillFailure {
  const facts = recoveryLogFacts(logText);
  const tail = lastLines(logText, 8).map((l) => oneLine(l, 300)).join('\n    ');
  if (facts.targetNotReached) {
    return new DrillFailure(`the recovery target was not reached: recovery ended before configured recovery target was reached (the repository's WAL ends before it)\n  server log:\n    ${tail}`);
  }
  const fatal = facts.fatal.length > 0 ? `: ${facts.fatal[facts.fatal.length - 1]}` : '';
  return new DrillFailure(`${what}${fatal}\n  server log:\n    ${tail || '(empty)'}`);
}

/** A drill restores into a scratch directory: it reads what restore reads. */
export async function runDrill(repo: Repository, settings: RestoreSettings, o: DrillOptions): Promise<DrillOutcome> {
  const target = validateTarget(recoveryTargetOf(o.target, o.exclusive));
  const startedAt = new Date();
  const id = await unusedDrillId(repo, startedAt);
  const report: DrillReport = {
    format: DRILL_REPORT_FORMAT, id, stanza: repo.stanza, host: hostname(), startedAt: startedAt.toISOString(), finishedAt: '',
    target: o.target, result: 'failed', phases: { restoreSec: 0 }, rpo: {}, checks: [],
  };
  let scratch: ScratchServer | undefined;
  let pgCtl: string | undefined;
  let started = false;
  let client: Client | undefined;
  let user: string | undefined;
  let lastReplayedCommit: string | undefined;
  let backup: BackupInfo | undefined;

  let startDone = false;
  let interrupted: NodeJS.Signals | undefined;
  let cleaning: Promise<boolean> | undefined;
  /** Stop the server (if started) and remove the scratch directory; false when it may still run. */
  const doCleanup = async (fastTimeoutSec: number): Promise<boolean> => {
    await client?.end().catch(() => undefined);
    client = undefined;
    if (o.keep || !scratch) return false;
    if (started && pgCtl) {
      // A start in flight: its postmaster.pid appears within moments; stop what it started.
      const end = Date.now() + 10_000;
      while (!startDone && (await runningPostmaster(scratch.pgdata)) === undefined && Date.now() < end) await sleep(100);
      try {
        await stopServer(pgCtl, scratch.pgdata, fastTimeoutSec);
      } catch (err) {
        log.error(`unable to stop the scratch server of '${scratch.pgdata}': ${causeText(err)}`);
        return false; // never remove the directory of a server that may still run
      }
    }
    await removeScratch(scratch).catch((err: unknown) => log.error(`unable to remove '${scratch!.dir}': ${causeText(err)}`));
    return true;
  };
  /** Stop and remove the scratch server once, whoever asks first (the drill or a signal). */
  const cleanup = (fastTimeoutSec: number) => (cleaning ??= doCleanup(fastTimeoutSec));
  const onSignal = (sig: NodeJS.Signals) => {
    interrupted = sig;
    notice('warn', `${sig}: stopping the drill's scratch server`);
    void cleanup(5).then((removable) => {
      // The restore may have gone on writing meanwhile: remove once more, synchronously, right
      // before exiting, so that nothing runs in between.
      if (removable && scratch) rmSync(scratch.dir, { recursive: true, force: true, maxRetries: 3 });
    }).finally(() => process.exit(sig === 'SIGINT' ? 130 : 143));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const checkInterrupted = () => {
    if (interrupted) throw new DrillFailure(`interrupted by ${interrupted}`);
  };

  let phase = 'choosing the backup';
  let restoreStarted: number | undefined;
  try {
    const backups = await listBackups(repo);
    backup = chooseBackup(backups, o.ref, target).backup;
    report.backup = { id: backup.id, type: backup.type, stopTime: backup.stop.time };
    report.pgVersion = backup.pgVersion;

    phase = 'prepare';
    pgCtl = await findPgCtl(backup.pgVersion);
    const port = await freePort();
    scratch = createScratch(o.scratchParent, id, port); // synchronous: a signal sees it or no directory
    checkSocketDir(scratch.dir, scratch.port);

    phase = 'restore';
    checkInterrupted();
    const manifest = await readManifest(repo, backup);
    const tablespaceMap = manifest.links.map((l) => `${l.path.slice('pg_tblspc/'.length)}=${join(scratch!.dir, 'tablespaces', l.path.slice('pg_tblspc/'.length))}`);
    restoreStarted = Date.now();
    await runRestore(repo, settings, {
      ref: backup.id, pgdata: scratch.pgdata, target, standby: false, keepArchive: false, tablespaceMap, jobs: o.jobs, delta: false, force: false, progress: o.progress,
    });
    await configureScratch(scratch, backup.pgVersion, `pgark-drill-${id}`, `drill ${id}`);
    report.phases.restoreSec = secondsBetween(restoreStarted, Date.now());

    phase = 'replay';
    checkInterrupted();
    const deadline = Date.now() + o.timeoutSec * 1000;
    const t1 = Date.now();
    started = true;
    const st = await pgCtlStart(pgCtl, { pgdata: scratch.pgdata, logFile: scratch.logFile, timeoutSec: o.timeoutSec }).finally(() => (startDone = true));
    checkInterrupted();
    if (st.code !== 0) {
      const logText = await readServerLog(scratch);
      if ((await runningPostmaster(scratch.pgdata)) !== undefined) throw serverFailure(`the scratch server did not finish starting within ${o.timeoutSec} s (--timeout)`, logText);
      throw serverFailure(`the scratch server did not start (${oneLine(st.stderr || st.stdout, 200)})`, logText);
    }
    let failures = 0;
    for (;;) {
      checkInterrupted();
      try {
        if (!client) ({ client, user } = await connectAnyRole(scratch));
        const r = await client.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r');
        failures = 0;
        if (!r.rows[0]!.r) break;
      } catch (err) {
        // The server went away (a FATAL during recovery: pg_ctl returned once it was
        // consistent) or dropped the connection.
        await client?.end().catch(() => undefined);
        client = undefined;
        if ((await runningPostmaster(scratch.pgdata)) === undefined) throw serverFailure(`the scratch server stopped during recovery (${causeText(err)})`, await readServerLog(scratch));
        // Alive: a server shutting down after a FATAL, or a refused connection; 10 s of those is an answer.
        if (++failures >= 100) throw err;
      }
      if (Date.now() > deadline) throw serverFailure(`recovery did not end within ${o.timeoutSec} s (--timeout)`, await readServerLog(scratch));
      await sleep(100);
    }
    const t2 = Date.now();
    report.phases.replaySec = secondsBetween(t1, t2);

    phase = 'promote';
    for (;;) {
      try {
        await client!.query('SELECT txid_current()');
        break;
      } catch (err) {
        if (Date.now() > deadline) throw new DrillFailure(`the promoted server did not accept a write within ${o.timeoutSec} s (--timeout): ${causeText(err)}`);
        await sleep(100);
      }
    }
    report.phases.promoteSec = secondsBetween(t2, Date.now());
    report.rtoSec = rtoOf(report.phases);
    const facts = await client!.query<{ lsn: string | null; ts: string | null; walfile: string }>(
      `SELECT pg_last_wal_replay_lsn()::text AS lsn,
              to_char(pg_last_xact_replay_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS ts,
              pg_walfile_name(pg_current_wal_lsn()) AS walfile`);
    const f = facts.rows[0]!;
    if (f.lsn) report.reachedLsn = f.lsn;
    if (f.ts) lastReplayedCommit = f.ts;
    report.timeline = Number.parseInt(f.walfile.slice(0, 8), 16);
    const end = recoveryLogFacts(await readServerLog(scratch)).end;
    if (end) report.recoveryEnd = oneLine(end, 300);

    phase = 'checks';
    checkInterrupted();
    const t3 = Date.now();
    const dbs = await userDatabases(client!);
    report.checks.push(await amcheckCheck(scratch, user!, backup.pgVersion));
    const counts = await tableCounts(scratch, user!, dbs);
    report.checks.push(counts.check);
    report.tables = counts.tables;
    if (counts.notCounted) report.tablesNotCounted = counts.notCounted;
    if (o.checks) report.checks.push(...(await sqlChecks(scratch, user!, o.checks.database, o.checks.file, o.checks.statements)));
    report.phases.checksSec = secondsBetween(t3, Date.now());
    const failed = report.checks.filter((c) => !c.ok);
    if (failed.length === 0) report.result = 'passed';
    else report.failure = `check failed: ${failed[0]!.name}: ${failed[0]!.detail}${failed.length > 1 ? ` (and ${failed.length - 1} more failed check(s))` : ''}`;
  } catch (err) {
    if (phase === 'restore' && restoreStarted !== undefined) report.phases.restoreSec = secondsBetween(restoreStarted, Date.now());
    const msg = err instanceof DrillFailure ? err.message : causeText(err);
    report.failure = phase === 'choosing the backup' ? `unable to choose a backup: ${msg}`
      : phase === 'prepare' ? `unable to prepare the scratch server: ${msg}`
      : phase === 'restore' ? `restore of backup ${backup?.id ?? '?'} failed: ${msg}`
      : phase === 'checks' ? `checks could not run: ${msg}`
      : msg;
    report.result = 'failed';
  }

  // RPO: measured when the copy was promoted, whatever the checks said.
  if (report.phases.promoteSec !== undefined && scratch) {
    try {
      const newest = await newestArchivedCommit(repo, join(scratch.dir, 'wal'), backup!.pgVersion);
      report.rpo = rpoOf({
        ...(lastReplayedCommit ? { lastReplayedCommit } : {}),
        ...(newest.commit ? { newestArchivedCommit: newest.commit.time } : {}),
        ...(newest.note ? { newestNote: newest.note } : {}),
        backupStopTime: backup!.stop.time,
      });
    } catch (err) {
      report.rpo = { ...(lastReplayedCommit ? { lastReplayedCommit } : {}), note: `unknown: ${causeText(err)}` };
    }
  } else {
    report.rpo = { note: 'not measured: the copy was not promoted' };
  }

  if (o.keep && scratch) report.kept = { pgdata: scratch.pgdata, socketDir: scratch.dir, port: scratch.port };
  await cleanup(60);
  process.removeListener('SIGINT', onSignal);
  process.removeListener('SIGTERM', onSignal);
  report.finishedAt = new Date().toISOString();
  const out: DrillOutcome = { report, ...(scratch ? { scratch } : {}), ...(user ? { user } : {}) };
  try {
    out.key = await storeDrillReport(repo, report);
  } catch (err) {
    out.storeError = causeText(err);
  }
  return out;
}
