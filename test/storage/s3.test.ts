/**
 * The s3 driver against s3rver (test/helpers/s3-server.ts: s3rver plus AWS's conditional writes,
 * multipart abort/list and SigV4 verification), through the conformance suite and driver tests.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { PassThrough, Readable } from 'node:stream';
import { inspect } from 'node:util';
import { ListMultipartUploadsCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AlreadyExistsError, ConfigError, NotFoundError, StorageError } from '../../src/common/errors.js';
import { openDriver } from '../../storage-drivers/registry.js';
import { requestCounts, resetRequestCounts, type RequestKind } from '../../storage-drivers/request-stats.js';
import { createS3Driver, type S3Driver } from '../../storage-drivers/s3/s3-driver.js';
import type { StorageDriver } from '../../storage-drivers/types.js';
import { FaultProxy } from '../helpers/fault-proxy.js';
import { startS3Server, type RecordedRequest } from '../helpers/s3-server.js';
import { listAll, readAll, storageConformance } from './conformance.js';
import { waitFor } from '../helpers/wait.js';

const KiB = 1024;
const MiB = 1024 * KiB;

// Started at import so the conformance options below can name its port.
const server = await startS3Server();
afterAll(() => server.stop());

// The driver takes credentials from the standard AWS chain: here, the environment.
const CREDENTIAL_ENV = ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_PROFILE', 'AWS_REGION', 'AWS_DEFAULT_REGION'];
for (const k of CREDENTIAL_ENV) delete process.env[k];
process.env.AWS_ACCESS_KEY_ID = server.accessKeyId;
process.env.AWS_SECRET_ACCESS_KEY = server.secretAccessKey;
process.env.AWS_EC2_METADATA_DISABLED = 'true';

storageConformance(
  's3',
  async () => ({
    driver: await openDriver(`s3://${server.bucket}/conformance`, { settings: server.settings() }),
    cleanup: async () => {},
  }),
  {
    upstream: { host: server.host, port: server.port },
    openVia: (port, settings) =>
      openDriver(`s3://${server.bucket}/conformance`, { settings: { ...server.settings(), 's3-endpoint': `http://127.0.0.1:${port}`, ...settings } }),
    protocol: 'http',
    secrets: [server.secretAccessKey],
  },
);

/** Deterministic bytes: `count` chunks of `size`. */
function* pattern(seed: string, count: number, size: number): Generator<Buffer> {
  for (let i = 0; i < count; i++) yield Buffer.alloc(size, createHash('sha256').update(`${seed}:${i}`).digest());
}
const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** Run `fn` with environment variables set (undefined: removed), restoring them afterwards. */
async function withEnv<T>(vars: Record<string, string | undefined>, fn: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  const apply = (v: Record<string, string | undefined>): void => {
    for (const [k, val] of Object.entries(v)) {
      if (val === undefined) delete process.env[k];
      else process.env[k] = val;
    }
  };
  apply(vars);
  try {
    return await fn();
  } finally {
    apply(saved);
  }
}

/** Requests the server received for object keys under `/bucket/<prefix>`. */
async function requestsUnder(prefix: string): Promise<RecordedRequest[]> {
  const path = `/${server.bucket}/${prefix}`;
  return (await server.requests()).filter((r) => r.path.startsWith(path));
}

function countsSince(before: Record<RequestKind, number>): Partial<Record<RequestKind, number>> {
  const now = requestCounts();
  const out: Partial<Record<RequestKind, number>> = {};
  for (const k of Object.keys(now) as RequestKind[]) if (now[k] !== before[k]) out[k] = now[k] - before[k];
  return out;
}

/** `METHOD query` with x-id dropped, upload ids replaced by U, parameters sorted. */
function describeRequest(r: RecordedRequest): string {
  const params = r.query
    .split('&')
    .filter((q) => q !== '' && !q.startsWith('x-id='))
    .map((q) => q.replace(/^uploadId=.*/, 'uploadId=U').replace(/=$/, ''))
    .sort();
  return `${r.method} ${params.join('&')}`.trim();
}

async function expectStorageError(p: Promise<unknown>): Promise<StorageError> {
  const err = await p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(StorageError);
  return err as StorageError;
}

