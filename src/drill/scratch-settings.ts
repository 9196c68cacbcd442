/**
 * How a drill's scratch server is configured (pure). It must never touch anything of the
 * production cluster it was restored from: no TCP listener (a unix socket in the private
 * scratch directory only), no archiving, no external pid file, its own pg_hba.conf (trust on
 * that socket only), no synchronous standbys to wait for after promotion, no apply delay, little
 * memory.
 */
import { InvalidInputError } from '../common/errors.js';
import { escapeForMessage } from '../wal/segment-name.js';

/** sizeof(sockaddr_un.sun_path) - 1 on Linux. */
const MAX_SOCKET_PATH = 107;

export const SCRATCH_SHARED_BUFFERS = '32MB';

/** The unix socket PostgreSQL creates: `<dir>/.s.PGSQL.<port>`. */
export function socketPath(dir: string, port: number): string {
  return `${dir}/.s.PGSQL.${port}`;
}

/** Refuse a scratch directory PostgreSQL could not put its socket into. */
export function checkSocketDir(dir: string, port: number): void {
  if (/[,"\n\r\0]/.test(dir)) throw new InvalidInputError(`invalid scratch directory '${escapeForMessage(dir)}': it must not contain a comma, a double quote or a line break (unix_socket_directories is a list)`);
  const p = socketPath(dir, port);
  if (Buffer.byteLength(p) > MAX_SOCKET_PATH) {
    throw new InvalidInputError(`the scratch directory '${escapeForMessage(dir)}' is too long for a unix socket path (${Buffer.byteLength(p)} bytes, at most ${MAX_SOCKET_PATH}): pass a shorter --scratch`);
  }
}

/** The pg_hba.conf of a scratch server: anyone who can reach the private socket directory. */
export const SCRATCH_HBA = '# pgark drill: only the unix socket in the private (0700) scratch directory\nlocal all all trust\n';

export function scratchSettings(o: { port: number; socketDir: string; hbaFile: string; identFile: string; pgVersion: number; name: string }): Array<[string, string]> {
  const out: Array<[string, string]> = [
    ['port', String(o.port)],
    ['listen_addresses', ''],
    ['unix_socket_directories', o.socketDir],
    ['unix_socket_permissions', '0700'],
    ['hba_file', o.hbaFile],
    ['ident_file', o.identFile],
    ['ssl', 'off'],
    ['external_pid_file', ''],
    ['synchronous_standby_names', ''],
    ['hot_standby', 'on'],
    // A backup of a delayed standby must not delay the drill's replay.
    ['recovery_min_apply_delay', '0'],
    // The drill writes (the promotion test, pg_amcheck --install-missing).
    ['default_transaction_read_only', 'off'],
    ['shared_buffers', SCRATCH_SHARED_BUFFERS],
    ['huge_pages', 'off'],
    ['logging_collector', 'off'],
    ['log_destination', 'stderr'],
    ['log_min_messages', 'warning'],
    // The drill reads the server log ("recovery ended before ..."): untranslated messages.
    ['lc_messages', 'C'],
    ['cluster_name', o.name],
  ];
  // 13 and 14: the statistics temp directory may point into the source's /var/run.
  if (o.pgVersion < 15) out.push(['stats_temp_directory', 'pg_stat_tmp']);
  return out;
}

/** The server log lines that explain the end of recovery, or why it failed. */
export interface RecoveryLogFacts {
  /** "recovery stopping before commit of transaction 743, time ..." or "redo done at 0/3000148 ...". */
  end?: string;
  /** PostgreSQL 13+: the target lies beyond the archived WAL. */
  targetNotReached: boolean;
  /** FATAL / PANIC lines, in order. */
  fatal: string[];
}

export function recoveryLogFacts(log: string): RecoveryLogFacts {
  const lines = log.split('\n');
  const msg = (l: string) => l.replace(/^.*?\b(LOG|FATAL|PANIC|ERROR):\s+/, '').trim();
  let end: string | undefined;
  const fatal: string[] = [];
  let targetNotReached = false;
  for (const l of lines) {
    if (/recovery stopping (before|after|at)|recovery has paused|redo done at/.test(l)) {
      if (!(end && /recovery stopping/.test(end) && /redo done at/.test(l))) end = msg(l).replace(/ system usage: .*$/, '');
    }
    if (/recovery ended before configured recovery target was reached/.test(l)) targetNotReached = true;
    if (/\b(FATAL|PANIC):/.test(l)) fatal.push(msg(l));
  }
  return { ...(end !== undefined ? { end } : {}), targetNotReached, fatal };
}

/** The last `n` non-empty lines of a log. */
export function lastLines(log: string, n: number): string[] {
  return log.split('\n').filter((l) => l.trim() !== '').slice(-n);
}
