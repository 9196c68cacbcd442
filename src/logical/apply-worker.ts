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
 * - tuples are parsed with pg's type parsers; RawTextPgoutputPlugin swaps them for the identity
 *   so values stay in PostgreSQL's text form (no loss through Date or Number);
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
import {
  alreadyApplied, lsnOf, lsnText, positionGuardSql, positionUpdateSql, readPosition, readTableSyncs, recordError, recordTableSync, subscriptionKey,
} from './apply-position.js';
import { beginSnapshot, connectReplication, copyTable, createSlotWithSnapshot, publishedTableDetails } from './agent-subscribe.js';
import { PreparedCache, SqlBatch, relationKey, type ChangeMessage, type Rel } from './pgoutput-apply.js';
import { readSet, writeSet } from './set-catalog.js';
import { publicationName, type SetMeta, type Subscriber } from './set-meta.js';

/** Send a large source transaction to the target in pieces of about this many bytes of SQL. */
const FLUSH_BYTES = 1 << 20;
const META_POLL_MS = 5000;
/** Source transactions grouped into one target transaction at most (see the data handler). */
const MAX_GROUP_TX = 1000;
/** A group commits when no further message arrives within this time. */
const GROUP_WAIT_MS = 2;

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

/**
 * One connection session. Resolves (true when something was applied) on stop or when pending
 * tables appeared; rejects on errors.
 */
