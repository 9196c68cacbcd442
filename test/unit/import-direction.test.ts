/**
 * Lower layers never import higher ones: every import of every file under src/,
 * storage-drivers/ and bin/ against the one layer order docs/ARCHITECTURE.md states (its ```layers block).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { findViolations, formatViolation, importsOf, ioImportsOf, parseLayers, parsePureModules, roomOf, type SourceFile } from '../helpers/import-layers.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));


function sourceFiles(dir: string): SourceFile[] {
  const out: SourceFile[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.(ts|mts|cts|js|mjs|cjs)$/.test(e.name)) out.push({ path: relative(ROOT, p).split(sep).join('/'), text: readFileSync(p, 'utf8') });
    }
  };
  walk(join(ROOT, dir));
  return out;
}

const architecture = readFileSync(join(ROOT, 'docs/ARCHITECTURE.md'), 'utf8');
const layers = parseLayers(architecture);
const files = [...sourceFiles('src'), ...sourceFiles('storage-drivers'), ...sourceFiles('bin')];

describe('import direction of the source tree', () => {
  it('ARCHITECTURE.md names every room of src/ and storage-drivers/ in its layer order', () => {
    const rooms = new Set(files.map((f) => roomOf(f.path)));
    const named = new Set(layers.flat());
    expect([...rooms].filter((r) => r === undefined || !named.has(r))).toEqual([]);
    expect(files.length).toBeGreaterThan(100);
  });

  it('no module imports a higher layer, a room of its own layer or another driver', () => {
    const all = findViolations(files, layers);
    expect(all.map(formatViolation)).toEqual([]);
  });
});

describe('pure modules', () => {
  it('every module ARCHITECTURE.md calls pure exists once and imports no I/O module', () => {
    const pure = parsePureModules(architecture);
    expect(pure.length).toBeGreaterThan(5);
    for (const name of pure) {
      const matches = files.filter((f) => f.path.endsWith(`/${name}.ts`));
      expect(matches.map((f) => f.path), name).toHaveLength(1);
      expect(ioImportsOf(matches[0]!.text), matches[0]!.path).toEqual([]);
    }
  });

  it.each<[string, string[]]>([
    ["import { readFile } from 'node:fs/promises';", ['node:fs/promises']],
    ["import type { Client } from 'pg';", ['pg']],
    ["import { S3Client } from '@aws-sdk/client-s3';", ['@aws-sdk/client-s3']],
    ["import { createHash } from 'node:crypto';\nimport { x } from './y.js';", []],
  ])('%s', (text, expected) => {
    expect(ioImportsOf(text)).toEqual(expected);
  });
});

describe('the import-direction rule (synthetic files)', () => {
  const order = parseLayers(['# x', '```layers', 'bin', 'cli', 'restore | ops  # peers', 'wal', 'storage-drivers', 'common', '```', ''].join('\n'));

  it('reads the layer block: highest first, peers on one line', () => {
    expect(order).toEqual([['bin'], ['cli'], ['restore', 'ops'], ['wal'], ['storage-drivers'], ['common']]);
    expect(() => parseLayers('no block')).toThrow(/exactly one/);
    expect(() => parseLayers('```layers\na\n```\n```layers\nb\n```\n')).toThrow(/exactly one/);
    expect(() => parseLayers('```layers\na\na\n```\n')).toThrow(/twice/);
  });

  it.each<[string, string, string, string[]]>([
    ['downward static import', 'src/wal/a.ts', "import { x } from '../common/errors.js';", []],
    ['same room', 'src/wal/a.ts', "import { x } from './b.js';", []],
    ['package and builtin', 'src/wal/a.ts', "import { x } from 'pg';\nimport { y } from 'node:fs';", []],
    ['upward static import', 'src/wal/a.ts', "import { openRepository } from '../cli/context.js';", ['src/cli/context.js upward']],
    ['upward type import', 'src/wal/a.ts', "import type { Ctx } from '../cli/context.js';", ['src/cli/context.js upward']],
    ['upward multi-line import', 'src/wal/a.ts', "const a = 1;\nimport {\n  b,\n  c,\n} from '../restore/x.js';", ['src/restore/x.js upward']],
    ['upward export-from', 'src/common/a.ts', "export { b } from '../wal/b.js';\nexport * from '../wal/c.js';", ['src/wal/b.js upward', 'src/wal/c.js upward']],
    ['upward side-effect import', 'src/wal/a.ts', "import '../ops/register.js';", ['src/ops/register.js upward']],
    ['upward dynamic import', 'src/wal/a.ts', "async function f() {\n  const { g } = await import('../cli/main.js');\n}", ['src/cli/main.js upward']],
    ['upward dynamic type import', 'src/wal/a.ts', "let m: import('../ops/m.js').M | undefined;", ['src/ops/m.js upward']],
    ['upward template import', 'src/wal/a.ts', 'const m = await import(`../cli/${name}.js`);', ['src/cli/ upward']],
    ['peer on the same layer', 'src/ops/a.ts', "import { p } from '../restore/plan.js';", ['src/restore/plan.js same layer']],
    ['driver importing another driver', 'storage-drivers/ssh/a.ts', "import { t } from '../fs/temp.js';", ['storage-drivers/fs/temp.js other driver']],
    ['driver importing the shared level', 'storage-drivers/ssh/a.ts', "import { t } from '../temp-names.js';", []],
    ['driver importing src/common', 'storage-drivers/ssh/a.ts', "import { e } from '../../src/common/errors.js';", []],
    ['driver importing upward', 'storage-drivers/s3/a.ts', "import { w } from '../../src/wal/x.js';", ['src/wal/x.js upward']],
    ['room missing from the order', 'src/wal/a.ts', "import { q } from '../newroom/q.js';", ['src/newroom/q.js outside the layers']],
    ['import in a comment', 'src/wal/a.ts', "// import { x } from '../cli/context.js';\n/* await import('../cli/main.js') */", []],
    ['import-like text in a string', 'src/wal/a.ts', "const s = 'see ../cli/context.js'; const r = /import\\('x'\\)/;", []],
    ['CommonJS module of the same room', 'src/wal/a.ts', "const m = createRequire(import.meta.url)('./fast-path.cjs');", []],
    ['upward createRequire load', 'src/wal/a.ts', "const m = createRequire(import.meta.url)('../../bin/fast-path.cjs') as M;", ['bin/fast-path.cjs upward']],
    ['upward require', 'src/cli/a.cjs', "const t = require('../../bin/wal-fetch-exit.cjs');", ['bin/wal-fetch-exit.cjs upward']],
    ['upward new URL next to a module', 'src/common/a.ts', "new Worker(new URL('../restore/restore-worker.js', import.meta.url));", ['src/restore/restore-worker.js upward']],
    ['CommonJS path in a list', 'src/cli/a.ts', "for (const rel of ['../../bin/wal-fetch-exit.cjs', '../../../bin/wal-fetch-exit.cjs']) load(rel);", ['bin/wal-fetch-exit.cjs upward', '../bin/wal-fetch-exit.cjs outside the layers']],
    ['builtin require', 'src/wal/a.cjs', "const { join } = require('node:path');", []],
    ['bin loading the compiled tree', 'bin/pgark.js', "require('../dist/src/wal/fast-path.cjs');\nimport('../dist/src/cli/main.js');", []],
  ])('%s', (_name, path, text, expected) => {
    expect(findViolations([{ path, text }], order).map((v) => `${v.to} ${v.why}`)).toEqual(expected);
  });

  it('adding one upward import to the real tree makes the check fail', () => {
    const base = findViolations(files, layers).length;
    const pushed = files.map((f) => (f.path === 'src/wal/segment-name.ts' ? { ...f, text: `${f.text}\nimport { program } from '../cli/main.js';\n` } : f));
    const after = findViolations(pushed, layers);
    expect(after.length).toBe(base + 1);
    expect(after.map(formatViolation)).toContainEqual(expect.stringMatching(/^src\/wal\/segment-name\.ts:\d+ imports src\/cli\/main\.js \(wal -> cli: upward\)$/));
  });

  it('adding a load of a bin/ module to the real tree makes the check fail', () => {
    const pushed = files.map((f) => (f.path === 'src/wal/fast-path.ts' ? { ...f, text: `${f.text}\nconst x = createRequire(import.meta.url)('../../bin/compile-cache.cjs');\n` } : f));
    expect(findViolations(pushed, layers).map(formatViolation)).toContainEqual(expect.stringMatching(/^src\/wal\/fast-path\.ts:\d+ imports bin\/compile-cache\.cjs \(wal -> bin: upward\)$/));
  });

  it('finds each form of import with its line', () => {
    const text = "import a from './a.js';\nexport { b } from './b.js';\nimport './c.js';\nconst d = await import('./d.js');\n";
    expect(importsOf(text).map((r) => `${r.line} ${r.kind} ${r.spec}`)).toEqual(['1 static ./a.js', '2 static ./b.js', '3 side-effect ./c.js', '4 dynamic ./d.js']);
    const loads = "const e = require('./e.cjs');\nconst f = createRequire(import.meta.url)('./f.cjs');\nnew Worker(new URL('./g.js', import.meta.url));\nconst h = myrequire('./h.js');\n";
    expect(importsOf(loads).map((r) => `${r.line} ${r.kind} ${r.spec}`)).toEqual(['1 require ./e.cjs', '2 require ./f.cjs', '3 url ./g.js']);
  });
});
