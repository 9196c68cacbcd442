/**
 * The status objects receivers store under `<stanza>/receiver/<name>.json`, read back (by backup,
 * check and info), and the one rule for when such a status is stale. The receiver writes them
 * (receiver/receiver-status.ts has the full shape); this module needs only the fields below, so
 * that rooms below the receiver can read them.
 */
import { receiverStatusPrefix } from '../repo/layout.js';
import type { Repository } from '../repo/repository.js';

/** A receiver stores its status every 10 s; older than this, a running state is stale. */
export const RECEIVER_FRESH_MS = 60_000;

/** The states of a receiver that should keep storing its status. */
const RUNNING_STATES: ReadonlySet<string> = new Set(['streaming', 'connecting', 'retrying']);

export interface StoredReceiverStatus {
  name: string;
  state: string;
  updatedAt: string;
}

/**
 * Pure: the status says the receiver runs (streaming, connecting, retrying) but was stored more
 * than RECEIVER_FRESH_MS ago, or at no readable time: it is not running, or cannot store.
 */
export function isStaleReceiverStatus(s: StoredReceiverStatus, nowMs: number): boolean {
  if (!RUNNING_STATES.has(s.state)) return false;
  const updated = Date.parse(s.updatedAt);
  return !(Number.isFinite(updated) && nowMs - updated <= RECEIVER_FRESH_MS);
}

/** Pure: the status says the receiver is streaming, and is fresh. */
export function isLiveStreaming(s: StoredReceiverStatus, nowMs: number): boolean {
  return s.state === 'streaming' && !isStaleReceiverStatus(s, nowMs);
}

/**
 * Every receiver status object of the stanza, parsed. An object that cannot be read or parsed is
 * passed to `unreadable` (its key, the error) and left out; a failing listing throws.
 */
export async function readReceiverStatuses<T extends StoredReceiverStatus = StoredReceiverStatus>(
  repo: Repository,
  unreadable: (key: string, err: unknown) => void = () => {},
): Promise<T[]> {
  const out: T[] = [];
  for await (const o of repo.list(receiverStatusPrefix(repo.stanza))) {
    if (!o.path.endsWith('.json')) continue;
    try {
      out.push(JSON.parse(await repo.getJson(o.path)) as T);
    } catch (err) {
      unreadable(o.path, err);
    }
  }
  return out;
}
