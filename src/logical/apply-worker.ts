/**
 * `pgark sets apply <set>`: the agent apply worker. Consumes the subscriber's slot
 * (pg-logical-replication, pgoutput, manual acknowledgement, flow control) and applies every
 * source transaction as ONE target transaction, in commit order, together with the update of
 * pgark.apply_position (exactly once: the position commits with the changes). The slot is
 * confirmed only after the target committed; a transaction whose commit LSN lies before the
 * stored position was applied before a crash and is skipped. So kill -9 at any point loses
 * nothing and applies nothing twice.
 *
 * Notes on pg-logical-replication 2.5.0:
 * - tuples are parsed with pg's type parsers; the worker decodes row messages itself
 *   (pgoutput-rows.ts) and swaps the parsers for the identity, so values stay in PostgreSQL's
 *   text form (no loss through Date or Number);
 * - acknowledge(lsn) reports lsn + 1 as flushed; the worker passes end - 1 so the slot's
 *   confirmed_flush_lsn is the commit's end LSN exactly, as PostgreSQL's own subscriber reports
 *   (end + 1 could make the server skip a transaction whose commit record starts at end);
 * - its periodic status timer would confirm the last *received* LSN, before it is applied, so it
 *   is disabled (timeoutSeconds 0): the worker answers keepalives itself.
 *
 * Throughput: source transactions already waiting in the stream are grouped into one target
 * transaction (each still whole and in commit order; the position row names the group's last
 * commit), statements are prepared and sent several per round trip, and sending is pipelined
 * with decoding; a guard statement at the start of each target transaction makes anything queued
 * behind a failed one fail too. SIGTERM/SIGINT stop at a transaction boundary.
 *
 * Tables added later (Subscriber.pendingTables) are copied at the start of a session from a
 * temporary slot's exported snapshot; their changes are applied from the stream only for
 * transactions committed at or after that snapshot's consistent point (pgark.apply_tables).
 */
import type { Client } from 'pg';
import { PgarkError, causeText } from '../common/errors.js';
import { log } from '../common/log.js';
import { startMetricsServer, type MetricsServer } from '../common/metrics-server.js';
import { connectPg } from '../pg/connect.js';
import { conninfoToUri } from '../pg/conninfo.js';
import type { LogicalReplicationService, PgoutputPlugin } from 'pg-logical-replication';
import { lsnOf, lsnText, readPosition, readTableSyncs, recordError, recordTableSync, subscriptionKey } from './apply-position.js';
import { GroupApplier, type SessionTables } from './apply-groups.js';
import { beginSnapshot, connectReplication, copyTable, createSlotWithSnapshot, publishedTableDetails } from './agent-subscribe.js';
import { readSet, writeSet } from './set-catalog.js';
import { wrapPgoutputParse } from './pgoutput-rows.js';
import { publicationName, type SetMeta, type Subscriber } from './set-meta.js';

const META_POLL_MS = 5000;

export interface ApplyStatus {
  set: string;
  subscriber: string;
  state: 'connecting' | 'streaming' | 'retrying' | 'stopped';
  appliedLsn: string | null;
  sourceLsn: string | null;
  lagBytes: number | null;
  lagSeconds: number | null;
  transactions: number;
  rows: number;
  skippedTransactions: number;
  lastError: string | null;
  updatedAt: string;
}

export interface ApplyWorkerOptions {
  set: string;
  sourceDsn?: string;
  name: string;
  signal: AbortSignal;
  onStatus?: (s: ApplyStatus) => void;
  metricsPort?: number;
}

