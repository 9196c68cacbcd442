/**
 * Turning what @google-cloud/storage throws into pgark errors (pure: no I/O, no SDK import).
 *
 * The SDK throws several shapes: ApiError (JSON API calls: `code` = HTTP status, `errors[]`
 * with reasons), GaxiosError (resumable uploads: `response.status`, `response.data`), plain
 * `{code, message, errors}` objects and 'Upload failed' / 'Retry limit exceeded - status: N'
 * errors from the resumable uploader, node-fetch FetchErrors (`type` request-timeout, system
 * errors with `code`), and google-auth-library errors. Their messages may hold request URLs
 * (with resumable session ids, which are credentials) or response dumps, so messages are built
 * from the operation, the key, the status, the reason and the error code only, and the SDK
 * error is never attached as `cause`.
 */
import { AlreadyExistsError, NotFoundError, PgarkError, StorageError } from '../../src/common/errors.js';
import { withNetworkCodes } from '../network-errors.js';

export interface GcsErrorInfo {
  /** HTTP status, when a response arrived. */
  status?: number;
  /** Google's error reason (`notFound`, `conditionNotMet`, `rateLimitExceeded`, ...). */
  reason?: string;
  /** Google's error message (from the JSON body), for classification and 403 hints. */
  apiMessage?: string;
  /** Transport error code (ECONNRESET, ETIMEDOUT, ...) or node-fetch error type. */
  code?: string;
  timeout?: boolean;
  /** google-auth-library found no Application Default Credentials. */
  noCredentials?: boolean;
  /** The resumable uploader gave up after retrying (what it retries is transient). */
  retriesExhausted?: boolean;
}

const TRANSIENT_STATUS = new Set([408, 429, 500, 502, 503, 504]);
/** Network codes, and the resumable uploader's lost session offset. */
const TRANSIENT_CODES = withNetworkCodes('ESESSIONOFFSET');

type Loose = Record<string, unknown>;
const obj = (v: unknown): Loose | undefined => (typeof v === 'object' && v !== null ? (v as Loose) : undefined);
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
const statusNumber = (v: unknown): number | undefined => {
  const n = typeof v === 'string' && /^\d{3}$/.test(v) ? Number(v) : v;
  return typeof n === 'number' && Number.isInteger(n) && n >= 100 && n < 600 ? n : undefined;
};

/** `{error: {code, message, errors: [{reason}]}}` (possibly as JSON text) -> its parts. */
function fromErrorBody(body: unknown): Pick<GcsErrorInfo, 'status' | 'reason' | 'apiMessage'> {
  let b = body;
  if (typeof b === 'string') {
    const t = b.trim();
    if (!t.startsWith('{')) return {};
    try {
      b = JSON.parse(t) as unknown;
    } catch {
      return {};
    }
  }
  const e = obj(obj(b)?.error) ?? obj(b);
  if (!e) return {};
  const first = obj(Array.isArray(e.errors) ? e.errors[0] : undefined);
  const out: Pick<GcsErrorInfo, 'status' | 'reason' | 'apiMessage'> = {};
  const status = statusNumber(e.code);
  if (status !== undefined) out.status = status;
  const reason = str(first?.reason);
  if (reason !== undefined) out.reason = reason;
  const message = str(e.message) ?? str(first?.message);
  if (message !== undefined) out.apiMessage = message;
  return out;
}

export function inspectGcsError(err: unknown): GcsErrorInfo {
  const info: GcsErrorInfo = {};
  const e = obj(err);
  if (!e) return info;
  const message = str(e.message) ?? '';
  if (/Could not load the default credentials|Unable to detect a Project Id|could not find default credentials/i.test(message)) {
    info.noCredentials = true;
  }

  // Status: ApiError.code / Upload 'code', GaxiosError.status / response.status.
  const response = obj(e.response);
  info.status = statusNumber(e.code) ?? statusNumber(e.status) ?? statusNumber(response?.status) ?? statusNumber(response?.statusCode);

  // Reason and API message from errors[] or a JSON body.
  const first = obj(Array.isArray(e.errors) ? e.errors[0] : undefined);
  const fromBody = { ...fromErrorBody(response?.data), ...fromErrorBody(first), ...fromErrorBody(response?.body) };
  const reason = str(first?.reason) ?? fromBody.reason;
  if (reason !== undefined && !/^\d{3}$/.test(reason) && !TRANSIENT_CODES.has(reason.toUpperCase())) info.reason = reason;
  else if (reason !== undefined && TRANSIENT_CODES.has(reason.toUpperCase())) info.code = reason.toUpperCase();
  info.status ??= fromBody.status;
  // createReadStream replaces an error's message with the response body text.
  const fromMessage = fromErrorBody(message);
  info.reason ??= fromMessage.reason;
  info.status ??= fromMessage.status;
  const apiMessage = fromBody.apiMessage ?? fromMessage.apiMessage ?? str(first?.message);
  if (apiMessage !== undefined) info.apiMessage = apiMessage;

  // 'Retry limit exceeded - status: 503 - ... - code: ECONNRESET' from the resumable uploader.
  if (/^Retry (?:total time )?limit exceeded\b/.test(message)) {
    info.retriesExhausted = true;
    const s = /\bstatus: (\d{3})\b/.exec(message);
    if (s && info.status === undefined) info.status = Number(s[1]);
    const c = /\bcode: ([A-Z][A-Z0-9_]+)\b/.exec(message);
    if (c && info.code === undefined) info.code = c[1] as string;
  }

  // Transport: system error codes, node-fetch error types.
  const code = str(e.code) ?? str(obj(e.error)?.code) ?? str(obj(e.cause)?.code);
  if (code !== undefined && !/^\d{3}$/.test(code)) info.code = code;
  const type = str(e.type);
  if (type === 'request-timeout' || type === 'body-timeout' || /network timeout|timeout of \d+ms exceeded|Response timeout/i.test(message)) {
    info.timeout = true;
  }
  if (info.code === undefined && /socket hang up/i.test(message)) info.code = 'ECONNRESET';
  if (info.code === undefined && type === 'system') info.code = 'ESYSTEM';
  if (info.code === undefined && /premature close/i.test(message)) info.code = 'ERR_STREAM_PREMATURE_CLOSE';
  // The resumable uploader's guard when the server reports fewer bytes than were sent.
  if (info.code === undefined && /offset is lower than the number of bytes written/i.test(message)) info.code = 'ESESSIONOFFSET';
  return info;
}

