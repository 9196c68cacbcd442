/**
 * Azure Blob storage driver: `azure://account/container/prefix`, block blobs.
 *
 * - put: a body of at most one block (`azure-block-size`, default 8 MiB) is one Put Blob; a
 *   larger one is staged as blocks (at most 2 in flight, so memory stays near 3 blocks) and
 *   made visible by one Put Block List. A put that fails, is aborted or whose body fails never
 *   commits: its staged blocks stay invisible and the service discards uncommitted blocks after
 *   7 days (or when the blob is next committed).
 * - put-if-absent: `If-None-Match: *` on Put Blob / Put Block List; 409 BlobAlreadyExists or
 *   412 ConditionNotMet means another writer won. Such a put marks its blob with a random id in
 *   metadata, so that an SDK retry of a commit that had in fact succeeded is recognised as ours.
 * - get: one Get Blob (ranged when asked); 404 rejects at call time, 416 (offset past the end)
 *   is an empty stream. stat: one Get Blob Properties. list: List Blobs, 1000 per page.
 *
 * Only this folder imports @azure/storage-blob; the registry loads it when the scheme is used.
 */
import type { TokenCredential } from '@azure/core-auth';
import type { Agent } from 'node:http';
import { addAbortSignal, PassThrough, Readable } from 'node:stream';
import {
  AnonymousCredential,
  ContainerClient,
  newPipeline,
  StorageSharedKeyCredential,
  type BlockBlobClient,
  type StoragePipelineOptions,
} from '@azure/storage-blob';
import { NotFoundError, StorageError } from '../../src/common/errors.js';
import { checkKey, checkPrefix, checkRange } from '../keys.js';
import { forEachLimit } from '../limit.js';
import { guardStream } from '../stream-guard.js';
import type { DriverOptions, GetOptions, ObjectInfo, Op, PutOptions, StorageDriver, StorageFeature } from '../types.js';
import { resolveAzureAccess, type AzureAccess, type AzureEnv } from './azure-auth.js';
import { blockId, MAX_BLOCKS, newPutId, readBlocks, type Block } from './azure-blocks.js';
import { azureError, classifyAzureError } from './azure-errors.js';
import { createAgent } from './azure-http.js';
import { createEntraIdCredential, type IdentityLoader } from './azure-token.js';
import { parseAzureSettings, type AzureSettings } from './azure-settings.js';
import { formatAzureLocation, parseAzureUrl, type AzureLocation } from './azure-url.js';

/** Staged blocks uploading at once, per put. */
const STAGE_CONCURRENCY = 2;
const DELETE_CONCURRENCY = 16;
/** Metadata name marking the put that committed a blob (put-if-absent only). */
const PUT_ID_META = 'pgarkput';

export async function createDriver(url: URL, options: DriverOptions): Promise<StorageDriver> {
  return createAzureDriver(url, options, process.env);
}

/**
 * As createDriver, with the environment passed in (tests use it to vary credentials). `@azure/identity`
 * is loaded (through `identity`) only when no key, SAS or connection string is set.
 */
export async function createAzureDriver(url: URL, options: DriverOptions, env: AzureEnv, identity?: IdentityLoader): Promise<AzureDriver> {
  const loc = parseAzureUrl(url);
  const settings = parseAzureSettings(options.settings);
  const access = resolveAzureAccess(loc, env, settings.endpoint);
  const token = access.auth.kind === 'entraId' ? await createEntraIdCredential(identity) : undefined;
  return new AzureDriver(loc, settings, access, token);
}

export class AzureDriver implements StorageDriver {
  readonly name = 'azure';
  readonly features: ReadonlySet<StorageFeature> = new Set<StorageFeature>(['rangeRead', 'conditionalPut']);
  readonly location: string;
  /** The blob service URL in use (no credential in it). */
  readonly serviceUrl: string;
  private readonly agent: Agent;
  private readonly container: ContainerClient;
  private readonly prefix: string;