/** Nothing that identifies or proves a credential may appear in an error, however it is printed. */
function expectNoSecrets(err: unknown, secrets: string[]): void {
  const text = `${String(err)}\n${(err as Error).message}\n${inspect(err, { depth: 5 })}\n${JSON.stringify(err)}`;
  for (const s of secrets) expect(text).not.toContain(s);
  expect(text).not.toMatch(/Signature=|Credential=|AWS4-HMAC-SHA256|authorization/i);
}

describe('s3 driver specifics', () => {
  let admin: S3Client;
  const opened: StorageDriver[] = [];
  let seq = 0;
  const fresh = (): string => `spec-${++seq}`;

  /** A driver on s3://bucket/<prefix> with this server's settings plus `extra`. */
  async function open(prefix: string, extra: Record<string, string> = {}, overrides?: Parameters<typeof createS3Driver>[2]): Promise<S3Driver> {
    const d = await createS3Driver(new URL(`s3://${server.bucket}/${prefix}`), { settings: server.settings(extra) }, overrides);
    opened.push(d);
    return d;
  }

  async function pendingUploads(keyPrefix: string): Promise<string[]> {
    const res = await admin.send(new ListMultipartUploadsCommand({ Bucket: server.bucket, Prefix: keyPrefix }));
    return (res.Uploads ?? []).map((u) => u.Key ?? '');
  }

  beforeAll(() => {
    admin = new S3Client({
      endpoint: server.endpoint,
      forcePathStyle: true,
      region: 'us-east-1',
      credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
    });
  });
  afterAll(async () => {
    for (const d of opened) await d.close();
    admin.destroy();
  });

  it('exposes name, features and a secret-free location', async () => {
    const p = fresh();
    const d = await open(`${p}/sub`);
    expect(d.name).toBe('s3');
    expect(d.location).toBe(`s3://${server.bucket}/${p}/sub`);
    expect([...d.features].sort()).toEqual(['conditionalPut', 'rangeRead']);
    const head = await open(p, { 's3-put-if-absent': 'head' });
    expect([...head.features]).toEqual(['rangeRead']);
  });

  it('stores keys under the prefix, and lists them relative to it', async () => {
    const p = fresh();
    const d = await open(`${p}/deep/er`);
    await d.put('x/y', Buffer.from('xy'));
    const reqs = await requestsUnder(`${p}/`);
    expect(reqs.map((r) => `${r.method} ${r.path}`)).toEqual([`PUT /${server.bucket}/${p}/deep/er/x/y`]);
    expect((await listAll(d, '')).map((i) => i.path)).toEqual(['x/y']);
    // A driver on the bucket root sees the full key.
    const root = await createS3Driver(new URL(`s3://${server.bucket}`), { settings: server.settings() });
    opened.push(root);
    expect((await listAll(root, `${p}/`)).map((i) => i.path)).toEqual([`${p}/deep/er/x/y`]);
    expect(root.location).toBe(`s3://${server.bucket}`);
  });

  it('handles keys that need URL encoding (and signs them correctly)', async () => {
    const d = await open(fresh());
    const keys = ['sp ace/plus+sign', 'per%cent/tilde~', 'unicodé/ключ', "quote'(paren)*star"];
    for (const k of keys) await d.put(k, Buffer.from(k));
    for (const k of keys) expect((await readAll(await d.get(k))).toString()).toBe(k);
    expect((await listAll(d, '')).map((i) => i.path).sort()).toEqual([...keys].sort());
    await d.delete(keys);
    expect(await listAll(d, '')).toEqual([]);
  });

  it('refuses bad URLs through the registry with a ConfigError that leaks nothing', async () => {
    await expect(openDriver('s3:///prefix')).rejects.toBeInstanceOf(ConfigError);
    await expect(openDriver('s3://bucket:9000/prefix')).rejects.toThrow(/s3-endpoint/);
    const err = await openDriver('s3://AKIAEXAMPLE:wJalrXUtnFEMIsecret@bucket/prefix').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect(String(err)).not.toContain('wJalrXUtnFEMIsecret');
    await expect(openDriver('s3://bucket/a//b')).rejects.toBeInstanceOf(ConfigError);
    await expect(openDriver(`s3://${server.bucket}/x`, { settings: { 's3-part-size': '4' } })).rejects.toBeInstanceOf(ConfigError);
  });

  describe('request counts (one request per small operation)', () => {
    it('small put, conditional put, get, ranged get, stat, list, delete', async () => {
      const d = await open(fresh());
      let before = requestCounts();
      await d.put('a', Buffer.from('aaaa'));
      expect(countsSince(before)).toEqual({ put: 1 });
      before = requestCounts();
      await d.put('b', Readable.from([Buffer.from('bb')]), { ifAbsent: true });
      expect(countsSince(before)).toEqual({ put: 1 });
      before = requestCounts();
      await expect(d.put('b', Buffer.from('bb'), { ifAbsent: true })).rejects.toBeInstanceOf(AlreadyExistsError);
      expect(countsSince(before)).toEqual({ put: 1 });
      before = requestCounts();
      await readAll(await d.get('a'));
      await readAll(await d.get('a', { offset: 1, length: 2 }));
      await readAll(await d.get('a', { offset: 100 }));
      await expect(d.get('missing')).rejects.toBeInstanceOf(NotFoundError);
      expect(countsSince(before)).toEqual({ get: 4 });
      before = requestCounts();
      await d.stat('a');
      await d.stat('missing');
      expect(countsSince(before)).toEqual({ head: 2 });
      before = requestCounts();
      await listAll(d, '');
      expect(countsSince(before)).toEqual({ list: 1 });
      before = requestCounts();
      await d.delete(['a', 'b', 'missing']);
      expect(countsSince(before)).toEqual({ delete: 1 });
    });

    it('lists 1001 keys in 2 pages and deletes them in 2 batches', async () => {
      const d = await open(fresh());
      const keys = Array.from({ length: 1001 }, (_, i) => `k/${String(i).padStart(4, '0')}`);
      let next = 0;
      await Promise.all(
        Array.from({ length: 16 }, async () => {
          while (next < keys.length) {
            const k = keys[next++] as string;
            await d.put(k, Buffer.from(k));
          }
        }),
      );
      let before = requestCounts();
      expect((await listAll(d, 'k/')).map((i) => i.path).sort()).toEqual(keys);
      expect(countsSince(before)).toEqual({ list: 2 });
      before = requestCounts();
      await d.delete(keys);
      expect(countsSince(before)).toEqual({ delete: 2 });
      expect(await listAll(d, 'k/')).toEqual([]);
    });
  });

  describe('multipart upload', () => {
    it('uploads a body larger than a part as parts and reads it back intact', async () => {
      const p = fresh();
      const d = await open(p, { 's3-part-size': '5' });
      const expected = Buffer.concat([...pattern(p, 192, 64 * KiB)]);
      await server.clearRequests();
      const before = requestCounts();
      expect(await d.put('big', Readable.from(pattern(p, 192, 64 * KiB)))).toEqual({ size: 12 * MiB });
      expect(countsSince(before)).toEqual({ put: 3, other: 2 });
      const reqs = (await requestsUnder(`${p}/big`)).map(describeRequest);
      expect(reqs[0]).toBe('POST uploads');
      expect(reqs.at(-1)).toBe('POST uploadId=U');
      expect(reqs.slice(1, -1).sort()).toEqual(['PUT partNumber=1&uploadId=U', 'PUT partNumber=2&uploadId=U', 'PUT partNumber=3&uploadId=U']);
      const parts = (await requestsUnder(`${p}/big`)).filter((r) => r.query.includes('partNumber'));
      expect(parts.map((r) => Number(r.headers['content-length']))).toEqual([5 * MiB, 5 * MiB, 2 * MiB]);
      expect((await d.stat('big'))?.size).toBe(12 * MiB);
      expect(sha256(await readAll(await d.get('big')))).toBe(sha256(expected));
      expect(sha256(await readAll(await d.get('big', { offset: 5 * MiB - 10, length: 20 })))).toBe(sha256(expected.subarray(5 * MiB - 10, 5 * MiB + 10)));
      expect(await pendingUploads(`${p}/`)).toEqual([]);
    });

    it('uploads a large Buffer body as parts too', async () => {
      const p = fresh();
      const d = await open(p, { 's3-part-size': '5' });
      const data = randomBytes(11 * MiB);
      expect(await d.put('buf', data)).toEqual({ size: 11 * MiB });
      expect(sha256(await readAll(await d.get('buf')))).toBe(sha256(data));
    });

    it('sends If-None-Match on CompleteMultipartUpload and fails when the key appeared meanwhile', async () => {
      const p = fresh();
      const d = await open(p, { 's3-part-size': '5' });
      const body = new PassThrough();
      const put = d.put('contested', body, { ifAbsent: true });
      const settled = put.then(
        () => 'resolved',
        (e: unknown) => e,
      );
      body.write(Buffer.alloc(6 * MiB, 1));
      await waitFor(async () => (await requestsUnder(`${p}/contested`)).some((r) => r.method === 'PUT' && r.query.includes('partNumber=1')), 'the first part');
      // Another writer creates the key while the upload is in progress.
      await d.put('contested', Buffer.from('winner'));
      body.end(Buffer.alloc(1 * MiB, 2));
      expect(await settled).toBeInstanceOf(AlreadyExistsError);
      const complete = (await requestsUnder(`${p}/contested`)).find((r) => r.method === 'POST' && r.query.startsWith('uploadId='));
      expect(complete?.headers['if-none-match']).toBe('*');
      expect((await readAll(await d.get('contested'))).toString()).toBe('winner');
      expect(await pendingUploads(`${p}/`)).toEqual([]);
    });

    it('refuses a conditional multipart put of an existing key before uploading', async () => {
      const p = fresh();
      const d = await open(p, { 's3-part-size': '5' });
      await d.put('exists', Buffer.from('original'));
      await expect(d.put('exists', Readable.from(pattern(p, 160, 64 * KiB)), { ifAbsent: true })).rejects.toBeInstanceOf(AlreadyExistsError);
      expect((await requestsUnder(`${p}/exists`)).filter((r) => r.query.includes('uploads'))).toEqual([]);
      expect((await readAll(await d.get('exists'))).toString()).toBe('original');
    });

    it('aborts the upload when the body fails after some parts: no object, no pending upload', async () => {
      const p = fresh();
      const d = await open(p, { 's3-part-size': '5' });
      let sent = 0;
      const partSent = async (): Promise<boolean> =>
        (await requestsUnder(`${p}/broken`)).some((r) => r.method === 'PUT' && r.query.includes('partNumber=1'));
      const failing = new Readable({
        read() {
          if (sent++ < 176) setImmediate(() => this.push(Buffer.alloc(64 * KiB, 5)));
          // Fail only once the store has part 1, so the upload surely has something to abort.
          else void waitFor(partSent, 'part 1').then(() => this.destroy(new Error('source failed midway')));
        },
      });
      await expect(d.put('broken', failing)).rejects.toThrow('source failed midway');
      expect(await d.stat('broken')).toBeNull();
      expect(await listAll(d, '')).toEqual([]);
      expect(await pendingUploads(`${p}/`)).toEqual([]);
      const reqs = await requestsUnder(`${p}/broken`);
      // One abort: the SDK may send it again under the same invocation id (a retry when the
      // store was slow to answer on a loaded machine), pgark never a second time.
      const aborts = reqs.filter((r) => r.method === 'DELETE' && r.query.startsWith('uploadId='));
      expect(aborts.length).toBeGreaterThanOrEqual(1);
      expect(new Set(aborts.map((r) => r.headers['amz-sdk-invocation-id'] ?? 'none')).size, JSON.stringify(aborts)).toBe(1);
      expect(aborts[0]!.headers['amz-sdk-invocation-id']).toMatch(/^[0-9a-f-]{36}$/);
    });

    it('aborts the upload when the signal fires mid-upload: no object, no pending upload', async () => {
      const p = fresh();
      const d = await open(p, { 's3-part-size': '5' });
      const ac = new AbortController();
      let pulled = 0;
      const endless = new Readable({
        read() {
          if (++pulled === 120) ac.abort();
          setImmediate(() => {
            if (!this.destroyed) this.push(Buffer.alloc(64 * KiB, 6));
          });
        },
      });
      await expect(d.put('aborted', endless, { signal: ac.signal })).rejects.toThrow();
      expect(endless.destroyed).toBe(true);
      expect(await d.stat('aborted')).toBeNull();
      expect(await pendingUploads(`${p}/`)).toEqual([]);
    });
  });

  describe("put-if-absent 'head' mode (stores without conditional writes)", () => {
    it('checks with HEAD, then sends a plain PUT', async () => {
      const p = fresh();
      const d = await open(p, { 's3-put-if-absent': 'head' });
      const before = requestCounts();
      expect(await d.put('k', Buffer.from('first'), { ifAbsent: true })).toEqual({ size: 5 });
      expect(countsSince(before)).toEqual({ head: 1, put: 1 });
      const reqs = await requestsUnder(`${p}/k`);
      expect(reqs.map((r) => r.method)).toEqual(['HEAD', 'PUT']);
      expect(reqs[1]?.headers['if-none-match']).toBeUndefined();
    });

    it('refuses an existing key without sending the body', async () => {
      const p = fresh();
      const d = await open(p, { 's3-put-if-absent': 'head' });
      await d.put('k', Buffer.from('original'));
      const body = Readable.from([Buffer.from('intruder')]);
      await expect(d.put('k', body, { ifAbsent: true })).rejects.toBeInstanceOf(AlreadyExistsError);
      expect((await requestsUnder(`${p}/k`)).map((r) => r.method)).toEqual(['PUT', 'HEAD']);
      expect((await readAll(await d.get('k'))).toString()).toBe('original');
    });

    it('works for multipart bodies', async () => {
      const p = fresh();
      const d = await open(p, { 's3-put-if-absent': 'head', 's3-part-size': '5' });
      expect(await d.put('big', Readable.from(pattern(p, 100, 64 * KiB)), { ifAbsent: true })).toEqual({ size: 100 * 64 * KiB });
      await expect(d.put('big', Readable.from(pattern(p, 100, 64 * KiB)), { ifAbsent: true })).rejects.toBeInstanceOf(AlreadyExistsError);
      const complete = (await requestsUnder(`${p}/big`)).find((r) => r.method === 'POST' && r.query.startsWith('uploadId='));
      expect(complete?.headers['if-none-match']).toBeUndefined();
    });
  });

  describe('request headers', () => {
    it('sends the storage class and SSE-KMS on PutObject and CreateMultipartUpload', async () => {
      const p = fresh();
      const d = await open(p, { 's3-storage-class': 'STANDARD_IA', 's3-sse': 'aws:kms', 's3-sse-kms-key-id': 'alias/pgark-test', 's3-part-size': '5' });
      await d.put('small', Buffer.from('s'));
      await d.put('big', Readable.from(pattern(p, 100, 64 * KiB)));
      const reqs = await requestsUnder(`${p}/`);
      const creators = reqs.filter((r) => (r.method === 'PUT' && !r.query.includes('partNumber')) || (r.method === 'POST' && r.query.startsWith('uploads')));
      expect(creators).toHaveLength(2);
      for (const r of creators) {
        expect(r.headers['x-amz-storage-class']).toBe('STANDARD_IA');
        expect(r.headers['x-amz-server-side-encryption']).toBe('aws:kms');
        expect(r.headers['x-amz-server-side-encryption-aws-kms-key-id']).toBe('alias/pgark-test');
      }
      // Parts inherit them from the upload (S3 refuses SSE-KMS headers on UploadPart).
      for (const r of reqs.filter((x) => x.query.includes('partNumber'))) expect(r.headers['x-amz-server-side-encryption']).toBeUndefined();
    });

    it('sends SSE AES256 without a key id', async () => {
      const p = fresh();
      const d = await open(p, { 's3-sse': 'AES256' });
      await d.put('small', Buffer.from('s'));
      const [put] = await requestsUnder(`${p}/small`);
      expect(put?.headers['x-amz-server-side-encryption']).toBe('AES256');
      expect(put?.headers['x-amz-server-side-encryption-aws-kms-key-id']).toBeUndefined();
      expect(put?.headers['x-amz-storage-class']).toBeUndefined();
    });

    it("checksum 'when-required' (default): no flexible checksums, no aws-chunked, Content-MD5 on DeleteObjects", async () => {
      const p = fresh();
      const d = await open(p);
      await d.put('obj', Buffer.from('payload'));
      await server.clearRequests();
      await d.delete(['obj']);
      const [put] = await requestsUnder(`${p}/obj`);
      expect(put).toBeUndefined(); // cleared
      const del = (await server.requests()).find((r) => r.method === 'POST' && r.query.startsWith('delete'));
      expect(del?.headers['content-md5']).toMatch(/^[A-Za-z0-9+/]{22}==$/);
      expect(Object.keys(del?.headers ?? {}).filter((h) => h.startsWith('x-amz-checksum') || h.startsWith('x-amz-sdk-checksum'))).toEqual([]);
      await d.put('obj2', Readable.from([Buffer.from('pay'), Buffer.from('load')]));
      const [put2] = await requestsUnder(`${p}/obj2`);
      expect(Object.keys(put2?.headers ?? {}).filter((h) => h.includes('checksum') || h === 'x-amz-trailer' || h === 'x-amz-decoded-content-length')).toEqual([]);
      expect(put2?.headers['content-encoding']).toBeUndefined();
      expect(put2?.headers['x-amz-content-sha256']).toMatch(/^[0-9a-f]{64}$/);
    });

    it("checksum 'when-supported' sends flexible checksums", async () => {
      const p = fresh();
      const d = await open(p, { 's3-checksum': 'when-supported' });
      await d.put('obj', Buffer.from('payload'));
      const [put] = await requestsUnder(`${p}/obj`);
      expect(Object.keys(put?.headers ?? {}).some((h) => h.startsWith('x-amz-checksum-'))).toBe(true);
      expect((await readAll(await d.get('obj'))).toString()).toBe('payload');
    });
  });

  describe('failures', () => {
    it('a wrong secret key is a clear, non-transient error that names no credential', async () => {
      const wrongSecret = `wrong-${randomBytes(16).toString('hex')}`;
      const d = await open(fresh(), {}, { credentials: { accessKeyId: server.accessKeyId, secretAccessKey: wrongSecret } });
      for (const op of [() => d.put('k', Buffer.from('x')), () => d.get('k'), () => listAll(d, '')]) {
        const err = await expectStorageError(op());
        expect(err.transient).toBe(false);
        expect(err.message).toMatch(/403 SignatureDoesNotMatch \(the secret access key does not match/);
        expect(err.message).toContain(`s3://${server.bucket}/`);
        expectNoSecrets(err, [wrongSecret, server.secretAccessKey]);
      }
      // HEAD responses carry no error code: the status and a hint still say what is wrong.
      const err = await expectStorageError(d.stat('k'));
      expect(err.transient).toBe(false);
      expect(err.message).toMatch(/403.*access denied/);
      expectNoSecrets(err, [wrongSecret, server.secretAccessKey]);
    });

    it('an unknown access key id is a clear, non-transient error', async () => {
      const secret = randomBytes(16).toString('hex');
      const d = await open(fresh(), {}, { credentials: { accessKeyId: 'AKIANOTKNOWN', secretAccessKey: secret } });
      const err = await expectStorageError(d.put('k', Buffer.from('x')));
      expect(err.transient).toBe(false);
      expect(err.message).toMatch(/InvalidAccessKeyId \(the access key id is unknown/);
      expectNoSecrets(err, [secret, server.secretAccessKey]);
    });

    it('missing credentials are a clear, non-transient error', async () => {
      const err = await withEnv(
        {
          AWS_ACCESS_KEY_ID: undefined,
          AWS_SECRET_ACCESS_KEY: undefined,
          AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/pgark/credentials',
          AWS_CONFIG_FILE: '/nonexistent/pgark/config',
          AWS_EC2_METADATA_DISABLED: 'true',
        },
        async () => expectStorageError((await open(fresh())).stat('k')),
      );
      expect(err.transient).toBe(false);
      expect(err.message).toMatch(/no AWS credentials found/);
    });

    it('a missing bucket is a clear, non-transient error (not NotFound)', async () => {
      const d = await createS3Driver(new URL('s3://no-such-bucket-pgark/x'), { settings: server.settings() });
      opened.push(d);
      for (const op of [() => d.put('k', Buffer.from('x')), () => d.get('k'), () => listAll(d, ''), () => d.delete(['k'])]) {
        const err = await expectStorageError(op());
        expect(err.transient).toBe(false);
        expect(err.message).toMatch(/404 NoSuchBucket \(the bucket does not exist/);
        expect(err.message).toContain('s3://no-such-bucket-pgark/x');
      }
      // HEAD cannot tell a missing bucket from a missing key (no body): stat reports no object.
      expect(await d.stat('k')).toBeNull();
    });

    it('a store that stops answering is a transient timeout after storage-timeout', async () => {
      const sockets = new Set<Socket>();
      const stall: Server = createServer((s) => {
        sockets.add(s);
        s.on('error', () => {});
      });
      await new Promise<void>((r) => stall.listen(0, '127.0.0.1', r));
      const port = (stall.address() as { port: number }).port;
      try {
        const d = await open(fresh(), { 's3-endpoint': `http://127.0.0.1:${port}`, 'storage-timeout': '1' });
        const started = Date.now();
        const err = await expectStorageError(d.stat('k'));
        expect(err.transient).toBe(true);
        expect(err.message).toMatch(/timed out: no progress for 1 s \(storage-timeout\)/);
        expect(Date.now() - started).toBeLessThan(20_000);
        const err2 = await expectStorageError(d.put('k', Buffer.from('x')));
        expect(err2.transient).toBe(true);
      } finally {
        for (const s of sockets) s.destroy();
        await new Promise((r) => stall.close(r));
      }
    });

    it('a conditional put whose response was lost is recognised as ours when the SDK retries it', async () => {
      const proxy = await FaultProxy.start({ host: server.host, port: server.port });
      try {
        const p = fresh();
        const d = await open(p, { 's3-endpoint': `http://127.0.0.1:${proxy.port}` });
        // The server stores the object, then the connection is cut as the response starts.
        proxy.inject({ kind: 'drop', direction: 'down', afterBytes: 1, connections: 1 });
        expect(await d.put('k', Buffer.from('mine'), { ifAbsent: true })).toEqual({ size: 4 });
        const reqs = await requestsUnder(`${p}/k`);
        expect(reqs.map((r) => r.method)).toEqual(['PUT', 'PUT', 'HEAD']);
        expect(reqs[0]?.headers['x-amz-meta-pgarkput']).toMatch(/^[0-9a-f]{24}$/);
        // Another writer's id does not match: a real collision is still refused.
        await expect(d.put('k', Buffer.from('other'), { ifAbsent: true })).rejects.toBeInstanceOf(AlreadyExistsError);
        expect((await readAll(await d.get('k'))).toString()).toBe('mine');
      } finally {
        await proxy.stop();
      }
    });

    it('a refused connection is transient', async () => {
      const probe = createServer();
      await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
      const port = (probe.address() as { port: number }).port;
      await new Promise((r) => probe.close(r));
      const d = await open(fresh(), { 's3-endpoint': `http://127.0.0.1:${port}`, 'storage-timeout': '2' });
      const err = await expectStorageError(d.get('k'));
      expect(err.transient).toBe(true);
      expect(err.message).toMatch(/ECONNREFUSED/);
    });
  });

  describe('get streams', () => {
    it('can be abandoned early without leaking the connection', async () => {
      const p = fresh();
      const d = await open(p);
      await d.put('big', Readable.from(pattern(p, 48, 64 * KiB)));
      for (let i = 0; i < 40; i++) {
        const s = await d.get('big');
        await new Promise<void>((r) => s.once('readable', () => r()));
        s.destroy();
      }
      expect((await readAll(await d.get('big'))).length).toBe(3 * MiB);
    });

    it('a signal aborts a get in progress', async () => {
      const p = fresh();
      const d = await open(p);
      await d.put('big', Readable.from(pattern(p, 48, 64 * KiB)));
      const ac = new AbortController();
      const s = await d.get('big', { signal: ac.signal });
      ac.abort();
      await expect(readAll(s)).rejects.toThrow();
    });

    it('uses us-east-1 when no region is configured anywhere', async () => {
      const p = fresh();
      await withEnv({ AWS_REGION: undefined, AWS_DEFAULT_REGION: undefined, AWS_CONFIG_FILE: '/nonexistent/pgark/config' }, async () => {
        const d = await createS3Driver(new URL(`s3://${server.bucket}/${p}`), { settings: { 's3-endpoint': server.endpoint, 's3-path-style': 'true' } });
        opened.push(d);
        await d.put('k', Buffer.from('region'));
        expect((await readAll(await d.get('k'))).toString()).toBe('region');
      });
    });
  });
});
