/**
 * `pgark check`: gather the facts for each item of check-items.ts — configuration, the server,
 * the repository (probe write/read/delete under <stanza>/probe/) and the stanza's binding,
 * archive_mode/archive_command/pg_stat_archiver, a WAL round trip (pg_switch_wal() and a
 * bounded wait for the segment in the repository), the newest backup's age, WAL continuity
 * since it, and receivers/slots when configured. A failing item never stops the others that do
 * not depend on it; those that do are reported as not tried, with the reason. Alongside, the
 * performance data a monitoring system graphs: backup age, archive lag (segments waiting in
 * archive_status and the age of the oldest), pg_stat_archiver's counters, the WAL window since the
 * newest backup and the age of the newest drill, each only when it is known.
 */
import { readFileSync } from 'node:fs';
import type { Client } from 'pg';
import { causeText } from '../common/errors.js';
import { parseConfigFile } from '../config/config-file.js';
import { requireRepo, type Settings } from '../config/resolve.js';
import { DEFAULT_CONFIG_PATH } from '../config/schema.js';
import { connectPg } from '../pg/connect.js';
import { walKey, walNameOfKey } from '../repo/layout.js';
import type { Repository } from '../repo/repository.js';
import type { StanzaMeta } from '../repo/stanza-meta.js';
import { redactLocation } from '../../storage-drivers/registry.js';
import { nextSegment, parseSegmentName, segmentName } from '../wal/segment-name.js';
import { parseArchiveCommand, type ConfigHint } from './archive-command.js';
import {
  archiveCommandItem, archiveModeItem, archiverItem, backupAgeItem, overallStatus, receiverItem, slotItem, walContinuityItem, walRoundTripItem,
  type ArchiverSample, type CheckItem, type CheckStatus, type PerfDatum, type ReceiverStatusView, type SlotRow,
} from './check-items.js';
import { boundStatements, serverFacts, unmasked, type ServerFacts } from './pg-settings.js';
import { isSegmentName } from '../pg/wal-names.js';
import { readReceiverStatuses } from '../wal/receiver-statuses.js';
import { BACKLOG_LIMITS_DEFAULT, backlogItem, backlogPerf, moreRepoItem, type BacklogLimits } from './check-repos.js';

export interface CheckOptions {
  dsn?: string | undefined;
  backupWarnMs: number;
  backupCritMs: number;
  walTimeoutSec: number;
  /** --slot: a replication slot that must exist and be active. */
  slot?: string | undefined;
  /** --no-switch: skip the WAL round trip (frequent monitoring runs would each add a segment). */
  noSwitch?: boolean;
  /** --if-no-backup: the status of a stanza without a backup (default WARNING). */
  noBackup?: 'WARNING' | 'CRITICAL';
  /** --backlog-crit, --backlog-crit-files: when an async repository's backlog is CRITICAL (check-repos.ts). */
  backlog?: BacklogLimits;
}

export interface CheckReport {
  status: CheckStatus;
  items: CheckItem[];
  /** Performance data, only the metrics that are known (Nagios perfdata after '|'). */
  perfdata: PerfDatum[];
}

const POLL_MS = 250;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** What the config file an archive_command without --repo would read says about the repository. */
function configHint(command: string, stanza: string): ConfigHint | undefined {
  const p = parseArchiveCommand(command);
  if (p.kind !== 'pgark' || p.repo) return undefined;
  const path = p.config && !p.config.dynamic ? p.config.value : DEFAULT_CONFIG_PATH;
  try {
    const sections = parseConfigFile(readFileSync(path, 'utf8'), path);
    const repo = sections.get(stanza)?.get('repo') ?? sections.get('global')?.get('repo');
    return repo !== undefined ? { path, repo } : { path };
  } catch {
    return undefined; // not readable from here: the message then says only who decides
  }
}

