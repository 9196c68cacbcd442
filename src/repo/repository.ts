/**
 * The repository on top of any storage driver: checksummed objects, stanza metadata,
 * retries of transient storage errors. It is the only door to storage: code outside src/repo/
 * and storage-drivers/ stores, reads, lists and deletes through it, never through `driver`.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { PassThrough, Readable, Transform, type TransformCallback } from 'node:stream';
import { AlreadyExistsError, ArchiveMismatchError, IntegrityError, NotARepositoryError, NotFoundError } from '../common/errors.js';
import { retryDelayMs, waitToRetry, withRetry, type RetryPolicy } from '../common/retry.js';
import type { CodecName } from '../io/codec.js';
import type { InPlaceFile, ObjectInfo, Op, StorageDriver } from '../../storage-drivers/types.js';
import { decodeObject, encodeObject, type DecodeOptions, encodeSmallObject, readAll, trailerFromTail, type DecodedStream, type EncodeResult, type EncodedObject } from './object-stream.js';
import { keyedDigest } from './chunk-cipher.js';
import { openObjectReader, type ObjectReader } from './object-reader.js';
import { keyringKey, RepoCipher, type KeySource } from './repo-cipher.js';
import { MAX_TRAILER_WRAPPER, type ObjectTrailer } from './object-format.js';
import { stanzaMetaKey } from './layout.js';
import { assertSameCluster, parseStanzaMeta, REPO_FORMAT_VERSION, type ClusterIdentity, type StanzaMeta } from './stanza-meta.js';
import { PGARK_VERSION } from '../version.js';

/** The error a stream sees when another stream of its pipeline failed or went away. */
function isStreamTeardown(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as NodeJS.ErrnoException).code;
  return err.name === 'AbortError' || code === 'ABORT_ERR' || code === 'ERR_STREAM_PREMATURE_CLOSE' || code === 'ERR_STREAM_DESTROYED';
}

export interface PutObjectOptions {
  codec: CodecName;
  level?: number | undefined;
  ifAbsent?: boolean;
}

/**
 * Passes a stored object's bytes through unchanged while decoding a copy of them: it ends only
 * after the whole object verified (checksum, sizes), so a put fed from it fails before it can
 * commit when the source is damaged.
 */
class VerifyingTap extends Transform {
  private readonly feed = new PassThrough();
  private readonly checked: Promise<void>;

  constructor(key: string, keys: Awaited<ReturnType<RepoCipher['forRead']>>) {
    super();
    this.checked = (async () => {
      const decoded = await decodeObject(this.feed, key, {}, keys);
      decoded.on('error', () => undefined); // `verified` rejects with the same error
      decoded.resume();
      await decoded.verified;
    })();
    // A failure before the end (an encrypted chunk that fails authentication) stops the copy
    // now: the decoder no longer reads its feed, so waiting for it to drain would wait forever.
    this.checked.catch((err: Error) => this.destroy(err));
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    // The decoder gets its own copy: its decompressor owns its input and may write into it
    // (object-stream.ts decodeObject), and these bytes go on to the target unchanged.
    if (this.feed.write(Buffer.from(chunk))) cb(null, chunk);
    else this.feed.once('drain', () => cb(null, chunk));
  }

  override _flush(cb: TransformCallback): void {
    this.feed.end();
    this.checked.then(() => cb(), (err: Error) => cb(err));
  }

  override _destroy(err: Error | null, cb: (error: Error | null) => void): void {
    this.feed.destroy();
    cb(err);
  }
}

export interface CopyObjectResult {
  status: 'copied' | 'exists';
  /** as-stored: the stored bytes themselves (both plain, or the same data key in both keyrings); re-encoded: decoded and encoded with the target's key. */
  how: 'as-stored' | 're-encoded' | 'none';
  rawSize: number;
}

export class Repository {
  private stanzaMeta: StanzaMeta | undefined;
  private markerGuard: { key: string; intervalMs: number; checkedAt: number } | undefined;
  /** Encryption of this stanza's objects (repo-cipher.ts): its keyring is read on first use. */
  cipher: RepoCipher;

  constructor(
    readonly driver: StorageDriver,
    readonly stanza: string,
    readonly retry: RetryPolicy,
  ) {
    this.cipher = this.cipherWith(undefined);
  }

  /** Use this key-encryption key source (from the settings) for the stanza's keyring. */
  useKeySource(source: KeySource | undefined): void {
    this.cipher = this.cipherWith(source);
  }

