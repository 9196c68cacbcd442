import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { dataDirectoryOwner } from '../../../src/backup/data-owner.js';
import { ownerOfPath } from '../../../src/common/os-accounts.js';

const dir = mkdtempSync(join(tmpdir(), 'pgark-data-owner-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('dataDirectoryOwner (asynchronous getent, for the manifest header)', () => {
  it('gives what ownerOfPath gives', async () => {
    const want = await ownerOfPath(dir);
    expect(await dataDirectoryOwner(dir)).toEqual(want);
    expect(want.user).toBeDefined(); // this host knows the test user's name
  });

  it('falls back to /etc/passwd and /etc/group when getent cannot run', async () => {
    const want = await ownerOfPath(dir);
    const path = process.env.PATH;
    process.env.PATH = '/nonexistent-pgark-test-dir';
    try {
      const got = await dataDirectoryOwner(dir);
      expect(got.uid).toBe(want.uid);
      expect(got.gid).toBe(want.gid);
      // root (the tests' user here) or whoever runs them is in /etc/passwd on a test machine
      expect(got.user).toBe(want.user);
    } finally {
      process.env.PATH = path;
    }
  });

  it('rejects for a path that does not exist', async () => {
    await expect(dataDirectoryOwner(join(dir, 'missing'))).rejects.toThrow(/ENOENT/);
  });
});