async function readArchiver(c: Client): Promise<ArchiverSample> {
  const r = await c.query<{ archived_count: string; last_archived_wal: string | null; last_archived_time: Date | null; failed_count: string; last_failed_wal: string | null; last_failed_time: Date | null }>(
    'SELECT archived_count, last_archived_wal, last_archived_time, failed_count, last_failed_wal, last_failed_time FROM pg_stat_archiver');
  const x = r.rows[0]!;
  return {
    archivedCount: Number(x.archived_count),
    lastArchivedWal: x.last_archived_wal,
    lastArchivedTime: x.last_archived_time ? x.last_archived_time.getTime() : null,
    failedCount: Number(x.failed_count),
    lastFailedWal: x.last_failed_wal,
    lastFailedTime: x.last_failed_time ? x.last_failed_time.getTime() : null,
  };
}

async function readSlot(c: Client, name: string): Promise<SlotRow | undefined> {
  const r = await c.query<{ slot_type: string; active: boolean; restart_lsn: string | null; wal_status: string | null; retained: string | null }>(
    `SELECT slot_type, active, restart_lsn::text AS restart_lsn, wal_status,
            pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn() ELSE pg_current_wal_lsn() END, restart_lsn)::text AS retained
       FROM pg_replication_slots WHERE slot_name = $1`, [name]);
  const x = r.rows[0];
  if (!x) return undefined;
  return { slotType: x.slot_type, active: x.active, restartLsn: x.restart_lsn, walStatus: x.wal_status, retainedBytes: x.retained === null ? null : Math.max(0, Number(x.retained)) };
}

/** The settings check reads itself (the repository is opened by the caller's `openRepo`). */
export type CheckSettings = Pick<Settings, 'repo' | 'stanza' | 'configPath'> & Partial<Pick<Settings, 'moreRepos' | 'cipherKeyFile' | 'cipherKeyEnv'>>;

interface Context {
  settings: CheckSettings;
  o: CheckOptions;
  items: CheckItem[];
  perf: PerfDatum[];
  server?: ServerFacts | undefined;
  client?: Client | undefined;
  repo?: Repository | undefined;
  writable: boolean;
  meta?: StanzaMeta | undefined;
}

const notTried = (name: string, why: string): CheckItem => ({ name, status: 'CRITICAL', detail: `not tried: ${why}` });

async function checkServer(ctx: Context): Promise<void> {
  try {
    ctx.client = await connectPg(ctx.o.dsn, 'pgark check');
    await boundStatements(ctx.client);
    ctx.server = await serverFacts(ctx.client);
    const s = ctx.server;
    ctx.items.push({ name: 'postgresql', status: 'OK', detail: `PostgreSQL ${s.pgVersion} ${s.inRecovery ? 'standby' : 'primary'}, data directory ${s.dataDirectory}, system identifier ${s.systemIdentifier}` });
  } catch (err) {
    ctx.items.push({ name: 'postgresql', status: 'CRITICAL', detail: causeText(err) });
  }
}

async function checkRepository(ctx: Context, openRepo: () => Promise<Repository>): Promise<void> {
  try {
    ctx.repo = await openRepo();
  } catch (err) {
    ctx.items.push({ name: 'repository', status: 'CRITICAL', detail: `unable to open: ${causeText(err)}` });
    ctx.items.push(notTried('stanza', 'the repository could not be opened'));
    return;
  }
  const repo = ctx.repo;
  const { probeOpenRepository } = await import('../repo/repo-probe.js');
  const report = await probeOpenRepository(repo, async () => 'not part of this probe');
  const failed = report.results.filter((r) => !r.ok && r.probe !== 'stanza');
  ctx.writable = !failed.some((r) => r.probe === 'write');
  if (failed.length === 0) {
    const ms = report.results.filter((r) => r.probe !== 'stanza').reduce((n, r) => n + r.ms, 0);
    ctx.items.push({ name: 'repository', status: 'OK', detail: `${redactLocation(repo.location)} reachable and writable (probe object written, read and deleted in ${ms} ms)` });
  } else {
    const first = failed[0]!;
    const what = first.probe === 'write' ? 'not writable' : first.probe === 'delete' ? 'probe object not deletable' : `${first.probe} failed`;
    ctx.items.push({ name: 'repository', status: 'CRITICAL', detail: `${redactLocation(repo.location)} ${what}: ${first.detail}` });
  }
  ctx.items.push(await stanzaItem(ctx, repo));
}

