/**
 * A catalog entry for choice tests (restore-choose, restore-repo-choice): a full backup, or an
 * incremental on `parent`, that started ten minutes before `stopTime` and stopped at `stopLsn`.
 * `manifestSha`: one hex digit repeated, so that two repositories' copies of a backup can differ.
 */
import type { BackupInfo } from '../../src/catalog/backup-info.js';

export function backupInfo(id: string, stopTime: string, stopLsn: string, parent?: BackupInfo, manifestSha = '0'): BackupInfo {
  const b: BackupInfo = {
    format: 1,
    id,
    type: parent ? 'incr' : 'full',
    chain: parent ? [...parent.chain, id] : [id],
    start: { time: new Date(Date.parse(stopTime) - 600_000).toISOString(), lsn: '0/2000028', timeline: 1, walFile: '000000010000000000000002' },
    stop: { time: stopTime, lsn: stopLsn, timeline: 1, walFile: '000000010000000000000009' },
    walRange: { first: '000000010000000000000002', last: '000000010000000000000009' },
    walStored: false,
    pgVersion: 15,
    systemIdentifier: '7000000000000000001',
    dataChecksums: true,
    fromStandby: false,
    size: { original: 1, stored: 1, files: 1, objects: 1 },
    durationMs: 600_000,
    checksumFailures: 0,
    codec: 'zstd',
    manifest: { key: `main/backup/${id}/manifest`, sha256: manifestSha.repeat(64), size: 1 },
    pgarkVersion: '0.1.0',
    host: 'db1',
  };
  if (parent) b.parent = parent.id;
  return b;
}
