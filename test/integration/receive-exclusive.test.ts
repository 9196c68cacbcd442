/**
 * Issue 14, findings 4 and 5, against real PostgreSQL 15:
 *  1. two receivers for one stanza and name: the second (same spool directory, or another one)
 *     is refused with exit 6 while the first streams under pgbench load; every segment the first
 *     stored is byte-identical to the server's pg_wal, the archive has no gap and verifies;
 *  2. wrong sizes: a short copy of a real segment is not archived and the real one then is; a
 *     segment object of the wrong size written with the repository's own encoder is reported
 *     damaged by `wal-verify --read`, and `wal-fetch` exits above 125 leaving nothing at %p;
 *  3. a receiver whose spool lock file is removed stops (exit 6) instead of writing on.
 */
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readdir, readFile, rm, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDriver } from '../../storage-drivers/registry.js';
import { walKey } from '../../src/repo/layout.js';
import { readAll } from '../../src/repo/object-stream.js';
import { Repository } from '../../src/repo/repository.js';
import { chownToRunAs, destroyAllClusters, makeSharedTempDir, PgCluster } from '../helpers/pg-cluster.js';
import { startPgark, stopPgark, type BackgroundPgark } from '../helpers/pgark-background.js';
import { pgark } from '../helpers/pgark-run.js';
import { newUserDir, waitUntil } from '../helpers/wait.js';
import { createRepo } from '../helpers/repo.js';

const SEG = 1024 * 1024;
const STANZA = 'excl';
let work: string;
let repoDir: string;
let c: PgCluster;

beforeAll(async () => {
  work = await makeSharedTempDir('pgark-recv-excl-');
  repoDir = await createRepo(await newUserDir(work, 'repo'));
  // No archiving: the repository gets WAL only from the receiver. wal_keep_size keeps every
  // segment in pg_wal (none removed or recycled) for the comparison.
  c = await PgCluster.create({ name: 'recv-excl', walSegmentSizeMB: 1, conf: { archive_mode: 'off', wal_level: 'replica', wal_keep_size: '4GB', max_wal_size: '4GB' } });
  await c.start();
}, 120_000);
afterAll(async () => {
  await destroyAllClusters();
}, 120_000);

const dsn = () => `host=127.0.0.1 port=${c.port} user=postgres`;
const receiveArgs = (spool: string) => ['receive', '--repo', repoDir, '--stanza', STANZA, '--dsn', dsn(), '--slot', 'recv', '--create-slot',
  '--application-name', 'recv', '--spool-dir', spool, '--status-interval', '1', '--log-level', 'info'];

async function openRepo(): Promise<Repository> {
  return new Repository(await openDriver(repoDir), STANZA, { attempts: 1, budgetMs: 0 });
}

describe('one receiver per stanza and name', () => {
  it('refuses a second receiver; the first one\'s WAL is byte-identical to pg_wal', { timeout: 600_000 }, async () => {
    const spool = join(work, 'spool');
    const first = startPgark(receiveArgs(spool));
    const refused: Array<{ code: number; stderr: string }> = [];
    const second = async (dir: string) => {
      const r = await pgark(receiveArgs(dir), { allowFail: true, timeoutMs: 60_000 });
      refused.push({ code: r.code ?? -1, stderr: r.stderr });
    };
    let others: BackgroundPgark | undefined;
    try {
      await waitUntil('the first receiver to stream', async () =>
        (await c.psql("SELECT count(*) FROM pg_stat_replication WHERE application_name = 'recv' AND state = 'streaming'")) === '1', 120_000, first.output);
      await second(spool);
      await second(join(work, 'spool-elsewhere'));
      // Under load, a restarted service keeps trying (as systemd's Restart= would).
      others = startPgark(['receive', ...receiveArgs(spool).slice(1)]);
      const load = (async () => {
        await c.pgbench(['-i', '-s', '5', '-q']);
        await c.pgbench(['-c', '4', '-j', '2', '-T', '10', '-n']);
      })();
      let tries = 0;
      const retrying = (async () => {
        for (; tries < 5; tries++) {
          await second(tries % 2 ? spool : join(work, 'spool-elsewhere'));
          await new Promise((r) => setTimeout(r, 500));
        }
      })();
      await Promise.all([load, retrying]);
      expect(await others.exited).toBe(6);
      for (const r of refused) {
        expect(r.code, r.stderr).toBe(6);
        expect(r.stderr).toMatch(/another pgark receive/);
      }
      expect(refused.length).toBe(2 + tries);
      expect(refused[0]!.stderr).toMatch(/is using the spool directory/);
      expect(refused[1]!.stderr).toMatch(/another pgark receive for stanza 'excl' and name 'recv' is running: unable to acquire lock 'excl\/lock\/receive-recv': held by receive 'recv'/);

      const last = await c.switchWal();
      const target = await c.psql('SELECT pg_current_wal_lsn()');
      await waitUntil(`the receiver to store up to ${target}`, async () =>
        (await c.psql(`SELECT flush_lsn >= '${target}'::pg_lsn FROM pg_stat_replication WHERE application_name = 'recv'`)) === 't', 180_000, first.output);
      expect(await stopPgark(first)).toBe(0);
      expect(first.output()).not.toMatch(/mismatch|ERROR/);
      // The locks are gone with it.
      expect(existsSync(join(spool, 'receiver.pid'))).toBe(false);

      const repo = await openRepo();
      try {
        expect(await repo.stat(`${STANZA}/lock/receive-recv`)).toBeNull();
        const stored: string[] = [];
        for await (const o of repo.driver.list(`${STANZA}/wal/`)) {
          const name = o.path.slice(o.path.lastIndexOf('/') + 1);
          if (/^[0-9A-F]{24}$/.test(name)) stored.push(name);
        }
        stored.sort();
        expect(stored.length).toBeGreaterThanOrEqual(40);
        expect(stored).toContain(last);
        for (const name of stored) {
          const mine = await readAll(await repo.getObject(walKey(STANZA, name)), 2 * SEG);
          const server = await readFile(join(c.dataDir, 'pg_wal', name));
          expect(mine.length, name).toBe(SEG);
          expect(mine.equals(server), `${name} differs from pg_wal`).toBe(true);
        }
      } finally {
        await repo.close();
      }
      const v = await pgark(['wal-verify', '--repo', repoDir, '--stanza', STANZA, '--read', '--json']);
      const report = JSON.parse(v.stdout) as { ok: boolean; gapCount: number; damaged: unknown[] };
      expect(report.damaged).toEqual([]);
      expect(report.gapCount).toBe(0);
    } finally {
      await stopPgark(first, 'SIGKILL');
      if (others) await stopPgark(others, 'SIGKILL');
    }
  });
});

