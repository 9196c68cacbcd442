/**
 * The file manifest of a backup (pure): what a backup holds and where each byte is stored.
 * Stored as one object `<stanza>/backup/<id>/manifest` of newline-delimited JSON records:
 * one `header`, then `dir`, `link` and `file` records in any order. Its sha256 and size are
 * recorded in the catalog entry, which is written after it.
 *
 * Where a file's content lives:
 * - `object`: the whole content is stored in object `n` of backup `backup` (this backup, or an
 *   ancestor when an incremental found the file unchanged), starting at raw byte `offset`.
 * - `delta`: only the blocks listed in `blocks` ([first, count] ranges, ascending) are stored,
 *   back to back, in object `n` of this backup from raw byte `offset`; every other block below
 *   `size / blockSize` is the same block of the same path in the parent backup.
 * - `parts`: a large file is cut at multiples of PART_SIZE into parts stored (whole or as block
 *   deltas, as above) in objects of their own, so that one large file is copied by several jobs.
 *   Each part has its own sha256; the file's `sha256` is then the sha256 of the parts' sha256
 *   values (hex, concatenated in order).
 * - none of these: an empty file (size 0).
 * A `delta` of no blocks (an incremental took the file from its parent without reading it,
 * backup/unchanged.ts) holds every block in the parent; its `n` names an object of the backup
 * that exists (backup_label's), so readers that open it find it.
 */
import { createHash } from 'node:crypto';
import { IntegrityError } from '../common/errors.js';

export const MANIFEST_FORMAT = 1;

export interface ManifestHeader {
  t: 'header';
  format: number;
  id: string;
  type: 'full' | 'incr';
  parent?: string;
  pgVersion: number;
  /** data_directory of the source cluster. */
  pgdata: string;
  blockSize: number;
  /** Blocks per relation segment file (RELSEG_SIZE). */
  relsegBlocks: number;
  tablespaces: TablespaceInfo[];
  /**
   * Owner of the source data directory (ids, and names where the source host knows them).
   * Absent in backups of older pgark versions; restore as root uses it (restore-owner.ts).
   */
  owner?: { uid: number; gid: number; user?: string; group?: string };
  /**
   * This host's clock (ms since the epoch) just before the backup listed the data directory:
   * every size and mtime recorded was read after it. An incremental on this backup skips files
   * whose size and mtime are unchanged and whose mtime lies well before it (backup/unchanged.ts).
   * Absent in backups of older pgark versions (their children read every file).
   */
  copyStartMs?: number;
}

export interface TablespaceInfo {
  oid: number;
  name: string;
  /** Location on the source host. */
  location: string;
}

export interface DirEntry {
  t: 'dir';
  path: string;
  mode: number;
}

/** A symbolic link: tablespaces under pg_tblspc/. */
export interface LinkEntry {
  t: 'link';
  path: string;
  target: string;
}

export interface ObjectRef {
  backup: string;
  n: number;
  offset: number;
}

export interface DeltaRef {
  n: number;
  offset: number;
  blocks: Array<[number, number]>;
}

/** Large files are stored in parts of this many bytes (a multiple of every block size). */
export const PART_SIZE = 128 * 1024 * 1024;

export interface FilePart {
  /** Byte offset of the part in the file. */
  start: number;
  size: number;
  sha256: string;
  object?: ObjectRef;
  delta?: DeltaRef;
}

export interface FileEntry {
  t: 'file';
  /** Relative to the data directory; tablespace files under pg_tblspc/<oid>/... */
  path: string;
  size: number;
  mode: number;
  mtimeMs: number;
  /**
   * Inode change time (ms) when the backup listed the file: every write, rename, chmod and
   * utimes sets it to now, and nothing sets it back. An incremental takes a file unread only when
   * it did not change either (backup/unchanged.ts). Absent in backups of older pgark versions.
   */
  ctimeMs?: number;
  /** sha256 (hex) of the whole file content as backed up. */
  sha256: string;
  object?: ObjectRef;
  delta?: DeltaRef;
  parts?: FilePart[];
  /** Block numbers (within this file) whose page checksum did not verify. */
  checksumFailures?: number[];
}

export type ManifestRecord = ManifestHeader | DirEntry | LinkEntry | FileEntry;

export interface Manifest {
  header: ManifestHeader;
  dirs: DirEntry[];
  links: LinkEntry[];
  files: Map<string, FileEntry>;
}

export function* manifestLines(m: Manifest): Generator<string> {
  yield JSON.stringify(m.header) + '\n';
  for (const d of m.dirs) yield JSON.stringify(d) + '\n';
  for (const l of m.links) yield JSON.stringify(l) + '\n';
  for (const f of m.files.values()) yield JSON.stringify(f) + '\n';
}

