/**
 * The CLI's exit codes as PostgreSQL and scripts see them. For restore_command every code up to
 * 125 means "not archived" (PostgreSQL then ends recovery), so a misconfigured wal-fetch must
 * exit above 125.
 */
import { describe, expect, it } from 'vitest';
import { makeSharedTempDir, removeSharedTempDir } from '../helpers/pg-cluster.js';
import { pgark } from '../helpers/pgark-run.js';
import { createRepo } from '../helpers/repo.js';

const SEG = '000000010000000000000001';
const run = (args: string[], env: Record<string, string> = {}) => pgark(args, { allowFail: true, env });

describe('wal-fetch never answers "missing" for a configuration mistake', () => {
  it.each([
    [['wal-fetch', SEG, '/tmp/pgark-never-written', '--repo', '/tmp/r', '--bogus'], /unknown option '--bogus'/],
    [['wal-fetch', SEG], /missing required argument 'destination'/],
    [['wal-fetch', SEG, '/tmp/pgark-never-written', '--repo', '/tmp/r', '--prefetch', 'abc'], /'prefetch' \(from --prefetch\): expected an integer/],
    [['wal-fetch', SEG, '/tmp/pgark-never-written'], /missing required setting 'repo'/],
    [['wal-fetch', SEG, '/tmp/pgark-never-written', '--repo', 'relative/path'], /invalid repository/],
  ])('%j exits 202', async (args, message) => {
    const r = await run(args);
    expect(r.code).toBe(202);
    expect(r.stderr).toMatch(message);
  });
  it('a location that is no repository (no marker) exits 209, not 1', async () => {
    const r = await run(['wal-fetch', SEG, '/tmp/pgark-never-written', '--repo', '/tmp/pgark-no-such-repo']);
    expect(r.code).toBe(209);
    expect(r.stderr).toMatch(/no pgark repository at '\/tmp\/pgark-no-such-repo'/);
  });
});

describe('other commands', () => {
  it('usage errors exit 2, help and version exit 0', async () => {
    expect((await run(['wal-push', '/tmp/x', '--bogus'])).code).toBe(2);
    expect((await run(['no-such-command'])).code).toBe(2);
    expect((await run(['wal-push'])).code).toBe(2);
    const help = await run(['wal-fetch', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/restore_command = 'pgark wal-fetch %f %p'/);
    const v = await run(['version', '--json']);
    expect(JSON.parse(v.stdout)).toMatchObject({ pgark: expect.stringMatching(/^\d+\.\d+\.\d+/) });
  });
  it('a missing stanza is exit 8 with the stanza named', async () => {
    const repo = await createRepo(await makeSharedTempDir('pgark-exit-'));
    try {
      const r = await run(['info', '--repo', repo, '--stanza', 'ghost']);
      expect(r.code).toBe(8);
      expect(r.stderr).toMatch(/stanza 'ghost' does not exist/);
    } finally {
      await removeSharedTempDir(repo);
    }
  });
  it('a location that is no repository is exit 9, naming it and pgark repo create', async () => {
    const r = await run(['info', '--repo', '/tmp/pgark-no-such-repo', '--stanza', 'ghost']);
    expect(r.code).toBe(9);
    expect(r.stderr).toMatch(/no pgark repository at '\/tmp\/pgark-no-such-repo'.*pgark repo create --repo \/tmp\/pgark-no-such-repo/);
  });
});
