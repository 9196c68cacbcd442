/**
 * Typed errors with stable exit codes. Messages follow the form
 * `unable to <verb> '<path>': <cause>` where a path is involved.
 * Secrets never appear in messages: callers pass redacted locations.
 */

export const ExitCode = {
  OK: 0,
  /** Generic failure; for wal-fetch it means "not in the archive". */
  FAILURE: 1,
  USAGE: 2,
  ARCHIVE_MISMATCH: 3,
  CLUSTER_MISMATCH: 4,
  INVALID_INPUT: 5,
  LOCKED: 6,
  VERIFY_FAILED: 7,
  NOT_FOUND: 8,
  /** The location holds no pgark repository (no marker): a mistyped path, an unmounted mount point. */
  NOT_A_REPOSITORY: 9,
  STORAGE: 10,
  INTEGRITY: 11,
  PROTOCOL: 12,
  INTERNAL: 13,
  /** An operating-system call on this host failed (a local file: EACCES, ENOSPC, EIO, ...). */
  SYSTEM: 14,
  /** An encrypted repository and no key, or the wrong key (the message names the key id needed). */
  KEY: 15,
} as const;
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

export class PgarkError extends Error {
  readonly exitCode: number = ExitCode.FAILURE;
  /** True when retrying the same operation may succeed (network, throttling, timeouts). */
  readonly transient: boolean = false;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

export class ConfigError extends PgarkError {
  override readonly exitCode = ExitCode.USAGE;
}

export class InvalidInputError extends PgarkError {
  override readonly exitCode = ExitCode.INVALID_INPUT;
}

export class NotFoundError extends PgarkError {
  override readonly exitCode = ExitCode.NOT_FOUND;
  constructor(readonly path: string, message?: string) {
    super(message ?? `unable to find '${path}': no such object`);
  }
}

/**
 * The repository location has no marker (see src/repo/repo-marker.ts): nothing was written.
 * Not a NotFoundError, so wal-fetch never reads it as "not archived".
 */
export class NotARepositoryError extends PgarkError {
  override readonly exitCode = ExitCode.NOT_A_REPOSITORY;
}

export class ArchiveMismatchError extends PgarkError {
  override readonly exitCode = ExitCode.ARCHIVE_MISMATCH;
}

export class ClusterMismatchError extends PgarkError {
  override readonly exitCode = ExitCode.CLUSTER_MISMATCH;
}

export class LockedError extends PgarkError {
  override readonly exitCode = ExitCode.LOCKED;
}

export class VerifyFailedError extends PgarkError {
  override readonly exitCode = ExitCode.VERIFY_FAILED;
}

/** Stored bytes do not match their checksum, or an object is malformed. */
export class IntegrityError extends PgarkError {
  override readonly exitCode = ExitCode.INTEGRITY;
}

/** No key-encryption key configured for an encrypted stanza, or not the one its keyring needs. */
export class KeyError extends PgarkError {
  override readonly exitCode = ExitCode.KEY;
}

export class ProtocolError extends PgarkError {
  override readonly exitCode = ExitCode.PROTOCOL;
}

/** A storage driver failed. `transient` says whether a retry may help. */
export class StorageError extends PgarkError {
  override readonly exitCode = ExitCode.STORAGE;
  override readonly transient: boolean;
  readonly driver: string;
  constructor(driver: string, message: string, options?: { cause?: unknown; transient?: boolean }) {
    super(message, options);
    this.driver = driver;
    this.transient = options?.transient ?? true;
  }
}

/** Best-effort short text of an unknown thrown value, without stack. */
export function causeText(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return code && !err.message.includes(code) ? `${code}: ${err.message}` : err.message;
  }
  return String(err);
}

export function isNodeError(err: unknown, code: string): boolean {
  return err instanceof Error && (err as NodeJS.ErrnoException).code === code;
}

/**
 * A Node.js system error: an operating-system call that failed (`code` EACCES, ENOSPC, EIO, ...
 * and the `syscall` that raised it). Such errors come from the host (a local file that cannot be
 * read, a full local disk), not from a bug in pgark; their message names the call and the path.
 */
export function isSystemError(err: unknown): err is NodeJS.ErrnoException {
  if (!(err instanceof Error)) return false;
  const e = err as NodeJS.ErrnoException;
  return typeof e.code === 'string' && /^E[A-Z0-9]+$/.test(e.code) && typeof e.syscall === 'string';
}

/** The exit code of an error: its own for pgark's errors, SYSTEM for a system error, else INTERNAL (a bug). */
export function exitCodeOf(err: unknown): number {
  if (err instanceof PgarkError) return err.exitCode;
  if (isSystemError(err)) return ExitCode.SYSTEM;
  return ExitCode.INTERNAL;
}

export class AlreadyExistsError extends PgarkError {
  override readonly exitCode = ExitCode.ARCHIVE_MISMATCH;
  constructor(readonly path: string) {
    super(`unable to create '${path}': object already exists`);
  }
}
