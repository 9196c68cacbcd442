import { describe, expect, it } from 'vitest';
import { buildProgram, commandOf, COMMAND_GROUPS } from '../../src/cli/main.js';

const VALUE_OPTIONS = new Set(['--repo', '--stanza', '--config']);

describe('commandOf', () => {
  it.each<[string[], string | undefined]>([
    [['wal-push', '%p'], 'wal-push'],
    [['--repo', '/r', 'wal-push', '%p'], 'wal-push'],
    [['--repo=/r', '--stanza', 'backup', 'wal-fetch'], 'wal-fetch'],
    [['--log-level', 'info'], 'info'], // not a value option in this table: its value reads as a command
    [['-V'], undefined],
    [['--help'], undefined],
    [['--', 'version'], 'version'],
    [[], undefined],
  ])('%j -> %s', (args, want) => {
    expect(commandOf(args, VALUE_OPTIONS)).toBe(want);
  });
});

describe('command groups', () => {
  it('name exactly the commands their modules register, each once', async () => {
    const all = (await buildProgram()).commands.map((c) => c.name());
    expect([...COMMAND_GROUPS.flatMap((g) => g.commands), 'version'].sort()).toEqual([...all].sort());
    for (const g of COMMAND_GROUPS) {
      const one = await buildProgram(['node', 'pgark', '--repo', '/r', g.commands[0]!]);
      expect(one.commands.map((c) => c.name()).sort()).toEqual(['version', ...g.commands].sort());
    }
  });

  it('all of them for help, an unknown command or none; none besides version for version', async () => {
    const all = (await buildProgram()).commands.length;
    for (const argv of [['help'], ['no-such'], [], ['--help']]) expect((await buildProgram(['node', 'pgark', ...argv])).commands).toHaveLength(all);
    expect((await buildProgram(['node', 'pgark', 'version'])).commands.map((c) => c.name())).toEqual(['version']);
  });
});
