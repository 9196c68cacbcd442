import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, type Stats } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PGARK_BIN } from '../helpers/pg-cluster.js';

const require = createRequire(import.meta.url);
const { compileCacheDirOf, isTrustedDir } = require('../../bin/compile-cache.cjs') as {
  compileCacheDirOf(env: Record<string, string | undefined>): string | undefined;
  isTrustedDir(dir: string, uid: number, lstat?: (p: string) => Stats): boolean;
};

describe('compile cache directory', () => {
  it.each<[string, Record<string, string | undefined>, string | undefined]>([
    ['HOME', { HOME: '/var/lib/postgresql' }, '/var/lib/postgresql/.cache/pgark/compile-cache'],
    ['XDG_CACHE_HOME first', { HOME: '/home/a', XDG_CACHE_HOME: '/srv/cache' }, '/srv/cache/pgark/compile-cache'],
    ['relative XDG_CACHE_HOME ignored', { HOME: '/home/a', XDG_CACHE_HOME: 'cache' }, '/home/a/.cache/pgark/compile-cache'],
    ['relative HOME', { HOME: 'home' }, undefined],
    ['neither', {}, undefined],
  ])('%s', (_name, env, want) => {
    expect(compileCacheDirOf(env)).toBe(want);
  });

  const dir = (uid: number, mode: number, kind: 'dir' | 'link' = 'dir') => ({ uid, mode, isDirectory: () => kind === 'dir' }) as unknown as Stats;
  const tree = (entries: Record<string, Stats>) => (p: string) => {
    const st = entries[p];
    if (!st) throw new Error(`ENOENT ${p}`);
    return st;
  };
  const base = { '/': dir(0, 0o755), '/home': dir(0, 0o755), '/home/a': dir(1000, 0o750), '/home/a/.cache': dir(1000, 0o700) };
  it.each<[string, Record<string, Stats>, boolean]>([
    ['own directories below root-owned ones', base, true],
    ['below sticky world-writable /tmp', { '/': dir(0, 0o755), '/home': dir(0, 0o1777), '/home/a': dir(1000, 0o700), '/home/a/.cache': dir(1000, 0o700) }, true],
    ['group-writable', { ...base, '/home/a/.cache': dir(1000, 0o770) }, false],
    ['world-writable, not sticky', { ...base, '/home': dir(0, 0o777) }, false],
    ['owned by another user', { ...base, '/home/a/.cache': dir(1001, 0o700) }, false],
    ['a symlink', { ...base, '/home/a/.cache': dir(1000, 0o777, 'link') }, false],
  ])('trusted: %s', (_name, entries, want) => {
    expect(isTrustedDir('/home/a/.cache', 1000, tree(entries))).toBe(want);
  });
});

describe('bin/pgark.js', () => {
  const root = mkdtempSync(join(tmpdir(), 'pgark-cc-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  const run = (home: string, env: Record<string, string> = {}) => {
    const r = spawnSync(process.execPath, [PGARK_BIN, 'version'], { env: { PATH: process.env.PATH ?? '', HOME: home, ...env }, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
  };
  const entries = (home: string) => {
    const d = join(home, '.cache/pgark/compile-cache');
    return existsSync(d) ? readdirSync(d, { recursive: true }).length : 0;
  };

  it('keeps a compile cache in the user\'s own cache directory, mode 0700', () => {
    const home = join(root, 'ok');
    mkdirSync(home, { mode: 0o700 });
    run(home);
    expect(entries(home)).toBeGreaterThan(1);
    for (const d of ['.cache', '.cache/pgark', '.cache/pgark/compile-cache']) expect(statSync(join(home, d)).mode & 0o777).toBe(0o700);
  });

  it('uses none where others could write, or when switched off', () => {
    const shared = join(root, 'shared');
    mkdirSync(join(shared, '.cache'), { recursive: true });
    chmodSync(join(shared, '.cache'), 0o777);
    run(shared);
    expect(entries(shared)).toBe(0);
    const off = join(root, 'off');
    mkdirSync(off, { mode: 0o700 });
    run(off, { NODE_DISABLE_COMPILE_CACHE: '1' });
    expect(entries(off)).toBe(0);
  });
});
