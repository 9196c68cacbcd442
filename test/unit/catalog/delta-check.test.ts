/**
 * verify's check of block-delta files (catalog/delta-check.ts, layer-merge.ts): a file an
 * incremental stored as changed blocks is rebuilt from its chain as restore rebuilds it and
 * compared with the manifest's size and sha256. Bytes: the block merge by hand; then a chain
 * backed up into a repository in memory (full F, incremental I with a block delta, I2 on I taking
 * the file unchanged), correct (passes) and with I's delta object rewritten through pgark's
 * object writer with other, validly checksummed content (every object still reads clean; the
 * rebuild is found wrong under I and under I2, as restore refuses it).
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Layer } from '../../../src/catalog/chain-layers.js';
import { deltaProblem, planDeltaChecks, rebuildDelta, type DeltaCheck } from '../../../src/catalog/delta-check.js';
import { LayerMerge, type BlockSource } from '../../../src/catalog/layer-merge.js';
import { dataObjectKey } from '../../../src/repo/layout.js';
import { readAll } from '../../../src/repo/object-stream.js';
import { backupDirectory, restoreInto, type BackedUp } from '../../helpers/memory-backup.js';
import { memoryRepo, type MemoryRepo } from '../../helpers/memory-repo.js';
import { EXCLUDED, pages, setPageLsn, syntheticFiles, writeFiles } from '../../helpers/synthetic-pgdata.js';

/** A layer's bytes from a buffer. */
function source(buf: Buffer): BlockSource {
  let pos = 0;
  return {
    async *take(n: number) {
      if (pos + n > buf.length) throw new Error('past the end');
      // Two slices, as an object reader may give.
      const half = n >> 1;
      if (half > 0) yield buf.subarray(pos, pos + half);
      yield buf.subarray(pos + half, pos + n);
      pos += n;
    },
    async skip(n: number) {
      pos += n;
    },
    async close() {},
  };
}

async function merged(layers: Layer[], bodies: Record<string, Buffer>, start: number, size: number, bs: number): Promise<string> {
  const out: Buffer[] = [];
  const m = await LayerMerge.open(layers, { path: 'r', start, size }, bs, async (l) => {
    const s = source(bodies[`${l.backup}/${l.n}`]!);
    await s.skip(l.offset);
    return s;
  });
  try {
    await m.copy((c) => out.push(Buffer.from(c)));
  } finally {
    await m.close();
  }
  return Buffer.concat(out).toString();
}

describe('LayerMerge: each block from the newest layer holding it', () => {
  // Block size 4: the file is 14 bytes, blocks 0-3 (the last one 2 bytes).
  const whole: Layer = { kind: 'whole', backup: 'F', n: 0, offset: 3, start: 0, size: 14 };
  const d1: Layer = { kind: 'delta', backup: 'I1', n: 1, offset: 0, start: 0, size: 14, blocks: [[1, 1], [3, 1]] };
  const d2: Layer = { kind: 'delta', backup: 'I2', n: 2, offset: 0, start: 0, size: 14, blocks: [[0, 2]] };
  const bodies = { 'F/0': Buffer.from('xyzAAAABBBBCCCCDD'), 'I1/1': Buffer.from('bbbbdd'), 'I2/2': Buffer.from('aaaa2222') };

  it.each<[string, Layer[], number, number, string]>([
    ['the full backup alone', [whole], 0, 14, 'AAAABBBBCCCCDD'],
    ['one delta over it', [whole, d1], 0, 14, 'AAAAbbbbCCCCdd'],
    ['two deltas: the newer wins', [whole, d1, d2], 0, 14, 'aaaa2222CCCCdd'],
    ['a part starting at block 2', [whole, d1, d2], 8, 6, 'CCCCdd'],
  ])('%s', async (_, layers, start, size, want) => {
    expect(await merged(layers, bodies, start, size, 4)).toBe(want);
  });

  it('refuses a block no layer holds, and a block of another length', async () => {
    const gap: Layer = { kind: 'delta', backup: 'F', n: 0, offset: 3, start: 0, size: 14, blocks: [[0, 1]] };
    await expect(merged([gap], bodies, 0, 14, 4)).rejects.toThrow("unable to rebuild 'r': no backup in the chain holds block 1");
    await expect(merged([whole], bodies, 0, 16, 4)).rejects.toThrow("unable to rebuild 'r': block 3 is 2 bytes in backup 'F', 4 expected");
  });
});

const F = '20261201-010000F';
const I = '20261201-020000I';
const I2 = '20261201-030000I';
const SIZES = { bundleLimit: 2 * 8192, partSize: 4 * 8192 };

