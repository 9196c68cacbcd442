/**
 * A small fake of the Google Cloud Storage JSON API (v1) for tests: no GCS emulator can be
 * installed here. It listens on 127.0.0.1 (port 0), keeps objects as files under a temp dir
 * (uploads stream to disk, downloads stream from disk: memory stays bounded for 100+ MB objects)
 * and implements the subset that @google-cloud/storage 7 uses for objects, following Google's
 * documentation:
 *
 * - objects.insert, `POST /upload/storage/v1/b/{bucket}/o` ("Upload objects", "Perform
 *   multipart uploads", "Perform resumable uploads"):
 *   - `uploadType=media`: the body is the object, `name` in the query.
 *   - `uploadType=multipart`: a `multipart/related` body of exactly two parts, JSON metadata
 *     first (the name may be in it instead of the query), then the data.
 *   - `uploadType=resumable`: the POST (optional JSON metadata) starts a session and answers
 *     200 with `Location: <session URI with upload_id>` and an empty body. `PUT <session URI>`
 *     with `Content-Range: bytes FIRST-LAST/TOTAL` (TOTAL may be `*` while unknown) appends a
 *     chunk: 308 with `Range: bytes=0-N` (no Range header while nothing is persisted) until
 *     the last byte of a known TOTAL arrives, then 200 with the object resource. Only whole
 *     multiples of 256 KiB of a non-final chunk are persisted ("Cloud Storage might not persist
 *     all bytes; resume from the Range header"); a chunk that starts past the persisted size is
 *     a 400, bytes that were already persisted are skipped. `Content-Range: bytes *\/TOTAL` or
 *     `bytes *\/*` with an empty body queries the status (308 + Range, or 200 + resource when
 *     finished). A request cut before its end persists none of its bytes. `DELETE <session URI>`
 *     cancels the session: 499, and later requests on it get a 4xx (410 here). A session is
 *     never an object: nothing is visible until the final chunk is committed. Session URIs
 *     need no Authorization (the upload_id is the credential).
 *   - Preconditions: `ifGenerationMatch` (0 = "the object must not exist") is checked when a
 *     resumable session starts and again, atomically with the commit, when any upload
 *     finishes: of racing writers exactly one wins, the others get 412 `conditionNotMet`.
 * - objects.get, `GET /storage/v1/b/{bucket}/o/{object}`: the object resource, or with
 *   `alt=media` the data (also `GET /download/storage/v1/...`), honouring `Range: bytes=a-b`,
 *   `bytes=a-` and `bytes=-n` (206 + Content-Range; 416 when the first byte is at or past the
 *   end), with x-goog-generation, x-goog-hash (crc32c, md5), x-goog-stored-content-length and
 *   x-goog-stored-content-encoding headers. `ifGenerationMatch` -> 412 when it does not hold.
 * - objects.list, `GET /storage/v1/b/{bucket}/o`: `prefix`, `startOffset`, `endOffset`,
 *   `maxResults` (default and cap 1000), `pageToken`/`nextPageToken`; items in lexicographic
 *   (UTF-8 byte) order; `items` omitted when empty, `nextPageToken` only when more remain.
 * - objects.delete, `DELETE /storage/v1/b/{bucket}/o/{object}`: 204; 404 when missing;
 *   `ifGenerationMatch` honoured.
 * - buckets.get, `GET /storage/v1/b/{bucket}`: a minimal bucket resource.
 * - Generations: every committed upload gets a new, increasing generation (microseconds, as
 *   GCS does), metageneration 1.
 * - Errors in Google's JSON format `{"error":{"code","message","errors":[{"message","domain",
 *   "reason"}]}}`: 404 notFound ("No such object: b/o", "The specified bucket does not
 *   exist."), 412 conditionNotMet, 416 requestedRangeNotSatisfiable, 401 required/authError
 *   (when a bearer token is required), 400 invalid.
 * - The library's STORAGE_EMULATOR_HOST form without `/storage/v1` (`/b/{bucket}/o/...`) is
 *   accepted as well.
 *
 * Not implemented (answered 501 or ignored): `delimiter`/`matchGlob` listing, `fields`
 * (full resources are returned, a superset), object versions, metadata updates (PATCH),
 * compose/copy/rewrite, ACLs, batch requests, customer-supplied encryption, session expiry,
 * XML API.
 *
 * Tests can require a bearer token, inject faults (`inject`), and read what happened
 * (`requests`, `sessions()`, `objectNames()`).
 */
import { createHash, randomBytes, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, mkdtemp, rm, stat, truncate, unlink } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';

const KiB = 1024;
/** Resumable chunks are persisted in multiples of this. */
export const RESUMABLE_GRANULE = 256 * KiB;
const MAX_LIST = 1000;
const METADATA_LIMIT = 1024 * KiB;

// ---------------------------------------------------------------------------
// Pure parsers (unit-tested in test/unit/gcs-fake-parsers.test.ts)
// ---------------------------------------------------------------------------

/** A parsed `Content-Range` request header of a resumable upload. */
export interface UploadRange {
  /** First and last byte of this request's body; absent for a status query (`bytes *\/...`). */
  first?: number;
  last?: number;
  /** Total object size when the client states it; undefined for `*`. */
  total?: number;
}

