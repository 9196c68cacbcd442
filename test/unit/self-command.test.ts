/**
 * How pgark names itself in archive_command / restore_command (src/common/self-command.ts): the
 * launcher an installed pgark was started through (PGARK_LAUNCHER, exported by bin/pgark), only
 * when it belongs to this installation; otherwise node + bin/pgark.js as before.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { chooseSelfCommand, selfCommand } from '../../src/common/self-command.js';

const ROOT = resolve(import.meta.dirname, '../..');
const SCRIPT = realpathSync(join(ROOT, 'bin', 'pgark.js'));
const tmp = mkdtempSync(join(tmpdir(), 'pgark-self-'));
/** The V8 flags the launchers start Node with (docs/OPERATIONS.md, Memory). */
const V8_FLAGS = '--max-semi-space-size=1';
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('chooseSelfCommand', () => {
  const base = { script: '/usr/lib/pgark/bin/pgark.js', execPath: '/usr/lib/pgark/runtime/bin/node' };
  const fallback = { node: base.execPath, script: base.script };
  it.each([
    ['no launcher', { launcher: undefined, launcherScript: undefined }, fallback],
    ['the launcher of this installation', { launcher: '/usr/bin/pgark', launcherScript: '/usr/lib/pgark/bin/pgark.js' }, { launcher: '/usr/bin/pgark' }],
    ['a launcher of another installation', { launcher: '/opt/pgark/bin/pgark', launcherScript: '/opt/pgark/bin/pgark.js' }, fallback],
    ['a launcher that does not resolve', { launcher: '/gone/pgark', launcherScript: undefined }, fallback],
    ['a relative launcher', { launcher: 'bin/pgark', launcherScript: '/usr/lib/pgark/bin/pgark.js' }, fallback],
  ])('%s', (_, f, expected) => {
    expect(chooseSelfCommand({ ...base, ...f })).toEqual(expected);
  });
});

describe('selfCommand (real files)', () => {
  const fallback = { node: process.execPath, script: SCRIPT };
  it('without PGARK_LAUNCHER: node + bin/pgark.js', () => {
    expect(selfCommand({})).toEqual(fallback);
    expect(selfCommand({ PGARK_LAUNCHER: '' })).toEqual(fallback);
  });
  it('bin/pgark itself and a symlink to it (as /usr/bin/pgark): the name it was started by', () => {
    expect(selfCommand({ PGARK_LAUNCHER: join(ROOT, 'bin', 'pgark') })).toEqual({ launcher: join(ROOT, 'bin', 'pgark') });
    const link = join(tmp, 'usr-bin-pgark');
    symlinkSync(join(ROOT, 'bin', 'pgark'), link);
    expect(selfCommand({ PGARK_LAUNCHER: link })).toEqual({ launcher: link });
  });
  it('a launcher of another installation (an inherited variable) is ignored', () => {
    const other = join(tmp, 'other', 'bin');
    mkdirSync(other, { recursive: true });
    writeFileSync(join(other, 'pgark'), '#!/bin/sh\n');
    writeFileSync(join(other, 'pgark.js'), '');
    expect(selfCommand({ PGARK_LAUNCHER: join(other, 'pgark') })).toEqual(fallback);
    expect(selfCommand({ PGARK_LAUNCHER: join(tmp, 'missing', 'pgark') })).toEqual(fallback);
  });
});

