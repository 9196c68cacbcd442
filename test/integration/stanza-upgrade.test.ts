/**
 * `pgark stanza-upgrade` after a real pg_upgrade (PostgreSQL 15 -> 15 into a new initdb, which
 * pg_upgrade allows; the new cluster has a new system identifier): archive and back up the old
 * cluster; pg_upgrade; the new cluster's wal-push exits 4 and says to run stanza-upgrade;
 * stanza-upgrade; archiving works; info shows both clusters; wal-verify reads the old and new
 * WAL under their own identifiers; the old backup still restores (recovery fetches the old
 * cluster's WAL after the upgrade) with the old data; a new backup is full.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { archiveCommand, destroyAllClusters, findPgBin, freePort, makeSharedTempDir, PgCluster, runAsUser } from '../helpers/pg-cluster.js';
import { pgark } from '../helpers/pgark-run.js';
import { createRepo } from '../helpers/repo.js';
import { expectJsonFormat } from '../helpers/json-schema.js';

const STANZA = 'main';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const FP = "SELECT count(*) || ':' || md5(string_agg(id || v, ',' ORDER BY id)) FROM t";

let repo: string;
let work: string;
let oldPg: PgCluster;
let newPg: PgCluster;
let oldBackup: string;
let oldFingerprint: string;
let oldSysid: string;
let newSysid: string;

const common = () => ['--repo', repo, '--stanza', STANZA];

async function run(args: string[], env: Record<string, string> = {}): Promise<string> {
  const r = await pgark(args, { env, allowFail: true, timeoutMs: 240_000 });
  if (r.code !== 0) throw new Error(`pgark ${args.join(' ')} exited ${r.code}\n${r.stdout}\n${r.stderr.slice(-4000)}`);
  return r.stdout;
}

afterAll(async () => {
  await destroyAllClusters();
}, 120_000);

beforeAll(async () => {
  repo = await createRepo(await makeSharedTempDir('pgark-up-repo-'));
  work = await makeSharedTempDir('pgark-up-work-');
  oldPg = await PgCluster.create({ name: 'up-old', conf: { archive_mode: 'on', archive_command: archiveCommand({ repo, stanza: STANZA }) } });
  await oldPg.start();
  await oldPg.psql('CREATE TABLE t AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 5000) g');
  oldFingerprint = await oldPg.psql(FP);
  oldSysid = await oldPg.psql('SELECT system_identifier FROM pg_control_system()');
  const b = JSON.parse(await run(['backup', ...common(), '--pgdata', oldPg.dataDir, '--no-progress', '--type', 'full', '--json'], oldPg.clientEnv())) as { id: string };
  oldBackup = b.id;
  await oldPg.psql('INSERT INTO t SELECT g, md5(g::text) FROM generate_series(5001, 6000) g');
  await oldPg.waitForArchived(await oldPg.switchWal(), 60_000);
  await oldPg.stop();

  // The new cluster: a fresh initdb (no archiving while pg_upgrade runs it), then pg_upgrade.
  newPg = await PgCluster.create({ name: 'up-new' });
  const bin = findPgBin();
  await runAsUser(join(bin, 'pg_upgrade'), [
    '-b', bin, '-B', bin, '-d', oldPg.dataDir, '-D', newPg.dataDir, '-p', String(await freePort()), '-P', String(await freePort()),
    '-s', newPg.baseDir, '-U', 'postgres',
  ], { cwd: newPg.baseDir, timeoutMs: 300_000 });
  await newPg.setConf({ archive_mode: 'on', archive_command: archiveCommand({ repo, stanza: STANZA }) });
  await newPg.start();
  newSysid = await newPg.psql('SELECT system_identifier FROM pg_control_system()');
}, 600_000);

describe('stanza-upgrade after pg_upgrade', () => {
  it('wal-push of the upgraded cluster exits 4 and says to run stanza-upgrade', async () => {
    expect(newSysid).not.toBe(oldSysid);
    expect(await newPg.psql('SELECT count(*) FROM t')).toBe('6000');
    const seg = await newPg.switchWal();
    // The archiver fails on it: the repository's stanza is the old cluster's.
    const deadline = Date.now() + 60_000;
    while ((await newPg.archiverStats()).failed_count === 0) {
      if (Date.now() > deadline) throw new Error('archive_command never failed');
      await sleep(200);
    }
    const r = await pgark(['wal-push', ...common(), join(newPg.dataDir, 'pg_wal', seg)], { allowFail: true });
    expect(r.code).toBe(4);
    expect(r.stderr).toContain(`system identifier ${newSysid} (stanza has ${oldSysid})`);
    expect(r.stderr).toContain(`run 'pgark stanza-upgrade --stanza ${STANZA} --pgdata <the new data directory>'`);
  }, 120_000);

  it('stanza-upgrade rebinds the stanza; archiving then works; info shows both clusters', async () => {
    const out = expectJsonFormat<{
      upgraded: boolean; previous: { systemIdentifier: string }; current: { systemIdentifier: string; sinceLsn: string };
    }>(await run(['stanza-upgrade', ...common(), '--pgdata', newPg.dataDir, '--json']), 'stanza-upgrade');
    expect(out).toMatchObject({ upgraded: true, previous: { systemIdentifier: oldSysid }, current: { systemIdentifier: newSysid } });
    // Idempotent.
    expect(JSON.parse(await run(['stanza-upgrade', ...common(), '--pgdata', newPg.dataDir, '--json']))).toMatchObject({ upgraded: false });

    const seg = await newPg.switchWal();
    await newPg.waitForArchived(seg, 120_000);
    const info = expectJsonFormat<{ systemIdentifier: string; sinceLsn: string; priorClusters: Array<{ systemIdentifier: string }> }>(await run(['info', ...common(), '--json']), 'info');
    expect(info.systemIdentifier).toBe(newSysid);
    expect(info.sinceLsn).toBe(out.current.sinceLsn);
    expect(info.priorClusters.map((c) => c.systemIdentifier)).toEqual([oldSysid]);
    const text = await run(['info', ...common()]);
    expect(text).toContain(`before: system identifier ${oldSysid}`);

    // Every archived segment, old and new, reads back under its own cluster's identifier.
    const verify = await pgark(['wal-verify', ...common(), '--read'], { allowFail: true, timeoutMs: 240_000 });
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
  }, 300_000);

  it('a new backup is full; the old backup still restores with the old data', async () => {
    const nb = JSON.parse(await run(['backup', ...common(), '--pgdata', newPg.dataDir, '--no-progress', '--json'], newPg.clientEnv())) as { id: string; type: string };
    expect(nb.type).toBe('full');
    const list = await run(['list', ...common()]);
    expect(list).toContain(oldBackup);
    expect(list).toContain(nb.id);

    const dir = join(work, 'old-copy');
    await run(['restore', oldBackup, ...common(), '--pgdata', dir, '--no-progress']);
    const copy = await PgCluster.fromDataDir(dir, { name: 'up-copy' });
    await copy.start({ timeoutSec: 180 });
    const deadline = Date.now() + 180_000;
    while ((await copy.psql('SELECT pg_is_in_recovery()')) !== 'f') {
      if (Date.now() > deadline) throw new Error(`recovery did not end\n${await copy.readLog(8000)}`);
      await sleep(300);
    }
    // Recovery replayed the old cluster's archived WAL past the backup (rows 5001-6000).
    expect(await copy.psql('SELECT count(*) FROM t')).toBe('6000');
    expect(await copy.psql('SELECT system_identifier FROM pg_control_system()')).toBe(oldSysid);
    expect(await copy.readLog(200_000)).not.toMatch(/differs from/);
    await copy.destroy();
  }, 420_000);
});
