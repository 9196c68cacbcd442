/**
 * `pgark verify` rebuilds files stored as block deltas (catalog/delta-check.ts) against real
 * PostgreSQL 15, one cluster with data checksums (initdb -k):
 *
 * full F; an UPDATE of some rows of table `t`; incremental I1, which stores `t` as a page-LSN
 * block delta; incremental I2 with `t` untouched (every block from I1). verify passes.
 *
 * Then I1's delta object is rewritten through pgark's own object writer with other bytes in one
 * stored block: the object's checksums are those of its new content, so every object reads
 * clean, but `t` rebuilt from the chain is no longer what the manifest records — what a delta
 * taken by an older build with stale parent blocks looks like (hint bits set without checksums do
 * not move pd_lsn). Restore refuses I1 ("restored '<t>' does not match the manifest"); verify
 * exits 7 naming `t` under I1 and under I2, which rebuilds `t` from the same layers, although
 * the run before recorded those files as verified (the rewritten object's mtime changed). Before
 * verify rebuilt block deltas it passed this chain (exit 0).
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { archiveCommand, connEnv, destroyAllClusters, makeSharedTempDir, PgCluster, PROJECT_ROOT, runAsUser } from '../helpers/pg-cluster.js';
import { pgark } from '../helpers/pgark-run.js';
import { createRepo } from '../helpers/repo.js';

const STANZA = 'main';

interface BackupJson {
  id: string;
}
interface ManifestFile {
  path: string;
  size: number;
  object?: { backup: string; n: number };
  delta?: { n: number; offset: number; blocks: Array<[number, number]> };
}
interface VerifyJson {
  ok: boolean;
  backups: Array<{ id: string; ok: boolean; problems: string[]; deltaFilesRebuilt?: number; deltaFilesSkipped?: number }>;
}

/**
 * Rewrites one object of the repository through pgark's object writer (Repository.putObject, the
 * built modules), with byte `pos` of its content inverted: a validly checksummed object.
 */
const REWRITE = `
const [root, location, stanza, key, pos] = process.argv.slice(2);
const { openDriver } = await import(root + '/dist/storage-drivers/registry.js');
const { Repository } = await import(root + '/dist/src/repo/repository.js');
const { readAll } = await import(root + '/dist/src/repo/object-stream.js');
const { Readable } = await import('node:stream');
const repo = new Repository(await openDriver(location), stanza, { attempts: 1, budgetMs: 0 });
const raw = Buffer.from(await readAll(await repo.getObject(key), 2 ** 30));
raw[Number(pos)] ^= 0xff;
await repo.putObject(key, () => Readable.from([raw]), { codec: 'lz4' });
await repo.close();
`;

afterAll(async () => {
  await destroyAllClusters();
}, 120_000);

