/**
 * How pgark names itself in PostgreSQL's configuration (archive_command, restore_command written
 * by setup, restore, clone and drill). An installed pgark is started through its launcher
 * (bin/pgark: the .deb's /usr/bin/pgark, the tarball's bin/pgark, or a symlink to either),
 * which exports PGARK_LAUNCHER naming itself as it was started; that stable name is written, so
 * an upgrade that replaces the files behind it keeps every cluster archiving. Started any other
 * way (`node bin/pgark.js` from a checkout, npm's bin link), the command is this Node executable
 * and this bin/pgark.js, as before.
 *
 * PGARK_LAUNCHER is trusted only when the launcher it names resolves (through symlinks) to the
 * directory of this very bin/pgark.js: a value inherited from another installation (say, by a
 * server that an installed pgark started) is ignored.
 */
import { existsSync, realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InvalidInputError } from './errors.js';
import { escapeForMessage } from './message-text.js';

/** The program part of a pgark command: an installed launcher, or Node plus the entry script. */
export type PgarkProgram = { launcher: string } | { node: string; script: string };

export interface SelfCommandFacts {
  /** PGARK_LAUNCHER from the environment. */
  launcher: string | undefined;
  /** The real path of the pgark.js next to the file the launcher resolves to (undefined: none). */
  launcherScript: string | undefined;
  /** The real path of this process's bin/pgark.js. */
  script: string;
  /** process.execPath. */
  execPath: string;
}

/** Pure: the launcher when it belongs to this installation, else node + script. */
export function chooseSelfCommand(f: SelfCommandFacts): PgarkProgram {
  if (f.launcher !== undefined && f.launcher.startsWith('/') && f.launcherScript !== undefined && f.launcherScript === f.script) {
    return { launcher: f.launcher };
  }
  return { node: f.execPath, script: f.script };
}

/** bin/ sits two levels above src/common (tests) and three above dist/src/common (the CLI). */
function ownScript(): string {
  for (const rel of ['../../bin/pgark.js', '../../../bin/pgark.js']) {
    const path = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(path)) return realOrSelf(path);
  }
  throw new Error('bin/pgark.js not found next to the pgark sources');
}

function realOrSelf(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

function scriptNextTo(launcher: string | undefined): string | undefined {
  if (launcher === undefined || !launcher.startsWith('/')) return undefined;
  try {
    return realpathSync(join(dirname(realpathSync(launcher)), 'pgark.js'));
  } catch {
    return undefined;
  }
}

/** The program pgark writes into PostgreSQL's configuration to run itself. */
export function selfCommand(env: NodeJS.ProcessEnv = process.env): PgarkProgram {
  const launcher = env.PGARK_LAUNCHER === '' ? undefined : env.PGARK_LAUNCHER;
  return chooseSelfCommand({ launcher, launcherScript: scriptNextTo(launcher), script: ownScript(), execPath: process.execPath });
}

/** A NUL, carriage return or newline: PostgreSQL's configuration cannot carry them. */
const UNSAFE_CHARS = /[\0\n\r]/;

/** POSIX sh single-quoting: `'...'`, an embedded `'` written as `'\''`. */
function shellQuote(v: string): string {
  return `'${v.replace(/'/g, "'\\''")}'`;
}

/** restore_command expands %f, %p, %r and %%: a literal % must be written %%. */
function percentEscape(v: string): string {
  return v.replace(/%/g, '%%');
}

const URL_RE = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//;

/** The program (an installed launcher, or node + script) and its settings. */
export type PgarkCommandParts = PgarkProgram & {
  repo: string;
  stanza: string;
  config?: string;
  extra?: string[];
};

/**
 * A command PostgreSQL runs through /bin/sh in the data directory (archive_command,
 * restore_command): `'<launcher>' <subcommand> ...` for an installed pgark (/usr/bin/pgark), else
 * `'<node>' '<script>' <subcommand> ...`, then `<placeholders> --repo '<repo>' --stanza
 * '<stanza>' [--config '<config>'] ['<extra>'...]`. Every argument is shell-quoted, then each %
 * doubled; the placeholders (%f, %p) stay bare for PostgreSQL. The launcher, script, config and
 * a repository path must be absolute (the working directory is PGDATA).
 */
export function buildPgarkCommand(setting: 'archive_command' | 'restore_command', subcommand: string, placeholders: string[], o: PgarkCommandParts): string {
  const check = (what: string, v: string, absolute: boolean) => {
    if (v === '') throw new InvalidInputError(`invalid ${what} for ${setting}: empty`);
    if (UNSAFE_CHARS.test(v)) throw new InvalidInputError(`invalid ${what} '${escapeForMessage(v)}' for ${setting}: contains a NUL, carriage return or newline`);
    if (absolute && !v.startsWith('/')) {
      throw new InvalidInputError(`invalid ${what} '${escapeForMessage(v)}' for ${setting}: must be an absolute path (${setting} runs in the data directory)`);
    }
  };
  if ('launcher' in o) check('pgark command', o.launcher, true);
  else {
    check('node executable', o.node, o.node.includes('/'));
    check('pgark script', o.script, true);
  }
  check('--repo', o.repo, !URL_RE.test(o.repo));
  check('--stanza', o.stanza, false);
  if (o.config !== undefined) check('--config', o.config, true);
  for (const e of o.extra ?? []) check(`${setting} argument`, e, false);

  const arg = (v: string) => percentEscape(shellQuote(v));
  const program = 'launcher' in o ? [arg(o.launcher)] : [arg(o.node), arg(o.script)];
  const parts = [...program, subcommand, ...placeholders, '--repo', arg(o.repo), '--stanza', arg(o.stanza)];
  if (o.config !== undefined) parts.push('--config', arg(o.config));
  for (const e of o.extra ?? []) parts.push(arg(e));
  return parts.join(' ');
}

/** The restore_command value: pgark wal-fetch %f %p for this repository and stanza. */
export function buildRestoreCommand(o: PgarkCommandParts): string {
  return buildPgarkCommand('restore_command', 'wal-fetch', ['%f', '%p'], o);
}
