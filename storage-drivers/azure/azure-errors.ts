/**
 * Classification of Azure SDK errors and the driver's own error messages (pure, no SDK: the
 * SDK's RestError is read by duck typing).
 *
 * Messages are built from the operation, the key, the HTTP status and the service's error code
 * only. The SDK's own message, request and response can carry the request URL (with a SAS
 * token in its query) and are never copied into a message or attached as a cause.
 */
import { AlreadyExistsError, NotFoundError, PgarkError, StorageError } from '../../src/common/errors.js';
import { withNetworkCodes } from '../network-errors.js';

export interface AzureErrorFacts {
  /** HTTP status, when a response arrived. */
  status: number | undefined;
  /** Service error code (x-ms-error-code) or the network error code (ECONNRESET, ...). */
  code: string | undefined;
  name: string;
  /** The SDK's message: read for classification only, never shown unredacted. */
  message: string;
}

export type AzureErrorKind =
  /** The blob does not exist (not the container). */
  | 'notFound'
  /** The container does not exist: bad configuration. */
  | 'containerMissing'
  /** A conditional create found the blob already there. */
  | 'exists'
  /** 416: a ranged read starts past the end of the blob. */
  | 'range'
  /** 401/403: the credential is wrong, expired or lacks permission. */
  | 'auth'
  /** The caller's AbortSignal fired. */
  | 'abort'
  /** A retry may help: network errors, timeouts, throttling, 5xx. */
  | 'transient'
  /** Anything else: a retry will not help. */
  | 'permanent';

/** Network error codes (Node and the SDK's REQUEST_SEND_ERROR) that a retry may fix. */
const NETWORK_CODES = withNetworkCodes('ENOTFOUND', 'EPROTO', 'REQUEST_SEND_ERROR', 'PARSE_ERROR', 'HPE_INVALID_CONSTANT', 'HPE_UNEXPECTED_CONTENT_LENGTH');

/** 4xx service codes that a retry may fix. */
const TRANSIENT_4XX = new Set([
  'OperationTimedOut',
  'ServerBusy',
  // Another writer committed the same blob while our blocks were staged, which discards them;
  // the whole put can be redone.
  'InvalidBlockList',
  'BlockListTooLong',
]);

/** Errors @azure/identity throws when DefaultAzureCredential gets no token. */
const IDENTITY_ERRORS = new Set(['CredentialUnavailableError', 'AggregateAuthenticationError', 'AuthenticationError', 'AuthenticationRequiredError']);

export function errorFacts(err: unknown): AzureErrorFacts {
  if (!(err instanceof Error)) return { status: undefined, code: undefined, name: 'Error', message: String(err) };
  const e = err as Error & { statusCode?: unknown; code?: unknown; response?: { headers?: { get?: (n: string) => string | undefined } } };
  const status = typeof e.statusCode === 'number' && e.statusCode > 0 ? e.statusCode : undefined;
  let code = typeof e.code === 'string' && e.code !== '' ? e.code : undefined;
  // HEAD responses have no body: the service code is only in the header.
  const header = typeof e.response?.headers?.get === 'function' ? e.response.headers.get('x-ms-error-code') : undefined;
  if (header && (!code || code === 'REQUEST_SEND_ERROR')) code = header;
  return { status, code, name: e.name, message: e.message };
}

export function classifyAzureError(err: unknown): AzureErrorKind {
  const f = errorFacts(err);
  if (f.name === 'AbortError' && f.status === undefined) return 'abort';
  // @azure/identity could not get a token (no identity here, or it was refused): not transient.
  if (f.status === undefined && IDENTITY_ERRORS.has(f.name)) return 'auth';
  if (f.status === undefined) {
    // No response: the request never got an answer (or the body stream broke). A retry may help.
    return 'transient';
  }
  const s = f.status;
  if (s === 404) {
    if (f.code === 'ContainerNotFound') return 'containerMissing';
    return 'notFound';
  }
  if (s === 409 && f.code === 'BlobAlreadyExists') return 'exists';
  if (s === 412 && (f.code === 'ConditionNotMet' || f.code === undefined)) return 'exists';
  if (s === 416) return 'range';
  if (s === 401 || s === 403) return 'auth';
  if (s === 408 || s === 429 || s >= 500) return 'transient';
  if (f.code && TRANSIENT_4XX.has(f.code)) return 'transient';
  return 'permanent';
}

