/**
 * Which modules a pgark command loads (wal-call-modules.test.ts, command-modules.test.ts): the
 * command runs with a preload hook that records every file module (ESM and CommonJS) and, at
 * exit, every builtin the process loaded. Structural, not timed.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const BIN = join(resolve(import.meta.dirname, '../..'), 'bin/pgark.js');

export interface ModuleSet {
  files: string[];
  builtins: string[];
  status: number | null;
  stderr: string;
}

/** A recorder for `dir` (a private temporary directory); `run` names its output after `name`. */
export function moduleRecorder(dir: string): (name: string, args: string[], env?: Record<string, string>) => ModuleSet {
  const hook = join(dir, 'hook.mjs');
  writeFileSync(
    hook,
    `import { registerHooks } from 'node:module';
import { writeFileSync } from 'node:fs';
const files = new Set();
registerHooks({ load(url, context, next) { files.add(url); return next(url, context); } });
process.on('exit', () => writeFileSync(process.env.MODULES_OUT, JSON.stringify({ files: [...files], builtins: process.moduleLoadList.filter((m) => m.startsWith('NativeModule ')).map((m) => m.slice(13)) })));
`,
  );
  writeFileSync(join(dir, 'none.conf'), '');
  return (name, args, env = {}) => {
    const out = join(dir, `modules-${name}.json`);
    const r = spawnSync(process.execPath, ['--import', hook, BIN, ...args], { env: { ...process.env, ...env, MODULES_OUT: out, PGARK_CONFIG: join(dir, 'none.conf') }, encoding: 'utf8', timeout: 120_000 });
    const m = JSON.parse(readFileSync(out, 'utf8')) as { files: string[]; builtins: string[] };
    return { ...m, status: r.status, stderr: r.stderr };
  };
}
