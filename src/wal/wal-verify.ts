/** `pgark wal-verify` and the WAL part of `pgark info`: list once, analyse, optionally re-read. */
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { log } from '../common/log.js';
import { mapPool } from '../common/pool.js';
import type { ObjectInfo } from '../../storage-drivers/types.js';
import { walNameOfKey, walPrefix } from '../repo/layout.js';
import type { Repository } from '../repo/repository.js';
import type { StanzaMeta } from '../repo/stanza-meta.js';
import { readAll } from '../repo/object-stream.js';
import { analyseArchive, type ArchiveReport } from './archive-analysis.js';
import { parseTimelineHistory, type TimelineHistory } from './timeline-history.js';

export interface VerifyReport extends ArchiveReport {
  stanza: string;
  /** Objects that failed re-reading (only with `read`). */
  damaged: Array<{ name: string; error: string }>;
  objectsRead: number;
  ok: boolean;
}

export async function listWal(repo: Repository): Promise<ObjectInfo[]> {
  const out: ObjectInfo[] = [];
  for await (const o of repo.driver.list(walPrefix(repo.stanza))) out.push(o);
  return out;
}

export async function scanArchive(repo: Repository, meta: StanzaMeta): Promise<{ objects: ObjectInfo[]; report: ArchiveReport }> {
  const objects = await listWal(repo);
  const histories = new Map<number, TimelineHistory>();
  for (const o of objects) {
    const name = walNameOfKey(o.path);
    if (!name?.endsWith('.history')) continue;
    const tl = Number.parseInt(name.slice(0, 8), 16);
    histories.set(tl, parseTimelineHistory((await readAll(await repo.getObject(o.path), 1024 * 1024)).toString('utf8'), tl));
  }
  return { objects, report: analyseArchive(objects, meta.walSegmentSize, histories) };
}

export async function walVerify(repo: Repository, opts: { read: boolean; jobs: number }): Promise<VerifyReport> {
  const meta = await repo.requireStanza();
  const { objects, report } = await scanArchive(repo, meta);
  const damaged: VerifyReport['damaged'] = [];
  let objectsRead = 0;
  if (opts.read) {
    await mapPool(objects.filter((o) => walNameOfKey(o.path)), opts.jobs, async (o) => {
      try {
        await pipeline(await repo.getObject(o.path), new Writable({ write: (_c, _e, cb) => cb() }));
        objectsRead++;
      } catch (err) {
        damaged.push({ name: walNameOfKey(o.path)!, error: (err as Error).message });
        log.error(`'${o.path}' failed verification: ${(err as Error).message}`);
      }
    });
  }
  damaged.sort((a, b) => a.name.localeCompare(b.name));
  return { stanza: repo.stanza, ...report, damaged, objectsRead, ok: report.gapCount === 0 && damaged.length === 0 };
}
