/** A synthetic pg_wal for archive_command tests: segments copied from a stopped cluster. */
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { chownToRunAs } from './pg-cluster.js';

/**
 * `base/pg_wal` holding `names` copied from `dataDir`'s pg_wal, those in `ready` marked `.ready`,
 * plus `global/pg_control` and `PG_VERSION` (what wal-push reads of the data directory), owned by
 * the PostgreSQL OS user. Returns the pg_wal path.
 */
export async function walCopy(dataDir: string, base: string, names: readonly string[], ready: readonly string[] = names): Promise<string> {
  const wal = join(base, 'pg_wal');
  await mkdir(join(wal, 'archive_status'), { recursive: true });
  await mkdir(join(base, 'global'), { recursive: true });
  await copyFile(join(dataDir, 'global', 'pg_control'), join(base, 'global', 'pg_control'));
  await copyFile(join(dataDir, 'PG_VERSION'), join(base, 'PG_VERSION'));
  for (const n of names) await copyFile(join(dataDir, 'pg_wal', n), join(wal, n));
  for (const n of ready) await writeFile(join(wal, 'archive_status', `${n}.ready`), '');
  await chownToRunAs(base);
  return wal;
}
