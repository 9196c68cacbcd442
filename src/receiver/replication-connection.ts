/**
 * A physical replication connection. `pg` opens it (TLS, authentication, libpq environment and
 * .pgpass) with `replication=true`; right after the startup handshake pgark takes the socket
 * over from `pg` and speaks the protocol itself with src/protocol/: simple queries for the
 * replication commands, then CopyBoth for START_REPLICATION. Owning the socket gives real
 * backpressure (the socket is paused while the repository is slower than the server) and one
 * framer that is tested byte by byte.
 */
import type { Socket } from 'node:net';
import { ExitCode, PgarkError } from '../common/errors.js';
import { log } from '../common/log.js';
import { ConnectionError, redactDsn } from '../pg/connect.js';
import { assertNoPassword, conninfoToUri } from '../pg/conninfo.js';
import {
  BackendFramer, copyDataMessage, copyDoneMessage, MSG, parseCommandComplete, parseDataRow, parseErrorFields,
  parseRowDescription, queryMessage, terminateMessage, type BackendMessage, type ErrorFields,
} from '../protocol/messages.js';
import { parseReplicationMessage, type ReplicationMessage } from '../protocol/replication.js';

/** An ErrorResponse from the server. */
export class ServerError extends PgarkError {
  override readonly exitCode: number = ExitCode.FAILURE;
  constructor(readonly fields: ErrorFields, context: string) {
    super(`${context}: server error: ${fields.message}${fields.detail ? ` (${fields.detail})` : ''} [SQLSTATE ${fields.code}]`);
  }
  get code(): string {
    return this.fields.code;
  }
}

export interface QueryResult {
  columns: string[];
  rows: (string | null)[][];
  command: string;
}

export type CopyEvent =
  | { kind: 'messages'; messages: ReplicationMessage[]; bytes: number }
  /** The server ended the stream (CopyDone): the timeline ended, or the server is shutting down. */
  | { kind: 'end' };

export interface TimelineEnd {
  /** The next timeline and where it starts, when the server reported one. */
  nextTimeline?: number;
  nextStart?: string;
}

const HIGH_WATER = 8 * 1024 * 1024;
const LOW_WATER = 2 * 1024 * 1024;

export class ReplicationConnection {
  private readonly framer = new BackendFramer();
  private queue: BackendMessage[] = [];
  private queuedBytes = 0;
  private paused = false;
  private failure: Error | undefined;
  private wake: (() => void) | undefined;
  /**
   * The timer of waits in next(): one Timeout, re-armed with refresh() when a wait wants the
   * same time as the last one (a streaming receiver waits up to 500 ms for each batch, which
   * usually comes far sooner): no timer object created and cancelled per message.
   */
  private timer: NodeJS.Timeout | undefined;
  private timerMs = -1;
  readonly parameters = new Map<string, string>();

  private constructor(private readonly socket: Socket, readonly where: string) {
    socket.on('data', (chunk: Buffer) => {
      let msgs: BackendMessage[];
      try {
        msgs = this.framer.push(chunk);
      } catch (err) {
        this.fail(err as Error);
        return;
      }
      for (const m of msgs) {
        if (m.type === MSG.NoticeResponse) {
          const f = parseErrorFields(m.body);
          log.info(`receive: server notice: ${f.message}`);
        } else if (m.type === MSG.ParameterStatus) {
          const [k, v] = m.body.toString('utf8').split('\0');
          if (k) this.parameters.set(k, v ?? '');
        } else {
          this.queue.push(m);
          this.queuedBytes += m.body.length;
        }
      }
      if (this.queuedBytes > HIGH_WATER && !this.paused) {
        this.paused = true;
        socket.pause();
      }
      this.notify();
    });
    socket.on('error', (err) => this.fail(err));
    socket.on('close', () => this.fail(new ConnectionError(`connection to ${where} closed by the server`)));
  }

  static async open(o: { dsn?: string | undefined; applicationName: string; connectTimeoutSec?: number }): Promise<ReplicationConnection> {
    assertNoPassword(o.dsn);
    const where = o.dsn ? `'${redactDsn(o.dsn)}'` : `host=${process.env.PGHOST ?? 'default'} port=${process.env.PGPORT ?? '5432'}`;
    const pg = (await import('pg')).default;
    const client = new pg.Client({
      ...(o.dsn ? { connectionString: conninfoToUri(o.dsn) } : {}),
      application_name: o.applicationName,
      replication: 'true',
      connectionTimeoutMillis: (o.connectTimeoutSec ?? 30) * 1000,
    } as ConstructorParameters<typeof pg.Client>[0]);
    client.on('error', () => undefined);
    try {
      await client.connect();
    } catch (err) {
      throw new ConnectionError(`unable to connect to PostgreSQL for replication (${where}): ${(err as Error).message}`);
    }
    // Take the socket over: pg is idle after ReadyForQuery, so its parser holds no bytes.
    const socket = (client as unknown as { connection: { stream: Socket } }).connection.stream;
    socket.removeAllListeners('data');
    return new ReplicationConnection(socket, where);
  }

  private fail(err: Error): void {
    this.failure ??= err;
    this.notify();
  }

