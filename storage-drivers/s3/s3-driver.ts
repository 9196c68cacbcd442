/**
 * S3 driver: `s3://bucket/prefix` on AWS S3 or an S3-compatible store (s3-endpoint,
 * s3-path-style). Objects are all-or-nothing by construction: a body that fits in one part is
 * sent as one PutObject once it has ended; a larger one as a multipart upload that only becomes
 * visible on CompleteMultipartUpload, and is aborted on any failure. Put-if-absent is a
 * conditional write (`If-None-Match: *` on PutObject and CompleteMultipartUpload), or HEAD then
 * PUT for stores without conditional writes (s3-put-if-absent = head, not race-safe).
 *
 * The SDK retries throttling, 5xx and network errors itself (3 attempts, standard mode); what
 * still fails is a StorageError with `transient` set so the repository can retry the operation.
 */
import { randomBytes } from 'node:crypto';
import { addAbortSignal, Readable, Transform } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  UploadPartCommand,
  type CompletedPart,
  type S3Client,
  type ServerSideEncryption,
  type StorageClass,
} from '@aws-sdk/client-s3';
import { AlreadyExistsError, ConfigError, NotFoundError, StorageError } from '../../src/common/errors.js';
import { checkKey, checkPrefix, checkRange } from '../keys.js';
import { guardStream } from '../stream-guard.js';
import type { DriverOptions, GetOptions, ObjectInfo, Op, PutOptions, StorageDriver, StorageFeature } from '../types.js';
import { createS3Client, type S3ClientOverrides } from './client.js';
import {
  attemptsOf,
  isAbortError,
  isConditionalConflict,
  isInvalidRange,
  isNoSuchBucket,
  isNoSuchUpload,
  isNotFound,
  isPreconditionFailed,
  s3Error,
  type S3Verb,
} from './errors.js';
import { PartReader } from './part-reader.js';
import { rangeHeader, rangeSkip } from './range.js';
import { resolveS3Settings, type S3Settings } from './settings.js';
import { formatS3Location, objectKey, parseS3Url, repoKey, type S3Location } from './url.js';

/** Parts uploading at once per put: with the part being filled, memory is about 3 parts. */
export const MAX_INFLIGHT_PARTS = 2;
/** S3's limit on parts per upload. */
const MAX_PARTS = 10_000;
/** User metadata (x-amz-meta-pgarkput) holding the random id of a conditional put. */
const PUT_ID_METADATA = 'pgarkput';
/** S3's limit on keys per DeleteObjects and ListObjectsV2 page. */
const BATCH = 1000;

export async function createDriver(url: URL, options: DriverOptions): Promise<StorageDriver> {
  return createS3Driver(url, options);
}

/** As createDriver, with SDK client overrides for tests (explicit credentials). */
export async function createS3Driver(url: URL, options: DriverOptions, overrides?: S3ClientOverrides): Promise<S3Driver> {
  if (url.protocol !== 's3:') throw new ConfigError(`unsupported repository scheme '${url.protocol}' for the s3 driver`);
  const loc = parseS3Url(url);
  const settings = resolveS3Settings(options.settings);
  const client = await createS3Client(settings, overrides);
  return new S3Driver(client, loc, settings);
}

export class S3Driver implements StorageDriver {
  readonly name = 's3';
  readonly features: ReadonlySet<StorageFeature>;
  readonly location: string;

  constructor(
    private readonly client: S3Client,
    private readonly loc: S3Location,
    private readonly settings: S3Settings,
  ) {
    this.location = formatS3Location(loc);
    // HEAD-then-PUT is not atomic, so only conditional writes count as conditionalPut.
    this.features = new Set<StorageFeature>(settings.putIfAbsent === 'if-none-match' ? ['rangeRead', 'conditionalPut'] : ['rangeRead']);
  }

