// What `pgark restore` and `pgark backup` load (issue 17 items 2 and 4): each command loads only
// its own command group (src/cli/main.ts COMMAND_GROUPS), never another command's modules, a
// cloud SDK for a file system repository, or (restore) the PostgreSQL client. Every module costs
// start-up CPU and memory (bench/results/restore.md). Structural, not timed: the set of modules
// is recorded by a preload hook, as in wal-call-modules.test.ts. The commands stop early (no
// backup in the repository, no server to connect to): by then the command's module graph is loaded.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeObject, readAll } from '../../src/repo/object-stream.js';
import { moduleRecorder } from '../helpers/module-set.js';

const ROOT = resolve(import.meta.dirname, '../..');
const BIN = join(ROOT, 'bin/pgark.js');
const dir = mkdtempSync(join(tmpdir(), 'pgark-command-modules-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const loaded = moduleRecorder(dir);

const SDKS = /\/node_modules\/(@aws-sdk|@smithy|@azure|@google-cloud|google-auth-library|gaxios|ssh2)\//;
const pgarkDir = (f: string): string | undefined => /\/dist\/src\/([^/]+)\//.exec(f)?.[1];

describe('modules of pgark restore and pgark backup (file system repository)', () => {
  const repo = join(dir, 'repo');
  it('restore loads the restore modules and no backup, agent, receiver, JSON output, PostgreSQL client or cloud SDK', () => {
    expect(spawnSync(process.execPath, [BIN, 'repo', 'create', '--repo', repo], { encoding: 'utf8' }).status).toBe(0);
    const m = loaded('restore', ['restore', 'latest', '--repo', repo, '--pgdata', join(dir, 'target'), '--no-progress']);
    expect(m.stderr).toMatch(/no backup/i); // it got as far as the repository's catalog
    expect(m.files.some((f) => f.endsWith('/dist/src/restore/restore.js'))).toBe(true);
    const dirs = new Set(m.files.map(pgarkDir).filter((d) => d !== undefined));
    // json/: only with --json (src/cli/main.ts loads json/format.ts for `version --json` alone).
    for (const other of ['backup', 'agent', 'receiver', 'logical', 'drill', 'ops', 'protocol', 'json']) expect(dirs.has(other), other).toBe(false);
    expect(m.files.filter((f) => SDKS.test(f) || /\/node_modules\/(pg|pg-protocol)\//.test(f))).toEqual([]);
  });

  it('backup loads the backup modules and no restore, agent, receiver, JSON output or cloud SDK', () => {
    // No server listens on this socket: backup stops at its connection, after loading its modules.
    const m = loaded('backup', ['backup', '--repo', repo, '--pgdata', join(dir, 'pgdata'), '--no-progress'], { PGHOST: dir, PGPORT: '1' });
    expect(m.files.some((f) => f.endsWith('/dist/src/backup/backup.js'))).toBe(true);
    const dirs = new Set(m.files.map(pgarkDir).filter((d) => d !== undefined));
    for (const other of ['restore', 'agent', 'receiver', 'logical', 'drill', 'ops', 'protocol', 'json']) expect(dirs.has(other), other).toBe(false);
    expect(m.files.filter((f) => SDKS.test(f))).toEqual([]);
  });
});

describe('modules of a restore worker thread', () => {
  // A restore worker thread (started by runPool as restore does) runs one task: it opens the
  // repository from the resolved settings and reads the task's object (missing here: the task
  // fails after the repository was opened). Each thread records its own modules (the preload hook
  // runs in worker threads too). A worker needs the repository, the decoder and the file writes:
  // not the CLI, the configuration (settings schema, config file), the repository set, another
  // command's modules, the PostgreSQL client or a cloud SDK. Each module is start-up CPU and memory
  // in every worker thread of every restore (bench/results/restore.md).
  it('loads the repository and the restore worker, no CLI, config, repository set, PostgreSQL client or cloud SDK', () => {
    const repo = join(dir, 'worker-repo');
    expect(spawnSync(process.execPath, [BIN, 'repo', 'create', '--repo', repo], { encoding: 'utf8' }).status).toBe(0);
    const hook = join(dir, 'thread-hook.mjs');
    writeFileSync(
      hook,
      `import { registerHooks } from 'node:module';
import { appendFileSync } from 'node:fs';
import { threadId } from 'node:worker_threads';
registerHooks({ load(url, context, next) { appendFileSync(process.env.THREAD_MODULES_OUT + '-' + threadId, url + '\\n'); return next(url, context); } });
`,
    );
    const script = join(dir, 'restore-worker-run.mjs');
    writeFileSync(
      script,
      `const { runPool } = await import(${JSON.stringify(join(ROOT, 'dist/src/common/worker-pool.js'))});
const settings = { repo: ${JSON.stringify(repo)}, stanza: 'main', driver: {}, retries: 1, retryBudgetSec: 1 };
const init = { settings, delta: false, pgdata: ${JSON.stringify(join(dir, 'worker-target'))}, tablespaces: {}, holdBack: {} };
const piece = { path: 'base/1/1', start: 0, size: 8192, sha256: '0'.repeat(64), whole: true, mode: 0o600, mtimeMs: 0, offset: 0 };
const task = { kind: 'object', backup: '20260101-000000F', n: 1, pieces: [piece], bytes: 8192 };
const script = new URL(${JSON.stringify(pathToFileURL(join(ROOT, 'dist/src/restore/restore-worker.js')).href)});
try {
  await runPool(script, 1, init, [task], () => {}, () => {});
  console.log('restored?');
} catch (err) {
  console.log('failed: ' + err.message);
}
`,
    );
    const out = join(dir, 'thread-modules');
    const r = spawnSync(process.execPath, ['--import', hook, script], { env: { ...process.env, THREAD_MODULES_OUT: out }, encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^failed: unable to find 'main\/backup\/20260101-000000F\/data\/1': no such object/m); // the task read from the opened repository
    const files = readFileSync(`${out}-1`, 'utf8').split('\n').filter((l) => l !== '');
    expect(files.some((f) => f.endsWith('/dist/src/restore/restore-worker.js'))).toBe(true);
    expect(files.some((f) => f.endsWith('/dist/src/repo/repository.js'))).toBe(true);
    expect(files.some((f) => f.endsWith('/dist/storage-drivers/fs/fs-driver.js'))).toBe(true);
    const dirs = new Set(files.map(pgarkDir).filter((d) => d !== undefined));
    for (const other of ['cli', 'config', 'json', 'backup', 'agent', 'receiver', 'logical', 'drill', 'ops', 'protocol']) expect(dirs.has(other), other).toBe(false);
    expect(files.filter((f) => f.endsWith('/dist/src/repo/repo-set.js'))).toEqual([]);
    // A full backup's object task: the layer merge (block deltas of an incremental chain) is loaded by a rebuild task only.
    expect(files.filter((f) => /\/dist\/src\/catalog\/(layer-merge|chain-layers|manifest)\.js$/.test(f))).toEqual([]);
    expect(files.filter((f) => SDKS.test(f) || /\/node_modules\/(pg|pg-protocol|commander)\//.test(f))).toEqual([]);
  });
});

describe('reading lz4 objects loads no lz4-napi (restore, wal-fetch and clone only read)', () => {
  // Decoded by the built modules in a fresh process, which then reports whether lz4-napi's native
  // module is mapped: manifests and other documents (decodeObject), data objects (the pull loop),
  // encrypted data objects (the pull loop over decodeObject's stream).
  it('decodeObject and openObjectReader, plain and encrypted, decode lz4 in JavaScript', async () => {
    const raw = Buffer.concat([Buffer.from('manifest line\n'.repeat(200_000)), randomBytes(300_000)]);
    const key = randomBytes(32);
    const write = async (name: string, enc?: Parameters<typeof encodeObject>[3]) => {
      const { stream, done } = await encodeObject(Readable.from([raw]), 'lz4', undefined, enc);
      writeFileSync(join(dir, name), (await Promise.all([readAll(stream), done]))[0]);
    };
    await write('plain.obj');
    await write('enc.obj', { keyNumber: 1, dataKey: key, objectName: 'x' });
    writeFileSync(join(dir, 'raw'), raw);
    const script = join(dir, 'decode.mjs');
    writeFileSync(
      script,
      `import { createReadStream, readFileSync } from 'node:fs';
const { decodeObject, readAll } = await import(${JSON.stringify(join(ROOT, 'dist/src/repo/object-stream.js'))});
const { openObjectReader } = await import(${JSON.stringify(join(ROOT, 'dist/src/repo/object-reader.js'))});
const d = ${JSON.stringify(dir)};
const raw = readFileSync(d + '/raw');
const keys = { plainAllowed: false, dataKey: async () => Buffer.from(${JSON.stringify(key.toString('hex'))}, 'hex') };
const pulled = async (file, k) => {
  const r = await openObjectReader(createReadStream(file), 'x', {}, k);
  const parts = [];
  for (let c = await r.next(); c !== null; c = await r.next()) parts.push(Buffer.from(c));
  return Buffer.concat(parts);
};
const got = [
  await readAll(await decodeObject(createReadStream(d + '/plain.obj'), 'x')),
  await readAll(await decodeObject(createReadStream(d + '/enc.obj'), 'x', {}, keys)),
  await pulled(d + '/plain.obj'),
  await pulled(d + '/enc.obj', keys),
];
const maps = readFileSync('/proc/self/maps', 'utf8');
console.log(JSON.stringify({ equal: got.map((g) => g.equals(raw)), lz4napi: /lz4-napi/.test(maps), libc: /libc\\.so/.test(maps) }));
`,
    );
    const r = spawnSync(process.execPath, [script], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ equal: [true, true, true, true], lz4napi: false, libc: true });
  });
});
