/**
 * `pgark agent`: a long-running process per cluster that stores WAL segments as soon as
 * PostgreSQL marks them ready, so that archive_command only has to find its record.
 *
 * Loop: list `pg_wal/archive_status/*.ready`; for each segment without a push record and
 * without a live lock, take the lock (`pg_wal/.pgark/pushed/<name>.lock`, our pid), store the
 * segment exactly as wal-push does (validated, compared with what is archived, put-if-absent),
 * write its record only after the object is durable, drop the lock. At most `jobs` segments
 * are in flight. Woken by fs.watch on archive_status, and every `pollMs` anyway.
 *
 * Nothing here acknowledges WAL to PostgreSQL: only archive_command does, and it succeeds
 * through a record only for the very file that was stored (bin/pgark-wal-push, src/wal/fast-path.cjs).
 * When the agent is down, stalled or fails on a segment, archive_command does the full push.
 *
 * Several repositories (repo2, repo3): a segment is stored as wal-push stores it
 * (wal/wal-push-set.ts storeInEveryRepo), and its record is written only once it is durable in
 * every required repository and in every async one or that one's backlog; the record names the
 * whole set (setPushTarget), so only a wal-push call with the same repositories and modes takes
 * it (in the CLI: the shell client and bin/pgark.js leave such calls to it). The async
 * repositories' backlogs are filled behind from the loop, oldest first, every FILL_EVERY_MS.
 */
import { watch, type FSWatcher } from 'node:fs';
import { readdir, rm, stat, mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ArchiveMismatchError, causeText, LockedError } from '../common/errors.js';
import { log } from '../common/log.js';
import { setGarbageBudget } from '../common/gc-budget.js';
import { lockOwner, tryLock } from '../common/pid-lock.js';
import type { Settings } from '../config/resolve.js';
import type { CodecName } from '../io/codec.js';
import type { RepoSet, RepoSetMember } from '../repo/repo-set.js';
import type { Repository } from '../repo/repository.js';
import { auditEvent, writeAudit, type AuditEvent } from '../wal/audit.js';
import { pushLockPath, pushRecordDir } from '../wal/fast-path.js';
import { inspectLocalWal, type LocalWalFile } from '../wal/inspect-local.js';
import { pushWalFile } from '../wal/push-file.js';
import { assertWalFileName } from '../wal/segment-name.js';
import { PushRecords } from '../wal/spool.js';
import { BacklogFiller, setPushTarget, storeInEveryRepo } from '../wal/wal-push-set.js';
import { agentDir, agentPidPath, agentStatusPath } from '../wal/agent-paths.js';
import { backlogWarning, ratePerMinute, type AgentStatus, type BacklogThresholds } from './agent-status.js';
import { segmentOfReadyFile } from '../pg/wal-names.js';
import { LoopWake } from './loop-wake.js';

const AUDIT_EVERY_MS = 10_000;
const WARN_EVERY_MS = 60_000;
const RETRY_MIN_MS = 1000;
const RETRY_MAX_MS = 30_000;
/** How often the backlog of an async repository is looked at (and filled, when it is reachable). */
export const FILL_EVERY_MS = 5000;
/** Backlog files filled per async repository and round. */
const FILL_PER_ROUND = 64;
/** Bytes of dropped lz4 blocks between two minor collections (common/gc-budget.ts). */
const AGENT_GARBAGE_BUDGET = 16 * 1024 * 1024;
/** The status file is rewritten at most this often (the metrics endpoint gets every round's state). */
const STATUS_FILE_EVERY_MS = 500;
/**
 * A change in archive_status wakes the loop this much later, so that a burst of them (the
 * archiver renames each `.ready` to `.done`, PostgreSQL adds new ones) costs one round.
 */
const WATCH_SETTLE_MS = 10;

export interface AgentOptions {
  walDir: string;
  pollMs: number;
  thresholds: BacklogThresholds;
  /** Called with the fresh status after every round (metrics endpoint). */
  onStatus?: (s: AgentStatus) => void;
  signal: AbortSignal;
}


/** Ready segments, oldest first, with the age of the oldest `.ready` file. */
async function readySegments(walDir: string): Promise<{ names: string[]; oldestAgeSec: number }> {
  const statusDir = join(walDir, 'archive_status');
  let entries: string[];
  try {
    entries = await readdir(statusDir);
  } catch (err) {
    throw new Error(`unable to read '${statusDir}': ${causeText(err)} (is --pgdata the data directory of a cluster with archive_mode on?)`);
  }
  const names = entries.flatMap((e) => segmentOfReadyFile(e) ?? []).sort();
  let oldestAgeSec = 0;
  if (names[0]) {
    const st = await stat(join(statusDir, `${names[0]}.ready`)).catch(() => undefined);
    if (st) oldestAgeSec = Math.max(0, (Date.now() - st.mtimeMs) / 1000);
  }
  return { names, oldestAgeSec };
}