  async stat(path: string, o: Op = {}): Promise<ObjectInfo | null> {
    checkKey(path);
    o.signal?.throwIfAborted();
    try {
      const res = await this.client.send(new HeadObjectCommand({ Bucket: this.loc.bucket, Key: objectKey(this.loc, path) }), { abortSignal: o.signal });
      return { path, size: res.ContentLength ?? 0, mtimeMs: res.LastModified?.getTime() ?? 0 };
    } catch (err) {
      // A HEAD response has no body, so a missing bucket looks like a missing key here.
      if (isNotFound(err)) return null;
      throw this.error('stat', path, err);
    }
  }

  async *list(prefix: string, o: Op = {}): AsyncGenerator<ObjectInfo> {
    checkPrefix(prefix);
    const full = objectKey(this.loc, prefix);
    let token: string | undefined;
    do {
      o.signal?.throwIfAborted();
      let res;
      try {
        res = await this.client.send(
          new ListObjectsV2Command({ Bucket: this.loc.bucket, Prefix: full === '' ? undefined : full, ContinuationToken: token, MaxKeys: BATCH }),
          { abortSignal: o.signal },
        );
      } catch (err) {
        throw this.error('list', prefix, err);
      }
      for (const obj of res.Contents ?? []) {
        const key = obj.Key === undefined ? null : repoKey(this.loc, obj.Key);
        // Keys ending in '/' are "folder" placeholders made by consoles, not repository objects.
        if (key === null || key === '' || key.endsWith('/')) continue;
        yield { path: key, size: obj.Size ?? 0, mtimeMs: obj.LastModified?.getTime() ?? 0 };
      }
      token = res.IsTruncated ? res.NextContinuationToken : undefined;
      if (res.IsTruncated && !token) {
        throw new StorageError('s3', `unable to list '${prefix}' in ${this.location}: the store returned a truncated page without a continuation token`, { transient: false });
      }
    } while (token);
  }

  async get(path: string, o: GetOptions = {}): Promise<Readable> {
    checkKey(path);
    const { offset, length } = checkRange(path, o);
    o.signal?.throwIfAborted();
    if (length === 0) {
      // No byte range can express "nothing"; one HEAD still tells a missing key apart.
      if (!(await this.stat(path, o))) throw new NotFoundError(path);
      return Readable.from([]);
    }
    const range = rangeHeader(offset, length);
    let body: Readable;
    let skip = 0;
    let contentLength: number | undefined;
    try {
      const res = await this.client.send(new GetObjectCommand({ Bucket: this.loc.bucket, Key: objectKey(this.loc, path), Range: range }), {
        abortSignal: o.signal,
      });
      body = res.Body as Readable;
      contentLength = res.ContentLength;
      if (range !== undefined) skip = rangeSkip(res.$metadata.httpStatusCode, res.ContentRange, offset);
    } catch (err) {
      if (isNotFound(err)) throw new NotFoundError(path);
      // 416: the range starts at or past the end (or the object is empty): no bytes exist there.
      if (isInvalidRange(err) && !isNoSuchBucket(err)) return Readable.from([]);
      throw this.error('read', path, err);
    }
    if (!body) return Readable.from([]);
    if (skip < 0) {
      body.destroy();
      throw new StorageError('s3', `unable to read '${path}' from ${this.location}: the store returned another byte range than requested`, { transient: false });
    }
    // What the caller gets: the response body past `skip`, at most `length` bytes.
    const expected = contentLength === undefined ? undefined : Math.max(0, Math.min(contentLength - skip, length ?? Number.POSITIVE_INFINITY));
    return this.wrapBody(body, path, o.signal, skip, length, expected);
  }

