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