/** Parse `bytes a-b/total`, `bytes a-b/*`, `bytes *\/total`, `bytes *\/*`; null when malformed. */
export function parseUploadContentRange(header: string): UploadRange | null {
  const m = /^bytes (?:(\d+)-(\d+)|\*)\/(\d+|\*)$/.exec(header.trim());
  if (!m) return null;
  const out: UploadRange = {};
  if (m[3] !== '*') out.total = Number(m[3]);
  if (m[1] !== undefined && m[2] !== undefined) {
    out.first = Number(m[1]);
    out.last = Number(m[2]);
    if (out.last < out.first) return null;
    if (out.total !== undefined && out.last >= out.total) return null;
  }
  if (![out.first, out.last, out.total].every((n) => n === undefined || Number.isSafeInteger(n))) return null;
  return out;
}

/**
 * Resolve a download `Range` header against an object size (RFC 9110 byte ranges, one range).
 * Returns null to serve the whole object (no header, unparseable, or several ranges: a server
 * may ignore Range), 'unsatisfiable' for 416, else the inclusive byte span.
 */
export function resolveByteRange(header: string | undefined, size: number): { start: number; end: number } | 'unsatisfiable' | null {
  if (!header) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return null;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0) return 'unsatisfiable';
    return size === 0 ? 'unsatisfiable' : { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (m[2] !== '' && Number(m[2]) < start) return null;
  if (start >= size) return 'unsatisfiable';
  return { start, end };
}

/** Boundary of a `multipart/related; boundary=...` content type, or null. */
export function multipartBoundary(contentType: string | undefined): string | null {
  if (!contentType || !/^multipart\/related\s*;/i.test(contentType)) return null;
  const m = /;\s*boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  return m ? ((m[1] ?? m[2]) as string) : null;
}

export type MultipartEvent =
  | { type: 'part'; headers: Record<string, string> }
  | { type: 'data'; data: Buffer }
  | { type: 'partEnd' }
  | { type: 'end' };

/**
 * Incremental splitter of a multipart body (RFC 2046: parts separated by CRLF--boundary, the
 * last one followed by --). Feed it chunks as they arrive; it returns events and keeps only a
 * delimiter's worth of bytes between calls, so part data streams through.
 */
export class MultipartSplitter {
  private readonly delimiter: Buffer;
  private pending: Buffer;
  private state: 'preamble' | 'afterDelimiter' | 'headers' | 'body' | 'done' = 'preamble';

  constructor(boundary: string) {
    this.delimiter = Buffer.from(`\r\n--${boundary}`, 'latin1');
    // The first delimiter may open the body without a preceding CRLF.
    this.pending = Buffer.from('\r\n', 'latin1');
  }

  get done(): boolean {
    return this.state === 'done';
  }

  push(chunk: Buffer): MultipartEvent[] {
    const events: MultipartEvent[] = [];
    if (this.state === 'done') return events;
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    for (;;) {
      const before: string = this.state;
      const consumed = this.step(events);
      const after: string = this.state;
      if (!consumed && after === before) return events;
      if (after === 'done') return events;
    }
  }

  /** Call at the end of the body; throws when the closing delimiter never came. */
  finish(): void {
    if (this.state !== 'done') throw new Error('multipart body ended before its closing delimiter');
  }

  /** One state transition; false when more input is needed. */
  private step(events: MultipartEvent[]): boolean {
    const buf = this.pending;
    switch (this.state) {
      case 'preamble': {
        const i = buf.indexOf(this.delimiter);
        if (i < 0) {
          this.pending = buf.subarray(Math.max(0, buf.length - (this.delimiter.length - 1)));
          return false;
        }
        this.pending = buf.subarray(i + this.delimiter.length);
        this.state = 'afterDelimiter';
        return true;
      }
      case 'afterDelimiter': {
        if (buf.length < 2) return false;
        if (buf[0] === 0x2d && buf[1] === 0x2d) {
          this.state = 'done';
          events.push({ type: 'end' });
          return true;
        }
        // Transport padding (spaces, tabs) may precede the CRLF that ends the delimiter line.
        const eol = buf.indexOf('\r\n');
        if (eol < 0) return false;
        this.pending = buf.subarray(eol + 2);
        this.state = 'headers';
        return true;
      }
      case 'headers': {
        let headerText: string;
        if (buf.length >= 2 && buf[0] === 0x0d && buf[1] === 0x0a) {
          headerText = '';
          this.pending = buf.subarray(2);
        } else {
          const end = buf.indexOf('\r\n\r\n');
          if (end < 0) {
            if (buf.length > 64 * KiB) throw new Error('multipart part headers too long');
            return false;
          }
          headerText = buf.subarray(0, end).toString('latin1');
          this.pending = buf.subarray(end + 4);
        }
        const headers: Record<string, string> = {};
        for (const line of headerText.split('\r\n')) {
          const c = line.indexOf(':');
          if (c > 0) headers[line.slice(0, c).trim().toLowerCase()] = line.slice(c + 1).trim();
        }
        events.push({ type: 'part', headers });
        this.state = 'body';
        return true;
      }
      case 'body': {
        const i = buf.indexOf(this.delimiter);
        if (i < 0) {
          const keep = this.delimiter.length - 1;
          if (buf.length > keep) {
            events.push({ type: 'data', data: buf.subarray(0, buf.length - keep) });
            this.pending = buf.subarray(buf.length - keep);
          }
          return false;
        }
        if (i > 0) events.push({ type: 'data', data: buf.subarray(0, i) });
        events.push({ type: 'partEnd' });
        this.pending = buf.subarray(i + this.delimiter.length);
        this.state = 'afterDelimiter';
        return true;
      }
      case 'done':
        return false;
    }
  }
}

