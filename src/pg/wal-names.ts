/**
 * The shapes of the file names PostgreSQL writes into pg_wal and the WAL archive (pure): the one
 * place they are written. Shape only, uppercase hex digits of the right count; which values are
 * valid (timeline 0, the segment part's range) is wal/segment-name.ts's classifyWalFileName,
 * which builds on these. src/wal/fast-path.cjs (Node builtins only) and bin/pgark-wal-push (POSIX
 * shell) keep their own copy of the segment shape because they load no pgark module.
 */

/** The source of one 8-digit hex field (timeline, log, seg, a backup's offset). */
export const HEX8 = '[0-9A-F]{8}';
/** The source of a segment name (24 hex digits). */
export const SEGMENT_HEX = '[0-9A-F]{24}';
/** The source of a segment name, with the timeline, log and seg fields as groups 1-3. */
export const SEGMENT_FIELDS = `(${HEX8})(${HEX8})(${HEX8})`;

const SEGMENT = new RegExp(`^${SEGMENT_FIELDS}$`);
const SEGMENT_OR_PARTIAL = new RegExp(`^${SEGMENT_FIELDS}(\\.partial)?$`);
/** A segment, a partial segment or a backup history file: the segment name is group 1. */
const ARCHIVED_SEGMENT_FILE = new RegExp(`^(${SEGMENT_HEX})(\\.partial|\\.${HEX8}\\.backup)?$`);
const HISTORY = new RegExp(`^(${HEX8})\\.history$`);
const READY = new RegExp(`^(${SEGMENT_HEX})\\.ready$`);

/** 24 uppercase hex digits: a WAL segment file. */
export function isSegmentName(name: string): boolean {
  return SEGMENT.test(name);
}

/** A segment or a `.partial` segment (what is a whole segment's size when archived). */
export function isSegmentOrPartialName(name: string): boolean {
  return SEGMENT_OR_PARTIAL.test(name);
}

/** `<timeline>.history`. */
export function isHistoryName(name: string): boolean {
  return HISTORY.test(name);
}

/** The segment a segment, partial or backup history file name belongs to, else undefined. */
export function segmentOfArchivedName(name: string): string | undefined {
  return ARCHIVED_SEGMENT_FILE.exec(name)?.[1];
}

/** Any file name PostgreSQL archives: segment, partial, backup history or timeline history. */
export function isArchivedWalName(name: string): boolean {
  return ARCHIVED_SEGMENT_FILE.test(name) || HISTORY.test(name);
}

/** The segment of an archive_status `<segment>.ready` file, else undefined. */
export function segmentOfReadyFile(name: string): string | undefined {
  return READY.exec(name)?.[1];
}