/** Prometheus text of the worker's status (pure). */
export function applyPrometheusText(s: ApplyStatus | undefined): string {
  if (!s) return '# pgark sets apply: starting\n';
  const l = `set="${s.set}",subscriber="${s.subscriber}"`;
  const lines = [
    '# HELP pgark_apply_transactions_total Source transactions applied to the target.',
    '# TYPE pgark_apply_transactions_total counter',
    `pgark_apply_transactions_total{${l}} ${s.transactions}`,
    '# HELP pgark_apply_rows_total Row changes applied to the target.',
    '# TYPE pgark_apply_rows_total counter',
    `pgark_apply_rows_total{${l}} ${s.rows}`,
    '# HELP pgark_apply_lag_bytes Source WAL not yet applied (current WAL LSN - applied LSN).',
    '# TYPE pgark_apply_lag_bytes gauge',
    `pgark_apply_lag_bytes{${l}} ${s.lagBytes ?? 'NaN'}`,
    '# HELP pgark_apply_lag_seconds Commit-to-apply delay of the last applied transaction (0 when idle).',
    '# TYPE pgark_apply_lag_seconds gauge',
    `pgark_apply_lag_seconds{${l}} ${s.lagSeconds ?? 'NaN'}`,
    '# HELP pgark_apply_up 1 while streaming.',
    '# TYPE pgark_apply_up gauge',
    `pgark_apply_up{${l}} ${s.state === 'streaming' ? 1 : 0}`,
  ];
  return lines.join('\n') + '\n';
}

