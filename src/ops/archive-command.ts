/**
 * archive_command / restore_command as pgark reads them (pure): does the command run pgark
 * wal-push (wal-fetch), and for which repository and stanza? Used by `pgark setup` (is the
 * current value pgark's own, or something it must not replace silently?) and `pgark check`
 * (does archiving really go to this stanza?).
 *
 * PostgreSQL first replaces %p, %f, %r and %% in the value, then runs it with /bin/sh. The
 * parser undoes the %-escapes (keeping the placeholders), splits shell words (shell-words.ts),
 * finds the simple command that runs pgark (`pgark`, `node .../pgark.js`, `npx pgark`, the
 * shell clients `pgark-wal-push` / `pgark-wal-fetch`, behind env assignments and `env`, `exec`,
 * `command`, `nohup`, `nice`, `timeout`), and reads --repo, --stanza and --config (also as
 * --repo=...) and PGARK_REPO / PGARK_STANZA / PGARK_CONFIG assignments. pgark resolves
 * flag > environment > config file; the server's own environment is invisible from here, so a
 * command without --repo is "cannot tell", never a guess.
 */
import { posix } from 'node:path';
import { pathToFileURL } from 'node:url';
import { buildPgarkCommand, type PgarkCommandParts } from '../common/self-command.js';
import { escapeForMessage } from '../wal/segment-name.js';
import { parseShell, ShellSyntaxError, type ShellWord } from './shell-words.js';

/** Placeholders as they appear in parsed words (private-use characters, never in real text). */
export const PLACEHOLDER = { p: '\uE000', f: '\uE001', r: '\uE002' } as const;

/** Undo PostgreSQL's %-escapes: %% -> %, %p/%f/%r -> placeholders; anything else stays. */
export function expandPercent(value: string): string {
  let out = '';
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!;
    const n = value[i + 1];
    if (c === '%' && n === '%') {
      out += '%';
      i++;
    } else if (c === '%' && (n === 'p' || n === 'f' || n === 'r')) {
      out += PLACEHOLDER[n];
      i++;
    } else out += c;
  }
  return out;
}

/** Words back in the form the user wrote them (placeholders as %p, %f, %r). */
export function showWord(text: string): string {
  return text.replace(/\uE000/g, '%p').replace(/\uE001/g, '%f').replace(/\uE002/g, '%r');
}

/**
 * A command as it may be shown in messages: values of assignments and options whose names say
 * secret (KEY, SECRET, TOKEN, PASSWORD, CREDENTIAL...), `password=` in connection strings and
 * URL passwords become `***`. A foreign archive_command may carry credentials inline.
 */
