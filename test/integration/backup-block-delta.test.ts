/**
 * Page-LSN block deltas of incremental backups (backup/block-delta.ts) against real PostgreSQL
 * 15, one cluster initialised WITHOUT data checksums (the PostgreSQL 15 default):
 *
 * 1. full backup; then a read that sets hint bits on every page of table `t` (no WAL, pd_lsn
 *    unchanged: checksums are off) and an UPDATE of some rows; incremental I1. Taking the
 *    hint-bit-only pages from the parent would make the rebuilt file differ from the sha256 the
 *    manifest records (restore refused it before the fix), so I1 stores `t` whole and says why.
 * 2. stop, `pg_checksums --enable` (rewrites every page's pd_checksum, pd_lsn unchanged), start;
 *    incremental I2 on I1: the parent had no checksums, so `t` is stored whole again.
 * 3. UPDATE of other rows; incremental I3 on I2 (--jobs 3: worker threads as well as the main
 *    thread's lane): checksums on in both, so `t` is a block delta of far fewer blocks than the
 *    file has.
 * I1 and I3 (whose chain holds I2 and the full backup) restore to exactly the source's rows.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { archiveCommand, connEnv, destroyAllClusters, findPgBin, makeSharedTempDir, PgCluster, runAsUser, waitPromoted } from '../helpers/pg-cluster.js';
import { pgark } from '../helpers/pgark-run.js';
import { createRepo } from '../helpers/repo.js';

const STANZA = 'main';
const ROWS = "SELECT count(*) || ':' || md5(string_agg(id || ':' || v, ',' ORDER BY id)) FROM t";

interface BackupJson {
  id: string;
  type: 'full' | 'incr';
  size: { changedBlocks?: number; reusedBlocks?: number };
  notes: string[];
}
interface ManifestFile {
  path: string;
  size: number;
  object?: { backup: string };
  delta?: { blocks: Array<[number, number]> };
}

afterAll(async () => {
  await destroyAllClusters();
}, 120_000);

describe('incremental block deltas need data checksums (hint bits, pg_checksums --enable)', () => {
  let repo: string;
  let work: string;
  let src: PgCluster;
  let tPath: string;
  let i1: BackupJson;
  let i2: BackupJson;
  let i3: BackupJson;
  let rows1: string;
  let rows3: string;

  const backup = async (type: 'full' | 'incr', jobs = 2): Promise<BackupJson> => {
    const r = await pgark(['backup', '--type', type, '--repo', repo, '--stanza', STANZA, '--pgdata', src.dataDir, '--jobs', String(jobs), '--no-progress', '--json'],
      { env: connEnv(src), timeoutMs: 240_000, allowFail: true });
    if (r.code !== 0) throw new Error(`pgark backup --type ${type} exited ${r.code}\n${r.stderr.slice(-4000)}`);
    return JSON.parse(r.stdout) as BackupJson;
  };
  const fileOf = async (id: string): Promise<ManifestFile> => {
    const r = await pgark(['show', id, '--files', '--json', '--repo', repo, '--stanza', STANZA], { timeoutMs: 60_000 });
    return (JSON.parse(r.stdout) as { files: ManifestFile[] }).files.find((f) => f.path === tPath)!;
  };
  const restoredRows = async (id: string, name: string): Promise<string> => {
    const dir = join(work, name);
    const r = await pgark(['restore', id, '--repo', repo, '--stanza', STANZA, '--pgdata', dir, '--jobs', '2', '--no-progress', '--target-immediate', '--target-action', 'promote'],
      { timeoutMs: 240_000, allowFail: true });
    expect(r.code, r.stderr.slice(-3000)).toBe(0);
    const copy = await PgCluster.fromDataDir(dir, { name });
    try {
      await copy.start({ timeoutSec: 120 });
      await waitPromoted(copy);
      return await copy.psql(ROWS);
    } finally {
      await copy.destroy();
    }
  };

  beforeAll(async () => {
    repo = await createRepo(await makeSharedTempDir('pgark-bdelta-repo-'));
    work = await makeSharedTempDir('pgark-bdelta-work-');
    src = await PgCluster.create({
      name: 'bdelta', dataChecksums: false,
      conf: { archive_mode: 'on', archive_command: archiveCommand({ repo, stanza: STANZA }), autovacuum: 'off', checkpoint_timeout: '30min' },
    });
    await src.start();
    // About 9 MiB: an object of its own (large files are the ones stored as block deltas). No
    // read after the insert, so no hint bits are set when the full backup copies it.
    await src.psql("CREATE TABLE t(id int, v text); INSERT INTO t SELECT g, repeat('x', 200) FROM generate_series(1, 40000) g; CHECKPOINT;");
    tPath = await src.psql("SELECT pg_relation_filepath('t')");
    await backup('full');

    // Hint bits on every page (no WAL: checksums off), and some rows changed after the parent.
    await src.psql('SELECT count(*) FROM t; UPDATE t SET v = upper(v) WHERE id % 97 = 0;');
    i1 = await backup('incr');
    rows1 = await src.psql(ROWS);
    // Settle hint bits and dead tuples before I2, so that I3 sees only its own UPDATE's pages.
    await src.psql('VACUUM t;');

    await src.stop();
    await runAsUser(join(findPgBin(), 'pg_checksums'), ['--enable', '--no-sync', '-D', src.dataDir], { timeoutMs: 120_000 });
    await src.start();
    i2 = await backup('incr');

    await src.psql("UPDATE t SET v = 'changed' WHERE id % 401 = 0;");
    i3 = await backup('incr', 3); // beyond MAIN_THREAD_LANES: worker threads copy too
    rows3 = await src.psql(ROWS);
  }, 400_000);

  it('without data checksums the incremental stores changed relation files whole and says why', async () => {
    expect(i1.type).toBe('incr');
    expect(i1.notes.join('\n')).toMatch(/stored whole, not as page-LSN block deltas: data checksums are off/);
    const f = await fileOf(i1.id);
    expect(f.delta).toBeUndefined();
    expect(f.object?.backup).toBe(i1.id);
  });

  it('restores the incremental taken without checksums to exactly the source rows', async () => {
    expect(await restoredRows(i1.id, 'bdelta-i1')).toBe(rows1);
  });

  it('after pg_checksums --enable, an incremental on a parent without checksums stores whole files', async () => {
    expect(i2.notes.join('\n')).toMatch(/parent backup was taken without data checksums/);
    expect((await fileOf(i2.id)).delta).toBeUndefined();
  });

  it('with checksums here and in the parent, the changed table is a block delta of few blocks', async () => {
    expect(i3.notes.join('\n')).not.toMatch(/block deltas/);
    const f = await fileOf(i3.id);
    const stored = (f.delta?.blocks ?? []).reduce((n, [, count]) => n + count, 0);
    expect(f.delta).toBeDefined();
    expect(stored).toBeGreaterThan(0);
    expect(stored).toBeLessThan(f.size / 8192 / 4);
    expect(i3.size.reusedBlocks).toBeGreaterThan(0);
  });

  it('restores the block-delta incremental (chain full, I1, I2, I3) to exactly the source rows', async () => {
    expect(await restoredRows(i3.id, 'bdelta-i3')).toBe(rows3);
  });
});
