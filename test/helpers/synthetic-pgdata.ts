/**
 * A tiny synthetic data directory for backup and restore unit tests: what the copy sees of
 * PostgreSQL's files (relation files made of 8 KiB pages with page LSNs, small files, an empty
 * file, files a backup excludes), not a cluster that starts.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pageChecksumAt } from '../../src/backup/page-checksum.js';

export const BLOCK = 8192;

/** `count` initialised pages whose pd_lsn is `lsn` (pd_upper set, so not "new"), random content. */
export function pages(count: number, lsn: bigint): Buffer {
  const buf = randomBytes(count * BLOCK);
  for (let i = 0; i < count; i++) setPageLsn(buf, i, lsn);
  return buf;
}

export function setPageLsn(buf: Buffer, page: number, lsn: bigint): void {
  const off = page * BLOCK;
  buf.writeUInt32LE(Number(lsn >> 32n), off);
  buf.writeUInt32LE(Number(lsn & 0xffffffffn), off + 4);
  buf.writeUInt16LE(BLOCK - 64, off + 14); // pd_upper: initialised
  // A valid page checksum for block `page` of segment 0 (an incremental takes only verified pages from its parent).
  buf.writeUInt16LE(pageChecksumAt(buf, off, page), off + 8);
}

export async function writeFiles(root: string, files: Record<string, Buffer | string>): Promise<void> {
  for (const [path, body] of Object.entries(files)) {
    await mkdir(dirname(join(root, path)), { recursive: true, mode: 0o700 });
    await writeFile(join(root, path), body, { mode: 0o600 });
  }
}

/** The files of the synthetic data directory that a backup copies (and a restore writes). */
export function syntheticFiles(pageLsn: bigint): Record<string, Buffer | string> {
  return {
    'PG_VERSION': '15\n',
    'global/pg_control': randomBytes(BLOCK),
    'base/1/PG_VERSION': '15\n',
    'base/1/1259': pages(3, pageLsn), // an object of its own (the tests' bundle limit is 2 pages)
    'base/1/2619': pages(6, pageLsn), // parts of 4 and 2 pages (the tests' part size is 4 pages)
    'base/1/112': randomBytes(100), // bundled
    'base/1/3456': Buffer.alloc(0), // empty
    'postgresql.conf': 'shared_buffers = 128MB\n',
  };
}

/** Files every backup leaves out (PostgreSQL's base backup rules): written too, never restored. */
export const EXCLUDED: Record<string, Buffer | string> = {
  'postmaster.pid': '12345\n',
  'pg_wal/000000010000000000000001': randomBytes(1024),
};
