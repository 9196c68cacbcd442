/** CLI wiring of `pgark receive`. The implementation loads only when the command runs. */
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { Command } from 'commander';
import { ConfigError } from '../common/errors.js';
import { log } from '../common/log.js';
import { abortOnSignals, printJson, settingsFrom } from './context.js';
import { withFormat } from '../json/format.js';
import { intOption, numberOption } from './options.js';

interface ReceiveOpts {
  dsn?: string; slot?: string; createSlot?: boolean; synchronous?: boolean; applicationName?: string;
  flushInterval?: string; statusInterval?: string; spoolDir?: string; metricsPort?: string; metricsHost?: string; json?: boolean;
}

export function registerReceiveCommand(program: Command): void {
  program
    .command('receive')
    .summary('stream WAL from a replication slot into the repository (long-running)')
    .description(
      'Connects for physical replication (--dsn or the libpq environment; no password in the DSN), ' +
      'checks the server is the stanza\'s cluster, and streams WAL from right after the WAL already stored. ' +
      'Whole segments are stored exactly as wal-push stores them; the segment being received is stored ' +
      'as pieces at every flush (--flush-interval, or after every batch with --synchronous). Flush ' +
      'positions reported to the server mean "durably stored in the repository", so with --synchronous ' +
      'the receiver can be named in synchronous_standby_names (as --application-name) for zero data loss. ' +
      'Follows timeline switches, reconnects with backoff, and stops cleanly on SIGTERM/SIGINT. ' +
      'One receiver per stanza and --application-name: a second one exits 6 (locked) and names the holder. ' +
      'With repo2, repo3 WAL is stored in each, and a flush position is reported only once it is durable in every ' +
      'required repository (async ones get backlog records, filled behind).',
    )
    .option('--dsn <conninfo>', 'connection string (no password: use PGPASSWORD/PGPASSFILE)')
    .option('--slot <name>', 'physical replication slot to stream from (strongly recommended)')
    .option('--create-slot', 'create the slot when it does not exist')
    .option('--synchronous', 'store and reply after every batch of messages (synchronous standby)')
    .option('--application-name <name>', 'application_name, the name for synchronous_standby_names (default pgark)')
    .option('--flush-interval <seconds>', 'store the received WAL at least this often (default 1)')
    .option('--status-interval <seconds>', 'send a status reply to the server at least this often (default 10)')
    .option('--spool-dir <dir>', 'local directory for the segment being received (default ~/.local/state/pgark/receive/<stanza>-<name>)')
    .option('--metrics-port <port>', 'serve Prometheus metrics on 127.0.0.1:<port>/metrics (0 = any free port)')
    .option('--metrics-host <host>', 'address for the metrics endpoint (default 127.0.0.1)')
    .option('--json', 'print the final status as JSON when stopped')
    .action(async (opts: ReceiveOpts, cmd: Command) => {
      const settings = settingsFrom(cmd);
      const name = opts.applicationName ?? 'pgark';
      if (!/^[A-Za-z0-9_.-]{1,63}$/.test(name)) throw new ConfigError(`invalid --application-name '${name.slice(0, 64)}': letters, digits, '_', '.' and '-' only (at most 63)`);
      const { isValidSlotName } = await import('../protocol/replication-commands.js');
      if (opts.slot !== undefined && !isValidSlotName(opts.slot)) throw new ConfigError(`invalid --slot '${opts.slot.slice(0, 64)}': lower-case letters, digits and '_' only (at most 63)`);
      if (opts.createSlot && !opts.slot) throw new ConfigError('--create-slot needs --slot');
      const state = process.env.XDG_STATE_HOME ?? join(homedir(), '.local', 'state');
      const spoolDir = resolve(opts.spoolDir ?? join(state, 'pgark', 'receive', `${settings.stanza}-${name}`));
      const metricsPort = intOption(opts.metricsPort, '--metrics-port', 0, 65_535);
      const flushIntervalMs = (numberOption(opts.flushInterval, '--flush-interval', 0.01, 3600) ?? 1) * 1000;
      const statusIntervalMs = (numberOption(opts.statusInterval, '--status-interval', 0.1, 3600) ?? 10) * 1000;
      const { acquireReceiverLocks, runReceiver } = await import('../receiver/receiver.js');
      const { withRepoSet } = await import('../repo/repo-set.js');
      const { receiverPrometheusText } = await import('../receiver/receiver-status.js');
      const signal = abortOnSignals((sig) => `receive: ${sig}: storing what was received and stopping`);
      // repo2, repo3: WAL goes to each; flush positions cover only what every required one holds.
      const final = await withRepoSet(settings, async (set) => {
        const repo = set.first;
        // The locks first: a second receiver is refused before it binds a port or writes anything.
        const locks = await acquireReceiverLocks(repo, name, spoolDir);
        // The receiver's metrics, then the repository's (collected in the background).
        let repoMetrics: import('../ops/metrics-collect.js').MetricsCollector | undefined;
        let metrics: import('../common/metrics-server.js').MetricsServer<import('../receiver/receiver-status.js').ReceiverStatus> | undefined;
        try {
          metrics = metricsPort !== undefined
            ? await (await import('../common/metrics-server.js')).startMetricsServer<import('../receiver/receiver-status.js').ReceiverStatus>(metricsPort, opts.metricsHost,
              (s, now) => receiverPrometheusText(s) + (repoMetrics?.text(now) ?? ''))
            : undefined;
          if (metrics) {
            log.info(`receive: metrics on http://${opts.metricsHost ?? '127.0.0.1'}:${metrics.port}/metrics`);
            repoMetrics = (await import('../ops/metrics-collect.js')).startRepositoryMetrics(repo);
          }
          const m = metrics;
          return await runReceiver(set, {
            dsn: opts.dsn, slot: opts.slot, createSlot: !!opts.createSlot, name, synchronous: !!opts.synchronous,
            flushIntervalMs, statusIntervalMs,
            spoolDir, codec: settings.codec, codecExplicit: settings.codecExplicit, signal,
            ...(m ? { onStatus: (s) => m.update(s) } : {}),
          }, locks);
        } finally {
          await repoMetrics?.stop();
          await metrics?.close();
          await locks.release();
        }
      });
      if (opts.json) printJson(withFormat('receive', final));
    });
}
