/**
 * Issue 14 item 1, end to end against real PostgreSQL 15: a timeline history whose switch points
 * decrease is valid (PostgreSQL's readTimeLineHistory only wants increasing timeline IDs), and
 * pgark archives it and follows it.
 *
 *  A (timeline 1) archives with pgark; backup B0; rows, restore point 'rp', more rows.
 *  C1 = B0 recovered to an LSN after 'rp' in the same segment, promoted: timeline 2.
 *  C2 = B0 recovered (target timeline latest, so along timeline 2) to 'rp', which lies on
 *       timeline 1 before timeline 2's switch point but is read from timeline 2's segment;
 *       promoted: PostgreSQL writes 00000003.history with a lower switch point for timeline 2
 *       than for timeline 1. wal-push must archive it (before the fix: exit 5 forever, the
 *       archiver stuck) and then timeline 3's WAL.
 *  C3 = B0 restored to the end of the archive: reaches timeline 3 and its rows (before the fix
 *       it followed timeline 2 and forked a second, different timeline 3).
 *
 * Run with archive_command/restore_command = bin/pgark.js, and with the shell clients
 * bin/pgark-wal-push / bin/pgark-wal-fetch.
 */
import { appendFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { archiveCommand, destroyAllClusters, makeSharedTempDir, PgCluster, PROJECT_ROOT, restoreCommand, shellQuote, connEnv } from '../helpers/pg-cluster.js';
import { startPgark, stopPgark } from '../helpers/pgark-background.js';
import { pgark } from '../helpers/pgark-run.js';
import { waitUntil } from '../helpers/wait.js';
import { createRepo } from '../helpers/repo.js';
import { parseTimelineHistory } from '../../src/wal/timeline-history.js';
import { parseLsn } from '../../src/wal/segment-name.js';

const STANZA = 'main';

afterAll(async () => {
  await destroyAllClusters();
}, 120_000);

type Mode = 'pgark.js' | 'shell clients';

function commands(mode: Mode, repo: string): { archive: string; restore: string } {
  if (mode === 'pgark.js') return { archive: archiveCommand({ repo, stanza: STANZA }), restore: restoreCommand({ repo, stanza: STANZA }) };
  const opts = `--repo ${shellQuote(repo)} --stanza ${STANZA}`;
  return {
    archive: `${shellQuote(join(PROJECT_ROOT, 'bin', 'pgark-wal-push'))} %p ${opts}`,
    restore: `${shellQuote(join(PROJECT_ROOT, 'bin', 'pgark-wal-fetch'))} %f %p ${opts}`,
  };
}

async function run(args: string[], env: Record<string, string> = {}): Promise<string> {
  const r = await pgark(args, { env, allowFail: true, timeoutMs: 180_000 });
  if (r.code !== 0) throw new Error(`pgark ${args.join(' ')} exited ${r.code}\n${r.stdout}\n${r.stderr.slice(-4000)}`);
  return r.stdout;
}

async function waitPromoted(c: PgCluster): Promise<void> {
  await waitUntil(`${c.dataDir} to end recovery`, async () => (await c.psql('SELECT pg_is_in_recovery()')) === 'f', 120_000,
    undefined, 250).catch(async (err: Error) => {
    throw new Error(`${err.message}\n--- server log ---\n${await c.readLog(8000)}`);
  });
}

async function timelineOf(c: PgCluster): Promise<number> {
  return Number.parseInt((await c.psql('SELECT pg_walfile_name(pg_current_wal_lsn())')).slice(0, 8), 16);
}

async function rows(c: PgCluster): Promise<string> {
  return c.psql("SELECT string_agg(id || ':' || tag, ',' ORDER BY id) FROM t");
}

/** `pgark restore` of `backupId` into a fresh directory, started; restore_command set for `mode`. */
async function restoreAndStart(repo: string, backupId: string, work: string, name: string, mode: Mode, extra: string[]): Promise<PgCluster> {
  const dir = join(work, name);
  await run(['restore', backupId, '--repo', repo, '--stanza', STANZA, '--pgdata', dir, '--jobs', '2', '--no-progress', ...extra]);
  // A later line wins: the shell client instead of the restore_command pgark restore wrote.
  if (mode === 'shell clients') await appendFile(join(dir, 'postgresql.auto.conf'), `restore_command = '${commands(mode, repo).restore.replace(/'/g, "''")}'\n`);
  const c = await PgCluster.fromDataDir(dir, { name });
  c.serverEnv = { PGARK_NODE: process.execPath };
  await c.start({ timeoutSec: 120 });
  expect(await c.psql('SHOW restore_command')).toContain(mode === 'shell clients' ? 'bin/pgark-wal-fetch' : 'bin/pgark.js');
  return c;
}

describe.each<Mode>(['pgark.js', 'shell clients'])('a history with decreasing switch points (%s)', (mode) => {
  it('is archived with the new timeline, and a later restore reaches that timeline', { timeout: 600_000 }, async () => {
    const repo = await createRepo(await makeSharedTempDir('pgark-tl-repo-'));
    const work = await makeSharedTempDir('pgark-tl-work-');
    const cmd = commands(mode, repo);

    // Timeline 1.
    const a = await PgCluster.create({
      name: 'tl-a', walSegmentSizeMB: 1,
      conf: { archive_mode: 'on', archive_command: cmd.archive, checkpoint_timeout: '30min', max_wal_size: '256MB' },
    });
    a.serverEnv = { PGARK_NODE: process.execPath };
    await a.start();
    expect(await a.psql('SHOW archive_command')).toContain(mode === 'shell clients' ? 'bin/pgark-wal-push' : 'bin/pgark.js');
    await a.psql("CREATE TABLE t (id int PRIMARY KEY, tag text); INSERT INTO t VALUES (1, 'base')");
    const b0 = JSON.parse(await run(['backup', '--repo', repo, '--stanza', STANZA, '--pgdata', a.dataDir, '--type', 'full', '--jobs', '2', '--no-progress', '--json'], connEnv(a))) as { id: string };
    await a.psql("INSERT INTO t VALUES (2, 'tl1 before rp')");
    const rpLsn = await a.psql("SELECT pg_create_restore_point('rp')");
    await a.psql("INSERT INTO t VALUES (3, 'tl1 after rp')");
    const forkTarget = await a.psql('SELECT pg_current_wal_insert_lsn()');
    await a.psql("INSERT INTO t VALUES (4, 'tl1 later')");
    expect(parseLsn(forkTarget) >> 20n, 'the restore point and the fork target are in one 1 MiB segment').toBe(parseLsn(rpLsn) >> 20n);
    await a.waitForArchived(await a.switchWal(), 60_000);
    await a.stop();

    // Timeline 2: forks from timeline 1 after 'rp', in the same segment.
    const c1 = await restoreAndStart(repo, b0.id, work, 'tl-c1', mode, ['--target-lsn', forkTarget, '--target-action', 'promote', '--keep-archive']);
    await waitPromoted(c1);
    expect(await timelineOf(c1)).toBe(2);
    expect(await rows(c1)).toBe('1:base,2:tl1 before rp,3:tl1 after rp');
    await c1.psql("INSERT INTO t VALUES (5, 'tl2')");
    await c1.waitForArchived(await c1.switchWal(), 60_000);
    await c1.stop();

    // Timeline 3: back to 'rp' along timeline 2 (target timeline latest).
    const c2 = await restoreAndStart(repo, b0.id, work, 'tl-c2', mode, ['--target-name', 'rp', '--target-action', 'promote', '--keep-archive']);
    await waitPromoted(c2);
    expect(await timelineOf(c2)).toBe(3);
    expect(await rows(c2)).toBe('1:base,2:tl1 before rp');
    // Before the fix wal-push refused this file with exit 5, on every retry.
    await c2.waitForArchived('00000003.history', 60_000);
    const historyText = await readFile(join(c2.dataDir, 'pg_wal', '00000003.history'), 'utf8');
    const h3 = parseTimelineHistory(historyText, 3);
    expect(h3.parents.map((p) => p.timeline)).toEqual([1, 2]);
    expect(h3.parents[1]!.reason).toBe('at restore point "rp"');
    expect(h3.parents[1]!.switchLsn, `the scenario must produce decreasing switch points:\n${historyText}`).toBeLessThan(h3.parents[0]!.switchLsn);
    await c2.psql("INSERT INTO t VALUES (6, 'tl3')");
    const tl3Segment = await c2.switchWal();
    expect(tl3Segment.slice(0, 8)).toBe('00000003');
    const stats = await c2.waitForArchived(tl3Segment, 60_000);
    expect(stats.failed_count, `archiver failures:\n${await c2.readLog(6000)}`).toBe(0);
    let expectedRows = '1:base,2:tl1 before rp,6:tl3';
    if (mode === 'pgark.js') {
      // pgark receive reads the same history from the server (TIMELINE_HISTORY 3) and resumes on
      // timeline 3 after the archived WAL (before the fix: a fatal "invalid timeline history").
      const r = startPgark(['receive', '--repo', repo, '--stanza', STANZA, '--dsn', `host=127.0.0.1 port=${c2.port} user=postgres`,
        '--spool-dir', join(work, 'spool'), '--log-level', 'info']);
      try {
        await c2.psql("INSERT INTO t VALUES (7, 'tl3 received')");
        const target = await c2.psql('SELECT pg_current_wal_lsn()');
        await waitUntil('the receiver to store timeline 3', async () =>
          (await c2.psql(`SELECT flush_lsn >= '${target}'::pg_lsn FROM pg_stat_replication WHERE application_name = 'pgark'`)) === 't', 60_000, r.output);
        expect(await stopPgark(r), r.output()).toBe(0);
      } finally {
        await stopPgark(r, 'SIGKILL');
      }
      expect(r.output()).toMatch(/resuming after the stored WAL at [0-9A-F]+\/[0-9A-F]+ on timeline 3/);
      expectedRows += ',7:tl3 received';
    }
    await c2.stop();

    // The archive holds the history and timeline 3; wal-verify reads all three histories.
    const verify = JSON.parse(await run(['wal-verify', '--repo', repo, '--stanza', STANZA, '--json'])) as { ok: boolean; timelines: Array<{ timeline: number; history: boolean; fork?: { parent: number; lsn: string } }> };
    expect(verify.ok).toBe(true);
    expect(verify.timelines.map((t) => t.timeline)).toEqual([1, 2, 3]);
    expect(verify.timelines[2]).toMatchObject({ history: true, fork: { parent: 2 } });

    // A further restore to the end of the archive follows timeline 3 and has its rows.
    const c3 = await restoreAndStart(repo, b0.id, work, 'tl-c3', mode, []);
    await waitPromoted(c3);
    expect(await rows(c3)).toBe(expectedRows);
    expect(await timelineOf(c3)).toBe(4);
    const log = await c3.readLog(200_000);
    expect(log).toMatch(/restored log file "00000003\.history" from archive/);
    await c3.stop();
  });
});