  constructor(
    private readonly loc: AzureLocation,
    private readonly settings: AzureSettings,
    private readonly access: AzureAccess,
    /** The Entra ID credential when access.auth is 'entraId'. */
    tokenCredential?: TokenCredential,
  ) {
    this.prefix = loc.prefix;
    this.serviceUrl = access.serviceUrl;
    this.location = formatAzureLocation(access.account, loc.container, loc.prefix);
    const protocol = new URL(access.serviceUrl).protocol === 'https:' ? 'https:' : 'http:';
    this.agent = createAgent({ protocol, idleMs: settings.timeoutMs });
    if (access.auth.kind === 'entraId' && !tokenCredential) throw new Error('azure driver: an Entra ID access needs its token credential');
    const credential =
      access.auth.kind === 'sharedKey'
        ? new StorageSharedKeyCredential(access.auth.accountName, access.auth.accountKey)
        : access.auth.kind === 'entraId'
          ? (tokenCredential as TokenCredential)
          : new AnonymousCredential();
    // `agent` is not in StoragePipelineOptions' type but reaches core-rest-pipeline's agentPolicy.
    const pipelineOptions: StoragePipelineOptions & { agent: Agent } = {
      agent: this.agent,
      // Modest: the repository retries transient errors again on top. Bodies are always Buffers,
      // so every request the SDK retries can be re-sent whole. No tryTimeoutInMs: in this SDK it
      // only sets the service-side timeout, which would also cut slow but progressing uploads;
      // stalls are caught by the agent's no-progress timeout instead.
      retryOptions: { maxTries: 3, retryDelayInMs: 500, maxRetryDelayInMs: 4000 },
      userAgentOptions: { userAgentPrefix: 'pgark' },
    };
    const pipeline = newPipeline(credential, pipelineOptions);
    const query = access.auth.kind === 'sas' ? `?${access.auth.token}` : '';
    this.container = new ContainerClient(`${access.serviceUrl}/${loc.container}${query}`, pipeline);
  }

  async stat(path: string, o: Op = {}): Promise<ObjectInfo | null> {
    checkKey(path);
    o.signal?.throwIfAborted();
    try {
      const p = await this.blob(path).getProperties({ abortSignal: o.signal });
      return { path, size: p.contentLength ?? 0, mtimeMs: p.lastModified?.getTime() ?? Date.now() };
    } catch (err) {
      if (classifyAzureError(err) === 'notFound') return null;
      throw this.error(err, 'stat', path, o.signal);
    }
  }

  async *list(prefix: string, o: Op = {}): AsyncGenerator<ObjectInfo> {
    checkPrefix(prefix);
    o.signal?.throwIfAborted();
    // Flat listing: recursive, plain string prefix, committed blobs only (uncommitted ones are
    // listed only on request).
    const pages = this.container.listBlobsFlat({ prefix: this.prefix + prefix, abortSignal: o.signal }).byPage({ maxPageSize: 1000 });
    for (;;) {
      let page;
      try {
        const r = await pages.next();
        if (r.done) return;
        page = r.value;
      } catch (err) {
        throw this.error(err, 'list', prefix, o.signal);
      }
      for (const item of page.segment.blobItems) {
        yield {
          path: item.name.slice(this.prefix.length),
          size: item.properties.contentLength ?? 0,
          mtimeMs: item.properties.lastModified.getTime(),
        };
      }
    }
  }

  async get(path: string, o: GetOptions = {}): Promise<Readable> {
    checkKey(path);
    const { offset, length } = checkRange(path, o);
    const { signal } = o;
    signal?.throwIfAborted();
    if (length === 0) {
      // No zero-length range exists in HTTP: check existence instead.
      if (!(await this.stat(path, o))) throw new NotFoundError(path);
      return Readable.from([]);
    }
    let body: NodeJS.ReadableStream | undefined;
    let expectedBytes: number | undefined;
    try {
      const res = await this.blob(path).download(offset, length, { abortSignal: signal, maxRetryRequests: 2 });
      body = res.readableStreamBody;
      expectedBytes = res.contentLength;
    } catch (err) {
      if (classifyAzureError(err) === 'range') return Readable.from([]);
      throw this.error(err, 'read', path, signal);
    }
    if (!body) return Readable.from([]);
    return this.wrapDownload(body as Readable, path, expectedBytes, signal);
  }