/** The stanza exists and belongs to the server's cluster (reads it again until it exists). */
async function stanzaItem(ctx: Context, repo: Repository): Promise<CheckItem> {
  try {
    ctx.meta = (await repo.readStanza()) ?? undefined;
  } catch (err) {
    return { name: 'stanza', status: 'CRITICAL', detail: `unable to read stanza '${repo.stanza}': ${causeText(err)}` };
  }
  const m = ctx.meta;
  if (!m) return { name: 'stanza', status: 'CRITICAL', detail: `stanza '${repo.stanza}' does not exist in the repository (the first wal-push or backup creates it)` };
  const s = ctx.server;
  if (!s) return { name: 'stanza', status: 'WARNING', detail: `stanza '${repo.stanza}' exists (system identifier ${m.systemIdentifier}); not compared with the server: no connection` };
  const diffs: string[] = [];
  if (m.systemIdentifier !== s.systemIdentifier) diffs.push(`system identifier ${m.systemIdentifier}, the server has ${s.systemIdentifier}`);
  if (m.pgVersion !== s.pgVersion) diffs.push(`PostgreSQL ${m.pgVersion}, the server runs ${s.pgVersion}`);
  if (m.walSegmentSize !== s.walSegmentSize) diffs.push(`wal_segment_size ${m.walSegmentSize}, the server has ${s.walSegmentSize}`);
  return diffs.length
    ? { name: 'stanza', status: 'CRITICAL', detail: `stanza '${repo.stanza}' belongs to another cluster: ${diffs.join('; ')}` }
    : { name: 'stanza', status: 'OK', detail: `stanza '${repo.stanza}' is bound to this cluster (system identifier ${m.systemIdentifier})` };
}

async function checkArchiving(ctx: Context): Promise<void> {
  const c = ctx.client;
  const s = ctx.server;
  if (!c || !s) {
    for (const n of ['archive_mode', 'archive_command', 'wal_round_trip', 'archiver']) ctx.items.push(notTried(n, 'no connection to the server'));
    return;
  }
  const target = { repo: requireRepo(ctx.settings), stanza: ctx.settings.stanza };
  let mode: string;
  let command: string;
  let library: string | undefined;
  let before: ArchiverSample;
  try {
    const r = await c.query<{ mode: string; setting: string; reset_val: string; library: string | null }>(
      `SELECT current_setting('archive_mode') AS mode, setting, reset_val, current_setting('archive_library', true) AS library
         FROM pg_settings WHERE name = 'archive_command'`);
    mode = r.rows[0]!.mode;
    command = unmasked({ name: 'archive_command', ...r.rows[0]! });
    library = r.rows[0]!.library ?? undefined;
    before = await readArchiver(c);
  } catch (err) {
    for (const n of ['archive_mode', 'archive_command', 'wal_round_trip', 'archiver']) ctx.items.push({ name: n, status: 'CRITICAL', detail: causeText(err) });
    return;
  }
  const modeItem = archiveModeItem(mode, s.inRecovery);
  const commandItem = archiveCommandItem(command, library, target, configHint(command, ctx.settings.stanza));
  ctx.items.push(modeItem, commandItem);

  let after = before;
  if (ctx.o.noSwitch) {
    ctx.items.push({ name: 'wal_round_trip', status: 'OK', detail: 'skipped: --no-switch (archiving is judged from pg_stat_archiver only)' });
  } else if (s.inRecovery) {
    ctx.items.push({ name: 'wal_round_trip', status: 'OK', detail: 'skipped: the server is a standby (pg_switch_wal() is not possible during recovery); run pgark check on the primary too' });
  } else if (modeItem.status === 'CRITICAL') {
    ctx.items.push(notTried('wal_round_trip', 'archive_mode is off'));
  } else if (commandItem.status === 'CRITICAL') {
    ctx.items.push(notTried('wal_round_trip', 'archive_command does not archive to this repository and stanza'));
  } else if (!ctx.repo || !ctx.writable) {
    ctx.items.push(notTried('wal_round_trip', 'the repository is not writable'));
  } else {
    ctx.items.push(await walRoundTrip(ctx, c, ctx.repo));
    after = await readArchiver(c).catch(() => before);
    // The first wal-push creates the stanza: on a freshly set up cluster the round trip just did.
    const at = ctx.items.findIndex((i) => i.name === 'stanza');
    if (!ctx.meta && at >= 0) ctx.items[at] = await stanzaItem(ctx, ctx.repo);
  }
  ctx.items.push(archiverItem(before, after));
  ctx.perf.push({ label: 'archived', value: after.archivedCount, uom: 'c', min: 0 }, { label: 'archive_failed', value: after.failedCount, uom: 'c', min: 0 });
  await archiveLag(ctx, c);
}

