/**
 * Whether an error is a store's raw network error (socket, DNS, premature close): the repository
 * cannot be reached now, and restore reads another copy. Its own small module so that restore's
 * worker threads can ask without loading the multi-repository set (repo-set.ts) and the config
 * resolution it needs (test/integration/command-modules.test.ts).
 */
import { TRANSIENT_NETWORK_CODES } from '../../storage-drivers/network-errors.js';

/** A store's raw network error (socket, DNS, premature close): the repository cannot be reached now (restore reads another). */
export function isNetworkError(err: unknown): boolean {
  const code = err instanceof Error ? (err as NodeJS.ErrnoException).code : undefined;
  return typeof code === 'string' && TRANSIENT_NETWORK_CODES.has(code);
}
