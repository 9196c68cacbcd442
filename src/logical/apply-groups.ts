/**
 * The apply worker's target side (logical/apply-worker.ts runs the session): source transactions
 * turned into SQL, grouped into target transactions, pipelined to the target, the slot confirmed
 * after each commit. The exactly-once rules are the worker's (see its header):
 * - a transaction whose commit LSN lies at or before the stored position is skipped;
 * - consecutive source transactions already waiting in the stream are grouped into one target
 *   transaction (at most MAX_GROUP_TX), each applied whole and in order; the position row,
 *   updated in the same target transaction, names the group's last commit;
 * - each group starts with a guard that fails unless the stored position is the previous group's
 *   end, so nothing queued after a failed group can commit;
 * - slot confirmations run only after the commit they confirm succeeded.
 */
import type { Client } from 'pg';
import { PgarkError, causeText } from '../common/errors.js';
import { alreadyApplied, lsnOf, lsnText, positionGuardSql, positionUpdateSql } from './apply-position.js';
import type { ApplyStatus } from './apply-worker.js';
import { PreparedCache, SqlBatch, relationKey, type ChangeMessage, type Rel } from './pgoutput-apply.js';
import { runPolicy, type TargetRelInfo } from './apply-runs.js';
import { qualified } from './set-catalog.js';
import type { Operation } from './set-meta.js';

/** Send a large source transaction to the target in pieces of about this many bytes of SQL. */
const FLUSH_BYTES = 1 << 20;
/** Source transactions grouped into one target transaction at most (see the data handler). */
const MAX_GROUP_TX = 1000;
/** A group commits when no further message arrives within this time. */
const GROUP_WAIT_MS = 2;
/**
 * ... or within this time when its last transaction committed on the source more than
 * BEHIND_MS ago: the worker is draining a backlog, and on a busy host a timer that fires before
 * the socket is read again would otherwise end every group after a transaction or two.
 */
const GROUP_WAIT_BEHIND_MS = 50;
const BEHIND_MS = 1000;

/** How long an open group waits for the next message (pure): longer when draining a backlog. */
export function groupWaitMs(commitUnixMicros: bigint, nowMs: number): number {
  return nowMs - Number(commitUnixMicros / 1000n) > BEHIND_MS ? GROUP_WAIT_BEHIND_MS : GROUP_WAIT_MS;
}
/** Target statements in flight before the stream waits for them. */
const MAX_INFLIGHT = 4;

/** The target catalog's facts about relations read again at a group's start when older than this. */
const REL_INFO_MAX_AGE_MS = 5000;

/** Reads what apply-runs.ts needs to know about a relation on the target (see TargetRelInfo). */
export const TARGET_REL_INFO_SQL = `SELECT c.relkind = 'r' AND NOT c.relhastriggers AND NOT c.relhasrules AND NOT c.relrowsecurity AND NOT c.relhassubclass AS independent,
  (SELECT coalesce(json_agg(CASE WHEN i.indexprs IS NULL AND i.indpred IS NULL
      THEN (SELECT json_agg(a.attname) FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum = ANY (i.indkey::int2[])) END), '[]')
    FROM pg_index i WHERE i.indrelid = c.oid AND (i.indisunique OR i.indisexclusion)) AS unique_indexes
FROM pg_class c WHERE c.oid = to_regclass($1)`;

/** What the session knows of the subscription's tables when it starts. */
export interface SessionTables {
  /** Tables published when the session started (schema.table). */
  known: ReadonlySet<string>;
  /** Schema and all-tables sets: a table created later starts empty and all its rows come from the stream. */
  acceptUnknown: boolean;
  /** Tables pending a copy when the session started. */
  pendingRels: ReadonlySet<string>;
  /** Copied tables: their changes apply from this LSN on (pgark.apply_tables). */
  syncs: ReadonlyMap<string, bigint>;
}

/**
 * Whether a change of `rel` in the transaction committed at `commitLsn` is applied (pure). A table
 * added to a --tables set after the session started is pending (sets add-table writes the
 * publication and pendingTables in one transaction): its rows come from its copy, so its changes
 * are not applied before that copy's sync LSN.
 */
export function acceptsChange(t: SessionTables, rel: Pick<Rel, 'schema' | 'name'>, commitLsn: bigint): boolean {
  const key = relationKey(rel);
  if (!t.known.has(key) && !t.acceptUnknown) return false; // added after the session started: copied first
  if (t.pendingRels.has(key) && !t.syncs.has(key)) return false; // not copied yet: in its snapshot later
  const from = t.syncs.get(key);
  return from === undefined || commitLsn >= from;
}

export interface GroupApplierOptions {
  target: Client;
  subscription: string;
  operations: Operation[];
  tables: SessionTables;
  /** The stored position when the session started. */
  startLsn: bigint;
  status: ApplyStatus;
  /** Confirm the slot up to this LSN. */
  ack: (lsn: bigint) => Promise<void>;
  /** Whether the stream holds further messages already (a group then waits for them). */
  moreQueued: () => boolean;
  /** Called once, with the first failure: the session ends with it. */
  onFail: (err: Error) => void;
}