/**
 * Segments PostgreSQL completed but has not archived yet (.ready files in pg_wal/archive_status)
 * and the age of the oldest: pg_ls_archive_statusdir() needs superuser or pg_monitor; without it
 * the lag is unknown and left out.
 */
async function archiveLag(ctx: Context, c: Client): Promise<void> {
  try {
    const r = await c.query<{ n: string; oldest: Date | null; now: Date }>(
      `SELECT count(*)::text AS n, min(modification) AS oldest, now() AS now
         FROM pg_ls_archive_statusdir() WHERE name ~ '^[0-9A-F]{24}(\\.partial)?\\.ready$'`);
    const x = r.rows[0]!;
    const ageSec = x.oldest ? Math.max(0, Math.round((x.now.getTime() - x.oldest.getTime()) / 1000)) : 0;
    ctx.perf.push({ label: 'archive_lag_segments', value: Number(x.n), uom: '', min: 0 }, { label: 'archive_lag', value: ageSec, uom: 's', min: 0 });
  } catch {
    // not allowed (no pg_monitor) or not available: unknown, so no perfdata
  }
}

async function walRoundTrip(ctx: Context, c: Client, repo: Repository): Promise<CheckItem> {
  let segment: string;
  try {
    // A committed transaction id writes a commit record, so the switch always completes a
    // segment with new WAL in it (after no activity, pg_switch_wal() would name an old one).
    await c.query('SELECT pg_current_xact_id()');
    segment = (await c.query<{ w: string }>('SELECT pg_walfile_name(pg_switch_wal()) AS w')).rows[0]!.w;
  } catch (err) {
    return { name: 'wal_round_trip', status: 'CRITICAL', detail: `pg_switch_wal() failed: ${causeText(err)}` };
  }
  const key = walKey(repo.stanza, segment);
  const started = Date.now();
  const deadline = started + ctx.o.walTimeoutSec * 1000;
  for (;;) {
    try {
      if (await repo.stat(key)) return walRoundTripItem(segment, Date.now() - started, ctx.o.walTimeoutSec);
    } catch (err) {
      return { name: 'wal_round_trip', status: 'CRITICAL', detail: `unable to look for ${segment} in the repository: ${causeText(err)}` };
    }
    if (Date.now() >= deadline) return walRoundTripItem(segment, undefined, ctx.o.walTimeoutSec);
    await sleep(Math.min(POLL_MS, Math.max(0, deadline - Date.now())));
  }
}

