/**
 * Push one WAL file into the repository: never overwrite, succeed when an identical copy is
 * already there, fail with ArchiveMismatchError when a different one is. The bytes are checked
 * while they stream (exactly `size` bytes; for a segment, continuous page headers): a read that
 * ends early or bytes that are not a whole segment fail the upload before it can commit, so
 * nothing is stored and a later push of the real file succeeds.
 */
import { AlreadyExistsError, ArchiveMismatchError, InvalidInputError } from '../common/errors.js';
import { sha256File } from '../common/fs-atomic.js';
import { BufferPool } from '../io/buffer-pool.js';
import type { CodecName } from '../io/codec.js';
import { pooledFileStream } from '../io/pooled-file-stream.js';
import { walKey } from '../repo/layout.js';
import type { Repository } from '../repo/repository.js';
import { auditEvent, type AuditEvent } from './audit.js';
import { checkedWalStream } from './checked-stream.js';
import type { LocalWalFile } from './inspect-local.js';
import { SegmentShapeError } from './segment-check.js';
import { encodeSegmentObject } from './segment-object.js';
import { onePassCodec } from '../repo/one-pass-encoder.js';
import { isSegmentOrPartialName } from '../pg/wal-names.js';

/** What a push needs of a local file (the path, its WAL name and its expected size). */
export type WalFileToPush = Pick<LocalWalFile, 'path' | 'name' | 'size'>;

export interface PushResult {
  status: 'stored' | 'exists';
  size: number;
  storedSize: number;
  sha256: string;
  event: AuditEvent;
}

export interface PushOptions {
  codec: CodecName;
  level?: number | undefined;
}

async function compareExisting(repo: Repository, key: string, file: WalFileToPush, storedSize: number, started: number): Promise<PushResult> {
  const [trailer, local] = await Promise.all([repo.readTrailer(key, storedSize), sha256File(file.path)]);
  if (await repo.trailerMatches(key, trailer, local.sha256, local.size)) {
    return { status: 'exists', size: local.size, storedSize, sha256: local.sha256, event: auditEvent('push-exists', file.name, started, { size: local.size, storedSize, sha256: local.sha256 }) };
  }
  if (trailer.rawSize !== local.size && isSegmentOrPartialName(file.name)) {
    throw new ArchiveMismatchError(
      `archive mismatch: unable to push '${file.name}': the archived copy is ${trailer.rawSize} bytes, not a whole segment of ${local.size}: ` +
      "it is damaged (stored by an earlier version that did not check sizes?); check it with 'pgark wal-verify --read'. It was left unchanged",
    );
  }
  throw new ArchiveMismatchError(
    `archive mismatch: unable to push '${file.name}': a different file with this name is already archived ` +
    `(archived ${trailer.rawSize} bytes ${trailer.keyNumber === undefined ? 'sha256' : 'keyed digest'} ${trailer.sha256.slice(0, 16)}…, local ${local.size} bytes sha256 ${local.sha256.slice(0, 16)}…); ` +
    'the archived copy was left unchanged',
  );
}

/**
 * 1 MiB read buffers, reused across the files one process pushes (see pooled-file-stream.ts):
 * up to three per segment in flight (segment-object.ts), several segments at once in the agent.
 */
const readPool = new BufferPool(1024 * 1024, 8);

export async function pushWalFile(repo: Repository, file: WalFileToPush, o: PushOptions): Promise<PushResult> {
  const started = Date.now();
  const key = walKey(repo.stanza, file.name);
  const existing = await repo.stat(key);
  if (existing) return compareExisting(repo, key, file, existing.size, started);
  // The checker's verdict of the last attempt: it fails the upload, whatever error the store reports for that.
  let refused: SegmentShapeError | undefined;
  try {
    const target = { name: file.name, size: file.size };
    const onRefused = (err: SegmentShapeError): void => {
      refused = err;
    };
    // lz4 and none in a plain stanza: encoded in one pass (segment-object.ts); else the stream pipeline.
    const r = (onePassCodec(o.codec)
      ? await repo.putPlainEncoded(key, () => {
        refused = undefined;
        return encodeSegmentObject(file.path, target, o.codec, readPool, onRefused);
      }, { ifAbsent: true })
      : undefined) ?? await repo.putObject(key, () => {
      refused = undefined;
      return checkedWalStream(pooledFileStream(file.path, readPool), target, onRefused);
    }, { codec: o.codec, level: o.level, ifAbsent: true });
    return { status: 'stored', size: r.rawSize, storedSize: r.storedSize, sha256: r.sha256, event: auditEvent('push', file.name, started, { size: r.rawSize, storedSize: r.storedSize, sha256: r.sha256 }) };
  } catch (err) {
    if (refused) {
      // The file changed while it was read (PostgreSQL never does that to a .ready segment), or
      // the caller's spool file is not what it should be.
      throw new InvalidInputError(`unable to archive '${file.name}': ${refused.message}; nothing was stored`, { cause: refused });
    }
    if (!(err instanceof AlreadyExistsError)) throw err;
    const now = await repo.stat(key);
    if (!now) throw err;
    return compareExisting(repo, key, file, now.size, started);
  }
}
