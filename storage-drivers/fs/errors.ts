import { causeText, PgarkError, StorageError } from '../../src/common/errors.js';

/** errno codes where retrying the same call may succeed (resource pressure, not bad state). */
const TRANSIENT_CODES = new Set(['EAGAIN', 'EBUSY', 'EMFILE', 'ENFILE', 'EINTR', 'ETIMEDOUT']);

export function errnoOf(err: unknown): string | undefined {
  return err instanceof Error ? (err as NodeJS.ErrnoException).code : undefined;
}

export function isAbortError(err: unknown): boolean {
  return err instanceof Error && (err.name === 'AbortError' || errnoOf(err) === 'ABORT_ERR');
}

/**
 * Wrap a low-level failure as StorageError. pgark errors and aborts pass through unchanged so
 * callers can tell cancellation from failure.
 */
export function fsError(verb: string, key: string, err: unknown): Error {
  if (err instanceof PgarkError || isAbortError(err)) return err as Error;
  const code = errnoOf(err);
  return new StorageError('fs', `unable to ${verb} '${key}': ${causeText(err)}`, {
    cause: err,
    transient: code !== undefined && TRANSIENT_CODES.has(code),
  });
}
