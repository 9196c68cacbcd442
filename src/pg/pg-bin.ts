/**
 * Where PostgreSQL's programs are (pg_ctl, pg_amcheck, pg_waldump...): the `pg-bindir` setting
 * (PGARK_PG_BINDIR), `pg_config --bindir`, Debian's /usr/lib/postgresql/<major>/bin (the
 * server's major version first, then the newest), then PATH.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { ConfigError } from '../common/errors.js';

function candidates(major?: number): string[] {
  const out: string[] = [];
  const env = process.env.PGARK_PG_BINDIR;
  if (env) out.push(env);
  if (major !== undefined) out.push(`/usr/lib/postgresql/${major}/bin`);
  try {
    const dir = execFileSync('pg_config', ['--bindir'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 }).trim();
    if (dir) out.push(dir);
  } catch {
    // no pg_config on PATH
  }
  try {
    const versions = readdirSync('/usr/lib/postgresql').filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a));
    for (const v of versions) out.push(`/usr/lib/postgresql/${v}/bin`);
  } catch {
    // not a Debian layout
  }
  out.push(...(process.env.PATH ?? '').split(delimiter).filter(Boolean));
  return out;
}

/** Absolute path of PostgreSQL program `name`, or undefined when it cannot be found. */
export function findPgProgram(name: string, major?: number): string | undefined {
  for (const dir of candidates(major)) {
    const p = join(dir, name);
    if (existsSync(p)) return p;
  }
  return undefined;
}

/** Like findPgProgram, but a ConfigError saying how to point pgark at it. */
export function requirePgProgram(name: string, major?: number): string {
  const p = findPgProgram(name, major);
  if (!p) {
    throw new ConfigError(
      `unable to find PostgreSQL's ${name}${major ? ` (version ${major})` : ''}: install the server package (Debian: postgresql-${major ?? 15}) ` +
      'or set PGARK_PG_BINDIR to the directory holding it',
    );
  }
  return p;
}