describe('block-delta files of a chain in a repository in memory', () => {
  let m: MemoryRepo;
  let dir: string;
  let full: BackedUp;
  let incr: BackedUp;
  let incr2: BackedUp;

  beforeAll(async () => {
    m = memoryRepo();
    dir = await mkdtemp(join(tmpdir(), 'pgark-unit-delta-check-'));
    const pgdata = join(dir, 'data');
    await writeFiles(pgdata, { ...syntheticFiles(0x1000000n), ...EXCLUDED });
    full = await backupDirectory(m, pgdata, { id: F, startLsn: '0/2000028', ...SIZES });
    // Page 4 written and page 6 appended after F: I stores the second part of base/1/2619 as a block delta.
    const rel = await readFile(join(pgdata, 'base/1/2619'));
    pages(1, 0x3000000n).copy(rel, 4 * 8192);
    setPageLsn(rel, 4, 0x3000000n);
    const grown = Buffer.concat([rel, pages(1, 0x3000100n)]);
    setPageLsn(grown, 6, 0x3000100n); // the page checksum of block 6: I2 may take it from I
    await writeFile(join(pgdata, 'base/1/2619'), grown);
    incr = await backupDirectory(m, pgdata, { id: I, startLsn: '0/4000028', parent: { manifest: full.manifest, startLsn: '0/2000028', info: full.info }, ...SIZES });
    // Nothing changed: I2 takes every block of the file from I.
    incr2 = await backupDirectory(m, pgdata, { id: I2, startLsn: '0/6000028', parent: { manifest: incr.manifest, startLsn: '0/4000028', info: incr.info }, ...SIZES });
  });

  afterAll(async () => {
    m.drop();
    await rm(dir, { recursive: true, force: true });
  });

  const checksOf = (chain: BackedUp[]): DeltaCheck[] => {
    const plan = planDeltaChecks(chain.map((b) => b.manifest));
    expect(plan.problems).toEqual([]);
    return plan.checks;
  };
  const problemsOf = async (checks: DeltaCheck[]): Promise<string[]> => {
    const out: string[] = [];
    for (const c of checks) {
      const p = deltaProblem(c, await rebuildDelta(m.repo, c));
      if (p) out.push(p);
    }
    return out;
  };

  it('plans the block-delta part of I, and the same rebuild for I2, which took it unchanged', () => {
    const ci = checksOf([full, incr]);
    expect(ci.map((c) => [c.backup, c.path, c.start, c.size])).toEqual([[I, 'base/1/2619', 4 * 8192, 3 * 8192]]);
    expect(ci[0]!.layers.map((l) => [l.backup, l.kind])).toEqual([[F, 'whole'], [I, 'delta']]);
    const ci2 = checksOf([full, incr, incr2]);
    expect(ci2.map((c) => [c.backup, c.path, c.start])).toEqual([[I2, 'base/1/2619', 4 * 8192]]);
    expect(ci2[0]!.key).toBe(ci[0]!.key);
    // I2's first part, taken from F's object that records it: F's object check covers it.
    expect(planDeltaChecks([full, incr, incr2].map((b) => b.manifest)).covered.map((c) => [c.path, c.owner])).toContainEqual(['base/1/2619', F]);
  });

  it('a correct chain rebuilds to the manifest: no problem', async () => {
    expect(await problemsOf(checksOf([full, incr]))).toEqual([]);
    expect(await problemsOf(checksOf([full, incr, incr2]))).toEqual([]);
  });

  it("finds a delta object rewritten with other, validly checksummed bytes, under I and I2; restore refuses it", async () => {
    const n = incr.manifest.files.get('base/1/2619')!.parts![1]!.delta!.n;
    const key = dataObjectKey('main', I, n);
    const original = await readAll(await m.repo.getObject(key), 1 << 24);
    const other = Buffer.from(original);
    other[100] = other[100]! ^ 0xff; // a byte of the first stored block
    await m.repo.putObject(key, () => Readable.from([other]), { codec: 'lz4' });
    try {
      // The object itself reads clean: its own checksum is that of the new content.
      expect((await readAll(await m.repo.getObject(key), 1 << 24)).equals(other)).toBe(true);
      const [pi] = await problemsOf(checksOf([full, incr]));
      expect(pi).toMatch(new RegExp(`^'base/1/2619' bytes 32768\\.\\.57344 of backup ${I}, rebuilt from backups ${F}, ${I}, does not match the manifest \\(24576 bytes, sha256 [0-9a-f]{16}…; expected 24576 bytes, [0-9a-f]{16}…\\): restore would refuse this backup$`));
      const [pi2] = await problemsOf(checksOf([full, incr, incr2]));
      expect(pi2).toContain(`'base/1/2619' bytes 32768..57344 of backup ${I2}, rebuilt from backups ${F}, ${I}, does not match the manifest`);
      await expect(restoreInto(m, [full.manifest, incr.manifest], join(dir, 'restore-other'))).rejects.toThrow(/restored 'base\/1\/2619' bytes 32768\.\.57344 does not match the manifest/);
    } finally {
      await m.repo.putObject(key, () => Readable.from([original]), { codec: 'lz4' });
    }
    expect(await problemsOf(checksOf([full, incr]))).toEqual([]);
  });

  it('names the file when an object of its chain is missing', async () => {
    const key = dataObjectKey('main', F, full.manifest.files.get('base/1/2619')!.parts![1]!.object!.n);
    const original = await readAll(await m.driver.get(key), 1 << 24);
    await m.driver.delete([key]);
    try {
      const [p] = await problemsOf(checksOf([full, incr]));
      expect(p).toMatch(new RegExp(`^unable to rebuild 'base/1/2619' bytes 32768\\.\\.57344 of backup ${I}, rebuilt from backups ${F}, ${I}: an object of the chain is missing`));
    } finally {
      await m.driver.put(key, original);
    }
  });
});
