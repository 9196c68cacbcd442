/**
 * pgark's exclusion rules against PostgreSQL's own: the files pg_basebackup copies from a real
 * PostgreSQL 15 data directory equal the files our rules keep (WAL aside, which both leave out).
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { exclusionReason, isRelationDirectory, unloggedRelations } from '../../src/backup/exclusions.js';
import { destroyAllClusters, makeSharedTempDir, PgCluster } from '../helpers/pg-cluster.js';

afterAll(async () => {
  await destroyAllClusters();
});

/** Every file and directory under `root` that our rules keep. */
async function kept(root: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  const entries = await readdir(join(root, rel), { withFileTypes: true });
  const unlogged = isRelationDirectory(rel) ? unloggedRelations(entries.filter((e) => e.isFile()).map((e) => e.name)) : new Set<string>();
  for (const e of entries) {
    const path = rel ? `${rel}/${e.name}` : e.name;
    const kind = e.isDirectory() ? 'dir' : 'file';
    if (exclusionReason(path, kind, unlogged) !== undefined) continue;
    out.push(`${kind}:${path}`);
    if (kind === 'dir') out.push(...(await kept(root, path)));
  }
  return out;
}

async function all(root: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(join(root, rel), { withFileTypes: true })) {
    const path = rel ? `${rel}/${e.name}` : e.name;
    out.push(`${e.isDirectory() ? 'dir' : 'file'}:${path}`);
    if (e.isDirectory()) out.push(...(await all(root, path)));
  }
  return out;
}

describe('backup exclusions match pg_basebackup', () => {
  it('keeps exactly what pg_basebackup copies', async () => {
    // No autovacuum: nothing may create files between pg_basebackup and our walk.
    const c = await PgCluster.create({ name: 'exclusions', conf: { autovacuum: 'off' } });
    await c.start();
    await c.psql('CREATE TABLE logged_t AS SELECT g FROM generate_series(1, 1000) g');
    await c.psql('CREATE UNLOGGED TABLE unlogged_t AS SELECT g FROM generate_series(1, 1000) g');
    await c.psql('CHECKPOINT');
    const copy = join(await makeSharedTempDir('pgark-excl-'), 'copy');
    await c.basebackup(copy, { walMethod: 'none', extraArgs: ['--no-manifest'] });
    const ours = new Set(await kept(c.dataDir));
    const theirs = new Set((await all(copy)).filter((p) => p !== 'file:backup_label'));
    const unlogged = await c.psql("SELECT pg_relation_filepath('unlogged_t')");
    expect(ours.has(`file:${unlogged}`)).toBe(false);
    expect(ours.has(`file:${unlogged}_init`)).toBe(true);
    expect([...theirs].filter((p) => !ours.has(p))).toEqual([]);
    expect([...ours].filter((p) => !theirs.has(p))).toEqual([]);
  }, 120_000);
});
