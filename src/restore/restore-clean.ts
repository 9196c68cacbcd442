/**
 * Restore's cleaning of a target that is not empty: --force empties the data directory and the
 * tablespace directories; --delta removes what the backup does not hold and every symbolic link
 * restore did not create.
 */
import { readdir, readlink, rm, unlink } from 'node:fs/promises';
import { log } from '../common/log.js';
import { join } from 'node:path';
import { isNodeError } from '../common/errors.js';
import type { Manifest } from '../catalog/manifest.js';
import type { RestoreWorkerInit } from './restore-worker.js';
import { targetPath } from './restore-worker-paths.js';

/** Where global/pg_control is written until the restore is complete (restore.ts renames it last). */
export const HOLD_BACK = 'global/pg_control';
export const HOLD_BACK_AS = 'global/pg_control.pgark-restore';

/** --force: empty the data directory and each tablespace directory that is not empty. */
export async function emptyTargets(pgdata: string, tablespaces: Record<string, string>): Promise<void> {
  for (const name of await readdir(pgdata)) await rm(join(pgdata, name), { recursive: true, force: true });
  for (const loc of Object.values(tablespaces)) {
    if ((await isEmptyDir(loc)) === false) for (const name of await readdir(loc)) await rm(join(loc, name), { recursive: true, force: true });
  }
}

/** Whether a directory is empty; null when it does not exist. */
export async function isEmptyDir(dir: string): Promise<boolean | null> {
  try {
    return (await readdir(dir)).length === 0;
  } catch (err) {
    if (isNodeError(err, 'ENOENT')) return null;
    throw err;
  }
}

/** A symbolic link --delta found in the target and removed (restore never writes through one). */
export interface RemovedLink {
  path: string;
  target: string;
}

const MAX_LINK_NOTES = 10;

/** Notes on the links --delta replaced: the DBA should know something linked out of the target. */
export function linkNotes(links: readonly RemovedLink[]): string[] {
  const notes = links.slice(0, MAX_LINK_NOTES).map((l) =>
    `removed the symbolic link '${l.path}' -> '${l.target}' from the target (restore never writes through a link it did not create; ` +
    `what the backup holds there was restored in its place, and the link's target was not touched)` +
    (/\/pg_wal$/.test(l.path) ? '; to keep WAL on another disk, move pg_wal there and link it again before starting the server' : ''));
  if (links.length > MAX_LINK_NOTES) notes.push(`removed ${links.length - MAX_LINK_NOTES} more symbolic links from the target`);
  return notes;
}

/**
 * --delta: remove what the backup does not hold (files, directories), and every symbolic link
 * except the pg_tblspc/<oid> links of the tablespaces restored (restore re-creates those): a
 * link in a data directory or tablespace is never followed, whether the backup holds a file or a
 * directory at its name or nothing. Tablespace locations themselves are walked separately.
 */
export async function removeExtras(pgdata: string, m: Manifest, tablespaces: Record<string, string>, init: RestoreWorkerInit): Promise<{ removed: number; links: RemovedLink[] }> {
  // pg_control is removed first (not counted): an interrupted delta restore must not be startable.
  await rm(join(pgdata, HOLD_BACK), { force: true });
  const real = { ...init, holdBack: {} };
  const keepFiles = new Set<string>([...m.files.keys()].map((p) => targetPath(real, p)));
  const keepDirs = new Set<string>(m.dirs.map((d) => targetPath(init, d.path)));
  keepDirs.add(pgdata);
  for (const [oid, loc] of Object.entries(tablespaces)) {
    keepDirs.add(loc);
    keepDirs.add(join(pgdata, 'pg_tblspc'));
    keepFiles.add(join(pgdata, 'pg_tblspc', oid)); // the link itself
  }
  const ownLinks = new Set(Object.keys(tablespaces).map((oid) => join(pgdata, 'pg_tblspc', oid)));
  let removed = 0;
  const links: RemovedLink[] = [];
  const walk = async (dir: string): Promise<void> => {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      if (isNodeError(err, 'ENOENT')) return;
      throw err;
    }
    for (const e of entries) {
      const abs = join(dir, e.name);
      if (e.isSymbolicLink()) {
        if (ownLinks.has(abs)) continue;
        const target = await readlink(abs).catch(() => '?');
        await unlink(abs);
        log.trace(() => `restore: --delta: link ${abs} -> ${target} removed (not in the backup)`);
        links.push({ path: abs, target });
        removed++;
      } else if (e.isDirectory()) {
        if (keepDirs.has(abs)) await walk(abs);
        else {
          await rm(abs, { recursive: true, force: true });
          log.trace(() => `restore: --delta: directory ${abs} removed (not in the backup)`);
          removed++;
        }
      } else if (!keepFiles.has(abs)) {
        await rm(abs, { force: true });
        log.trace(() => `restore: --delta: file ${abs} removed (not in the backup)`);
        removed++;
      }
    }
  };
  await walk(pgdata);
  for (const loc of Object.values(tablespaces)) await walk(loc);
  return { removed, links };
}