  private notify(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  /** The next message, or undefined after `timeoutMs`. */
  private async next(timeoutMs: number): Promise<BackendMessage | undefined> {
    if (this.queue.length === 0) {
      if (this.failure) throw this.failure;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        this.arm(timeoutMs);
      });
      if (this.queue.length === 0) {
        if (this.failure) throw this.failure;
        return undefined;
      }
    }
    const m = this.queue.shift()!;
    this.consumed(m.body.length);
    return m;
  }

  /** Wake the waiter after `ms` (a timer still armed from an earlier wait is re-armed: it fires for this one). */
  private arm(ms: number): void {
    if (this.timer && this.timerMs === ms) {
      this.timer.refresh();
      return;
    }
    if (this.timer) clearTimeout(this.timer);
    this.timerMs = ms;
    // A firing with no wait in progress does nothing (notify); every wait re-arms first.
    this.timer = setTimeout(() => this.notify(), ms);
  }

  private consumed(bytes: number): void {
    this.queuedBytes -= bytes;
    if (this.paused && this.queuedBytes < LOW_WATER) {
      this.paused = false;
      this.socket.resume();
    }
  }

  private async mustNext(what: string, timeoutMs = 60_000): Promise<BackendMessage> {
    const m = await this.next(timeoutMs);
    if (!m) throw new ConnectionError(`no answer from ${this.where} to ${what} within ${timeoutMs / 1000} s`);
    return m;
  }

  private write(buf: Buffer): void {
    if (this.failure) throw this.failure;
    this.socket.write(buf);
  }

  /** Read result sets until ReadyForQuery; an ErrorResponse is thrown after it. */
  private async results(what: string): Promise<QueryResult[]> {
    const out: QueryResult[] = [];
    let cur: QueryResult | undefined;
    let error: ServerError | undefined;
    for (;;) {
      const m = await this.mustNext(what);
      switch (m.type) {
        case MSG.RowDescription:
          cur = { columns: parseRowDescription(m.body).map((c) => c.name), rows: [], command: '' };
          break;
        case MSG.DataRow:
          cur ??= { columns: [], rows: [], command: '' };
          cur.rows.push(parseDataRow(m.body));
          break;
        case MSG.CommandComplete:
          cur ??= { columns: [], rows: [], command: '' };
          cur.command = parseCommandComplete(m.body);
          out.push(cur);
          cur = undefined;
          break;
        case MSG.ErrorResponse:
          error = new ServerError(parseErrorFields(m.body), what);
          break;
        case MSG.ReadyForQuery:
          if (error) throw error;
          return out;
        case MSG.EmptyQueryResponse:
          break;
        default:
          throw new PgarkError(`unexpected message '${String.fromCharCode(m.type)}' from ${this.where} during ${what}`);
      }
    }
  }

  /** A replication command or SHOW, in the simple query protocol. */
  async query(sql: string): Promise<QueryResult[]> {
    this.write(queryMessage(sql));
    return this.results(sql.split(' ').slice(0, 2).join(' '));
  }

  /**
   * Send START_REPLICATION. Returns 'copy' when streaming began, or the next timeline when the
   * requested start is exactly the end of a historic timeline (the server streams nothing).
   */
  async startReplication(command: string): Promise<'copy' | TimelineEnd> {
    this.write(queryMessage(command));
    const m = await this.mustNext('START_REPLICATION');
    if (m.type === MSG.CopyBothResponse) return 'copy';
    this.queue.unshift(m);
    this.queuedBytes += m.body.length;
    return timelineEndOf(await this.results('START_REPLICATION'));
  }

  /**
   * Wait up to `timeoutMs` for streamed messages and return all that are queued (one batch), or
   * the end of the stream. An empty batch means the wait timed out.
   */
  async nextBatch(timeoutMs: number): Promise<CopyEvent> {
    const first = await this.next(timeoutMs);
    if (!first) return { kind: 'messages', messages: [], bytes: 0 };
    const messages: ReplicationMessage[] = [];
    let bytes = 0;
    for (let m: BackendMessage | undefined = first; m; m = this.queue.length > 0 && this.queue[0]!.type === MSG.CopyData ? this.queue.shift() : undefined) {
      if (m !== first) this.consumed(m.body.length);
      if (m.type === MSG.CopyData) {
        messages.push(parseReplicationMessage(m.body));
        bytes += m.body.length;
        continue;
      }
      if (m.type === MSG.CopyDone) {
        if (messages.length > 0) {
          // Deliver the data first; the end comes with the next call.
          this.queue.unshift(m);
          this.queuedBytes += m.body.length;
          break;
        }
        return { kind: 'end' };
      }
      if (m.type === MSG.ErrorResponse) throw new ServerError(parseErrorFields(m.body), 'streaming');
      throw new PgarkError(`unexpected message '${String.fromCharCode(m.type)}' from ${this.where} while streaming`);
    }
    return { kind: 'messages', messages, bytes };
  }

  /** Send a CopyData payload (standby status update, hot standby feedback). */
  send(payload: Buffer): void {
    this.write(copyDataMessage(payload));
  }

  /** After the server's CopyDone: end our side and read the result (next timeline). */
  async endCopy(): Promise<TimelineEnd> {
    this.write(copyDoneMessage());
    return timelineEndOf(await this.results('end of streaming'));
  }

  close(): void {
    try {
      if (!this.failure) this.socket.write(terminateMessage());
    } catch {
      // closing anyway
    }
    this.failure ??= new ConnectionError('connection closed');
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.socket.end();
    this.socket.destroy();
  }
}

function timelineEndOf(results: QueryResult[]): TimelineEnd {
  const row = results.find((r) => r.columns.length >= 2 && r.rows.length === 1);
  if (!row) return {};
  const [tli, start] = row.rows[0]!;
  return { ...(tli ? { nextTimeline: Number(tli) } : {}), ...(start ? { nextStart: start } : {}) };
}
