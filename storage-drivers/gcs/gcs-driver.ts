/**
 * Google Cloud Storage driver: `gs://bucket/prefix`, with @google-cloud/storage (JSON API).
 *
 * - Credentials: Application Default Credentials as the SDK finds them
 *   (GOOGLE_APPLICATION_CREDENTIALS, gcloud's application-default login, the metadata server).
 *   An emulator (STORAGE_EMULATOR_HOST, or an http:// gcs-endpoint) gets no credentials.
 * - put: a body that ends within one chunk (gcs-chunk-size) is one multipart upload request; a
 *   longer one is a resumable upload sent chunk by chunk (memory bounded by the chunk size). A
 *   session that never receives its last chunk creates no object; on failure or abort the
 *   driver also cancels it (DELETE on the session URI); when the answer to the last chunk is
 *   lost, the driver asks the session whether it completed. Put-if-absent is
 *   `ifGenerationMatch=0`: GCS answers 412 to all but one of racing writers.
 * - get: one request (alt=media with a Range header for offset/length). The driver waits for
 *   the response before returning, so a missing object rejects here with NotFoundError rather
 *   than later as a stream error; 416 (range past the end) gives an empty stream. The SDK's
 *   CRC32C/MD5 download validation is off: pgark verifies its own sha256 of every object.
 * - stat: object metadata GET. list: objects.list pages of 1000, one request each. delete:
 *   one request per key (the JSON API has no multi-object delete), 16 at a time.
 * - Retries: the SDK retries 408/429/5xx and connection errors twice for every request
 *   (all pgark operations are idempotent: plain puts rewrite the same bytes, deletes ignore
 *   404, resumable chunks resume from the persisted offset); single-request uploads, which the
 *   SDK never retries, are retried by the driver from the buffered body.
 * - storage-timeout bounds each request until its response (node-fetch/gaxios timeouts) and a
 *   download that stops delivering data (idle guard).
 */
