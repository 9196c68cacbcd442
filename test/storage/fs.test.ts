import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDriver, FsDriver } from '../../storage-drivers/fs/fs-driver.js';
import { openDriver } from '../../storage-drivers/registry.js';
import { listAll, readAll, storageConformance } from './conformance.js';
import { waitFor } from '../helpers/wait.js';

const here = dirname(fileURLToPath(import.meta.url));
const slowPutFixture = join(here, '../fixtures/fs-slow-put.mjs');
const builtDriver = join(here, '../../dist/storage-drivers/fs/fs-driver.js');

async function tempRoot(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'pgark-fs-test-'));
}

async function tempFilesIn(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).filter((n) => n.includes('.pgark-tmp-'));
  } catch {
    return [];
  }
}

/** A pid that existed and has exited (reuse within the test is vanishingly unlikely). */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '']);
  await new Promise((r) => child.once('exit', r));
  if (child.pid === undefined) throw new Error('spawn failed');
  return child.pid;
}

storageConformance('fs', async () => {
  const parent = await tempRoot();
  // A root that does not exist yet: the driver creates it on first write.
  const driver = await createDriver(pathToFileURL(join(parent, 'repo')), {});
  return { driver, cleanup: () => rm(parent, { recursive: true, force: true }) };
});

describe('fs driver specifics', () => {
  let parent: string;
  let root: string;
  let driver: FsDriver;
  let savedUmask: number;

  beforeAll(async () => {
    savedUmask = process.umask(0o022);
    parent = await tempRoot();
    root = join(parent, 'repo');
    driver = new FsDriver(root);
  });
  afterAll(async () => {
    process.umask(savedUmask);
    await rm(parent, { recursive: true, force: true });
  });

  it('creates the root and directories 0700 and files 0600 under umask 022', async () => {
    expect(existsSync(root)).toBe(false);
    await driver.put('modes/a/b/obj', Buffer.from('x'));
    for (const d of [root, join(root, 'modes'), join(root, 'modes/a'), join(root, 'modes/a/b')]) {
      expect(((await stat(d)).mode & 0o777).toString(8)).toBe('700');
    }
    expect(((await stat(join(root, 'modes/a/b/obj'))).mode & 0o777).toString(8)).toBe('600');
  });

  it('exposes name, features and location', () => {
    expect(driver.name).toBe('fs');
    expect([...driver.features].sort()).toEqual(['atomicRename', 'conditionalPut', 'fsync', 'rangeRead']);
    expect(driver.location).toBe(root);
  });

  it('writes a temp file next to the key that is never visible as an object', async () => {
    const body = new PassThrough();
    const put = driver.put('pending/dir/obj', body);
    body.write(Buffer.alloc(4096, 1));
    const temps = await waitFor(async () => {
      const t = await tempFilesIn(join(root, 'pending/dir'));
      return t.length > 0 ? t : undefined;
    }, 'the temp file');
    expect(temps[0]).toMatch(new RegExp(`^obj\\.pgark-tmp-${process.pid}-[0-9a-f]+$`));
    expect(await listAll(driver, 'pending/')).toEqual([]);
    expect(await driver.stat('pending/dir/obj')).toBeNull();
    body.end();
    await put;
    expect((await listAll(driver, 'pending/')).map((i) => i.path)).toEqual(['pending/dir/obj']);
    expect(await tempFilesIn(join(root, 'pending/dir'))).toEqual([]);
  });

  it('removes temps of dead processes after a later put of the same key, and never lists them', async () => {
    const dir = join(root, 'stale/dir');
    await mkdir(dir, { recursive: true });
    const dead = `obj.pgark-tmp-${await deadPid()}-deadbeef`;
    const live = `obj.pgark-tmp-${process.pid}-feedface`;
    const otherKey = `other.pgark-tmp-${await deadPid()}-cafe`;
    for (const name of [dead, live, otherKey]) await writeFile(join(dir, name), 'partial');

    expect(await listAll(driver, 'stale/')).toEqual([]);
    expect(await listAll(driver, 'stale/dir/obj')).toEqual([]);
    await driver.put('stale/dir/obj', Buffer.from('done'));
    // The live pid's temp may be an in-progress put; another key's temps wait for that key.
    expect((await tempFilesIn(dir)).sort()).toEqual([live, otherKey].sort());
    expect((await listAll(driver, 'stale/')).map((i) => i.path)).toEqual(['stale/dir/obj']);
  });

  it('removes directories emptied by delete, but not the root', async () => {
    await driver.put('prune/x/y/1', Buffer.from('1'));
    await driver.put('prune/x/2', Buffer.from('2'));
    await driver.delete(['prune/x/y/1']);
    expect(existsSync(join(root, 'prune/x/y'))).toBe(false);
    expect(existsSync(join(root, 'prune/x/2'))).toBe(true);
    await driver.delete(['prune/x/2']);
    expect(existsSync(join(root, 'prune'))).toBe(false);
    expect(existsSync(root)).toBe(true);
  });

  it('does not list a directory as an object and skips temp-named entries', async () => {
    await mkdir(join(root, 'shapes/emptydir'), { recursive: true });
    expect(await listAll(driver, 'shapes/')).toEqual([]);
    expect(await driver.stat('shapes/emptydir')).toBeNull();
  });

  it.each([
    ['a bare absolute path', (p: string) => p],
    ['a file:// URL', (p: string) => pathToFileURL(p).href],
  ])('opens through the registry with %s', async (_label, form) => {
    const dir = join(parent, `registry-${Math.random().toString(16).slice(2)}`);
    const d = await openDriver(form(dir));
    expect(d.name).toBe('fs');
    expect(d.location).toBe(dir);
    await d.put('k', Buffer.from('registry'));
    expect((await readAll(await d.get('k'))).toString()).toBe('registry');
    await d.close();
  });

  it('leaves no object when the writer is killed with SIGKILL mid-put, and a retry succeeds', async () => {
    if (!existsSync(builtDriver)) throw new Error(`${builtDriver} is missing: run 'npm run build' first`);
    const key = 'killed/dir/000000010000000000000001';
    const dir = join(root, 'killed/dir');
    const child = spawn(process.execPath, [slowPutFixture, root, key], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<NodeJS.Signals | null>((r) => child.once('exit', (_code, signal) => r(signal)));

    let temp: string;
    try {
      temp = await waitFor(async () => {
        if (child.exitCode !== null) throw new Error(`fixture exited early: ${stderr}`);
        const t = (await tempFilesIn(dir)).filter((n) => n.includes(`-${child.pid}-`));
        // Wait for some data so the kill lands mid-write, not before it.
        if (t[0] && (await stat(join(dir, t[0]))).size > 0) return t[0];
        return undefined;
      }, 'the child temp file');
    } finally {
      child.kill('SIGKILL');
    }
    expect(await exited).toBe('SIGKILL');

    expect(await driver.stat(key)).toBeNull();
    expect(await listAll(driver, 'killed/')).toEqual([]);
    expect(await tempFilesIn(dir)).toEqual([temp]);

    await driver.put(key, Buffer.from('retried'), { ifAbsent: true });
    expect((await readAll(await driver.get(key))).toString()).toBe('retried');
    expect(await tempFilesIn(dir)).toEqual([]);
  });
});
