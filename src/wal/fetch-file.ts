/** Fetch one archived WAL file, verified, into a local path written atomically. */
import { IntegrityError } from '../common/errors.js';
import { writeFileAtomic } from '../common/fs-atomic.js';
import { withRetry } from '../common/retry.js';
import { walKey } from '../repo/layout.js';
import type { ObjectReader } from '../repo/object-reader.js';
import type { Repository } from '../repo/repository.js';
import { clusterForWal } from '../repo/stanza-meta.js';
import { SegmentChecker, SegmentShapeError, type SegmentCheckTarget } from './segment-check.js';
import { classifyWalFileName } from './segment-name.js';

/**
 * What a stored WAL object must hold besides its checksum: a segment or partial exactly the
 * stanza's segment size, a segment with continuous page headers of the stanza's cluster.
 */
export async function walObjectTarget(repo: Repository, name: string): Promise<SegmentCheckTarget | undefined> {
  const kind = classifyWalFileName(name)?.kind;
  if (kind !== 'segment' && kind !== 'partial') return undefined;
  const meta = await repo.readStanza();
  if (!meta) return undefined;
  // After `stanza-upgrade`, WAL below the current cluster's start is the prior cluster's.
  const c = clusterForWal(meta, name);
  return { name, size: c.walSegmentSize, systemIdentifier: BigInt(c.systemIdentifier) };
}

/** A checksum-valid object that is not a whole WAL file is damage, like a checksum mismatch. */
export function damaged(key: string, err: SegmentShapeError): IntegrityError {
  return new IntegrityError(`unable to read '${key}': the stored object is damaged: ${err.message}`, { cause: err });
}

/**
 * The reader's bytes, each chunk handed on before the next is read (the reader reuses its
 * buffer), through a SegmentChecker for `target`. It ends only after the reader has verified the
 * object's trailer (sha256, sizes) and the checker the whole file; the reader is closed however
 * the iteration stops.
 */
export async function* checkedReaderChunks(reader: ObjectReader, target: SegmentCheckTarget | undefined): AsyncGenerator<Buffer> {
  const checker = target ? new SegmentChecker(target) : undefined;
  try {
    for (let chunk = await reader.next(); chunk !== null; chunk = await reader.next()) {
      checker?.update(chunk);
      yield chunk;
    }
    checker?.finish();
  } finally {
    await reader.close();
  }
}

/**
 * Decode the archived `name` into `dest`. The destination appears only after every byte has
 * been verified against the object's sha256 and, for a segment, found to be a whole segment
 * (size and page headers). Transient failures anywhere in the transfer restart it, within the
 * repository's retry policy. The object is pulled chunk by chunk (Repository.readObject: an
 * unencrypted lz4 object is decoded in JavaScript into one reused buffer, so a wal-fetch never
 * loads lz4-napi nor leaves decoded blocks behind).
 */
export async function fetchWalFile(repo: Repository, name: string, dest: string): Promise<number> {
  const key = walKey(repo.stanza, name);
  const target = await walObjectTarget(repo, name);
  return withRetry(`fetch '${name}'`, repo.retry, async () => {
    const reader = await repo.readObject(key);
    return writeFileAtomic(dest, checkedReaderChunks(reader, target));
  }).catch((err: unknown) => {
    if (err instanceof SegmentShapeError) throw damaged(key, err);
    // Codec errors ("corrupt lz4 stream: ...") do not say which object failed.
    if (err instanceof IntegrityError && !err.message.includes(key)) {
      throw new IntegrityError(`unable to read '${key}': ${err.message}`, { cause: err });
    }
    throw err;
  });
}

/**
 * Serve a segment that is only partly received (pgark receive's newest segment) the way the
 * PostgreSQL docs describe using a `.partial` file: its received bytes, zero-filled to the
 * segment size, under the segment's own name. Recovery replays up to the last complete record
 * and ends there. Returns the received size, 0 when nothing was received for it.
 */
export async function fetchReceivedSegment(repo: Repository, name: string, dest: string, walSegmentSize: number): Promise<number> {
  const { readReceivedSegment, chainStream } = await import('./received-wal.js');
  return withRetry(`fetch received '${name}'`, repo.retry, async () => {
    const r = await readReceivedSegment(repo, name);
    if (r.end === 0) return 0;
    await writeFileAtomic(dest, chainStream(repo, r.chain, r.end, walSegmentSize));
    return r.end;
  });
}
