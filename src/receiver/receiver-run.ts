/**
 * One run of `pgark receive` under its locks (receiver.ts runReceiver): sessions with the server,
 * each in named steps (identify the cluster, read the slot, place the resume point and open the
 * writer, stream and follow timeline switches), retried with backoff until a stop or an error
 * that retrying cannot fix. The status object is published as it goes.
 *
 * With repo2, repo3 (a RepoSet of more than one): the stanza is checked in each, the resume
 * point is the earliest of the required repositories' (each must hold everything reported as
 * flushed), and the writer stores in each (segment-writer.ts); the status object and the locks
 * live in the first repository. The async repositories' backlogs are filled behind.
 */
import { hostname } from 'node:os';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  ArchiveMismatchError, ClusterMismatchError, ConfigError, InvalidInputError, IntegrityError, LockedError, PgarkError, ProtocolError,
} from '../common/errors.js';
import { log } from '../common/log.js';
import { receivedPrefix, receiverStatusKey, walKey } from '../repo/layout.js';
import type { CodecName } from '../io/codec.js';
import type { RepoSet } from '../repo/repo-set.js';
import type { Repository } from '../repo/repository.js';
import type { StanzaMeta } from '../repo/stanza-meta.js';
import { createPhysicalSlotCommand, readReplicationSlotCommand, startReplicationCommand, timelineHistoryCommand } from '../protocol/replication-commands.js';
import { encodeStandbyStatus, msToPgTime } from '../protocol/replication.js';
import { formatLsn, parseLsn } from '../wal/segment-name.js';
import { parseTimelineHistory, type TimelineHistory } from '../wal/timeline-history.js';
import { LagClock, type ReceiverStatus } from './receiver-status.js';
import type { ReceiverLocks, ReceiverOptions } from './receiver.js';
import { followsHistoryPath, ReceiverPositionError, resumePoint, timelineSpans, type ResumePoint } from './resume-point.js';
import { storeImmutable } from '../wal/received-wal.js';
import { BacklogFiller, storeInEveryRepo } from '../wal/wal-push-set.js';
import { ReplicationConnection, ServerError } from './replication-connection.js';
import { SegmentWriter } from './segment-writer.js';
import { storedEnds, storedPrefix } from './stored-position.js';

