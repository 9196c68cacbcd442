import type { Command } from 'commander';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { buildProgram } from '../../src/cli/main.js';

/**
 * Runs `pgark <args>` through the real command tree with the command's action replaced by one
 * that records the options it gets: what the hooks (the deprecated spellings) hand on.
 */
async function optionsOf(path: string[], args: string[]): Promise<{ opts: Record<string, unknown>; stderr: string }> {
  const program = await buildProgram();
  let cmd: Command = program;
  for (const name of path) cmd = cmd.commands.find((c) => c.name() === name)!;
  let opts: Record<string, unknown> = {};
  cmd.action((...a: unknown[]) => {
    opts = (a[a.length - 1] as Command).opts();
  });
  let stderr = '';
  vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => {
    stderr += String(s);
    return true;
  });
  await program.parseAsync(['node', 'pgark', ...path, ...args]);
  return { opts, stderr };
}

afterEach(() => vi.restoreAllMocks());

describe('renamed flags: the old spelling still works, and warns', () => {
  it.each<[string[], string[], Record<string, unknown>, RegExp]>([
    [['sets', 'subscribe'], ['s1', '--target', 'host=t', '--name', 'reports'], { subscriber: 'reports' }, /--name is deprecated .*use --subscriber/],
    [['sets', 'apply'], ['s1', '--name', 'reports'], { subscriber: 'reports' }, /--name is deprecated .*use --subscriber/],
    [['setup'], ['--archive-timeout', '60'], { serverArchiveTimeout: '60', archiveTimeout: undefined }, /--archive-timeout is deprecated .*use --server-archive-timeout/],
    [['drill'], ['--target', 'time=2026-11-23 16:20:00+00'], { targetTime: '2026-11-23 16:20:00+00' }, /--target is deprecated .*--target-time/],
    [['drill'], ['--target', 'name=before_migration'], { targetName: 'before_migration' }, /--target is deprecated/],
    [['drill'], ['--target', 'lsn=0/5000000', '--target-exclusive'], { targetLsn: '0/5000000', targetExclusive: true }, /--target is deprecated/],
    [['drill'], ['--target', 'xid=123'], { targetXid: '123' }, /--target is deprecated/],
    [['drill'], ['--target', 'immediate'], { targetImmediate: true }, /--target is deprecated/],
    [['drill'], ['--target', 'latest'], {}, /--target is deprecated/],
  ])('%j %j', async (path, args, want, warning) => {
    const { opts, stderr } = await optionsOf(path, args);
    expect(opts).toMatchObject(want);
    if (path[0] === 'drill') {
      const targets = Object.fromEntries(Object.entries(opts).filter(([k, v]) => /^target(Time|Name|Lsn|Xid|Immediate)$/.test(k) && v !== undefined));
      expect(targets).toEqual(Object.fromEntries(Object.entries(want).filter(([k]) => k !== 'targetExclusive')));
    }
    expect(stderr).toMatch(warning);
    expect(stderr).toContain('next release');
  });

  it.each<[string[], string[], Record<string, unknown>]>([
    [['sets', 'subscribe'], ['s1', '--target', 'host=t', '--subscriber', 'reports'], { subscriber: 'reports' }],
    [['sets', 'apply'], ['s1', '--subscriber', 'reports'], { subscriber: 'reports' }],
    [['sets', 'drop'], ['s1', '--subscriber', 'reports'], { subscriber: 'reports' }],
    [['setup'], ['--server-archive-timeout', '60'], { serverArchiveTimeout: '60' }],
    [['drill'], ['--target-time', '2026-11-23 16:20:00+00'], { targetTime: '2026-11-23 16:20:00+00' }],
    [['drill'], ['--target-immediate'], { targetImmediate: true }],
  ])('the new spelling %j %j: no warning', async (path, args, want) => {
    const { opts, stderr } = await optionsOf(path, args);
    expect(opts).toMatchObject(want);
    expect(stderr).toBe('');
  });

  it('both spellings with different values: a usage error', async () => {
    await expect(optionsOf(['sets', 'subscribe'], ['s1', '--target', 'host=t', '--name', 'a', '--subscriber', 'b'])).rejects.toThrow(/--name \(deprecated\) and --subscriber both given/);
    await expect(optionsOf(['setup'], ['--archive-timeout', '60', '--server-archive-timeout', '30'])).rejects.toThrow(/both given/);
  });

  it('a bad old --target is still refused with the reason', async () => {
    await expect(optionsOf(['drill'], ['--target', 'time='])).rejects.toThrow(/empty value/);
  });

  it('the old spellings are hidden from --help', async () => {
    const program = await buildProgram();
    const find = (...path: string[]) => path.reduce<Command>((c, n) => c.commands.find((x) => x.name() === n)!, program);
    expect(find('sets', 'subscribe').helpInformation()).not.toMatch(/--name\b/);
    expect(find('sets', 'apply').helpInformation()).not.toMatch(/--name\b/);
    expect(find('setup').helpInformation()).not.toMatch(/--archive-timeout\b/);
    expect(find('drill').helpInformation()).not.toMatch(/--target </);
    expect(find('drill').helpInformation()).toMatch(/--target-time <time>/);
  });
});