  async put(path: string, body: Readable | Buffer, o: PutOptions = {}): Promise<{ size: number }> {
    checkKey(path);
    const { signal } = o;
    const stream = Buffer.isBuffer(body) ? undefined : body;
    // Errors raised by the caller's body stream are theirs: pass them through unwrapped.
    let bodyError: unknown;
    stream?.on('error', (err) => (bodyError ??= err));
    try {
      signal?.throwIfAborted();
      if (stream && signal) addAbortSignal(signal, stream);
      // A conditional write carries a random id, so that a retried request whose first attempt
      // did succeed is recognised as ours rather than reported as a collision.
      const putId = o.ifAbsent === true && this.settings.putIfAbsent === 'if-none-match' ? randomBytes(12).toString('hex') : undefined;
      const conditional = putId !== undefined;
      // HEAD mode (stores that ignore If-None-Match): check first, then an ordinary PUT. Not
      // atomic against a racing writer; see docs/storage/s3.md.
      if (o.ifAbsent && !conditional && (await this.stat(path, o))) throw new AlreadyExistsError(path);
      const reader = new PartReader(body);
      const partSize = this.settings.partSize;
      const first = await reader.read(partSize);
      if (first.length < partSize || !(await reader.hasMore())) {
        await this.putSingle(path, first, putId, signal);
        return { size: first.length };
      }
      // Fail fast before uploading parts; If-None-Match on the completion is what makes it atomic.
      if (conditional && (await this.stat(path, o))) throw new AlreadyExistsError(path);
      return await this.putMultipart(path, reader, first, putId, signal);
    } catch (err) {
      // A failed put never consumes the rest of the body; release whatever feeds it.
      if (stream && !stream.destroyed) stream.destroy();
      if (err === bodyError || isAbortError(err)) throw err;
      throw this.error('write', path, err);
    }
  }

  async delete(paths: string[], o: Op = {}): Promise<void> {
    for (const p of paths) checkKey(p);
    const unique = [...new Set(paths)];
    for (let i = 0; i < unique.length; i += BATCH) {
      o.signal?.throwIfAborted();
      const batch = unique.slice(i, i + BATCH);
      let res;
      try {
        res = await this.client.send(
          new DeleteObjectsCommand({
            Bucket: this.loc.bucket,
            Delete: { Objects: batch.map((p) => ({ Key: objectKey(this.loc, p) })), Quiet: true },
          }),
          { abortSignal: o.signal },
        );
      } catch (err) {
        throw this.error('delete', batch[0] as string, err);
      }
      // Quiet mode lists only the keys that failed; a missing key is not a failure.
      const failed = (res.Errors ?? []).filter((e) => e.Code !== 'NoSuchKey');
      if (failed.length > 0) {
        const first = failed[0] as { Key?: string; Code?: string };
        const key = (first.Key !== undefined ? repoKey(this.loc, first.Key) : null) ?? first.Key ?? '?';
        const code = first.Code ?? 'InternalError';
        const e = this.error('delete', key, Object.assign(new Error(code), { name: code, Code: code }));
        if (failed.length === 1) throw e;
        throw new StorageError('s3', `${e.message} (and ${failed.length - 1} more keys)`, { transient: (e as StorageError).transient });
      }
    }
  }

  async close(): Promise<void> {
    this.client.destroy();
  }

  private error(verb: S3Verb, key: string, err: unknown): Error {
    return s3Error({ verb, key, location: this.location, timeoutMs: this.settings.timeoutMs }, err);
  }

  /** Storage class, server-side encryption and the put id, sent with every object-creating request. */
  private createParams(putId: string | undefined): {
    StorageClass?: StorageClass;
    ServerSideEncryption?: ServerSideEncryption;
    SSEKMSKeyId?: string;
    ContentType: string;
    Metadata?: Record<string, string>;
  } {
    return {
      ContentType: 'application/octet-stream',
      ...(putId !== undefined ? { Metadata: { [PUT_ID_METADATA]: putId } } : {}),
      ...(this.settings.storageClass !== undefined ? { StorageClass: this.settings.storageClass as StorageClass } : {}),
      ...(this.settings.sse !== undefined ? { ServerSideEncryption: this.settings.sse as ServerSideEncryption } : {}),
      ...(this.settings.sseKmsKeyId !== undefined ? { SSEKMSKeyId: this.settings.sseKmsKeyId } : {}),
    };
  }