async function checkBackups(ctx: Context): Promise<void> {
  const repo = ctx.repo;
  if (!repo) {
    ctx.items.push(notTried('backups', 'the repository could not be opened'), notTried('wal_continuity', 'the repository could not be opened'));
    return;
  }
  const { listBackups } = await import('../catalog/catalog.js');
  let newest;
  try {
    const backups = await listBackups(repo);
    newest = backups[backups.length - 1];
  } catch (err) {
    ctx.items.push({ name: 'backups', status: 'CRITICAL', detail: `unable to list the backups: ${causeText(err)}` }, notTried('wal_continuity', 'the backups could not be listed'));
    return;
  }
  const now = Date.now();
  ctx.items.push(backupAgeItem(newest ? { id: newest.id, stopTime: newest.stop.time } : undefined, now, ctx.o.backupWarnMs, ctx.o.backupCritMs, ctx.o.noBackup));
  if (!newest) {
    // The backups item carries the problem; there is no WAL a restore would need yet.
    ctx.items.push({ name: 'wal_continuity', status: 'OK', detail: 'nothing to check: there is no backup yet' });
    return;
  }
  ctx.perf.push({
    label: 'backup_age', value: Math.max(0, Math.round((now - Date.parse(newest.stop.time)) / 1000)), uom: 's',
    warn: Math.round(ctx.o.backupWarnMs / 1000), crit: Math.round(ctx.o.backupCritMs / 1000), min: 0,
  });
  if (!ctx.meta) {
    ctx.items.push(notTried('wal_continuity', 'the stanza could not be read'));
    return;
  }
  try {
    const size = ctx.meta.walSegmentSize;
    const { scanArchive } = await import('../wal/wal-verify.js');
    const { objects } = await scanArchive(repo, ctx.meta);
    const first = parseSegmentName(newest.walRange.first, size);
    const from = newest.walStored ? nextSegment(parseSegmentName(newest.walRange.last, size), size) : first;
    const present = new Set<bigint>();
    for (const o of objects) {
      const name = walNameOfKey(o.path);
      if (!name || !isSegmentName(name)) continue;
      const id = parseSegmentName(name, size);
      if (id.timeline === from.timeline) present.add(id.segno);
    }
    const continuity = walContinuityItem({
      backupId: newest.id, from: from.segno, walStored: newest.walStored, present,
      name: (segno) => segmentName({ timeline: from.timeline, segno }, size),
    });
    ctx.items.push(continuity);
    // The WAL window: segments from the newest backup's first one to the newest archived, without a gap (known only then).
    if (continuity.status === 'OK') {
      let newestSeg = from.segno - 1n;
      for (const s of present) if (s > newestSeg) newestSeg = s;
      ctx.perf.push({ label: 'wal_window_segments', value: Number(newestSeg - first.segno + 1n), uom: '', min: 0 });
    }
  } catch (err) {
    ctx.items.push({ name: 'wal_continuity', status: 'CRITICAL', detail: `unable to list the archive: ${causeText(err)}` });
  }
}

/**
 * The further repositories (repo2, repo3): each opened and its stanza read (an unreachable
 * required one is CRITICAL, an async one a WARNING), and each async one's backlog, counted in
 * `repo` (wal/wal-backlog.ts) with perfdata backlog_<repoN> and backlog_<repoN>_age.
 */
async function checkMoreRepos<S extends CheckSettings>(ctx: Context, settings: S, openRepo: (s: S) => Promise<Repository>): Promise<void> {
  const more = settings.moreRepos ?? [];
  if (more.length === 0) return;
  for (const m of more) {
    let error: string | undefined;
    try {
      const repo = await openRepo({ ...settings, repo: m.location, cipherKeyFile: m.cipherKeyFile, cipherKeyEnv: m.cipherKeyEnv });
      try {
        await repo.readStanza();
      } finally {
        await repo.close().catch(() => undefined);
      }
    } catch (err) {
      error = causeText(err);
    }
    ctx.items.push(moreRepoItem(m.name, m.mode, redactLocation(m.location), error));
  }
  const asyncRepos = more.filter((m) => m.mode === 'async').map((m) => m.name);
  if (asyncRepos.length === 0) return;
  if (!ctx.repo) {
    for (const r of asyncRepos) ctx.items.push(notTried(`backlog ${r}`, 'the repository could not be opened'));
    return;
  }
  const limits = ctx.o.backlog ?? BACKLOG_LIMITS_DEFAULT;
  try {
    const { backlogStates } = await import('../wal/wal-backlog.js');
    const now = Date.now();
    for (const b of await backlogStates(ctx.repo, asyncRepos)) {
      const ageMs = b.files > 0 && Number.isFinite(b.oldestMs) ? Math.max(0, now - b.oldestMs) : undefined;
      ctx.items.push(backlogItem(b.repo, b.files, b.oldest, ageMs, limits));
      ctx.perf.push(...backlogPerf(b.repo, b.files, ageMs, limits));
    }
  } catch (err) {
    for (const r of asyncRepos) ctx.items.push({ name: `backlog ${r}`, status: 'CRITICAL', detail: `unable to list the backlog: ${causeText(err)}` });
  }
}

