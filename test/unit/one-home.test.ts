/**
 * One home per concept (issue 15 item 5): each of these is written in one module and imported
 * everywhere else. The scan is over source text, comments included, so a copy in any form fails.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { isSegmentName } from '../../src/pg/wal-names.js';

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
    // for pg_ls_archive_statusdir(), which no TypeScript regular expression can stand in for;
    // wal/fast-path.cjs (builtins only, loads no pgark module) keeps a copy checked below.
    ['the WAL file-name regex', /\[0-9A-F\]\{(24|8)\}/, ['src/ops/check.ts', 'src/pg/wal-names.ts', 'src/wal/fast-path.cjs']],
    ['the transient network error codes', /new Set\(\[[^\]]*'ECONNRESET'/, ['storage-drivers/network-errors.ts']],
    ['reading receiver status objects', /receiverStatusPrefix\(/, ['src/repo/layout.ts', 'src/wal/receiver-statuses.ts']],
    ['the receiver staleness bound', /RECEIVER_(FRESH|STALE)_MS\s*=/, ['src/wal/receiver-statuses.ts']],
  ])('%s', (_what, re, expected) => {
    expect(where(source, re)).toEqual(expected);
  });

  it('the fast path\'s copy of the segment shape agrees with src/pg/wal-names.ts', () => {
    const fast = createRequire(import.meta.url)(join(ROOT, 'src/wal/fast-path.cjs')) as { SEGMENT_RE: RegExp };
    const names = ['000000010000000000000001', '0000000A00000000000000FF', '000000010000000000000001.partial', '00000002.history',
      '000000010000000000000001.00000028.backup', '00000001000000000000000a', '00000001000000000000001', '0000000100000000000000011', '', 'x/000000010000000000000001'];
    expect(names.map((n) => fast.SEGMENT_RE.test(n))).toEqual(names.map((n) => isSegmentName(n)));
    expect(names.filter((n) => isSegmentName(n))).toEqual(['000000010000000000000001', '0000000A00000000000000FF']);
  });

  it.each<[string, RegExp, string]>([
    ['waitFor', /(function|const)\s+waitFor\b/, 'test/helpers/wait.ts'],
    ['connEnv', /(function|const)\s+connEnv\b/, 'test/helpers/pg-cluster.ts'],
  ])('tests define %s once', (_name, re, home) => {
    expect(where(tests, re)).toEqual([home]);
  });
});
