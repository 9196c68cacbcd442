/**
 * Page checksum verification against a real PostgreSQL cluster initialised with --data-checksums:
 * every page of every main-fork relation file of a cleanly stopped cluster verifies, and a single
 * flipped byte is reported for exactly the block that holds it (and PostgreSQL agrees).
 */
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseRelationFileName } from '../../src/backup/exclusions.js';
import { BLCKSZ, absoluteBlockNumber, pageLsn, verifyPage, verifyPageAt, type PageVerdict } from '../../src/backup/page-checksum.js';
import { CommandError, destroyAllClusters, PgCluster } from '../helpers/pg-cluster.js';

afterAll(async () => {
  await destroyAllClusters();
});

interface FileReport {
  path: string;
  counts: Record<PageVerdict, number>;
  bad: number[];
}

/** Verify every page of every main-fork relation file under global/ and base/<db>/. */
async function verifyDataDir(dataDir: string): Promise<FileReport[]> {
  const dirs = ['global', ...(await readdir(join(dataDir, 'base'))).map((d) => `base/${d}`)];
  const reports: FileReport[] = [];
  for (const dir of dirs) {
    for (const name of await readdir(join(dataDir, dir))) {
      const rel = parseRelationFileName(name);
      if (!rel || rel.fork !== 'main') continue;
      const buf = await readFile(join(dataDir, dir, name));
      expect(buf.length % BLCKSZ, `${dir}/${name} size`).toBe(0);
      const report: FileReport = { path: `${dir}/${name}`, counts: { ok: 0, new: 0, bad: 0 }, bad: [] };
      for (let offset = 0, i = 0; offset < buf.length; offset += BLCKSZ, i++) {
        const block = absoluteBlockNumber(rel.segment, i);
        const verdict = verifyPageAt(buf, offset, block);
        report.counts[verdict]++;
        if (verdict === 'bad') report.bad.push(block);
      }
      reports.push(report);
    }
  }
  return reports;
}

function total(reports: FileReport[], v: PageVerdict): number {
  return reports.reduce((n, r) => n + r.counts[v], 0);
}

describe('page checksums of a real cluster', () => {
  it('verifies every page, then finds exactly the corrupted block', async () => {
    const c = await PgCluster.create({ name: 'page-checksum', dataChecksums: true, conf: { autovacuum: 'off' } });
    await c.start();
    expect(await c.psql('SHOW data_checksums')).toBe('on');
    await c.psql("CREATE TABLE t AS SELECT g AS id, md5(g::text) AS payload FROM generate_series(1, 5000) g");
    // VACUUM rewrites every page of t (hint bits, all-visible) and creates its fsm and vm forks.
    await c.psql('VACUUM t');
    await c.psql('CHECKPOINT');
    const relPath = await c.psql("SELECT pg_relation_filepath('t')");
    const nblocks = Number(await c.psql("SELECT pg_relation_size('t') / current_setting('block_size')::int"));
    expect(relPath).toMatch(/^base\/\d+\/\d+$/);
    expect(nblocks).toBeGreaterThan(20);
    await c.stop();

    // 1. A cleanly stopped cluster: every page verifies.
    const reports = await verifyDataDir(c.dataDir);
    expect(reports.filter((r) => r.counts.bad > 0).map((r) => `${r.path}: ${r.bad.join(',')}`)).toEqual([]);
    expect(total(reports, 'ok')).toBeGreaterThan(500);
    const table = reports.find((r) => r.path === relPath);
    expect(table?.counts).toEqual({ ok: nblocks, new: 0, bad: 0 });

    // 2. Flip one byte in the middle of a data page of t: exactly that block is bad.
    const file = join(c.dataDir, relPath);
    const original = await readFile(file);
    const target = Math.floor(nblocks / 2);
    const corrupted = Buffer.from(original);
    const at = target * BLCKSZ + BLCKSZ / 2;
    corrupted[at] = corrupted[at]! ^ 0x10;
    await writeFile(file, corrupted);

    const bad: number[] = [];
    for (let block = 0; block < nblocks; block++) {
      const page = corrupted.subarray(block * BLCKSZ, (block + 1) * BLCKSZ);
      const verdict = verifyPage(page, block);
      if (verdict !== 'ok') bad.push(block);
      // The flipped byte is not in the header, so pd_lsn is unchanged.
      expect(pageLsn(page)).toBe(pageLsn(original, block * BLCKSZ));
    }
    expect(bad).toEqual([target]);
    const after = await verifyDataDir(c.dataDir);
    expect(after.filter((r) => r.counts.bad > 0).map((r) => ({ path: r.path, bad: r.bad }))).toEqual([{ path: relPath, bad: [target] }]);

    // 3. PostgreSQL agrees about which block is damaged.
    await c.start();
    const err = await c.psql('SELECT count(*) FROM t').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(CommandError);
    expect((err as CommandError).result.stderr).toContain(`invalid page in block ${target} of relation ${relPath}`);
    await c.stop();
  }, 180_000);
});