export function redactCommand(value: string): string {
  return value
    .replace(/(\b[A-Za-z0-9_-]*(?:secret|passw(?:or)?d|token|key|credential|auth)[A-Za-z0-9_-]*(?:=|\s+))('[^']*'|"[^"]*"|\S+)/gi, (_m, name: string) => `${name}***`)
    .replace(/(:\/\/[^:/@\s]*:)[^@\s]*@/g, '$1***@');
}

export type PgarkClient = 'pgark' | 'node' | 'npx' | 'pgark-wal-push' | 'pgark-wal-fetch';

export interface FlagValue {
  value: string;
  /** Where it came from: a flag on the command line or an assignment in front of it. */
  from: 'flag' | 'env';
  /** The shell expands it at run time. */
  dynamic: boolean;
}

export interface ParsedCommand {
  /** 'empty': nothing set; 'other': no pgark in it; 'pgark': a simple command running pgark; 'unparsable': bad quoting. */
  kind: 'empty' | 'other' | 'pgark' | 'unparsable';
  /** Why it could not be parsed (kind 'unparsable'). */
  problem?: string;
  client?: PgarkClient;
  /** The pgark subcommand ('wal-push', 'wal-fetch', ...), implied by the shell clients. */
  subcommand?: string;
  /** Arguments after the subcommand that are neither options nor option values (placeholders kept). */
  positionals: string[];
  repo?: FlagValue;
  stanza?: FlagValue;
  config?: FlagValue;
  /** `env -i`: the server's environment does not reach pgark. */
  envCleared: boolean;
  /** Words in front of pgark that are not assignments, known wrappers or node/npx (e.g. `chpst -u x`). */
  unknownPrefix: string[];
  /** Other simple commands, pipes, `&&`, `&` around the pgark command. */
  compound: boolean;
}

const PGARK_NAMES: Record<string, PgarkClient> = {
  pgark: 'pgark',
  'pgark.js': 'pgark',
  'pgark.cjs': 'pgark',
  'pgark.mjs': 'pgark',
  'pgark-wal-push': 'pgark-wal-push',
  'pgark-wal-fetch': 'pgark-wal-fetch',
};

/** Options of pgark that take no value; every other long option takes one. */
const BOOLEAN_OPTIONS = new Set(['--json', '--help', '-h', '--version', '-V']);
const ASSIGNMENT = /^([A-Za-z_][A-Za-z0-9_]*)=/;
const NODE_VALUE_OPTIONS = new Set(['-r', '--require', '--import', '--loader', '--experimental-loader', '--env-file', '-p', '--package']);

function basename(w: string): string {
  return w.slice(w.lastIndexOf('/') + 1);
}

function isNode(w: string): boolean {
  return /^node(js)?\d*$/.test(basename(w));
}

function isAssignment(w: ShellWord): boolean {
  const m = ASSIGNMENT.exec(w.text);
  return !!m && m[0].length <= w.quotedFrom;
}

/**
 * Walk the words in front of the program: assignments, the wrappers pgark knows and an
 * interpreter (node, npx). Returns where the program word is, the environment assignments
 * and the interpreter.
 */
function readPrefix(words: ShellWord[]): { at: number; env: Map<string, ShellWord>; envCleared: boolean; client?: PgarkClient } {
  const env = new Map<string, ShellWord>();
  let envCleared = false;
  let client: PgarkClient | undefined;
  const assign = (w: ShellWord) => env.set(ASSIGNMENT.exec(w.text)![1]!, { ...w, text: w.text.slice(w.text.indexOf('=') + 1) });
  let i = 0;
  while (i < words.length && isAssignment(words[i]!)) assign(words[i++]!);
  while (i < words.length) {
    const w = words[i]!.text;
    const name = basename(w);
    if (name === 'exec' || name === 'command' || name === 'nohup') {
      i++;
      continue;
    }
    if (name === 'env') {
      i++;
      while (i < words.length) {
        const a = words[i]!;
        if (a.text === '-i' || a.text === '--ignore-environment' || a.text === '-') envCleared = true;
        else if (a.text === '-u' || a.text === '--unset') i++;
        else if (a.text.startsWith('-')) {
          // other env options take no value that matters here
        } else if (ASSIGNMENT.test(a.text)) assign(a);
        else break;
        i++;
      }
      continue;
    }
    if (name === 'nice' || name === 'ionice' || name === 'timeout') {
      i++;
      while (i < words.length && words[i]!.text.startsWith('-')) {
        const o = words[i]!.text;
        i++;
        // `nice -n 10`, `ionice -c 2 -n 7`, `timeout -s KILL 60`: these options take a value.
        if (/^-[ncsk]$/.test(o) && i < words.length) i++;
      }
      if (name === 'timeout' && i < words.length) i++; // the duration
      continue;
    }
    if (isNode(w) || name === 'npx') {
      client = name === 'npx' ? 'npx' : 'node';
      i++;
      while (i < words.length && words[i]!.text.startsWith('-')) {
        // `node --require x`, `npx --package x`: options whose value is the next word.
        i += NODE_VALUE_OPTIONS.has(words[i]!.text) ? 2 : 1;
      }
      break;
    }
    break;
  }
  return { at: i, env, envCleared, ...(client ? { client } : {}) };
}

/** Index of the word after `from` that runs pgark behind a command pgark does not know, or -1. */
function findWrappedPgark(words: ShellWord[], from: number): number {
  for (let j = from; j < words.length; j++) {
    const w = words[j]!;
    const self = w.dynamic ? undefined : PGARK_NAMES[basename(w.text)];
    if (self === undefined) continue;
    if (self !== 'pgark') return j;
    // A bare 'pgark' word (say, a path ending in /pgark) counts only when a subcommand follows.
    const next = words.slice(j + 1).find((x) => !x.text.startsWith('-'));
    if (next && (next.text === 'wal-push' || next.text === 'wal-fetch')) return j;
  }
  return -1;
}

/** Parse an archive_command or restore_command value as PostgreSQL stores it. */
export function parseArchiveCommand(value: string): ParsedCommand {
  const base: ParsedCommand = { kind: 'other', positionals: [], envCleared: false, unknownPrefix: [], compound: false };
  if (value.trim() === '') return { ...base, kind: 'empty' };
  let shell;
  try {
    shell = parseShell(expandPercent(value));
  } catch (err) {
    if (err instanceof ShellSyntaxError) return { ...base, kind: 'unparsable', problem: err.message };
    throw err;
  }
  if (shell.commands.length === 0) return { ...base, kind: 'empty' };
  const compound = shell.commands.length > 1 || shell.operators.length > 0;
  for (const cmd of shell.commands) {
    const prefix = readPrefix(cmd.words);
    const program = cmd.words[prefix.at];
    let at = program && !program.dynamic && PGARK_NAMES[basename(program.text)] !== undefined ? prefix.at : -1;
    let unknownPrefix: string[] = [];
    if (at < 0) {
      at = findWrappedPgark(cmd.words, prefix.at);
      if (at < 0) continue;
      unknownPrefix = cmd.words.slice(prefix.at, at).map((w) => showWord(w.text));
    }
    const self = PGARK_NAMES[basename(cmd.words[at]!.text)]!;
    const client: PgarkClient = self === 'pgark' ? (prefix.client ?? 'pgark') : self;
    const out: ParsedCommand = { ...base, kind: 'pgark', client, envCleared: prefix.envCleared, unknownPrefix, compound };
    if (self === 'pgark-wal-push') out.subcommand = 'wal-push';
    if (self === 'pgark-wal-fetch') out.subcommand = 'wal-fetch';
    const flags = new Map<string, ShellWord>();
    const rest = cmd.words.slice(at + 1);
    for (let i = 0; i < rest.length; i++) {
      const w = rest[i]!;
      if (w.text.startsWith('-') && w.text.length > 1) {
        const eq = w.text.indexOf('=');
        if (w.text.startsWith('--') && eq > 0) {
          flags.set(w.text.slice(0, eq), { ...w, text: w.text.slice(eq + 1) });
        } else if (!BOOLEAN_OPTIONS.has(w.text) && i + 1 < rest.length) {
          flags.set(w.text, rest[i + 1]!);
          i++;
        }
        continue;
      }
      if (out.subcommand === undefined) out.subcommand = w.text;
      else out.positionals.push(w.text);
    }
    const pick = (flag: string, envName: string): FlagValue | undefined => {
      const f = flags.get(flag);
      if (f) return { value: f.text, from: 'flag', dynamic: f.dynamic };
      const e = prefix.env.get(envName);
      if (e) return { value: e.text, from: 'env', dynamic: e.dynamic };
      return undefined;
    };
    const repo = pick('--repo', 'PGARK_REPO');
    const stanza = pick('--stanza', 'PGARK_STANZA');
    const config = pick('--config', 'PGARK_CONFIG');
    if (repo) out.repo = repo;
    if (stanza) out.stanza = stanza;
    if (config) out.config = config;
    return out;
  }
  return { ...base, compound };
}

/** A repository location in one canonical form: `/a/b`, `/a/b/` and `file:///a/b` are the same. */
export function repoIdentity(location: string): string {
  let url: URL;
  try {
    url = location.startsWith('/') ? pathToFileURL(posix.normalize(location)) : new URL(location);
  } catch {
    return location;
  }
  const path = url.pathname.replace(/\/{2,}/g, '/').replace(/(.)\/+$/, '$1');
  // Scheme and host (bucket, account, server) compare case-insensitively; the path does not.
  return `${url.protocol.toLowerCase()}//${url.host.toLowerCase()}${path}${url.search}`;
}

export function sameRepository(a: string, b: string): boolean {
  return repoIdentity(a) === repoIdentity(b);
}

export interface CommandTarget {
  repo: string;
  stanza: string;
}

export interface Classification {
  verdict: 'ours' | 'foreign' | 'unknown';
  /** One sentence: why. */
  reason: string;
}

/** What the config file the command would read says (read by the caller), for messages. */
export interface ConfigHint {
  path: string;
  repo?: string;
}

/**
 * Is `value` (an archive_command when `subcommand` is 'wal-push', a restore_command for
 * 'wal-fetch') pgark for exactly this repository and stanza?
 * - 'ours': pgark `subcommand` with %p (and %f), this repository, this stanza;
 * - 'foreign': not pgark, another subcommand, another repository or stanza, or the
 *   placeholders missing;
 * - 'unknown': pgark, but the repository (or a non-default stanza) is left to the server's
 *   environment or config file, comes from a shell expansion, or the command is wrapped in
 *   shell constructs pgark does not interpret.
 */
export function classifyCommand(value: string, subcommand: 'wal-push' | 'wal-fetch', target: CommandTarget, hint?: ConfigHint): Classification {
  const c = classify(value, subcommand, target, hint);
  return { ...c, reason: redactCommand(c.reason) };
}

function classify(value: string, subcommand: 'wal-push' | 'wal-fetch', target: CommandTarget, hint?: ConfigHint): Classification {
  const setting = subcommand === 'wal-push' ? 'archive_command' : 'restore_command';
  const p = parseArchiveCommand(value);
  const shown = `'${escapeForMessage(redactCommand(value))}'`;
  if (p.kind === 'empty') return { verdict: 'foreign', reason: `${setting} is empty` };
  if (p.kind === 'unparsable') return { verdict: 'foreign', reason: `${setting} ${shown} is not a valid shell command (${p.problem})` };
  if (p.kind === 'other') return { verdict: 'foreign', reason: `${setting} ${shown} does not run pgark` };
  if (p.subcommand !== subcommand) {
    return { verdict: 'foreign', reason: `${setting} runs 'pgark ${showWord(p.subcommand ?? '')}', not 'pgark ${subcommand}'` };
  }
  const need = subcommand === 'wal-push' ? [PLACEHOLDER.p] : [PLACEHOLDER.f, PLACEHOLDER.p];
  if (need.some((x) => !p.positionals.includes(x))) {
    return { verdict: 'foreign', reason: `${setting} runs pgark ${subcommand} without ${subcommand === 'wal-push' ? '%p' : '%f %p'}: PostgreSQL's file never reaches it` };
  }
  if (p.repo && !p.repo.dynamic && !sameRepository(p.repo.value, target.repo)) {
    return { verdict: 'foreign', reason: `${setting} ${subcommand === 'wal-push' ? 'archives to' : 'reads from'} repository '${p.repo.value}', not '${target.repo}'` };
  }
  if (p.stanza && !p.stanza.dynamic && p.stanza.value !== target.stanza) {
    return { verdict: 'foreign', reason: `${setting} uses stanza '${p.stanza.value}', not '${target.stanza}'` };
  }
  if (p.unknownPrefix.length > 0) {
    return { verdict: 'unknown', reason: `cannot tell: ${setting} runs pgark through '${p.unknownPrefix.join(' ')}', which pgark does not interpret` };
  }
  if (p.compound) {
    return { verdict: 'unknown', reason: `cannot tell: ${setting} ${shown} combines pgark with other shell commands or operators; their exit status decides` };
  }
  if (p.repo?.dynamic || p.stanza?.dynamic) {
    return { verdict: 'unknown', reason: `cannot tell: ${setting} takes its ${p.repo?.dynamic ? 'repository' : 'stanza'} from a shell expansion ('${showWord(p.repo?.dynamic ? p.repo.value : p.stanza!.value)}')` };
  }
  if (!p.repo) {
    const configPath = p.config && !p.config.dynamic ? p.config.value : hint?.path;
    const file = hint && configPath === hint.path
      ? hint.repo !== undefined ? `; the config file ${hint.path} gives '${hint.repo}'` : `; the config file ${hint.path} sets none`
      : '';
    const env = p.envCleared ? '' : 'PGARK_REPO in the server\'s environment or ';
    return { verdict: 'unknown', reason: `cannot tell: ${setting} names no repository (--repo), so ${env}the config file decides${file}` };
  }
  if (!p.stanza && target.stanza !== 'main') {
    return { verdict: 'unknown', reason: `cannot tell: ${setting} names no stanza (--stanza): it uses 'main' unless the server's environment sets PGARK_STANZA` };
  }
  return { verdict: 'ours', reason: `${setting} runs pgark ${subcommand} for repository '${p.repo.value}', stanza '${p.stanza?.value ?? 'main'}'` };
}

// ---------------------------------------------------------------------------
// Building the command
// ---------------------------------------------------------------------------

/** The archive_command value: pgark wal-push %p for this repository and stanza (as buildRestoreCommand). */
export function buildArchiveCommand(o: PgarkCommandParts): string {
  return buildPgarkCommand('archive_command', 'wal-push', ['%p'], o);
}
