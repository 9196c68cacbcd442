/**
 * Mapping of SFTP status codes and SSH connection failures to pgark errors (pure).
 */
import { causeText, PgarkError, StorageError } from '../../src/common/errors.js';
import { TRANSIENT_NETWORK_CODES } from '../network-errors.js';

/** SFTP v3 status codes (draft-ietf-secsh-filexfer-02 section 7). */
export const SFTP_STATUS = {
  OK: 0,
  EOF: 1,
  NO_SUCH_FILE: 2,
  PERMISSION_DENIED: 3,
  FAILURE: 4,
  BAD_MESSAGE: 5,
  NO_CONNECTION: 6,
  CONNECTION_LOST: 7,
  OP_UNSUPPORTED: 8,
} as const;

const STATUS_TEXT: Record<number, string> = {
  1: 'end of file',
  2: 'no such file',
  3: 'permission denied',
  4: 'failure',
  5: 'bad message',
  6: 'no connection',
  7: 'connection lost',
  8: 'operation unsupported',
};

/**
 * The SSH connection failed or stalled while a request was outstanding. Transient: the next
 * operation opens a new connection.
 */
export class ConnectionLostError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ConnectionLostError';
  }
}

/** The server does not implement an SFTP extension (a fallback applies). */
export class UnsupportedExtensionError extends Error {
  constructor(readonly extension: string) {
    super(`the SFTP server does not support ${extension}`);
    this.name = 'UnsupportedExtensionError';
  }
}

/** The SFTP status code of an error from an SFTP request, if it is one. */
export function sftpStatus(err: unknown): number | undefined {
  if (!(err instanceof Error) || (err as { level?: unknown }).level !== undefined) return undefined;
  const code = (err as { code?: unknown }).code;
  return typeof code === 'number' && code >= 1 && code <= 8 ? code : undefined;
}

export function isNoSuchFile(err: unknown): boolean {
  return sftpStatus(err) === SFTP_STATUS.NO_SUCH_FILE;
}

export function isFailure(err: unknown): boolean {
  return sftpStatus(err) === SFTP_STATUS.FAILURE;
}

export function isAbortError(err: unknown): boolean {
  return err instanceof Error && (err.name === 'AbortError' || (err as NodeJS.ErrnoException).code === 'ABORT_ERR');
}

/** Short text of a failure: SFTP statuses by name (the server's text adds nothing), else the message. */
export function failureText(err: unknown): string {
  const status = sftpStatus(err);
  if (status !== undefined) {
    const text = STATUS_TEXT[status] ?? `status ${status}`;
    const msg = err instanceof Error ? err.message : '';
    return msg && msg.toLowerCase() !== text && !/^(failure|no such file|permission denied)$/i.test(msg) ? `${text} (${msg})` : text;
  }
  return causeText(err);
}

/** Whether a retry of the same request may succeed. */
export function isTransientFailure(err: unknown): boolean {
  if (err instanceof PgarkError) return err.transient;
  if (err instanceof ConnectionLostError) return true;
  const status = sftpStatus(err);
  if (status !== undefined) return status === SFTP_STATUS.NO_CONNECTION || status === SFTP_STATUS.CONNECTION_LOST;
  // ssh2 fails outstanding requests with this when the connection closes.
  return err instanceof Error && /no response from server|not connected|connection lost|ECONNRESET|EPIPE|ETIMEDOUT/i.test(err.message);
}

/**
 * Wrap a failure of one operation: `unable to <verb> '<key>' on <location>: <cause>`. pgark
 * errors and aborts pass through unchanged.
 */
export function sshError(verb: string, key: string, location: string, err: unknown): Error {
  if (err instanceof PgarkError || isAbortError(err)) return err as Error;
  const what = key === '' ? location : `'${key}' on ${location}`;
  return new StorageError('ssh', `unable to ${verb} ${what}: ${failureText(err)}`, { cause: err, transient: isTransientFailure(err) });
}

/**
 * Classify a failure to establish the connection (the host key and authentication cases are
 * decided by the caller, which knows what it tried).
 */
export function connectFailure(err: unknown): { text: string; transient: boolean } {
  if (!(err instanceof Error)) return { text: String(err), transient: true };
  const level = (err as { level?: unknown }).level;
  const code = (err as NodeJS.ErrnoException).code;
  if (typeof code === 'string') return { text: causeText(err), transient: TRANSIENT_NETWORK_CODES.has(code) };
  if (level === 'client-timeout') return { text: 'timed out during the SSH handshake', transient: true };
  if (/Connection lost before handshake/i.test(err.message)) return { text: 'connection closed by the server before the SSH handshake', transient: true };
  if (level === 'handshake') return { text: `SSH handshake failed: ${err.message}`, transient: false };
  return { text: err.message, transient: true };
}
