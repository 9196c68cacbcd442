/**
 * Which files an incremental backup takes from its parent without reading them (pure).
 *
 * The rule (pgBackRest's default, with its safety checks): a file whose size and mtime are both
 * what the parent recorded is not read when its mtime lies more than `marginMs` before the
 * moment the parent began to look at files (`copyStartMs` in the parent's manifest header, taken
 * from this host's clock just before its walk). Any write after the parent stat'ed the file
 * happened after that moment, so it left an mtime at or after it (less the filesystem's
 * timestamp granularity and clock lag, which the margin covers: 1 s on ext3-era and 2 s on FAT
 * timestamps, a few ms of the kernel's coarse clock elsewhere): a different mtime, so the file is
 * read. A file written twice within one timestamp tick of an mtime the parent recorded is the
 * case the margin exists for: such a file is always read. Truncate and extend to the same size
 * also set the mtime (ftruncate and write both do). The inode change time (ctime) must be
 * unchanged too, under the same margin: mtime can be set back (touch -d, cp -p, rsync -t, tar,
 * a restore), ctime cannot (every write, rename, chmod and utimes sets it to now).
 *
 * Everything is read (no file is skipped) when:
 * - `--delta` asks for it (content compared by reading, as pgBackRest's --delta);
 * - the parent has no copyStartMs (written by an older pgark);
 * - this host's clock is before the parent's copyStartMs (the clock went back);
 * - a file has an mtime later than now plus the margin (timestamps in the future: the clock or
 *   the files cannot be trusted);
 * - a file's mtime is earlier than the parent recorded for it, or its size changed while its
 *   mtime did not (something set timestamps: a copy with preserved times, a restore, pg_rewind).
 *
 * What a skipped file becomes in the new manifest is reuseEntry's: the parent's references to
 * objects (which name the backup that stored them), and for pieces the parent stored as block
 * deltas a delta of no blocks (every block from the parent: restore/plan.ts).
 */
import type { FileEntry, FilePart } from '../catalog/manifest.js';

/** How far before the parent's copy start an mtime must lie for the file to be skipped. */
export const MTIME_MARGIN_MS = 5000;

export interface UnchangedRule {
  /** --delta: read every file. */
  delta: boolean;
  /** This backup's copy start (host clock, ms). */
  copyStartMs: number;
  /** The parent's copy start from its manifest header; undefined for an older manifest. */
  parentCopyStartMs: number | undefined;
  marginMs?: number;
}

export interface UnchangedDecision {
  /** Paths taken from the parent without reading. */
  unchanged: Set<string>;
  /** Why every file is read, when one of the global rules applies (for the backup's notes). */
  readAll?: string;
}

export interface FileStat {
  path: string;
  size: number;
  mtimeMs: number;
  ctimeMs?: number;
}

export function unchangedFiles(files: readonly FileStat[], parent: ReadonlyMap<string, FileEntry> | undefined, r: UnchangedRule): UnchangedDecision {
  const unchanged = new Set<string>();
  if (!parent) return { unchanged };
  const margin = r.marginMs ?? MTIME_MARGIN_MS;
  const all = (why: string): UnchangedDecision => ({ unchanged: new Set(), readAll: `every file is read: ${why}` });
  if (r.delta) return all('--delta');
  const since = r.parentCopyStartMs;
  if (since === undefined || !Number.isSafeInteger(since) || since <= 0) return all('the parent backup does not record when it began copying (older pgark)');
  if (r.copyStartMs < since) return all(`this host's clock (${new Date(r.copyStartMs).toISOString()}) is before the parent backup's copy start (${new Date(since).toISOString()})`);
  for (const f of files) {
    if (f.mtimeMs > r.copyStartMs + margin) return all(`${f.path} has a modification time in the future (${new Date(f.mtimeMs).toISOString()})`);
    const p = parent.get(f.path);
    if (!p) continue;
    if (f.mtimeMs < p.mtimeMs) return all(`${f.path} has an earlier modification time than in the parent backup (timestamps were set)`);
    if (f.mtimeMs === p.mtimeMs && f.size !== p.size) return all(`${f.path} changed size but not modification time`);
    if (f.mtimeMs !== p.mtimeMs || p.mtimeMs >= since - margin || !reusable(p)) continue;
    // The ctime as well, when the parent recorded one (pgark versions that record copyStartMs do).
    if (p.ctimeMs !== undefined && (f.ctimeMs !== p.ctimeMs || p.ctimeMs >= since - margin)) continue;
    unchanged.add(f.path);
  }
  return { unchanged };
}

/** A parent entry whose content references can be carried over (the parent committed them). */
function reusable(p: FileEntry): boolean {
  if (p.parts) return p.parts.every((x) => x.object !== undefined || x.delta !== undefined || x.size === 0);
  return p.object !== undefined || p.delta !== undefined || p.size === 0;
}

function reusePiece<T extends Pick<FilePart, 'object' | 'delta'>>(p: T, extraN: number): T {
  const out = { ...p };
  if (p.delta) out.delta = { n: extraN, offset: 0, blocks: [] };
  return out;
}

/**
 * The new manifest's entry of a file taken from the parent: its content references (objects
 * keep naming the backup that stored them; a block delta becomes a delta of no blocks, i.e. all
 * from the parent, pointing at object `extraN`, which every backup has: backup_label's, so that
 * a reader that opens it finds it), the parent's sha256 and page checksum failures (the same
 * bytes), and the file's current mode, mtime and ctime.
 */
export function reuseEntry(p: FileEntry, now: { mode: number; mtimeMs: number; ctimeMs?: number }, extraN: number): FileEntry {
  const e: FileEntry = { t: 'file', path: p.path, size: p.size, mode: now.mode, mtimeMs: now.mtimeMs, ...(now.ctimeMs !== undefined ? { ctimeMs: now.ctimeMs } : {}), sha256: p.sha256 };
  if (p.parts) e.parts = p.parts.map((x) => reusePiece(x, extraN));
  else {
    const whole = reusePiece({ object: p.object, delta: p.delta }, extraN);
    if (whole.object) e.object = whole.object;
    if (whole.delta) e.delta = whole.delta;
  }
  if (p.checksumFailures) e.checksumFailures = [...p.checksumFailures];
  return e;
}
