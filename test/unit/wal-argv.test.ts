// The lean wal-push / wal-fetch parser (src/cli/wal-argv.ts) against commander's own parse of the
// same command line (buildProgram, the full CLI): what it takes it must read exactly as commander
// does (options as optsWithGlobals() gives them, operands), and everything else it must leave to
// the full CLI (undefined), which reports the usage error, help or version.
import { CommanderError, type Command } from 'commander';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { buildProgram } from '../../src/cli/main.js';
import { parseWalArgv } from '../../src/cli/wal-argv.js';

type Env = Record<string, string>;

/** commander's reading: { operands, options } of the action it would run, or the error it throws. */
async function viaCommander(args: string[], env: Env): Promise<{ command: string; operands: string[]; options: Record<string, unknown> } | Error> {
  const saved = process.env;
  process.env = { ...env };
  try {
    const argv = ['node', 'pgark', ...args];
    const program = await buildProgram(argv);
    let got: { command: string; operands: string[]; options: Record<string, unknown> } | undefined;
    for (const c of program.commands) c.action((...a: unknown[]) => {
      const cmd = a[a.length - 1] as Command;
      got = { command: cmd.name(), operands: cmd.args, options: { ...cmd.optsWithGlobals() } };
    });
    await program.parseAsync(argv);
    return got ?? new Error('no action ran');
  } catch (err) {
    return err as Error;
  } finally {
    process.env = saved;
  }
}

const SEG = '000000010000000000000001';

const TAKEN: Array<[string, string[], Env]> = [
  ['plain wal-push', ['wal-push', '/pg/pg_wal/' + SEG], {}],
  ['options after the path', ['wal-push', 'pg_wal/' + SEG, '--repo', '/r', '--stanza', 's', '--push-ahead', '0'], {}],
  ['global option first, = forms, switch', ['--repo', '/r', 'wal-push', SEG, '--json', '--jobs=3', '--codec', 'zstd', '--compress-level', '5'], {}],
  ['the last of a repeated option wins', ['wal-push', SEG, '--repo=/a', '--repo', '/b', '--push-ahead', '1', '--push-ahead=2'], {}],
  ['global options from the environment', ['wal-push', SEG], { PGARK_REPO: '/e', PGARK_STANZA: 'st', PGDATA: '/d', PGARK_S3_REGION: 'eu', PGARK_CONFIG: '/c.conf', PGARK_LOG_LEVEL: 'debug' }],
  ['a flag beats the environment', ['wal-push', SEG, '--repo', '/f'], { PGARK_REPO: '/e' }],
  ['an empty variable is a value (resolve refuses it)', ['wal-push', SEG], { PGARK_REPO: '', PGARK_STANZA: '' }],
  ['an empty flag value', ['wal-push', SEG, '--stanza='], {}],
  ['command options have no variables here (resolve reads them)', ['wal-push', SEG], { PGARK_PUSH_AHEAD: '0', PGARK_JOBS: '2', PGARK_PREFETCH: '0' }],
  ['a bad number is parsed, refused later by resolve alike', ['wal-push', SEG, '--push-ahead', 'abc'], {}],
  ['wal-fetch with its options', ['wal-fetch', SEG, 'pg_wal/RECOVERYXLOG', '--prefetch', '0', '--fetch-received', 'false', '--jobs', '2'], {}],
  ['a global option whose value is a command name', ['--stanza', 'wal-push', 'wal-fetch', SEG, 'd'], {}],
  ['store, repo2 and log options', ['wal-fetch', SEG, 'd', '--s3-endpoint', 'http://x:1', '--repo2', '/r2', '--repo2-mode', 'async', '--log-level', 'debug', '--log-file', '/l'], { PGARK_REPO3: '/r3' }],
  ['options between the operands', ['wal-fetch', SEG, '--prefetch=0', 'pg_wal/RECOVERYXLOG'], {}],
];

// What commander then does: its error code, or 'runs' (the command runs, parsed by commander).
const LEFT_TO_COMMANDER: Array<[string, string[], Env, string]> = [
  ['a missing operand', ['wal-push'], {}, 'commander.missingArgument'],
  ['an extra operand', ['wal-push', 'a', 'b'], {}, 'commander.excessArguments'],
  ['a missing wal-fetch operand', ['wal-fetch', SEG], {}, 'commander.missingArgument'],
  ['an unknown option', ['wal-push', SEG, '--bogus'], {}, 'commander.unknownOption'],
  ['a misspelt option', ['wal-fetch', SEG, 'd', '--prefech', '0'], {}, 'commander.unknownOption'],
  ['another command\'s option', ['wal-fetch', SEG, 'd', '--push-ahead', '0'], {}, 'commander.unknownOption'],
  ['a command option before the command', ['--push-ahead', '0', 'wal-push', SEG], {}, 'commander.unknownOption'],
  ['a value on a switch', ['wal-push', SEG, '--json=yes'], {}, 'commander.unknownOption'],
  ['a missing value', ['wal-push', SEG, '--push-ahead'], {}, 'commander.optionMissingArgument'],
  ['a value starting with -', ['wal-push', SEG, '--push-ahead', '-1'], {}, 'runs'],
  ['a value that is another option', ['wal-push', SEG, '--codec', '--repo', '/r'], {}, 'commander.optionMissingArgument'],
  ['--', ['wal-push', '--', SEG], {}, 'runs'],
  ['help', ['wal-push', '--help'], {}, 'commander.helpDisplayed'],
  ['short help', ['wal-fetch', '-h'], {}, 'commander.helpDisplayed'],
  ['version', ['-V'], {}, 'commander.version'],
  ['the help command', ['help', 'wal-push'], {}, 'commander.help'],
  ['another command', ['wal-verify'], {}, 'runs'],
  ['a word before the command', ['x', 'wal-push', SEG], {}, 'commander.unknownCommand'],
  ['no command', [], {}, 'commander.help'],
];

describe('the lean wal-push / wal-fetch parser reads a command line as commander does', () => {
  afterEach(() => vi.restoreAllMocks());

  it.each(TAKEN)('%s', async (_what, args, env) => {
    const lean = parseWalArgv(args, env);
    const full = await viaCommander(args, env);
    expect(full).not.toBeInstanceOf(Error);
    expect(lean).toBeDefined();
    expect(lean).toEqual(full);
  });

  it.each(LEFT_TO_COMMANDER)('leaves %s to the full CLI (%j %j: %s)', async (_what, args, env, outcome) => {
    vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    expect(parseWalArgv(args, env)).toBeUndefined();
    const full = await viaCommander(args, env);
    // The cases where commander takes the line all the same (another command, an option's value
    // that looks like an option) run correctly there: only the plain forms are the lean path's.
    // An option's value that looks like an option, `--`, another command: commander runs them by
    // its own rules; everything else is a usage error, help or the version, reported by the full CLI.
    expect(full instanceof CommanderError ? full.code : full instanceof Error ? full.message : 'runs').toBe(outcome);
  });

  it('the command a value-taking global option precedes is found past its value', () => {
    expect(parseWalArgv(['--config', 'wal-fetch', 'wal-push', SEG], {})).toMatchObject({ command: 'wal-push', operands: [SEG], options: { config: 'wal-fetch' } });
  });
});
