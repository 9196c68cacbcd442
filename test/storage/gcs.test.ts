/**
 * The GCS driver against the fake JSON API server (test/helpers/gcs-fake-server.ts): the
 * conformance suite (with 1 MiB resumable chunks, so that uploads over 1 MiB, the fault tests'
 * included, go through resumable sessions), then what is specific to GCS.
 */
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AlreadyExistsError, ConfigError, NotFoundError, StorageError } from '../../src/common/errors.js';
import { createDriver, GcsDriver } from '../../storage-drivers/gcs/gcs-driver.js';
import { openDriver } from '../../storage-drivers/registry.js';
import { requestCounts, resetRequestCounts, type RequestKind } from '../../storage-drivers/request-stats.js';
import { FaultProxy } from '../helpers/fault-proxy.js';
import { GcsFakeServer } from '../helpers/gcs-fake-server.js';
import { listAll, readAll, storageConformance } from './conformance.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const BUCKET = 'pgark-test';
/** Session URIs authorize uploads by themselves: they must never show in errors or logs. */
const UPLOAD_ID_MARKER = `SESSIONSECRET${randomBytes(6).toString('hex')}`;

const fake = await GcsFakeServer.start({ buckets: [BUCKET, 'other-bucket'], uploadIdPrefix: UPLOAD_ID_MARKER });
afterAll(async () => {
  await fake.stop();
});

async function open(url: string, settings: Record<string, string> = {}, endpoint = fake.endpoint): Promise<GcsDriver> {
  return (await createDriver(new URL(url), { settings: { 'gcs-endpoint': endpoint, ...settings } })) as GcsDriver;
}

storageConformance(
  'gcs',
  async () => {
    const driver = await open(`gs://${BUCKET}/conformance`, { 'gcs-chunk-size': '1' });
    return { driver, cleanup: async () => undefined };
  },
  {
    upstream: { host: fake.host, port: fake.port },
    openVia: (port, settings) => open(`gs://${BUCKET}/conformance`, { 'gcs-chunk-size': '1', ...settings }, `http://127.0.0.1:${port}`),
    protocol: 'http',
    secrets: [UPLOAD_ID_MARKER],
  },
);

/** A body of `chunks` chunks of `size` bytes that fails after them. */
function failingAfter(chunks: number, size: number): Readable {
  let n = 0;
  return new Readable({
    read() {
      if (n++ < chunks) setImmediate(() => this.push(randomBytes(size)));
      else setImmediate(() => this.destroy(new Error('source failed after the first chunks')));
    },
  });
}

function countsSince(before: Record<RequestKind, number>): Record<RequestKind, number> {
  const now = requestCounts();
  const out = { ...now };
  for (const k of Object.keys(now) as RequestKind[]) out[k] = now[k] - before[k];
  return out;
}

const sessionsFor = (name: string) => fake.sessions().filter((s) => s.name === name);

