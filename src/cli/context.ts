/** Turn parsed CLI options into settings; print JSON; stop on signals. */
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { log, setLogDestinations } from '../common/log.js';
import { resolveSettings, type FlagValues, type Settings } from '../config/resolve.js';
import { SETTINGS } from '../config/schema.js';
// How a repository is opened lives in repo/ (the worker threads open it too); the CLI commands
// keep importing it from here.
export { openRepository, withRepository, type OpenRepositoryOptions } from '../repo/open-repository.js';

export function settingsFrom(cmd: Command): Settings {
  return settingsFromOptions(cmd.optsWithGlobals() as Record<string, unknown>);
}

/** Settings from parsed options as commander's optsWithGlobals() gives them (camelCase keys); also the lean wal-push/wal-fetch entry's (wal-call.ts). */
export function settingsFromOptions(o: Record<string, unknown>): Settings {
  const flags: FlagValues = {};
  for (const s of SETTINGS) {
    const camel = s.key.replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());
    const v = o[camel];
    if (v !== undefined) flags[s.key] = String(v);
  }
  if (typeof o.config === 'string') flags.config = o.config;
  if (typeof o.configIncludePath === 'string') flags['config-include-path'] = o.configIncludePath;
  const settings = resolveSettings(flags);
  setLogDestinations({ level: settings.logLevel, stderrLevel: settings.logLevelStderr, file: settings.logFile === undefined ? undefined : resolve(settings.logFile) });
  return settings;
}

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 2) + '\n');
}

interface StopSignalsModule {
  onStopSignal(proc: NodeJS.Process, stop: (sig: NodeJS.Signals) => void): void;
}

/** src/cli/stop-signals.cjs (CommonJS: bin/pgark.js holds a stop signal with it before the CLI loads). */
export const stopSignals = (): StopSignalsModule => createRequire(import.meta.url)('./stop-signals.cjs') as StopSignalsModule;

/**
 * A signal that the first SIGTERM or SIGINT aborts after logging `what(signal)` (long-running
 * commands stop cleanly), also one that arrived while the command loaded (held by bin/pgark.js).
 * A second one ends the process.
 */
export function abortOnSignals(what: (sig: NodeJS.Signals) => string): AbortSignal {
  const ac = new AbortController();
  const stop = (sig: NodeJS.Signals) => {
    log.info(what(sig));
    ac.abort();
  };
  stopSignals().onStopSignal(process, stop);
  return ac.signal;
}
