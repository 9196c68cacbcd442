/**
 * Classify AWS SDK / network failures into pgark errors (pure: works on the error's shape, no
 * SDK import). Messages are built here from the operation, the key, the HTTP status and the S3
 * error code only: the SDK's own message, `$response` and request dumps are never copied, so
 * nothing from the request (signatures, tokens, credentials) can reach a log.
 */
import { PgarkError, StorageError } from '../../src/common/errors.js';
import { withNetworkCodes } from '../network-errors.js';

export type S3Verb = 'read' | 'write' | 'stat' | 'list' | 'delete';

const PREPOSITION: Record<S3Verb, string> = { read: 'from', write: 'to', stat: 'in', list: 'in', delete: 'from' };

/** What the SDK attaches to service errors (a subset; all optional so any value can be probed). */
interface SdkErrorShape {
  name?: unknown;
  code?: unknown;
  Code?: unknown;
  $fault?: unknown;
  $retryable?: unknown;
  $metadata?: { httpStatusCode?: unknown };
}

function shape(err: unknown): SdkErrorShape {
  return typeof err === 'object' && err !== null ? (err as SdkErrorShape) : {};
}

/** HTTP status of a service error, if the failure got that far. */
export function httpStatusOf(err: unknown): number | undefined {
  const s = shape(err).$metadata?.httpStatusCode;
  return typeof s === 'number' ? s : undefined;
}

/** The S3 error code (`NoSuchKey`, `SlowDown`...) of a service error, or a Node error code. */
export function errorCodeOf(err: unknown): string | undefined {
  const e = shape(err);
  for (const c of [e.Code, e.code, e.name]) {
    if (typeof c === 'string' && c !== '' && c !== 'Error') return c;
  }
  return undefined;
}

export function isAbortError(err: unknown): boolean {
  const e = shape(err);
  return e.name === 'AbortError' || e.code === 'ABORT_ERR';
}

export function isNotFound(err: unknown): boolean {
  const code = errorCodeOf(err);
  if (code === 'NoSuchBucket') return false;
  return httpStatusOf(err) === 404 || code === 'NoSuchKey' || code === 'NotFound';
}

export function isNoSuchBucket(err: unknown): boolean {
  return errorCodeOf(err) === 'NoSuchBucket';
}

export function isPreconditionFailed(err: unknown): boolean {
  return httpStatusOf(err) === 412 || errorCodeOf(err) === 'PreconditionFailed';
}

/** 409 ConditionalRequestConflict: a concurrent conditional write on the same key. */
export function isConditionalConflict(err: unknown): boolean {
  const code = errorCodeOf(err);
  return code === 'ConditionalRequestConflict' || (httpStatusOf(err) === 409 && (code === undefined || code === 'Conflict' || code === 'Unknown'));
}

export function isNoSuchUpload(err: unknown): boolean {
  return errorCodeOf(err) === 'NoSuchUpload';
}

/** Attempts the SDK made before giving up (1 when unknown). */
export function attemptsOf(err: unknown): number {
  const a = (shape(err).$metadata as { attempts?: unknown } | undefined)?.attempts;
  return typeof a === 'number' && a > 0 ? a : 1;
}

export function isInvalidRange(err: unknown): boolean {
  return httpStatusOf(err) === 416 || errorCodeOf(err) === 'InvalidRange';
}

/** Node / SDK network failure codes where a retry may help. */
const NETWORK_CODES = withNetworkCodes('TimeoutError', 'RequestTimeout', 'RequestTimeoutException');

/** S3 error codes where a retry may help. */
const TRANSIENT_CODES = new Set([
  'SlowDown',
  'ServiceUnavailable',
  'InternalError',
  'RequestTimeout',
  'Throttling',
  'ThrottlingException',
  'ThrottledException',
  'RequestThrottled',
  'RequestLimitExceeded',
  'TooManyRequestsException',
  'OperationAborted',
  'BadDigest',
  'XAmzContentSHA256Mismatch',
  'IncompleteBody',
  'NoSuchUpload',
]);

