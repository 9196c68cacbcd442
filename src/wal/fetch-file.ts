/** Fetch one archived WAL file, verified, into a local path written atomically. */
import { IntegrityError } from '../common/errors.js';
import { writeFileAtomic } from '../common/fs-atomic.js';
import { withRetry } from '../common/retry.js';
import { walKey } from '../repo/layout.js';
import type { Repository } from '../repo/repository.js';

/**
 * Decode the archived `name` into `dest`. The destination appears only after every byte has
 * been verified against the object's sha256. Transient failures anywhere in the transfer
 * restart it, within the repository's retry policy.
 */
export async function fetchWalFile(repo: Repository, name: string, dest: string): Promise<number> {
  const key = walKey(repo.stanza, name);
  return withRetry(`fetch '${name}'`, repo.retry, async () => writeFileAtomic(dest, await repo.getObject(key))).catch((err: unknown) => {
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
  const { readReceivedSegment, chainStream } = await import('../receiver/received-wal.js');
  return withRetry(`fetch received '${name}'`, repo.retry, async () => {
    const r = await readReceivedSegment(repo, name);
    if (r.end === 0) return 0;
    await writeFileAtomic(dest, chainStream(repo, r.chain, r.end, walSegmentSize));
    return r.end;
  });
}
