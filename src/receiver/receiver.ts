/**
 * `pgark receive`: stream WAL from a physical replication slot into the repository. Resumes
 * right after the stored WAL, follows timeline switches, reconnects with backoff, and reports as
 * flushed only what is durably stored, so that it can be a synchronous standby.
 */
import { mkdir } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  ArchiveMismatchError, ClusterMismatchError, ConfigError, InvalidInputError, IntegrityError, LockedError, PgarkError, ProtocolError,
} from '../common/errors.js';
import { acquirePidLock, type HeldPidLock } from '../common/pid-lock.js';
import { log } from '../common/log.js';
import type { CodecName } from '../io/codec.js';
import { receivedPrefix, receiverStatusKey, walKey } from '../repo/layout.js';
import { acquireRepoLock, type RepoLock } from '../repo/repo-lock.js';
import type { Repository } from '../repo/repository.js';
import type { StanzaMeta } from '../repo/stanza-meta.js';
import { createPhysicalSlotCommand, readReplicationSlotCommand, startReplicationCommand, timelineHistoryCommand } from '../protocol/replication-commands.js';
import { encodeStandbyStatus, msToPgTime } from '../protocol/replication.js';
import { formatLsn, parseLsn } from '../wal/segment-name.js';
import { parseTimelineHistory, type TimelineHistory } from '../wal/timeline-history.js';
import { LagClock, type ReceiverStatus } from './receiver-status.js';
import { followsHistoryPath, ReceiverPositionError, resumePoint, timelineSpans } from './resume-point.js';
import { storeImmutable } from '../wal/received-wal.js';
import { ReplicationConnection, ServerError } from './replication-connection.js';
import { SegmentWriter } from './segment-writer.js';
import { storedEnds, storedPrefix } from './stored-position.js';

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

