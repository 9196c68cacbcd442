/**
 * The WAL audit trail: every push, fetch, mismatch and failure, kept in the repository as
 * one small object per pgark call (see layout.ts), read back by `pgark wal-log`.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { log } from '../common/log.js';
import type { Repository } from '../repo/repository.js';
import { auditKey, auditPrefix } from '../repo/layout.js';

export type AuditOp = 'push' | 'push-exists' | 'mismatch' | 'fetch' | 'missing' | 'error';

export interface AuditEvent {
  time: string;
  op: AuditOp;
  name: string;
  size?: number;
  storedSize?: number;
  sha256?: string;
  ms: number;
  host: string;
  pid: number;
  detail?: string;
}

export function auditEvent(op: AuditOp, name: string, startedAt: number, extra: Partial<AuditEvent> = {}): AuditEvent {
  return { time: new Date(startedAt).toISOString(), op, name, ms: Date.now() - startedAt, host: hostname(), pid: process.pid, ...extra };
}

/** Store events; failures are logged, never fatal (the WAL itself is already safe). */
export async function writeAudit(repo: Repository, events: AuditEvent[]): Promise<void> {
  if (events.length === 0) return;
  const key = auditKey(repo.stanza, new Date(), process.pid, randomBytes(4).toString('hex'));
  try {
    await repo.putJson(key, { events });
  } catch (err) {
    log.warn(`unable to write audit trail '${key}': ${(err as Error).message}`);
  }
}

function dayOf(d: Date): string {
  return d.toISOString().slice(0, 10);
}

/** Events since `since` (inclusive), oldest first. Reads one listing per day in range. */
export async function readAudit(repo: Repository, since: Date, until: Date = new Date()): Promise<AuditEvent[]> {
  const keys: string[] = [];
  for (let d = new Date(Date.UTC(since.getUTCFullYear(), since.getUTCMonth(), since.getUTCDate())); d <= until; d = new Date(d.getTime() + 86_400_000)) {
    for await (const o of repo.list(auditPrefix(repo.stanza, dayOf(d)))) keys.push(o.path);
  }
  keys.sort();
  const events: AuditEvent[] = [];
  for (const key of keys) {
    const doc = JSON.parse(await repo.getJson(key)) as { events?: AuditEvent[] };
    for (const e of doc.events ?? []) if (new Date(e.time) >= since) events.push(e);
  }
  return events.sort((a, b) => a.time.localeCompare(b.time));
}
