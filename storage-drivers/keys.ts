import { InvalidInputError } from '../src/common/errors.js';

/** Validate a repository-relative key (see types.ts) and return it unchanged. */
export function checkKey(path: string): string {
  if (path.length === 0 || path.length > 1024) throw new InvalidInputError(`invalid storage key '${path}': empty or too long`);
  if (path.startsWith('/') || path.endsWith('/')) throw new InvalidInputError(`invalid storage key '${path}': leading or trailing '/'`);
  if (path.includes('\\') || path.includes('\0')) throw new InvalidInputError(`invalid storage key '${path}': forbidden character`);
  for (const seg of path.split('/')) {
    if (seg === '' || seg === '.' || seg === '..') throw new InvalidInputError(`invalid storage key '${path}': empty, '.' or '..' segment`);
  }
  return path;
}

/** Validate a list prefix: like a key, but may be empty or end with '/'. */
export function checkPrefix(prefix: string): string {
  if (prefix === '') return prefix;
  checkKey(prefix.endsWith('/') ? prefix.slice(0, -1) : prefix);
  return prefix;
}

/**
 * Where a recursive listing of `prefix` starts on a store with real directories (fs, ssh): the
 * deepest directory the prefix names, and the start that names at that level must have (the
 * prefix is a plain string, so its last segment filters that one level only).
 */
export function listStart(prefix: string): { dirKey: string; namePrefix: string } {
  checkPrefix(prefix);
  const slash = prefix.lastIndexOf('/');
  return { dirKey: slash < 0 ? '' : prefix.slice(0, slash), namePrefix: prefix.slice(slash + 1) };
}

/** Validate a ranged get's offset and length (see GetOptions) and return them. */
export function checkRange(path: string, o: { offset?: number | undefined; length?: number | undefined }): { offset: number; length: number | undefined } {
  const offset = o.offset ?? 0;
  const length = o.length;
  if (!Number.isSafeInteger(offset) || offset < 0) throw new InvalidInputError(`invalid offset ${offset} for '${path}'`);
  if (length !== undefined && (!Number.isSafeInteger(length) || length < 0)) throw new InvalidInputError(`invalid length ${length} for '${path}'`);
  return { offset, length };
}
