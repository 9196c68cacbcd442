// What a full-path wal-push / wal-fetch loads (issue 17 item 4: peak RSS <= 64 MiB): every
// module costs start-up and memory (bench/results/memory.md), so a one-file call on a file
// system repository must not load the cloud SDKs, pg, or the builtins only workers and storage
// statistics need. Structural, not timed: the set of modules is recorded by a preload hook.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fakeSegment } from '../helpers/wal-bytes.js';

const ROOT = resolve(import.meta.dirname, '../..');
const BIN = join(ROOT, 'bin/pgark.js');
const dir = mkdtempSync(join(tmpdir(), 'pgark-wal-modules-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Records every file module (ESM and CommonJS) and, at exit, every builtin the process loaded.
const HOOK = join(dir, 'hook.mjs');
writeFileSync(
  HOOK,
  `import { registerHooks } from 'node:module';
import { writeFileSync } from 'node:fs';
const files = new Set();
registerHooks({ load(url, context, next) { files.add(url); return next(url, context); } });
process.on('exit', () => writeFileSync(process.env.MODULES_OUT, JSON.stringify({ files: [...files], builtins: process.moduleLoadList.filter((m) => m.startsWith('NativeModule ')).map((m) => m.slice(13)) })));
`,
);

function loaded(args: string[]): { files: string[]; builtins: string[] } {
  const out = join(dir, `modules-${args[0]}.json`);
  const r = spawnSync(process.execPath, ['--import', HOOK, BIN, ...args], { env: { ...process.env, MODULES_OUT: out, PGARK_CONFIG: join(dir, 'none.conf') }, encoding: 'utf8', timeout: 120_000 });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(readFileSync(out, 'utf8')) as { files: string[]; builtins: string[] };
}

const FORBIDDEN_PACKAGES = /\/node_modules\/(@aws-sdk|@smithy|@azure|@google-cloud|google-auth-library|gaxios|pg|pg-protocol|ssh2|ajv)\//;
// child_process (and with it net, dgram) still comes with commander, which loads it for
// executable subcommands pgark does not have: a call parsed without commander would drop it too.
const FORBIDDEN_BUILTINS = ['worker_threads', 'http', 'https', 'http2', 'tls', 'zlib'];

describe('modules of a full-path wal-push and wal-fetch (file system repository)', () => {
  const repo = join(dir, 'repo');
  const walDir = join(dir, 'pg_wal');
  const name = '000000010000000000000003';
  writeFileSync(join(dir, 'none.conf'), '');
  mkdirSync(walDir);
  writeFileSync(join(walDir, name), fakeSegment(3n, { walSegmentSize: 16 * 1024 * 1024 }));

  it('wal-push --push-ahead 0 stores the segment without cloud SDKs, pg, worker_threads or the network modules', () => {
    expect(spawnSync(process.execPath, [BIN, 'repo', 'create', '--repo', repo], { encoding: 'utf8' }).status).toBe(0);
    const m = loaded(['wal-push', join(walDir, name), '--repo', repo, '--push-ahead', '0']);
    expect(m.files.some((f) => f.endsWith('/dist/src/wal/wal-push.js'))).toBe(true); // the hook saw the real work
    expect(m.files.filter((f) => FORBIDDEN_PACKAGES.test(f))).toEqual([]);
    expect(m.builtins.filter((b) => FORBIDDEN_BUILTINS.includes(b))).toEqual([]);
  });

  it('wal-fetch --prefetch 0 restores it the same way', () => {
    const dest = join(dir, 'RECOVERYXLOG');
    const m = loaded(['wal-fetch', name, dest, '--repo', repo, '--prefetch', '0']);
    expect(readFileSync(dest).equals(readFileSync(join(walDir, name)))).toBe(true);
    expect(m.files.some((f) => f.endsWith('/dist/src/wal/wal-fetch.js'))).toBe(true);
    expect(m.files.filter((f) => FORBIDDEN_PACKAGES.test(f))).toEqual([]);
    expect(m.builtins.filter((b) => FORBIDDEN_BUILTINS.includes(b))).toEqual([]);
  });
});
