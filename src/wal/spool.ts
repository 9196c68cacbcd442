/**
 * Local spool in `pg_wal/.pgark` (like WAL-G's `.wal-g`): records of
 * segments pushed ahead of PostgreSQL's request, and the wal-fetch prefetch area. pg_basebackup
 * does not copy pg_wal contents, so the spool never travels into backups.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { LocalWalFile } from './inspect-local.js';
import { formatPushRecord, pushRecordDir } from './fast-path.js';
import { isSegmentName, segmentOfReadyFile } from '../pg/wal-names.js';

export async function ensureDir(dir: string): Promise<string> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  return dir;
}

/** Writing and pruning of push records; reading is takePushRecord (fast-path.ts). */
export class PushRecords {
  readonly dir: string;
  constructor(walDir: string) {
    this.dir = pushRecordDir(walDir);
  }

  /** Write after the object is durable in the repository. */
  async add(file: LocalWalFile, sha256: string, target: string): Promise<void> {
    await ensureDir(this.dir);
    const path = join(this.dir, file.name);
    const tmp = `${path}.tmp-${process.pid}-${randomBytes(3).toString('hex')}`;
    await writeFile(tmp, formatPushRecord(file.stamp, sha256, target), { mode: 0o600 });
    await rename(tmp, path);
  }

  async names(): Promise<string[]> {
    try {
      return (await readdir(this.dir)).filter((n) => isSegmentName(n));
    } catch {
      return [];
    }
  }

  /** Drop records for names PostgreSQL has already moved past (never asked for them again). */
  async pruneBefore(name: string): Promise<void> {
    for (const n of await this.names()) if (n < name) await rm(join(this.dir, n), { force: true });
  }
}

/** Segment names PostgreSQL marked ready after `name`, oldest first. */
export async function readySegmentsAfter(walDir: string, name: string, limit: number): Promise<string[]> {
  if (limit <= 0) return [];
  let entries: string[];
  try {
    entries = await readdir(join(walDir, 'archive_status'));
  } catch {
    return [];
  }
  return entries
    .flatMap((e) => segmentOfReadyFile(e) ?? [])
    .filter((n) => n > name)
    .sort()
    .slice(0, limit);
}

export function walDirOf(walFilePath: string): string {
  return dirname(walFilePath);
}
