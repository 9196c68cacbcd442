/** HTTP byte ranges for ranged gets (pure, no SDK). */

/**
 * The Range header for `offset`/`length`, or undefined for the whole object (a whole-object
 * GET sends no Range: some stores answer `bytes=0-` on an empty object badly).
 */
export function rangeHeader(offset: number, length: number | undefined): string | undefined {
  if (offset === 0 && length === undefined) return undefined;
  return `bytes=${offset}-${length !== undefined ? offset + length - 1 : ''}`;
}

/**
 * How many leading bytes of a ranged response to drop: `offset` when the store ignored Range
 * and sent the whole object (200), else 0 when the range it sent (Content-Range) starts at
 * `offset`, the difference when it starts before, and -1 when it starts after `offset`.
 */
export function rangeSkip(status: number | undefined, contentRange: string | undefined, offset: number): number {
  if (status === 200) return offset;
  if (contentRange === undefined || contentRange === '') return 0;
  const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(contentRange.trim());
  if (!m) return -1;
  const start = Number(m[1]);
  return start <= offset ? offset - start : -1;
}
