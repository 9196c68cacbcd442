/**
 * The azure driver against Azurite (npm), started on 127.0.0.1 and a free port for this file:
 * the conformance suite (with the fault proxy and secret checks), then driver specifics.
 */
import { createHash, randomBytes } from 'node:crypto';
import { connect, createServer, type Socket } from 'node:net';
import { PassThrough, Readable } from 'node:stream';
import { BlobSASPermissions, ContainerClient, ContainerSASPermissions, generateBlobSASQueryParameters, StorageSharedKeyCredential } from '@azure/storage-blob';
import { afterAll, describe, expect, it } from 'vitest';
import { AlreadyExistsError, ConfigError, NotFoundError, StorageError } from '../../src/common/errors.js';
import { createAzureDriver, type AzureDriver } from '../../storage-drivers/azure/azure-driver.js';
import type { AzureEnv } from '../../storage-drivers/azure/azure-auth.js';
import { openDriver } from '../../storage-drivers/registry.js';
import { requestCounts, type RequestKind } from '../../storage-drivers/request-stats.js';
import type { StorageDriver } from '../../storage-drivers/types.js';
import { startAzurite } from '../helpers/azurite-server.js';
import { endlessStream, listAll, readAll, storageConformance } from './conformance.js';

const MiB = 1024 * 1024;
const CONTAINER = 'pgark-test';

const server = await startAzurite();
afterAll(async () => {
  await server.stop();
});
await server.createContainer(CONTAINER);

const keyEnv: AzureEnv = { AZURE_STORAGE_KEY: server.accountKey };
const repoUrl = (path: string): URL => new URL(`azure://${server.account}/${CONTAINER}/${path}`);

/** A driver on Azurite with the shared key, `settings` over the endpoint setting. */
function open(path: string, settings: Record<string, string> = {}, env: AzureEnv = keyEnv, url: URL = repoUrl(path)): Promise<AzureDriver> {
  return createAzureDriver(url, { settings: { 'azure-endpoint': server.endpoint, ...settings } }, env);
}

storageConformance(
  'azure',
  async () => ({ driver: await open('conformance'), cleanup: async () => undefined }),
  {
    upstream: { host: server.host, port: server.port },
    openVia: (port, settings) => open('conformance', { 'azure-endpoint': `http://127.0.0.1:${port}/${server.account}`, ...settings }),
    protocol: 'http',
    secrets: [server.accountKey],
  },
);