/** The age of the newest stored drill report (perfdata only; no drill yet: unknown, left out). */
async function drillAge(ctx: Context): Promise<void> {
  if (!ctx.repo || !ctx.meta) return;
  try {
    const { latestDrill } = await import('./metrics-repo.js');
    const { drillTimeMs } = await import('./metrics-drill.js');
    const { last } = await latestDrill(ctx.repo);
    const t = last ? drillTimeMs(last) : undefined;
    if (t !== undefined && Number.isFinite(t)) ctx.perf.push({ label: 'last_drill_age', value: Math.max(0, Math.round((Date.now() - t) / 1000)), uom: 's', min: 0 });
  } catch {
    // unreadable drill reports are pgark drill's and pgark metrics' business; the age is unknown
  }
}

async function checkReceivers(ctx: Context): Promise<void> {
  const statuses: ReceiverStatusView[] = [];
  if (ctx.repo) {
    try {
      statuses.push(...(await readReceiverStatuses<ReceiverStatusView & { slot?: { name: string } }>(ctx.repo, (key, err) => {
        ctx.items.push({ name: `receiver ${key.slice(key.lastIndexOf('/') + 1, -5)}`, status: 'CRITICAL', detail: `unreadable status object: ${causeText(err)}` });
      })));
    } catch (err) {
      ctx.items.push({ name: 'receivers', status: 'CRITICAL', detail: `unable to list receiver status objects: ${causeText(err)}` });
    }
  }
  const now = Date.now();
  const slots = new Map<string, string | undefined>(); // slot -> receiver naming it
  if (ctx.o.slot) slots.set(ctx.o.slot, undefined);
  for (const s of statuses.sort((a, b) => a.name.localeCompare(b.name))) {
    ctx.items.push(receiverItem(s, now));
    const slot = (s as { slot?: { name?: string } }).slot?.name;
    if (slot && !slots.has(slot)) slots.set(slot, s.name);
  }
  for (const [slot, receiver] of slots) {
    if (!ctx.client) {
      ctx.items.push(notTried(`slot ${slot}`, 'no connection to the server'));
      continue;
    }
    try {
      ctx.items.push(slotItem(slot, await readSlot(ctx.client, slot), receiver === undefined, undefined, receiver));
    } catch (err) {
      ctx.items.push({ name: `slot ${slot}`, status: 'CRITICAL', detail: causeText(err) });
    }
  }
}

/**
 * Run every item. `resolve` returns the settings (it throws for invalid ones: the configuration
 * item then fails and nothing else is tried); `openRepo` opens the repository.
 */
export async function runCheck<S extends CheckSettings>(resolve: () => S, openRepo: (s: S) => Promise<Repository>, o: CheckOptions): Promise<CheckReport> {
  const items: CheckItem[] = [];
  let settings: S;
  try {
    settings = resolve();
    requireRepo(settings);
  } catch (err) {
    // pgark cannot check anything: UNKNOWN (exit 3), not a verdict on the cluster.
    items.push({ name: 'configuration', status: 'UNKNOWN', detail: causeText(err) });
    return { status: 'UNKNOWN', items, perfdata: [] };
  }
  items.push({ name: 'configuration', status: 'OK', detail: `repository ${redactLocation(settings.repo!)}, stanza '${settings.stanza}', config file ${settings.configPath ?? 'none'}` });
  const ctx: Context = { settings, o, items, perf: [], writable: false };
  try {
    await checkServer(ctx);
    await checkRepository(ctx, () => openRepo(settings));
    await checkArchiving(ctx);
    await checkBackups(ctx);
    await checkMoreRepos(ctx, settings, openRepo);
    await drillAge(ctx);
    await checkReceivers(ctx);
  } finally {
    await ctx.client?.end().catch(() => undefined);
    await ctx.repo?.close().catch(() => undefined);
  }
  return { status: overallStatus(items), items, perfdata: ctx.perf };
}
