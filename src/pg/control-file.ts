/** Read what pgark needs from a data directory: PG_VERSION and pg_control's system identifier. */
import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InvalidInputError } from '../common/errors.js';

/** Major version from PG_VERSION ("15", "9.6" -> 9). */
export async function readPgVersion(pgdata: string): Promise<number> {
  const text = (await readFile(join(pgdata, 'PG_VERSION'), 'utf8')).trim();
  const major = Number.parseInt(text, 10);
  if (!Number.isFinite(major)) throw new InvalidInputError(`unable to read '${join(pgdata, 'PG_VERSION')}': unexpected content`);
  return major;
}

/** ControlFileData begins with uint64 system_identifier (host byte order; little-endian here). */
export async function readSystemIdentifier(pgdata: string): Promise<string> {
  const path = join(pgdata, 'global', 'pg_control');
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(8);
    const { bytesRead } = await fh.read(buf, 0, 8, 0);
    if (bytesRead !== 8) throw new InvalidInputError(`unable to read '${path}': file too short`);
    return buf.readBigUInt64LE(0).toString();
  } finally {
    await fh.close();
  }
}
