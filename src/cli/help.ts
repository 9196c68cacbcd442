/** How `--help` looks: every command lists the global options; text wraps at the terminal width. */
import { Help, type Command, type Option } from 'commander';
import { isDriverSetting } from '../config/schema.js';

/** The storage driver options (--s3-*, --ssh-*, ...): global, but listed only by `pgark --help`. */
const isStorageOption = (o: Option): boolean => !!o.long && isDriverSetting(o.long.slice(2));

export const STORAGE_NOTE = 'Storage options (--storage-timeout, --ssh-*, --s3-*, --azure-*, --gcs-*) are global too: pgark --help lists them.';

/**
 * Set on the program before its commands are added (commander copies help settings to each new
 * command). Descriptions carry no hard line breaks (paragraphs only): commander wraps them at the
 * terminal's width (80 columns when not a terminal), down to 24 columns beside long option names.
 */
export function configureProgramHelp(program: Command): void {
  program.configureHelp({
    showGlobalOptions: true,
    minWidthToWrap: 24,
    visibleGlobalOptions(this: Help, cmd: Command): Option[] {
      return Help.prototype.visibleGlobalOptions.call(this, cmd).filter((o) => !isStorageOption(o) && o.long !== '--version');
    },
  });
  program.addHelpText('afterAll', ({ command }) => {
    if (command === program) return '';
    const help = command.createHelp();
    help.prepareContext({ helpWidth: process.stdout.isTTY ? process.stdout.columns : undefined });
    return '\n' + help.boxWrap(STORAGE_NOTE, help.helpWidth ?? 80) + '\n';
  });
}
