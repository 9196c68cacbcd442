/**
 * Connections to PostgreSQL. Parameters come from libpq's environment variables (PGHOST, PGPORT,
 * PGUSER, PGDATABASE, PGPASSWORD, PGPASSFILE/.pgpass) or a `--dsn` connection string; the
 * password is never taken from argv. `pg` is imported only by commands that connect.
 */
import type { Client } from 'pg';
import { PgarkError, ExitCode } from '../common/errors.js';
import { assertNoPassword, conninfoToUri } from './conninfo.js';

export class ConnectionError extends PgarkError {
  override readonly exitCode = ExitCode.FAILURE;
}

/** Strip any password from a connection string for messages. */
export function redactDsn(dsn: string): string {
  return dsn.replace(/(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)/gi, '$1***').replace(/(:\/\/[^:/@]*:)[^@]*@/, '$1***@');
}

export async function connectPg(dsn: string | undefined, applicationName = 'pgark'): Promise<Client> {
  assertNoPassword(dsn);
  const pg = (await import('pg')).default;
  // node-postgres ignores PGCONNECT_TIMEOUT: bound the connection attempt ourselves.
  const timeoutSec = Number(process.env.PGCONNECT_TIMEOUT) > 0 ? Number(process.env.PGCONNECT_TIMEOUT) : 30;
  const client = new pg.Client({ ...(dsn ? { connectionString: conninfoToUri(dsn) } : {}), application_name: applicationName, connectionTimeoutMillis: timeoutSec * 1000 });
  client.on('error', () => undefined); // a dropped connection surfaces on the next query
  try {
    await client.connect();
  } catch (err) {
    const where = dsn ? `'${redactDsn(dsn)}'` : `host=${process.env.PGHOST ?? 'default'} port=${process.env.PGPORT ?? '5432'}`;
    throw new ConnectionError(`unable to connect to PostgreSQL (${where}): ${(err as Error).message}`);
  }
  return client;
}

export async function queryOne<T>(client: Client, sql: string, params: unknown[] = []): Promise<T> {
  const r = await client.query(sql, params);
  if (r.rows.length !== 1) throw new PgarkError(`expected one row from: ${sql.slice(0, 80)}`);
  return r.rows[0] as T;
}
