/** The pgark command line. Command implementations are imported only when they run. */
import { Command, CommanderError, Option } from 'commander';
import { ExitCode } from '../common/errors.js';
import { reportFailure, setLogCommand } from '../common/log.js';
import { PGARK_VERSION } from '../version.js';
import { CHECK_UNKNOWN, ExitWith, reportActionError, walFetchFatalCode } from './exit.js';
import { assertNoPassword } from '../pg/conninfo.js';
import { configureProgramHelp } from './help.js';
import { globalOptionSpecs } from './option-specs.js';

type Register = (program: Command) => void;

/**
 * The command groups, in help order: the commands each module registers, and the module. A call
 * loads and builds only the group of its command (start-up cost: archive_command starts one
 * process per segment); help, an unknown command or none builds them all.
 */
export const COMMAND_GROUPS: ReadonlyArray<{ commands: readonly string[]; load: () => Promise<Register[]> }> = [
  { commands: ['repo'], load: async () => [(await import('./repo-commands.js')).registerRepoCommands] },
  { commands: ['key'], load: async () => [(await import('./key-commands.js')).registerKeyCommands] },
  { commands: ['stanza-upgrade'], load: async () => [(await import('./stanza-commands.js')).registerStanzaCommands] },
  { commands: ['wal-push', 'wal-push-ahead'], load: async () => [(await import('./wal-push-command.js')).registerWalPushCommand] },
  { commands: ['wal-fetch', 'wal-prefetch'], load: async () => [(await import('./wal-fetch-command.js')).registerWalFetchCommand] },
  { commands: ['wal-verify'], load: async () => [(await import('./wal-verify-command.js')).registerWalVerifyCommand] },
  { commands: ['wal-log'], load: async () => [(await import('./wal-log-command.js')).registerWalLogCommand] },
  { commands: ['check-repo'], load: async () => [(await import('./check-repo-command.js')).registerCheckRepoCommand] },
  { commands: ['info'], load: async () => [(await import('./info-command.js')).registerInfoCommand] },
  { commands: ['backup'], load: async () => [(await import('./backup-command.js')).registerBackupCommand] },
  { commands: ['restore'], load: async () => [(await import('./restore-command.js')).registerRestoreCommand] },
  { commands: ['list'], load: async () => [(await import('./list-command.js')).registerListCommand] },
  { commands: ['show'], load: async () => [(await import('./show-command.js')).registerShowCommand] },
  { commands: ['expire', 'keep', 'delete'], load: async () => [(await import('./expire-commands.js')).registerExpireCommands] },
  { commands: ['copy'], load: async () => [(await import('./copy-command.js')).registerCopyCommand] },
  { commands: ['verify'], load: async () => [(await import('./verify-command.js')).registerVerifyCommand] },
  { commands: ['agent'], load: async () => [(await import('./agent-command.js')).registerAgentCommand] },
  { commands: ['receive'], load: async () => [(await import('./receive-command.js')).registerReceiveCommand] },
  { commands: ['setup'], load: async () => [(await import('./setup-command.js')).registerSetupCommand] },
  { commands: ['check'], load: async () => [(await import('./check-command.js')).registerCheckCommand] },
  { commands: ['clone', 'promote'], load: async () => [(await import('./clone-commands.js')).registerCloneCommands] },
  { commands: ['drill', 'drills'], load: async () => [(await import('./drill-commands.js')).registerDrillCommands] },
  { commands: ['metrics'], load: async () => [(await import('./metrics-command.js')).registerMetricsCommand] },
  { commands: ['sets'], load: async () => [(await import('./sets-commands.js')).registerSetsCommands] },
  { commands: ['slots'], load: async () => [(await import('./slots-commands.js')).registerSlotsCommands] },
];

/**
 * The command a command line runs: its first word that is neither an option nor the value of a
 * global option taking one (`--repo X`); undefined when there is none.
 */
export function commandOf(args: readonly string[], valueOptions: ReadonlySet<string>): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') return args[i + 1];
    if (!a.startsWith('-') || a === '-') return a;
    if (!a.includes('=') && valueOptions.has(a)) i++;
  }
  return undefined;
}

/** The global options that take a value (`--repo X`), for commandOf. */
function valueOptionsOf(program: Command): Set<string> {
  return new Set(program.options.filter((o) => o.required || o.optional).flatMap((o) => [o.long, o.short].filter((x): x is string => !!x)));
}

