/** The pgark command line. Command implementations are imported only when they run. */
import { Command, CommanderError, Option } from 'commander';
import { ExitCode, exitCodeOf } from '../common/errors.js';
import { log } from '../common/log.js';
import { DEFAULT_CONFIG_PATH, isCipherSetting, isDriverSetting, SETTINGS } from '../config/schema.js';
import { PGARK_VERSION } from '../version.js';
import { CHECK_UNKNOWN, ExitWith, WAL_FETCH_FATAL_BASE } from './exit.js';
import { assertNoPassword } from '../pg/conninfo.js';

type Register = (program: Command) => void;

/**
 * The command groups, in help order: the commands each module registers, and the module. A call
 * loads and builds only the group of its command (start-up cost: archive_command starts one
 * process per segment); help, an unknown command or none builds them all.
 */
export const COMMAND_GROUPS: ReadonlyArray<{ commands: readonly string[]; load: () => Promise<Register[]> }> = [
  { commands: ['repo'], load: async () => [(await import('./repo-commands.js')).registerRepoCommands] },
  { commands: ['key'], load: async () => [(await import('./key-commands.js')).registerKeyCommands] },
  { commands: ['wal-push', 'wal-fetch', 'wal-push-ahead', 'wal-prefetch', 'wal-verify', 'wal-log', 'check-repo', 'info'], load: async () => [(await import('./wal-commands.js')).registerWalCommands] },
  {
    commands: ['backup', 'restore', 'list', 'show', 'expire', 'keep', 'delete', 'verify'],
    load: async () => {
      const m = await import('./backup-commands.js');
      return [m.registerBackupCommands, m.registerRestoreCommand, m.registerCatalogCommands];
    },
  },
  { commands: ['agent'], load: async () => [(await import('./agent-commands.js')).registerAgentCommand] },
  { commands: ['receive'], load: async () => [(await import('./receive-command.js')).registerReceiveCommand] },
  { commands: ['setup', 'check'], load: async () => [(await import('./ops-commands.js')).registerOpsCommands] },
  { commands: ['clone', 'promote', 'drill', 'drills'], load: async () => [(await import('./drill-commands.js')).registerDrillCommands] },
  { commands: ['metrics'], load: async () => [(await import('./metrics-command.js')).registerMetricsCommand] },
  { commands: ['sets', 'slots'], load: async () => [(await import('./sets-commands.js')).registerSetsCommands] },
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
  const program = new Command('pgark')
    .description('PostgreSQL WAL archiving, backup and restore')
    .version(PGARK_VERSION, '-V, --version', 'print the pgark version')
    .addOption(new Option('--repo <url>', 'repository: absolute path, file:///path, ssh://, s3://, azure:// or gs:// URL').env('PGARK_REPO'))
    .addOption(new Option('--stanza <name>', 'stanza (cluster) name inside the repository (default "main")').env('PGARK_STANZA'))
    .addOption(new Option('--config <file>', `config file (default ${DEFAULT_CONFIG_PATH} when it exists)`).env('PGARK_CONFIG'))
    .addOption(new Option('--pgdata <dir>', 'data directory').env('PGDATA'))
    .addOption(new Option('--log-level <level>', 'off, error, warn, info or debug (default warn)').env('PGARK_LOG_LEVEL'));
  // Storage driver settings (docs/storage/): flags, environment or config file.
  for (const s of SETTINGS) {
    if (isDriverSetting(s.key) || isCipherSetting(s.key)) program.addOption(new Option(`--${s.key} <value>`, s.description).env(s.env));
  }
  program
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  program
    .command('version')
    .description('print the pgark and Node.js versions')
    .option('--json', 'print as JSON')
    .action((opts: { json?: boolean }) => {
      if (opts.json) process.stdout.write(JSON.stringify({ pgark: PGARK_VERSION, node: process.version }) + '\n');
      else process.stdout.write(`pgark ${PGARK_VERSION} (node ${process.version})\n`);
    });
  const valueOptions = valueOptionsOf(program);
  const name = argv ? commandOf(argv.slice(2), valueOptions) : undefined;
  const only = name === 'version' ? [] : COMMAND_GROUPS.filter((g) => name !== undefined && g.commands.includes(name));
  for (const group of only.length > 0 || name === 'version' ? only : COMMAND_GROUPS) {
    for (const register of await group.load()) register(program);
  }
  for (const c of program.commands) c.exitOverride();
  // Every connection string (options whose value is <dsn> or <conninfo>) is refused with a
  // password before the command does anything: argv is visible in the process list.
  program.hook('preAction', (_program, action) => {
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
    process.exitCode = walFetch && code !== ExitCode.OK && code <= 125 && !(err instanceof ExitWith) ? WAL_FETCH_FATAL_BASE + code : code;
  }
}

function reportError(err: unknown): number {
  if (err instanceof ExitWith) return err.exitCode;
  if (err instanceof CommanderError) {
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return ExitCode.OK;
    return ExitCode.USAGE;
  }
  const code = exitCodeOf(err);
  const msg = err instanceof Error ? err.message : String(err);
  if (code === ExitCode.INTERNAL) log.error(`internal error: ${err instanceof Error && err.stack ? err.stack : msg}`);
  else process.stderr.write(`pgark: ERROR [${code}]: ${msg}\n`);
  return code;
}
