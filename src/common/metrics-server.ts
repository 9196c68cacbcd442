/** A Prometheus text endpoint on loopback (or the given host) serving the latest state of a long-running command. */
import { createServer, type Server } from 'node:http';

export interface MetricsServer<T> {
  port: number;
  update(s: T): void;
  close(): Promise<void>;
}

/** `render(undefined)` is served before the first update. */
export async function startMetricsServer<T>(port: number, host: string | undefined, render: (latest: T | undefined, nowMs: number) => string): Promise<MetricsServer<T>> {
  let latest: T | undefined;
  const server: Server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url !== '/metrics' && req.url !== '/')) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: GET /metrics\n');
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(render(latest, Date.now()));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host ?? '127.0.0.1', () => resolve());
  });
  const address = server.address();
  return {
    port: typeof address === 'object' && address ? address.port : port,
    update: (s) => (latest = s),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
