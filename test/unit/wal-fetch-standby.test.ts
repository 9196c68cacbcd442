/**
 * wal-fetch when the stanza does not exist (issue 14 item 2): in a standby's data directory
 * (standby.signal, restore_command's working directory) a readable repository without the stanza
 * is "not archived yet" (missing, exit 1 from the CLI), said once at info level; in archive
 * recovery (recovery.signal) or anywhere else it stays an error (exit above 125 from the CLI).
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createDriver } from '../../storage-drivers/fs/fs-driver.js';
import { ConfigError } from '../../src/common/errors.js';
import { log } from '../../src/common/log.js';
import { resolveSettings } from '../../src/config/resolve.js';
import { Repository } from '../../src/repo/repository.js';
import { walFetch } from '../../src/wal/wal-fetch.js';

const SEG = '000000010000000000000001';
let parent: string;
let n = 0;

beforeAll(async () => {
  parent = await mkdtemp(join(tmpdir(), 'pgark-fetch-standby-'));
});

afterAll(async () => {
  await rm(parent, { recursive: true, force: true });
});

afterEach(() => {
  vi.restoreAllMocks();
});

/** A data directory with the given signal file and a pg_wal, and a repository location. */
async function setup(signal: 'standby' | 'recovery' | 'both' | 'none', repoExists: boolean): Promise<{ dataDir: string; dest: string; repo: Repository }> {
  const dir = join(parent, `case-${++n}`);
  const dataDir = join(dir, 'data');
  await mkdir(join(dataDir, 'pg_wal'), { recursive: true });
  if (signal === 'standby' || signal === 'both') await writeFile(join(dataDir, 'standby.signal'), '');
  if (signal === 'recovery' || signal === 'both') await writeFile(join(dataDir, 'recovery.signal'), '');
  const repoDir = join(dir, 'repo');
  if (repoExists) await mkdir(repoDir);
  const driver = await createDriver(pathToFileURL(repoDir), {});
  return { dataDir, dest: join(dataDir, 'pg_wal', 'RECOVERYXLOG'), repo: new Repository(driver, 'main', { attempts: 1, budgetMs: 0 }) };
}

const settings = () => resolveSettings({ repo: '/unused', prefetch: '0' }, {});

describe('wal-fetch without the stanza', () => {
  it.each([
    ['standby.signal', 'standby'],
    ['standby.signal and recovery.signal (standby mode wins)', 'both'],
  ] as const)('%s, readable repository: not archived yet, said once at info', async (_label, signal) => {
    const { dataDir, dest, repo } = await setup(signal, true);
    const info = vi.spyOn(log, 'info');
    const debug = vi.spyOn(log, 'debug');
    for (const name of ['00000002.history', SEG, SEG]) {
      const r = await walFetch(repo, settings(), name, dest, dataDir);
      expect(r.status).toBe('missing');
    }
    const said = info.mock.calls.map((c) => c[0]).filter((m) => m.includes("stanza 'main' not found"));
    expect(said).toHaveLength(1);
    expect(said[0]).toMatch(/on this standby \(standby\.signal\) that means nothing is archived yet/);
    expect(debug.mock.calls.filter((c) => c[0].includes("stanza 'main' not found"))).toHaveLength(2);
    expect(await readFile(join(dataDir, 'pg_wal', '.pgark', 'standby-waiting'), 'utf8')).toContain("stanza 'main'");
  });

  it('standby.signal, repository location missing: still an error', async () => {
    const { dataDir, dest, repo } = await setup('standby', false);
    await expect(walFetch(repo, settings(), SEG, dest, dataDir)).rejects.toThrow(ConfigError);
    await expect(walFetch(repo, settings(), SEG, dest, dataDir)).rejects.toThrow(/repository location is missing or unreadable/);
  });

  it.each([
    ['recovery.signal', 'recovery'],
    ['no signal file', 'none'],
  ] as const)('%s: an error (exit above 125), never "missing"', async (_label, signal) => {
    const { dataDir, dest, repo } = await setup(signal, true);
    await expect(walFetch(repo, settings(), SEG, dest, dataDir)).rejects.toThrow(ConfigError);
    await expect(walFetch(repo, settings(), '00000002.history', dest, dataDir)).rejects.toThrow(/stanza 'main' not found .*not reporting the file as missing/);
  });
});
