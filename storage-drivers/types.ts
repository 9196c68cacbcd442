/**
 * The StorageDriver contract. Every driver (fs, ssh, s3, azure, gcs) implements it and passes
 * the shared conformance suite in test/storage/conformance.ts.
 *
 * Paths are repository-relative keys: '/'-separated, no leading '/', no '.' or '..' segments,
 * no empty segments. Drivers reject anything else with InvalidInputError.
 *
 * Semantics every driver guarantees:
 * - put() is all-or-nothing: a concurrent or later reader sees either no object or the whole
 *   object, never a prefix (temp + fsync + rename on filesystems; single PUT or completed
 *   multipart upload on object stores). When put() resolves the object is durable.
 * - put({ ifAbsent: true }) atomically fails with AlreadyExistsError when the key exists; it
 *   never replaces an existing object.
 * - get() of a missing key rejects with NotFoundError. A ranged get past the end returns the
 *   bytes that exist (possibly none).
 * - list(prefix) yields every object whose key starts with `prefix` (a plain string prefix, not
 *   only a directory), in no guaranteed order; a missing prefix yields nothing. In-progress
 *   temporary objects are never listed.
 * - delete() of missing keys succeeds.
 * - stat() of a missing key returns null.
 * - Errors are StorageError (transient flag set when a retry may help), NotFoundError,
 *   AlreadyExistsError or InvalidInputError. Messages never contain credentials.
 * - Created files are 0600 and directories 0700 where the store has permissions.
 */
import type { Readable } from 'node:stream';

export type StorageFeature = 'atomicRename' | 'fsync' | 'rangeRead' | 'conditionalPut';

export interface Op {
  signal?: AbortSignal;
}

export interface ObjectInfo {
  /** Repository-relative key. */
  path: string;
  size: number;
  /** Last modification time, ms since epoch. */
  mtimeMs: number;
}

export interface GetOptions extends Op {
  offset?: number;
  length?: number;
  /**
   * The caller's thread has nothing else to do while it reads (restore's lanes): a driver of
   * local files may read each chunk synchronously, without a thread-pool hop per chunk. Others
   * ignore it.
   */
  blocking?: boolean;
}

export interface PutOptions extends Op {
  /** Fail with AlreadyExistsError instead of replacing an existing object. */
  ifAbsent?: boolean;
}

export interface StorageDriver {
  readonly name: string;
  readonly features: ReadonlySet<StorageFeature>;
  /** A display form of the location with any secret removed, for logs and messages. */
  readonly location: string;
  stat(path: string, o?: Op): Promise<ObjectInfo | null>;
  list(prefix: string, o?: Op): AsyncIterable<ObjectInfo>;
  get(path: string, o?: GetOptions): Promise<Readable>;
  put(path: string, body: Readable | Buffer, o?: PutOptions): Promise<{ size: number }>;
  delete(paths: string[], o?: Op): Promise<void>;
  /**
   * Remove what writers that died left under `prefix` (temporary objects of processes that no
   * longer exist, then directories left empty). Never touches an in-progress write of a live
   * process. Drivers whose stores leave no such leftovers do not implement it. Returns the
   * number of leftovers removed.
   */
  sweep?(prefix: string, o?: Op): Promise<number>;
  close(): Promise<void>;
  /**
   * Local filesystems only (fs driver): create `path` as `size` zero bytes, durably, failing
   * with AlreadyExistsError when it exists, and return a handle that overwrites it in place.
   * Not an atomic object: its user frames and checksums what it writes (received-journal.ts).
   */
  createInPlace?(path: string, size: number): Promise<InPlaceFile>;
}

/** A preallocated file written in place (StorageDriver.createInPlace). */
export interface InPlaceFile {
  /** Bytes in the file (preallocated or written). */
  readonly size: number;
  /** Preallocate up to `size` bytes (zeros; made durable by the next sync). */
  grow(size: number): Promise<void>;
  /**
   * Write the buffers at `pos`, in order, with synchronous system calls (page cache). `pos` is
   * at most the file's size: a write past the end extends it (a metadata change for the sync).
   */
  writeSync(buffers: readonly Buffer[], pos: number): void;
  /** Make what was written durable: fdatasync (synchronous, for small writes; or async). */
  datasyncSync(): void;
  datasync(): Promise<void>;
  close(): Promise<void>;
}

export type DriverFactory = (url: URL, options: DriverOptions) => Promise<StorageDriver>;

export interface DriverOptions {
  /** Extra driver settings from config (credentials come from env or files, never argv). */
  settings?: Record<string, string>;
}
