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
import { moduleRecorder } from '../helpers/module-set.js';

const ROOT = resolve(import.meta.dirname, '../..');
const BIN = join(ROOT, 'bin/pgark.js');
const dir = mkdtempSync(join(tmpdir(), 'pgark-wal-modules-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const record = moduleRecorder(dir);
function loaded(args: string[]): { files: string[]; builtins: string[] } {
  const m = record(args[0]!, args);
  expect(m.status, m.stderr).toBe(0);
  return m;
}

// commander is not loaded either: the lean entry (src/cli/wal-call.ts) parses these calls.
const FORBIDDEN_PACKAGES = /\/node_modules\/(@aws-sdk|@smithy|@azure|@google-cloud|google-auth-library|gaxios|pg|pg-protocol|ssh2|ajv|commander)\//;
// child_process and dgram came with commander (executable subcommands pgark does not have).
const FORBIDDEN_BUILTINS = ['worker_threads', 'http', 'https', 'http2', 'tls', 'zlib', 'child_process', 'dgram'];
// wal-fetch decodes lz4 in JavaScript (Repository.readObject): lz4-napi and its allocator stay out.
const LZ4_NAPI = /\/node_modules\/(lz4-napi|@antoniomuso)\//;

describe('modules of a full-path wal-push and wal-fetch (file system repository)', () => {
  const repo = join(dir, 'repo');
  const walDir = join(dir, 'pg_wal');
  const name = '000000010000000000000003';
  mkdirSync(walDir);
  writeFileSync(join(walDir, name), fakeSegment(3n, { walSegmentSize: 16 * 1024 * 1024 }));

  it('wal-push --push-ahead 0 stores the segment without cloud SDKs, pg, worker_threads or the network modules', () => {
    expect(spawnSync(process.execPath, [BIN, 'repo', 'create', '--repo', repo], { encoding: 'utf8' }).status).toBe(0);
    const m = loaded(['wal-push', join(walDir, name), '--repo', repo, '--push-ahead', '0']);
    expect(m.files.some((f) => f.endsWith('/dist/src/wal/wal-push.js'))).toBe(true); // the hook saw the real work
    expect(m.files.filter((f) => FORBIDDEN_PACKAGES.test(f))).toEqual([]);
    expect(m.builtins.filter((b) => FORBIDDEN_BUILTINS.includes(b))).toEqual([]);
  });

  it('wal-fetch --prefetch 0 restores it the same way, without lz4-napi', () => {
    const dest = join(dir, 'RECOVERYXLOG');
    const m = loaded(['wal-fetch', name, dest, '--repo', repo, '--prefetch', '0']);
    expect(readFileSync(dest).equals(readFileSync(join(walDir, name)))).toBe(true);
    expect(m.files.some((f) => f.endsWith('/dist/src/wal/wal-fetch.js'))).toBe(true);
    expect(m.files.filter((f) => FORBIDDEN_PACKAGES.test(f) || LZ4_NAPI.test(f))).toEqual([]);
    expect(m.builtins.filter((b) => FORBIDDEN_BUILTINS.includes(b))).toEqual([]);
  });
});
