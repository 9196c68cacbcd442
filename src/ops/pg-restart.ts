/**
 * Restart a local PostgreSQL server with `pg_ctl -D <dir> -m fast -w restart` (for
 * `pgark setup --restart`). pg_ctl must run as the server's OS user (the owner of the data
 * directory; it refuses root), which is checked before anything is changed. The server's
 * output goes to `-l <log file>`: pg_ctl does not remember the log file of the previous start.
 */
import { spawn } from 'node:child_process';
import { stat } from 'node:fs/promises';
import { ConfigError, PgarkError, isNodeError } from '../common/errors.js';
import { requirePgProgram } from '../pg/pg-bin.js';

export interface RestartPlan {
  pgCtl: string;
  dataDirectory: string;
  logFile: string;
}

/**
 * Check that this process can restart the server and return how. `logFile` is --server-log-file;
 * without it the server must log through its logging collector (its early start-up lines,
 * before the collector runs, are then dropped).
 */
export async function prepareRestart(dataDirectory: string, pgVersion: number, loggingCollector: boolean, logFile: string | undefined): Promise<RestartPlan> {
  let owner: number;
  try {
    owner = (await stat(dataDirectory)).uid;
  } catch (err) {
    const why = isNodeError(err, 'ENOENT') ? 'it does not exist here (is the server on another host?)' : (err as Error).message;
    throw new ConfigError(`--restart needs the server's data directory '${dataDirectory}' on this host: ${why}; restart the server yourself`);
  }
  const me = process.geteuid?.();
  if (me !== undefined && me !== owner) {
    throw new ConfigError(
      `--restart must run as the server's OS user (the owner of '${dataDirectory}', uid ${owner}; this is uid ${me}): ` +
      'run pgark setup as that user (e.g. sudo -u postgres), or restart the server yourself (systemctl restart ..., pg_ctlcluster ... restart)',
    );
  }
  if (!logFile && !loggingCollector) {
    throw new ConfigError(
      "--restart: logging_collector is off, so the server logs to the output pg_ctl gives it, and pg_ctl does not remember the log file of the last start: " +
      'pass --server-log-file FILE (the server\'s log file), or restart the server yourself',
    );
  }
  return { pgCtl: requirePgProgram('pg_ctl', pgVersion), dataDirectory, logFile: logFile ?? '/dev/null' };
}

/** Run pg_ctl restart and wait (bounded) until the server accepts connections again. */
export async function restartServer(p: RestartPlan, timeoutSec = 120): Promise<void> {
  const args = ['-D', p.dataDirectory, '-m', 'fast', '-w', '-t', String(timeoutSec), '-l', p.logFile, 'restart'];
  const out = await new Promise<{ code: number | null; signal: NodeJS.Signals | null; text: string; timedOut: boolean }>((resolve, reject) => {
    const child = spawn(p.pgCtl, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, (timeoutSec + 30) * 1000);
    child.stdout.on('data', (d: Buffer) => chunks.push(d));
    child.stderr.on('data', (d: Buffer) => chunks.push(d));
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new PgarkError(`unable to run '${p.pgCtl}': ${err.message}`));
    });
    // 'exit', not 'close': with -l the server does not hold our pipes, but nothing should hang on them.
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      setImmediate(() => resolve({ code, signal, text: Buffer.concat(chunks).toString('utf8'), timedOut }));
    });
  });
  if (out.code !== 0) {
    const why = out.timedOut ? `did not finish within ${timeoutSec + 30} s` : out.signal ? `was killed by ${out.signal}` : `exited with ${out.code}`;
    throw new PgarkError(`pg_ctl restart of '${p.dataDirectory}' ${why}: ${out.text.trim().slice(-2000)}`);
  }
}