describe('gcs driver specifics', () => {
  let driver: GcsDriver;
  let small: GcsDriver;
  let seq = 0;
  const fresh = (): string => `spec-${randomBytes(3).toString('hex')}-${++seq}/`;

  beforeAll(async () => {
    driver = await open(`gs://${BUCKET}/specific`);
    small = await open(`gs://${BUCKET}/specific`, { 'gcs-chunk-size': '1' });
  });
  afterAll(async () => {
    await driver?.close();
    await small?.close();
  });

  describe('URLs and settings', () => {
    it('opens gs://bucket/prefix through the registry and stores keys under the prefix', async () => {
      const d = await openDriver(`gs://${BUCKET}/deep/er/`, { settings: { 'gcs-endpoint': fake.endpoint } });
      try {
        expect(d.name).toBe('gcs');
        expect(d.location).toBe(`gs://${BUCKET}/deep/er`);
        expect([...d.features].sort()).toEqual(['conditionalPut', 'rangeRead']);
        await d.put('wal/seg', Buffer.from('x'));
        expect(fake.objectNames(BUCKET)).toContain('deep/er/wal/seg');
        expect((await listAll(d, 'wal/')).map((i) => i.path)).toEqual(['wal/seg']);
      } finally {
        await d.close();
      }
    });

    it('works on a bucket root without a prefix', async () => {
      const d = await open('gs://other-bucket');
      try {
        expect(d.location).toBe('gs://other-bucket');
        await d.put('top', Buffer.from('root'));
        expect(fake.objectNames('other-bucket')).toEqual(['top']);
        expect((await readAll(await d.get('top'))).toString()).toBe('root');
        await d.delete(['top']);
        expect(fake.objectNames('other-bucket')).toEqual([]);
      } finally {
        await d.close();
      }
    });

    it.each([
      ['gs://Upper/x', /lowercase/],
      ['gs://ab/x', /3 to 63/],
      ['gs://user:pw@bucket/x', /credentials/],
      ['gs://bucket:99/x', /port/],
      ['gs://bucket/x?key=v', /query/],
      ['gs://bucket/a//b', /segment/],
      ['gs:///x', /empty/],
    ])('rejects %s with a ConfigError', async (url, message) => {
      const err = await openDriver(url, { settings: { 'gcs-endpoint': fake.endpoint } }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toMatch(message);
      expect((err as Error).message).not.toContain('pw');
    });

    it('rejects bad settings with a ConfigError', async () => {
      await expect(open(`gs://${BUCKET}/x`, { 'gcs-chunk-size': '0' })).rejects.toBeInstanceOf(ConfigError);
      await expect(open(`gs://${BUCKET}/x`, { 'storage-timeout': 'soon' })).rejects.toBeInstanceOf(ConfigError);
      await expect(open(`gs://${BUCKET}/x`, {}, 'ftp://example.com')).rejects.toBeInstanceOf(ConfigError);
    });

    it('uses STORAGE_EMULATOR_HOST (host:port, plain HTTP) when gcs-endpoint is unset', async () => {
      const saved = process.env.STORAGE_EMULATOR_HOST;
      process.env.STORAGE_EMULATOR_HOST = `${fake.host}:${fake.port}`;
      try {
        const d = await createDriver(new URL(`gs://${BUCKET}/emulator`), { settings: {} });
        try {
          await d.put('k', Buffer.from('via env'));
          expect((await readAll(await d.get('k'))).toString()).toBe('via env');
          expect(fake.objectNames(BUCKET)).toContain('emulator/k');
        } finally {
          await d.close();
        }
      } finally {
        if (saved === undefined) delete process.env.STORAGE_EMULATOR_HOST;
        else process.env.STORAGE_EMULATOR_HOST = saved;
      }
    });
  });

  describe('requests', () => {
    it('a body within one chunk is one multipart upload; stat, get and a list page are one request each', async () => {
      const key = `${fresh()}obj`;
      const before = requestCounts();
      const multipartBefore = fake.uploads('multipart').length;
      await driver.put(key, Readable.from([randomBytes(3 * MiB), randomBytes(MiB)]));
      expect(fake.uploads('multipart').length).toBe(multipartBefore + 1);
      expect(countsSince(before)).toEqual({ list: 0, head: 0, get: 0, put: 1, delete: 0, other: 0 });

      const b2 = requestCounts();
      expect((await driver.stat(key))?.size).toBe(4 * MiB);
      expect((await readAll(await driver.get(key, { offset: 10, length: 100 }))).length).toBe(100);
      expect(await listAll(driver, key)).toHaveLength(1);
      await driver.delete([key]);
      expect(countsSince(b2)).toEqual({ list: 1, head: 1, get: 1, put: 0, delete: 1, other: 0 });
    });

    it('a body over the chunk size is one resumable session, sent chunk by chunk', async () => {
      const key = `${fresh()}big`;
      const data = randomBytes(3 * MiB + 12345);
      const before = requestCounts();
      const resumableBefore = fake.uploads('resumable').length;
      const parts = [data.subarray(0, 700 * KiB), data.subarray(700 * KiB, 2 * MiB), data.subarray(2 * MiB)];
      expect(await small.put(key, Readable.from(parts))).toEqual({ size: data.length });
      expect(fake.uploads('resumable').length).toBe(resumableBefore + 1);
      const sessions = sessionsFor(`specific/${key}`);
      expect(sessions.map((s) => s.state)).toEqual(['finalized']);
      const chunks = fake.requests.filter((r) => r.method === 'PUT' && r.query.upload_id === sessions[0]?.id);
      expect(chunks.map((r) => r.contentRange)).toEqual([
        'bytes 0-1048575/*',
        'bytes 1048576-2097151/*',
        'bytes 2097152-3145727/*',
        `bytes 3145728-${data.length - 1}/${data.length}`,
      ]);
      expect(chunks.map((r) => r.status)).toEqual([308, 308, 308, 200]);
      // One request to start the session, one per chunk.
      expect(countsSince(before)).toEqual({ list: 0, head: 0, get: 0, put: 4, delete: 0, other: 1 });
      expect((await readAll(await small.get(key))).equals(data)).toBe(true);
    });

    it('a Buffer over the chunk size goes resumable too, and one exactly of the chunk size does not', async () => {
      const p = fresh();
      const before = fake.uploads('resumable').length;
      await small.put(`${p}exact`, randomBytes(MiB));
      expect(fake.uploads('resumable').length).toBe(before);
      await small.put(`${p}over`, randomBytes(MiB + 1));
      expect(fake.uploads('resumable').length).toBe(before + 1);
      expect((await small.stat(`${p}over`))?.size).toBe(MiB + 1);
    });
  });

  describe('interrupted uploads', () => {
    it('a body that fails after some chunks were sent leaves no object and cancels the session', async () => {
      const key = `${fresh()}broken`;
      await expect(small.put(key, failingAfter(10, 256 * KiB))).rejects.toThrow('source failed after the first chunks');
      const sessions = sessionsFor(`specific/${key}`);
      expect(sessions).toHaveLength(1);
      expect(sessions[0]?.persisted).toBeGreaterThanOrEqual(MiB);
      expect(sessions[0]?.state).toBe('cancelled');
      expect(await small.stat(key)).toBeNull();
      expect(await listAll(small, key)).toEqual([]);
    });

    it('an abort mid-upload leaves no object and cancels the session', async () => {
      const key = `${fresh()}aborted`;
      const ac = new AbortController();
      let pulled = 0;
      const body = new Readable({
        read() {
          if (++pulled === 40) ac.abort();
          setTimeout(() => this.push(randomBytes(64 * KiB)), 1);
        },
      });
      await expect(small.put(key, body, { signal: ac.signal })).rejects.toThrow(/abort/i);
      expect(body.destroyed).toBe(true);
      await new Promise((r) => setTimeout(r, 100));
      expect(sessionsFor(`specific/${key}`).map((s) => s.state)).toEqual(['cancelled']);
      expect(await small.stat(key)).toBeNull();
    });

    it('a replacing put that fails keeps the previous object', async () => {
      const key = `${fresh()}kept`;
      await small.put(key, Buffer.from('previous'));
      await expect(small.put(key, failingAfter(9, 256 * KiB))).rejects.toThrow();
      expect((await readAll(await small.get(key))).toString()).toBe('previous');
    });
  });

  describe('put-if-absent', () => {
    it('lets exactly one of racing resumable writers win', async () => {
      const key = `${fresh()}contested`;
      const bodies = Array.from({ length: 4 }, (_, i) => Buffer.alloc(MiB + 1000 + i, 97 + i));
      const results = await Promise.allSettled(bodies.map((b) => small.put(key, Readable.from([b]), { ifAbsent: true })));
      const winners = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
      expect(winners).toHaveLength(1);
      for (const r of results) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(AlreadyExistsError);
      expect((await readAll(await small.get(key))).equals(bodies[winners[0] as number] as Buffer)).toBe(true);
    });

    it('fails at the start of the session when the object exists, without sending the data', async () => {
      const key = `${fresh()}exists`;
      await small.put(key, Buffer.from('original'));
      const chunksBefore = fake.requests.filter((r) => r.method === 'PUT').length;
      await expect(small.put(key, Readable.from([randomBytes(2 * MiB)]), { ifAbsent: true })).rejects.toBeInstanceOf(AlreadyExistsError);
      expect(fake.requests.filter((r) => r.method === 'PUT').length).toBe(chunksBefore);
      expect((await readAll(await small.get(key))).toString()).toBe('original');
    });

    it('sends ifGenerationMatch=0 with put-if-absent only', async () => {
      const p = fresh();
      await driver.put(`${p}a`, Buffer.from('a'), { ifAbsent: true });
      await driver.put(`${p}b`, Buffer.from('b'));
      const ups = fake.uploads('multipart').slice(-2);
      expect(ups[0]?.query.ifGenerationMatch).toBe('0');
      expect(ups[1]?.query.ifGenerationMatch).toBeUndefined();
    });
  });

  describe('errors', () => {
    it('a missing object is NotFoundError for get, null for stat, and fine for delete', async () => {
      const p = fresh();
      await expect(driver.get(`${p}nope`)).rejects.toBeInstanceOf(NotFoundError);
      await expect(driver.get(`${p}nope`, { length: 0 })).rejects.toBeInstanceOf(NotFoundError);
      expect(await driver.stat(`${p}nope`)).toBeNull();
      await driver.delete([`${p}nope`]);
    });

    it('a missing bucket is a clear, non-transient error', async () => {
      const d = await open('gs://no-such-bucket/x');
      try {
        for (const op of [() => d.stat('k'), () => d.get('k'), () => d.put('k', Buffer.from('x')), () => listAll(d, '')]) {
          const err = await op().catch((e: unknown) => e);
          expect(err).toBeInstanceOf(StorageError);
          expect((err as StorageError).transient).toBe(false);
          expect((err as Error).message).toMatch(/bucket 'no-such-bucket' does not exist/);
        }
      } finally {
        await d.close();
      }
    });

    it('an authentication failure is non-transient, says so, and shows no token', async () => {
      const locked = await GcsFakeServer.start({ buckets: [BUCKET], requireBearer: 'ya29.never-sent' });
      const d = await open(`gs://${BUCKET}/x`, {}, locked.endpoint);
      try {
        const err = await d.stat('k').catch((e: unknown) => e);
        expect(err).toBeInstanceOf(StorageError);
        expect((err as StorageError).transient).toBe(false);
        expect((err as Error).message).toMatch(/unable to stat 'k' from gs:\/\/pgark-test\/x: 401 required: authentication failed/);
        const putErr = await d.put('k', Buffer.from('x')).catch((e: unknown) => e);
        expect((putErr as Error).message).toMatch(/401/);
      } finally {
        await d.close();
        await locked.stop();
      }
    });

    it('a permission error is non-transient with a hint', async () => {
      const key = `${fresh()}denied`;
      fake.inject({ match: (r) => r.path.endsWith(encodeURIComponent(`specific/${key}`)), status: 403, reason: 'forbidden', message: 'svc@example.iam.gserviceaccount.com does not have storage.objects.get access' });
      const err = await driver.stat(key).catch((e: unknown) => e);
      fake.clearFaults();
      expect(err).toBeInstanceOf(StorageError);
      expect((err as StorageError).transient).toBe(false);
      expect((err as Error).message).toMatch(/403 forbidden: permission denied on bucket 'pgark-test' \(svc@example.iam.gserviceaccount.com does not have storage.objects.get access\)/);
    });

    it('retries a 503 and a dropped connection on a single-request upload', async () => {
      const key = `${fresh()}retried`;
      fake.inject({ match: (r) => r.query.uploadType === 'multipart', status: 503 });
      await driver.put(key, Buffer.from('after 503'));
      fake.inject({ match: (r) => r.query.uploadType === 'multipart', drop: true });
      await driver.put(key, Buffer.from('after drop'), { ifAbsent: false });
      expect((await readAll(await driver.get(key))).toString()).toBe('after drop');
    });

    it('a put-if-absent whose answer was lost but which was stored succeeds on its retry', async () => {
      const key = `${fresh()}lost-answer`;
      fake.inject({ match: (r) => r.query.uploadType === 'multipart', loseAnswer: true });
      expect(await driver.put(key, Buffer.from('once'), { ifAbsent: true })).toEqual({ size: 4 });
      expect(fake.uploads('multipart').slice(-2).map((r) => r.query.name)).toEqual([`specific/${key}`, `specific/${key}`]);
      await expect(driver.put(key, Buffer.from('twice'), { ifAbsent: true })).rejects.toBeInstanceOf(AlreadyExistsError);
      expect((await readAll(await driver.get(key))).toString()).toBe('once');
    });

    it('a resumable upload whose last answer was lost is stored once', async () => {
      const key = `${fresh()}lost-final`;
      const data = randomBytes(2 * MiB + 5);
      fake.inject({ match: (r) => r.method === 'PUT' && /^bytes \d+-\d+\/\d+$/.test(r.contentRange ?? ''), loseAnswer: true });
      expect(await small.put(key, Readable.from([data]), { ifAbsent: true })).toEqual({ size: data.length });
      expect((await readAll(await small.get(key))).equals(data)).toBe(true);
      expect(sessionsFor(`specific/${key}`).map((s) => s.state)).toEqual(['finalized']);
    });

    it('gives up on persistent 503s with a transient error naming the status', async () => {
      const key = `${fresh()}unavailable`;
      fake.inject({ match: (r) => r.query.name === `specific/${key}`, status: 503, times: 100 });
      const err = await driver.put(key, Buffer.from('x')).catch((e: unknown) => e);
      fake.clearFaults();
      expect(err).toBeInstanceOf(StorageError);
      expect((err as StorageError).transient).toBe(true);
      expect((err as Error).message).toMatch(new RegExp(`unable to write '${key}' to gs://pgark-test/specific: 503`));
    }, 60_000);
  });

  describe('stalls', () => {
    it('a download that stops delivering data fails within storage-timeout as a transient error', async () => {
      const key = `${fresh()}stall-mid-body`;
      await driver.put(key, randomBytes(8 * MiB));
      const proxy = await FaultProxy.start({ host: fake.host, port: fake.port });
      const via = await open(`gs://${BUCKET}/specific`, { 'storage-timeout': '1' }, `http://127.0.0.1:${proxy.port}`);
      try {
        const stream = await via.get(key);
        let got = 0;
        const started = Date.now();
        const err = await (async () => {
          for await (const c of stream) {
            got += (c as Buffer).length;
            if (got >= MiB) proxy.stall();
          }
        })().catch((e: unknown) => e);
        expect(err).toBeInstanceOf(StorageError);
        expect((err as StorageError).transient).toBe(true);
        expect((err as Error).message).toMatch(/no data for 1 s \(storage-timeout\)/);
        expect(got).toBeLessThan(8 * MiB);
        expect(Date.now() - started).toBeLessThan(10_000);
      } finally {
        await via.close();
        await proxy.stop();
      }
    });
  });

  describe('request counting', () => {
    it('counts every request to the endpoint, retries included', async () => {
      resetRequestCounts();
      fake.inject({ match: (r) => r.method === 'GET' && r.path.endsWith('counted-missing'), status: 503 });
      expect(await driver.stat('counted-missing')).toBeNull();
      expect(requestCounts()).toEqual({ list: 0, head: 2, get: 0, put: 0, delete: 0, other: 0 });
    });
  });
});
