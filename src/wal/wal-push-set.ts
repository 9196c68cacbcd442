/**
 * wal-push with more than one repository (repo2, repo3): the file is stored in every required
 * repository, in parallel, and success is reported only when it is durable in each (any failure
 * fails the call: PostgreSQL keeps the file and calls again; what was stored already is found
 * identical then). An async repository that cannot take it gets a backlog record in the first
 * repository (wal-backlog.ts) before success is reported, and is filled behind by later calls
 * that reach it (and by `pgark copy --wal`). Push records and look-ahead workers are not used:
 * a push record says a segment is in one repository only.
 */
import { join, resolve } from 'node:path';
import { ArchiveMismatchError } from '../common/errors.js';
import { log } from '../common/log.js';
import type { RepoSet } from '../repo/repo-set.js';
import type { Repository } from '../repo/repository.js';
import { auditEvent, writeAudit, type AuditEvent } from './audit.js';
import { inspectLocalWal, type LocalWalFile } from './inspect-local.js';
import { pushWalFile, type PushResult } from './push-file.js';
import { assertWalFileName } from './segment-name.js';
import { walDirOf } from './spool.js';
import { fillBacklog, recordBacklog } from './wal-backlog.js';
import { stanzaFor, type WalPushReport, type WalPushSettings } from './wal-push.js';

/** How many backlog files one call fills per async repository it reached. */
export const BACKLOG_FILL_PER_CALL = 16;

async function pushTo(repo: Repository, settings: WalPushSettings, file: LocalWalFile, walDir: string): Promise<PushResult> {
  const meta = await stanzaFor(repo, settings, file, walDir);
  return pushWalFile(repo, file, { codec: settings.codecExplicit ? settings.codec : meta.codec, level: settings.compressLevel });
}

export interface RepoPushOutcome {
  repo: string;
  status: 'stored' | 'exists' | 'backlog';
}

export async function walPushToSet(set: RepoSet, settings: WalPushSettings, pathArg: string): Promise<WalPushReport & { repos: RepoPushOutcome[] }> {
  const started = Date.now();
  const path = resolve(pathArg);
  const name = path.slice(path.lastIndexOf('/') + 1);
  const wal = assertWalFileName(name);
  const walDir = walDirOf(path);
  const file = await inspectLocalWal(path, wal, name);
  const first = set.first;
  const events: AuditEvent[] = [];
  const outcomes: RepoPushOutcome[] = [];
  try {
    const required = set.required;
    const results = await Promise.allSettled(required.map((m) => pushTo(m.repo!, settings, file, walDir)));
    const failed = results.findIndex((r) => r.status === 'rejected');
    if (failed >= 0) {
      for (const [i, r] of results.entries()) {
        if (r.status === 'rejected') log.error(`${required[i]!.name}: unable to archive '${name}': ${(r.reason as Error).message}`);
      }
      const err = (results[failed] as PromiseRejectedResult).reason as Error;
      throw Object.assign(err, { message: `${required[failed]!.name}: ${err.message}; not reported as archived (it must be durable in every required repository)` });
    }
    for (const [i, r] of results.entries()) {
      const res = (r as PromiseFulfilledResult<PushResult>).value;
      if (i === 0) events.push(res.event);
      outcomes.push({ repo: required[i]!.name, status: res.status });
    }
    const reached: Array<{ name: string; repo: Repository }> = [];
    for (const m of set.async) {
      let reason: string;
      if (m.repo) {
        try {
          const res = await pushTo(m.repo, settings, file, walDir);
          outcomes.push({ repo: m.name, status: res.status });
          reached.push({ name: m.name, repo: m.repo });
          continue;
        } catch (err) {
          reason = (err as Error).message;
        }
      } else {
        reason = `unable to open: ${(m.openError as Error).message}`;
      }
      // Before success is reported: a backlog that cannot be recorded fails the call.
      await recordBacklog(first, m.name, name, reason);
      log.warn(`${m.name} (async): '${name}' not stored there now (${reason}); recorded in its backlog`);
      outcomes.push({ repo: m.name, status: 'backlog' });
    }
    const workDir = join(walDir, '.pgark', 'backlog');
    for (const r of reached) await fillBacklog(first, r.repo, r.name, workDir, BACKLOG_FILL_PER_CALL);
    const status = outcomes[0]!.status === 'exists' ? 'exists' : 'stored';
    log.info(`pushed '${name}' to ${outcomes.map((o) => `${o.repo} (${o.status})`).join(', ')} in ${Date.now() - started} ms`);
    return { name, status, queuedAhead: [], repos: outcomes };
  } catch (err) {
    events.unshift(auditEvent(err instanceof ArchiveMismatchError ? 'mismatch' : 'error', name, started, { detail: (err as Error).message }));
    throw err;
  } finally {
    await writeAudit(first, events).catch((e: unknown) => log.warn(`unable to write the audit record: ${(e as Error).message}`));
  }
}
