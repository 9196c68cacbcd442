/**
 * Backup and restore options against real PostgreSQL 15 clusters:
 *  1. a tablespace is backed up and restored elsewhere with --tablespace-map; the original
 *     location (still in use) is refused;
 *  2. --type auto follows incr-chain-max; --type incr beyond it is refused;
 *  3. --store-wal: a cluster without archiving is backed up with its WAL and restored;
 *     without --store-wal the backup is refused up front;
 *  4. restore --standby --primary-conninfo makes a streaming standby; --keep-archive keeps the
 *     source's archive settings.
 */
import { existsSync } from 'node:fs';
import { readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { archiveCommand, destroyAllClusters, makeSharedTempDir, PgCluster, connEnv } from '../helpers/pg-cluster.js';
import { pgark } from '../helpers/pgark-run.js';
import { waitUntil, newUserDir } from '../helpers/wait.js';
import { createRepo } from '../helpers/repo.js';

let work: string;
afterAll(async () => {
  await destroyAllClusters();
}, 120_000);

beforeAll(async () => {
  work = await makeSharedTempDir('pgark-bo-');
}, 60_000);

const newDir = (name: string): Promise<string> => newUserDir(work, name);

async function startCopy(dir: string, name: string): Promise<PgCluster> {
  const c = await PgCluster.fromDataDir(dir, { name, ownsDataDir: true });
  await c.start();
  return c;
}

describe('tablespaces and incremental chains', () => {
  let src: PgCluster;
  let repo: string;
  let tsDir: string;
  const base = () => ['--repo', repo, '--stanza', 'ts'];

  beforeAll(async () => {
    repo = await createRepo(await makeSharedTempDir('pgark-bo-repo-'));
    src = await PgCluster.create({ name: 'bo-ts', dataChecksums: true, conf: { archive_mode: 'on', archive_command: archiveCommand({ repo, stanza: 'ts' }) } });
    await src.start();
    tsDir = await newDir('tablespace');
    await src.psql(`CREATE TABLESPACE bo_ts LOCATION '${tsDir}'`);
    await src.psql('CREATE TABLE t_ts (id int PRIMARY KEY, v text) TABLESPACE bo_ts');
    await src.psql("INSERT INTO t_ts SELECT g, md5(g::text) FROM generate_series(1, 20000) g");
  }, 120_000);

  it('backs up a tablespace and restores it into a mapped directory', async () => {
    const b = await pgark(['backup', ...base(), '--pgdata', src.dataDir, '--type', 'full', '--no-progress', '--json'], { env: connEnv(src) });
    const info = JSON.parse(b.stdout) as { id: string; size: { files: number } };
    const expected = await src.psql("SELECT count(*) || ':' || md5(string_agg(v, ',' ORDER BY id)) FROM t_ts");
    const oid = await src.psql("SELECT oid FROM pg_tablespace WHERE spcname = 'bo_ts'");
    const shown = JSON.parse((await pgark(['show', info.id, ...base(), '--files', '--json'])).stdout) as { links: Array<{ path: string; target: string }>; files: Array<{ path: string }> };
    expect(shown.links).toEqual([{ t: 'link', path: `pg_tblspc/${oid}`, target: tsDir }]);
    expect(shown.files.some((f) => f.path.startsWith(`pg_tblspc/${oid}/PG_15_`))).toBe(true);

    // The original location is in use (non-empty): refused without a map.
    const target = await newDir('ts-restore');
    const refused = await pgark(['restore', info.id, ...base(), '--pgdata', target, '--no-progress'], { allowFail: true });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(`tablespace directory '${tsDir}'`);
    expect(existsSync(join(target, 'global', 'pg_control'))).toBe(false);

    const newTs = join(work, 'tablespace-moved');
    const r = await pgark(['restore', info.id, ...base(), '--pgdata', target, '--tablespace-map', `bo_ts=${newTs}`, '--target-immediate', '--target-action', 'promote', '--no-progress']);
    expect(r.code).toBe(0);
    expect(await readlink(join(target, 'pg_tblspc', oid))).toBe(newTs);
    const copy = await startCopy(target, 'bo-ts-copy');
    await waitUntil('promotion', async () => (await copy.psql('SELECT pg_is_in_recovery()')) === 'f');
    expect(await copy.psql("SELECT pg_tablespace_location(oid) FROM pg_tablespace WHERE spcname = 'bo_ts'")).toBe(newTs);
    expect(await copy.psql("SELECT count(*) || ':' || md5(string_agg(v, ',' ORDER BY id)) FROM t_ts")).toBe(expected);
    await copy.stop();
  }, 180_000);

  it('--type auto starts a new full backup when the chain reaches incr-chain-max', async () => {
    const run = async (type: string, extra: string[] = []) =>
      pgark(['backup', ...base(), '--pgdata', src.dataDir, '--type', type, '--incr-chain-max', '1', '--no-progress', '--json', ...extra], { env: connEnv(src), allowFail: true });
    await src.psql('UPDATE t_ts SET v = v || 1 WHERE id <= 100');
    const first = await run('auto');
    expect(first.code).toBe(0);
    const a = JSON.parse(first.stdout) as { type: string; chain: string[]; notes: string[] };
    expect(a.type).toBe('incr');
    expect(a.chain).toHaveLength(2);
    const refused = await run('incr');
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('incr-chain-max 1');
    const second = await run('auto');
    expect(second.code).toBe(0);
    const b = JSON.parse(second.stdout) as { type: string; chain: string[]; notes: string[] };
    expect(b.type).toBe('full');
    expect(b.chain).toHaveLength(1);
    expect(b.notes.join('\n')).toContain('incr-chain-max 1');
  }, 120_000);
});

describe('--store-wal and standby restores', () => {
  let src: PgCluster;
  let repo: string;
  const base = () => ['--repo', repo, '--stanza', 'sw'];

  beforeAll(async () => {
    repo = await createRepo(await makeSharedTempDir('pgark-bo-repo2-'));
    src = await PgCluster.create({ name: 'bo-sw', dataChecksums: true, conf: { archive_mode: 'off', wal_level: 'replica', max_wal_senders: '5', wal_keep_size: '256MB' } });
    await src.start();
    await src.psql('CREATE TABLE t (id int PRIMARY KEY, v text)');
    await src.psql("INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 5000) g");
  }, 120_000);

  it('refuses a backup that could never get its WAL, and takes it with --store-wal', async () => {
    const refused = await pgark(['backup', ...base(), '--pgdata', src.dataDir, '--no-progress'], { env: connEnv(src), allowFail: true });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('archive_mode is off');
    // No backup: the stanza does not exist (exit 8, like every read command) or lists none.
    const l0 = await pgark(['list', ...base(), '--json'], { allowFail: true });
    expect(l0.code === 8 ? [] : (JSON.parse(l0.stdout) as { backups: unknown[] }).backups).toEqual([]);

    const b = await pgark(['backup', ...base(), '--pgdata', src.dataDir, '--store-wal', '--no-progress', '--json'], { env: connEnv(src) });
    const info = JSON.parse(b.stdout) as { id: string; walStored: boolean; walRange: { first: string; last: string } };
    expect(info.walStored).toBe(true);
    const expected = await src.psql("SELECT count(*) || ':' || md5(string_agg(v, ',' ORDER BY id)) FROM t");
    const shown = JSON.parse((await pgark(['show', info.id, ...base(), '--files', '--json'])).stdout) as { files: Array<{ path: string }> };
    expect(shown.files.map((f) => f.path).filter((p) => p.startsWith('pg_wal/'))).toContain(`pg_wal/${info.walRange.last}`);

    const target = await newDir('sw-restore');
    await pgark(['restore', info.id, ...base(), '--pgdata', target, '--target-immediate', '--target-action', 'promote', '--no-progress']);
    expect(existsSync(join(target, 'pg_wal', info.walRange.first))).toBe(true);
    const copy = await startCopy(target, 'bo-sw-copy');
    await waitUntil('promotion', async () => (await copy.psql('SELECT pg_is_in_recovery()')) === 'f');
    expect(await copy.psql("SELECT count(*) || ':' || md5(string_agg(v, ',' ORDER BY id)) FROM t")).toBe(expected);
    await copy.stop();
  }, 180_000);

  it('restore --standby --primary-conninfo streams from the primary; --keep-archive keeps archive settings', async () => {
    const target = await newDir('sw-standby');
    const conninfo = `host=${src.socketDir} port=${src.port} user=postgres`;
    await pgark(['restore', 'latest', ...base(), '--pgdata', target, '--standby', '--primary-conninfo', conninfo, '--keep-archive', '--no-progress']);
    const auto = await readFile(join(target, 'postgresql.auto.conf'), 'utf8');
    expect(existsSync(join(target, 'standby.signal'))).toBe(true);
    expect(existsSync(join(target, 'recovery.signal'))).toBe(false);
    expect(auto).toContain(`primary_conninfo = '${conninfo}'`);
    expect(auto).not.toMatch(/^archive_mode/m);
    const standby = await startCopy(target, 'bo-sw-standby');
    expect(await standby.psql('SELECT pg_is_in_recovery()')).toBe('t');
    await src.psql("INSERT INTO t VALUES (900001, 'streamed')");
    await waitUntil('the row to stream to the standby', async () => (await standby.psql('SELECT count(*) FROM t WHERE id = 900001')) === '1');
    expect(await standby.psql("SELECT status FROM pg_stat_wal_receiver")).toBe('streaming');
    await standby.stop();
  }, 180_000);
});
