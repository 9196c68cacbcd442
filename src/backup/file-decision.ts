/**
 * What a backup did with one file, in words (pure): the `trace` log line of each file
 * (common/log.ts), e.g. `base/5/16384: 8.0 MiB, unchanged since 20261207-001500F: its copy is used`.
 */
import type { FileEntry, FilePart, ObjectRef } from '../catalog/manifest.js';

function where(ref: ObjectRef | undefined, backupId: string): string {
  if (!ref) return 'empty: nothing stored';
  return ref.backup === backupId ? `stored in object ${ref.n}` : `unchanged since ${ref.backup}: its copy is used`;
}

function part(p: FilePart, backupId: string): string {
  const range = `[${p.start}, ${p.start + p.size})`;
  if (p.delta) {
    const blocks = p.delta.blocks.reduce((n, [, count]) => n + count, 0);
    return `${range} block delta in object ${p.delta.n}: ${blocks} changed block(s) stored, the rest from the parent chain`;
  }
  return `${range} ${where(p.object, backupId)}`;
}

export function describeFileDecision(e: FileEntry, backupId: string): string {
  const head = `${e.path}: ${e.size} bytes`;
  const failures = e.checksumFailures?.length ? `; ${e.checksumFailures.length} block(s) failed their page checksum` : '';
  if (e.parts) return `${head} in ${e.parts.length} part(s): ${e.parts.map((p) => part(p, backupId)).join('; ')}${failures}`;
  if (e.delta) return `${head}, ${part({ start: 0, size: e.size, sha256: e.sha256, delta: e.delta }, backupId)}${failures}`;
  return `${head}, ${where(e.object, backupId)}${failures}`;
}