export function isTransientInfo(info: GcsErrorInfo): boolean {
  if (info.noCredentials) return false;
  if (info.status !== undefined) return TRANSIENT_STATUS.has(info.status) || info.reason === 'rateLimitExceeded' || info.reason === 'userRateLimitExceeded';
  if (info.timeout || info.retriesExhausted) return true;
  if (info.code !== undefined) return TRANSIENT_CODES.has(info.code) || info.code === 'ESYSTEM';
  return false;
}

/** For the SDK's retryableErrorFn: retry what a retry may fix, whatever shape it has. */
export function isTransientGcsError(err: unknown): boolean {
  return isTransientInfo(inspectGcsError(err));
}

/** A 404 about the bucket rather than the object ("The specified bucket does not exist."). */
export function isBucketMissing(info: GcsErrorInfo): boolean {
  return info.status === 404 && info.apiMessage !== undefined && /bucket/i.test(info.apiMessage) && !/object/i.test(info.apiMessage);
}

/** Strip what could be a credential from a server-provided message before showing it. */
export function scrubMessage(text: string): string {
  return text
    .replace(/https?:\/\/\S+/g, '<url>')
    .replace(/\b(ya29\.|Bearer\s+)[\w.~+/=-]+/gi, '$1***')
    .replace(/\b(upload_id|access_token|token|key|signature|sig)=[^\s&]+/gi, '$1=***')
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, 300);
}

/** Short description of a failure: `503 backendError`, `timeout`, `ECONNRESET`. */
export function describeInfo(info: GcsErrorInfo, timeoutMs: number): string {
  if (info.noCredentials) return 'no Google credentials';
  if (info.status !== undefined) return `${info.status}${info.reason ? ` ${info.reason}` : ''}${statusText(info.status)}`;
  if (info.timeout) return `no response within ${Math.round(timeoutMs / 1000)} s (storage-timeout)`;
  if (info.code === 'ESESSIONOFFSET') return 'the upload session lost bytes it had acknowledged';
  if (info.code !== undefined) return info.code;
  if (info.retriesExhausted) return 'gave up after retries';
  return 'unexpected error';
}

function statusText(status: number): string {
  switch (status) {
    case 500:
      return ' (internal error)';
    case 502:
      return ' (bad gateway)';
    case 503:
      return ' (service unavailable)';
    case 504:
      return ' (gateway timeout)';
    case 429:
      return ' (too many requests)';
    default:
      return '';
  }
}

function hint(info: GcsErrorInfo, bucket: string): string {
  if (info.noCredentials) {
    return ': set GOOGLE_APPLICATION_CREDENTIALS to a service account key file, run `gcloud auth application-default login`, or run on Google Cloud with a service account; for an emulator set gcs-endpoint (http://...) or STORAGE_EMULATOR_HOST';
  }
  if (info.status === 401) return ': authentication failed; check the Application Default Credentials (GOOGLE_APPLICATION_CREDENTIALS)';
  if (info.status === 403) {
    const detail = info.apiMessage ? ` (${scrubMessage(info.apiMessage)})` : '';
    return `: permission denied on bucket '${bucket}'${detail}; the credentials need roles/storage.objectUser or storage.objects.* permissions`;
  }
  if (isBucketMissing(info)) return `: bucket '${bucket}' does not exist`;
  if (info.code === 'ENOTFOUND') return ': the endpoint host name does not resolve (check gcs-endpoint)';
  return '';
}

export interface ErrorContext {
  /** `read`, `write`, `stat`, `list`, `delete`. */
  verb: string;
  key: string;
  location: string;
  bucket: string;
  timeoutMs: number;
}

/**
 * Map a failure to the error pgark expects: pgark errors and aborts pass through; 404 of an
 * object -> NotFoundError (reads), 412 of put-if-absent -> AlreadyExistsError; everything else
 * a StorageError whose message names the operation, key and status.
 */
export function gcsError(err: unknown, ctx: ErrorContext, o: { notFound?: boolean; ifAbsent?: boolean } = {}): Error {
  if (err instanceof PgarkError) return err;
  if (err instanceof Error && (err.name === 'AbortError' || (err as NodeJS.ErrnoException).code === 'ABORT_ERR')) return err;
  const info = inspectGcsError(err);
  if (o.notFound && info.status === 404 && !isBucketMissing(info)) return new NotFoundError(ctx.key);
  if (o.ifAbsent && info.status === 412) return new AlreadyExistsError(ctx.key);
  const preposition = ctx.verb === 'write' ? 'to' : ctx.verb === 'list' ? 'in' : 'from';
  const what = ctx.verb === 'list' ? `'${ctx.key}*'` : `'${ctx.key}'`;
  return new StorageError('gcs', `unable to ${ctx.verb} ${what} ${preposition} ${ctx.location}: ${describeInfo(info, ctx.timeoutMs)}${hint(info, ctx.bucket)}`, {
    transient: isTransientInfo(info),
  });
}