type Message = { tag: string } & Record<string, unknown>;

export class GroupApplier {
  /** Inside a source transaction (between begin and commit). */
  inTx = false;
  /** Something was committed on the target in this session. */
  progressed = false;
  failed: Error | undefined;
  /** Why a target transaction failed, recorded in pgark.apply_position after the session. */
  applyError: string | undefined;
  /** The end LSN of the last group sent to commit. */
  stored: bigint;
  private stopping = false;
  private skip = false;
  private txCommitLsn = 0n;
  private opened = false;
  private batch: SqlBatch | undefined;
  private readonly prepared = new PreparedCache(); // prepared statements of this target connection
  /** Target facts per relation message object (apply-runs.ts), and when they were read. */
  private relInfo = new Map<Rel, TargetRelInfo | undefined>();
  private relInfoAt = 0;
  private relInfoReading = false;
  /** Rows of the group's batch before the current source transaction. */
  private txRowsBefore = 0;
  private buf: string[] = [];
  private bufBytes = 0;
  private group: { txs: number; rows: number; end: bigint; commitUs: bigint } | undefined;
  private ackAfterGroup = 0n;
  private inflight = 0;
  private lastSend: Promise<void> = Promise.resolve();
  private chainLsn: bigint;
  // every target operation runs in this chain, in stream order (data messages, group commits)
  private busy: Promise<void> = Promise.resolve();
  private commitTimer: NodeJS.Timeout | undefined;

  constructor(private readonly o: GroupApplierOptions) {
    this.stored = o.startLsn;
    this.chainLsn = o.startLsn;
  }

  fail(err: unknown): void {
    if (this.failed) return;
    this.failed = err instanceof Error ? err : new Error(String(err));
    this.o.onFail(this.failed);
  }

  /** A group is open, being sent, or in flight. */
  inGroup(): boolean {
    return this.group !== undefined || this.opened || this.inflight > 0;
  }

  /** The stream's data handler: messages are handled one after the other, in stream order. */
  onData(m: Message): Promise<void> | undefined {
    if (this.failed || this.stopping) return undefined;
    if (this.commitTimer) {
      clearTimeout(this.commitTimer);
      this.commitTimer = undefined;
    }
    return this.serial(() => this.handle(m));
  }

  /**
   * Stop at a transaction boundary: what is being applied finishes, the group of complete
   * transactions commits; inside a source transaction (its changes share the group's batch)
   * the whole group is rolled back by closing: the slot was not confirmed past it, so it is
   * streamed again.
   */
  async finish(): Promise<void> {
    this.stopping = true;
    if (this.commitTimer) clearTimeout(this.commitTimer);
    const drained = this.busy.then(() => (this.failed || this.inTx ? undefined : this.commitGroup())).then(() => this.lastSend).catch(() => undefined);
    await Promise.race([drained, new Promise((r) => setTimeout(r, 30_000).unref())]);
  }

  private serial(fn: () => Promise<void>): Promise<void> {
    return (this.busy = this.busy.then(fn));
  }

  private send(sql: string): void {
    this.inflight++;
    const at = lsnText(this.txCommitLsn);
    const q = this.o.target.query(sql).then(
      () => {
        this.inflight--;
      },
      (err: unknown) => {
        this.inflight--;
        if (!this.failed) this.applyError = `unable to apply the transactions up to the one committed at ${at}: ${causeText(err)}`;
        this.fail(new PgarkError(this.applyError ?? causeText(err), { cause: err }));
      },
    );
    this.lastSend = Promise.all([this.lastSend, q]).then(() => undefined);
  }

  private whenApplied(fn: () => Promise<void> | void): void {
    this.lastSend = this.lastSend.then(() => (this.failed ? undefined : fn())).catch((err: unknown) => this.fail(err));
  }

  private async backpressure(): Promise<void> {
    if (this.inflight >= MAX_INFLIGHT) await this.lastSend;
  }

  private push(sql: string): void {
    if (!sql) return;
    this.buf.push(sql);
    this.bufBytes += sql.length + 2;
  }

  private flush(final: string): void {
    const head = this.opened ? '' : `BEGIN;\n${positionGuardSql(this.o.subscription, this.chainLsn)};\n`;
    const text = `${head}${this.buf.join(';\n')}${this.buf.length && final ? ';\n' : ''}${final}`;
    this.buf = [];
    this.bufBytes = 0;
    this.opened = true;
    this.send(text);
  }

