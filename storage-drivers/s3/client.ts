/**
 * Build the S3Client for the driver: standard AWS credential chain, modest SDK retries,
 * timeouts from storage-timeout, a keep-alive agent with bounded sockets, the checksum mode, and
 * two middlewares (request counting; Content-MD5 for DeleteObjects in when-required mode).
 */
import { createHash } from 'node:crypto';
import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { countRequest, type RequestKind } from '../request-stats.js';
import type { S3Settings } from './settings.js';

/** Attempts in total per request, including the first (the repository retries again on top). */
export const SDK_MAX_ATTEMPTS = 3;
/** Sockets per agent: enough for wal-push/backup parallelism, bounded so a burst cannot exhaust fds. */
export const MAX_SOCKETS = 32;

const KIND: Record<string, RequestKind> = {
  GetObjectCommand: 'get',
  HeadObjectCommand: 'head',
  PutObjectCommand: 'put',
  UploadPartCommand: 'put',
  ListObjectsV2Command: 'list',
  ListMultipartUploadsCommand: 'list',
  DeleteObjectsCommand: 'delete',
  DeleteObjectCommand: 'delete',
};

/** The SDK's logger with s3-profile: silent, but for warnings other than the one a profile next to AWS_ACCESS_KEY_ID causes. */
const PROFILE_LOGGER = {
  debug: (): void => undefined,
  info: (): void => undefined,
  warn: (...m: unknown[]): void => {
    if (!String(m[0]).includes('Multiple credential sources detected')) console.warn(...m);
  },
  error: (...m: unknown[]): void => console.error(...m),
};

/** Test hook: extra client options (e.g. explicit credentials), never read from config. */
export type S3ClientOverrides = Partial<Pick<S3ClientConfig, 'credentials' | 'endpoint'>>;

export async function createS3Client(settings: S3Settings, overrides: S3ClientOverrides = {}): Promise<S3Client> {
  // The SDK warns on every process start under Node < 22 (a notice about future SDK releases;
  // pgark pins its SDK). wal-push runs once per WAL segment, so the warning would flood the
  // PostgreSQL log. An explicit setting of the variable is respected.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const checksum = settings.checksum === 'when-required' ? 'WHEN_REQUIRED' : 'WHEN_SUPPORTED';
  const agent = { keepAlive: true, maxSockets: MAX_SOCKETS };
  const config: S3ClientConfig = {
    maxAttempts: SDK_MAX_ATTEMPTS,
    retryMode: 'standard',
    requestChecksumCalculation: checksum,
    responseChecksumValidation: checksum,
    // 100-continue makes the handler open a fresh agent per large request, bypassing keep-alive
    // and the socket bound; large bodies go as multipart parts anyway.
    expectContinueHeader: false,
    requestHandler: {
      connectionTimeout: settings.timeoutMs,
      // A rolling idle timeout, armed through the response body: "no progress for this long".
      socketTimeout: settings.timeoutMs,
      httpAgent: agent,
      httpsAgent: agent,
    },
    ...(settings.endpoint !== undefined ? { endpoint: settings.endpoint } : {}),
    forcePathStyle: settings.pathStyle,
    // A named profile: the SDK's credential chain then reads that profile, not AWS_ACCESS_KEY_ID
    // (which may be set for another repository: its "multiple credential sources" notice is dropped).
    ...(settings.profile !== undefined ? { profile: settings.profile, logger: PROFILE_LOGGER } : {}),
    ...overrides,
  };
  let client = new S3Client(settings.region !== undefined ? { ...config, region: settings.region } : config);
  if (settings.region === undefined) {
    // The SDK takes the region from AWS_REGION or the shared config; S3-compatible stores often
    // have neither, and us-east-1 is what they expect then.
    try {
      await client.config.region();
    } catch {
      client.destroy();
      client = new S3Client({ ...config, region: 'us-east-1' });
    }
  }
  addMiddlewares(client, settings);
  return client;
}

function addMiddlewares(client: S3Client, settings: S3Settings): void {
  // The deserialize step runs once per attempt (inside the retry middleware): retries count again.
  client.middlewareStack.add(
    (next, context) => async (args) => {
      countRequest(KIND[context.commandName ?? ''] ?? 'other');
      return next(args);
    },
    { step: 'deserialize', name: 'pgarkCountRequests', priority: 'high' },
  );
  if (settings.checksum === 'when-required') {
    // DeleteObjects is the one request S3 requires a checksum for; the SDK sends CRC32, which
    // older MinIO, Ceph and other S3-compatible stores refuse. Content-MD5 is accepted by all
    // (aws-sdk-js-v3 supplemental-docs/MD5_FALLBACK.md). Low priority: after the SDK's checksum
    // middleware in the build step, before signing.
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const request = args.request as { headers?: Record<string, string>; body?: unknown } | undefined;
        if (context.commandName === 'DeleteObjectsCommand' && request?.headers && (typeof request.body === 'string' || Buffer.isBuffer(request.body))) {
          for (const h of Object.keys(request.headers)) {
            const l = h.toLowerCase();
            if (l.startsWith('x-amz-checksum-') || l.startsWith('x-amz-sdk-checksum-') || l === 'content-md5') delete request.headers[h];
          }
          request.headers['content-md5'] = createHash('md5').update(request.body).digest('base64');
        }
        return next(args);
      },
      { step: 'build', name: 'pgarkDeleteObjectsMd5', priority: 'low' },
    );
  }
}
