/**
 * One home per concept (issue 15 item 5): each of these is written in one module and imported
 * everywhere else. The scan is over source text, comments included, so a copy in any form fails.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

function filesUnder(dir: string): Array<{ path: string; text: string }> {
  const out: Array<{ path: string; text: string }> = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.(ts|js|cjs|mjs)$/.test(e.name)) out.push({ path: relative(ROOT, p).split(sep).join('/'), text: readFileSync(p, 'utf8') });
    }
  };
  walk(join(ROOT, dir));
  return out;
}

const source = [...filesUnder('src'), ...filesUnder('storage-drivers')];
const tests = filesUnder('test');

const where = (files: Array<{ path: string; text: string }>, re: RegExp) => files.filter((f) => re.test(f.text)).map((f) => f.path).sort();

describe('one home per concept', () => {
  it.each<[string, RegExp, string[]]>([
    // The shape of a WAL segment name. ops/check.ts also sends one to PostgreSQL, as SQL text
    // for pg_ls_archive_statusdir(), which no TypeScript regular expression can stand in for.
    ['the WAL file-name regex', /\[0-9A-F\]\{(24|8)\}/, ['src/ops/check.ts', 'src/pg/wal-names.ts']],
    ['the transient network error codes', /new Set\(\[[^\]]*'ECONNRESET'/, ['storage-drivers/network-errors.ts']],
    ['reading receiver status objects', /receiverStatusPrefix\(/, ['src/repo/layout.ts', 'src/wal/receiver-statuses.ts']],
    ['the receiver staleness bound', /RECEIVER_(FRESH|STALE)_MS\s*=/, ['src/wal/receiver-statuses.ts']],
  ])('%s', (_what, re, expected) => {
    expect(where(source, re)).toEqual(expected);
  });

  it.each<[string, RegExp, string]>([
    ['waitFor', /(function|const)\s+waitFor\b/, 'test/helpers/wait.ts'],
    ['connEnv', /(function|const)\s+connEnv\b/, 'test/helpers/pg-cluster.ts'],
  ])('tests define %s once', (_name, re, home) => {
    expect(where(tests, re)).toEqual([home]);
  });
});