/** Number of blocks stored by a delta. */
export function deltaBlockCount(d: DeltaRef): number {
  return d.blocks.reduce((n, [, c]) => n + c, 0);
}

/** Turn ascending block numbers into [first, count] ranges. */
export function toRanges(blocks: Iterable<number>): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (const b of blocks) {
    const last = out[out.length - 1];
    if (last && last[0] + last[1] === b) last[1]++;
    else out.push([b, 1]);
  }
  return out;
}

function bad(where: string, line: number, why: string): IntegrityError {
  return new IntegrityError(`unable to read manifest '${where}' line ${line}: ${why}`);
}

function checkPath(p: unknown, where: string, line: number): string {
  if (typeof p !== 'string' || p === '' || p.startsWith('/') || p.split('/').some((s) => s === '' || s === '.' || s === '..')) {
    throw bad(where, line, `unsafe or invalid path ${JSON.stringify(p)}`);
  }
  return p;
}

const isNat = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;

export function parseManifest(text: string, where: string): Manifest {
  const lines = text.split('\n');
  let header: ManifestHeader | undefined;
  const dirs: DirEntry[] = [];
  const links: LinkEntry[] = [];
  const files = new Map<string, FileEntry>();
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line === '') continue;
    let r: ManifestRecord;
    try {
      r = JSON.parse(line) as ManifestRecord;
    } catch {
      throw bad(where, i + 1, 'invalid JSON');
    }
    if (typeof r !== 'object' || r === null || Array.isArray(r)) throw bad(where, i + 1, 'not a JSON object');
    switch (r.t) {
      case 'header':
        if (header) throw bad(where, i + 1, 'second header');
        if (r.format !== MANIFEST_FORMAT) throw bad(where, i + 1, `manifest format ${String(r.format)} is not supported (supports ${MANIFEST_FORMAT})`);
        if (!isNat(r.blockSize) || r.blockSize === 0 || !isNat(r.relsegBlocks) || !Array.isArray(r.tablespaces)) throw bad(where, i + 1, 'header is missing fields');
        header = r;
        break;
      case 'dir':
        checkPath(r.path, where, i + 1);
        dirs.push(r);
        break;
      case 'link':
        checkPath(r.path, where, i + 1);
        if (typeof r.target !== 'string' || !r.target.startsWith('/')) throw bad(where, i + 1, 'link target must be an absolute path');
        links.push(r);
        break;
      case 'file': {
        checkPath(r.path, where, i + 1);
        if (!isNat(r.size) || typeof r.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(r.sha256)) throw bad(where, i + 1, `file '${r.path}' has no valid size or sha256`);
        if (r.object && (typeof r.object.backup !== 'string' || !isNat(r.object.n) || !isNat(r.object.offset))) throw bad(where, i + 1, `file '${r.path}' has an invalid object reference`);
        if (r.delta && (!isNat(r.delta.n) || !isNat(r.delta.offset) || !Array.isArray(r.delta.blocks))) throw bad(where, i + 1, `file '${r.path}' has an invalid delta`);
        if (r.parts !== undefined) {
          if (!Array.isArray(r.parts) || r.parts.some((p) => typeof p !== 'object' || p === null || !isNat(p.start) || !isNat(p.size) || typeof p.sha256 !== 'string' || (!p.object && !p.delta && p.size !== 0))) {
            throw bad(where, i + 1, `file '${r.path}' has invalid parts`);
          }
        } else if (!r.object && !r.delta && r.size !== 0) throw bad(where, i + 1, `file '${r.path}' has no content reference`);
        if (files.has(r.path)) throw bad(where, i + 1, `file '${r.path}' listed twice`);
        files.set(r.path, r);
        break;
      }
      default:
        throw bad(where, i + 1, `unknown record type ${JSON.stringify((r as { t?: unknown }).t)}`);
    }
  }
  if (!header) throw bad(where, 1, 'no header');
  return { header, dirs, links, files };
}

/** The pieces of a file's content: its parts, or the whole file as one piece. */
export function piecesOf(f: FileEntry): FilePart[] {
  if (f.parts) return f.parts;
  const p: FilePart = { start: 0, size: f.size, sha256: f.sha256 };
  if (f.object) p.object = f.object;
  if (f.delta) p.delta = f.delta;
  return [p];
}

/** The file-level sha256 of a file stored in parts. */
export function partsDigest(parts: readonly FilePart[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p.sha256);
  return h.digest('hex');
}
