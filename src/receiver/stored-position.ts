/**
 * What the repository already holds for a receiver to resume from: per timeline, the end of
 * stored WAL (whole segments or received pieces), and the stored start of a segment to resume in.
 */
import { Readable } from 'node:stream';
import { NotFoundError } from '../common/errors.js';
import { walKey, walNameOfKey, walPrefix } from '../repo/layout.js';
import type { DecodedStream } from '../repo/object-stream.js';
import type { Repository } from '../repo/repository.js';
import { parseSegmentName, segmentName } from '../wal/segment-name.js';
import { chainStream, listReceived, receivedSegment } from '../wal/received-wal.js';
import type { SegmentPrefix } from './segment-writer.js';

/**
 * End LSN of the stored WAL of each of `timelines` that has any, and the keys of received pieces
 * that are obsolete because their whole segment is archived (left by a receiver that stopped
 * between storing a segment and removing its pieces, or superseded by archive_command).
 */
export async function storedEnds(repo: Repository, timelines: readonly number[], walSegmentSize: number): Promise<{ ends: Map<number, bigint>; obsolete: string[] }> {
  const seg = BigInt(walSegmentSize);
  const out = new Map<number, bigint>();
  const obsolete: string[] = [];
  const raise = (tli: number, end: bigint) => {
    const cur = out.get(tli);
    if (cur === undefined || end > cur) out.set(tli, end);
  };
  for (const tli of timelines) {
    const whole = new Set<string>();
    for await (const o of repo.list(walPrefix(repo.stanza, tli))) {
      const name = walNameOfKey(o.path);
      if (!name || name.length !== 24) continue;
      whole.add(name);
      raise(tli, (parseSegmentName(name, walSegmentSize).segno + 1n) * seg);
    }
    for (const [segment, pieces] of await listReceived(repo, tli)) {
      if (whole.has(segment)) {
        obsolete.push(...pieces.map((p) => p.key));
        continue;
      }
      const r = receivedSegment(segment, pieces);
      if (r.end === 0) continue;
      raise(tli, parseSegmentName(segment, walSegmentSize).segno * seg + BigInt(r.end));
    }
  }
  return { ends: out, obsolete };
}

/**
 * The first `offset` bytes of segment `segno` for a writer resuming on `timeline`: from this
 * timeline's own pieces, else from the segment of the same number on an older timeline (the part
 * before a switch point is the parent's WAL). Undefined when no stored copy reaches `offset`.
 */
export async function storedPrefix(
  repo: Repository, timelines: readonly number[], segno: bigint, offset: number, walSegmentSize: number,
): Promise<SegmentPrefix | undefined> {
  for (const [i, tli] of timelines.entries()) {
    const name = segmentName({ timeline: tli, segno }, walSegmentSize);
    const r = receivedSegment(name, (await listReceived(repo, tli, name)).get(name) ?? []);
    if (r.end >= offset) {
      const own = i === 0 && r.end === offset;
      return { stream: chainStream(repo, r.chain, offset), pieces: own ? r.chain.map((p) => ({ start: p.start, end: p.end, key: p.key })) : [] };
    }
    if (i === 0) continue; // a whole segment of the resume timeline would have put the start past it
    try {
      const body = await repo.getObject(walKey(repo.stanza, name));
      return { stream: limit(body, offset), pieces: [] };
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
    }
  }
  return undefined;
}

/** The first `n` bytes of a verified object; the rest is read (and dropped) so that the checksum is checked. */
async function* take(src: DecodedStream, n: number): AsyncGenerator<Buffer> {
  let left = n;
  for await (const c of src as AsyncIterable<Buffer>) {
    if (left <= 0) continue;
    const part = c.length > left ? c.subarray(0, left) : c;
    left -= part.length;
    yield part;
  }
  await src.verified;
}

function limit(src: DecodedStream, n: number): Readable {
  return Readable.from(take(src, n));
}