/** Run `op` and return what it threw. */
async function failure(op: () => Promise<unknown>): Promise<Error> {
  try {
    await op();
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected the operation to fail');
}

function sha256(buf: Buffer): string {
  return createHash('sha256').update(buf).digest('hex');
}

/** Request counts made by `op`. */
async function countsOf(op: () => Promise<unknown>): Promise<Partial<Record<RequestKind, number>>> {
  const before = requestCounts();
  await op();
  const after = requestCounts();
  const out: Partial<Record<RequestKind, number>> = {};
  for (const k of Object.keys(after) as RequestKind[]) if (after[k] !== before[k]) out[k] = after[k] - before[k];
  return out;
}

type ProxyPlan = 'forward' | { status: number } | { stallDownAfter: number };

/**
 * A loopback proxy to Azurite whose behaviour is chosen per connection: forward, answer the
 * first request with an HTTP error (and close), or forward but stop passing the server's bytes
 * after `stallDownAfter` of them (the connection stays open).
 */
async function planProxy(plan: (connection: number) => ProxyPlan): Promise<{ port: number; connections: () => number; close: () => Promise<void> }> {
  let n = 0;
  const sockets = new Set<Socket>();
  const srv = createServer((client) => {
    const p = plan(++n);
    sockets.add(client);
    client.on('error', () => undefined);
    client.on('close', () => sockets.delete(client));
    if (p !== 'forward' && 'status' in p) {
      client.once('data', () => {
        const body = `<?xml version="1.0" encoding="utf-8"?><Error><Code>${p.status === 503 ? 'ServerBusy' : 'InternalError'}</Code><Message>injected</Message></Error>`;
        client.end(`HTTP/1.1 ${p.status} Injected\r\nContent-Type: application/xml\r\nx-ms-error-code: ${p.status === 503 ? 'ServerBusy' : 'InternalError'}\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
      });
      return;
    }
    const upstream = connect(server.port, server.host);
    sockets.add(upstream);
    upstream.on('error', () => undefined);
    upstream.on('close', () => {
      sockets.delete(upstream);
      client.destroy();
    });
    client.on('close', () => upstream.destroy());
    client.pipe(upstream);
    if (p === 'forward') {
      upstream.pipe(client);
    } else {
      let left = p.stallDownAfter;
      upstream.on('data', (chunk: Buffer) => {
        if (left <= 0) return;
        client.write(chunk.subarray(0, left));
        left -= chunk.length;
      });
    }
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as { port: number }).port;
  return {
    port,
    connections: () => n,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => srv.close(() => r()));
    },
  };
}

/** Every text an error shows: message, stack, causes. */
function errorText(err: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = err, i = 0; e instanceof Error && i < 5; e = e.cause, i++) parts.push(e.message, e.stack ?? '');
  return parts.join('\n');
}

describe('azure driver specifics', () => {
  const opened: StorageDriver[] = [];
  const track = async <T extends StorageDriver>(d: Promise<T>): Promise<T> => {
    const driver = await d;
    opened.push(driver);
    return driver;
  };
  afterAll(async () => {
    for (const d of opened) await d.close();
  });

  describe('URL forms and configuration', () => {
    it('exposes name, features and a location without secrets', async () => {
      const d = await track(open('some/prefix'));
      expect(d.name).toBe('azure');
      expect([...d.features].sort()).toEqual(['conditionalPut', 'rangeRead']);
      expect(d.location).toBe(`azure://${server.account}/${CONTAINER}/some/prefix`);
      expect(d.serviceUrl).toBe(server.endpoint);
    });

    it('opens through the registry with credentials from the environment', async () => {
      const saved = process.env.AZURE_STORAGE_KEY;
      process.env.AZURE_STORAGE_KEY = server.accountKey;
      try {
        const d = await track(openDriver(`azure://${server.account}/${CONTAINER}/registry`, { settings: { 'azure-endpoint': server.endpoint } }));
        expect(d.name).toBe('azure');
        await d.put('k', Buffer.from('via registry'));
        expect((await readAll(await d.get('k'))).toString()).toBe('via registry');
      } finally {
        if (saved === undefined) delete process.env.AZURE_STORAGE_KEY;
        else process.env.AZURE_STORAGE_KEY = saved;
      }
    });

    it.each([
      ['no container', `azure://${'devstoreaccount1'}`, /container is missing/],
      ['an upper-case container', 'azure://devstoreaccount1/Bad', /invalid azure container name/],
      ['a bad account name', 'azure://bad_account/c1c', /invalid azure storage account name/],
      ['a port', 'azure://devstoreaccount1:10000/cont', /port is not allowed/],
      ['a double slash in the prefix', 'azure://devstoreaccount1/cont/a//b', /empty, '\.' or '\.\.' segment/],
    ])('rejects a URL with %s as a ConfigError', async (_label, url, message) => {
      const err = await failure(() => createAzureDriver(new URL(url), {}, keyEnv));
      expect(err).toBeInstanceOf(ConfigError);
      expect(err.message).toMatch(message);
    });

    it('rejects a SAS token or a password in the URL without echoing it', async () => {
      for (const url of ['azure://devstoreaccount1/cont?sv=2024&sig=TOPSECRETSIG', 'azure://user:TOPSECRETSIG@devstoreaccount1/cont']) {
        const err = await failure(() => createAzureDriver(new URL(url), {}, keyEnv));
        expect(err).toBeInstanceOf(ConfigError);
        expect(errorText(err)).not.toContain('TOPSECRETSIG');
      }
    });

    it('fails clearly without credentials', async () => {
      const err = await failure(() => open('x', {}, {}));
      expect(err).toBeInstanceOf(ConfigError);
      expect(err.message).toMatch(/AZURE_STORAGE_CONNECTION_STRING.*AZURE_STORAGE_KEY.*AZURE_STORAGE_SAS_TOKEN/);
    });
  });

  describe('connection string', () => {
    const csEnv = (): AzureEnv => ({ AZURE_STORAGE_CONNECTION_STRING: server.connectionString });

    it('takes account, key and endpoint from the connection string (azure:///container/prefix)', async () => {
      const d = await track(createAzureDriver(new URL(`azure:///${CONTAINER}/cs`), {}, csEnv()));
      expect(d.location).toBe(`azure://${server.account}/${CONTAINER}/cs`);
      expect(d.serviceUrl).toBe(server.endpoint);
      await d.put('obj', Buffer.from('connection string'));
      expect((await readAll(await d.get('obj'))).toString()).toBe('connection string');
      expect((await listAll(d, '')).map((i) => i.path)).toEqual(['obj']);
    });

    it('accepts the same account in the URL and refuses another one', async () => {
      const same = await track(createAzureDriver(repoUrl('cs'), {}, csEnv()));
      expect((await readAll(await same.get('obj'))).toString()).toBe('connection string');
      const err = await failure(() => createAzureDriver(new URL(`azure://otheraccount/${CONTAINER}/cs`), {}, csEnv()));
      expect(err).toBeInstanceOf(ConfigError);
      expect(err.message).toMatch(/names storage account 'otheraccount'.*'devstoreaccount1'/);
      expect(errorText(err)).not.toContain(server.accountKey);
    });

    it('takes precedence over AZURE_STORAGE_KEY', async () => {
      const d = await track(createAzureDriver(new URL(`azure:///${CONTAINER}/cs`), {}, { ...csEnv(), AZURE_STORAGE_KEY: Buffer.from('wrong').toString('base64') }));
      expect((await readAll(await d.get('obj'))).toString()).toBe('connection string');
    });
  });

  describe('SAS token', () => {
    const credential = new StorageSharedKeyCredential(server.account, server.accountKey);
    const sas = (permissions: string, expiresOn = new Date(Date.now() + 3600_000)): string =>
      generateBlobSASQueryParameters({ containerName: CONTAINER, permissions: ContainerSASPermissions.parse(permissions), expiresOn }, credential).toString();

    it('works with a container SAS (with or without the leading ?) for every operation', async () => {
      const token = sas('racwdl');
      for (const [i, t] of [token, `?${token}`].entries()) {
        const d = await track(open(`sas-${i}`, {}, { AZURE_STORAGE_SAS_TOKEN: t }));
        await d.put('a/obj', Buffer.from('sas'));
        await expect(d.put('a/obj', Buffer.from('again'), { ifAbsent: true })).rejects.toBeInstanceOf(AlreadyExistsError);
        expect((await d.stat('a/obj'))?.size).toBe(3);
        expect((await readAll(await d.get('a/obj', { offset: 1 }))).toString()).toBe('as');
        expect((await listAll(d, 'a/')).map((x) => x.path)).toEqual(['a/obj']);
        await d.delete(['a/obj', 'a/missing']);
        expect(await d.stat('a/obj')).toBeNull();
      }
    });

    it('a read-only SAS refuses writes with a clear non-transient error without the signature', async () => {
      const token = sas('rl');
      const sig = new URLSearchParams(token).get('sig') as string;
      const d = await track(open('sas-ro', {}, { AZURE_STORAGE_SAS_TOKEN: token }));
      const err = await failure(() => d.put('x', Buffer.from('x')));
      expect(err).toBeInstanceOf(StorageError);
      expect((err as StorageError).transient).toBe(false);
      expect(err.message).toMatch(/^unable to write 'x' to azure:\/\/devstoreaccount1\/pgark-test\/sas-ro: 403 /);
      expect(err.message).toMatch(/AZURE_STORAGE_SAS_TOKEN/);
      for (const secret of [token, sig, encodeURIComponent(sig)]) expect(errorText(err)).not.toContain(secret);
    });

    it('an expired SAS is an authentication failure', async () => {
      const token = sas('racwdl', new Date(Date.now() - 3600_000));
      const d = await track(open('sas-expired', {}, { AZURE_STORAGE_SAS_TOKEN: token }));
      const err = await failure(() => d.stat('x'));
      expect(err).toBeInstanceOf(StorageError);
      expect((err as StorageError).transient).toBe(false);
      expect(err.message).toMatch(/403/);
      expect(errorText(err)).not.toContain(new URLSearchParams(token).get('sig') as string);
    });

    it('a blob SAS for another blob is refused', async () => {
      const token = generateBlobSASQueryParameters(
        { containerName: CONTAINER, blobName: 'elsewhere', permissions: BlobSASPermissions.parse('r'), expiresOn: new Date(Date.now() + 3600_000) },
        credential,
      ).toString();
      const d = await track(open('sas-blob', {}, { AZURE_STORAGE_SAS_TOKEN: token }));
      const err = await failure(async () => readAll(await d.get('x')));
      expect(err).toBeInstanceOf(StorageError);
      expect((err as StorageError).transient).toBe(false);
    });
  });

  describe('staged blocks', () => {
    let d: AzureDriver;
    const container = (): ContainerClient =>
      new ContainerClient(`${server.endpoint}/${CONTAINER}`, new StorageSharedKeyCredential(server.account, server.accountKey));

    it('stages a streamed object larger than one block and commits it once', async () => {
      d = await track(open('staged', { 'azure-block-size': '1' }));
      const data = randomBytes(3 * MiB + 12345);
      const chunks = Array.from({ length: Math.ceil(data.length / (100 * 1024)) }, (_, i) => data.subarray(i * 100 * 1024, (i + 1) * 100 * 1024));
      const counts = await countsOf(async () => expect(await d.put('big', Readable.from(chunks))).toEqual({ size: data.length }));
      // 4 blocks, 1 Put Block List.
      expect(counts).toEqual({ put: 4, other: 1 });
      expect(sha256(await readAll(await d.get('big')))).toBe(sha256(data));
      expect((await d.stat('big'))?.size).toBe(data.length);
      const blocks = await container().getBlockBlobClient('staged/big').getBlockList('committed');
      expect(blocks.committedBlocks?.map((b) => b.size)).toEqual([MiB, MiB, MiB, 12345]);
    });

    it('stages a Buffer body larger than one block, and sends an exact block as one request', async () => {
      const data = randomBytes(2 * MiB + 1);
      expect(await countsOf(() => d.put('buf', data))).toEqual({ put: 3, other: 1 });
      expect(sha256(await readAll(await d.get('buf')))).toBe(sha256(data));
      expect(await countsOf(() => d.put('one-block', Readable.from([randomBytes(MiB / 2), randomBytes(MiB / 2)])))).toEqual({ put: 1 });
      expect((await d.stat('one-block'))?.size).toBe(MiB);
    });

    it('refuses a staged put-if-absent over an existing blob and keeps it', async () => {
      await d.put('exists', Buffer.from('original'));
      await expect(d.put('exists', randomBytes(2 * MiB + 7), { ifAbsent: true })).rejects.toBeInstanceOf(AlreadyExistsError);
      expect((await readAll(await d.get('exists'))).toString()).toBe('original');
    });

    it('lets exactly one of several racing staged put-if-absent writers win', async () => {
      const bodies = Array.from({ length: 3 }, () => randomBytes(2 * MiB + 100));
      const results = await Promise.allSettled(bodies.map((b) => d.put('raced', Readable.from([b]), { ifAbsent: true })));
      const winners = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
      expect(winners).toHaveLength(1);
      for (const r of results) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(AlreadyExistsError);
      expect(sha256(await readAll(await d.get('raced')))).toBe(sha256(bodies[winners[0] as number] as Buffer));
    });

    it('an aborted staged upload leaves no visible blob (its blocks stay uncommitted)', async () => {
      const ac = new AbortController();
      let pulled = 0;
      const body = endlessStream(Buffer.alloc(256 * 1024, 5), 1, (n) => {
        pulled = n;
        if (n === 14) ac.abort();
      });
      const err = await failure(() => d.put('aborted', body, { signal: ac.signal }));
      expect(err.name).toBe('AbortError');
      expect(pulled).toBeGreaterThanOrEqual(14);
      expect(await d.stat('aborted')).toBeNull();
      expect(await listAll(d, 'aborted')).toEqual([]);
      await expect(d.get('aborted')).rejects.toBeInstanceOf(NotFoundError);
      // The service has the staged blocks, uncommitted: invisible, and discarded on its own.
      const uncommitted: string[] = [];
      for await (const item of container().listBlobsFlat({ prefix: 'staged/aborted', includeUncommitedBlobs: true })) uncommitted.push(item.name);
      expect(uncommitted.length).toBeLessThanOrEqual(1);
    });

    it('a body that fails after some blocks rejects with the body error itself and commits nothing', async () => {
      const boom = new Error('source broke');
      let sent = 0;
      const body = new Readable({
        read() {
          if (sent++ < 10) setImmediate(() => this.push(Buffer.alloc(256 * 1024, 1)));
          else setImmediate(() => this.destroy(boom));
        },
      });
      const err = await failure(() => d.put('broken', body));
      expect(err).toBe(boom);
      expect(await d.stat('broken')).toBeNull();
    });

    it('does not expose a staged object before its commit', async () => {
      const body = new PassThrough();
      const put = d.put('pending', body);
      body.write(randomBytes(2 * MiB + 1));
      await new Promise((r) => setTimeout(r, 300));
      expect(await d.stat('pending')).toBeNull();
      body.end();
      expect(await put).toEqual({ size: 2 * MiB + 1 });
      expect((await d.stat('pending'))?.size).toBe(2 * MiB + 1);
    });
  });

  describe('request counts', () => {
    it('small put = 1 PUT, stat = 1 HEAD, get = 1 GET, ranged get past the end = 1 GET, list = 1 LIST, delete = 1 DELETE per key', async () => {
      const d = await track(open('counts'));
      expect(await countsOf(() => d.put('a', Buffer.from('hello')))).toEqual({ put: 1 });
      expect(await countsOf(() => d.put('b', Buffer.from('x'), { ifAbsent: true }))).toEqual({ put: 1 });
      expect(await countsOf(() => d.stat('a'))).toEqual({ head: 1 });
      expect(await countsOf(() => d.stat('missing'))).toEqual({ head: 1 });
      expect(await countsOf(async () => readAll(await d.get('a')))).toEqual({ get: 1 });
      expect(await countsOf(async () => expect((await readAll(await d.get('a', { offset: 99 }))).length).toBe(0))).toEqual({ get: 1 });
      expect(await countsOf(() => expect(d.get('missing')).rejects.toBeInstanceOf(NotFoundError))).toEqual({ get: 1 });
      expect(await countsOf(() => listAll(d, ''))).toEqual({ list: 1 });
      expect(await countsOf(() => d.delete(['a', 'b', 'missing']))).toEqual({ delete: 3 });
    });
  });

  describe('failures', () => {
    it('a wrong account key is a clear non-transient error that does not contain the key', async () => {
      const wrongKey = randomBytes(64).toString('base64');
      const d = await track(open('wrong-key', {}, { AZURE_STORAGE_KEY: wrongKey }));
      const errs = [
        await failure(() => d.put('x', Buffer.from('x'))),
        await failure(async () => readAll(await d.get('x'))),
        await failure(() => d.stat('x')),
        await failure(() => listAll(d, '')),
        await failure(() => d.delete(['x'])),
      ];
      for (const err of errs) {
        expect(err).toBeInstanceOf(StorageError);
        expect((err as StorageError).transient).toBe(false);
        expect(err.message).toMatch(/403/);
        expect(err.message).toMatch(/AZURE_STORAGE_KEY/);
        expect(errorText(err)).not.toContain(wrongKey);
        expect(errorText(err)).not.toContain(server.accountKey);
      }
      expect(errs[0]?.message).toMatch(/^unable to write 'x' to azure:\/\/devstoreaccount1\/pgark-test\/wrong-key: 403 (AuthenticationFailed|AuthorizationFailure) \((authentication failed|access denied)/);
    });

    it('a missing container is a clear non-transient error, also for get and stat (not "no such object")', async () => {
      const d = await track(createAzureDriver(new URL(`azure://${server.account}/no-such-container/p`), { settings: { 'azure-endpoint': server.endpoint } }, keyEnv));
      const errs = [
        await failure(() => d.put('x', Buffer.from('x'))),
        await failure(() => d.put('x', randomBytes(9 * MiB))),
        await failure(async () => readAll(await d.get('x'))),
        await failure(() => d.stat('x')),
        await failure(() => listAll(d, '')),
      ];
      for (const err of errs) {
        expect(err).toBeInstanceOf(StorageError);
        expect(err).not.toBeInstanceOf(NotFoundError);
        expect((err as StorageError).transient).toBe(false);
        expect(err.message).toMatch(/404 ContainerNotFound \(container 'no-such-container' does not exist in account 'devstoreaccount1'/);
      }
    });

    it('retries a 503 ServerBusy inside the driver', async () => {
      const proxy = await planProxy((n) => (n === 1 || n === 3 ? { status: 503 } : 'forward'));
      try {
        const d = await track(open('busy', { 'azure-endpoint': `http://127.0.0.1:${proxy.port}/${server.account}` }));
        await d.put('k', Buffer.from('after a 503'));
        // The first connection answered 503, the retry (second connection) went through.
        expect(proxy.connections()).toBe(2);
        expect((await readAll(await d.get('k'))).toString()).toBe('after a 503');
      } finally {
        await proxy.close();
      }
    });

    it('gives up on persistent 500s with a transient error naming the status', { timeout: 60_000 }, async () => {
      const proxy = await planProxy(() => ({ status: 500 }));
      try {
        const d = await track(open('broken', { 'azure-endpoint': `http://127.0.0.1:${proxy.port}/${server.account}` }));
        for (const op of [() => d.stat('k'), () => d.put('k', Buffer.from('x')), async () => readAll(await d.get('k')), () => listAll(d, '')]) {
          const err = await failure(op);
          expect(err).toBeInstanceOf(StorageError);
          expect((err as StorageError).transient).toBe(true);
          expect(err.message).toMatch(/: 500( InternalError)?$/);
        }
        // 3 tries each: modest, the repository retries on top.
        expect(proxy.connections()).toBe(12);
      } finally {
        await proxy.close();
      }
    });

    it('a download that stalls mid-body fails as a transient error within the storage timeout', { timeout: 60_000 }, async () => {
      const data = randomBytes(4 * MiB);
      const direct = await track(open('stall-body'));
      await direct.put('obj', data);
      const proxy = await planProxy(() => ({ stallDownAfter: 256 * 1024 }));
      try {
        const d = await track(open('stall-body', { 'azure-endpoint': `http://127.0.0.1:${proxy.port}/${server.account}`, 'storage-timeout': '1' }));
        const started = Date.now();
        const err = await failure(async () => readAll(await d.get('obj')));
        expect(Date.now() - started).toBeLessThan(15_000);
        expect(err).toBeInstanceOf(StorageError);
        expect((err as StorageError).transient).toBe(true);
        expect(err.message).toMatch(/^unable to read 'obj' from azure:\/\/devstoreaccount1\/pgark-test\/stall-body: /);
      } finally {
        await proxy.close();
      }
    });

    it('a consumer that pauses longer than the storage timeout is not a stall', { timeout: 60_000 }, async () => {
      const data = randomBytes(24 * MiB);
      const d = await track(open('slow-reader', { 'storage-timeout': '1' }));
      await d.put('obj', data);
      const stream = await d.get('obj');
      const chunks: Buffer[] = [];
      let paused = false;
      for await (const c of stream) {
        chunks.push(c as Buffer);
        if (!paused) {
          paused = true;
          await new Promise((r) => setTimeout(r, 3000));
        }
      }
      expect(sha256(Buffer.concat(chunks))).toBe(sha256(data));
    });

    it('an unreachable endpoint is a transient error', async () => {
      const d = await track(open('unreachable', { 'azure-endpoint': 'http://127.0.0.1:9/devstoreaccount1', 'storage-timeout': '2' }));
      const err = await failure(() => d.stat('x'));
      expect(err).toBeInstanceOf(StorageError);
      expect((err as StorageError).transient).toBe(true);
      expect(err.message).toMatch(/ECONNREFUSED/);
    });
  });
});