  private async putSingle(path: string, data: Buffer, putId: string | undefined, signal: AbortSignal | undefined): Promise<void> {
    try {
      await this.client.send(
        new PutObjectCommand({
          Bucket: this.loc.bucket,
          Key: objectKey(this.loc, path),
          Body: data,
          ContentLength: data.length,
          ...this.createParams(putId),
          ...(putId !== undefined ? { IfNoneMatch: '*' } : {}),
        }),
        { abortSignal: signal },
      );
    } catch (err) {
      if (putId === undefined) throw err;
      await this.conditionalFailure(path, err, putId);
    }
  }

  /**
   * Multipart upload: at most MAX_INFLIGHT_PARTS parts in flight while the next one fills. Any
   * failure (a part, the body, the signal, the completion) aborts the upload, so nothing is
   * visible and no parts are left to pay for.
   */
  private async putMultipart(path: string, reader: PartReader, first: Buffer, putId: string | undefined, signal: AbortSignal | undefined): Promise<{ size: number }> {
    const Bucket = this.loc.bucket;
    const Key = objectKey(this.loc, path);
    const created = await this.client.send(new CreateMultipartUploadCommand({ Bucket, Key, ...this.createParams(putId) }), { abortSignal: signal });
    const UploadId = created.UploadId;
    if (!UploadId) throw new StorageError('s3', `unable to write '${path}' to ${this.location}: the store returned no upload id`, { transient: true });

    // Parts in flight stop when the caller aborts or any part fails.
    const partsAbort = new AbortController();
    const onAbort = (): void => partsAbort.abort(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    const inflight = new Set<Promise<void>>();
    const done: CompletedPart[] = [];
    let failure: { err: unknown } | undefined;
    let partNumber = 0;
    let size = 0;

    const startPart = (data: Buffer): void => {
      const PartNumber = ++partNumber;
      if (PartNumber > MAX_PARTS) {
        throw new StorageError('s3', `unable to write '${path}' to ${this.location}: more than ${MAX_PARTS} parts; raise s3-part-size`, { transient: false });
      }
      size += data.length;
      const p: Promise<void> = this.client
        .send(new UploadPartCommand({ Bucket, Key, UploadId, PartNumber, Body: data, ContentLength: data.length }), { abortSignal: partsAbort.signal })
        .then((res) => {
          if (!res.ETag) throw new StorageError('s3', `unable to write '${path}' to ${this.location}: the store returned no ETag for part ${PartNumber}`, { transient: true });
          done.push({ PartNumber, ETag: res.ETag });
        })
        .catch((err: unknown) => {
          failure ??= { err };
          partsAbort.abort();
        })
        .finally(() => inflight.delete(p));
      inflight.add(p);
    };

    try {
      startPart(first);
      for (;;) {
        const data = await reader.read(this.settings.partSize);
        if (data.length === 0) break;
        while (inflight.size >= MAX_INFLIGHT_PARTS) await Promise.race(inflight);
        if (failure) throw failure.err;
        startPart(data);
      }
      await Promise.all(inflight);
      if (failure) throw failure.err;
      signal?.throwIfAborted();
      done.sort((a, b) => (a.PartNumber ?? 0) - (b.PartNumber ?? 0));
      try {
        await this.client.send(
          new CompleteMultipartUploadCommand({ Bucket, Key, UploadId, MultipartUpload: { Parts: done }, ...(putId !== undefined ? { IfNoneMatch: '*' } : {}) }),
          { abortSignal: signal },
        );
      } catch (err) {
        if (putId === undefined) throw err;
        await this.conditionalFailure(path, err, putId);
      }
      return { size };
    } catch (err) {
      partsAbort.abort();
      // Abort only once no part is in flight, or a late part could outlive the abort.
      await Promise.allSettled([...inflight]);
      await this.abortUpload(Key, UploadId);
      throw err;
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /** Best effort: a failure here leaves an incomplete upload, invisible but billed until a lifecycle rule removes it. */
  private async abortUpload(Key: string, UploadId: string): Promise<void> {
    try {
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.loc.bucket, Key, UploadId }));
    } catch {
      // The original failure is what the caller needs to see.
    }
  }

