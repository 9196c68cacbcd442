/**
 * `pgark wal-fetch <name> <destination>`: restore_command. Exit 0 restored, 1 not archived,
 * and above 125 for every other failure so PostgreSQL stops instead of promoting early.
 */
import { resolve } from 'node:path';
import { ConfigError, NotFoundError } from '../common/errors.js';
import { log } from '../common/log.js';
import type { Settings } from '../config/resolve.js';
import type { Repository } from '../repo/repository.js';
import { auditEvent, writeAudit } from './audit.js';
import { fetchReceivedSegment, fetchWalFile } from './fetch-file.js';
import { cleanPrefetchArea, followingSegments, namesToPrefetch } from './prefetch.js';
import { prefetchDirOf, takePrefetched } from './fast-path.js';
import { assertWalFileName } from './segment-name.js';

export interface WalFetchResult {
  status: 'restored' | 'missing';
  source?: 'prefetch' | 'repository' | 'received';
  /** Segments a background worker should download next. */
  prefetch: string[];
  prefetchDir: string;
}

/**
 * "Not archived" (exit 1) lets PostgreSQL end recovery and promote, so it is only answered when
 * the archive itself is readable. A repository path that is wrong, not mounted, or below a
 * regular file (ENOTDIR) also reads as "no such object": then the stanza is missing as well,
 * and that is an error (exit above 125), never "missing".
 */
async function assertArchiveReadable(repo: Repository, name: string): Promise<void> {
  if (await repo.readStanza()) return;
  throw new ConfigError(
    `unable to fetch '${name}': stanza '${repo.stanza}' not found in repository '${repo.driver.location}' ` +
    '(wrong path or stanza, or storage not mounted); not reporting the file as missing',
  );
}

export async function walFetch(repo: Repository, settings: Settings, name: string, destArg: string): Promise<WalFetchResult> {
  const wal = assertWalFileName(name);
  const dest = resolve(destArg);
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
        await assertArchiveReadable(repo, name);
        log.info(`'${name}' is not in the archive`);
        return { status: 'missing', prefetch: [], prefetchDir };
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