/** Non-transient codes with a hint on what to fix. */
const HINTS: Record<string, string> = {
  InvalidAccessKeyId: 'the access key id is unknown to the store: check AWS_ACCESS_KEY_ID, AWS_PROFILE or the credentials file',
  SignatureDoesNotMatch: 'the secret access key does not match the access key id: check AWS_SECRET_ACCESS_KEY, AWS_PROFILE or the credentials file',
  AccessDenied: 'access denied: check the credentials and that the bucket policy allows s3:GetObject, s3:PutObject, s3:ListBucket and s3:DeleteObject',
  AllAccessDisabled: 'access to the bucket is disabled',
  AccountProblem: 'the account has a problem that prevents the operation',
  ExpiredToken: 'the session token has expired: refresh the credentials',
  TokenRefreshRequired: 'the session token must be refreshed',
  InvalidToken: 'the session token is invalid: check AWS_SESSION_TOKEN',
  RequestTimeTooSkewed: "the local clock differs from the store's by more than 15 minutes: fix the clock (NTP)",
  NoSuchBucket: 'the bucket does not exist: check the repository URL, s3-endpoint and s3-region',
  PermanentRedirect: 'the bucket is in another region or needs another endpoint: set s3-region (or s3-endpoint)',
  AuthorizationHeaderMalformed: 'the request was signed for the wrong region: set s3-region to the bucket\'s region',
  IllegalLocationConstraintException: 'the bucket is in another region: set s3-region',
  InvalidObjectState: 'the object is archived (e.g. storage class GLACIER or DEEP_ARCHIVE): restore it before reading, and do not archive WAL there',
  InvalidStorageClass: 'the store does not accept this storage class: check s3-storage-class',
  KMS_AccessDenied: 'access to the KMS key is denied: check s3-sse-kms-key-id and the key policy',
  'KMS.NotFoundException': 'the KMS key does not exist: check s3-sse-kms-key-id',
  NotImplemented: 'the store does not implement this request (a store without conditional writes needs s3-put-if-absent = head)',
  CredentialsProviderError: 'no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or use an instance/task role',
  ENOTFOUND: 'the store\'s host name does not resolve: check s3-endpoint (and s3-path-style for buckets whose name is not a valid host name)',
};

const STATUS_HINTS: Record<number, string> = {
  301: HINTS.PermanentRedirect as string,
  307: HINTS.PermanentRedirect as string,
  401: 'the store refused the credentials: check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY or AWS_PROFILE',
  403: HINTS.AccessDenied as string,
  501: HINTS.NotImplemented as string,
};

export interface S3ErrorContext {
  verb: S3Verb;
  /** Repository key or list prefix. */
  key: string;
  /** Display location, e.g. s3://bucket/prefix. */
  location: string;
  /** storage-timeout in ms, to say what a timeout means. */
  timeoutMs?: number;
}

export function isTransientS3Error(err: unknown): boolean {
  const status = httpStatusOf(err);
  const code = errorCodeOf(err);
  if (code !== undefined && TRANSIENT_CODES.has(code)) return true;
  if (code !== undefined && NETWORK_CODES.has(code)) return true;
  if (code !== undefined && HINTS[code] !== undefined) return false;
  if (status !== undefined) return status === 429 || (status >= 500 && status !== 501);
  const e = shape(err);
  if (e.$retryable) return true;
  // A network failure without a service response: unknown socket trouble is worth a retry.
  return e.$metadata === undefined && err instanceof Error && /socket|network|connect|hang up|timed? ?out/i.test(err.message);
}

/**
 * Wrap a failure of one S3 request as a StorageError with a short, secret-free message.
 * pgark errors and aborts pass through unchanged (callers tell cancellation from failure).
 */
export function s3Error(ctx: S3ErrorContext, err: unknown): Error {
  if (err instanceof PgarkError || isAbortError(err)) return err as Error;
  const status = httpStatusOf(err);
  const code = errorCodeOf(err);
  let detail: string;
  if (code === 'TimeoutError' || code === 'ETIMEDOUT' || code === 'ESOCKETTIMEDOUT') {
    detail = ctx.timeoutMs !== undefined ? `timed out: no progress for ${Math.round(ctx.timeoutMs / 1000)} s (storage-timeout)` : 'timed out';
  } else if (status !== undefined) {
    // Codes the SDK synthesises from a bodiless response (HEAD) repeat the status; keep them short.
    detail = code && !/^(Unknown|UnknownError|\d+)$/.test(code) ? `${status} ${code}` : `HTTP ${status}`;
  } else {
    detail = code ?? 'request failed';
  }
  const hint = (code !== undefined ? HINTS[code] : undefined) ?? (status !== undefined ? STATUS_HINTS[status] : undefined);
  const transient = isTransientS3Error(err);
  const message = `unable to ${ctx.verb} '${ctx.key}' ${PREPOSITION[ctx.verb]} ${ctx.location}: ${detail}${hint && !transient ? ` (${hint})` : ''}`;
  return new StorageError('s3', message, { cause: redactedCause(err, status, code), transient });
}

/**
 * The SDK error itself holds the raw response (headers, sometimes request details), so it is
 * not kept as `cause`: a plain Error with the status and code is kept instead.
 */
function redactedCause(err: unknown, status: number | undefined, code: string | undefined): Error {
  const e = new Error([status, code].filter((x) => x !== undefined).join(' ') || 'S3 request failed');
  e.name = err instanceof Error ? err.name : 'Error';
  return e;
}
