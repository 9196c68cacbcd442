/**
 * Old flag spellings kept for one release after a rename (README.md "Renamed flags" lists them): hidden
 * from --help, they still work, and using one prints a deprecation warning on stderr.
 */
import { Option, type Command } from 'commander';
import { ConfigError } from '../common/errors.js';
import { log } from '../common/log.js';

/**
 * Add the hidden option `oldFlags` (e.g. '--name <sub>') to `cmd`, meaning `newFlag`. Before the
 * action runs, its value becomes the new option's (or, with `translate`, the option values it
 * returns, by attribute name); giving both spellings with different values is a usage error.
 */
export function deprecatedAlias(
  cmd: Command,
  oldFlags: string,
  newFlag: string,
  translate?: (value: string) => Record<string, unknown> | Promise<Record<string, unknown>>,
): Command {
  const old = new Option(oldFlags, `deprecated spelling of ${newFlag}`).hideHelp();
  cmd.addOption(old);
  const oldKey = old.attributeName();
  const newOption = cmd.options.find((o) => o.long === newFlag);
  cmd.hook('preAction', async (hooked) => {
    const value = hooked.getOptionValue(oldKey) as string | undefined;
    if (value === undefined) return;
    log.warn(`${old.long} is deprecated and will be removed in the next release: use ${newFlag}`);
    const values = translate ? await translate(value) : { [newOption!.attributeName()]: value };
    for (const [key, v] of Object.entries(values)) {
      const current: unknown = hooked.getOptionValue(key);
      if (current !== undefined && hooked.getOptionValueSource(key) !== 'default' && current !== v) {
        throw new ConfigError(`${old.long} (deprecated) and ${newFlag} both given: use ${newFlag} only`);
      }
      hooked.setOptionValueWithSource(key, v, 'cli');
    }
    hooked.setOptionValue(oldKey, undefined);
  });
  return cmd;
}
