/** Stanza metadata: binds a stanza to one cluster (pure validation and comparison). */
import { ClusterMismatchError, IntegrityError } from '../common/errors.js';
import { isCodecName, type CodecName } from '../io/codec.js';

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
    throw new ClusterMismatchError(
      `${what} does not belong to stanza '${meta.stanza}': ${diffs.join(', ')}; each cluster needs its own stanza`,
    );
  }
}
