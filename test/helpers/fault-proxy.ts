/**
 * A TCP proxy on loopback that sits between a storage driver and its server and injects faults:
 *
 * - `drop`: the next `connections` connections are cut (both sockets destroyed) once `afterBytes`
 *   bytes have passed in `direction` (client->server 'up', server->client 'down').
 * - `httpError`: the next `requests` HTTP/1.1 requests (recognised by their request line at the
 *   start of a client chunk) are answered by the proxy itself with `status` and the connection
 *   is closed; nothing reaches the server.
 * - `stall`: nothing is forwarded in either direction until `release()` (connections stay open,
 *   so only the client's own timeouts can end a request).
 *
 * It also counts connections and HTTP requests by method, which the tests use to check that
 * drivers reuse connections and how many requests an operation makes.
 */
import { createServer, type Server, type Socket, connect } from 'node:net';

export interface DropFault {
  kind: 'drop';
  direction: 'up' | 'down';
  afterBytes: number;
  connections: number;
}
export interface HttpErrorFault {
  kind: 'httpError';
  status: number;
  requests: number;
}
export type Fault = DropFault | HttpErrorFault;

/** An HTTP/1.x request line at the start of a chunk (request targets can be long: scan 8 KiB). */
const REQUEST_LINE = /^(GET|HEAD|PUT|POST|DELETE|PATCH|OPTIONS) (\S+) HTTP\/1\.[01]\r\n/;
const REQUEST_LINE_SCAN = 8192;

export class FaultProxy {
  readonly port: number;
  connections = 0;
  /** HTTP requests seen, by method. */
  readonly requests: Record<string, number> = {};
  /** HTTP error answers the proxy gave instead of the server. */
  injectedErrors = 0;
  private readonly sockets = new Set<Socket>();
  private fault: Fault | undefined;
  private stalled = false;
  private readonly stalledResumers: Array<() => void> = [];

  private constructor(private readonly server: Server, port: number) {
    this.port = port;
  }

  static async start(upstream: { host: string; port: number }): Promise<FaultProxy> {
    let proxy!: FaultProxy;
    const server = createServer((client) => proxy.accept(client, upstream));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('fault proxy: no TCP address');
    proxy = new FaultProxy(server, address.port);
    return proxy;
  }

  /** Arm a fault (replacing any armed one). */
  inject(fault: Fault): void {
    this.fault = { ...fault };
  }

  /** Disarm faults and release a stall. */
  clear(): void {
    this.fault = undefined;
    this.release();
  }

  /** Stop forwarding in both directions on every connection, new ones included. */
  stall(): void {
    this.stalled = true;
  }

  release(): void {
    this.stalled = false;
    for (const resume of this.stalledResumers.splice(0)) resume();
  }

  /** Cut every open connection (as a server restart would). */
  dropAll(): void {
    for (const s of this.sockets) s.destroy();
  }

  resetCounts(): void {
    this.connections = 0;
    for (const k of Object.keys(this.requests)) delete this.requests[k];
  }

  async stop(): Promise<void> {
    this.release();
    this.dropAll();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket, upstream: { host: string; port: number }): void {
    this.connections++;
    const server = connect(upstream.port, upstream.host);
    this.sockets.add(client).add(server);
    const cut = (): void => {
      client.destroy();
      server.destroy();
    };
    client.on('close', () => {
      this.sockets.delete(client);
      server.destroy();
    });
    server.on('close', () => {
      this.sockets.delete(server);
      client.destroy();
    });
    client.on('error', () => undefined);
    server.on('error', () => undefined);

    let drop: { direction: 'up' | 'down'; remaining: number } | undefined;
    if (this.fault?.kind === 'drop' && this.fault.connections > 0) {
      this.fault.connections--;
      drop = { direction: this.fault.direction, remaining: this.fault.afterBytes };
      if (this.fault.connections === 0) this.fault = undefined;
    }

    const forward = (from: Socket, to: Socket, direction: 'up' | 'down'): void => {
      from.on('data', (chunk: Buffer) => {
        if (direction === 'up') {
          const m = REQUEST_LINE.exec(chunk.subarray(0, REQUEST_LINE_SCAN).toString('latin1'));
          if (m) {
            const method = m[1] as string;
            this.requests[method] = (this.requests[method] ?? 0) + 1;
            if (this.fault?.kind === 'httpError' && this.fault.requests > 0) {
              const status = this.fault.status;
              if (--this.fault.requests === 0) this.fault = undefined;
              this.injectedErrors++;
              answerHttpError(client, status);
              server.destroy();
              return;
            }
          }
        }
        let out = chunk;
        if (drop && drop.direction === direction) {
          if (chunk.length >= drop.remaining) {
            out = chunk.subarray(0, drop.remaining);
            if (out.length > 0) to.write(out);
            // Let the partial bytes leave before the cut.
            setImmediate(cut);
            from.pause();
            return;
          }
          drop.remaining -= chunk.length;
        }
        if (this.stalled) {
          from.pause();
          this.stalledResumers.push(() => {
            if (!to.destroyed) to.write(out);
            from.resume();
          });
          return;
        }
        if (!to.write(out)) {
          from.pause();
          to.once('drain', () => from.resume());
        }
      });
      from.on('end', () => to.end());
    };
    forward(client, server, 'up');
    forward(server, client, 'down');
  }
}

function answerHttpError(client: Socket, status: number): void {
  const reason = status === 503 ? 'Service Unavailable' : status === 500 ? 'Internal Server Error' : 'Error';
  const body = `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${status === 503 ? 'SlowDown' : 'InternalError'}</Code><Message>injected by the fault proxy</Message></Error>`;
  client.end(
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/xml\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}