describe('verify rebuilds block-delta files from the chain and compares them with the manifest', () => {
  let repo: string;
  let work: string;
  let src: PgCluster;
  let tPath: string;
  let F: BackupJson;
  let I1: BackupJson;
  let I2: BackupJson;
  let t1: ManifestFile;

  const run = (args: string[], timeoutMs = 120_000) => pgark([...args, '--repo', repo, '--stanza', STANZA], { env: connEnv(src), timeoutMs, allowFail: true });
  const backup = async (type: 'full' | 'incr'): Promise<BackupJson> => {
    const r = await run(['backup', '--type', type, '--pgdata', src.dataDir, '--jobs', '2', '--no-progress', '--json'], 240_000);
    if (r.code !== 0) throw new Error(`pgark backup --type ${type} exited ${r.code}\n${r.stderr.slice(-4000)}`);
    return JSON.parse(r.stdout) as BackupJson;
  };
  const fileOf = async (id: string): Promise<ManifestFile> => {
    const r = await run(['show', id, '--files', '--json']);
    return (JSON.parse(r.stdout) as { files: ManifestFile[] }).files.find((f) => f.path === tPath)!;
  };
  const verify = async (args: string[] = []): Promise<{ code: number | null; out: VerifyJson; stderr: string }> => {
    const r = await run(['verify', ...args, '--json']);
    return { code: r.code, out: JSON.parse(r.stdout) as VerifyJson, stderr: r.stderr };
  };

  beforeAll(async () => {
    repo = await createRepo(await makeSharedTempDir('pgark-vdelta-repo-'));
    work = await makeSharedTempDir('pgark-vdelta-work-');
    src = await PgCluster.create({
      name: 'vdelta', dataChecksums: true,
      conf: { archive_mode: 'on', archive_command: archiveCommand({ repo, stanza: STANZA }), autovacuum: 'off', checkpoint_timeout: '30min' },
    });
    await src.start();
    // About 9 MiB: an object of its own; set its hint bits before F, so I1 sees only its UPDATE.
    await src.psql("CREATE TABLE t(id int, v text); INSERT INTO t SELECT g, repeat('x', 200) FROM generate_series(1, 40000) g; SELECT count(*) FROM t; CHECKPOINT;");
    tPath = await src.psql("SELECT pg_relation_filepath('t')");
    F = await backup('full');
    await src.psql("UPDATE t SET v = 'changed' WHERE id % 401 = 0; SELECT count(*) FROM t; CHECKPOINT;");
    I1 = await backup('incr');
    await src.psql('CREATE TABLE u AS SELECT 1 AS x; CHECKPOINT;');
    I2 = await backup('incr');
    t1 = await fileOf(I1.id);
  }, 300_000);

  it('I1 stores t as a block delta; verify rebuilds it under I1 and I2 and passes', async () => {
    expect(t1.delta?.blocks.length).toBeGreaterThan(0);
    expect((await fileOf(I2.id)).delta).toBeDefined();
    const v = await verify();
    expect(v.code, v.stderr.slice(-2000)).toBe(0);
    expect(v.out.backups.map((b) => [b.id, b.ok, b.problems])).toEqual([[F.id, true, []], [I1.id, true, []], [I2.id, true, []]]);
    const i1 = v.out.backups.find((b) => b.id === I1.id)!;
    expect(i1.deltaFilesRebuilt).toBeGreaterThan(0);
    // Again: rebuilt before from the same objects, so skipped (the next test's rewrite changes one: rebuilt again).
    const again = await verify();
    expect(again.code).toBe(0);
    expect(again.out.backups.map((b) => [b.id, b.deltaFilesRebuilt, b.deltaFilesSkipped])).toEqual(v.out.backups.map((b) => [b.id, 0, b.deltaFilesRebuilt]));
  }, 120_000);

  it('a delta object rewritten with other, validly checksummed bytes: restore refuses I1, verify exits 7 naming t under I1 and I2', async () => {
    const key = `${STANZA}/backup/${I1.id}/data/${t1.delta!.n}`;
    const script = join(work, 'rewrite.mjs');
    await writeFile(script, REWRITE, { mode: 0o644 });
    // A byte in the middle of the first block stored for t.
    await runAsUser(process.execPath, [script, PROJECT_ROOT, repo, STANZA, key, String(t1.delta!.offset + 4096)], { timeoutMs: 60_000 });

    const r = await run(['restore', I1.id, '--pgdata', join(work, 'restore-i1'), '--jobs', '2', '--no-progress'], 240_000);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`restored '${tPath}' does not match the manifest`);

    const v = await verify();
    expect(v.code, v.stderr.slice(-2000)).toBe(7);
    expect(v.out.ok).toBe(false);
    const by = new Map(v.out.backups.map((b) => [b.id, b]));
    expect(by.get(F.id)!.problems).toEqual([]);
    for (const id of [I1.id, I2.id]) {
      const b = by.get(id)!;
      expect(b.ok).toBe(false);
      expect(b.problems).toHaveLength(1);
      expect(b.problems[0]).toMatch(new RegExp(`^'${tPath}' of backup ${id}, rebuilt from backups ${F.id}, ${I1.id}, does not match the manifest \\(${t1.size} bytes, sha256 [0-9a-f]{16}…; expected ${t1.size} bytes, [0-9a-f]{16}…\\): restore would refuse this backup$`));
    }

    // Only I1 asked for: the same problem; and the text form names the file.
    const one = await run(['verify', I1.id]);
    expect(one.code).toBe(7);
    expect(one.stdout).toContain(`FAILED ${I1.id}`);
    expect(one.stdout).toContain(`'${tPath}' of backup ${I1.id}, rebuilt from backups ${F.id}, ${I1.id}, does not match the manifest`);
    expect(one.stdout).toContain('verification FAILED');
  }, 300_000);
});
