/** CLI wiring of `pgark metrics`: a long-running Prometheus endpoint. The implementation loads only when it runs. */
import { Command } from 'commander';
import { causeText, ConfigError } from '../common/errors.js';
import { log, notice } from '../common/log.js';
import { settingsFrom, stopSignals, withRepository } from './context.js';
import { intOption, numberOption } from './options.js';

/** libpq environment variables that say a connection is meant (node-postgres reads these). */
const PG_ENV = ['PGHOST', 'PGHOSTADDR', 'PGPORT', 'PGUSER', 'PGDATABASE'] as const;

interface MetricsOpts { port?: string; host?: string; dsn?: string; refresh?: string; timeout?: string }

export function registerMetricsCommand(program: Command): void {
  program
    .command('metrics')
    .summary('serve Prometheus metrics of the stanza: backups, archiving, WAL window, drills (long-running)')
    .description(
      'Serves GET /metrics on --host:--port. Every --refresh seconds, in the background, it lists the ' +
      'catalog, the WAL and the drill reports of the stanza once (new catalog entries and drill reports ' +
      'are read once and cached) and, when a connection is configured (--dsn, or PGHOST/PGPORT/PGUSER/ ' +
      'PGDATABASE in the environment), reads pg_stat_archiver. Scrapes are answered from those cached ' +
      'values; ages are computed at the scrape. A failed collection counts in ' +
      'pgark_metrics_collect_errors_total and the previous values stay. Stops cleanly on SIGTERM/SIGINT. ' +
      'Without a connection, the pgark_archiver_* metrics are not served at all. With an async further repository ' +
      '(repoN-mode=async), pgark_repo_backlog_files and pgark_repo_backlog_oldest_age_seconds show its backlog.',
    )
    .option('--port <port>', 'TCP port of the endpoint (0 = any free port; the one chosen is printed on stderr)')
    .option('--host <host>', 'address to listen on (default 127.0.0.1)')
    .option('--dsn <conninfo>', 'connection for pg_stat_archiver (no password: use PGPASSWORD/PGPASSFILE)')
    .option('--refresh <seconds>', 'collect at most this often (default 30)')
    .option('--timeout <seconds>', 'give up a collection after this long (default: the refresh interval, at most 60)')
    .action(async (opts: MetricsOpts, cmd: Command) => {
      const settings = settingsFrom(cmd);
      if (opts.port === undefined) throw new ConfigError('pgark metrics needs --port <port> (0 = any free port)');
      const port = intOption(opts.port, '--port', 0, 65_535)!;
      const refreshSec = numberOption(opts.refresh, '--refresh', 1, 86_400) ?? 30;
      const timeoutSec = numberOption(opts.timeout, '--timeout', 1, 3600) ?? Math.min(60, refreshSec);
      const host = opts.host ?? '127.0.0.1';
      const withPg = opts.dsn !== undefined || PG_ENV.some((k) => (process.env[k] ?? '') !== '');
      const { MetricsCollector } = await import('../ops/metrics-collect.js');
      const { startMetricsServer } = await import('../common/metrics-server.js');
      await withRepository(settings, async (repo) => {
        await repo.requireStanza();
        const collector = new MetricsCollector(repo, { refreshSec, timeoutSec, backlogRepos: settings.moreRepos.filter((m) => m.mode === 'async').map((m) => m.name), ...(withPg ? { postgres: { dsn: opts.dsn } } : {}) });
        const stopped = new Promise<string>((resolve) => stopSignals().onStopSignal(process, resolve));
        const server = await startMetricsServer<undefined>(port, host, (_s, now) => collector.text(now)).catch((err: unknown) => {
          throw new ConfigError(`unable to listen on ${host}:${port}: ${causeText(err)}`);
        });
        try {
          await collector.start().first;
          notice('info', `metrics on http://${host.includes(':') ? `[${host}]` : host}:${server.port}/metrics` +
            ` (stanza ${repo.stanza}; refresh ${refreshSec} s; pg_stat_archiver ${withPg ? 'over the configured connection' : 'not read: no connection configured'})`);
          const sig = await stopped;
          log.info(`metrics: ${sig}: stopping`);
        } finally {
          await collector.stop();
          await server.close();
        }
      });
    });
}
