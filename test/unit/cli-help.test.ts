import { Command, Help } from 'commander';
import { describe, expect, it } from 'vitest';
import { buildProgram } from '../../src/cli/main.js';

/** Every command under the program (nested ones too), with its full name. */
function walk(cmd: Command, prefix: string[] = []): Array<[string, Command]> {
  return cmd.commands.flatMap((c) => [[[...prefix, c.name()].join(' '), c] as [string, Command], ...walk(c, [...prefix, c.name()])]);
}

const program = await buildProgram();
const commands = walk(program);

function render(cmd: Command, width: number): { help: Help; text: string } {
  const help = cmd.createHelp();
  help.prepareContext({ helpWidth: width });
  return { help, text: help.formatHelp(cmd, help) };
}

const defaults = (s: string) => (s.match(/\(default\b|, default: /g) ?? []).length;

describe('--help', () => {
  it('walks every command', () => {
    expect(commands.map(([n]) => n)).toEqual(expect.arrayContaining(['backup', 'restore', 'sets subscribe', 'slots drop', 'repo create', 'wal-fetch']));
    expect(commands.length).toBeGreaterThan(35);
  });

  it.each(commands)('%s: shows the global options', (_name, cmd) => {
    const { text } = render(cmd, 80);
    expect(text).toContain('Global Options:');
    for (const flag of ['--repo <url>', '--stanza <name>', '--config <file>', '--pgdata <dir>', '--log-level <level>']) expect(text).toContain(flag);
  });

  it.each(commands)('%s: prints each default once, never an empty one', (_name, cmd) => {
    const { help, text } = render(cmd, 80);
    expect(text.replace(/\s+/g, ' ')).not.toMatch(/default: (\[\]|""|undefined)/);
    const items = [
      ...[...help.visibleOptions(cmd), ...help.visibleGlobalOptions(cmd)].map((o) => [o.flags, help.optionDescription(o)]),
      ...help.visibleArguments(cmd).map((a) => [a.name(), help.argumentDescription(a)]),
    ];
    for (const [what, d] of items) {
      expect(defaults(d!), `${what}: ${d}`).toBeLessThanOrEqual(1);
      expect(d, what).not.toMatch(/default: (\[\]|""|undefined)/);
    }
  });

  it.each(commands)('%s: no hard line breaks inside a paragraph; wraps at the width', (_name, cmd) => {
    for (const d of [cmd.description(), cmd.summary(), ...cmd.options.map((o) => o.description), ...cmd.registeredArguments.map((a) => a.description)]) {
      expect(d ?? '', 'a newline that is not a paragraph break').not.toMatch(/(?<!\n)\n(?!\n)/);
    }
    for (const width of [80, 120]) {
      for (const line of render(cmd, width).text.split('\n')) {
        // a line may be longer only when it is one word that cannot be broken
        if (line.length > width && !line.startsWith("Usage:")) expect(line.trim(), `wider than ${width}: ${line}`).not.toMatch(/\s/);
      }
    }
  });

  it('pgark --help wraps at the width too, and lists the storage options', () => {
    for (const width of [80, 120]) {
      const { text } = render(program, width);
      expect(text).toContain('--s3-endpoint <value>');
      for (const line of text.split('\n')) if (line.length > width) expect(line.trim(), `wider than ${width}: ${line}`).not.toMatch(/\s/);
    }
  });
});