async function runSession(o: ApplyWorkerOptions, status: ApplyStatus, publish: () => void): Promise<boolean> {
  const { LogicalReplicationService, PgoutputPlugin } = await import('pg-logical-replication');
  const subscription = subscriptionKey(o.set, o.name);
  const source = await connectPg(o.sourceDsn, 'pgark-sets-apply');
  let target: Client | undefined;
  let service: InstanceType<typeof LogicalReplicationService> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let progressed = false;
  let applyError: string | undefined;
  let targetDsn: string | undefined;
  try {
    const meta = await readSet(source, o.set);
    const sub = findAgent(meta, o.name);
    targetDsn = sub.target;
    target = await connectPg(sub.target, 'pgark-sets-apply');
    const tgt = target;
    if (pendingOf(sub).length > 0) await syncPendingTables(o, source, tgt, subscription);
    const pos = await readPosition(tgt, subscription);
    if (!pos) throw new PgarkError(`the target has no pgark.apply_position row for '${subscription}' (create the subscriber with pgark sets subscribe --mode agent)`);
    const syncs = await readTableSyncs(tgt, subscription);
    // read the published tables before the pending ones: a table added in between is then pending
    const known = new Set((await publishedTableDetails(source, o.set)).map((t) => `${t.schema}.${t.table}`));
    const pendingRels = new Set(pendingOf(findAgent(await readSet(source, o.set), o.name)));
    let stored = pos.lsn;
    let acked = pos.lsn;
    status.appliedLsn = lsnText(stored);
    status.lastError = pos.lastError;

    // per transaction
    let inTx = false;
    let skip = false;
    let txCommitLsn = 0n;
    let opened = false;
    let inGroup = () => false;
    let batch: SqlBatch | undefined;
    let failed: Error | undefined;
    const operations = meta.operations;
    const prepared = new PreparedCache(); // prepared statements of this target connection
    // Tables of the subscription now. A table added to a --tables set after this point is
    // pending (sets add-table writes the publication and pendingTables in one transaction): its
    // rows come from its copy, so its changes are not applied before that copy's sync LSN. In
    // schema / all-tables sets a table created later starts empty: all its rows come from the stream.
    const acceptUnknown = meta.scope.kind !== 'tables';
    const accept = (rel: Rel): boolean => {
      const key = relationKey(rel);
      if (!known.has(key) && !acceptUnknown) return false; // added after the session started: copied first
      if (pendingRels.has(key) && !syncs.has(key)) return false; // not copied yet: in its snapshot later
      const from = syncs.get(key);
      return from === undefined || txCommitLsn >= from;
    };

    const plugin = new PgoutputPlugin({ protoVersion: 1, publicationNames: [publicationName(o.set)] });
    // values in text form: identity parsers on every relation's columns (see the header)
    const parse = plugin.parse.bind(plugin);
    plugin.parse = (buf: Buffer) => {
      const m = parse(buf);
      if (m.tag === 'relation') for (const c of m.columns) c.parser = (raw: unknown) => raw;
      return m;
    };
    const svc = new LogicalReplicationService(
      { ...(o.sourceDsn ? { connectionString: conninfoToUri(o.sourceDsn) } : {}), application_name: `pgark_apply_${o.set}_${o.name}` },
      { acknowledge: { auto: false, timeoutSeconds: 0 }, flowControl: { enabled: true } },
    );
    service = svc;
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
    const fail = (err: unknown) => {
      if (failed) return;
      failed = err instanceof Error ? err : new Error(String(err));
      sessionFail(failed);
    };

    svc.on('error', (err: Error) => fail(err));
    svc.on('heartbeat', (lsn: string, _ts: number, shouldRespond: boolean) => {
      if (failed) return;
      const q = svc as unknown as { _messageQueue?: unknown[]; _processing?: boolean };
      const idle = !inTx && !inGroup() && Array.isArray(q._messageQueue) && q._messageQueue.length === 0 && q._processing === false;
      if (idle) {
        // everything before the keepalive's position was sent and is applied or filtered out
        status.lagSeconds = 0;
        void ack(lsnOf(lsn)).catch(fail);
      } else if (shouldRespond) {
        void ack(acked).catch(fail);
      }
    });

    // Target work is pipelined: statements go to the target (pg queues them in order) while the
    // next messages are decoded. Each group starts with a guard that fails unless the stored
    // position is the previous group's end, so nothing queued after a failed group can commit;
    // slot confirmations run only after the commit they confirm succeeded.
    let inflight = 0;
    let lastSend: Promise<void> = Promise.resolve();
    let chainLsn = pos.lsn;
    const send = (sql: string): void => {
      inflight++;
      const at = lsnText(txCommitLsn);
      const q = tgt.query(sql).then(
        () => {
          inflight--;
        },
        (err: unknown) => {
          inflight--;
          if (!failed) applyError = `unable to apply the transactions up to the one committed at ${at}: ${causeText(err)}`;
          fail(new PgarkError(applyError ?? causeText(err), { cause: err }));
        },
      );
      lastSend = Promise.all([lastSend, q]).then(() => undefined);
    };
    const whenApplied = (fn: () => Promise<void> | void): void => {
      lastSend = lastSend.then(() => (failed ? undefined : fn())).catch(fail);
    };
    const backpressure = async () => {
      if (inflight >= 4) await lastSend;
    };

    let stopping = false;
    let busy: Promise<void> = Promise.resolve();
    // every target operation runs in this chain, in stream order (data messages, group commits)
    const serial = (fn: () => Promise<void>): Promise<void> => (busy = busy.then(fn));
    let commitTimer: NodeJS.Timeout | undefined;
    svc.on('data', (_lsn: string, m: { tag: string } & Record<string, unknown>) => {
      if (failed || stopping) return;
      if (commitTimer) {
        clearTimeout(commitTimer);
        commitTimer = undefined;
      }
      return serial(() => handle(m));
    });
    // Consecutive source transactions already waiting in the stream are grouped into one target
    // transaction (at most MAX_GROUP_TX): each is still applied whole and in order, and the
    // position row, updated in the same target transaction, names the group's last commit, so
    // a crash keeps or loses the group as a whole: still exactly once. A group commits as soon as
    // the stream has nothing more queued, so an idle or slow stream commits every transaction.
    const q = svc as unknown as { _messageQueue?: unknown[] };
    const moreQueued = () => Array.isArray(q._messageQueue) && q._messageQueue.length > 0;
    let buf: string[] = [];
    let bufBytes = 0;
    let group: { txs: number; rows: number; end: bigint; commitUs: bigint } | undefined;
    let ackAfterGroup = 0n;
    const push = (sql: string) => {
      if (!sql) return;
      buf.push(sql);
      bufBytes += sql.length + 2;
    };
    const flush = (final: string): void => {
      const head = opened ? '' : `BEGIN;\n${positionGuardSql(subscription, chainLsn)};\n`;
      const text = `${head}${buf.join(';\n')}${buf.length && final ? ';\n' : ''}${final}`;
      buf = [];
      bufBytes = 0;
      opened = true;
      send(text);
    };
    const commitGroup = async () => {
      if (!group) return;
      const g = group;
      flush(`${positionUpdateSql(subscription, g.end, g.commitUs)};\nCOMMIT`);
      opened = false;
      group = undefined;
      stored = g.end;
      chainLsn = g.end;
      const ackTo = g.end > ackAfterGroup ? g.end : ackAfterGroup;
      whenApplied(async () => {
        progressed = true;
        await ack(ackTo);
        status.transactions += g.txs;
        status.rows += g.rows;
        status.appliedLsn = lsnText(g.end);
        status.lastError = null;
        status.lagSeconds = Math.max(0, Date.now() / 1000 - Number(g.commitUs / 1000n) / 1000);
      });
      await backpressure();
    };
    inGroup = () => group !== undefined || opened || inflight > 0;
    const handle = async (m: { tag: string } & Record<string, unknown>): Promise<void> => {
      try {
        switch (m.tag) {
          case 'begin': {
            inTx = true;
            txCommitLsn = lsnOf(m.commitLsn as string);
            skip = alreadyApplied(txCommitLsn, stored);
            batch = skip ? undefined : new SqlBatch({ operations, accept, prepared });
            return;
          }
          case 'insert':
          case 'update':
          case 'delete':
          case 'truncate': {
            if (skip || !batch) return;
            batch.add(m as unknown as ChangeMessage);
            if (batch.bytes + bufBytes > FLUSH_BYTES) {
              push(batch.take());
              flush('');
              await backpressure();
            }
            return;
          }
          case 'commit': {
            inTx = false;
            const end = lsnOf(m.commitEndLsn as string);
            const b = batch;
            batch = undefined;
            if (skip || !b) {
              status.skippedTransactions++;
            } else {
              push(b.take());
              if (b.rows > 0 || group) {
                group = { txs: (group?.txs ?? 0) + 1, rows: (group?.rows ?? 0) + b.rows, end, commitUs: m.commitTime as bigint };
              }
            }
            if (!group && !opened) {
              whenApplied(() => ack(end)); // nothing of the set's to apply (after what is in flight)
              return;
            }
            if (end > ackAfterGroup) ackAfterGroup = end;
            if (group!.txs >= MAX_GROUP_TX || stopping) await commitGroup();
            else if (!moreQueued()) {
              // nothing parsed yet: the library reads the socket again once this handler returns;
              // commit unless more arrives within GROUP_WAIT_MS
              commitTimer = setTimeout(() => {
                commitTimer = undefined;
                void serial(async () => {
                  if (!inTx && !failed) await commitGroup().catch(fail);
                });
              }, GROUP_WAIT_MS);
            } else if (bufBytes > FLUSH_BYTES) {
              flush('');
              await backpressure();
            }
            return;
          }
          default:
            return; // relation, type, origin, message
        }
      } catch (err) {
        fail(err);
      }
    };

    // poll: lag against the source's WAL, and metadata (pending tables) every few seconds
    const poll = async () => {
      try {
        const r = await source.query<{ cur: string }>('SELECT pg_current_wal_lsn()::text AS cur');
        const cur = lsnOf(r.rows[0]!.cur);
        status.sourceLsn = lsnText(cur);
        status.lagBytes = Math.max(0, Number(cur - (acked > stored ? acked : stored)));
        publish();
        const fresh = findAgent(await readSet(source, o.set), o.name);
        if (pendingOf(fresh).some((r) => !pendingRels.has(r) || !syncs.has(r))) {
          log.info(`sets apply ${o.set}/${o.name}: tables to copy (${pendingOf(fresh).join(', ')}); restarting the stream`);
          sessionDone(progressed);
        }
      } catch (err) {
        fail(err);
      }
    };
    timer = setInterval(() => void poll(), META_POLL_MS);
    const onAbort = () => sessionDone(progressed);
    o.signal.addEventListener('abort', onAbort, { once: true });

    status.state = 'streaming';
    publish();
    log.info(`sets apply ${o.set}/${o.name}: streaming slot ${sub.slot} from ${lsnText(stored)}`);
    svc.subscribe(plugin, sub.slot, lsnText(stored)).then(
      () => (o.signal.aborted ? sessionDone(progressed) : fail(new PgarkError('the replication stream ended'))),
      (err: unknown) => fail(err),
    );
    try {
      return await finished;
    } finally {
      o.signal.removeEventListener('abort', onAbort);
      // stop at a transaction boundary: what is being applied finishes, the group of complete
      // transactions commits; a transaction partly sent to the target is rolled back (closing)
      stopping = true;
      if (commitTimer) clearTimeout(commitTimer);
      await Promise.race([busy.then(() => (failed || (inTx && opened) ? undefined : commitGroup())).then(() => lastSend).catch(() => undefined), new Promise((r) => setTimeout(r, 30_000).unref())]);
    }
  } finally {
    if (timer) clearInterval(timer);
    // stop after the current transaction: the data handler finishes what it awaits; a partly
    // sent transaction is rolled back by closing the target connection (never committed)
    // the library pauses the socket while its handler runs and does not resume it once stopped:
    // resume it, or client.end() waits for an 'end' event that never comes
    const conn = (service as unknown as { _connection?: { stream?: { resume?: () => void; destroy?: () => void } } } | undefined)?._connection;
    conn?.stream?.resume?.();
    const closing = service?.destroy().catch(() => undefined);
    await Promise.race([closing, new Promise((r) => setTimeout(r, 5000).unref())]);
    conn?.stream?.destroy?.();
    await target?.end().catch(() => undefined);
    await source.end().catch(() => undefined);
    if (applyError && targetDsn) {
      // the failed transaction was rolled back with its connection: record why, separately
      const t = await connectPg(targetDsn, 'pgark-sets-apply').catch(() => undefined);
      if (t) {
        await recordError(t, subscription, applyError).catch(() => undefined);
        await t.end().catch(() => undefined);
      }
    }
  }
}