/** Errors that retrying cannot fix: the receiver stops and says why. */
function isFatal(err: unknown): boolean {
  if (err instanceof ServerError) {
    // auth, privilege, missing slot / WAL, wrong slot type, bad command
    return /^(28|42|58)/.test(err.code) || err.code === '55000';
  }
  return err instanceof ClusterMismatchError || err instanceof ArchiveMismatchError || err instanceof ReceiverPositionError ||
    err instanceof ProtocolError || err instanceof ConfigError || err instanceof InvalidInputError || err instanceof IntegrityError ||
    err instanceof LockedError;
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

function explain(err: unknown, o: ReceiverOptions, where: string, at?: string): unknown {
  if (!(err instanceof ServerError)) return err;
  if (err.code === '42704' && o.slot) {
    return new ConfigError(`replication slot '${o.slot}' does not exist on ${where}: create it with 'pgark receive --create-slot' or SELECT pg_create_physical_replication_slot('${o.slot}', true) (${err.fields.message})`);
  }
  if (err.code === '58P01') {
    return new ReceiverPositionError(
      `the server no longer has the WAL at ${at ?? 'the resume position'}, where the WAL stored in the repository ends (${err.fields.message}). ` +
      'It was removed before it was received or archived, so the repository has a gap from there: use a replication slot so that ' +
      'the server keeps WAL until it is stored, and take a new backup; WAL received from now on only helps restores of backups taken after the gap',
    );
  }
  return err;
}

function parseSizeSetting(text: string): number {
  const m = /^(\d+)\s*(B|kB|MB|GB)?$/.exec(text.trim());
  if (!m) throw new ProtocolError(`unable to parse wal_segment_size '${text}'`);
  const mult = { B: 1, kB: 1024, MB: 1024 ** 2, GB: 1024 ** 3 }[m[2] ?? 'B'] ?? 1;
  return Number(m[1]) * mult;
}

/** Run a receiver; with `held`, under locks the caller took (acquireReceiverLocks) and releases. */
export async function runReceiver(repo: Repository, o: ReceiverOptions, held?: ReceiverLocks): Promise<ReceiverStatus> {
  if (held) return receive(repo, o, held);
  const locks = await acquireReceiverLocks(repo, o.name, o.spoolDir);
  try {
    return await receive(repo, o, locks);
  } finally {
    await locks.release();
  }
}

async function receive(repo: Repository, o: ReceiverOptions, locks: ReceiverLocks): Promise<ReceiverStatus> {
  const status: ReceiverStatus = {
    name: o.name, host: hostname(), pid: process.pid, state: 'connecting', synchronous: o.synchronous,
    startedAt: new Date().toISOString(), updatedAt: new Date().toISOString(),
    lagBytes: 0, lagSeconds: 0, bytesReceived: 0, piecesStored: 0, segmentsStored: 0, reconnects: 0,
  };
  const lag = new LagClock();
  let serverEnd = 0n;
  let meta: StanzaMeta | undefined;
  let writer: SegmentWriter | undefined;
  let statusStoredAt = 0;
  let statusStoring: Promise<void> | undefined;
  /** Set when a lock was lost: from then on the status object is the new holder's. */
  let lockLost = false;

  const publish = (force = false) => {
    const now = Date.now();
    status.updatedAt = new Date(now).toISOString();
    if (writer) {
      status.timeline = writer.timeline;
      status.segment = writer.segment;
      status.writeLsn = formatLsn(writer.writeLsn);
      status.flushLsn = formatLsn(writer.flushLsn);
      status.lagBytes = serverEnd > writer.flushLsn ? Number(serverEnd - writer.flushLsn) : 0;
      if (writer.counters.lastFlushAtMs) status.lastFlushAt = new Date(writer.counters.lastFlushAtMs).toISOString();
      status.piecesStored = writer.counters.piecesStored + base.pieces;
      status.segmentsStored = writer.counters.segmentsStored + base.segments;
    }
    if (serverEnd > 0n) status.serverWalEnd = formatLsn(serverEnd);
    status.lagSeconds = Math.round(lag.seconds(now) * 1000) / 1000;
    o.onStatus?.(status);
    // Once the locks are lost, the status object belongs to the receiver that holds them.
    if ((force || now - statusStoredAt >= 10_000) && !statusStoring && !lockLost) {
      statusStoredAt = now;
      const body = Buffer.from(JSON.stringify(status, null, 2) + '\n');
      statusStoring = repo.putObject(receiverStatusKey(repo.stanza, o.name), () => Readable.from([body]), { codec: 'none' })
        .then(() => undefined, (err: unknown) => log.warn(`receive: unable to store the status: ${(err as Error).message}`))
        .finally(() => (statusStoring = undefined));
    }
  };
  // Counters of writers of earlier sessions.
  const base = { pieces: 0, segments: 0 };

  const storeHistory = async (conn: ReplicationConnection, timeline: number): Promise<TimelineHistory> => {
    const [res] = await conn.query(timelineHistoryCommand(timeline));
    const row = res?.rows[0];
    if (!row || row[0] == null || row[1] == null) throw new ProtocolError(`unable to parse TIMELINE_HISTORY ${timeline}: no row`);
    const name = row[0];
    let text = row[1];
    if (/^\\x[0-9a-fA-F]*$/.test(text)) text = Buffer.from(text.slice(2), 'hex').toString('utf8');
    const history = parseTimelineHistory(text, timeline);
    const body = Buffer.from(text, 'utf8');
    await storeImmutable(repo, walKey(repo.stanza, name), () => Readable.from([body]), o.codecExplicit || !meta ? o.codec : meta.codec);
    return history;
  };

  const session = async (): Promise<'stopped' | 'restart'> => {
    locks.check();
    status.state = 'connecting';
    const conn = await ReplicationConnection.open({ dsn: o.dsn, applicationName: o.name, connectTimeoutSec: o.connectTimeoutSec });
    let resumeAt: string | undefined;
    try {
      const [ident] = await conn.query('IDENTIFY_SYSTEM');
      const [systemid, tliText, xlogpos] = ident?.rows[0] ?? [];
      if (!systemid || !tliText || !xlogpos) throw new ProtocolError('unable to parse IDENTIFY_SYSTEM: missing fields');
      const serverTli = Number(tliText);
      if (!meta) {
        const version = Number((await conn.query('SHOW server_version_num'))[0]?.rows[0]?.[0]);
        const segSize = parseSizeSetting((await conn.query('SHOW wal_segment_size'))[0]?.rows[0]?.[0] ?? '');
        if (version < 130000) throw new ConfigError(`PostgreSQL ${Math.floor(version / 10000)} is not supported: pgark receive needs 13 or later`);
        meta = await repo.ensureStanza({ systemIdentifier: systemid, pgVersion: Math.floor(version / 10000), walSegmentSize: segSize }, o.codec, `receive from ${conn.where}`);
        status.server = { where: conn.where, systemIdentifier: systemid, timeline: serverTli, version };
      } else if (meta.systemIdentifier !== systemid) {
        throw new ClusterMismatchError(`the server at ${conn.where} is another cluster (system identifier ${systemid}, stanza '${repo.stanza}' has ${meta.systemIdentifier})`);
      }
      status.server = { ...status.server!, where: conn.where, timeline: serverTli };
      const history = serverTli > 1 ? await storeHistory(conn, serverTli) : { timeline: 1, parents: [] };

      let slotRestart: { lsn: bigint; timeline?: number } | undefined;
      if (o.slot) {
        if (o.createSlot) {
          try {
            await conn.query(createPhysicalSlotCommand(o.slot));
            log.info(`receive: created physical replication slot '${o.slot}'`);
          } catch (err) {
            if (!(err instanceof ServerError && err.code === '42710')) throw err;
          }
        }
        if (meta.pgVersion >= 15) {
          const row = (await conn.query(readReplicationSlotCommand(o.slot)))[0]?.rows[0];
          if (!row || row[0] == null) throw new ConfigError(`replication slot '${o.slot}' does not exist on ${conn.where}: create it with 'pgark receive --create-slot' or SELECT pg_create_physical_replication_slot('${o.slot}', true)`);
          if (row[0] !== 'physical') throw new ConfigError(`replication slot '${o.slot}' on ${conn.where} is a ${row[0]} slot; pgark receive needs a physical one`);
          if (row[1]) slotRestart = { lsn: parseLsn(row[1]), ...(row[2] ? { timeline: Number(row[2]) } : {}) };
        }
        status.slot = { name: o.slot, restartLsn: slotRestart ? formatLsn(slotRestart.lsn) : undefined, restartTimeline: slotRestart?.timeline, active: false };
      }

      const spans = timelineSpans(history);
      const tlis = spans.map((s) => s.timeline);
      // Temp files of a receiver killed in the middle of a store (small pieces skip the per-put sweep).
      await repo.driver.sweep?.(receivedPrefix(repo.stanza)).catch(() => 0);
      const { ends, obsolete } = await storedEnds(repo, tlis, meta.walSegmentSize);
      if (obsolete.length > 0) {
        await repo.driver.delete(obsolete).catch((err: unknown) => log.warn(`receive: unable to remove ${obsolete.length} obsolete received pieces: ${(err as Error).message}`));
      }
      const rp = resumePoint({ history, stored: ends, walSegmentSize: meta.walSegmentSize, fallback: slotRestart ?? { lsn: parseLsn(xlogpos) } });
      for (const t of rp.divergedTimelines) {
        log.warn(`receive: the repository holds WAL of timeline ${t} past its switch point in the server's history; it is kept, and the receiver goes on on the next timeline`);
      }
      const seg = BigInt(meta.walSegmentSize);
      const codec = o.codecExplicit ? o.codec : meta.codec;
      let start = { timeline: rp.timeline, lsn: rp.lsn };
      let prefix;
      if (rp.lsn % seg !== 0n) {
        const older = tlis.filter((t) => t < rp.timeline).reverse();
        prefix = await storedPrefix(repo, [rp.timeline, ...older], rp.lsn / seg, Number(rp.lsn % seg), meta.walSegmentSize);
        if (!prefix) {
          const lsn = (rp.lsn / seg) * seg;
          const span = spans.find((s) => lsn >= s.begin && (s.end === undefined || lsn < s.end))!;
          log.warn(`receive: the start of the segment at ${formatLsn(rp.lsn)} is not stored; receiving it again from ${formatLsn(lsn)}`);
          start = { timeline: span.timeline, lsn };
        }
      }
      writer = await SegmentWriter.open(
        { repo, codec, walSegmentSize: meta.walSegmentSize, spoolDir: o.spoolDir, ownsSpool: () => locks.spool.owns() },
        start.timeline, start.lsn, prefix,
      );
      log.info(`receive: ${rp.from === 'stored' ? 'resuming after the stored WAL' : 'nothing stored yet; starting'} at ${formatLsn(start.lsn)} on timeline ${start.timeline}`);

      for (;;) {
        resumeAt = `${formatLsn(writer.writeLsn)} on timeline ${writer.timeline}`;
        const started = await conn.startReplication(startReplicationCommand({ ...(o.slot ? { slot: o.slot } : {}), lsn: writer.writeLsn, timeline: writer.timeline }));
        let end;
        if (started === 'copy') {
          status.state = 'streaming';
          streamed = true;
          if (status.slot) status.slot.active = true;
          publish(true);
          const r = await stream(conn, writer);
          if (r === 'stopped') return 'stopped';
          end = r;
        } else {
          end = started;
        }
        if (end.nextTimeline === undefined || end.nextStart === undefined) {
          throw new PgarkError(`the server at ${conn.where} ended streaming without a next timeline (shutting down?)`);
        }
        const next = end.nextTimeline;
        const nextStart = parseLsn(end.nextStart);
        const nextHistory = await storeHistory(conn, next);
        // The server names the next timeline by the switch point written for the one that ended
        // (tliSwitchPoint). When a later timeline forked lower (switch points that decrease),
        // the path of the server's history leaves this timeline earlier, for another one:
        // resume from what is stored, placed on that path (resumePoint).
        if (!followsHistoryPath(next > history.timeline ? nextHistory : history, writer.timeline, next, nextStart)) {
          log.info(`receive: timeline ${writer.timeline} ends at ${formatLsn(nextStart)} with timeline ${next} next, which is not the path of the server's timeline history; resuming on that path`);
          return 'restart';
        }
        log.info(`receive: timeline ${writer.timeline} ends at ${formatLsn(nextStart)}; following timeline ${next}`);
        await writer.switchTimeline(next, nextStart);
      }
    } catch (err) {
      throw explain(err, o, conn.where, resumeAt);
    } finally {
      if (status.slot) status.slot.active = false;
      conn.close();
      if (writer) {
        // Store what was received before the connection went; the server has it durably.
        await writer.flush().catch((err: unknown) => log.warn(`receive: unable to store the last received WAL: ${(err as Error).message}`));
        lag.stored(writer.flushLsn);
        publish();
        base.pieces += writer.counters.piecesStored;
        base.segments += writer.counters.segmentsStored;
        await writer.close();
      }
    }
  };

  /** One START_REPLICATION stream: until the server ends it, the connection fails, or a stop. */
  const stream = async (conn: ReplicationConnection, w: SegmentWriter) => {
    let lastReplyAt = 0;
    let lastFlushAt = Date.now();
    const reply = () => {
      const flush = w.flushLsn;
      conn.send(encodeStandbyStatus({ write: w.writeLsn, flush, apply: flush, clock: msToPgTime(Date.now()), replyRequested: false }));
      lastReplyAt = Date.now();
    };
    const flush = async () => {
      await w.flush();
      lastFlushAt = Date.now();
      lag.stored(w.flushLsn);
    };
    reply();
    let checkedAt = Date.now();
    for (;;) {
      if (Date.now() - checkedAt >= 1000) {
        locks.check();
        checkedAt = Date.now();
      }
      if (o.signal.aborted) {
        await flush();
        reply();
        return 'stopped' as const;
      }
      const now = Date.now();
      const untilReply = o.statusIntervalMs - (now - lastReplyAt);
      const untilFlush = w.unflushed > 0 ? o.flushIntervalMs - (now - lastFlushAt) : Infinity;
      const ev = await conn.nextBatch(Math.max(1, Math.min(untilReply, untilFlush, 500)));
      if (ev.kind === 'end') {
        await flush();
        reply();
        return conn.endCopy();
      }
      let needReply = false;
      let got = false;
      const at = Date.now();
      for (const m of ev.messages) {
        if (m.walEnd > serverEnd) serverEnd = m.walEnd;
        lag.saw(m.walEnd, at);
        if (m.kind === 'xlogdata') {
          if (m.data.length > 0) {
            await w.append(m.walStart, m.data);
            status.bytesReceived += m.data.length;
            got = true;
          }
        } else if (m.replyRequested) {
          needReply = true;
        }
      }
      if (ev.messages.length > 0) status.lastMessageAt = new Date(at).toISOString();
      lag.stored(w.flushLsn);
      const due = Date.now() - lastFlushAt >= o.flushIntervalMs;
      if (w.unflushed > 0 && (o.synchronous || due || w.unflushed >= 16 * 1024 * 1024)) {
        await flush();
        needReply = true;
      }
      if (needReply || Date.now() - lastReplyAt >= o.statusIntervalMs) reply();
      publish();
    }
  };

  let attempt = 0;
  let streamed = false;
  try {
    while (!o.signal.aborted) {
      try {
        if ((await session()) === 'stopped') break;
        // 'restart': a new session places the resume point on the history's path.
        await sleep(500, undefined, { signal: o.signal }).catch(() => undefined);
        continue;
      } catch (err) {
        if (o.signal.aborted) break;
        if (streamed) attempt = 0;
        streamed = false;
        if (err instanceof LockedError) lockLost = true;
        status.lastError = (err as Error).message;
        status.lastErrorAt = new Date().toISOString();
        if (isFatal(err)) {
          status.state = 'failed';
          await statusStoring;
          publish(true);
          await statusStoring;
          throw err;
        }
        const delay = Math.min(o.maxBackoffMs ?? 30_000, 500 * 2 ** attempt) * (0.75 + Math.random() / 4);
        attempt = Math.min(attempt + 1, 10);
        status.state = 'retrying';
        status.reconnects += 1;
        publish(true);
        log.warn(`receive: ${(err as Error).message}; reconnecting in ${(delay / 1000).toFixed(1)} s`);
        await sleep(delay, undefined, { signal: o.signal }).catch(() => undefined);
      }
    }
  } finally {
    if (status.state !== 'failed') status.state = 'stopped';
    await statusStoring;
    publish(true);
    await statusStoring;
  }
  return status;
}
