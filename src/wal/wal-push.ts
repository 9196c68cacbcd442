/**
 * `pgark wal-push <path>`: archive_command. Pushes the requested file and, in parallel, up to
 * `push-ahead` further segments PostgreSQL has marked ready, recording those so its later
 * calls for them return at once. Success is reported only for durably stored files.
 */
import { join, resolve } from 'node:path';
import { log, PhaseTimer } from '../common/log.js';
import type { Settings } from '../config/resolve.js';
import type { Repository } from '../repo/repository.js';
import type { ClusterIdentity, StanzaMeta } from '../repo/stanza-meta.js';
import { readSystemIdentifier } from '../pg/control-file.js';
import { readdir } from 'node:fs/promises';
import { auditEvent, writeAudit, type AuditEvent } from './audit.js';
import { inspectLocalWal, type LocalWalFile } from './inspect-local.js';
import { pushWalFile, type PushResult } from './push-file.js';
import { assertWalFileName } from './segment-name.js';
import { PushRecords, walDirOf } from './spool.js';
import { pushTarget, takePushRecord } from './fast-path.js';
import { requireRepo } from '../config/resolve.js';
import { lockHeld } from '../common/pid-lock.js';
import { agentPidPath } from './agent-paths.js';
import { queuePushAhead, type QueuePushAheadSettings } from './push-ahead.js';
import { ArchiveMismatchError, InvalidInputError } from '../common/errors.js';
import { isSegmentName } from '../pg/wal-names.js';

export interface WalPushReport {
  name: string;
  status: 'stored' | 'exists' | 'pushed-ahead';
  /** Segments handed to a look-ahead worker. */
  queuedAhead: string[];
}

/**
 * The stanza for this cluster, created on first use from the segment's header. A history or
 * backup file can come first (a promoted standby archives its .history before any segment):
 * then the cluster is identified from a segment in pg_wal and checked against pg_control.
 */
export async function stanzaFor(repo: Repository, settings: Pick<Settings, 'codec' | 'pgdata'>, file: LocalWalFile, walDir: string): Promise<StanzaMeta> {
  const what = `WAL file '${file.name}'`;
  if (file.identity) return repo.ensureStanza(file.identity, settings.codec, what);
  const identity = await identityFromWalDir(walDir);
  const pgdata = settings.pgdata ?? resolve(walDir, '..');
  const controlId = await readSystemIdentifier(pgdata).catch(() => undefined);
  if (controlId !== undefined && controlId !== identity.systemIdentifier) {
    throw new InvalidInputError(`unable to push '${file.name}': pg_control of '${pgdata}' (system identifier ${controlId}) does not match the segments in '${walDir}'`);
  }
  return repo.ensureStanza(identity, settings.codec, what);
}

async function identityFromWalDir(walDir: string): Promise<ClusterIdentity> {
  const names = (await readdir(walDir)).filter((n) => isSegmentName(n)).sort().reverse();
  for (const n of names) {
    try {
      const f = await inspectLocalWal(join(walDir, n), assertWalFileName(n), n);
      if (f.identity) return f.identity;
    } catch {
      // a recycled or partly written segment: try an older one
    }
  }
  throw new InvalidInputError(`unable to identify the cluster: no readable WAL segment in '${walDir}'`);
}

/** What wal-push reads: the push target, pgdata (to identify a cluster from pg_wal), the codec, and the look-ahead. */
export type WalPushSettings = Pick<Settings, 'repo' | 'stanza' | 'pgdata' | 'codec' | 'codecExplicit' | 'compressLevel'> & QueuePushAheadSettings;

export async function walPush(repo: Repository, settings: WalPushSettings, pathArg: string): Promise<WalPushReport> {
  const started = Date.now();
  const phases = new PhaseTimer(`wal-push ${pathArg.slice(pathArg.lastIndexOf('/') + 1)}`);
  const path = resolve(pathArg);
  const name = path.slice(path.lastIndexOf('/') + 1);
  const wal = assertWalFileName(name);
  const walDir = walDirOf(path);
  const records = new PushRecords(walDir);

  if (wal.kind === 'segment' && (await takePushRecord(path, pushTarget(requireRepo(settings), settings.stanza)))) {
    log.info(`'${name}' was already pushed ahead`);
    phases.lap('push record', 'found: stored ahead by a worker and unchanged since');
    phases.done();
    return { name, status: 'pushed-ahead', queuedAhead: [] };
  }
  if (wal.kind === 'segment') log.trace(() => `wal-push: '${name}': no push record for it: pushing it now`);
  const file = await inspectLocalWal(path, wal, name);
  phases.lap('read and check the local file', `${file.size} bytes`);

  const events: AuditEvent[] = [];
  try {
    const meta = await stanzaFor(repo, settings, file, walDir);
    const codec = settings.codecExplicit ? settings.codec : meta.codec;
    phases.lap('stanza');
    const res: PushResult = await pushWalFile(repo, file, { codec, level: settings.compressLevel });
    events.push(res.event);
    phases.lap('store', `${res.status}, ${res.size} -> ${res.storedSize} bytes, ${codec}`);
    let queuedAhead: string[] = [];
    if (wal.kind === 'segment') {
      await records.pruneBefore(name);
      // An agent serving this pg_wal stores ahead already: a look-ahead worker would only
      // compete with it for the same segments.
      if (!(await lockHeld(agentPidPath(walDir)))) queuedAhead = await queuePushAhead(settings, walDir, name);
      else log.trace(() => `wal-push: no look-ahead: pgark agent serves ${walDir}`);
      for (const q of queuedAhead) log.trace(() => `wal-push: '${q}' is ready: queued for the look-ahead worker`);
      phases.lap('look-ahead', `${queuedAhead.length} segment(s) queued`);
    }
    log.info(`pushed '${name}' (${res.status}, ${res.size} -> ${res.storedSize} bytes) in ${Date.now() - started} ms; ${queuedAhead.length} queued ahead`);
    return { name, status: res.status, queuedAhead };
  } catch (err) {
    events.unshift(auditEvent(err instanceof ArchiveMismatchError ? 'mismatch' : 'error', name, started, { detail: (err as Error).message }));
    throw err;
  } finally {
    await writeAudit(repo, events);
    phases.lap('audit record');
    phases.done();
  }
}
