/** The pgark command line. Command implementations are imported only when they run. */
import { Command, CommanderError, Option } from 'commander';
import { ExitCode, exitCodeOf } from '../common/errors.js';
import { log } from '../common/log.js';
import { DEFAULT_CONFIG_PATH, isDriverSetting, SETTINGS } from '../config/schema.js';
import { PGARK_VERSION } from '../version.js';
import { assertNoPassword } from '../pg/conninfo.js';
import { ExitWith, registerWalCommands, WAL_FETCH_FATAL_BASE } from './wal-commands.js';
import { registerBackupCommands, registerCatalogCommands, registerRestoreCommand } from './backup-commands.js';
import { registerAgentCommand } from './agent-commands.js';
import { registerReceiveCommand } from './receive-command.js';
import { registerOpsCommands } from './ops-commands.js';
import { registerDrillCommands } from './drill-commands.js';
import { registerMetricsCommand } from './metrics-command.js';
import { registerSetsCommands } from './sets-commands.js';
import { registerRepoCommands } from './repo-commands.js';

export function buildProgram(): Command {
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
    if (isDriverSetting(s.key)) program.addOption(new Option(`--${s.key} <value>`, s.description).env(s.env));
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
  registerRepoCommands(program);
  registerWalCommands(program);
  registerBackupCommands(program);
  registerRestoreCommand(program);
  registerCatalogCommands(program);
  registerAgentCommand(program);
  registerReceiveCommand(program);
  registerOpsCommands(program);
  registerDrillCommands(program);
  registerMetricsCommand(program);
  registerSetsCommands(program);
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
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    const code = reportError(err);
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