import { createHash } from 'node:crypto';
import { addAbortSignal, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { IdempotencyStrategy, Storage, type Bucket, type CreateWriteStreamOptions, type File } from '@google-cloud/storage';

type DecorateRequestOptions = Parameters<Storage['request']>[0];
import { NotFoundError, StorageError } from '../../src/common/errors.js';
import { PGARK_VERSION } from '../../src/version.js';
import { checkKey, checkPrefix, checkRange } from '../keys.js';
import { guardStream } from '../stream-guard.js';
import type { DriverOptions, GetOptions, ObjectInfo, Op, PutOptions, StorageDriver, StorageFeature } from '../types.js';
import { gcsError, inspectGcsError, isBucketMissing, isTransientGcsError, isTransientInfo, type ErrorContext } from './errors.js';
import { countRequestsTo } from './request-counter.js';
import { cancelSession, sessionStatus } from './session.js';
import { resolveGcsSettings, type GcsSettings } from './settings.js';
import { abortReason, idleGuard, raceAbort, readHead, sleep, toBuffer } from './streams.js';
import { forEachLimit } from '../limit.js';
import { parseGcsUrl, type GcsLocation } from './url.js';

/** SDK retries per request after the first attempt (2-3 attempts in all, Repository retries on top). */
export const MAX_RETRIES = 2;
const DELETE_CONCURRENCY = 16;
const LIST_PAGE = 1000;
const CONTENT_TYPE = 'application/octet-stream';

export async function createDriver(url: URL, options: DriverOptions): Promise<StorageDriver> {
  return new GcsDriver(parseGcsUrl(url), resolveGcsSettings(options.settings ?? {}));
}

interface ObjectMetadata {
  size?: string | number;
  updated?: string;
  md5Hash?: string;
}

interface MediaResponse {
  statusCode: number;
  headers: Record<string, string | undefined>;
}

export class GcsDriver implements StorageDriver {
  readonly name = 'gcs';
  readonly features: ReadonlySet<StorageFeature> = new Set<StorageFeature>(['rangeRead', 'conditionalPut']);
  readonly location: string;
  readonly storage: Storage;
  private readonly bucket: Bucket;
  private readonly stopCounting: () => void;

  constructor(
    private readonly loc: GcsLocation,
    readonly settings: GcsSettings,
  ) {
    this.location = loc.display;
    const timeout = settings.timeoutMs;
    this.storage = new Storage({
      apiEndpoint: settings.endpoint,
      useAuthWithCustomEndpoint: settings.authenticated,
      timeout,
      userAgent: `pgark/${PGARK_VERSION}`,
      retryOptions: {
        autoRetry: true,
        maxRetries: MAX_RETRIES,
        retryDelayMultiplier: 2,
        maxRetryDelay: 8,
        // Seconds; the resumable uploader measures it from the start of an upload.
        totalTimeout: 24 * 3600,
        idempotencyStrategy: IdempotencyStrategy.RetryAlways,
        retryableErrorFn: isTransientGcsError,
      },
    });
    // The SDK takes STORAGE_EMULATOR_HOST verbatim as the JSON API base (without /storage/v1)
    // whenever it is set, even with another apiEndpoint: pin the base to the chosen endpoint.
    (this.storage as unknown as { baseUrl: string }).baseUrl = `${settings.endpoint}/storage/v1`;
    // Resumable uploads send through gaxios with the interceptors' options: give them the timeout.
    this.storage.interceptors.push({
      request: (reqOpts) => {
        reqOpts.timeout = timeout;
        return reqOpts as DecorateRequestOptions;
      },
    });
    this.bucket = this.storage.bucket(loc.bucket);
    this.stopCounting = countRequestsTo(settings.endpoint);
  }

  async stat(path: string, o: Op = {}): Promise<ObjectInfo | null> {
    checkKey(path);
    o.signal?.throwIfAborted();
    const md = await this.metadata(path, o.signal, 'stat');
    return md ? this.info(path, md) : null;
  }

  async *list(prefix: string, o: Op = {}): AsyncGenerator<ObjectInfo> {
    checkPrefix(prefix);
    const full = this.loc.prefix + prefix;
    let pageToken: string | undefined;
    do {
      o.signal?.throwIfAborted();
      let page: { items?: Array<{ name?: string } & ObjectMetadata>; nextPageToken?: string };
      try {
        const [, , response] = await raceAbort(
          this.bucket.getFiles({
            prefix: full,
            maxResults: LIST_PAGE,
            autoPaginate: false,
            fields: 'items(name,size,updated),nextPageToken',
            ...(pageToken ? { pageToken } : {}),
          }),
          o.signal,
        );
        page = (response ?? {}) as typeof page;
      } catch (err) {
        throw this.error(err, 'list', prefix);
      }
      for (const item of page.items ?? []) {
        const name = item.name;
        if (name === undefined || !name.startsWith(this.loc.prefix)) continue;
        const key = name.slice(this.loc.prefix.length);
        // Objects written by other tools (folder placeholders "dir/", "a//b") are not pgark keys.
        if (!isValidKey(key)) continue;
        yield this.info(key, item);
      }
      pageToken = page.nextPageToken;
    } while (pageToken);
  }

  async get(path: string, o: GetOptions = {}): Promise<Readable> {
    checkKey(path);
    const { offset, length } = checkRange(path, o);
    o.signal?.throwIfAborted();

    if (length === 0) {
      // No byte range can ask for nothing: check that the object exists instead.
      if (!(await this.metadata(path, o.signal, 'read'))) throw new NotFoundError(path);
      return Readable.from([]);
    }
    const ranged = offset > 0 || length !== undefined;
    const source = this.file(path).createReadStream({
      validation: false,
      decompress: false,
      ...(ranged ? { start: offset } : {}),
      ...(length !== undefined ? { end: offset + length - 1 } : {}),
    });
    const response = await this.awaitResponse(source, path, o.signal);
    if (response === 'empty') return Readable.from([]);

    const lengthHeader = response.headers['content-length'];
    const encoded = (response.headers['content-encoding'] ?? 'identity') !== 'identity';
    const expectedBytes = lengthHeader !== undefined && /^\d+$/.test(lengthHeader) && !encoded ? Number(lengthHeader) : undefined;
    const ctx = this.ctx('read', path);
    const idleMs = this.settings.timeoutMs;
    const guarded = idleGuard(
      source,
      idleMs,
      () => new StorageError('gcs', `unable to read '${path}' from ${this.location}: no data for ${Math.round(idleMs / 1000)} s (storage-timeout)`, { transient: true }),
      (err) => gcsError(err, ctx),
    );
    const out = guardStream(guarded, { driver: 'gcs', what: `'${path}' from ${this.location}`, expectedBytes });
    return o.signal ? addAbortSignal(o.signal, out) : out;
  }

  async put(path: string, body: Readable | Buffer, o: PutOptions = {}): Promise<{ size: number }> {
    checkKey(path);
    const { signal } = o;
    const ifAbsent = o.ifAbsent ?? false;
    // Errors raised by the caller's body stream are theirs: pass them through unwrapped.
    let bodyError: unknown;
    if (!Buffer.isBuffer(body)) {
      body.on('error', (err) => (bodyError ??= err));
      // Aborting destroys the body, which ends any read of it with the AbortError.
      if (signal) addAbortSignal(signal, body);
    }
    try {
      signal?.throwIfAborted();
      if (Buffer.isBuffer(body)) {
        if (body.length <= this.settings.chunkSize) return await this.putSimple(path, [body], ifAbsent, signal);
        return await this.putResumable(path, [body], undefined, ifAbsent, signal);
      }
      const head = await readHead(body, this.settings.chunkSize);
      if (head.ended) return await this.putSimple(path, head.chunks, ifAbsent, signal);
      return await this.putResumable(path, head.chunks, head.rest, ifAbsent, signal);
    } catch (err) {
      // A failed put never consumes the rest of the body; release whatever feeds it.
      if (!Buffer.isBuffer(body) && !body.destroyed) body.destroy();
      if (bodyError !== undefined && (err === bodyError || signal?.aborted !== true)) throw bodyError;
      if (signal?.aborted) throw abortReason(signal);
      throw this.error(err, 'write', path, { ifAbsent });
    }
  }

  async delete(paths: string[], o: Op = {}): Promise<void> {
    for (const p of paths) checkKey(p);
    await forEachLimit(paths, DELETE_CONCURRENCY, async (p) => {
      o.signal?.throwIfAborted();
      try {
        await raceAbort(this.file(p).delete({ ignoreNotFound: true }), o.signal);
      } catch (err) {
        throw this.error(err, 'delete', p);
      }
    });
  }

  async close(): Promise<void> {
    this.stopCounting();
  }

  // -------------------------------------------------------------------------

  private file(key: string): File {
    return this.bucket.file(this.loc.prefix + key);
  }

  private ctx(verb: string, key: string): ErrorContext {
    return { verb, key, location: this.location, bucket: this.loc.bucket, timeoutMs: this.settings.timeoutMs };
  }

  private error(err: unknown, verb: string, key: string, o: { notFound?: boolean; ifAbsent?: boolean } = {}): Error {
    return gcsError(err, this.ctx(verb, key), o);
  }

  private info(key: string, md: ObjectMetadata): ObjectInfo {
    const size = Number(md.size);
    const mtimeMs = md.updated ? Date.parse(md.updated) : NaN;
    return { path: key, size: Number.isFinite(size) ? size : 0, mtimeMs: Number.isFinite(mtimeMs) ? mtimeMs : 0 };
  }

  /** Object metadata, or null when the object does not exist (a missing bucket is an error). */
  private async metadata(key: string, signal: AbortSignal | undefined, verb: string): Promise<ObjectMetadata | null> {
    try {
      const [md] = await raceAbort(this.file(key).getMetadata({ fields: 'size,updated,md5Hash' }), signal);
      return md as ObjectMetadata;
    } catch (err) {
      const info = inspectGcsError(err);
      if (info.status === 404 && !isBucketMissing(info)) return null;
      throw this.error(err, verb, key);
    }
  }

  /**
   * Start the download and wait for its response: 2xx -> 'ok' (the body streams on), 416 ->
   * 'empty', anything else rejects (404 -> NotFoundError).
   */
  private awaitResponse(source: Readable, key: string, signal: AbortSignal | undefined): Promise<MediaResponse | 'empty'> {
    return new Promise<MediaResponse | 'empty'>((resolve, reject) => {
      let settled = false;
      let bodyTimer: NodeJS.Timeout | undefined;
      const finish = (fn: () => void): void => {
        if (settled) return;
        settled = true;
        if (bodyTimer) clearTimeout(bodyTimer);
        signal?.removeEventListener('abort', onAbort);
        source.removeListener('error', onError);
        fn();
      };
      const onAbort = (): void =>
        finish(() => {
          source.destroy();
          reject(abortReason(signal as AbortSignal));
        });
      const onError = (err: unknown): void => {
        const info = inspectGcsError(err);
        if (info.status === 416) finish(() => resolve('empty'));
        else finish(() => reject(this.error(err, 'read', key, { notFound: true })));
      };
      // Errors after the outcome is decided (late SDK errors, the guard's own) must never be unhandled.
      source.on('error', () => undefined);
      source.on('error', onError);
      source.once('response', (res: MediaResponse) => {
        if (res.statusCode >= 200 && res.statusCode < 300) {
          finish(() => resolve(res));
          return;
        }
        // Error statuses arrive as an 'error' once the SDK has read the error body; should
        // that body never end, decide from the status alone.
        bodyTimer = setTimeout(() => {
          source.destroy();
          onError({ code: res.statusCode });
        }, this.settings.timeoutMs);
      });
      signal?.addEventListener('abort', onAbort, { once: true });
      // The SDK sends the request on the first read.
      source.read(0);
    });
  }

  /** A body that fits one chunk: one multipart upload, retried here from the buffered chunks. */
  private async putSimple(key: string, data: Buffer[], ifAbsent: boolean, signal: AbortSignal | undefined): Promise<{ size: number }> {
    const size = data.reduce((n, c) => n + c.length, 0);
    // Whether an earlier attempt may have been stored although its answer was lost.
    let uncertain = false;
    for (let attempt = 1; ; attempt++) {
      signal?.throwIfAborted();
      try {
        await this.uploadOnce(key, data, ifAbsent, signal);
        return { size };
      } catch (err) {
        if (signal?.aborted) throw abortReason(signal);
        const info = inspectGcsError(err);
        // A retry of a put-if-absent whose first attempt was stored meets its own object.
        if (ifAbsent && info.status === 412 && uncertain && (await this.holds(key, data, size))) return { size };
        if (!isTransientInfo(info) || attempt > MAX_RETRIES) throw err;
        if (info.status === undefined) uncertain = true;
        await raceAbort(sleep(Math.min(8000, 1000 * 2 ** (attempt - 1)) * (0.5 + Math.random() / 2)), signal);
      }
    }
  }

  private uploadOnce(key: string, data: Buffer[], ifAbsent: boolean, signal: AbortSignal | undefined): Promise<void> {
    const ws = this.file(key).createWriteStream(this.writeOptions(false, ifAbsent));
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        // The SDK cannot cancel a request in flight; cutting its body keeps it from completing
        // unless every byte was already sent.
        ws.destroy(abortReason(signal as AbortSignal));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      const done = (err?: unknown): void => {
        signal?.removeEventListener('abort', onAbort);
        if (err === undefined) resolve();
        else reject(err);
      };
      ws.once('error', done);
      ws.once('finish', () => done());
      // Already in memory: no need to wait for 'drain' between chunks.
      for (const chunk of data) ws.write(chunk);
      ws.end();
    });
  }

  /** Whether the object holds exactly `data` (same size and MD5). */
  private async holds(key: string, data: Buffer[], size: number): Promise<boolean> {
    try {
      const md = await this.metadata(key, undefined, 'write');
      if (md === null || Number(md.size) !== size) return false;
      const md5 = createHash('md5');
      for (const chunk of data) md5.update(chunk);
      return md.md5Hash === md5.digest('base64');
    } catch {
      return false;
    }
  }

  /**
   * A resumable upload of `head` then the rest of the body, `chunkSize` bytes per request. On
   * failure the session is cancelled, so nothing of it remains.
   */
  private async putResumable(key: string, head: Buffer[], rest: AsyncIterator<unknown> | undefined, ifAbsent: boolean, signal: AbortSignal | undefined): Promise<{ size: number }> {
    const file = this.file(key);
    const ws = file.createWriteStream(this.writeOptions(true, ifAbsent));
    let sessionUri: string | undefined;
    ws.on('uri', (uri: string) => (sessionUri = uri));
    let size = 0;
    // Whether the whole body went to the uploader (only then can the session have completed).
    let bodyEnded = false;
    async function* source(): AsyncGenerator<Buffer> {
      // Hand the buffered chunks over one by one, dropping our references as they go.
      for (let chunk = head.shift(); chunk !== undefined; chunk = head.shift()) {
        size += chunk.length;
        yield chunk;
      }
      for (;;) {
        const r = rest ? await rest.next() : { done: true as const, value: undefined };
        if (r.done) {
          bodyEnded = true;
          return;
        }
        const chunk = toBuffer(r.value);
        size += chunk.length;
        yield chunk;
      }
    }
    try {
      await pipeline(Readable.from(source(), { objectMode: false, highWaterMark: 64 * 1024 }), ws, signal ? { signal } : {});
    } catch (err) {
      if (sessionUri !== undefined) {
        // The answer to the last chunk may be what failed: a completed session is our object.
        if (bodyEnded && !signal?.aborted) {
          const status = await sessionStatus(sessionUri, this.settings.timeoutMs);
          if (status.state === 'finalized' && status.size === size) return { size };
        }
        await cancelSession(sessionUri, this.settings.timeoutMs);
      }
      throw err;
    }
    const stored = Number((file.metadata as ObjectMetadata | undefined)?.size ?? NaN);
    if (Number.isFinite(stored) && stored !== size) {
      throw new StorageError('gcs', `unable to write '${key}' to ${this.location}: stored ${stored} bytes of ${size}`, { transient: true });
    }
    return { size };
  }

  private writeOptions(resumable: boolean, ifAbsent: boolean): CreateWriteStreamOptions {
    return {
      resumable,
      ...(resumable ? { chunkSize: this.settings.chunkSize } : {}),
      // pgark checksums every object itself (sha256 trailer).
      validation: false,
      metadata: { contentType: CONTENT_TYPE },
      ...(ifAbsent ? { preconditionOpts: { ifGenerationMatch: 0 } } : {}),
    };
  }
}

function isValidKey(key: string): boolean {
  try {
    checkKey(key);
    return true;
  } catch {
    return false;
  }
}