  private cipherWith(source: KeySource | undefined): RepoCipher {
    return new RepoCipher(this.stanza, source, async () => {
      const key = keyringKey(this.stanza);
      // One stat for a stanza without a keyring (every plain repository): same cost as a get that misses.
      if (!(await this.stat(key))) return null;
      try {
        return await readAll(await this.getObject(key), 1024 * 1024);
      } catch (err) {
        if (err instanceof NotFoundError) return null;
        throw err;
      }
    });
  }

  /**
   * Whether a stored trailer (readTrailer) records this content: for an encrypted object its
   * keyed digest is compared (which needs the data key it names).
   */
  async trailerMatches(key: string, trailer: ObjectTrailer, sha256: string, rawSize: number): Promise<boolean> {
    if (trailer.rawSize !== rawSize) return false;
    if (trailer.keyNumber === undefined) return trailer.sha256 === sha256;
    return trailer.sha256 === keyedDigest(await this.cipher.dataKey(trailer.keyNumber, key), sha256);
  }

  /**
   * Before a write, make sure the repository marker `key` (just checked by the caller) is still
   * there when the last check is older than `intervalMs`: a long-running agent or receiver whose
   * repository is unmounted under it must not start a new one in the bare mount point.
   */
  guardMarker(key: string, intervalMs: number): void {
    this.markerGuard = { key, intervalMs, checkedAt: Date.now() };
  }

  /** @internal (copyObjectTo of another Repository). */
  async checkMarker(): Promise<void> {
    const g = this.markerGuard;
    if (!g || Date.now() - g.checkedAt < g.intervalMs) return;
    if (!(await this.stat(g.key))) {
      throw new NotARepositoryError(
        `the repository marker '${g.key}' is no longer in '${this.driver.location}' (unmounted, or removed?): nothing was written; ` +
        'mount the repository again, or, if this is the right location, run pgark repo create',
      );
    }
    g.checkedAt = Date.now();
  }

  /** Store `openRaw()`'s bytes as a checksummed object. Retries reopen the source. */
  async putObject(key: string, openRaw: () => Readable, o: PutObjectOptions): Promise<EncodeResult> {
    await this.checkMarker();
    const enc = await this.cipher.forWrite(key);
    return this.putEncodedWith(key, o.ifAbsent ?? false, async (onSourceError) => {
      const source = openRaw();
      source.on('error', onSourceError);
      return encodeObject(source, o.codec, o.level, enc);
    });
  }

  /**
   * putObject for a caller that encodes a plain object itself (wal/segment-object.ts, the one-pass
   * encoder of the agent's and wal-push's segments): `open()` returns the stored bytes (header,
   * payload, trailer of object-format.ts) and, once all are produced, their trailer. Same contract
   * as putObject (retried; reopened per attempt). undefined, with nothing stored, when the stanza
   * encrypts `key`: the caller then uses putObject.
   */
  async putPlainEncoded(key: string, open: () => EncodedObject | Promise<EncodedObject>, o: { ifAbsent?: boolean } = {}): Promise<EncodeResult | undefined> {
    await this.checkMarker();
    if ((await this.cipher.forWrite(key)) !== undefined) return undefined;
    return this.putEncodedWith(key, o.ifAbsent ?? false, async (onSourceError) => {
      // The encoder reads the source itself: its own errors (a failed read, refused bytes) are the cause.
      const e = await open();
      e.stream.on('error', onSourceError);
      return e;
    });
  }

  /** `open(onSourceError)` encodes the object afresh (per attempt) and reports its source's errors to `onSourceError`. */
  private async putEncodedWith(key: string, ifAbsent: boolean, open: (onSourceError: (err: unknown) => void) => Promise<EncodedObject>): Promise<EncodeResult> {
    // What an earlier attempt encoded: when that attempt's put was stored but its answer lost
    // (a transient error after the store committed), a retried put-if-absent finds the object
    // there. If it holds exactly our content, it is our own write, not someone else's.
    let encoded: EncodeResult | undefined;
    return withRetry(`store '${key}'`, this.retry, async (attempt) => {
      // An error of the source itself (the local file cannot be read) is the cause of whatever
      // the encoder and the put then report. (The source also sees the abort that follows a
      // failed put: that one is a consequence, not a cause.)
      let sourceError: unknown;
      const { stream, done } = await open((err) => {
        if (!isStreamTeardown(err)) sourceError ??= err;
      });
      void done.then((r) => (encoded = r), () => undefined);
      try {
        try {
          await this.driver.put(key, stream, { ifAbsent });
        } catch (putError) {
          // The encoder then fails too (its consumer went away: an AbortError or a premature
          // close), and that must not hide why the put failed (ENOSPC, EACCES, a transient
          // network error that is retried).
          stream.destroy();
          await done.catch(() => undefined);
          throw sourceError ?? putError;
        }
        return await done.catch((encodeError: unknown) => {
          throw sourceError ?? encodeError;
        });
      } catch (err) {
        if (!(err instanceof AlreadyExistsError) || attempt === 1 || !encoded) throw err;
        const mine = encoded;
        const st = await this.driver.stat(key);
        const theirs = st ? await this.readTrailer(key, st.size).catch(() => undefined) : undefined;
        if (st && theirs && (await this.trailerMatches(key, theirs, mine.sha256, mine.rawSize))) return { ...mine, storedSize: st.size };
        throw err;
      }
    });
  }

