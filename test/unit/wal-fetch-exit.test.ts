import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { walFetchFatalBase, walFetchFatalCode } from '../../src/cli/exit.js';
import { ExitCode } from '../../src/common/errors.js';

const table = createRequire(import.meta.url)('../../src/cli/wal-fetch-exit.cjs') as {
  walFetchFatalCode(code: number): number;
  crashExitCode(argv: readonly string[]): number;
};

describe('wal-fetch exit codes (src/cli/wal-fetch-exit.cjs, the one mapping)', () => {
  it.each<[number, number]>([
    [ExitCode.FAILURE, 201], // a generic failure is not "not archived"
    [ExitCode.USAGE, 202],
    [ExitCode.INVALID_INPUT, 205],
    [ExitCode.NOT_A_REPOSITORY, 209],
    [ExitCode.STORAGE, 210],
    [ExitCode.INTEGRITY, 211],
    [ExitCode.INTERNAL, 213],
    [ExitCode.SYSTEM, 214],
    [0, 213], // "failed with success" is a bug: internal
    [126, 126], // already fatal
    [213, 213],
  ])('pgark code %i -> %i, above 125 (PostgreSQL stops recovery)', (code, want) => {
    expect(walFetchFatalCode(code)).toBe(want);
    expect(table.walFetchFatalCode(code)).toBe(want);
    expect(want).toBeGreaterThan(125);
  });

  it('the TypeScript side reads the same table', () => {
    expect(walFetchFatalBase()).toBe(200);
  });

  it.each<[string[], number]>([
    [['node', 'pgark', 'wal-fetch', 'x', 'y'], 213],
    [['node', 'pgark', '--repo', '/r', 'wal-fetch', 'x', 'y'], 213],
    [['node', 'pgark', 'info'], 13],
    [['node', 'pgark', 'wal-push', 'x'], 13],
  ])('a crash of %j exits %i', (argv, want) => {
    expect(table.crashExitCode(argv)).toBe(want);
  });
});

describe('bin/pgark.js uses the table for a crash', () => {
  // A copy of bin/ whose dist/ holds only the CommonJS modules bin/pgark.js requires before the
  // CLI (as tsc copies them from src/): loading the CLI fails, and the entry point's crash handler
  // chooses the exit code.
  const dir = mkdtempSync(join(tmpdir(), 'pgark-bin-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'bin'));
  for (const f of ['pgark.js', 'package.json', 'compile-cache.cjs']) copyFileSync(join('bin', f), join(dir, 'bin', f));
  const exitTable = join('src', 'cli', 'wal-fetch-exit.cjs');
  for (const f of [join('src', 'wal', 'fast-path.cjs'), exitTable]) {
    mkdirSync(join(dir, 'dist', dirname(f)), { recursive: true });
    copyFileSync(f, join(dir, 'dist', f));
  }
  const run = (args: string[]) =>
    spawnSync(process.execPath, [join(dir, 'bin', 'pgark.js'), ...args], { cwd: dir, env: { ...process.env, NODE_DISABLE_COMPILE_CACHE: '1' }, encoding: 'utf8' });

  it('wal-fetch exits 213 (stop recovery), another command 13', () => {
    const fetch = run(['wal-fetch', '000000010000000000000001', join(dir, 'dest')]);
    expect(fetch.stderr).toMatch(/pgark.*dist/);
    expect(fetch.status).toBe(213);
    expect(run(['info']).status).toBe(13);
  });

  it('without the table (a damaged installation) wal-fetch still exits above 125', () => {
    rmSync(join(dir, 'dist', exitTable));
    try {
      expect(run(['wal-fetch', '000000010000000000000001', join(dir, 'dest')]).status).toBeGreaterThan(125);
    } finally {
      copyFileSync(exitTable, join(dir, 'dist', exitTable));
    }
  });

  it('bin/pgark.js writes no exit code of its own', () => {
    expect(readFileSync('bin/pgark.js', 'utf8')).not.toMatch(/\b(200|213)\b/);
  });
});
