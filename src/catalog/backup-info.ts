/**
 * The catalog entry of a backup (pure types and validation). One small JSON object per backup
 * at `<stanza>/catalog/<id>.json`, written last: it is the commit point. A backup without one
 * is not listed, not restorable, and is removed by the next backup run.
 */
import { IntegrityError } from '../common/errors.js';
import type { CodecName } from '../io/codec.js';
import { isSegmentName } from '../pg/wal-names.js';

export const BACKUP_INFO_FORMAT = 1;

export type BackupType = 'full' | 'incr';

export interface BackupPoint {
  /** ISO-8601 UTC time. */
  time: string;
  /** LSN as PostgreSQL prints it, e.g. '0/3000028'. */
  lsn: string;
  timeline: number;
  /** WAL segment file holding `lsn` (24 hex digits). */
  walFile: string;
}

export interface BackupInfo {
  format: number;
  id: string;
  type: BackupType;
  /** Parent backup id (incremental only). */
  parent?: string;
  /** Ids from the full backup at the root of the chain down to this backup (inclusive). */
  chain: string[];
  label?: string;
  start: BackupPoint;
  stop: BackupPoint;
  /** First and last WAL segment needed to make the backup consistent. */
  walRange: { first: string; last: string };
  /** WAL segments start..stop were stored with the backup (`--store-wal`). */
  walStored: boolean;
  pgVersion: number;
  systemIdentifier: string;
  dataChecksums: boolean;
  fromStandby: boolean;
  /** Original bytes read, bytes stored (after compression, this backup only), file and object counts. */
  size: { original: number; stored: number; files: number; objects: number; changedBlocks?: number; reusedBlocks?: number; unchangedFiles?: number; unchangedBytes?: number };
  durationMs: number;
  /** Number of pages whose checksum did not verify; the manifest names them. */
  checksumFailures: number;
  codec: CodecName;
  manifest: { key: string; sha256: string; size: number };
  pgarkVersion: string;
  host: string;
}

function lsnOk(s: unknown): boolean {
  return typeof s === 'string' && /^[0-9A-F]{1,8}\/[0-9A-F]{1,8}$/i.test(s);
}

function pointOk(p: unknown): boolean {
  const x = p as Partial<BackupPoint>;
  return typeof x === 'object' && x !== null && typeof x.time === 'string' && !Number.isNaN(Date.parse(x.time)) &&
    lsnOk(x.lsn) && typeof x.timeline === 'number' && typeof x.walFile === 'string' && isSegmentName(x.walFile);
}

export function parseBackupInfo(json: string, where: string): BackupInfo {
  let v: unknown;
  try {
    v = JSON.parse(json);
  } catch (err) {
    throw new IntegrityError(`unable to read '${where}': invalid JSON (${(err as Error).message})`);
  }
  const b = v as Partial<BackupInfo>;
  const ok = typeof b === 'object' && b !== null && typeof b.id === 'string' && (b.type === 'full' || b.type === 'incr') &&
    Array.isArray(b.chain) && pointOk(b.start) && pointOk(b.stop) && typeof b.manifest?.key === 'string' &&
    typeof b.manifest.sha256 === 'string' && (b.type === 'full' || typeof b.parent === 'string');
  if (!ok) throw new IntegrityError(`unable to read '${where}': backup catalog entry is missing fields`);
  if (b.format !== BACKUP_INFO_FORMAT) {
    throw new IntegrityError(`unable to read '${where}': backup format ${String(b.format)} is not supported by this pgark (supports ${BACKUP_INFO_FORMAT})`);
  }
  return b as BackupInfo;
}