  /**
   * Store a small buffer uncompressed, encoded in memory (see encodeSmallObject). Same contract
   * as putObject: retried, and a retried put-if-absent finding exactly its own content succeeds.
   */
  async putSmallObject(key: string, raw: Buffer, o: { ifAbsent?: boolean } = {}): Promise<EncodeResult> {
    await this.checkMarker();
    const { body, result } = encodeSmallObject(raw, await this.cipher.forWrite(key));
    return withRetry(`store '${key}'`, this.retry, async (attempt) => {
      try {
        await this.driver.put(key, body, { ifAbsent: o.ifAbsent ?? false });
        return result;
      } catch (err) {
        if (!(err instanceof AlreadyExistsError) || attempt === 1) throw err;
        const st = await this.driver.stat(key);
        const theirs = st ? await this.readTrailer(key, st.size).catch(() => undefined) : undefined;
        if (st && theirs && (await this.trailerMatches(key, theirs, result.sha256, result.rawSize))) return { ...result, storedSize: st.size };
        throw err;
      }
    });
  }

  /** Open a verified, decoded stream of an object. NotFoundError when missing. */
  /** A stored object's content, verified as it is read (see decodeObject for `o.contentHash`). */
  async getObject(key: string, o: DecodeOptions = {}): Promise<DecodedStream> {
    const keys = await this.cipher.forRead(key);
    const stored = await withRetry(`read '${key}'`, this.retry, () => this.driver.get(key));
    try {
      return await decodeObject(stored, key, o, keys);
    } catch (err) {
      stored.destroy();
      throw err;
    }
  }

  /**
   * The same content and checks as getObject, pulled chunk by chunk (object-reader.ts): each
   * chunk is valid until the next is asked for. For readers that use every chunk at once (restore).
   * `blocking`: the calling thread has nothing else to do while it reads (GetOptions.blocking).
   */
  async readObject(key: string, o: DecodeOptions & { blocking?: boolean } = {}): Promise<ObjectReader> {
    const keys = await this.cipher.forRead(key);
    const stored = await withRetry(`read '${key}'`, this.retry, () => this.driver.get(key, o.blocking === true ? { blocking: true } : {}));
    try {
      return await openObjectReader(stored, key, o, keys);
    } catch (err) {
      stored.destroy();
      throw err;
    }
  }

  /**
   * A received-WAL journal file (wal/received-journal.ts), preallocated to `size` bytes and
   * written in place: only on a store that can (the fs driver) and in a plain stanza (an
   * encrypted one stores every byte as encrypted objects); undefined otherwise.
   */
  async createJournalFile(key: string, size: number): Promise<InPlaceFile | undefined> {
    if (!(await this.journalAllowed(key))) return undefined;
    await this.checkMarker();
    return this.driver.createInPlace!(key, size);
  }

  /** Whether `key` may be a journal file now (the store can, and the stanza is plain: it may become encrypted). */
  async journalAllowed(key: string): Promise<boolean> {
    return !!this.driver.createInPlace && (await this.cipher.forWrite(key)) === undefined;
  }

  /**
   * The stored bytes of `key` as they are (no object decoding): for received-WAL journals, whose
   * records carry their own checksums (JournalScanner). NotFoundError when missing.
   */
  async getRaw(key: string): Promise<Readable> {
    return withRetry(`read '${key}'`, this.retry, () => this.driver.get(key));
  }

  /** Where the repository is, for messages and reports (a display form without secrets). */
  get location(): string {
    return this.driver.location;
  }

  /** The storage driver's name: 'fs', 'ssh', 's3', 'azure', 'gcs' or 'memory'. */
  get driverName(): string {
    return this.driver.name;
  }

  async stat(key: string, o: Op = {}): Promise<ObjectInfo | null> {
    return withRetry(`stat '${key}'`, this.retry, () => this.driver.stat(key, o), o.signal);
  }