/**
 * The pgark program. With `argv` (process.argv), only the command group that argv names is
 * registered, unless it names none or one pgark does not have; without, every group.
 */
export async function buildProgram(argv?: readonly string[]): Promise<Command> {
  let usageExit: number = ExitCode.USAGE;
  const program = new Command('pgark');
  configureProgramHelp(program);
  program
    .description('PostgreSQL WAL archiving, backup and restore')
    .version(PGARK_VERSION, '-V, --version', 'print the pgark version');
  // Global options and storage driver settings: one list, shared with the lean wal-push/wal-fetch entry (option-specs.ts).
  for (const o of globalOptionSpecs()) {
    const option = new Option(o.flags, o.description);
    program.addOption(o.env === undefined ? option : option.env(o.env));
  }
  program
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    // A usage error is reported like every other error (reportFailure's line), once.
    .configureOutput({ writeErr: (s) => process.stderr.write(s), outputError: (s) => reportFailure(usageExit, s.replace(/^error: /, '').trimEnd()) });
  program
    .command('version')
    .description('print the pgark and Node.js versions')
    .option('--json', 'print as JSON')
    .action(async (opts: { json?: boolean }) => {
      // json/format.ts only here: the other commands load it with their own JSON output, if asked.
      if (opts.json) process.stdout.write(JSON.stringify((await import('../json/format.js')).withFormat('version', { pgark: PGARK_VERSION, node: process.version })) + '\n');
      else process.stdout.write(`pgark ${PGARK_VERSION} (node ${process.version})\n`);
    });
  const valueOptions = valueOptionsOf(program);
  const name = argv ? commandOf(argv.slice(2), valueOptions) : undefined;
  if (name === 'check') usageExit = CHECK_UNKNOWN; // a monitoring plugin's usage error is UNKNOWN (main)
  const only = name === 'version' ? [] : COMMAND_GROUPS.filter((g) => name !== undefined && g.commands.includes(name));
  for (const group of only.length > 0 || name === 'version' ? only : COMMAND_GROUPS) {
    for (const register of await group.load()) register(program);
  }
  for (const c of program.commands) c.exitOverride();
  // Every connection string (options whose value is <dsn> or <conninfo>) is refused with a
  // password before the command does anything: argv is visible in the process list.
  program.hook('preAction', (_program, action) => {
    // Log lines name the command: its path below the program joined by '-' (repo-create).
    const path: string[] = [];
    for (let c: Command | null = action; c && c !== program; c = c.parent) path.unshift(c.name());
    setLogCommand(path.join('-'));
    const values = action.opts() as Record<string, unknown>;
    for (const opt of action.options) {
      const v = values[opt.attributeName()];
      if (/<(dsn|conninfo)>/.test(opt.flags) && typeof v === 'string') assertNoPassword(v, opt.long ?? opt.flags);
    }
  });
  return program;
}

export async function main(argv: string[]): Promise<void> {
  const program = await buildProgram(argv);
  const first = commandOf(argv.slice(2), valueOptionsOf(program));
  // Until the command runs (preAction names its full path), errors name the command given, if pgark has it.
  if (first !== undefined && program.commands.some((c) => c.name() === first)) setLogCommand(first);
  try {
    await program.parseAsync(argv);
  } catch (err) {
    const code = reportError(err);
    if (!(err instanceof ExitWith) && code === ExitCode.USAGE && commandOf(argv.slice(2), valueOptionsOf(program)) === 'check') {
      // A monitoring plugin's usage error (bad option, a password in --dsn) is UNKNOWN (3), not CRITICAL (2); its first line says so on stdout.
      process.stdout.write(`PGARK UNKNOWN - usage: ${(err as Error).message.replace(/^error: /, '').replace(/\|/g, '/').replace(/[\r\n]+/g, ' ')}\n`);
      process.exitCode = CHECK_UNKNOWN;
      return;
    }
    // restore_command: a usage error (say, a misspelt option) must not read as "not archived".
    const walFetch = program.args[0] === 'wal-fetch' || argv.slice(2).includes('wal-fetch');
    process.exitCode = walFetch && code !== ExitCode.OK && !(err instanceof ExitWith) ? walFetchFatalCode(code) : code;
  }
}

function reportError(err: unknown): number {
  if (err instanceof CommanderError) {
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return ExitCode.OK;
    return ExitCode.USAGE; // reported by outputError
  }
  return reportActionError(err);
}
