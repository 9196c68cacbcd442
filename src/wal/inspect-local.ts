/**
 * Validate a local WAL file before it is archived: its name, size, and for segments the long
 * page header (magic, system identifier, segment size, page address, timeline).
 */
import { open, stat } from 'node:fs/promises';
import { InvalidInputError } from '../common/errors.js';
import type { ClusterIdentity } from '../repo/stanza-meta.js';
import { parseLongPageHeader, pgVersionForWalMagic, validateSegmentHeader, type LongPageHeader } from './page-header.js';
import { parseSegmentName, type WalFileName } from './segment-name.js';
import { parseTimelineHistory } from './timeline-history.js';

export interface LocalWalFile {
  path: string;
  name: string;
  kind: WalFileName['kind'];
  size: number;
  mtimeMs: number;
  ino: number;
  /** Exact modification and change times (ns) and inode, as the push record keeps them. */
  stamp: FileStamp;
  /** Known for segments and partials (from the page header). */
  identity?: ClusterIdentity;
}

/** What identifies a file's content without reading it: inode, size, mtime and ctime in ns. */
export interface FileStamp {
  ino: bigint;
  size: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
}

const MAX_TEXT_FILE = 1024 * 1024;

export async function inspectLocalWal(path: string, wal: WalFileName, name: string): Promise<LocalWalFile> {
  const st = await stat(path, { bigint: true }).catch((err: NodeJS.ErrnoException) => {
    throw new InvalidInputError(`unable to read '${path}': ${err.code === 'ENOENT' ? 'no such file' : err.message}`);
  });
  if (!st.isFile()) throw new InvalidInputError(`unable to read '${path}': not a regular file`);
  const size = Number(st.size);
  const stamp: FileStamp = { ino: st.ino, size: st.size, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs };
  const base: LocalWalFile = { path, name, kind: wal.kind, size, mtimeMs: Number(st.mtimeNs / 1000n) / 1000, ino: Number(st.ino), stamp };
  if (wal.kind === 'history' || wal.kind === 'backup') {
    if (size > MAX_TEXT_FILE) throw new InvalidInputError(`unable to archive '${path}': ${wal.kind} file larger than 1 MiB`);
    if (wal.kind === 'history') {
      const fh = await open(path, 'r');
      try {
        parseTimelineHistory((await fh.readFile()).toString('utf8'), wal.timeline);
      } finally {
        await fh.close();
      }
    }
    return base;
  }
  const head = Buffer.alloc(64);
  const fh = await open(path, 'r');
  let n: number;
  try {
    n = (await fh.read(head, 0, head.length, 0)).bytesRead;
  } finally {
    await fh.close();
  }
  const bad = (why: string) => new InvalidInputError(`unable to archive '${path}': ${why}`);
  let h: LongPageHeader;
  try {
    // The header says the segment size; the name and the header must then agree on the rest.
    const { segmentSize } = parseLongPageHeader(head.subarray(0, n));
    h = validateSegmentHeader(head.subarray(0, n), { ...parseSegmentName(name.slice(0, 24), segmentSize), walSegmentSize: segmentSize });
  } catch (err) {
    throw bad(`not a WAL segment (${(err as Error).message})`);
  }
  if (size !== h.segmentSize) throw bad(`file is ${size} bytes but its header says wal_segment_size is ${h.segmentSize}`);
  const pgVersion = pgVersionForWalMagic(h.magic)!;
  return { ...base, identity: { systemIdentifier: h.systemIdentifier.toString(), pgVersion, walSegmentSize: h.segmentSize } };
}