/** Backoff before retry `attempt` (1, 2, ...): 1 s doubling to 30 s. */
export function retryDelayMs(attempt: number): number {
  return Math.min(30_000, 1000 * 2 ** Math.max(0, attempt - 1));
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

function pendingOf(sub: Subscriber): string[] {
  return sub.pendingTables ?? [];
}

function findAgent(meta: SetMeta, name: string): Subscriber {
  const sub = meta.subscribers.find((s) => s.name === name);
  if (!sub) throw new PgarkError(`set '${meta.set}' has no subscriber '${name}' (pgark sets subscribe ${meta.set} --mode agent --subscriber ${name} creates it)`);
  if (sub.mode !== 'agent') throw new PgarkError(`subscriber '${name}' of set '${meta.set}' is a native subscription: the target server applies it, not pgark`);
  return sub;
}

/** Copy each pending table from a temporary slot's snapshot, record its sync LSN, clear it from the metadata. */
async function syncPendingTables(o: ApplyWorkerOptions, source: Client, target: Client, subscription: string): Promise<void> {
  const meta = await readSet(source, o.set);
  const pending = pendingOf(findAgent(meta, o.name));
  if (pending.length === 0) return;
  const published = await publishedTableDetails(source, o.set);
  const synced = await readTableSyncs(target, subscription);
  for (const rel of pending) {
    const t = published.find((p) => `${p.schema}.${p.table}` === rel);
    if (!t || synced.has(rel)) continue;
    const repl = await connectReplication(o.sourceDsn, 'pgark-sets-sync');
    const snapConn = await connectPg(o.sourceDsn, 'pgark-sets-sync');
    try {
      const tmpSlot = `pgark_sync_${process.pid}_${Date.now() % 1e9}`;
      const { consistentPoint, snapshot } = await createSlotWithSnapshot(repl, tmpSlot, true);
      await beginSnapshot(snapConn, snapshot);
      await target.query('BEGIN');
      try {
        const n = await copyTable(snapConn, target, t);
        await recordTableSync(target, subscription, rel, consistentPoint);
        await target.query('COMMIT');
        log.info(`table ${rel} of set ${o.set}: copied ${n} rows; changes applied from ${lsnText(consistentPoint)}`);
      } catch (err) {
        await target.query('ROLLBACK').catch(() => undefined);
        throw err;
      }
      await snapConn.query('COMMIT');
    } finally {
      await snapConn.end().catch(() => undefined);
      await repl.end().catch(() => undefined);
    }
  }
  const fresh = await readSet(source, o.set);
  const sub = findAgent(fresh, o.name);
  const done = new Set([...(await readTableSyncs(target, subscription)).keys()]);
  const publishedNow = new Set((await publishedTableDetails(source, o.set)).map((p) => `${p.schema}.${p.table}`));
  const left = (sub.pendingTables ?? []).filter((r) => !done.has(r) && publishedNow.has(r)); // removed meanwhile: nothing to copy
  if (left.length > 0) sub.pendingTables = left;
  else delete sub.pendingTables;
  await writeSet(source, fresh);
}

/** Run until `signal` aborts; errors are recorded and retried with backoff. */
export async function runApplyWorker(o: ApplyWorkerOptions): Promise<void> {
  const status: ApplyStatus = {
    set: o.set, subscriber: o.name, state: 'connecting', appliedLsn: null, sourceLsn: null, lagBytes: null, lagSeconds: null,
    transactions: 0, rows: 0, skippedTransactions: 0, lastError: null, updatedAt: new Date().toISOString(),
  };
  let metrics: MetricsServer<ApplyStatus> | undefined;
  if (o.metricsPort !== undefined) metrics = await startMetricsServer<ApplyStatus>(o.metricsPort, undefined, (s) => applyPrometheusText(s));
  const publish = () => {
    status.updatedAt = new Date().toISOString();
    metrics?.update({ ...status });
    o.onStatus?.({ ...status });
  };
  let attempt = 0;
  try {
    while (!o.signal.aborted) {
      status.state = 'connecting';
      publish();
      try {
        const progressed = await runSession(o, status, publish);
        attempt = progressed ? 0 : attempt;
        if (o.signal.aborted) break;
        continue; // metadata changed (pending tables): a new session copies them
      } catch (err) {
        if (o.signal.aborted) break;
        attempt++;
        status.state = 'retrying';
        status.lastError = causeText(err);
        publish();
        const wait = retryDelayMs(attempt);
        log.warn(`sets apply ${o.set}/${o.name}: ${status.lastError}; retrying in ${wait / 1000} s`);
        await sleep(wait, o.signal);
      }
    }
  } finally {
    status.state = 'stopped';
    publish();
    await metrics?.close();
  }
}

/** What a session holds open: closeSession releases it. */
interface Session {
  o: ApplyWorkerOptions;
  status: ApplyStatus;
  publish: () => void;
  subscription: string;
  source: Client;
  target?: Client;
  targetDsn?: string;
  service?: LogicalReplicationService;
  timer?: NodeJS.Timeout;
  applier?: GroupApplier;
}

/** Where a session starts: the set, the subscriber, the target and its stored position, the tables then. */
interface SessionStart {
  meta: SetMeta;
  sub: Subscriber;
  target: Client;
  startLsn: bigint;
  tables: SessionTables;
}

type ReplicationLib = typeof import('pg-logical-replication');

/**
 * One connection session. Resolves (true when something was applied) on stop or when pending
 * tables appeared; rejects on errors.
 */
async function runSession(o: ApplyWorkerOptions, status: ApplyStatus, publish: () => void): Promise<boolean> {
  // the replication library loads while the source connection is made
  const [libR, sourceR] = await Promise.allSettled([import('pg-logical-replication'), connectPg(o.sourceDsn, 'pgark-sets-apply')]);
  if (libR.status === 'rejected') {
    if (sourceR.status === 'fulfilled') await sourceR.value.end().catch(() => undefined);
    throw libR.reason;
  }
  if (sourceR.status === 'rejected') throw sourceR.reason;
  const lib = libR.value;
  const source = sourceR.value;
  const s: Session = { o, status, publish, subscription: subscriptionKey(o.set, o.name), source };
  try {
    return await streamSession(s, lib, await prepareSession(s));
  } finally {
    await closeSession(s);
  }
}

/** Connect the target, copy pending tables, read the stored position and the tables of the subscription now. */
async function prepareSession(s: Session): Promise<SessionStart> {
  const { o, source, subscription } = s;
  const meta = await readSet(source, o.set);
  const sub = findAgent(meta, o.name);
  s.targetDsn = sub.target;
  const target = await connectPg(sub.target, 'pgark-sets-apply');
  s.target = target;
  if (pendingOf(sub).length > 0) await syncPendingTables(o, source, target, subscription);
  // the target's and the source's reads at the same time (each connection keeps its order)
  const [pos, syncs, published, metaNow] = await Promise.all([
    readPosition(target, subscription),
    readTableSyncs(target, subscription),
    // the published tables before the pending ones: a table added in between is then pending
    publishedTableDetails(source, o.set),
    readSet(source, o.set),
  ]);
  if (!pos) throw new PgarkError(`the target has no pgark.apply_position row for '${subscription}' (create the subscriber with pgark sets subscribe --mode agent)`);
  const known = new Set(published.map((t) => `${t.schema}.${t.table}`));
  const pendingRels = new Set(pendingOf(findAgent(metaNow, o.name)));
  s.status.appliedLsn = lsnText(pos.lsn);
  s.status.lastError = pos.lastError;
  // Tables of the subscription now (apply-groups.ts acceptsChange): in schema / all-tables sets a
  // table created later starts empty, so all its rows come from the stream.
  return { meta, sub, target, startLsn: pos.lsn, tables: { known, acceptUnknown: meta.scope.kind !== 'tables', pendingRels, syncs } };
}

/** The pgoutput plugin (values kept in text form) and the replication service, acknowledged by hand. */
function openService(lib: ReplicationLib, o: ApplyWorkerOptions): { svc: LogicalReplicationService; plugin: PgoutputPlugin } {
  const plugin = new lib.PgoutputPlugin({ protoVersion: 1, publicationNames: [publicationName(o.set)] });
  // values in text form: row messages decoded by pgoutput-rows.ts, identity parsers on every
  // relation's columns for the library's (see the header)
  type Parse = (buf: Buffer) => { tag: string } & Record<string, unknown>;
  plugin.parse = wrapPgoutputParse(plugin.parse.bind(plugin) as unknown as Parse) as unknown as typeof plugin.parse;
  const svc = new lib.LogicalReplicationService(
    { ...(o.sourceDsn ? { connectionString: conninfoToUri(o.sourceDsn) } : {}), application_name: `pgark_apply_${o.set}_${o.name}` },
    { acknowledge: { auto: false, timeoutSeconds: 0 }, flowControl: { enabled: true } },
  );
  return { svc, plugin };
}

/** The library's message queue (not part of its typed API). */
function queueOf(svc: LogicalReplicationService): { _messageQueue?: unknown[]; _processing?: boolean } {
  return svc as unknown as { _messageQueue?: unknown[]; _processing?: boolean };
}

/** Stream the slot into the target until a stop, pending tables, or an error. */
async function streamSession(s: Session, lib: ReplicationLib, start: SessionStart): Promise<boolean> {
  const { o, status } = s;
  const { svc, plugin } = openService(lib, o);
  s.service = svc;
  let acked = start.startLsn;
  const ack = async (lsn: bigint) => {
    if (lsn > acked) acked = lsn;
    if (acked > 0n) await svc.acknowledge(lsnText(acked - 1n)); // the library reports lsn + 1
  };
  let sessionDone: (v: boolean) => void = () => undefined;
  let sessionFail: (e: Error) => void = () => undefined;
  const finished = new Promise<boolean>((resolve, reject) => {
    sessionDone = resolve;
    sessionFail = reject;
  });
  const q = queueOf(svc);
  const applier = new GroupApplier({
    target: start.target, subscription: s.subscription, operations: start.meta.operations, tables: start.tables, startLsn: start.startLsn, status, ack,
    moreQueued: () => Array.isArray(q._messageQueue) && q._messageQueue.length > 0, onFail: (e) => sessionFail(e),
  });
  s.applier = applier;
  svc.on('error', (err: Error) => applier.fail(err));
  svc.on('heartbeat', (lsn: string, _ts: number, shouldRespond: boolean) => {
    if (applier.failed) return;
    const idle = !applier.inTx && !applier.inGroup() && Array.isArray(q._messageQueue) && q._messageQueue.length === 0 && q._processing === false;
    if (idle) {
      // everything before the keepalive's position was sent and is applied or filtered out
      status.lagSeconds = 0;
      void ack(lsnOf(lsn)).catch((err: unknown) => applier.fail(err));
    } else if (shouldRespond) {
      void ack(acked).catch((err: unknown) => applier.fail(err));
    }
  });
  svc.on('data', (_lsn: string, m: { tag: string } & Record<string, unknown>) => applier.onData(m));
  s.timer = setInterval(() => void pollSession(s, start, applier, () => acked, () => sessionDone(applier.progressed)), META_POLL_MS);
  const onAbort = () => sessionDone(applier.progressed);
  o.signal.addEventListener('abort', onAbort, { once: true });

  status.state = 'streaming';
  s.publish();
  log.info(`sets apply ${o.set}/${o.name}: streaming slot ${start.sub.slot} from ${lsnText(applier.stored)}`);
  svc.subscribe(plugin, start.sub.slot, lsnText(applier.stored)).then(
    () => (o.signal.aborted ? sessionDone(applier.progressed) : applier.fail(new PgarkError('the replication stream ended'))),
    (err: unknown) => applier.fail(err),
  );
  try {
    return await finished;
  } finally {
    o.signal.removeEventListener('abort', onAbort);
    await applier.finish();
  }
}

/** Every few seconds: lag against the source's WAL, and metadata (pending tables: `restart` ends the session). */
async function pollSession(s: Session, start: SessionStart, applier: GroupApplier, acked: () => bigint, restart: () => void): Promise<void> {
  const { o, status } = s;
  try {
    const r = await s.source.query<{ cur: string }>('SELECT pg_current_wal_lsn()::text AS cur');
    const cur = lsnOf(r.rows[0]!.cur);
    status.sourceLsn = lsnText(cur);
    status.lagBytes = Math.max(0, Number(cur - (acked() > applier.stored ? acked() : applier.stored)));
    s.publish();
    const fresh = findAgent(await readSet(s.source, o.set), o.name);
    if (pendingOf(fresh).some((r) => !start.tables.pendingRels.has(r) || !start.tables.syncs.has(r))) {
      log.info(`sets apply ${o.set}/${o.name}: tables to copy (${pendingOf(fresh).join(', ')}); restarting the stream`);
      restart();
    }
  } catch (err) {
    applier.fail(err);
  }
}

/** Close the stream and both connections; record a target failure on a fresh connection. */
async function closeSession(s: Session): Promise<void> {
  if (s.timer) clearInterval(s.timer);
  // stop after the current transaction: the data handler finishes what it awaits; a partly
  // sent transaction is rolled back by closing the target connection (never committed)
  // the library pauses the socket while its handler runs and does not resume it once stopped:
  // resume it, or client.end() waits for an 'end' event that never comes
  const conn = (s.service as unknown as { _connection?: { stream?: { resume?: () => void; destroy?: () => void } } } | undefined)?._connection;
  conn?.stream?.resume?.();
  const closing = s.service?.destroy().catch(() => undefined);
  await Promise.race([closing, new Promise((r) => setTimeout(r, 5000).unref())]);
  conn?.stream?.destroy?.();
  await s.target?.end().catch(() => undefined);
  await s.source.end().catch(() => undefined);
  const applyError = s.applier?.applyError;
  if (applyError && s.targetDsn) {
    // the failed transaction was rolled back with its connection: record why, separately
    const t = await connectPg(s.targetDsn, 'pgark-sets-apply').catch(() => undefined);
    if (t) {
      await recordError(t, s.subscription, applyError).catch(() => undefined);
      await t.end().catch(() => undefined);
    }
  }
}
