/**
 * The azure driver with no key, SAS or connection string uses DefaultAzureCredential: here its
 * workload identity branch (AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_FEDERATED_TOKEN_FILE,
 * AZURE_AUTHORITY_HOST) against a loopback https server that plays both Microsoft Entra ID
 * (OpenID metadata and token endpoint) and the blob service. MSAL and the bearer-token policy
 * accept https only, so the server has a throw-away self-signed certificate that the child
 * process trusts through NODE_EXTRA_CA_CERTS (read at process start, hence a child running the
 * built driver from dist/). Managed identity (IMDS) cannot be reached from here; it is the same
 * DefaultAzureCredential path after the token source.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../helpers/pg-cluster.js';

const dir = mkdtempSync(path.join(tmpdir(), 'pgark-azid-'));
const FEDERATED = 'fake-federated-jwt-from-the-kubelet';
const TOKEN = 'fake-entra-access-token';
const blobs = new Map<string, Buffer>();
const seen: { method: string; url: string; auth: string | undefined; body: string }[] = [];
let refuseTokens = false;
let server: Server;
let base = '';

beforeAll(async () => {
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${dir}/key.pem`, '-out', `${dir}/cert.pem`, '-days', '1',
    '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  writeFileSync(`${dir}/federated-token`, FEDERATED, { mode: 0o600 });
  server = createServer({ key: readFileSync(`${dir}/key.pem`), cert: readFileSync(`${dir}/cert.pem`) }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const url = req.url ?? '';
      seen.push({ method: req.method ?? '', url, auth: req.headers.authorization, body: body.toString() });
      const json = (v: unknown, status = 200): void => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(v));
      };
      if (url.startsWith('/tenant1/v2.0/.well-known/openid-configuration')) {
        json({ token_endpoint: `${base}/tenant1/oauth2/v2.0/token`, issuer: `${base}/tenant1/v2.0`, authorization_endpoint: `${base}/tenant1/oauth2/v2.0/authorize`, jwks_uri: `${base}/keys` });
        return;
      }
      if (url.startsWith('/tenant1/oauth2/v2.0/token')) {
        if (refuseTokens) json({ error: 'invalid_client', error_description: 'AADSTS700213: No matching federated identity record found' }, 401);
        else json({ token_type: 'Bearer', expires_in: 3600, ext_expires_in: 3600, access_token: TOKEN });
        return;
      }
      // The blob service (path style: /<account>/<container>/<blob>).
      if (req.headers.authorization !== `Bearer ${TOKEN}`) {
        res.writeHead(401, { 'x-ms-error-code': 'NoAuthenticationInformation' });
        res.end();
        return;
      }
      const key = url.split('?')[0]!;
      if (req.method === 'PUT') {
        blobs.set(key, body);
        res.writeHead(201, { etag: '"1"', 'last-modified': new Date().toUTCString() });
        res.end();
      } else if (req.method === 'GET' || req.method === 'HEAD') {
        const b = blobs.get(key);
        if (!b) {
          res.writeHead(404, { 'x-ms-error-code': 'BlobNotFound' });
          res.end();
          return;
        }
        res.writeHead(200, { 'content-length': String(b.length), 'last-modified': new Date().toUTCString(), 'x-ms-blob-type': 'BlockBlob', etag: '"1"' });
        res.end(req.method === 'GET' ? b : undefined);
      } else {
        res.writeHead(400);
        res.end();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  rmSync(dir, { recursive: true, force: true });
});

/** Run the built driver in a child with only `env` (plus PATH and the test CA): put, stat, get. */
function runDriver(env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  const driverJs = path.join(PROJECT_ROOT, 'dist', 'storage-drivers', 'azure', 'azure-driver.js');
  const script = `
    const { createAzureDriver } = await import(${JSON.stringify(driverJs)});
    const d = await createAzureDriver(new URL('azure://acct/cont/pre'), { settings: { 'azure-endpoint': ${JSON.stringify(`${base}/acct`)} } }, process.env);
    try {
      await d.put('k/one', Buffer.from('hello identity'));
      const info = await d.stat('k/one');
      const chunks = [];
      for await (const c of await d.get('k/one')) chunks.push(c);
      console.log(JSON.stringify({ size: info && info.size, body: Buffer.concat(chunks).toString() }));
    } finally { await d.close(); }`;
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', NODE_EXTRA_CA_CERTS: `${dir}/cert.pem`, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    child.on('exit', (code) => resolve({ code, out }));
  });
}

const workloadEnv = (): Record<string, string> => ({
  AZURE_TENANT_ID: 'tenant1',
  AZURE_CLIENT_ID: 'client1',
  AZURE_FEDERATED_TOKEN_FILE: `${dir}/federated-token`,
  AZURE_AUTHORITY_HOST: base,
});

describe('azure driver with a workload identity', () => {
  it('exchanges the federated token for an Entra ID token and sends it to the blob service', async () => {
    seen.length = 0;
    refuseTokens = false;
    const r = await runDriver(workloadEnv());
    expect(r.out).toContain('{"size":14,"body":"hello identity"}');
    expect(r.code).toBe(0);
    const tokenRequest = seen.find((s) => s.url.startsWith('/tenant1/oauth2/v2.0/token'));
    expect(tokenRequest?.body).toContain(`client_assertion=${FEDERATED}`);
    expect(tokenRequest?.body).toContain('client_id=client1');
    expect(tokenRequest?.body).toContain(encodeURIComponent('https://storage.azure.com/.default'));
    const blobRequests = seen.filter((s) => s.url.startsWith('/acct/cont/pre/k/one'));
    expect(blobRequests.map((s) => s.method)).toEqual(['PUT', 'HEAD', 'GET']);
    for (const s of blobRequests) expect(s.auth).toBe(`Bearer ${TOKEN}`);
    expect(blobs.get('/acct/cont/pre/k/one')?.toString()).toBe('hello identity');
  }, 60_000);

  it('a refused identity is a clear, non-retried error that names what pgark looked for', async () => {
    seen.length = 0;
    refuseTokens = true;
    const r = await runDriver(workloadEnv());
    expect(r.code).not.toBe(0);
    expect(r.out).toMatch(/unable to write 'k\/one' to azure:\/\/acct\/cont\/pre: .*no Microsoft Entra ID token from DefaultAzureCredential/);
    expect(r.out).not.toContain(FEDERATED);
    expect(seen.filter((s) => s.url.startsWith('/acct/'))).toEqual([]);
  }, 60_000);
});