/** Errors that retrying cannot fix: the receiver stops and says why. */
export function isFatal(err: unknown): boolean {
  if (err instanceof ServerError) {
    // auth, privilege, missing slot / WAL, wrong slot type, bad command
    return /^(28|42|58)/.test(err.code) || err.code === '55000';
  }
  return err instanceof ClusterMismatchError || err instanceof ArchiveMismatchError || err instanceof ReceiverPositionError ||
    err instanceof ProtocolError || err instanceof ConfigError || err instanceof InvalidInputError || err instanceof IntegrityError ||
    err instanceof LockedError;
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

/** The bytes of a size setting as SHOW prints it ('16MB'). */
export function parseSizeSetting(text: string): number {
  const m = /^(\d+)\s*(B|kB|MB|GB)?$/.exec(text.trim());
  if (!m) throw new ProtocolError(`unable to parse wal_segment_size '${text}'`);
  const mult = { B: 1, kB: 1024, MB: 1024 ** 2, GB: 1024 ** 3 }[m[2] ?? 'B'] ?? 1;
  return Number(m[1]) * mult;
}

type SlotRestart = { lsn: bigint; timeline?: number };

/** How often an async repository's backlog is looked at while streaming. */
const FILL_EVERY_MS = 5000;
/** publish() runs at most this often unless forced. */
const PUBLISH_EVERY_MS = 100;
/** Backlog files filled per async repository and round. */
const FILL_PER_ROUND = 64;
type Batch = Awaited<ReturnType<ReplicationConnection['nextBatch']>>;

export class ReceiverRun {
  readonly status: ReceiverStatus;
  private readonly lag = new LagClock();
  private serverEnd = 0n;
  private meta: StanzaMeta | undefined;
  private writer: SegmentWriter | undefined;
  private statusStoredAt = 0;
  /** When publish last ran, and when the last batch of messages came (ms). */
  private publishedAt = 0;
  private lastMessageAtMs = 0;
  private statusStoring: Promise<void> | undefined;
  /** Set when a lock was lost: from then on the status object is the new holder's. */
  private lockLost = false;
  /** Counters of the writers before this.writer (earlier sessions). */
  private readonly base = { pieces: 0, segments: 0 };
  /** A session reached streaming since the last failure (the backoff starts again). */
  private streamed = false;

  private readonly repo: Repository;
  /** Each repository's codec by name (repo2, repo3), once its stanza was checked. */
  private readonly codecs = new Map<string, CodecName>();
  private readonly filler: BacklogFiller | undefined;
  private nextFillAt = 0;
  /** ensureMoreStanzas succeeded (the codecs are known). */
  private moreChecked = false;

  constructor(private readonly set: RepoSet, private readonly o: ReceiverOptions, private readonly locks: ReceiverLocks) {
    this.repo = set.first;
    this.filler = set.members.length > 1 ? new BacklogFiller(set, `${o.spoolDir}/backlog`, FILL_PER_ROUND, 'receive') : undefined;
    this.status = {
      name: o.name, host: hostname(), pid: process.pid, state: 'connecting', synchronous: o.synchronous,
      startedAt: new Date().toISOString(), updatedAt: new Date().toISOString(),
      lagBytes: 0, lagSeconds: 0, bytesReceived: 0, piecesStored: 0, segmentsStored: 0, reconnects: 0,
    };
  }

  /** Sessions until a stop (the final status) or an error retrying cannot fix (thrown). */
  async run(): Promise<ReceiverStatus> {
    const o = this.o;
    let attempt = 0;
    try {
      while (!o.signal.aborted) {
        try {
          if ((await this.session()) === 'stopped') break;
          // 'restart': a new session places the resume point on the history's path.
          await sleep(500, undefined, { signal: o.signal }).catch(() => undefined);
          continue;
        } catch (err) {
          if (o.signal.aborted) break;
          if (this.streamed) attempt = 0;
          this.streamed = false;
          await this.failed(err);
          const delay = Math.min(o.maxBackoffMs ?? 30_000, 500 * 2 ** attempt) * (0.75 + Math.random() / 4);
          attempt = Math.min(attempt + 1, 10);
          this.status.state = 'retrying';
          this.status.reconnects += 1;
          this.publish(true);
          log.warn(`receive: ${(err as Error).message}; reconnecting in ${(delay / 1000).toFixed(1)} s`);
          await sleep(delay, undefined, { signal: o.signal }).catch(() => undefined);
        }
      }
    } finally {
      if (this.status.state !== 'failed') this.status.state = 'stopped';
      await this.storedStatus();
      await this.filler?.idle();
    }
    return this.status;
  }

  /** Record a session's error; a fatal one is stored in the status and thrown. */
  private async failed(err: unknown): Promise<void> {
    if (err instanceof LockedError) this.lockLost = true;
    this.status.lastError = (err as Error).message;
    this.status.lastErrorAt = new Date().toISOString();
    if (isFatal(err)) {
      this.status.state = 'failed';
      await this.storedStatus();
      throw err;
    }
  }

  /** Publish and store the status now, after any store in progress. */
  private async storedStatus(): Promise<void> {
    await this.statusStoring;
    this.publish(true);
    await this.statusStoring;
  }

  /**
   * Update the status object (and its consumers: --metrics-port, the stored copy every 10 s).
   * While streaming it is called after every batch; unless forced it runs at most every 100 ms
   * (formatting positions and times per commit of a synchronous standby is measurable CPU).
   */
  private publish(force = false): void {
    const { status, writer } = this;
    const now = Date.now();
    if (!force && now - this.publishedAt < PUBLISH_EVERY_MS) return;
    this.publishedAt = now;
    status.updatedAt = new Date(now).toISOString();
    if (this.lastMessageAtMs) status.lastMessageAt = new Date(this.lastMessageAtMs).toISOString();
    if (writer) {
      status.timeline = writer.timeline;
      status.segment = writer.segment;
      status.writeLsn = formatLsn(writer.writeLsn);
      status.flushLsn = formatLsn(writer.flushLsn);
      status.lagBytes = this.serverEnd > writer.flushLsn ? Number(this.serverEnd - writer.flushLsn) : 0;
      if (writer.counters.lastFlushAtMs) status.lastFlushAt = new Date(writer.counters.lastFlushAtMs).toISOString();
      status.piecesStored = writer.counters.piecesStored + this.base.pieces;
      status.segmentsStored = writer.counters.segmentsStored + this.base.segments;
    }
    if (this.serverEnd > 0n) status.serverWalEnd = formatLsn(this.serverEnd);
    status.lagSeconds = Math.round(this.lag.seconds(now) * 1000) / 1000;
    this.o.onStatus?.(status);
    if (this.filler && !this.filler.busy && now >= this.nextFillAt) this.filler.kick(() => (this.nextFillAt = Date.now() + FILL_EVERY_MS));
    // Once the locks are lost, the status object belongs to the receiver that holds them.
    if ((force || now - this.statusStoredAt >= 10_000) && !this.statusStoring && !this.lockLost) {
      this.statusStoredAt = now;
      const body = Buffer.from(JSON.stringify(status, null, 2) + '\n');
      this.statusStoring = this.repo.putObject(receiverStatusKey(this.repo.stanza, this.o.name), () => Readable.from([body]), { codec: 'none' })
        .then(() => undefined, (err: unknown) => log.warn(`receive: unable to store the status: ${(err as Error).message}`))
        .finally(() => (this.statusStoring = undefined));
    }
  }

  private async storeHistory(conn: ReplicationConnection, timeline: number): Promise<TimelineHistory> {
    const [res] = await conn.query(timelineHistoryCommand(timeline));
    const row = res?.rows[0];
    if (!row || row[0] == null || row[1] == null) throw new ProtocolError(`unable to parse TIMELINE_HISTORY ${timeline}: no row`);
    const name = row[0];
    let text = row[1];
    if (/^\\x[0-9a-fA-F]*$/.test(text)) text = Buffer.from(text.slice(2), 'hex').toString('utf8');
    const history = parseTimelineHistory(text, timeline);
    const body = Buffer.from(text, 'utf8');
    const codec = this.o.codecExplicit || !this.meta ? this.o.codec : this.meta.codec;
    if (this.set.members.length === 1) {
      await storeImmutable(this.repo, walKey(this.repo.stanza, name), () => Readable.from([body]), codec);
      return history;
    }
    const r = await storeInEveryRepo(this.set, name, async (repo, m) => {
      const x = await storeImmutable(repo, walKey(repo.stanza, name), () => Readable.from([body]), this.codecs.get(m.name) ?? codec);
      return { status: x.existed ? 'exists' as const : 'stored' as const };
    }, { async: 'behind' });
    for (const x of r.outcomes) if (x.status === 'backlog') this.filler?.noteBacklog(x.repo);
    return history;
  }

  /** One connection: until a stop, a restart on the history's path, or an error. */
  private async session(): Promise<'stopped' | 'restart'> {
    this.locks.check();
    this.status.state = 'connecting';
    const conn = await ReplicationConnection.open({ dsn: this.o.dsn, applicationName: this.o.name, connectTimeoutSec: this.o.connectTimeoutSec });
    let resumeAt: string | undefined;
    try {
      const { meta, history, xlogpos } = await this.identify(conn);
      const slotRestart = await this.readSlot(conn, meta);
      const writer = await this.openWriter(meta, history, slotRestart ?? { lsn: parseLsn(xlogpos) });
      for (;;) {
        resumeAt = `${formatLsn(writer.writeLsn)} on timeline ${writer.timeline}`;
        const r = await this.streamTimeline(conn, writer, history);
        if (r !== 'next') return r;
      }
    } catch (err) {
      throw explain(err, this.o, conn.where, resumeAt);
    } finally {
      await this.endSession(conn);
    }
  }

  /** IDENTIFY_SYSTEM: the stanza (created on first contact) must be this cluster; store the server's timeline history. */
  private async identify(conn: ReplicationConnection): Promise<{ meta: StanzaMeta; history: TimelineHistory; xlogpos: string }> {
    const [ident] = await conn.query('IDENTIFY_SYSTEM');
    const [systemid, tliText, xlogpos] = ident?.rows[0] ?? [];
    if (!systemid || !tliText || !xlogpos) throw new ProtocolError('unable to parse IDENTIFY_SYSTEM: missing fields');
    const serverTli = Number(tliText);
    if (!this.meta) {
      const version = Number((await conn.query('SHOW server_version_num'))[0]?.rows[0]?.[0]);
      const segSize = parseSizeSetting((await conn.query('SHOW wal_segment_size'))[0]?.rows[0]?.[0] ?? '');
      if (version < 130000) throw new ConfigError(`PostgreSQL ${Math.floor(version / 10000)} is not supported: pgark receive needs 13 or later`);
      const identity = { systemIdentifier: systemid, pgVersion: Math.floor(version / 10000), walSegmentSize: segSize };
      this.meta = await this.repo.ensureStanza(identity, this.o.codec, `receive from ${conn.where}`);
      this.status.server = { where: conn.where, systemIdentifier: systemid, timeline: serverTli, version };
    } else if (this.meta.systemIdentifier !== systemid) {
      throw new ClusterMismatchError(`the server at ${conn.where} is another cluster (system identifier ${systemid}, stanza '${this.repo.stanza}' has ${this.meta.systemIdentifier})`);
    }
    // Until every required further repository said it is this cluster's (a session that failed there tries again).
    if (!this.moreChecked) {
      const { systemIdentifier, pgVersion, walSegmentSize } = this.meta;
      await this.ensureMoreStanzas({ systemIdentifier, pgVersion, walSegmentSize }, conn.where);
      this.moreChecked = true;
    }
    this.status.server = { ...this.status.server!, where: conn.where, timeline: serverTli };
    const history = serverTli > 1 ? await this.storeHistory(conn, serverTli) : { timeline: 1, parents: [] };
    return { meta: this.meta, history, xlogpos };
  }

  /**
   * repo2, repo3: the stanza is this cluster's in each (created on first contact); a required
   * one that cannot say so stops the session, an async one is left to its backlog filling.
   */
  private async ensureMoreStanzas(identity: Parameters<Repository['ensureStanza']>[0], where: string): Promise<void> {
    const first = this.set.members[0]!;
    this.codecs.set(first.name, this.o.codecExplicit ? this.o.codec : this.meta!.codec);
    for (const m of this.set.members.slice(1)) {
      try {
        if (!m.repo) throw m.openError;
        const meta = await m.repo.ensureStanza(identity, this.o.codec, `receive from ${where}`);
        this.codecs.set(m.name, this.o.codecExplicit ? this.o.codec : meta.codec);
      } catch (err) {
        if (m.mode === 'required') throw Object.assign(err as Error, { message: `${m.name}: ${(err as Error).message}` });
        log.warn(`receive: ${m.name} (async): ${(err as Error).message}; what is received goes to its backlog`);
      }
    }
  }

  /** With --slot: create it (--create-slot) and read its restart point (PostgreSQL 15 and later). */
  private async readSlot(conn: ReplicationConnection, meta: StanzaMeta): Promise<SlotRestart | undefined> {
    const slot = this.o.slot;
    if (!slot) return undefined;
    if (this.o.createSlot) {
      try {
        await conn.query(createPhysicalSlotCommand(slot));
        log.info(`receive: created physical replication slot '${slot}'`);
      } catch (err) {
        if (!(err instanceof ServerError && err.code === '42710')) throw err;
      }
    }
    let slotRestart: SlotRestart | undefined;
    if (meta.pgVersion >= 15) {
      const row = (await conn.query(readReplicationSlotCommand(slot)))[0]?.rows[0];
      if (!row || row[0] == null) throw new ConfigError(`replication slot '${slot}' does not exist on ${conn.where}: create it with 'pgark receive --create-slot' or SELECT pg_create_physical_replication_slot('${slot}', true)`);
      if (row[0] !== 'physical') throw new ConfigError(`replication slot '${slot}' on ${conn.where} is a ${row[0]} slot; pgark receive needs a physical one`);
      if (row[1]) slotRestart = { lsn: parseLsn(row[1]), ...(row[2] ? { timeline: Number(row[2]) } : {}) };
    }
    this.status.slot = { name: slot, restartLsn: slotRestart ? formatLsn(slotRestart.lsn) : undefined, restartTimeline: slotRestart?.timeline, active: false };
    return slotRestart;
  }

  /** Place the resume point after the stored WAL (or at `fallback`) and open the segment writer there. */
  private async openWriter(meta: StanzaMeta, history: TimelineHistory, fallback: SlotRestart): Promise<SegmentWriter> {
    const spans = timelineSpans(history);
    const tlis = spans.map((s) => s.timeline);
    // Each required repository must hold all that is reported flushed: resume where the one
    // that holds the least ends (the others find what they have identical).
    let repo = this.repo;
    let rp: ResumePoint | undefined;
    for (const m of this.set.required) {
      const r = m.repo!;
      // Temp files of a receiver killed in the middle of a store (small pieces skip the per-put sweep).
      await r.sweep(receivedPrefix(r.stanza)).catch(() => 0);
      const { ends, obsolete } = await storedEnds(r, tlis, meta.walSegmentSize);
      if (obsolete.length > 0) {
        await r.delete(obsolete).catch((err: unknown) => log.warn(`receive: unable to remove ${obsolete.length} obsolete received pieces: ${(err as Error).message}`));
      }
      const p = resumePoint({ history, stored: ends, walSegmentSize: meta.walSegmentSize, fallback });
      if (rp === undefined || p.lsn < rp.lsn) {
        if (rp !== undefined) log.info(`receive: ${m.name} holds WAL up to ${formatLsn(p.lsn)} only: resuming there`);
        rp = p;
        repo = r;
      }
    }
    if (rp === undefined) throw new ConfigError('no required repository');
    for (const t of rp.divergedTimelines) {
      log.warn(`receive: the repository holds WAL of timeline ${t} past its switch point in the server's history; it is kept, and the receiver goes on on the next timeline`);
    }
    const seg = BigInt(meta.walSegmentSize);
    const codec = this.codecs.get('repo') ?? (this.o.codecExplicit ? this.o.codec : meta.codec);
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
    // The last session's writer stays this.writer (its positions are the status's) until now:
    // only here do its counters move into base, or the status would count them twice.
    const last = this.writer;
    if (last) {
      this.base.pieces += last.counters.piecesStored;
      this.base.segments += last.counters.segmentsStored;
      this.writer = undefined;
    }
    this.writer = await SegmentWriter.open(
      {
        repo: this.repo, codec, walSegmentSize: meta.walSegmentSize, spoolDir: this.o.spoolDir, ownsSpool: () => this.locks.spool.owns(),
        preallocate: this.o.synchronous, spoolInMemory: this.o.synchronous,
        ...(this.set.members.length > 1 ? { set: this.set, codecs: this.codecs, filler: this.filler } : {}),
      },
      start.timeline, start.lsn, prefix,
    );
    log.info(`receive: ${rp.from === 'stored' ? 'resuming after the stored WAL' : 'nothing stored yet; starting'} at ${formatLsn(start.lsn)} on timeline ${start.timeline}`);
    return this.writer;
  }
  /**
   * START_REPLICATION on the writer's timeline: stream until the server ends the timeline, then
   * follow the next one ('next'), or 'restart' when it is not the path of the server's history.
   */
  private async streamTimeline(conn: ReplicationConnection, writer: SegmentWriter, history: TimelineHistory): Promise<'stopped' | 'restart' | 'next'> {
    const o = this.o;
    const started = await conn.startReplication(startReplicationCommand({ ...(o.slot ? { slot: o.slot } : {}), lsn: writer.writeLsn, timeline: writer.timeline }));
    let end;
    if (started === 'copy') {
      this.status.state = 'streaming';
      this.streamed = true;
      if (this.status.slot) this.status.slot.active = true;
      this.publish(true);
      const r = await this.stream(conn, writer);
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
    const nextHistory = await this.storeHistory(conn, next);
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
    return 'next';
  }

  /** Close the connection; store what was received before it went (the server has it durably). */
  private async endSession(conn: ReplicationConnection): Promise<void> {
    if (this.status.slot) this.status.slot.active = false;
    conn.close();
    const writer = this.writer;
    if (writer) {
      await writer.flush().catch((err: unknown) => log.warn(`receive: unable to store the last received WAL: ${(err as Error).message}`));
      this.lag.stored(writer.flushLsn);
      this.publishedAt = 0;
      this.publish();
      await writer.close();
    }
  }

  /** One START_REPLICATION stream: until the server ends it, the connection fails, or a stop. */
  private async stream(conn: ReplicationConnection, w: SegmentWriter) {
    const o = this.o;
    const t = { lastReplyAt: 0, lastFlushAt: Date.now() };
    const reply = () => {
      const flush = w.flushLsn;
      conn.send(encodeStandbyStatus({ write: w.writeLsn, flush, apply: flush, clock: msToPgTime(Date.now()), replyRequested: false }));
      t.lastReplyAt = Date.now();
    };
    const flush = async () => {
      await w.flush();
      t.lastFlushAt = Date.now();
      this.lag.stored(w.flushLsn);
    };
    reply();
    let checkedAt = Date.now();
    for (;;) {
      if (Date.now() - checkedAt >= 1000) {
        this.locks.check();
        checkedAt = Date.now();
      }
      if (o.signal.aborted) {
        await flush();
        reply();
        return 'stopped' as const;
      }
      const now = Date.now();
      const untilReply = o.statusIntervalMs - (now - t.lastReplyAt);
      const untilFlush = w.unflushed > 0 ? o.flushIntervalMs - (now - t.lastFlushAt) : Infinity;
      const ev = await conn.nextBatch(Math.max(1, Math.min(untilReply, untilFlush, 500)));
      if (ev.kind === 'end') {
        await flush();
        reply();
        return conn.endCopy();
      }
      let needReply = await this.take(w, ev);
      const due = Date.now() - t.lastFlushAt >= o.flushIntervalMs;
      if (w.unflushed > 0 && (o.synchronous || due || w.unflushed >= 16 * 1024 * 1024)) {
        await flush();
        needReply = true;
      }
      if (needReply || Date.now() - t.lastReplyAt >= o.statusIntervalMs) reply();
      // After the reply: merging pieces rewrites stored bytes and moves no position.
      void w.mergeBehind();
      this.publish();
    }
  }

  /** Append a batch of messages to the writer; true when the server asked for a reply. */
  private async take(w: SegmentWriter, ev: Extract<Batch, { messages: unknown }>): Promise<boolean> {
    let needReply = false;
    const at = Date.now();
    for (const m of ev.messages) {
      if (m.walEnd > this.serverEnd) this.serverEnd = m.walEnd;
      this.lag.saw(m.walEnd, at);
      if (m.kind === 'xlogdata') {
        if (m.data.length > 0) {
          const completing = w.append(m.walStart, m.data);
          if (completing) await completing;
          this.status.bytesReceived += m.data.length;
        }
      } else if (m.replyRequested) {
        needReply = true;
      }
    }
    if (ev.messages.length > 0) this.lastMessageAtMs = at;
    this.lag.stored(w.flushLsn);
    return needReply;
  }
}