describe('bin/pgark (the launcher)', () => {
  const printer = join(tmp, 'print-env.sh');
  writeFileSync(printer, '#!/bin/sh\nprintf "%s\\n" "$PGARK_LAUNCHER" "$@"\n', { mode: 0o755 });
  const run = (cmd: string, args: string[], cwd = tmp) =>
    spawnSync(cmd, args, { cwd, encoding: 'utf8', env: { PATH: process.env.PATH ?? '/usr/bin:/bin', PGARK_NODE: printer } });

  it('exports PGARK_LAUNCHER as it was started and runs pgark.js next to the file', () => {
    const r = run(join(ROOT, 'bin', 'pgark'), ['version', 'a b']);
    expect(r.stdout.split('\n').slice(0, 4)).toEqual([join(ROOT, 'bin', 'pgark'), SCRIPT, 'version', 'a b']);
    // backup, restore, wal-push and wal-fetch start with a small young generation.
    for (const c of ['backup', 'restore', 'wal-push', 'wal-fetch']) {
      expect(run(join(ROOT, 'bin', 'pgark'), ['--log-level', 'info', c, 'x']).stdout.split('\n').slice(0, 3)).toEqual([join(ROOT, 'bin', 'pgark'), V8_FLAGS, SCRIPT]);
    }
  });
  it('through a symlink in another directory, and by a relative path', () => {
    const dir = join(tmp, 'links');
    mkdirSync(dir);
    symlinkSync(join(ROOT, 'bin', 'pgark'), join(dir, 'pgark'));
    expect(run(join(dir, 'pgark'), ['x']).stdout.split('\n').slice(0, 2)).toEqual([join(dir, 'pgark'), SCRIPT]);
    expect(run('./links/pgark', ['x']).stdout.split('\n').slice(0, 2)).toEqual([join(dir, 'pgark'), SCRIPT]);
  });
  it('prefers the runtime the package ships (runtime/bin/node) when PGARK_NODE is not set', () => {
    const pkg = join(tmp, 'pkg');
    mkdirSync(join(pkg, 'bin'), { recursive: true });
    mkdirSync(join(pkg, 'runtime', 'bin'), { recursive: true });
    // The launcher resolves its own directory: a copy in pkg/bin uses pkg/runtime.
    copyFileSync(join(ROOT, 'bin', 'pgark'), join(pkg, 'bin', 'pgark'));
    chmodSync(join(pkg, 'bin', 'pgark'), 0o755);
    writeFileSync(join(pkg, 'runtime', 'bin', 'node'), '#!/bin/sh\necho bundled "$@"\n', { mode: 0o755 });
    const r = spawnSync(join(pkg, 'bin', 'pgark'), ['version'], { encoding: 'utf8', env: { PATH: '/usr/bin:/bin' } });
    expect(r.stdout).toBe(`bundled ${join(pkg, 'bin', 'pgark.js')} version\n`);
  });

  it('bin/pgark-wal-push and bin/pgark-wal-fetch fall back to the same runtime', () => {
    const pkg = join(tmp, 'pkg2');
    mkdirSync(join(pkg, 'bin'), { recursive: true });
    mkdirSync(join(pkg, 'runtime', 'bin'), { recursive: true });
    writeFileSync(join(pkg, 'runtime', 'bin', 'node'), '#!/bin/sh\necho bundled "$@"\n', { mode: 0o755 });
    for (const c of ['pgark-wal-push', 'pgark-wal-fetch']) {
      copyFileSync(join(ROOT, 'bin', c), join(pkg, 'bin', c));
      chmodSync(join(pkg, 'bin', c), 0o755);
      // A history file never takes the fast path: the full pgark runs.
      const r = spawnSync(join(pkg, 'bin', c), ['00000002.history', 'pg_wal/x'], { encoding: 'utf8', env: { PATH: '/usr/bin:/bin' } });
      expect(r.stdout).toBe(`bundled ${V8_FLAGS} ${join(pkg, 'bin', 'pgark.js')} ${c.slice('pgark-'.length)} 00000002.history pg_wal/x\n`);
      // Through a symlink (as /usr/bin/pgark-wal-push), even with a PATH that has no readlink.
      symlinkSync(join(pkg, 'bin', c), join(pkg, `link-${c}`));
      const l = spawnSync(join(pkg, `link-${c}`), ['00000002.history', 'pg_wal/x'], { encoding: 'utf8', env: { PATH: '/nonexistent' } });
      expect(l.stdout).toBe(r.stdout);
    }
  });

  // The memory settings only a starting process reads: the launchers set glibc's for the Node
  // process they start, and bin/pgark.js drops them, so what pgark starts (pg_ctl, PostgreSQL,
  // workers) does not inherit them; a user's own setting is left alone.
  describe('memory settings', () => {
    const probe = join(tmp, 'env-probe.cjs');
    writeFileSync(
      probe,
      "const at = process.env; const pick = (e) => ['MALLOC_ARENA_MAX', 'MALLOC_MMAP_THRESHOLD_', 'PGARK_MALLOC_SET'].map((k) => e[k] ?? '-').join(',');\n" +
        "const start = pick({ ...at }); process.on('exit', () => process.stderr.write(`PROBE ${start} ${pick(process.env)} ${process.execArgv.filter((a) => a.startsWith('--max-semi')).join(' ')}\\n`));\n",
    );
    const node = join(tmp, 'node-with-probe.sh');
    writeFileSync(node, `#!/bin/sh\nexec '${process.execPath}' -r '${probe}' "$@"\n`, { mode: 0o755 });
    const probeOf = (cmd: string, args: string[], extra: Record<string, string> = {}) => {
      const r = spawnSync(join(ROOT, 'bin', cmd), args, { cwd: tmp, encoding: 'utf8', env: { PATH: process.env.PATH ?? '/usr/bin:/bin', PGARK_NODE: node, NODE_DISABLE_COMPILE_CACHE: '1', ...extra } });
      return /PROBE (.*)/.exec(r.stderr)?.[1];
    };

    it('bin/pgark: set at start, gone from the environment pgark passes on', () => {
      expect(probeOf('pgark', ['--version'])).toBe(`2,131072,1 -,-,- `);
      expect(probeOf('pgark', ['restore', '--version'])).toBe(`2,131072,1 -,-,- ${V8_FLAGS}`);
    });
    it('the full path of bin/pgark-wal-push and bin/pgark-wal-fetch the same', () => {
      expect(probeOf('pgark-wal-push', ['--version'])).toBe(`2,131072,1 -,-,- ${V8_FLAGS}`);
      expect(probeOf('pgark-wal-fetch', ['--version'])).toBe(`2,131072,1 -,-,- ${V8_FLAGS}`);
    });
    it('the agent: one libuv thread per core up to its jobs, at least 2; a set UV_THREADPOOL_SIZE wins', () => {
      const uv = join(tmp, 'uv-probe.cjs');
      writeFileSync(uv, "process.on('exit', () => process.stderr.write(`UV ${process.env.UV_THREADPOOL_SIZE ?? '-'}\\n`));\n");
      const uvNode = join(tmp, 'node-with-uv-probe.sh');
      writeFileSync(uvNode, `#!/bin/sh\nexec '${process.execPath}' -r '${uv}' "$@"\n`, { mode: 0o755 });
      const uvOf = (args: string[], extra: Record<string, string> = {}) =>
        /UV (.*)/.exec(spawnSync(join(ROOT, 'bin', 'pgark'), args, { cwd: tmp, encoding: 'utf8', env: { PATH: process.env.PATH ?? '/usr/bin:/bin', PGARK_NODE: uvNode, NODE_DISABLE_COMPILE_CACHE: '1', ...extra } }).stderr)?.[1];
      const cores = availableParallelism();
      expect(uvOf(['agent', '--help'])).toBe(String(Math.max(2, Math.min(4, cores))));
      expect(uvOf(['agent', '--jobs', '1', '--help'])).toBe('2');
      expect(uvOf(['agent', '--jobs', '64', '--help'])).toBe(String(Math.max(2, cores)));
      expect(uvOf(['agent', '--help'], { PGARK_JOBS: '1' })).toBe('2');
      expect(uvOf(['agent', '--help'], { UV_THREADPOOL_SIZE: '7' })).toBe('7');
      expect(uvOf(['info', '--help'])).toBe('-');
    });
    it("a user's own MALLOC_ARENA_MAX or MALLOC_MMAP_THRESHOLD_ wins, and is passed on", () => {
      expect(probeOf('pgark', ['--version'], { MALLOC_ARENA_MAX: '4' })).toBe(`4,-,- 4,-,- `);
      expect(probeOf('pgark-wal-fetch', ['--version'], { MALLOC_MMAP_THRESHOLD_: '65536' })).toBe(`-,65536,- -,65536,- ${V8_FLAGS}`);
    });
  });
});