const CRC32C_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** Incremental CRC32C (Castagnoli), as GCS reports in `crc32c` (base64 of the big-endian value). */
export class Crc32c {
  private crc = 0xffffffff;
  update(buf: Buffer): this {
    let c = this.crc;
    for (let i = 0; i < buf.length; i++) c = (CRC32C_TABLE[(c ^ (buf[i] as number)) & 0xff] as number) ^ (c >>> 8);
    this.crc = c;
    return this;
  }
  value(): number {
    return (this.crc ^ 0xffffffff) >>> 0;
  }
  base64(): string {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(this.value());
    return b.toString('base64');
  }
}

/** Page tokens are opaque to clients: here, the last listed name. */
export function encodePageToken(lastName: string): string {
  return `p1.${Buffer.from(lastName, 'utf8').toString('base64url')}`;
}
export function decodePageToken(token: string): string | null {
  if (!token.startsWith('p1.')) return null;
  const name = Buffer.from(token.slice(3), 'base64url').toString('utf8');
  return encodePageToken(name) === token ? name : null;
}

/** GCS orders names by their UTF-8 bytes. */
export function compareNames(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** Index of the first element of sorted `names` that is >= `name` (or > when `after`). */
export function lowerBound(names: readonly string[], name: string, after = false): number {
  let lo = 0;
  let hi = names.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const c = compareNames(names[mid] as string, name);
    if (c < 0 || (after && c === 0)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

// ---------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------

export interface GcsFakeOptions {
  /** Buckets that exist (default ['pgark-test']). */
  buckets?: string[];
  /** When set, every JSON and upload request must carry `Authorization: Bearer <token>`. */
  requireBearer?: string;
  /** Prefix of generated upload ids (session URIs are credentials: tests check they never leak). */
  uploadIdPrefix?: string;
}

export interface RecordedGcsRequest {
  method: string;
  /** Path without the query. */
  path: string;
  query: Record<string, string>;
  /** `Content-Range` of upload requests. */
  contentRange?: string;
  status: number;
}

/** A fault answered instead of the real handling, for the next `times` matching requests. */
export interface GcsFault {
  match: (req: { method: string; path: string; query: Record<string, string>; contentRange?: string }) => boolean;
  /** Answer with this status and a Google JSON error... */
  status?: number;
  reason?: string;
  message?: string;
  /** ...or cut the connection without an answer... */
  drop?: boolean;
  /** ...or handle the request, then cut the connection instead of answering (a lost answer). */
  loseAnswer?: boolean;
  times?: number;
}

export interface SessionInfo {
  id: string;
  bucket: string;
  name: string;
  persisted: number;
  state: 'open' | 'finalized' | 'cancelled' | 'failed';
}

interface StoredObject {
  bucket: string;
  name: string;
  generation: number;
  size: number;
  md5: string;
  crc32c: string;
  contentType: string;
  created: Date;
  file: string;
}

interface Bucket {
  name: string;
  names: string[];
  objects: Map<string, StoredObject>;
}

interface Session {
  id: string;
  bucket: string;
  name: string;
  contentType: string;
  ifGenerationMatch: number | undefined;
  file: string;
  persisted: number;
  md5: Hash;
  crc: Crc32c;
  state: SessionInfo['state'];
  result?: StoredObject;
  /** Serializes requests on one session. */
  queue: Promise<void>;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

const notFoundObject = (bucket: string, name: string): HttpError => new HttpError(404, 'notFound', `No such object: ${bucket}/${name}`);
const conditionNotMet = (): HttpError =>
  new HttpError(412, 'conditionNotMet', 'At least one of the pre-conditions you specified did not hold.');
const invalid = (message: string): HttpError => new HttpError(400, 'invalid', message);

export class GcsFakeServer {
  readonly host = '127.0.0.1';
  port = 0;
  readonly requests: RecordedGcsRequest[] = [];
  private readonly buckets = new Map<string, Bucket>();
  private readonly sessionsById = new Map<string, Session>();
  private readonly faults: GcsFault[] = [];
  private readonly sockets = new Set<Socket>();
  private lastGeneration = 0;
  private fileSeq = 0;
  private server: Server | undefined;

  private constructor(
    readonly dir: string,
    private readonly options: GcsFakeOptions,
  ) {
    for (const b of options.buckets ?? ['pgark-test']) this.buckets.set(b, { name: b, names: [], objects: new Map() });
  }

  static async start(options: GcsFakeOptions = {}): Promise<GcsFakeServer> {
    const dir = await mkdtemp(join(tmpdir(), 'pgark-gcs-fake-'));
    await mkdir(join(dir, 'data'));
    const fake = new GcsFakeServer(dir, options);
    const server = createServer((req, res) => void fake.handle(req, res));
    server.on('connection', (s) => {
      fake.sockets.add(s);
      s.on('close', () => fake.sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, fake.host, () => resolve());
    });
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('gcs fake: no TCP address');
    fake.port = address.port;
    // Clients keep connections open between requests, as they do with GCS.
    server.keepAliveTimeout = 60_000;
    fake.server = server;
    return fake;
  }

  /** http://127.0.0.1:<port> */
  get endpoint(): string {
    return `http://${this.host}:${this.port}`;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server) {
      for (const s of this.sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    await rm(this.dir, { recursive: true, force: true });
  }

  createBucket(name: string): void {
    if (!this.buckets.has(name)) this.buckets.set(name, { name, names: [], objects: new Map() });
  }

  inject(fault: GcsFault): void {
    this.faults.push({ times: 1, ...fault });
  }

  clearFaults(): void {
    this.faults.length = 0;
  }

  /** Object names of a bucket, in listing order. */
  objectNames(bucket: string): string[] {
    return [...(this.buckets.get(bucket)?.names ?? [])];
  }

  sessions(): SessionInfo[] {
    return [...this.sessionsById.values()].map((s) => ({ id: s.id, bucket: s.bucket, name: s.name, persisted: s.persisted, state: s.state }));
  }

  /** Requests whose upload type (media, multipart, resumable) matches. */
  uploads(type: 'media' | 'multipart' | 'resumable'): RecordedGcsRequest[] {
    return this.requests.filter((r) => r.method === 'POST' && r.path.includes('/upload/') && r.query.uploadType === type && !r.query.upload_id);
  }

  // -------------------------------------------------------------------------

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake');
    const query = Object.fromEntries(url.searchParams);
    const method = (req.method ?? 'GET').toUpperCase();
    const record: RecordedGcsRequest = { method, path: url.pathname, query, status: 0 };
    const contentRange = req.headers['content-range'];
    if (typeof contentRange === 'string') record.contentRange = contentRange;
    this.requests.push(record);
    res.on('finish', () => (record.status = res.statusCode));
    req.on('error', () => undefined);

    const fault = this.faults.find((f) => (f.times ?? 1) > 0 && f.match(record));
    if (fault) {
      fault.times = (fault.times ?? 1) - 1;
      if (fault.times <= 0) this.faults.splice(this.faults.indexOf(fault), 1);
      if (fault.drop) {
        req.socket.destroy();
        return;
      }
      if (fault.loseAnswer) {
        const writeHead = res.writeHead.bind(res);
        res.writeHead = ((...args: Parameters<typeof res.writeHead>) => {
          res.socket?.destroy();
          return writeHead(...args);
        }) as typeof res.writeHead;
        await this.route(req, res, method, url, query).catch(() => res.socket?.destroy());
        return;
      }
      req.resume();
      this.sendError(res, new HttpError(fault.status ?? 503, fault.reason ?? 'backendError', fault.message ?? 'injected fault'));
      return;
    }

    try {
      await this.route(req, res, method, url, query);
    } catch (err) {
      if (err instanceof HttpError) {
        req.resume();
        this.sendError(res, err);
      } else if (!res.headersSent) {
        req.resume();
        this.sendError(res, new HttpError(500, 'backendError', `fake server error: ${(err as Error).message}`));
      } else {
        res.destroy();
      }
    }
  }

  private async route(req: IncomingMessage, res: ServerResponse, method: string, url: URL, query: Record<string, string>): Promise<void> {
    // Paths are matched on the raw (percent-encoded) form; object names are decoded once.
    const raw = url.pathname;
    let m: RegExpExecArray | null;
    if ((m = /^\/upload(?:\/storage\/v1)?\/b\/([^/]+)\/o$/.exec(raw))) {
      const bucket = decodeURIComponent(m[1] as string);
      if (query.upload_id !== undefined) return this.sessionRequest(req, res, method, bucket, query.upload_id);
      this.checkAuth(req, 'storage.objects.create');
      if (method !== 'POST') throw new HttpError(405, 'invalid', `method ${method} not allowed`);
      const b = this.bucket(bucket);
      switch (query.uploadType) {
        case 'media':
          return this.mediaUpload(req, res, b, query);
        case 'multipart':
          return this.multipartUpload(req, res, b, query);
        case 'resumable':
          return this.startSession(req, res, b, query);
        default:
          throw invalid(`Invalid upload type: ${query.uploadType ?? '(none)'}`);
      }
    }
    const api = /^(?:\/storage\/v1)?\/b\/([^/]+)(\/o(?:\/(.+))?)?$/.exec(raw) ?? /^\/download\/storage\/v1\/b\/([^/]+)(\/o\/(.+))$/.exec(raw);
    if (api) {
      const bucketName = decodeURIComponent(api[1] as string);
      const download = raw.startsWith('/download/');
      if (api[2] === undefined) {
        this.checkAuth(req, 'storage.buckets.get');
        if (method !== 'GET') throw new HttpError(501, 'notImplemented', `${method} on buckets is not implemented by the fake`);
        const b = this.bucket(bucketName);
        return this.sendJson(res, 200, { kind: 'storage#bucket', id: b.name, name: b.name, location: 'US', storageClass: 'STANDARD', metageneration: '1' });
      }
      if (api[3] === undefined) {
        this.checkAuth(req, 'storage.objects.list');
        if (method !== 'GET') throw new HttpError(501, 'notImplemented', `${method} on the object collection is not implemented by the fake`);
        return this.list(res, this.bucket(bucketName), query);
      }
      const name = decodeURIComponent(api[3]);
      if (method === 'GET') {
        this.checkAuth(req, 'storage.objects.get');
        return this.getObject(req, res, this.bucket(bucketName), name, query, download || query.alt === 'media');
      }
      if (method === 'DELETE') {
        this.checkAuth(req, 'storage.objects.delete');
        return this.deleteObject(res, this.bucket(bucketName), name, query);
      }
      throw new HttpError(501, 'notImplemented', `${method} on objects is not implemented by the fake`);
    }
    throw new HttpError(404, 'notFound', 'Not Found');
  }

  private checkAuth(req: IncomingMessage, permission: string): void {
    const want = this.options.requireBearer;
    if (want === undefined) return;
    const got = req.headers.authorization;
    if (got === undefined) {
      throw new HttpError(401, 'required', `Anonymous caller does not have ${permission} access to the Google Cloud Storage object.`);
    }
    if (got !== `Bearer ${want}`) throw new HttpError(401, 'authError', 'Invalid Credentials');
  }

  private bucket(name: string): Bucket {
    const b = this.buckets.get(name);
    if (!b) throw new HttpError(404, 'notFound', 'The specified bucket does not exist.');
    return b;
  }

  private checkGeneration(b: Bucket, name: string, query: Record<string, string>): void {
    const want = parseGenerationParam(query.ifGenerationMatch);
    if (want === undefined) return;
    const current = b.objects.get(name)?.generation ?? 0;
    if (current !== want) throw conditionNotMet();
  }

  private nextGeneration(): number {
    this.lastGeneration = Math.max(this.lastGeneration + 1, Date.now() * 1000);
    return this.lastGeneration;
  }

  private newDataFile(): string {
    return join(this.dir, 'data', `${++this.fileSeq}-${randomBytes(4).toString('hex')}`);
  }

  /**
   * Make an uploaded file the live object, checking the precondition in the same synchronous
   * step so that racing writers cannot both pass it.
   */
  private commit(b: Bucket, name: string, ifGenerationMatch: number | undefined, data: { file: string; size: number; md5: string; crc32c: string; contentType: string }): StoredObject {
    const existing = b.objects.get(name);
    if (ifGenerationMatch !== undefined && (existing?.generation ?? 0) !== ifGenerationMatch) {
      void unlink(data.file).catch(() => undefined);
      throw conditionNotMet();
    }
    const obj: StoredObject = { bucket: b.name, name, generation: this.nextGeneration(), created: new Date(), ...data };
    b.objects.set(name, obj);
    if (existing) {
      // Readers that opened the old file keep reading it.
      void unlink(existing.file).catch(() => undefined);
    } else {
      b.names.splice(lowerBound(b.names, name), 0, name);
    }
    return obj;
  }

  private resource(o: StoredObject, host: string | undefined): Record<string, unknown> {
    const base = `http://${host ?? `${this.host}:${this.port}`}`;
    const enc = encodeURIComponent(o.name);
    const time = o.created.toISOString();
    return {
      kind: 'storage#object',
      id: `${o.bucket}/${o.name}/${o.generation}`,
      selfLink: `${base}/storage/v1/b/${o.bucket}/o/${enc}`,
      mediaLink: `${base}/download/storage/v1/b/${o.bucket}/o/${enc}?generation=${o.generation}&alt=media`,
      name: o.name,
      bucket: o.bucket,
      generation: String(o.generation),
      metageneration: '1',
      contentType: o.contentType,
      storageClass: 'STANDARD',
      size: String(o.size),
      md5Hash: o.md5,
      crc32c: o.crc32c,
      etag: Buffer.from(String(o.generation)).toString('base64'),
      timeCreated: time,
      updated: time,
      timeStorageClassUpdated: time,
    };
  }

  private sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'Content-Type': 'application/json; charset=UTF-8', 'Content-Length': Buffer.byteLength(text), ...headers });
    res.end(text);
  }

  private sendError(res: ServerResponse, err: HttpError): void {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    this.sendJson(res, err.status, { error: { code: err.status, message: err.message, errors: [{ message: err.message, domain: 'global', reason: err.reason }] } });
  }

  /** Stream a request body (or a part of it) to a new data file, hashing it on the way. */
  private async receiveTo(source: AsyncIterable<Buffer>): Promise<{ file: string; size: number; md5: string; crc32c: string }> {
    const file = this.newDataFile();
    const out = createWriteStream(file, { mode: 0o600 });
    const md5 = createHash('md5');
    const crc = new Crc32c();
    let size = 0;
    try {
      for await (const chunk of source) {
        md5.update(chunk);
        crc.update(chunk);
        size += chunk.length;
        if (!out.write(chunk)) await once(out, 'drain');
      }
      await closeWriter(out);
    } catch (err) {
      out.destroy();
      await unlink(file).catch(() => undefined);
      throw err;
    }
    return { file, size, md5: md5.digest('base64'), crc32c: crc.base64() };
  }

  private async mediaUpload(req: IncomingMessage, res: ServerResponse, b: Bucket, query: Record<string, string>): Promise<void> {
    const name = query.name;
    if (!name) throw new HttpError(400, 'required', 'Required parameter: name');
    const data = await this.receiveTo(requestChunks(req));
    const obj = this.commit(b, name, parseGenerationParam(query.ifGenerationMatch), { ...data, contentType: req.headers['content-type'] ?? 'application/octet-stream' });
    this.sendJson(res, 200, this.resource(obj, req.headers.host));
  }

  private async multipartUpload(req: IncomingMessage, res: ServerResponse, b: Bucket, query: Record<string, string>): Promise<void> {
    const boundary = multipartBoundary(req.headers['content-type']);
    if (!boundary) throw invalid('Invalid multipart request: expected Content-Type multipart/related with a boundary');
    const splitter = new MultipartSplitter(boundary);
    let part = 0;
    const metadataParts: Buffer[] = [];
    let metadataLength = 0;
    let mediaType = 'application/octet-stream';
    // Part 2 (the data) streams to disk through a push queue fed by the splitter.
    const queue = new ChunkQueue();
    let receiving: Promise<{ file: string; size: number; md5: string; crc32c: string }> | undefined;
    try {
      for await (const chunk of requestChunks(req)) {
        for (const ev of splitter.push(chunk)) {
          if (ev.type === 'part') {
            part++;
            if (part > 2) throw invalid('Invalid multipart request: more than two parts');
            if (part === 2) {
              mediaType = ev.headers['content-type'] ?? mediaType;
              receiving = this.receiveTo(queue);
              // A failed disk write must not leave the producer waiting on a full queue.
              receiving.catch((err: unknown) => queue.fail(err instanceof Error ? err : new Error(String(err))));
            }
          } else if (ev.type === 'data') {
            if (part === 1) {
              metadataParts.push(ev.data);
              metadataLength += ev.data.length;
              if (metadataLength > METADATA_LIMIT) throw invalid('Invalid multipart request: metadata part too large');
            } else {
              await queue.put(ev.data);
            }
          } else if (ev.type === 'partEnd' && part === 2) {
            queue.end();
          }
        }
      }
      splitter.finish();
      if (part !== 2 || !receiving) throw invalid('Invalid multipart request: expected metadata and media parts');
    } catch (err) {
      queue.fail(err instanceof Error ? err : new Error(String(err)));
      await receiving?.catch(() => undefined);
      throw err instanceof HttpError ? err : invalid(`Invalid multipart request: ${(err as Error).message}`);
    }
    const data = await receiving;
    const metadataText = Buffer.concat(metadataParts).toString('utf8');
    let metadata: { name?: string; contentType?: string };
    try {
      metadata = metadataText.trim() === '' ? {} : (JSON.parse(metadataText) as { name?: string; contentType?: string });
    } catch {
      await unlink(data.file).catch(() => undefined);
      throw invalid('Invalid multipart request: metadata is not JSON');
    }
    const name = query.name ?? metadata.name;
    if (!name) {
      await unlink(data.file).catch(() => undefined);
      throw new HttpError(400, 'required', 'Required parameter: name');
    }
    const obj = this.commit(b, name, parseGenerationParam(query.ifGenerationMatch), { ...data, contentType: metadata.contentType ?? mediaType });
    this.sendJson(res, 200, this.resource(obj, req.headers.host));
  }

  private async startSession(req: IncomingMessage, res: ServerResponse, b: Bucket, query: Record<string, string>): Promise<void> {
    let text = '';
    for await (const chunk of requestChunks(req)) {
      text += chunk.toString('utf8');
      if (text.length > METADATA_LIMIT) throw invalid('metadata too large');
    }
    let metadata: { name?: string; contentType?: string } = {};
    if (text.trim() !== '') {
      try {
        metadata = JSON.parse(text) as typeof metadata;
      } catch {
        throw new HttpError(400, 'parseError', 'Parse Error');
      }
    }
    const name = query.name ?? metadata.name;
    if (!name) throw new HttpError(400, 'required', 'Required parameter: name');
    const ifGenerationMatch = parseGenerationParam(query.ifGenerationMatch);
    // Checked when the session starts (fail fast) and again at the commit (atomically).
    this.checkGeneration(b, name, query);
    const id = `${this.options.uploadIdPrefix ?? 'fake-upload-'}${randomBytes(12).toString('hex')}`;
    const file = this.newDataFile();
    const session: Session = {
      id,
      bucket: b.name,
      name,
      contentType: metadata.contentType ?? (req.headers['x-upload-content-type'] as string | undefined) ?? 'application/octet-stream',
      ifGenerationMatch,
      file,
      persisted: 0,
      md5: createHash('md5'),
      crc: new Crc32c(),
      state: 'open',
      queue: Promise.resolve(),
    };
    await closeWriter(createWriteStream(file, { mode: 0o600 }));
    this.sessionsById.set(id, session);
    const location = `http://${req.headers.host ?? `${this.host}:${this.port}`}/upload/storage/v1/b/${encodeURIComponent(b.name)}/o?uploadType=resumable&name=${encodeURIComponent(name)}&upload_id=${id}`;
    res.writeHead(200, { Location: location, 'X-GUploader-UploadID': id, 'Content-Length': 0 });
    res.end();
  }

  private async sessionRequest(req: IncomingMessage, res: ServerResponse, method: string, bucket: string, id: string): Promise<void> {
    const session = this.sessionsById.get(id);
    if (!session || session.bucket !== bucket) throw new HttpError(404, 'notFound', 'No such upload session');
    // One request at a time per session, as a client retrying after a timeout may overlap.
    const previous = session.queue;
    let release!: () => void;
    session.queue = new Promise<void>((r) => (release = r));
    await previous;
    try {
      if (method === 'DELETE') return await this.cancelSession(req, res, session);
      if (method !== 'PUT' && method !== 'POST') throw new HttpError(405, 'invalid', `method ${method} not allowed on an upload session`);
      return await this.sessionChunk(req, res, session);
    } finally {
      release();
    }
  }

  private async cancelSession(req: IncomingMessage, res: ServerResponse, session: Session): Promise<void> {
    req.resume();
    if (session.state === 'open') {
      session.state = 'cancelled';
      await unlink(session.file).catch(() => undefined);
    }
    res.writeHead(499, 'Client Closed Request', { 'Content-Length': 0 });
    res.end();
  }

  private async sessionChunk(req: IncomingMessage, res: ServerResponse, session: Session): Promise<void> {
    const host = req.headers.host;
    if (session.state === 'finalized' && session.result) {
      req.resume();
      return this.sendJson(res, 200, this.resource(session.result, host));
    }
    if (session.state !== 'open') throw new HttpError(410, 'gone', 'The upload session has been cancelled or has failed; start a new one.');
    const header = req.headers['content-range'];
    let range: UploadRange;
    if (header === undefined) {
      // No Content-Range: the body is the whole object, in one request.
      const length = Number(req.headers['content-length'] ?? NaN);
      if (!Number.isSafeInteger(length)) throw new HttpError(411, 'required', 'Content-Range or Content-Length required');
      range = length === 0 ? { total: 0 } : { first: 0, last: length - 1, total: length };
    } else {
      const parsed = parseUploadContentRange(header);
      if (!parsed) throw invalid(`Invalid Content-Range: ${header}`);
      range = parsed;
    }

    if (range.first !== undefined && range.last !== undefined) {
      if (range.first > session.persisted) {
        throw invalid(
          `Invalid request. According to the Content-Range header, the upload offset is ${range.first} byte(s), which exceeds already uploaded size of ${session.persisted} byte(s).`,
        );
      }
      const isFinal = range.total !== undefined && range.last + 1 === range.total;
      await this.appendChunk(req, session, range.first, range.last - range.first + 1, isFinal);
    } else {
      req.resume();
    }

    if (range.total !== undefined && session.persisted === range.total) return this.finalize(res, session, host);
    if (range.total !== undefined && session.persisted > range.total) {
      session.state = 'failed';
      throw invalid('The stated total size is smaller than the bytes already uploaded.');
    }
    res.writeHead(308, 'Resume Incomplete', { 'Content-Length': 0, ...(session.persisted > 0 ? { Range: `bytes=0-${session.persisted - 1}` } : {}) });
    res.end();
  }

  /**
   * Append the part of a chunk that is new. A request cut before its last byte persists none of
   * it; a non-final chunk persists whole 256 KiB granules only.
   */
  private async appendChunk(req: IncomingMessage, session: Session, first: number, length: number, isFinal: boolean): Promise<void> {
    const skip = session.persisted - first;
    const start = session.persisted;
    const out = createWriteStream(session.file, { flags: 'r+', start, mode: 0o600 });
    const md5Before = session.md5.copy();
    const crcBefore = new Crc32c();
    Object.assign(crcBefore, session.crc);
    let received = 0;
    let written = 0;
    let granuleTail: Buffer[] = [];
    let tailLength = 0;
    try {
      for await (const chunk of requestChunks(req)) {
        let part = chunk;
        if (received < skip) part = chunk.subarray(Math.min(chunk.length, skip - received));
        received += chunk.length;
        if (received > length) throw invalid('Request body is longer than its Content-Range');
        if (part.length === 0) continue;
        if (isFinal) {
          session.md5.update(part);
          session.crc.update(part);
          written += part.length;
          if (!out.write(part)) await once(out, 'drain');
        } else {
          // Hold back the bytes past the last whole granule until the request completes.
          granuleTail.push(part);
          tailLength += part.length;
          const total = start + written + tailLength;
          const keepFrom = Math.floor(total / RESUMABLE_GRANULE) * RESUMABLE_GRANULE;
          const flushable = keepFrom - (start + written);
          if (flushable > 0) {
            const all = Buffer.concat(granuleTail);
            const flush = all.subarray(0, flushable);
            granuleTail = [all.subarray(flushable)];
            tailLength -= flushable;
            session.md5.update(flush);
            session.crc.update(flush);
            written += flush.length;
            if (!out.write(flush)) await once(out, 'drain');
          }
        }
      }
      if (received !== length) throw invalid('Request body is shorter than its Content-Range');
      await closeWriter(out);
    } catch (err) {
      // Nothing of an incomplete request is persisted.
      out.destroy();
      session.md5 = md5Before;
      session.crc = crcBefore;
      await truncate(session.file, start).catch(() => undefined);
      throw err;
    }
    session.persisted = start + written;
  }

  private async finalize(res: ServerResponse, session: Session, host: string | undefined): Promise<void> {
    const b = this.bucket(session.bucket);
    let obj: StoredObject;
    try {
      obj = this.commit(b, session.name, session.ifGenerationMatch, {
        file: session.file,
        size: (await stat(session.file)).size,
        md5: session.md5.digest('base64'),
        crc32c: session.crc.base64(),
        contentType: session.contentType,
      });
    } catch (err) {
      session.state = 'failed';
      throw err;
    }
    session.state = 'finalized';
    session.result = obj;
    this.sendJson(res, 200, this.resource(obj, host));
  }

  private async getObject(req: IncomingMessage, res: ServerResponse, b: Bucket, name: string, query: Record<string, string>, media: boolean): Promise<void> {
    req.resume();
    const obj = b.objects.get(name);
    if (!obj) throw notFoundObject(b.name, name);
    this.checkGeneration(b, name, query);
    if (!media) return this.sendJson(res, 200, this.resource(obj, req.headers.host));
    const headers: Record<string, string | number> = {
      'Content-Type': obj.contentType,
      'x-goog-generation': String(obj.generation),
      'x-goog-metageneration': '1',
      'x-goog-hash': `crc32c=${obj.crc32c},md5=${obj.md5}`,
      'x-goog-stored-content-length': String(obj.size),
      'x-goog-stored-content-encoding': 'identity',
      'x-goog-storage-class': 'STANDARD',
      ETag: `"${obj.md5}"`,
      'Last-Modified': obj.created.toUTCString(),
      'Accept-Ranges': 'bytes',
    };
    const range = resolveByteRange(req.headers.range, obj.size);
    if (range === 'unsatisfiable') {
      const text = JSON.stringify({
        error: { code: 416, message: 'The requested range cannot be satisfied.', errors: [{ message: 'The requested range cannot be satisfied.', domain: 'global', reason: 'requestedRangeNotSatisfiable' }] },
      });
      res.writeHead(416, { 'Content-Type': 'application/json; charset=UTF-8', 'Content-Length': Buffer.byteLength(text), 'Content-Range': `bytes */${obj.size}` });
      res.end(text);
      return;
    }
    const start = range?.start ?? 0;
    const end = range?.end ?? obj.size - 1;
    const length = Math.max(0, end - start + 1);
    if (range) headers['Content-Range'] = `bytes ${start}-${end}/${obj.size}`;
    headers['Content-Length'] = length;
    res.writeHead(range ? 206 : 200, headers);
    if (length === 0) {
      res.end();
      return;
    }
    const stream = createReadStream(obj.file, { start, end, highWaterMark: 256 * KiB });
    stream.on('error', () => res.destroy());
    res.on('close', () => stream.destroy());
    stream.pipe(res);
  }

  private list(res: ServerResponse, b: Bucket, query: Record<string, string>): void {
    if (query.delimiter !== undefined) throw new HttpError(501, 'notImplemented', 'delimiter is not implemented by the fake');
    if (query.matchGlob !== undefined) throw new HttpError(501, 'notImplemented', 'matchGlob is not implemented by the fake');
    const prefix = query.prefix ?? '';
    let max = MAX_LIST;
    if (query.maxResults !== undefined) {
      max = Number(query.maxResults);
      if (!Number.isSafeInteger(max) || max < 0) throw invalid(`Invalid value for maxResults: ${query.maxResults}`);
      max = max === 0 ? MAX_LIST : Math.min(max, MAX_LIST);
    }
    let after: string | undefined;
    if (query.pageToken !== undefined && query.pageToken !== '') {
      const decoded = decodePageToken(query.pageToken);
      if (decoded === null) throw invalid('Invalid page token');
      after = decoded;
    }
    let i = lowerBound(b.names, prefix);
    if (query.startOffset) i = Math.max(i, lowerBound(b.names, query.startOffset));
    if (after !== undefined) i = Math.max(i, lowerBound(b.names, after, true));
    const items: Record<string, unknown>[] = [];
    let last: string | undefined;
    let more = false;
    for (; i < b.names.length; i++) {
      const name = b.names[i] as string;
      if (!name.startsWith(prefix)) break;
      if (query.endOffset && compareNames(name, query.endOffset) >= 0) break;
      if (items.length === max) {
        more = true;
        break;
      }
      items.push(this.resource(b.objects.get(name) as StoredObject, undefined));
      last = name;
    }
    const body: Record<string, unknown> = { kind: 'storage#objects' };
    if (more && last !== undefined) body.nextPageToken = encodePageToken(last);
    if (items.length > 0) body.items = items;
    this.sendJson(res, 200, body);
  }

  private deleteObject(res: ServerResponse, b: Bucket, name: string, query: Record<string, string>): void {
    const obj = b.objects.get(name);
    if (!obj) throw notFoundObject(b.name, name);
    this.checkGeneration(b, name, query);
    b.objects.delete(name);
    const i = lowerBound(b.names, name);
    if (b.names[i] === name) b.names.splice(i, 1);
    void unlink(obj.file).catch(() => undefined);
    res.writeHead(204);
    res.end();
  }
}

function parseGenerationParam(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) throw invalid(`Invalid value for ifGenerationMatch: ${value}`);
  return n;
}