  private async commitGroup(): Promise<void> {
    if (!this.group) return;
    const g = this.group;
    if (this.batch) this.push(this.batch.take());
    this.batch = undefined;
    this.flush(`${positionUpdateSql(this.o.subscription, g.end, g.commitUs)};\nCOMMIT`);
    this.opened = false;
    this.group = undefined;
    this.stored = g.end;
    this.chainLsn = g.end;
    const ackTo = g.end > this.ackAfterGroup ? g.end : this.ackAfterGroup;
    const status = this.o.status;
    this.whenApplied(async () => {
      this.progressed = true;
      await this.o.ack(ackTo);
      status.transactions += g.txs;
      status.rows += g.rows;
      status.appliedLsn = lsnText(g.end);
      status.lastError = null;
      status.lagSeconds = Math.max(0, Date.now() / 1000 - Number(g.commitUs / 1000n) / 1000);
    });
    await this.backpressure();
  }

  private async handle(m: Message): Promise<void> {
    try {
      switch (m.tag) {
        case 'begin':
          return this.begin(m);
        case 'relation':
          return await this.readRelInfo([m as unknown as Rel]);
        case 'insert':
        case 'update':
        case 'delete':
        case 'truncate':
          return await this.change(m);
        case 'commit':
          return await this.commit(m);
        default:
          return; // type, origin, message
      }
    } catch (err) {
      this.fail(err);
    }
  }

  private begin(m: Message): void {
    this.inTx = true;
    this.txCommitLsn = lsnOf(m.commitLsn as string);
    this.skip = alreadyApplied(this.txCommitLsn, this.stored);
    if (this.skip) return;
    if (!this.group && !this.opened && !this.relInfoReading && this.relInfo.size > 0 && Date.now() - this.relInfoAt > REL_INFO_MAX_AGE_MS) {
      // not awaited: the query queues behind the groups in flight (before this group's BEGIN) and
      // the stream goes on meanwhile; a failed read makes the relations dependent (in place)
      const rels = [...this.relInfo.keys()];
      this.relInfoReading = true;
      void this.readRelInfo(rels).catch(() => {
        for (const r of rels) this.relInfo.set(r, undefined);
      }).finally(() => (this.relInfoReading = false));
    }
    // one batch per group: independent tables' changes are collected across its transactions
    this.batch ??= new SqlBatch({
      operations: this.o.operations, accept: (rel: Rel) => acceptsChange(this.o.tables, rel, this.txCommitLsn), prepared: this.prepared,
      independent: (rel: Rel) => runPolicy(this.relInfo.get(rel), rel),
    });
    this.txRowsBefore = this.batch.rows;
  }

  /** Read the target's facts about these relations (a relation missing there is not independent). */
  private async readRelInfo(rels: Rel[]): Promise<void> {
    for (const rel of rels) {
      const r = await this.o.target.query<{ independent: boolean; unique_indexes: Array<string[] | null> }>(TARGET_REL_INFO_SQL, [qualified({ schema: rel.schema, table: rel.name })]);
      const row = r.rows[0];
      this.relInfo.set(rel, row ? { independent: row.independent, uniqueIndexes: row.unique_indexes } : undefined);
    }
    this.relInfoAt = Date.now();
  }

  private async change(m: Message): Promise<void> {
    const batch = this.batch;
    if (this.skip || !batch) return;
    batch.add(m as unknown as ChangeMessage);
    if (batch.bytes + this.bufBytes > FLUSH_BYTES) {
      this.push(batch.take());
      this.flush('');
      await this.backpressure();
    }
  }

  private async commit(m: Message): Promise<void> {
    this.inTx = false;
    const end = lsnOf(m.commitEndLsn as string);
    const b = this.batch;
    if (this.skip || !b) {
      this.o.status.skippedTransactions++;
    } else {
      const rows = b.rows - this.txRowsBefore;
      if (rows > 0 || this.group) {
        const g = this.group;
        this.group = { txs: (g?.txs ?? 0) + 1, rows: (g?.rows ?? 0) + rows, end, commitUs: m.commitTime as bigint };
      }
    }
    if (!this.group && !this.opened) {
      this.whenApplied(() => this.o.ack(end)); // nothing of the set's to apply (after what is in flight)
      return;
    }
    if (end > this.ackAfterGroup) this.ackAfterGroup = end;
    if (this.group!.txs >= MAX_GROUP_TX || this.stopping) await this.commitGroup();
    else if (!this.o.moreQueued()) {
      // nothing parsed yet: the library reads the socket again once this handler returns;
      // commit unless more arrives within GROUP_WAIT_MS
      this.commitTimer = setTimeout(() => {
        this.commitTimer = undefined;
        void this.serial(async () => {
          if (!this.inTx && !this.failed) await this.commitGroup().catch((err: unknown) => this.fail(err));
        });
      }, groupWaitMs(this.group!.commitUs, Date.now()));
    } else if (this.bufBytes + (b?.bytes ?? 0) > FLUSH_BYTES) {
      if (b) this.push(b.take());
      this.flush('');
      await this.backpressure();
    }
  }
}
