/** `pgark wal-verify` and the WAL part of `pgark info`: list once, analyse, optionally re-read. */
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { log } from '../common/log.js';
import { mapPool } from '../common/pool.js';
import type { ObjectInfo } from '../../storage-drivers/types.js';
import { IntegrityError } from '../common/errors.js';
import { receivedPieceOfKey, walNameOfKey, walPrefix } from '../repo/layout.js';
import type { Repository } from '../repo/repository.js';
import type { StoredPiece } from './received-wal.js';
import { clusterForWal, upgradeBoundaries, type StanzaMeta } from '../repo/stanza-meta.js';
import { readAll } from '../repo/object-stream.js';
import { analyseArchive, type ArchiveReport } from './archive-analysis.js';
import { parseTimelineHistory, type TimelineHistory } from './timeline-history.js';
import { checkedWalStream } from './checked-stream.js';
import { damaged as damagedObject } from './fetch-file.js';
import { SegmentShapeError, type SegmentCheckTarget } from './segment-check.js';
import { classifyWalFileName } from './segment-name.js';

export interface VerifyReport extends ArchiveReport {
  stanza: string;
  /** Objects that failed re-reading (only with `read`). */
  damaged: Array<{ name: string; error: string }>;
  objectsRead: number;
  /** Segments pgark receive has stored in part (the one being received, or the end of an old timeline). */
  received: ReceivedRange[];
  ok: boolean;
}

export interface ReceivedRange {
  segment: string;
  /** Bytes stored from the segment's start. */
  bytes: number;
  pieces: number;
  /** The whole segment is archived too (its pieces are about to be removed). */
  archived: boolean;
  lastModified?: string;
}

/** What pgark receive stored of segments not (yet) archived whole. */
export async function receivedRanges(repo: Repository, archivedNames: ReadonlySet<string>): Promise<{ ranges: ReceivedRange[]; keys: string[]; journals: Map<string, StoredPiece> }> {
  const { listReceived, receivedSegment } = await import('./received-wal.js');
  const ranges: ReceivedRange[] = [];
  const keys: string[] = [];
  const journals = new Map<string, StoredPiece>();
  for (const [segment, pieces] of await listReceived(repo)) {
    const r = receivedSegment(segment, pieces);
    keys.push(...r.chain.map((p) => p.key));
    for (const p of r.chain) if (p.journal) journals.set(p.key, p);
    ranges.push({
      segment, bytes: r.end, pieces: r.chain.length, archived: archivedNames.has(segment),
      ...(r.lastModifiedMs ? { lastModified: new Date(r.lastModifiedMs).toISOString() } : {}),
    });
  }
  ranges.sort((a, b) => a.segment.localeCompare(b.segment));
  return { ranges, keys, journals };
}

export async function listWal(repo: Repository): Promise<ObjectInfo[]> {
  const out: ObjectInfo[] = [];
  for await (const o of repo.list(walPrefix(repo.stanza))) out.push(o);
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
  return { objects, report: analyseArchive(objects, meta.walSegmentSize, histories, upgradeBoundaries(meta)) };
}

export async function walVerify(repo: Repository, opts: { read: boolean; jobs: number }): Promise<VerifyReport> {
  const meta = await repo.requireStanza();
  const { objects, report } = await scanArchive(repo, meta);
  const damaged: VerifyReport['damaged'] = [];
  let objectsRead = 0;
  const archived = new Set(objects.map((o) => walNameOfKey(o.path)).filter((n): n is string => !!n));
  const received = await receivedRanges(repo, archived);
  if (opts.read) {
    // Besides its checksum: a segment must be a whole segment (size, page headers), a partial
    // the segment size, a received piece exactly the bytes its key names.
    const toRead: Array<{ key: string; name: string; target?: SegmentCheckTarget; pieceSize?: number }> = [
      ...objects.filter((o) => walNameOfKey(o.path)).map((o) => {
        const name = walNameOfKey(o.path)!;
        const kind = classifyWalFileName(name)?.kind;
        const target = kind === 'segment' || kind === 'partial'
          ? { name, size: clusterForWal(meta, name).walSegmentSize, systemIdentifier: BigInt(clusterForWal(meta, name).systemIdentifier) }
          : undefined;
        return { key: o.path, name, ...(target ? { target } : {}) };
      }),
      ...received.keys.map((key) => {
        const ref = receivedPieceOfKey(key);
        return { key, name: key.slice(key.indexOf('/received/') + 1), ...(ref ? { pieceSize: ref.end - ref.start } : {}) };
      }),
    ];
    await mapPool(toRead, opts.jobs, async (o) => {
      try {
        // A received-WAL journal: its records' checksums, read again (received-journal.ts).
        const journal = received.journals.get(o.key);
        if (journal) {
          await (await import('./received-wal.js')).verifyJournal(repo, journal);
          objectsRead++;
          return;
        }
        const body = await repo.getObject(o.key);
        let size = 0;
        await pipeline(o.target ? checkedWalStream(body, o.target) : body, new Writable({ write: (c: Buffer, _e, cb) => { size += c.length; cb(); } }));
        if (o.pieceSize !== undefined && size !== o.pieceSize) {
          throw new IntegrityError(`unable to read '${o.key}': the stored piece is ${size} bytes, its name says ${o.pieceSize}`);
        }
        objectsRead++;
      } catch (err) {
        if (err instanceof SegmentShapeError) err = damagedObject(o.key, err);
        damaged.push({ name: o.name, error: (err as Error).message });
        log.error(`'${o.key}' failed verification: ${(err as Error).message}`);
      }
    });
  }
  damaged.sort((a, b) => a.name.localeCompare(b.name));
  return { stanza: repo.stanza, ...report, damaged, objectsRead, received: received.ranges, ok: report.gapCount === 0 && damaged.length === 0 };
}
