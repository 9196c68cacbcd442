import { randomBytes } from 'node:crypto';
import { readdirSync, unlinkSync } from 'node:fs';
import { readdir, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { isProcessAlive } from '../../src/common/process.js';
import { isTempName, TEMP_MARKER, tempStem } from '../temp-names.js';

export { isTempName, TEMP_MARKER };

/** `<basename>.pgark-tmp-<pid>-<hex>` next to the final file, so rename/link never cross filesystems. */
export function tempPathFor(finalPath: string): string {
  return join(dirname(finalPath), `${tempStem(finalPath)}${process.pid}-${randomBytes(8).toString('hex')}`);
}

/** A temp name whose writer process no longer exists. */
export function isStaleTempName(name: string): boolean {
  const i = name.lastIndexOf(TEMP_MARKER);
  if (i < 0) return false;
  const m = /^(\d+)-[0-9a-f]+$/.exec(name.slice(i + TEMP_MARKER.length));
  return !!m?.[1] && Number(m[1]) > 0 && !isProcessAlive(Number(m[1]));
}

/** Of the names in a directory, the temp siblings of `finalPath` whose writer process no longer exists. */
function staleTempsOf(finalPath: string, names: readonly string[]): string[] {
  const stem = tempStem(finalPath);
  return names.filter((name) => {
    if (!name.startsWith(stem)) return false;
    const match = /^(\d+)-[0-9a-f]+$/.exec(name.slice(stem.length));
    const pid = Number(match?.[1] ?? 0);
    return pid > 0 && !isProcessAlive(pid);
  });
}

/**
 * Remove temp siblings of `finalPath` left by processes that no longer exist (kill -9, power
 * loss). Best effort: any failure is ignored, the next put of the same key will retry.
 */
export async function removeStaleTemps(finalPath: string): Promise<void> {
  const dir = dirname(finalPath);
  const names = await readdir(dir).catch(() => [] as string[]);
  for (const name of staleTempsOf(finalPath, names)) await unlink(join(dir, name)).catch(() => {});
}

/** removeStaleTemps with synchronous calls, for the small-put path. */
export function removeStaleTempsSync(finalPath: string): void {
  const dir = dirname(finalPath);
  let names: string[] = [];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of staleTempsOf(finalPath, names)) {
    try {
      unlinkSync(join(dir, name));
    } catch {
      // best effort, as removeStaleTemps
    }
  }
}