  /**
   * A conditional write failed. 412 means the key exists, 409 ConditionalRequestConflict that a
   * concurrent conditional write raced ours; either way the object is ours (and the put a
   * success, returning normally) only when it carries our put id: the SDK retried a request
   * whose first attempt had succeeded. Anything else is rethrown.
   */
  private async conditionalFailure(path: string, err: unknown, putId: string): Promise<void> {
    const retried = attemptsOf(err) !== 1;
    if (isPreconditionFailed(err) || (retried && isNoSuchUpload(err))) {
      if (retried && (await this.ownedBy(path, putId)) === true) return;
      throw new AlreadyExistsError(path);
    }
    if (isConditionalConflict(err)) {
      const owner = await this.ownedBy(path, putId);
      if (owner === true) return;
      if (owner === false) throw new AlreadyExistsError(path);
      throw new StorageError('s3', `unable to write '${path}' to ${this.location}: 409 ConditionalRequestConflict (a concurrent write to the same key)`, {
        transient: true,
      });
    }
    throw err;
  }

  /** true: the object carries `putId`; false: another writer's object; null: no object (or unknown). */
  private async ownedBy(path: string, putId: string): Promise<boolean | null> {
    try {
      const res = await this.client.send(new HeadObjectCommand({ Bucket: this.loc.bucket, Key: objectKey(this.loc, path) }));
      return res.Metadata?.[PUT_ID_METADATA] === putId;
    } catch {
      return null;
    }
  }

  /**
   * The response body, cut to the requested range (a store that ignores Range, 200 with the
   * whole object, or returns more than asked, as s3rver does for `bytes=0-0`, still gives exactly
   * the requested bytes), with its errors mapped to StorageError (transient for network trouble;
   * no SDK text), a body that ends short or closes early refused (stream-guard), the connection
   * released when the consumer stops, and the caller's signal attached.
   */
  private wrapBody(body: Readable, path: string, signal: AbortSignal | undefined, skip: number, limit: number | undefined, expected: number | undefined): Readable {
    let toSkip = skip;
    let left = limit ?? Number.POSITIVE_INFINITY;
    const cut = new Transform({
      readableHighWaterMark: 1024 * 1024,
      transform(chunk: Buffer, _enc, cb) {
        let c = chunk;
        if (toSkip > 0) {
          const n = Math.min(toSkip, c.length);
          c = c.subarray(n);
          toSkip -= n;
        }
        if (left <= 0) return cb();
        if (c.length > left) c = c.subarray(0, left);
        left -= c.length;
        if (c.length > 0) this.push(c);
        cb();
        if (left <= 0) {
          // The requested bytes are all here: drop the rest of the response.
          body.unpipe(cut);
          body.destroy();
          cut.end();
        }
      },
    });
    body.on('error', (err) => {
      if (left > 0) cut.destroy(this.error('read', path, err));
    });
    body.on('close', () => {
      if (left > 0 && !body.readableEnded && !cut.destroyed) {
        cut.destroy(new StorageError('s3', `unable to read '${path}' from ${this.location}: the connection closed before the end of the object`, { transient: true }));
      }
    });
    cut.on('close', () => {
      if (!body.destroyed) body.destroy();
    });
    body.pipe(cut);
    const out = guardStream(cut, { driver: 's3', what: `'${path}' from ${this.location}`, expectedBytes: expected });
    return signal ? addAbortSignal(signal, out) : out;
  }
}