  /**
   * Every object whose key starts with `prefix` (see StorageDriver.list), in no guaranteed
   * order. A transient error while listing starts the listing again, within the retry policy,
   * and the objects already yielded are not yielded again.
   */
  async *list(prefix: string, o: Op = {}): AsyncGenerator<ObjectInfo, void, undefined> {
    const yielded = this.retry.attempts > 1 ? new Set<string>() : undefined;
    const start = Date.now();
    for (let attempt = 1; ; attempt++) {
      o.signal?.throwIfAborted();
      try {
        for await (const info of this.driver.list(prefix, o)) {
          if (yielded) {
            if (yielded.has(info.path)) continue;
            yielded.add(info.path);
          }
          yield info;
        }
        return;
      } catch (err) {
        const delay = retryDelayMs(err, attempt, this.retry, start);
        if (delay === undefined) throw err;
        await waitToRetry(`list '${prefix}'`, err, attempt, this.retry, delay, o.signal);
      }
    }
  }

  /** Delete `keys` (missing ones are not an error), retried as a whole on a transient error. */
  async delete(keys: string[], o: Op = {}): Promise<void> {
    const what = keys.length === 1 ? `delete '${keys[0]}'` : `delete ${keys.length} objects`;
    await withRetry(what, this.retry, () => this.driver.delete(keys, o), o.signal);
  }

  /**
   * Remove what writers that died left under `prefix` (see StorageDriver.sweep): 0 on a store
   * that leaves no such leftovers. Returns the number removed.
   */
  async sweep(prefix: string, o: Op = {}): Promise<number> {
    if (!this.driver.sweep) return 0;
    const sweep = this.driver.sweep.bind(this.driver);
    return withRetry(`sweep '${prefix}'`, this.retry, () => sweep(prefix, o), o.signal);
  }

  /** Read an object's trailer (size and sha256 of its content) with one ranged read. */
  async readTrailer(key: string, storedSize: number): Promise<ObjectTrailer> {
    const offset = Math.max(0, storedSize - MAX_TRAILER_WRAPPER);
    const tail = await withRetry(`read '${key}'`, this.retry, async () =>
      readAll(await this.driver.get(key, { offset, length: storedSize - offset }), MAX_TRAILER_WRAPPER),
    );
    if (tail.length !== storedSize - offset) throw new IntegrityError(`unable to read '${key}': object shorter than its listed size`);
    return trailerFromTail(tail, key);
  }

  async putJson(key: string, value: unknown, ifAbsent = false): Promise<void> {
    const body = Buffer.from(JSON.stringify(value, null, 2) + '\n');
    await this.putObject(key, () => Readable.from([body]), { codec: 'none', ifAbsent });
  }

  async getJson(key: string): Promise<string> {
    return (await readAll(await this.getObject(key), 16 * 1024 * 1024)).toString('utf8');
  }

  /** The stanza's metadata, or null when the stanza has never been written. */
  async readStanza(): Promise<StanzaMeta | null> {
    if (this.stanzaMeta) return this.stanzaMeta;
    const key = stanzaMetaKey(this.stanza);
    try {
      this.stanzaMeta = parseStanzaMeta(await this.getJson(key), key);
      return this.stanzaMeta;
    } catch (err) {
      if (err instanceof NotFoundError) return null;
      throw err;
    }
  }

  /** Drop the cached stanza metadata (stanza-upgrade rewrote it). */
  forgetStanza(): void {
    this.stanzaMeta = undefined;
  }

  async requireStanza(): Promise<StanzaMeta> {
    const meta = await this.readStanza();
    if (!meta) {
      throw new NotFoundError(stanzaMetaKey(this.stanza),
        `stanza '${this.stanza}' does not exist in repository '${this.driver.location}' (it is created by the first wal-push or backup)`);
    }
    return meta;
  }

  /**
   * Return the stanza bound to `identity`, creating it on first use. A stanza of another
   * cluster is a ClusterMismatchError; concurrent creators agree through put-if-absent.
   */
  async ensureStanza(identity: ClusterIdentity, codec: CodecName, what: string): Promise<StanzaMeta> {
    let meta = await this.readStanza();
    if (!meta) {
      const fresh: StanzaMeta = {
        format: REPO_FORMAT_VERSION,
        stanza: this.stanza,
        ...identity,
        codec,
        createdAt: new Date().toISOString(),
        createdBy: `pgark ${PGARK_VERSION}`,
      };
      try {
        await this.putJson(stanzaMetaKey(this.stanza), fresh, true);
        this.stanzaMeta = meta = fresh;
      } catch (err) {
        if (!(err instanceof AlreadyExistsError)) throw err;
        meta = await this.requireStanza();
      }
    }
    assertSameCluster(meta, identity, what);
    return meta;
  }

