/**
 * `pgark promote`: promote a clone (pg_ctl promote -w) and wait, bounded, until it accepts
 * writes: connected over the socket (or address) and port its postmaster.pid names,
 * pg_is_in_recovery() is false and txid_current() (which needs a writable server) succeeds.
 * A server that is already a primary is reported as such after the same write test.
 */
import { userInfo } from 'node:os';
import { resolve } from 'node:path';
import type { Client } from 'pg';
import { causeText, ConfigError, PgarkError } from '../common/errors.js';
import { readPgVersion } from '../pg/control-file.js';
import { assertNotRoot, findPgCtl, pgCtlPromote, readPostmasterPid, runningPostmaster, type PostmasterPid } from '../pg/pg-ctl.js';

export interface PromoteOutcome {
  pgdata: string;
  alreadyPrimary: boolean;
  /** Seconds from pg_ctl promote until a write succeeded. */
  seconds: number;
  timeline: number;
  lsn: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Where to connect, from postmaster.pid: the socket directory, else the first listen address. */
export function connectHost(p: PostmasterPid): string {
  if (p.socketDir !== '') return p.socketDir;
  const a = p.listenAddress.split(',')[0]!.trim();
  if (a === '' ) throw new ConfigError('the server listens on neither a unix socket nor a TCP address (postmaster.pid)');
  if (a === '*' || a === '0.0.0.0') return '127.0.0.1';
  if (a === '::') return '::1';
  return a;
}

async function connect(p: PostmasterPid): Promise<Client> {
  const pg = (await import('pg')).default;
  const c = new pg.Client({
    host: connectHost(p), port: p.port, user: process.env.PGUSER ?? userInfo().username, database: process.env.PGDATABASE ?? 'postgres',
    application_name: 'pgark promote', connectionTimeoutMillis: 10_000,
  });
  c.on('error', () => undefined);
  await c.connect();
  return c;
}

async function writable(c: Client): Promise<{ timeline: number; lsn: string } | undefined> {
  const r = await c.query<{ rec: boolean }>('SELECT pg_is_in_recovery() AS rec');
  if (r.rows[0]!.rec) return undefined;
  await c.query('SELECT txid_current()');
  const w = await c.query<{ walfile: string; lsn: string }>('SELECT pg_walfile_name(pg_current_wal_lsn()) AS walfile, pg_current_wal_lsn()::text AS lsn');
  return { timeline: Number.parseInt(w.rows[0]!.walfile.slice(0, 8), 16), lsn: w.rows[0]!.lsn };
}

export async function runPromote(pgdataIn: string, timeoutSec: number): Promise<PromoteOutcome> {
  assertNotRoot('pgark promote');
  const pgdata = resolve(pgdataIn);
  const pid = await readPostmasterPid(pgdata);
  if (!pid || (await runningPostmaster(pgdata)) === undefined) throw new ConfigError(`no server is running in '${pgdata}': start the clone first (pg_ctl start -D ${pgdata})`);
  const started = Date.now();
  const deadline = started + timeoutSec * 1000;
  let c: Client | undefined;
  try {
    c = await connect(pid).catch((err: unknown) => {
      throw new PgarkError(`unable to connect to the server of '${pgdata}' (${connectHost(pid)}, port ${pid.port}): ${causeText(err)} (PGUSER/PGDATABASE pick the role and database; passwords come from PGPASSWORD or ~/.pgpass)`);
    });
    const before = await writable(c);
    if (before) return { pgdata, alreadyPrimary: true, seconds: 0, ...before };
    const pgCtl = await findPgCtl(await readPgVersion(pgdata));
    const t0 = Date.now();
    await pgCtlPromote(pgCtl, pgdata, timeoutSec);
    let lastErr: unknown;
    for (;;) {
      try {
        if (!c) c = await connect(pid);
        const w = await writable(c);
        if (w) return { pgdata, alreadyPrimary: false, seconds: Math.round(Date.now() - t0) / 1000, ...w };
      } catch (err) {
        lastErr = err;
        await c?.end().catch(() => undefined);
        c = undefined;
      }
      if (Date.now() > deadline) {
        throw new PgarkError(`the server of '${pgdata}' did not accept writes within ${timeoutSec} s (--timeout)${lastErr ? `: ${causeText(lastErr)}` : ': still in recovery'}`);
      }
      await sleep(100);
    }
  } finally {
    await c?.end().catch(() => undefined);
  }
}