  async put(path: string, body: Readable | Buffer, o: PutOptions = {}): Promise<{ size: number }> {
    checkKey(path);
    const { signal } = o;
    const ifAbsent = o.ifAbsent ?? false;
    if (signal?.aborted) {
      if (!Buffer.isBuffer(body)) body.destroy();
      signal.throwIfAborted();
    }
    // Errors raised by the caller's body stream are theirs: pass them through unwrapped.
    let bodyError: unknown;
    if (!Buffer.isBuffer(body)) {
      body.on('error', (err) => (bodyError ??= err));
      // Aborting destroys the body, which ends the block reader with the AbortError.
      if (signal) addAbortSignal(signal, body);
    }
    // Cancels this put's in-flight requests when the caller aborts or one part of it fails.
    const local = new AbortController();
    const onAbort = (): void => local.abort(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    const requestSignal = local.signal;
    const putId = newPutId();
    const blocks = readBlocks(Buffer.isBuffer(body) ? [body] : body, this.settings.blockSize);
    const blob = this.blob(path);
    const conditions = ifAbsent ? { ifNoneMatch: '*' } : undefined;
    const metadata = ifAbsent ? { [PUT_ID_META]: putId } : undefined;
    try {
      const first = await blocks.next();
      if (first.done) throw new Error('internal: no block');
      if (first.value.last) {
        const data = first.value.data;
        await blob.upload(data, data.length, { abortSignal: requestSignal, conditions, metadata });
        return { size: data.length };
      }
      const { ids, size } = await this.stageAll(path, blob, putId, first.value, blocks, local);
      await blob.commitBlockList(ids, { abortSignal: requestSignal, conditions, metadata });
      return { size };
    } catch (err) {
      local.abort();
      // A failed put never consumes the rest of the body; release whatever feeds it.
      await blocks.return(undefined).catch(() => undefined);
      if (!Buffer.isBuffer(body) && !body.destroyed) body.destroy();
      if (bodyError !== undefined && err === bodyError) throw err;
      if (ifAbsent && classifyAzureError(err) === 'exists') {
        // An SDK retry of our own commit may have found the blob that commit had created.
        const own = await this.ownCommitSize(blob, putId);
        if (own !== undefined) return { size: own };
      }
      throw this.error(err, 'write', path, signal);
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  async delete(paths: string[], o: Op = {}): Promise<void> {
    for (const p of paths) checkKey(p);
    // Deletes are free on Azure and a batch needs a multipart body per 256 keys; individual
    // requests, 16 at a time, keep it simple.
    await forEachLimit(paths, DELETE_CONCURRENCY, async (p) => {
      o.signal?.throwIfAborted();
      try {
        await this.blob(p).delete({ abortSignal: o.signal, deleteSnapshots: 'include' });
      } catch (err) {
        if (classifyAzureError(err) === 'notFound') return;
        throw this.error(err, 'delete', p, o.signal);
      }
    });
  }

  async close(): Promise<void> {
    this.agent.destroy();
  }

  private blob(key: string): BlockBlobClient {
    return this.container.getBlockBlobClient(this.prefix + key);
  }

  private async stageAll(
    path: string,
    blob: BlockBlobClient,
    putId: string,
    first: Block,
    blocks: AsyncGenerator<Block, void, undefined>,
    controller: AbortController,
  ): Promise<{ ids: string[]; size: number }> {
    const signal = controller.signal;
    const ids: string[] = [];
    const inflight = new Set<Promise<void>>();
    let failure: { err: unknown } | undefined;
    let size = 0;
    let block = first;
    for (;;) {
      if (ids.length >= MAX_BLOCKS) {
        throw new StorageError('azure', `unable to write '${path}' to ${this.location}: more than ${MAX_BLOCKS} blocks; raise the 'azure-block-size' setting`, { transient: false });
      }
      const id = blockId(putId, ids.length);
      ids.push(id);
      size += block.data.length;
      const data = block.data;
      const p: Promise<void> = blob.stageBlock(id, data, data.length, { abortSignal: signal }).then(
        () => {
          inflight.delete(p);
        },
        (err: unknown) => {
          inflight.delete(p);
          failure ??= { err };
          // Stop the other block in flight: the put has failed.
          controller.abort();
        },
      );
      inflight.add(p);
      if (block.last) break;
      while (inflight.size >= STAGE_CONCURRENCY && !failure) await Promise.race(inflight);
      if (failure) break;
      const next = await blocks.next();
      if (next.done) break;
      block = next.value;
    }
    await Promise.all(inflight);
    if (failure) throw failure.err;
    return { ids, size };
  }

  /** The blob's size when its metadata says our put `putId` committed it, else undefined. */
  private async ownCommitSize(blob: BlockBlobClient, putId: string): Promise<number | undefined> {
    try {
      const p = await blob.getProperties();
      return p.metadata?.[PUT_ID_META] === putId ? (p.contentLength ?? 0) : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * The SDK's lazy download stream with its errors mapped (no SDK text, which may carry the
   * URL), a short body refused, and the caller's signal attached.
   */
  private wrapDownload(source: Readable, path: string, expectedBytes: number | undefined, signal: AbortSignal | undefined): Readable {
    const mapped = new PassThrough();
    source.on('error', (err) => mapped.destroy(this.error(err, 'read', path, signal)));
    mapped.on('close', () => {
      if (!source.destroyed) source.destroy();
    });
    source.pipe(mapped);
    const out = guardStream(mapped, { driver: 'azure', what: `'${path}' from ${this.location}`, expectedBytes });
    return signal ? addAbortSignal(signal, out) : out;
  }

  private error(err: unknown, verb: string, key: string, signal: AbortSignal | undefined): Error {
    return azureError(
      err,
      {
        verb,
        key,
        location: this.location,
        container: this.loc.container,
        account: this.access.account,
        credentialSource: this.access.source,
        secrets: this.access.secrets,
        timeoutMs: this.settings.timeoutMs,
      },
      signal?.aborted ?? false,
    );
  }
}
