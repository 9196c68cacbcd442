/** A Prometheus text endpoint on loopback (or the given host) serving the agent's latest state. */
import { createServer, type Server } from 'node:http';
import { prometheusText, type AgentStatus } from './agent-status.js';

export interface MetricsServer {
  port: number;
  update(s: AgentStatus): void;
  close(): Promise<void>;
}

export async function startMetricsServer(port: number, host = '127.0.0.1'): Promise<MetricsServer> {
  let latest: AgentStatus | undefined;
  const server: Server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url !== '/metrics' && req.url !== '/')) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: GET /metrics\n');
      return;
    }
    const body = latest ? prometheusText(latest, Date.now()) : '# HELP pgark_agent_up The archive agent is running.\n# TYPE pgark_agent_up gauge\npgark_agent_up 0\n';
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(body);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const address = server.address();
  return {
    port: typeof address === 'object' && address ? address.port : port,
    update: (s) => (latest = s),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
