/**
 * The lean entry of `pgark wal-push` and `pgark wal-fetch` (bin/pgark.js): a command line the
 * lean parser (wal-argv.ts) takes runs the command's work (runWalPush / runWalFetch, the same
 * functions commander's actions call) without loading commander or any other command's modules;
 * any other command line goes to the full CLI (main.ts). Errors end the same way as in main():
 * one log line with the exit code, and wal-fetch's codes above 125 for anything but "not archived".
 */
import { ExitCode } from '../common/errors.js';
import { setLogCommand } from '../common/log.js';
import { settingsFromOptions } from './context.js';
import { ExitWith, reportActionError, walFetchFatalCode } from './exit.js';
import { parseWalArgv } from './wal-argv.js';

export async function walCall(argv: string[]): Promise<void> {
  const parsed = parseWalArgv(argv.slice(2), process.env);
  if (parsed === undefined) {
    await (await import('./main.js')).main(argv);
    return;
  }
  setLogCommand(parsed.command);
  const settingsOf = () => settingsFromOptions(parsed.options);
  try {
    if (parsed.command === 'wal-push') {
      const { runWalPush } = await import('./wal-push-command.js');
      await runWalPush(parsed.operands[0]!, { json: parsed.options.json === true }, settingsOf);
    } else {
      const { runWalFetch } = await import('./wal-fetch-command.js');
      await runWalFetch(parsed.operands[0]!, parsed.operands[1]!, settingsOf);
    }
  } catch (err) {
    const code = reportActionError(err);
    // restore_command: only wal-fetch's own "not archived" (an ExitWith) may exit 1 or below 126.
    process.exitCode = parsed.command === 'wal-fetch' && code !== ExitCode.OK && !(err instanceof ExitWith) ? walFetchFatalCode(code) : code;
  }
}
