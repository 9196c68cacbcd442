/** Stanza metadata: binds a stanza to one cluster (pure validation and comparison). */
import { ClusterMismatchError, IntegrityError } from '../common/errors.js';
import { isCodecName, type CodecName } from '../io/codec.js';
import { SEGMENT_HEX } from '../pg/wal-names.js';

const STARTS_WITH_SEGMENT = new RegExp(`^${SEGMENT_HEX}`);

export const REPO_FORMAT_VERSION = 1;

export interface StanzaMeta {
  format: number;
  stanza: string;
  /** pg_control system identifier, a 64-bit integer as a decimal string. */
  systemIdentifier: string;
  pgVersion: number;
  walSegmentSize: number;
  codec: CodecName;
  createdAt: string;
  createdBy: string;
  /**
   * Where the current cluster's WAL begins (LSN 'X/Y'), set by `pgark stanza-upgrade`: WAL below
   * it belongs to the clusters in `history`. Absent when the stanza was never upgraded.
   */
  sinceLsn?: string;
  /** The clusters this stanza held before `pgark stanza-upgrade`, oldest first. */
  history?: PriorCluster[];
}

/** A cluster a stanza held before an upgrade (pg_upgrade gives the new cluster a new identity). */
export interface PriorCluster extends ClusterIdentity {
  /** Where its WAL began (absent for the stanza's first cluster). */
  sinceLsn?: string;
  /** When `stanza-upgrade` replaced it. */
  until: string;
}

export interface ClusterIdentity {
  systemIdentifier: string;
  pgVersion: number;
  walSegmentSize: number;
}

export function parseStanzaMeta(json: string, where: string): StanzaMeta {
  let v: unknown;
  try {
    v = JSON.parse(json);
  } catch (err) {
    throw new IntegrityError(`unable to read '${where}': invalid JSON (${(err as Error).message})`);
  }
  const m = v as Partial<StanzaMeta>;
  const ok = typeof m === 'object' && m !== null &&
    typeof m.format === 'number' && typeof m.stanza === 'string' &&
    typeof m.systemIdentifier === 'string' && /^\d{1,20}$/.test(m.systemIdentifier) &&
    typeof m.pgVersion === 'number' && typeof m.walSegmentSize === 'number' &&
    typeof m.codec === 'string' && isCodecName(m.codec);
  if (!ok) throw new IntegrityError(`unable to read '${where}': stanza metadata is missing fields`);
  const lsnOk = (x: unknown) => x === undefined || (typeof x === 'string' && /^[0-9A-F]{1,8}\/[0-9A-F]{1,8}$/i.test(x));
  const historyOk = m.history === undefined || (Array.isArray(m.history) && m.history.every((h) =>
    typeof h === 'object' && h !== null && typeof h.systemIdentifier === 'string' && /^\d{1,20}$/.test(h.systemIdentifier) &&
    typeof h.pgVersion === 'number' && typeof h.walSegmentSize === 'number' && typeof h.until === 'string' && lsnOk(h.sinceLsn)));
  if (!lsnOk(m.sinceLsn) || !historyOk) throw new IntegrityError(`unable to read '${where}': stanza metadata has a malformed upgrade history`);
  if (m.format !== REPO_FORMAT_VERSION) {
    throw new IntegrityError(`unable to read '${where}': repository format ${m.format} is not supported by this pgark (supports ${REPO_FORMAT_VERSION})`);
  }
  return m as StanzaMeta;
}

/** Throw ClusterMismatchError naming both clusters when `actual` is not the stanza's cluster. */
export function assertSameCluster(meta: StanzaMeta, actual: Partial<ClusterIdentity>, what: string): void {
  const diffs: string[] = [];
  if (actual.systemIdentifier !== undefined && actual.systemIdentifier !== meta.systemIdentifier) {
    diffs.push(`system identifier ${actual.systemIdentifier} (stanza has ${meta.systemIdentifier})`);
  }
  if (actual.pgVersion !== undefined && actual.pgVersion !== meta.pgVersion) {
    diffs.push(`PostgreSQL ${actual.pgVersion} (stanza has ${meta.pgVersion})`);
  }
  if (actual.walSegmentSize !== undefined && actual.walSegmentSize !== meta.walSegmentSize) {
    diffs.push(`wal_segment_size ${actual.walSegmentSize} (stanza has ${meta.walSegmentSize})`);
  }
  if (diffs.length) {
    const prior = actual.systemIdentifier !== undefined ? meta.history?.find((h) => h.systemIdentifier === actual.systemIdentifier) : undefined;
    const advice = prior
      ? `that is the cluster this stanza held before 'pgark stanza-upgrade' (until ${prior.until}): its backups and WAL stay readable, but it can no longer archive here`
      : `each cluster needs its own stanza; if this cluster replaced the stanza's after pg_upgrade, run 'pgark stanza-upgrade --stanza ${meta.stanza} --pgdata <the new data directory>' ` +
        '(the old backups and WAL stay restorable)';
    throw new ClusterMismatchError(`${what} does not belong to stanza '${meta.stanza}': ${diffs.join(', ')}; ${advice}`);
  }
}

/** Every cluster a stanza has held: the current one first, then `history` newest first. */
export function stanzaClusters(meta: StanzaMeta): Array<ClusterIdentity & { sinceLsn?: string; until?: string }> {
  const current = { systemIdentifier: meta.systemIdentifier, pgVersion: meta.pgVersion, walSegmentSize: meta.walSegmentSize, ...(meta.sinceLsn ? { sinceLsn: meta.sinceLsn } : {}) };
  return [current, ...[...(meta.history ?? [])].reverse()];
}

/** Byte positions where a later cluster's WAL begins (sinceLsn of each upgrade), ascending. */
export function upgradeBoundaries(meta: StanzaMeta): bigint[] {
  return stanzaClusters(meta).filter((c) => c.sinceLsn !== undefined).map((c) => lsnValue(c.sinceLsn!)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** The identity (current or prior) with this system identifier, or undefined. */
export function clusterById(meta: StanzaMeta, systemIdentifier: string): ClusterIdentity | undefined {
  return stanzaClusters(meta).find((c) => c.systemIdentifier === systemIdentifier);
}

export function lsnValue(lsn: string): bigint {
  const [hi, lo] = lsn.split('/');
  return (BigInt(`0x${hi}`) << 32n) | BigInt(`0x${lo}`);
}

/**
 * The cluster whose WAL a segment (or .partial) name belongs to: by its position, since
 * pg_upgrade starts the new cluster's WAL after the old one's (pg_resetwal -l), and
 * stanza-upgrade refuses an archive that already holds WAL at or after that point.
 */
export function clusterForWal(meta: StanzaMeta, name: string): ClusterIdentity {
  const all = stanzaClusters(meta);
  if (all.length === 1 || !STARTS_WITH_SEGMENT.test(name)) return all[0]!;
  for (const c of all) {
    if (c.sinceLsn === undefined) return c;
    const perLog = 0x100000000n / BigInt(c.walSegmentSize);
    const segno = BigInt(`0x${name.slice(8, 16)}`) * perLog + BigInt(`0x${name.slice(16, 24)}`);
    // The segment holding sinceLsn (the new cluster's first checkpoint) is the new cluster's.
    if ((segno + 1n) * BigInt(c.walSegmentSize) > lsnValue(c.sinceLsn)) return c;
  }
  return all[all.length - 1]!;
}
