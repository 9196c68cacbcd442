// Restore's file opening never writes through a link or a shared inode (issue 14 item 6).
import { spawnSync } from 'node:child_process';
import { link, lstat, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openOwnFile, openPrivateForRead, openPrivateForWrite } from '../../src/restore/private-file.js';

let dir: string;
let outside: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pgark-private-'));
  outside = join(dir, 'outside');
  await mkdir(join(dir, 'target'));
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

async function write(abs: string, keep: boolean, text: string): Promise<void> {
  const fh = await openPrivateForWrite(abs, keep);
  try {
    await fh.write(text, 0);
  } finally {
    await fh.close();
  }
}

describe('openPrivateForWrite / openPrivateForRead', () => {
  it.each([false, true])('replaces a symbolic link to a file outside (keepContent %s), the outside file unchanged', async (keep) => {
    await writeFile(outside, 'outside content');
    const abs = join(dir, 'target', `link-${keep}`);
    await symlink(outside, abs);
    expect(await openPrivateForRead(abs)).toBeNull();
    await write(abs, keep, 'restored');
    expect(await readFile(outside, 'utf8')).toBe('outside content');
    expect((await lstat(abs)).isFile()).toBe(true);
    expect(await readFile(abs, 'utf8')).toBe('restored');
  });

  it('replaces a dangling link and a link to a directory', async () => {
    const a = join(dir, 'target', 'dangling');
    await symlink(join(dir, 'nowhere', 'x'), a);
    await write(a, false, 'x');
    expect((await lstat(a)).isFile()).toBe(true);
    const d = join(dir, 'target', 'dirlink');
    await mkdir(join(dir, 'outside-dir'));
    await symlink(join(dir, 'outside-dir'), d);
    await write(d, true, 'y');
    expect((await lstat(d)).isFile()).toBe(true);
    expect((await lstat(join(dir, 'outside-dir'))).isDirectory()).toBe(true);
  });

  it.each([false, true])('replaces a file hard-linked to one outside (keepContent %s)', async (keep) => {
    await writeFile(outside, 'outside content');
    const abs = join(dir, 'target', `hard-${keep}`);
    await link(outside, abs);
    expect(await openPrivateForRead(abs)).toBeNull();
    await write(abs, keep, 'restored');
    expect(await readFile(outside, 'utf8')).toBe('outside content');
    expect((await lstat(abs)).nlink).toBe(1);
  });

  it('replaces a FIFO without blocking on it', async () => {
    const abs = join(dir, 'target', 'fifo');
    expect(spawnSync('mkfifo', [abs]).status).toBe(0);
    expect(await openPrivateForRead(abs)).toBeNull();
    await write(abs, true, 'z');
    expect((await lstat(abs)).isFile()).toBe(true);
  });

  it('keeps the content of a private regular file with keepContent, truncates it without', async () => {
    const abs = join(dir, 'target', 'plain');
    await writeFile(abs, 'abcdef');
    await write(abs, true, 'XY');
    expect(await readFile(abs, 'utf8')).toBe('XYcdef');
    await write(abs, false, 'Q');
    expect(await readFile(abs, 'utf8')).toBe('Q');
    const fh = await openPrivateForRead(abs);
    expect(fh).not.toBeNull();
    await fh!.close();
  });

  it('openOwnFile refuses a name that is no longer a private regular file', async () => {
    const abs = join(dir, 'target', 'own');
    await symlink(outside, abs);
    await expect(openOwnFile(abs)).rejects.toThrow(/no longer the file restore wrote/);
  });
});