/** Replace every occurrence of a secret, and any URL query, in `text`. */
export function redactText(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) {
    if (s.length >= 4) out = out.split(s).join('***');
  }
  // A URL's query may be a SAS token the caller did not list.
  return out.replace(/(https?:\/\/[^\s?'"]*)\?[^\s'"]*/gi, '$1?***');
}

export interface ErrorContext {
  /** 'read', 'write', 'stat', 'list', 'delete'. */
  verb: string;
  /** The repository-relative key or list prefix. */
  key: string;
  /** Display location (no secrets). */
  location: string;
  container: string;
  account: string | undefined;
  /** Env var the credential came from, for the auth hint. */
  credentialSource: string;
  secrets: readonly string[];
  /** What the driver's own no-progress timeout is, for the stall message. */
  timeoutMs: number;
}

function describe(f: AzureErrorFacts, ctx: ErrorContext): string {
  if (f.status !== undefined) return `${f.status}${f.code ? ` ${f.code}` : ''}`;
  if (f.code === 'ETIMEDOUT' && f.message.includes('no progress')) return `no progress for ${ctx.timeoutMs / 1000} s (ETIMEDOUT)`;
  if (f.code && NETWORK_CODES.has(f.code)) return f.code === 'REQUEST_SEND_ERROR' ? `request failed: ${short(f.message, ctx)}` : f.code;
  if (f.name === 'AbortError') return 'connection closed before the response was complete';
  return short(f.message, ctx) || f.name;
}

function short(message: string, ctx: ErrorContext): string {
  const m = redactText(message, ctx.secrets).replace(/\s+/g, ' ').trim();
  return m.length > 200 ? `${m.slice(0, 200)}...` : m;
}

function hint(kind: AzureErrorKind, f: AzureErrorFacts, ctx: ErrorContext): string {
  if (kind === 'containerMissing') {
    return ` (container '${ctx.container}' does not exist in ${ctx.account ? `account '${ctx.account}'` : 'the account'}; create it first, e.g. az storage container create --name ${ctx.container})`;
  }
  if (kind === 'auth') {
    if (f.status === undefined && IDENTITY_ERRORS.has(f.name)) {
      return ' (no Microsoft Entra ID token from DefaultAzureCredential: no AZURE_STORAGE_CONNECTION_STRING, AZURE_STORAGE_KEY or AZURE_STORAGE_SAS_TOKEN is set, so pgark needs a managed identity, a workload identity (AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_FEDERATED_TOKEN_FILE) or a service principal in the environment of this process)';
    }
    if (ctx.credentialSource === 'DefaultAzureCredential' && (f.status === 401 || f.status === 403)) {
      return ` (the Microsoft Entra ID identity from DefaultAzureCredential was refused: it needs the 'Storage Blob Data Contributor' role on the container or account)`;
    }
    if (f.code === 'AuthenticationFailed' || f.status === 401) {
      return ` (authentication failed: check the credential in ${ctx.credentialSource}; a SAS token may have expired, or the clock may be off)`;
    }
    if (f.code?.startsWith('Authorization') && f.code.endsWith('Mismatch')) {
      return ` (the credential in ${ctx.credentialSource} is not allowed to ${ctx.verb} here; a SAS token needs read, add, create, write, delete and list permissions on the container)`;
    }
    return ` (access denied: check the credential in ${ctx.credentialSource}: a wrong account key, an expired SAS token or one without read, add, create, write, delete and list permissions, or a clock that is off)`;
  }
  return '';
}

/**
 * Turn an SDK failure into the error the contract names. pgark errors pass through, and so does
 * an AbortError when the caller's signal fired (`callerAborted`); any other AbortError comes
 * from a dropped connection (the SDK's download stream reports one so) and is transient.
 * A 404 of the blob itself is NotFoundError for read and stat; a 409/412 of a conditional write
 * is AlreadyExistsError.
 */
export function azureError(err: unknown, ctx: ErrorContext, callerAborted: boolean): Error {
  if (err instanceof PgarkError) return err;
  let kind = classifyAzureError(err);
  if (kind === 'abort') {
    if (callerAborted) return err as Error;
    kind = 'transient';
  }
  if (kind === 'notFound' && (ctx.verb === 'read' || ctx.verb === 'stat')) return new NotFoundError(ctx.key);
  if (kind === 'exists' && ctx.verb === 'write') return new AlreadyExistsError(ctx.key);
  const f = errorFacts(err);
  const prep = ctx.verb === 'write' ? 'to' : ctx.verb === 'list' ? 'in' : 'from';
  const message = `unable to ${ctx.verb} '${ctx.key}' ${prep} ${ctx.location}: ${describe(f, ctx)}${hint(kind, f, ctx)}`;
  return new StorageError('azure', redactText(message, ctx.secrets), { transient: kind === 'transient' });
}