describe('segments of the wrong size', () => {
  it('a short copy is not archived, the real one is; a short stored object is damage to wal-verify and wal-fetch', { timeout: 300_000 }, async () => {
    // Two real segments of this cluster that the first test did not store (the receiver is gone).
    const fill = () => c.psql('CREATE TABLE IF NOT EXISTS filler (x int); INSERT INTO filler SELECT generate_series(1, 1000)');
    await fill();
    const a = await c.switchWal();
    await fill();
    const b = await c.switchWal();
    const walDir = await newUserDir(work, 'pg_wal');
    await mkdir(join(walDir, 'archive_status'), { recursive: true });
    await chownToRunAs(join(walDir, 'archive_status'));
    const base = ['--repo', repoDir, '--stanza', STANZA];

    // wal-push of a segment that is 8192 bytes long: refused, nothing stored; then the real one.
    const copy = join(walDir, a);
    await copyFile(join(c.dataDir, 'pg_wal', a), copy);
    await chownToRunAs(copy);
    await truncate(copy, 8192);
    const short = await pgark(['wal-push', copy, ...base, '--push-ahead', '0'], { allowFail: true });
    expect(short.code, short.stderr).toBe(5);
    const repo = await openRepo();
    try {
      expect(await repo.stat(walKey(STANZA, a))).toBeNull();
      await copyFile(join(c.dataDir, 'pg_wal', a), copy);
      expect((await pgark(['wal-push', copy, ...base, '--push-ahead', '0'], { allowFail: true })).code).toBe(0);
      const back = await readAll(await repo.getObject(walKey(STANZA, a)), 2 * SEG);
      expect(back.equals(await readFile(join(c.dataDir, 'pg_wal', a)))).toBe(true);

      // A stored object of 8192 bytes of segment b, written with the repository's own encoder:
      // its checksum is valid, only its size is wrong.
      const real = await readFile(join(c.dataDir, 'pg_wal', b));
      await repo.putObject(walKey(STANZA, b), () => Readable.from([real.subarray(0, 8192)]), { codec: 'lz4', ifAbsent: true });
      await chownToRunAs(join(repoDir, walKey(STANZA, b)));
    } finally {
      await repo.close();
    }
    const v = await pgark(['wal-verify', ...base, '--read', '--json'], { allowFail: true });
    expect(v.code).toBe(7);
    const report = JSON.parse(v.stdout) as { damaged: { name: string; error: string }[] };
    expect(report.damaged.map((d) => d.name)).toEqual([b]);
    expect(report.damaged[0]!.error).toMatch(/8192 bytes, expected exactly 1048576/);

    const dest = await newUserDir(work, 'restore-wal');
    const f = await pgark(['wal-fetch', b, join(dest, 'RECOVERYXLOG'), ...base, '--prefetch', '0'], { allowFail: true });
    expect(f.code, f.stderr).toBe(211);
    expect(f.stderr).toMatch(/damaged/);
    expect(await readdir(dest)).toEqual([]);
    // The real segment a is served whole.
    const ok = await pgark(['wal-fetch', a, join(dest, 'RECOVERYXLOG'), ...base, '--prefetch', '0'], { allowFail: true });
    expect(ok.code, ok.stderr).toBe(0);
    expect((await readFile(join(dest, 'RECOVERYXLOG'))).equals(await readFile(join(c.dataDir, 'pg_wal', a)))).toBe(true);
  });
});

describe('a receiver that loses its lock', () => {
  it('stops with exit 6 when its spool lock file is removed', { timeout: 180_000 }, async () => {
    const spool = join(work, 'spool-lost');
    const r = startPgark(receiveArgs(spool));
    try {
      await waitUntil('the receiver to stream', async () =>
        (await c.psql("SELECT count(*) FROM pg_stat_replication WHERE application_name = 'recv' AND state = 'streaming'")) === '1', 120_000, r.output);
      await rm(join(spool, 'receiver.pid'));
      await c.psql('CREATE TABLE IF NOT EXISTS filler (x int); INSERT INTO filler SELECT generate_series(1, 1000)');
      const code = await Promise.race([r.exited, new Promise<string>((res) => setTimeout(() => res('still running'), 60_000))]);
      expect(code, r.output()).toBe(6);
      expect(r.output()).toMatch(/spool (lock .* was removed or taken over|directory .* is no longer held by this receiver)/);
    } finally {
      await stopPgark(r, 'SIGKILL');
    }
  });
});
