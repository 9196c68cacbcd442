/**
 * `pgark wal-fetch <name> <destination>`: restore_command. Exit 0 restored, 1 not archived,
 * and above 125 for every other failure so PostgreSQL stops instead of promoting early.
 */
import { constants } from 'node:fs';
import { access, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { ConfigError, NotFoundError } from '../common/errors.js';
import { log } from '../common/log.js';
import type { Settings } from '../config/resolve.js';
import type { Repository } from '../repo/repository.js';
import { auditEvent, writeAudit } from './audit.js';
import { fetchReceivedSegment, fetchWalFile } from './fetch-file.js';
import { cleanPrefetchArea, followingSegments, namesToPrefetch } from './prefetch.js';
import { prefetchDirOf, takePrefetched } from './fast-path.js';
import { assertWalFileName } from './segment-name.js';
import { ensureDir } from './spool.js';

export interface WalFetchResult {
  status: 'restored' | 'missing';
  source?: 'prefetch' | 'repository' | 'received';
  /** Segments a background worker should download next. */
  prefetch: string[];
  prefetchDir: string;
  /** 'missing' only: the stanza exists (false: a standby waiting for its primary's first archived file). */
  stanzaExists?: boolean;
}

/**
 * "Not archived" (exit 1) lets PostgreSQL end archive recovery and promote, so it is only
 * answered when the archive itself is readable. A repository path that is wrong, not mounted, or
 * below a regular file (ENOTDIR) also reads as "no such object": then the stanza is missing as
 * well, and that is an error (exit above 125), never "missing".
 *
 * A standby (standby.signal in the data directory, restore_command's working directory) only
 * ever waits for a file that is missing, and stops for good on an exit above 125: there a
 * readable repository without the stanza means "not archived yet" (its primary has not archived
 * its first file), answered as missing. Returns whether the stanza exists (false: that standby case).
 */
async function answerMissingStanza(repo: Repository, name: string, dest: string, dataDir: string): Promise<boolean> {
  if (await repo.readStanza()) return true;
  const where = `stanza '${repo.stanza}' not found in repository '${repo.location}'`;
  if (await isStandby(dataDir)) {
    if (await repositoryRootReadable(repo)) {
      await noteStandbyWaiting(dest, `${where}: on this standby (standby.signal) that means nothing is archived yet; answering "not archived" until it is`);
      log.debug(`'${name}' is not in the archive (no stanza yet)`);
      return false;
    }
    throw new ConfigError(`unable to fetch '${name}': ${where}, and the repository location is missing or unreadable (wrong path, or storage not mounted); not reporting the file as missing`);
  }
  throw new ConfigError(`unable to fetch '${name}': ${where} (wrong path or stanza, or storage not mounted); not reporting the file as missing`);
}

/** PostgreSQL is in standby mode when standby.signal exists (it wins over recovery.signal). */
async function isStandby(dataDir: string): Promise<boolean> {
  return stat(join(dataDir, 'standby.signal')).then((st) => st.isFile(), () => false);
}

/**
 * The repository location exists and can be listed, though this stanza is not in it: it holds
 * something (another stanza), or, on a filesystem, its root is a readable directory. On the other
 * stores (SFTP, object stores) a listing without error counts: a wrong path or prefix cannot be
 * told from an empty repository there until repositories carry a marker object; on a standby
 * that only means it keeps waiting, with the reason logged.
 */
async function repositoryRootReadable(repo: Repository): Promise<boolean> {
  try {
    for await (const _object of repo.list('')) return true;
  } catch (err) {
    log.warn(`unable to list repository '${repo.location}': ${(err as Error).message}`);
    return false;
  }
  if (repo.driverName !== 'fs') return true;
  try {
    const root = repo.location;
    if (!(await stat(root)).isDirectory()) return false;
    await access(root, constants.R_OK | constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Say why a standby waits at info level once, not on each of PostgreSQL's retries (one every
 * wal_retrieve_retry_interval): `<pg_wal>/.pgark/standby-waiting` remembers what was said.
 */
async function noteStandbyWaiting(dest: string, message: string): Promise<void> {
  const note = standbyWaitingNote(dest);
  const said = await readFile(note, 'utf8').catch(() => undefined);
  if (said === `${message}\n`) {
    log.debug(message);
    return;
  }
  log.info(message);
  try {
    await ensureDir(dirname(note));
    await writeFile(note, `${message}\n`, { mode: 0o600 });
  } catch (err) {
    log.debug(`unable to write '${note}': ${(err as Error).message}`);
  }
}

function standbyWaitingNote(dest: string): string {
  return join(dirname(dest), '.pgark', 'standby-waiting');
}

/**
 * `dataDir`: where PostgreSQL runs restore_command (its data directory): standby.signal is looked
 * for there. `walDir`: the pg_wal directory (default: the destination's), for pgark's notes in it
 * (the prefetch worker answers requests into its prefetch area).
 */
export async function walFetch(repo: Repository, settings: Pick<Settings, 'prefetch' | 'fetchReceived'>, name: string, destArg: string, dataDir = process.cwd(), walDir?: string): Promise<WalFetchResult> {
  const wal = assertWalFileName(name);
  const dest = resolve(destArg);
  const noteDest = walDir === undefined ? dest : join(walDir, name);
  const prefetchDir = prefetchDirOf(dest);
  const started = Date.now();
  const usePrefetch = wal.kind === 'segment' && settings.prefetch > 0;
  let source: WalFetchResult['source'];

  if (usePrefetch && takePrefetched(name, dest)) source = 'prefetch';
  if (!source) {
    try {
      const size = await fetchWalFile(repo, name, dest);
      await writeAudit(repo, [auditEvent('fetch', name, started, { size })]);
      source = 'repository';
      // The stanza exists now: a later absence is worth saying again.
      await rm(standbyWaitingNote(noteDest), { force: true });
    } catch (err) {
      if (err instanceof NotFoundError && wal.kind === 'segment' && settings.fetchReceived) {
        const meta = await repo.readStanza();
        const size = meta ? await fetchReceivedSegment(repo, name, dest, meta.walSegmentSize) : 0;
        if (size > 0) {
          await writeAudit(repo, [auditEvent('fetch', name, started, { size, detail: `received partial segment (${size} bytes streamed, zero-padded)` })]);
          log.info(`restored '${name}' from WAL received by pgark receive (${size} bytes, the rest zero-filled) in ${Date.now() - started} ms`);
          // A partial segment is the newest WAL there is: nothing after it to prefetch.
          return { status: 'restored', source: 'received', prefetch: [], prefetchDir };
        }
      }
      if (err instanceof NotFoundError) {
        const stanzaExists = await answerMissingStanza(repo, name, noteDest, dataDir);
        log.info(`'${name}' is not in the archive`);
        return { status: 'missing', prefetch: [], prefetchDir, stanzaExists };
      }
      await writeAudit(repo, [auditEvent('error', name, started, { detail: (err as Error).message })]);
      throw err;
    }
  }
  let prefetch: string[] = [];
  if (usePrefetch) {
    await cleanPrefetchArea(prefetchDir, name);
    const meta = await repo.requireStanza();
    prefetch = await namesToPrefetch(prefetchDir, followingSegments(name, meta.walSegmentSize, settings.prefetch));
  }
  log.info(`restored '${name}' from ${source} in ${Date.now() - started} ms`);
  return { status: 'restored', source, prefetch, prefetchDir };
}
