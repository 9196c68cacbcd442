/**
 * Issue 15 item 1: Repository is the only door to storage. Outside src/repo/ (and
 * storage-drivers/), no source reaches a repository's driver, opens a driver, or imports how a
 * repository is opened from cli/ (the backup and restore worker threads did).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '../../..');

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...sources(p));
    else if (e.name.endsWith('.ts')) out.push(p);
  }
  return out;
}

/** `file:line: text` of each line of src/ outside `except` that matches `re`. */
function offending(re: RegExp, except: (rel: string) => boolean): string[] {
  const hits: string[] = [];
  for (const abs of sources(join(root, 'src'))) {
    const rel = relative(root, abs);
    if (except(rel)) continue;
    readFileSync(abs, 'utf8').split('\n').forEach((line, i) => {
      if (re.test(line)) hits.push(`${rel}:${i + 1}: ${line.trim()}`);
    });
  }
  return hits;
}

describe('the door to storage', () => {
  it('no module outside src/repo/ touches a repository\'s driver', () => {
    expect(offending(/\.driver\b(?!Name)/, (rel) => rel.startsWith('src/repo/') || rel === 'src/common/errors.ts')).toEqual([]);
  });

  it('no module outside src/repo/ opens a driver or imports one', () => {
    expect(offending(/\bopenDriver\b|storage-drivers\/(?!types\.js|registry\.js)|storage-drivers\/registry\.js.*\b(openDriver|parseRepoUrl)\b/, (rel) => rel.startsWith('src/repo/'))).toEqual([]);
  });

  it('nothing outside src/cli/ imports from cli/', () => {
    expect(offending(/from '\.\.\/cli\/|import\('\.\.\/cli\//, (rel) => rel.startsWith('src/cli/'))).toEqual([]);
  });
});
