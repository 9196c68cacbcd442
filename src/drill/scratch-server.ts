/**
 * The scratch server of a drill: a private 0700 directory (data directory, unix socket, server
 * log, WAL fetched for the RPO), configured by scratch-settings.ts, started with pg_ctl,
 * reached over its socket, stopped and removed.
 */
import { chmodSync, existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import type { Client } from 'pg';
import { isNodeError, PgarkError } from '../common/errors.js';
import { mergeAutoConf } from '../restore/recovery-conf.js';
import { SCRATCH_HBA, scratchSettings } from './scratch-settings.js';

export interface ScratchServer {
  /** The scratch directory (0700): data/, the socket, server.log, wal/. */
  dir: string;
  pgdata: string;
  port: number;
  logFile: string;
}

/**
 * A new 0700 directory `pgark-drill-<id>-XXXXXX` under `parent` (default: the temp directory).
 * Synchronous, so that a signal handler sees either no directory or the returned one.
 */
export function createScratch(parent: string | undefined, id: string, port: number): ScratchServer {
  const base = resolve(parent ?? tmpdir());
  mkdirSync(base, { recursive: true, mode: 0o700 });
  const dir = mkdtempSync(join(base, `pgark-drill-${id}-`));
  chmodSync(dir, 0o700);
  return { dir, pgdata: join(dir, 'data'), port, logFile: join(dir, 'server.log') };
}

/** A TCP port nothing listened on a moment ago (the scratch server listens on its socket only). */
export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', rej);
    srv.listen({ port: 0, host: '127.0.0.1', exclusive: true }, () => {
      const a = srv.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      srv.close(() => (port ? res(port) : rej(new PgarkError('no free port'))));
    });
  });
}

/**
 * Configure the restored data directory as a scratch server: its own pg_hba.conf and
 * pg_ident.conf in the scratch directory, a postgresql.conf when the backup has none (Debian
 * keeps it in /etc), and the scratch settings appended to postgresql.auto.conf.
 */
export async function configureScratch(s: ScratchServer, pgVersion: number, name: string, stamp: string): Promise<void> {
  const hbaFile = join(s.dir, 'pg_hba.conf');
  const identFile = join(s.dir, 'pg_ident.conf');
  await writeFile(hbaFile, SCRATCH_HBA, { mode: 0o600 });
  await writeFile(identFile, '', { mode: 0o600 });
  const conf = join(s.pgdata, 'postgresql.conf');
  if (!existsSync(conf)) await writeFile(conf, '# written by pgark drill: the backup holds no postgresql.conf\n', { mode: 0o600 });
  const autoConf = join(s.pgdata, 'postgresql.auto.conf');
  const existing = await readFile(autoConf, 'utf8').catch((err: unknown) => {
    if (isNodeError(err, 'ENOENT')) return '';
    throw err;
  });
  const gucs = scratchSettings({ port: s.port, socketDir: s.dir, hbaFile, identFile, pgVersion, name });
  await writeFile(autoConf, mergeAutoConf(existing, gucs, stamp), { mode: 0o600 });
  await mkdir(join(s.pgdata, 'log'), { recursive: true, mode: 0o700 });
}

export async function readServerLog(s: ScratchServer): Promise<string> {
  return readFile(s.logFile, 'utf8').catch(() => '');
}

/** PostgreSQL error code of a pg error, if any. */
function sqlState(err: unknown): string | undefined {
  const c = (err as { code?: unknown }).code;
  return typeof c === 'string' && /^[0-9A-Z]{5}$/.test(c) ? c : undefined;
}

export async function connectScratch(s: ScratchServer, user: string, database: string): Promise<Client> {
  const pg = (await import('pg')).default;
  // ssl: false whatever PGSSLMODE says: a unix socket, and the scratch server has ssl off.
  const c = new pg.Client({ host: s.dir, port: s.port, user, database, ssl: false, application_name: 'pgark drill', connectionTimeoutMillis: 10_000 });
  c.on('error', () => undefined);
  await c.connect();
  return c;
}

/**
 * Connect as a role that exists in the restored cluster: PGUSER, the OS user, then postgres;
 * to database `postgres`, else template1. Returns the client and the role used.
 */
export async function connectAnyRole(s: ScratchServer): Promise<{ client: Client; user: string }> {
  const users = [...new Set([process.env.PGUSER, userInfo().username, 'postgres'].filter((u): u is string => !!u))];
  let last: unknown;
  for (const user of users) {
    for (const db of ['postgres', 'template1']) {
      try {
        return { client: await connectScratch(s, user, db), user };
      } catch (err) {
        last = err;
        const state = sqlState(err);
        if (state === '3D000') continue; // no such database: try template1
        break; // no such role (28000) or anything else: next role
      }
    }
  }
  throw new PgarkError(`unable to connect to the scratch server as ${users.join(', ')}: ${(last as Error)?.message ?? 'unknown error'} (set PGUSER to a superuser of the backed-up cluster)`);
}

export async function removeScratch(s: ScratchServer): Promise<void> {
  await rm(s.dir, { recursive: true, force: true, maxRetries: 3 });
}