  /**
   * Copy object `key` into `target` (another repository of the stanza, `pgark copy`), verified on
   * the way. When the object here is plain and the target stores plain objects, or it is
   * encrypted under a data key the target's keyring holds too, the stored bytes are copied as
   * they are (no re-compression, no re-encryption), each authenticated and checksummed as it
   * passes; otherwise the content is decoded here and encoded with the target's current key and
   * `codec` (re-encryption). Never overwrites: an object
   * already in the target with the same content is 'exists'; different content is an
   * ArchiveMismatchError and the target's copy is left unchanged.
   */
  async copyObjectTo(target: Repository, key: string, o: { codec: CodecName }): Promise<CopyObjectResult> {
    const st = await this.stat(key);
    if (!st) throw new NotFoundError(key, `unable to copy '${key}': not in repository '${this.location}'`);
    const trailer = await this.readTrailer(key, st.size);
    const contentSha = async (): Promise<string> => {
      if (trailer.keyNumber === undefined) return trailer.sha256;
      const hash = createHash('sha256');
      const body = await this.getObject(key);
      for await (const chunk of body) hash.update(chunk as Buffer);
      await body.verified;
      return hash.digest('hex');
    };
    const existing = await target.stat(key);
    if (existing) {
      const theirs = await target.readTrailer(key, existing.size);
      // Under the same data key in both, the keyed digests compare as they are (no decryption).
      const sameKey = trailer.keyNumber !== undefined && theirs.keyNumber === trailer.keyNumber && (await this.sharesDataKey(target, trailer.keyNumber, key));
      if (sameKey ? theirs.sha256 === trailer.sha256 && theirs.rawSize === trailer.rawSize : await target.trailerMatches(key, theirs, await contentSha(), trailer.rawSize)) {
        return { status: 'exists', how: 'none', rawSize: trailer.rawSize };
      }
      throw new ArchiveMismatchError(`unable to copy '${key}': '${target.location}' holds a different object under this name; it was left unchanged`);
    }
    const enc = await target.cipher.forWrite(key);
    // As stored: both plain, or encrypted under a data key the target's keyring holds too (key
    // init --share-from): the object's name, in every chunk's AAD, is the same in both.
    const asStored = trailer.keyNumber === undefined ? enc === undefined : enc !== undefined && (await this.sharesDataKey(target, trailer.keyNumber, key));
    if (asStored) {
      await target.checkMarker();
      const keys = await this.cipher.forRead(key);
      try {
        await withRetry(`copy '${key}'`, target.retry, async () => {
          const stored = await withRetry(`read '${key}'`, this.retry, () => this.driver.get(key));
          const tap = new VerifyingTap(key, keys);
          stored.on('error', (err) => tap.destroy(err));
          stored.pipe(tap);
          try {
            await target.driver.put(key, tap, { ifAbsent: true });
          } catch (err) {
            stored.destroy();
            tap.destroy();
            throw err;
          }
        });
      } catch (err) {
        // A retried put whose first attempt committed finds its own bytes (the same trailer).
        if (!(err instanceof AlreadyExistsError)) throw err;
        const now = await target.stat(key);
        const theirs = now ? await target.readTrailer(key, now.size) : undefined;
        if (!theirs || now!.size !== st.size || theirs.sha256 !== trailer.sha256 || theirs.rawSize !== trailer.rawSize || theirs.keyNumber !== trailer.keyNumber) throw err;
      }
      return { status: 'copied', how: 'as-stored', rawSize: trailer.rawSize };
    }
    const r = await target.putObject(key, () => {
      const out = new PassThrough();
      this.getObject(key).then((body) => {
        body.on('error', (err) => out.destroy(err));
        body.pipe(out);
      }, (err: Error) => out.destroy(err));
      return out;
    }, { codec: o.codec, ifAbsent: true });
    return { status: 'copied', how: 're-encoded', rawSize: r.rawSize };
  }

  /** Whether data key `n` of this stanza is in `target`'s keyring too, the same key. */
  private async sharesDataKey(target: Repository, n: number, key: string): Promise<boolean> {
    const theirs = await target.cipher.heldDataKey(n);
    if (!theirs) return false;
    const mine = await this.cipher.dataKey(n, key);
    return mine.length === theirs.length && timingSafeEqual(mine, theirs);
  }

  async close(): Promise<void> {
    await this.driver.close();
  }
}