/** The request body as Buffers; a client that disconnects mid-body makes it throw. */
async function* requestChunks(req: IncomingMessage): AsyncGenerator<Buffer> {
  for await (const chunk of req) yield chunk as Buffer;
  if (!req.complete) throw new Error('request body cut short');
}

async function closeWriter(out: WriteStream): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    out.once('error', reject);
    out.end(() => resolve());
  });
}

/** A one-producer, one-consumer async queue of Buffers with backpressure of one chunk. */
class ChunkQueue implements AsyncIterable<Buffer> {
  private items: Buffer[] = [];
  private ended = false;
  private error: Error | undefined;
  private wake: (() => void) | undefined;
  private drained: (() => void) | undefined;

  async put(buf: Buffer): Promise<void> {
    this.items.push(buf);
    this.notify();
    if (this.items.length > 4) await new Promise<void>((r) => (this.drained = r));
  }
  end(): void {
    this.ended = true;
    this.notify();
  }
  fail(err: Error): void {
    this.error = err;
    this.notify();
    this.drained?.();
  }
  private notify(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }
  async *[Symbol.asyncIterator](): AsyncGenerator<Buffer> {
    for (;;) {
      if (this.error) throw this.error;
      const item = this.items.shift();
      if (item) {
        if (this.items.length <= 1) {
          const d = this.drained;
          this.drained = undefined;
          d?.();
        }
        yield item;
        continue;
      }
      if (this.ended) return;
      await new Promise<void>((r) => (this.wake = r));
    }
  }
}

export async function startGcsFake(options: GcsFakeOptions = {}): Promise<GcsFakeServer> {
  return GcsFakeServer.start(options);
}
