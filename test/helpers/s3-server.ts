/**
 * Test S3 server: s3rver 3.7.1 (npm devDependency) in a child node process started with
 * `--openssl-legacy-provider`, on 127.0.0.1 and a free port, data in a mkdtemp directory, one
 * bucket created at start-up.
 *
 * s3rver lacks parts of AWS S3 that the driver depends on, so the child
 * (test/fixtures/s3/s3rver-child.mjs) puts a middleware in front of it that emulates AWS S3's
 * documented conditional writes (August 2024: `If-None-Match: *` on PutObject and
 * CompleteMultipartUpload -> 412 PreconditionFailed when the key exists, serialized per key so
 * two racing writers cannot both win), AbortMultipartUpload, ListMultipartUploads, NoSuchUpload,
 * and SigV4 signature verification (s3rver only checks that the access key id exists). It
 * records the headers of every request for tests that check what went over the wire.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const childScript = join(here, '../fixtures/s3/s3rver-child.mjs');

export interface RecordedRequest {
  method: string;
  /** Raw (percent-encoded) path, `/bucket/key`. */
  path: string;
  /** Raw query string without '?'. */
  query: string;
  /** x-amz-*, conditional and content headers as received (never Authorization). */
  headers: Record<string, string>;
}

export interface S3TestServer {
  host: string;
  port: number;
  /** http://127.0.0.1:<port> */
  endpoint: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  dataDir: string;
  /** Driver settings for this server (endpoint, path-style, region), merged with `extra`. */
  settings(extra?: Record<string, string>): Record<string, string>;
  requests(): Promise<RecordedRequest[]>;
  clearRequests(): Promise<void>;
  stop(): Promise<void>;
}

export interface S3ServerOptions {
  bucket?: string;
  /** Verify SigV4 signatures against the secret (default true). */
  verifySignatures?: boolean;
}

function assertInstalled(): void {
  try {
    createRequire(import.meta.url).resolve('s3rver');
  } catch {
    throw new Error("s3rver is not installed: run 'npm install' (s3rver 3.7.1 is a devDependency of pgark)");
  }
}

export async function startS3Server(o: S3ServerOptions = {}): Promise<S3TestServer> {
  assertInstalled();
  const dataDir = await mkdtemp(join(tmpdir(), 'pgark-s3rver-'));
  const bucket = o.bucket ?? 'pgark-test';
  const accessKeyId = `PGARKTEST${randomBytes(6).toString('hex').toUpperCase()}`;
  const secretAccessKey = randomBytes(30).toString('base64url');
  const child = fork(childScript, [], {
    execArgv: ['--openssl-legacy-provider'],
    env: {
      ...process.env,
      S3_HARNESS_CONFIG: JSON.stringify({ dir: dataDir, bucket, accessKeyId, secretAccessKey, verifySignatures: o.verifySignatures ?? true }),
    },
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });

  let port: number;
  try {
    port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`s3rver did not start within 20 s: ${stderr}`)), 20_000);
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`s3rver exited during start-up (${code ?? signal}): ${stderr}`));
      });
      child.on('message', (msg: { type?: string; port?: number }) => {
        if (msg?.type === 'ready' && typeof msg.port === 'number') {
          clearTimeout(timer);
          resolve(msg.port);
        }
      });
    });
  } catch (err) {
    child.kill('SIGKILL');
    await rm(dataDir, { recursive: true, force: true });
    throw err;
  }

  let seq = 0;
  const ask = <T>(type: string, pick: (msg: Record<string, unknown>) => T): Promise<T> =>
    new Promise((resolve, reject) => {
      const id = ++seq;
      const onMessage = (msg: Record<string, unknown>): void => {
        if (msg?.type === type && msg.id === id) {
          child.off('message', onMessage);
          resolve(pick(msg));
        }
      };
      child.on('message', onMessage);
      if (!child.connected) reject(new Error('s3rver is not running'));
      else child.send({ type, id });
    });

  const host = '127.0.0.1';
  const endpoint = `http://${host}:${port}`;
  return {
    host,
    port,
    endpoint,
    bucket,
    accessKeyId,
    secretAccessKey,
    dataDir,
    settings: (extra = {}) => ({ 's3-endpoint': endpoint, 's3-path-style': 'true', 's3-region': 'us-east-1', ...extra }),
    requests: () => ask('requests', (m) => m.entries as RecordedRequest[]),
    clearRequests: () => ask('clearRequests', () => undefined),
    stop: async () => {
      await stopChild(child);
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  if (child.connected) child.send({ type: 'stop' });
  else child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}
