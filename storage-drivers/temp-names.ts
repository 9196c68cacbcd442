/**
 * The names of in-progress puts, shared by the drivers that write a temp file and rename it (pure):
 * `<basename>.pgark-tmp-<pid>-<hex>` (fs/temp.ts; ssh/temp.ts with pid 0). One shape, so that a
 * repository copied with rsync between an SSH server and a local disk never lists another
 * driver's temp files.
 */
import { basename } from 'node:path';

export const TEMP_MARKER = '.pgark-tmp-';

/**
 * `<basename>.pgark-tmp-`; long basenames are truncated so that the temp name stays within
 * NAME_MAX (255) even for a final name close to the limit.
 */
export function tempStem(finalPath: string): string {
  return basename(finalPath).slice(0, 200) + TEMP_MARKER;
}

export function isTempName(name: string): boolean {
  return name.includes(TEMP_MARKER);
}
