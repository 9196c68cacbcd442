/**
 * The lean parser of a `pgark wal-push` / `pgark wal-fetch` command line (pure): archive_command
 * and restore_command start one process per WAL file, and commander with every option of the
 * program costs each call memory and start-up (bench/results/memory.md). It reads the options
 * option-specs.ts defines (the list commander is built from) and gives what commander's
 * optsWithGlobals() would. It accepts only the plain forms (`--name value`, `--name=value`,
 * switches, the operands the command takes, the environment variables of the global options);
 * for anything else (help, version, an unknown or misspelt option, a missing or extra operand,
 * `--`, a value starting with '-') it answers undefined and the full CLI parses the command line,
 * reporting errors with its messages and exit codes.
 */
import { globalOptionSpecs, WAL_FETCH_OPTIONS, WAL_PUSH_OPTIONS, type OptionSpec } from './option-specs.js';

export type WalCommand = 'wal-push' | 'wal-fetch';

export interface WalArgv {
  command: WalCommand;
  /** wal-push: [path]; wal-fetch: [name, destination]. */
  operands: string[];
  /** As commander's optsWithGlobals(): camelCase keys, a string per option with a value, true per switch. */
  options: Record<string, string | true>;
}

interface ParsedSpec {
  long: string;
  attribute: string;
  takesValue: boolean;
  env: string | undefined;
}

/** commander's attributeName(): `--push-ahead` -> `pushAhead`. */
const attributeOf = (long: string): string => long.slice(2).replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());

function parseSpec(o: OptionSpec): ParsedSpec {
  const m = /^(--[a-z0-9][a-z0-9-]*)( <[^>]+>)?$/.exec(o.flags);
  if (!m) throw new Error(`option spec '${o.flags}': only '--name' and '--name <value>' are supported`);
  return { long: m[1]!, attribute: attributeOf(m[1]!), takesValue: m[2] !== undefined, env: o.env };
}

const COMMANDS: Record<WalCommand, { options: readonly OptionSpec[]; operands: number }> = {
  'wal-push': { options: WAL_PUSH_OPTIONS, operands: 1 },
  'wal-fetch': { options: WAL_FETCH_OPTIONS, operands: 2 },
};

let globals: ParsedSpec[] | undefined;

/** `args`: process.argv without node and the script. */
export function parseWalArgv(args: readonly string[], env: NodeJS.ProcessEnv): WalArgv | undefined {
  globals ??= globalOptionSpecs().map(parseSpec);
  const byLong = new Map(globals.map((s) => [s.long, s]));
  const words: string[] = [];
  let command: WalCommand | undefined;
  const options: Record<string, string | true> = {};
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (!a.startsWith('-')) {
      if (command === undefined) {
        if (a !== 'wal-push' && a !== 'wal-fetch') return undefined;
        command = a;
        // Its own options are known from here on (commander: only after the command's name).
        for (const s of COMMANDS[command].options.map(parseSpec)) {
          if (byLong.has(s.long)) return undefined; // never: a command option shadowing a global one
          byLong.set(s.long, s);
        }
      } else {
        words.push(a);
      }
      continue;
    }
    const eq = a.indexOf('=');
    const spec = byLong.get(eq > 0 ? a.slice(0, eq) : a);
    if (spec === undefined) return undefined; // -h, -V, --help, --, an unknown option: the full CLI
    if (!spec.takesValue) {
      if (eq > 0) return undefined;
      options[spec.attribute] = true;
      continue;
    }
    const value = eq > 0 ? a.slice(eq + 1) : args[++i];
    // A missing value, or one that could be read as an option (commander's rules differ between
    // the program's and the command's options there): the full CLI decides.
    if (value === undefined || value.startsWith('-')) return undefined;
    options[spec.attribute] = value; // the last of a repeated option wins, as in commander
  }
  if (command === undefined || words.length !== COMMANDS[command].operands) return undefined;
  // commander's .env(): a global option not on the command line takes its variable's value, if set (empty too).
  for (const s of globals) {
    if (s.env !== undefined && options[s.attribute] === undefined && env[s.env] !== undefined) options[s.attribute] = env[s.env]!;
  }
  return { command, operands: words, options };
}
