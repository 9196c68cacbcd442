/**
 * List what a base backup copies from a data directory and its tablespaces (I/O), applying the
 * exclusion rules of exclusions.ts. Tablespaces are followed through pg_tblspc/<oid>; only their
 * version directory (PG_<major>_<catversion>) belongs to this cluster.
 *
 * The metadata calls are synchronous: nothing else runs while the walk lists the directory, and
 * one stat per file through the threadpool (a promise, a thread hop and a Stats object each) cost
 * ~40 ms of CPU per thousand files (bench/results/backup.md); readdir stays asynchronous.
 */
import { readdir, readlink } from 'node:fs/promises';
import { lstatSync, statSync, type Dirent } from 'node:fs';
import { isNodeError } from '../common/errors.js';
import { log } from '../common/log.js';
import { exclusionReason, isRelationDirectory, parseRelationFileName, unloggedRelations, type RelationFile } from './exclusions.js';
import type { DirEntry, LinkEntry } from '../catalog/manifest.js';

export interface WalkFile {
  path: string;
  abs: string;
  size: number;
  mode: number;
  mtimeMs: number;
  /** Inode change time (ms): set by every write, rename, chmod and utimes; no call sets it back. */
  ctimeMs?: number;
  /** Set for files in relation directories whose names parse as relation files. */
  relation?: RelationFile;
}

export interface WalkResult {
  dirs: DirEntry[];
  links: LinkEntry[];
  files: WalkFile[];
  excluded: number;
}

function gone(err: unknown): boolean {
  return isNodeError(err, 'ENOENT') || isNodeError(err, 'ENOTDIR');
}

/** The entries of a directory, or undefined when it vanished meanwhile (a dropped table). */
async function readdirIfPresent(abs: string): Promise<Dirent[] | undefined> {
  try {
    return await readdir(abs, { withFileTypes: true });
  } catch (err) {
    if (gone(err)) return undefined;
    throw err;
  }
}

export async function walkDataDirectory(pgdata: string, pgVersion: number): Promise<WalkResult> {
  const out: WalkResult = { dirs: [], links: [], files: [], excluded: 0 };
  const tablespaceVersionPrefix = `PG_${pgVersion}_`;

  const walkDir = async (rel: string, abs: string): Promise<void> => {
    const entries = await readdirIfPresent(abs);
    if (!entries) return;
    const relDir = isRelationDirectory(rel);
    const unlogged = relDir ? unloggedRelations(entries.map((e) => e.name)) : new Set<string>();
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      const childRel = rel === '' ? e.name : `${rel}/${e.name}`;
      const childAbs = `${abs}/${e.name}`;
      if (rel === 'pg_tblspc' && e.isSymbolicLink()) {
        if (!/^\d+$/.test(e.name)) continue;
        const target = await readlink(childAbs);
        out.links.push({ t: 'link', path: childRel, target });
        await walkTablespace(childRel, childAbs);
        continue;
      }
      let st;
      try {
        st = e.isSymbolicLink() ? statSync(childAbs, { throwIfNoEntry: false }) : lstatSync(childAbs, { throwIfNoEntry: false });
      } catch (err) {
        if (gone(err)) continue;
        throw err;
      }
      if (st === undefined) continue; // removed since readdir (a dropped table)
      if (st.isDirectory()) {
        const why = exclusionReason(childRel, 'dir', unlogged);
        if (why !== undefined) {
          log.trace(() => `backup: directory ${childRel} excluded: ${why}`);
          out.excluded++;
          continue;
        }
        out.dirs.push({ t: 'dir', path: childRel, mode: st.mode & 0o7777 });
        await walkDir(childRel, childAbs);
      } else if (st.isFile()) {
        // Exclusion rules are written for paths relative to the data directory or to a tablespace's
        // version directory; map tablespace paths to the same shape (pg_tblspc/<oid>/PG_x/<db>/...).
        const why = exclusionReason(childRel, 'file', unlogged);
        if (why !== undefined) {
          log.trace(() => `backup: file ${childRel} excluded: ${why}`);
          out.excluded++;
          continue;
        }
        const f: WalkFile = { path: childRel, abs: childAbs, size: st.size, mode: st.mode & 0o7777, mtimeMs: Math.floor(st.mtimeMs), ctimeMs: Math.floor(st.ctimeMs) };
        if (relDir) {
          const r = parseRelationFileName(e.name);
          if (r) f.relation = r;
        }
        out.files.push(f);
      } else {
        log.trace(() => `backup: ${childRel} excluded: not a regular file or directory`);
        out.excluded++; // sockets, fifos, devices
      }
    }
  };

  const walkTablespace = async (rel: string, abs: string): Promise<void> => {
    const entries = await readdirIfPresent(abs);
    if (!entries) return;
    for (const e of entries) {
      if (!e.isDirectory() || !e.name.startsWith(tablespaceVersionPrefix)) continue;
      const childRel = `${rel}/${e.name}`;
      const st = lstatSync(`${abs}/${e.name}`);
      out.dirs.push({ t: 'dir', path: childRel, mode: st.mode & 0o7777 });
      await walkDir(childRel, `${abs}/${e.name}`);
    }
  };

  await walkDir('', pgdata.length > 1 && pgdata.endsWith('/') ? pgdata.slice(0, -1) : pgdata);
  return out;
}