/**
 * Whether `name`, listed as ready and without a record when the round began, still needs storing
 * now that the agent holds its lock: a look-ahead worker (started by a full wal-push call before
 * the agent ran) may have stored it and written its record since, or PostgreSQL may have archived
 * it (its `.ready` gone). Pushing it then would only find it stored and hash the local file again
 * (~15 ms of CPU per segment; bench/results/agent.md: 11-17 of 48 segments per drain).
 */
export async function stillToPush(walDir: string, recordDir: string, name: string): Promise<boolean> {
  const [record, ready] = await Promise.all([
    stat(join(recordDir, name)).then(() => true, () => false),
    stat(join(walDir, 'archive_status', `${name}.ready`)).then(() => true, () => false),
  ]);
  return !record && ready;
}

/** What the agent reads: the push target, the codec and level, and its parallelism. */
export type AgentSettings = Pick<Settings, 'repo' | 'stanza' | 'moreRepos' | 'codec' | 'codecExplicit' | 'compressLevel' | 'jobs'>;

export async function runAgent(set: RepoSet, settings: AgentSettings, o: AgentOptions): Promise<AgentStatus> {
  const repo = set.first;
  const { walDir } = o;
  await mkdir(agentDir(walDir), { recursive: true, mode: 0o700 });
  await mkdir(pushRecordDir(walDir), { recursive: true, mode: 0o700 });
  if (!(await tryLock(agentPidPath(walDir)))) {
    throw new LockedError(`another pgark agent (pid ${await lockOwner(agentPidPath(walDir))}) serves '${walDir}'`);
  }
  const records = new PushRecords(walDir);
  // A minor collection per 16 MiB of lz4 blocks (they die young), and no forced full one: V8
  // starts its own full collections as the drain goes on (5-6 per 16 bulk-load segments), and
  // the forced ones on top cost ~15% of the agent's CPU for no lower peak RSS
  // (bench/results/agent.md, branch a-drain).
  setGarbageBudget(AGENT_GARBAGE_BUDGET, 'minor');
  // Records name the repository (or the set of them) and stanza they were stored in: an
  // archive_command pointing elsewhere never takes them for its own.
  const target = setPushTarget(settings);
  const status: AgentStatus = {
    pid: process.pid, stanza: repo.stanza, repo: repo.location, startedAt: new Date().toISOString(), updatedAt: new Date().toISOString(),
    queue: 0, inFlight: 0, oldestReadyAgeSec: 0, pushed: 0, alreadyArchived: 0, bytes: 0, errors: 0, perMinute: 0,
  };
  const completions: number[] = [];
  const inFlight = new Set<string>();
  /** Segments that failed: not retried before this time. */
  const retryAt = new Map<string, { at: number; delay: number }>();
  const events: AuditEvent[] = [];
  let lastAudit = Date.now();
  let lastWarn = 0;
  /** Each repository's codec, found once (the stanza's, unless --codec was given). */
  const codecs = new Map<string, CodecName>();
  const codecFor = async (r: Repository, m: RepoSetMember, file: LocalWalFile): Promise<CodecName> => {
    let codec = codecs.get(m.name);
    if (codec === undefined) {
      const meta = file.identity ? await r.ensureStanza(file.identity, settings.codec, `WAL file '${file.name}'`) : await r.requireStanza();
      codec = settings.codecExplicit ? settings.codec : meta.codec;
      codecs.set(m.name, codec);
    }
    return codec;
  };
  /** The async repositories' backlogs, filled behind every FILL_EVERY_MS. */
  const filler = new BacklogFiller(set, join(agentDir(walDir), 'backlog'), FILL_PER_ROUND, 'agent');
  let nextFillAt = 0;

  const loop = new LoopWake();
  let watcher: FSWatcher | undefined;
  let settling: NodeJS.Timeout | undefined;
  /**
   * A change in archive_status: a round soon, unless every job slot is taken (each segment that
   * completes wakes the loop itself, and that round lists archive_status afresh).
   */
  const changed = (): void => {
    if (settling !== undefined || inFlight.size >= settings.jobs) return;
    settling = setTimeout(() => {
      settling = undefined;
      loop.wake();
    }, WATCH_SETTLE_MS);
  };
  try {
    watcher = watch(join(walDir, 'archive_status'), changed);
    watcher.on('error', () => undefined);
  } catch {
    // Polling alone still works.
  }

  const pushOne = async (name: string): Promise<void> => {
    const lock = pushLockPath(walDir, name);
    const started = Date.now();
    try {
      const file = await inspectLocalWal(join(walDir, name), assertWalFileName(name), name);
      // Durable in every required repository, and in every async one or its backlog, before the record.
      const stored = await storeInEveryRepo(set, name, async (r, m) => pushWalFile(r, file, { codec: await codecFor(r, m, file), level: settings.compressLevel }));
      for (const x of stored.outcomes) if (x.status === 'backlog') filler.noteBacklog(x.repo);
      const r = stored.required[0]!;
      await records.add(file, r.sha256, target);
      events.push(r.event);
      if (r.status === 'exists') status.alreadyArchived++;
      else status.pushed++;
      status.bytes += file.size;
      status.lastPushAt = new Date().toISOString();
      completions.push(Date.now());
      retryAt.delete(name);
    } catch (err) {
      status.errors++;
      const message = causeText(err);
      status.lastError = { at: new Date().toISOString(), segment: name, message };
      const prev = retryAt.get(name)?.delay ?? RETRY_MIN_MS / 2;
      const delay = Math.min(RETRY_MAX_MS, prev * 2);
      retryAt.set(name, { at: Date.now() + delay, delay });
      log.warn(`agent: storing '${name}' failed (retry in ${Math.round(delay / 1000)} s; archive_command pushes it itself meanwhile): ${message}`);
      events.push(auditEvent(err instanceof ArchiveMismatchError ? 'mismatch' : 'error', name, started, { detail: `agent: ${message}` }));
    } finally {
      inFlight.delete(name);
      await rm(lock, { force: true });
      loop.wake();
    }
  };

  let statusWrittenAt = 0;
  const refresh = async (ready: string[], oldestAgeSec: number, recorded: ReadonlySet<string>): Promise<void> => {
    status.queue = ready.filter((n) => !recorded.has(n)).length;
    status.inFlight = inFlight.size;
    status.oldestReadyAgeSec = Math.round(oldestAgeSec * 10) / 10;
    status.oldestReady = ready[0];
    const now = Date.now();
    while (completions.length > 0 && now - (completions[0] as number) > 60_000) completions.shift();
    status.perMinute = ratePerMinute(completions, now);
    status.updatedAt = new Date(now).toISOString();
    if (now - statusWrittenAt >= STATUS_FILE_EVERY_MS) {
      statusWrittenAt = now;
      const path = agentStatusPath(walDir);
      const tmp = `${path}.tmp`;
      await writeFile(tmp, JSON.stringify(status, null, 2) + '\n', { mode: 0o600 });
      await rename(tmp, path);
    }
    o.onStatus?.({ ...status });
    const warning = backlogWarning(status, o.thresholds);
    if (warning && now - lastWarn >= WARN_EVERY_MS) {
      lastWarn = now;
      log.warn(`agent: ${warning}`);
    }
  };

  const where = set.members.map((m) => (m.name === 'repo' ? repo.location : `${m.name} (${m.mode}) ${m.repo?.location ?? '(not open)'}`)).join(', ');
  log.info(`agent: serving '${walDir}' for stanza '${repo.stanza}' on ${where} with ${settings.jobs} jobs`);
  try {
    while (!o.signal.aborted) {
      loop.beginRound();
      const { names: ready, oldestAgeSec } = await readySegments(walDir);
      const recorded = new Set(await records.names());
      // Records older than the oldest ready segment are of segments PostgreSQL archived: emptied
      // by the shell client that answered from them, or left by the full path; clutter only (a
      // record answers just for the very file it describes).
      const oldest = ready[0];
      if (oldest !== undefined) for (const n of recorded) if (n < oldest && !inFlight.has(n)) await rm(join(records.dir, n), { force: true });
      const now = Date.now();
      for (const name of ready) {
        if (inFlight.size >= settings.jobs) break;
        if (recorded.has(name) || inFlight.has(name)) continue;
        if ((retryAt.get(name)?.at ?? 0) > now) continue;
        if (!(await tryLock(pushLockPath(walDir, name)))) continue; // a look-ahead worker has it
        if (!(await stillToPush(walDir, records.dir, name))) {
          await rm(pushLockPath(walDir, name), { force: true });
          continue;
        }
        inFlight.add(name);
        void pushOne(name);
      }
      if (!filler.busy && Date.now() >= nextFillAt) filler.kick(() => (nextFillAt = Date.now() + FILL_EVERY_MS));
      await refresh(ready, oldestAgeSec, recorded);
      if (events.length > 0 && (Date.now() - lastAudit >= AUDIT_EVERY_MS || inFlight.size === 0)) {
        lastAudit = Date.now();
        await writeAudit(repo, events.splice(0)).catch((err: unknown) => log.warn(`agent: audit record not written: ${causeText(err)}`));
      }
      await loop.sleep(o.pollMs, o.signal);
    }
    // Let what is in flight finish: its records are what PostgreSQL's next calls will find.
    while (inFlight.size > 0) await new Promise((r) => setTimeout(r, 50));
    await filler.idle();
    if (events.length > 0) await writeAudit(repo, events.splice(0)).catch(() => undefined);
    return { ...status };
  } finally {
    watcher?.close();
    clearTimeout(settling);
    await rm(agentStatusPath(walDir), { force: true });
    await rm(agentPidPath(walDir), { force: true });
  }
}
