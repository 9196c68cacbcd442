/** CLI wiring of `pgark agent`. The implementation loads only when the command runs. */
import { resolve, join } from 'node:path';
import { Command } from 'commander';
import { ConfigError } from '../common/errors.js';
import { log } from '../common/log.js';
import { abortOnSignals, printJson, settingsFrom } from './context.js';
import { withFormat } from '../json/format.js';
import { intOption } from './options.js';

/** The agent's metrics, then the repository's (collected in the background once the repository is open). */
async function agentMetricsText(repoMetrics: () => { text(now: number): string } | undefined) {
  const { prometheusText } = await import('../agent/agent-status.js');
  return (s: import('../agent/agent-status.js').AgentStatus | undefined, now: number) =>
    (s ? prometheusText(s, now) : '# HELP pgark_agent_up The archive agent is running.\n# TYPE pgark_agent_up gauge\npgark_agent_up 0\n') +
    (repoMetrics()?.text(now) ?? '');
}

export function registerAgentCommand(program: Command): void {
  program
    .command('agent')
    .summary('keep archiving ahead of PostgreSQL (long-running, one per cluster)')
    .description(
      'Watches pg_wal/archive_status and stores every segment PostgreSQL marks ready, --jobs at a time, ' +
      'with the repository connection kept open. archive_command = \'pgark-wal-push %p\' (or pgark wal-push) ' +
      'then only finds the record of a stored segment; when the agent is down or has not stored a ' +
      'segment yet, archive_command pushes it itself. With repo2, repo3 each segment is stored in every ' +
      'repository, and its record says so only once it is durable in each required one (an async one that ' +
      'cannot take it gets a backlog record and is filled behind). Stops cleanly on SIGTERM/SIGINT.',
    )
    .option('--jobs <n>', 'segments stored in parallel (default 4)')
    .option('--metrics-port <port>', 'serve Prometheus metrics on 127.0.0.1:<port>/metrics (0 = any free port)')
    .option('--metrics-host <host>', 'address for the metrics endpoint (default 127.0.0.1)')
    .option('--poll-ms <ms>', 'look at archive_status at least this often (default 1000)')
    .option('--warn-backlog <segments>', 'log a warning when this many ready segments wait (default 64)')
    .option('--warn-age <seconds>', 'log a warning when the oldest ready segment waits this long (default 300)')
    .option('--json', 'print the final counters as JSON when stopped')
    .action(async (opts: { metricsPort?: string; metricsHost?: string; pollMs?: string; warnBacklog?: string; warnAge?: string; json?: boolean }, cmd: Command) => {
      const settings = settingsFrom(cmd);
      if (!settings.pgdata) throw new ConfigError("missing required setting 'pgdata': pass --pgdata, set PGDATA, or add 'pgdata = ...' to the config file");
      const walDir = join(resolve(settings.pgdata), 'pg_wal');
      const pollMs = intOption(opts.pollMs, '--poll-ms', 10, 60_000) ?? 1000;
      const thresholds = { segments: intOption(opts.warnBacklog, '--warn-backlog', 1, 1_000_000) ?? 64, ageSec: (intOption(opts.warnAge, '--warn-age', 1, 86_400 * 7) ?? 300) };
      const [{ runAgent }, { withRepoSet }] = await Promise.all([import('../agent/agent.js'), import('../repo/repo-set.js')]);
      let repoMetrics: import('../ops/metrics-collect.js').MetricsCollector | undefined;
      const metrics = opts.metricsPort !== undefined
        ? await (await import('../common/metrics-server.js')).startMetricsServer<import('../agent/agent-status.js').AgentStatus>(intOption(opts.metricsPort, '--metrics-port', 0, 65_535) ?? 0, opts.metricsHost, await agentMetricsText(() => repoMetrics))
        : undefined;
      if (metrics) log.info(`agent: metrics on http://${opts.metricsHost ?? '127.0.0.1'}:${metrics.port}/metrics`);
      const signal = abortOnSignals((sig) => `agent: ${sig}: finishing the segments in flight`);
      try {
        // repo2, repo3: every one opened (a required one that cannot be fails the start; an async
        // one is tried again later), each segment stored in each (agent/agent.ts).
        const final = await withRepoSet(settings, async (set) => {
          if (metrics) repoMetrics = (await import('../ops/metrics-collect.js')).startRepositoryMetrics(set.first);
          try {
            return await runAgent(set, settings, { walDir, pollMs, thresholds, signal, ...(metrics ? { onStatus: (s) => metrics.update(s) } : {}) });
          } finally {
            await repoMetrics?.stop();
          }
        });
        if (opts.json) printJson(withFormat('agent', final));
      } finally {
        await metrics?.close();
      }
    });
}
