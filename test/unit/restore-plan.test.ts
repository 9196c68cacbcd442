import { describe, expect, it } from 'vitest';
import type { FileEntry, FilePart, Manifest } from '../../src/catalog/manifest.js';
import { IntegrityError } from '../../src/common/errors.js';
import { partOf, scheduleTasks, blockLength, layerBlocks, layersOf, planRestore, type Layer, type ObjectTask as ObjectTaskT } from '../../src/restore/plan.js';

const BS = 8192;
const F = '20261120-000000F';
const I1 = '20261121-000000I';
const I2 = '20261122-000000I';
const MODE = 0o600;
const MTIME = 1_700_000_000_000;
const sha = (c: string) => c.repeat(64);

function manifest(id: string, files: FileEntry[], parent?: string): Manifest {
  return {
    header: { t: 'header', format: 1, id, type: parent ? 'incr' : 'full', ...(parent ? { parent } : {}), pgVersion: 15, pgdata: '/x', blockSize: BS, relsegBlocks: 131072, tablespaces: [] },
    dirs: [],
    links: [],
    files: new Map(files.map((f) => [f.path, f])),
  };
}

const file = (path: string, size: number, where: Pick<FileEntry, 'object' | 'delta' | 'parts'> = {}, sha256 = sha('a')): FileEntry => ({ t: 'file', path, size, mode: MODE, mtimeMs: MTIME, sha256, ...where });
const obj = (backup: string, n: number, offset: number) => ({ object: { backup, n, offset } });
const delta = (n: number, offset: number, blocks: Array<[number, number]>) => ({ delta: { n, offset, blocks } });
const piece = (path: string, start: number, size: number, whole: boolean, sha256 = sha('a')) => ({ path, start, size, sha256, whole, mode: MODE, mtimeMs: MTIME });

function integrityError(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(IntegrityError);
    return (e as Error).message;
  }
  throw new Error('expected an IntegrityError');
}

describe('planRestore', () => {
  it('groups whole files per object, sorted by offset; big objects first; empty files last', () => {
    const full = manifest(F, [
      file('PG_VERSION', 3, obj(F, 2, 8192), sha('1')),
      file('global/pg_control', 8192, obj(F, 2, 0), sha('2')),
      file('base/1/1', 2 * BS, obj(F, 0, 0), sha('3')),
      file('empty1', 0, {}, sha('e')),
      file('base/1/2', 100, obj(F, 2, 8195), sha('4')),
      file('empty2', 0, {}, sha('e')),
      file('base/1/3', 2 * BS, obj(F, 1, 0), sha('5')),
    ]);
    const { tasks, multi } = planRestore([full]);
    expect(multi).toEqual([]);
    expect(tasks).toEqual([
      { kind: 'object', backup: F, n: 0, bytes: 2 * BS, pieces: [{ ...piece('base/1/1', 0, 2 * BS, true, sha('3')), offset: 0 }] },
      { kind: 'object', backup: F, n: 1, bytes: 2 * BS, pieces: [{ ...piece('base/1/3', 0, 2 * BS, true, sha('5')), offset: 0 }] },
      {
        kind: 'object', backup: F, n: 2, bytes: 8192 + 3 + 100, pieces: [
          { ...piece('global/pg_control', 0, 8192, true, sha('2')), offset: 0 },
          { ...piece('PG_VERSION', 0, 3, true, sha('1')), offset: 8192 },
          { ...piece('base/1/2', 0, 100, true, sha('4')), offset: 8195 },
        ],
      },
      { kind: 'empty', bytes: 0, pieces: [piece('empty1', 0, 0, true, sha('e')), piece('empty2', 0, 0, true, sha('e'))] },
    ]);
  });

  it('no empty files: no empty task; no files at all: nothing', () => {
    expect(planRestore([manifest(F, [file('a', 1, obj(F, 0, 0))])]).tasks.map((t) => t.kind)).toEqual(['object']);
    expect(planRestore([manifest(F, [])])).toEqual({ tasks: [], multi: [] });
  });

  it('reads unchanged files from the objects of ancestors', () => {
    const chain = [
      manifest(F, [file('a', 10, obj(F, 0, 0)), file('c', 20, obj(F, 0, 10))]),
      manifest(I1, [file('a', 10, obj(F, 0, 0)), file('c', 20, obj(F, 0, 10)), file('d', 5, obj(I1, 0, 0))], F),
      manifest(I2, [file('d', 5, obj(I1, 0, 0)), file('c', 20, obj(F, 0, 10)), file('b', 7, obj(I2, 0, 0)), file('a', 10, obj(F, 0, 0))], I1),
    ];
    const { tasks } = planRestore(chain);
    expect(tasks).toEqual([
      { kind: 'object', backup: F, n: 0, bytes: 30, pieces: [{ ...piece('a', 0, 10, true), offset: 0 }, { ...piece('c', 0, 20, true), offset: 10 }] },
      { kind: 'object', backup: I2, n: 0, bytes: 7, pieces: [{ ...piece('b', 0, 7, true), offset: 0 }] },
      { kind: 'object', backup: I1, n: 0, bytes: 5, pieces: [{ ...piece('d', 0, 5, true), offset: 0 }] },
    ]);
  });

  it('a file in parts: listed in multi, one piece per part (whole: false), empty parts skipped', () => {
    const parts: FilePart[] = [
      { start: 0, size: 2 * BS, sha256: sha('1'), ...obj(F, 1, 0) },
      { start: 2 * BS, size: 2 * BS, sha256: sha('2'), ...obj(F, 2, 0) },
      { start: 4 * BS, size: 100, sha256: sha('3'), ...obj(F, 0, 50) },
      { start: 4 * BS + 100, size: 0, sha256: sha('e') },
    ];
    const full = manifest(F, [file('big', 4 * BS + 100, { parts }, sha('9')), file('small', 50, obj(F, 0, 0), sha('8'))]);
    const { tasks, multi } = planRestore([full]);
    expect(multi).toEqual([{ path: 'big', size: 4 * BS + 100, mode: MODE, mtimeMs: MTIME }]);
    // Parts of one file are not scheduled back to back while other work exists (parallel writers
    // into one file contend for its inode lock): the bundle goes between the two parts.
    expect(tasks).toEqual([
      { kind: 'object', backup: F, n: 1, bytes: 2 * BS, pieces: [{ ...piece('big', 0, 2 * BS, false, sha('1')), offset: 0 }] },
      { kind: 'object', backup: F, n: 0, bytes: 150, pieces: [{ ...piece('small', 0, 50, true, sha('8')), offset: 0 }, { ...piece('big', 4 * BS, 100, false, sha('3')), offset: 50 }] },
      { kind: 'object', backup: F, n: 2, bytes: 2 * BS, pieces: [{ ...piece('big', 2 * BS, 2 * BS, false, sha('2')), offset: 0 }] },
    ]);
  });

  it('a delta piece becomes a rebuild task with its layers, oldest first', () => {
    const chain = [
      manifest(F, [file('r', 3 * BS, obj(F, 0, 0), sha('1')), file('s', 10, obj(F, 0, 3 * BS))]),
      manifest(I1, [file('r', 3 * BS, delta(1, 0, [[1, 1]]), sha('2')), file('s', 10, obj(F, 0, 3 * BS))], F),
    ];
    const { tasks, multi } = planRestore(chain);
    expect(multi).toEqual([]);
    expect(tasks).toEqual([
      {
        kind: 'rebuild', piece: piece('r', 0, 3 * BS, true, sha('2')), blockSize: BS, bytes: 3 * BS,
        layers: [
          { kind: 'whole', backup: F, n: 0, offset: 0, start: 0, size: 3 * BS },
          { kind: 'delta', backup: I1, n: 1, offset: 0, start: 0, size: 3 * BS, blocks: [[1, 1]] },
        ],
      },
      { kind: 'object', backup: F, n: 0, bytes: 10, pieces: [{ ...piece('s', 0, 10, true), offset: 3 * BS }] },
    ]);
  });

  it('a delta part is rebuilt from the overlapping parts of the parents only', () => {
    const chain = [
      manifest(F, [file('big', 4 * BS, { parts: [{ start: 0, size: 2 * BS, sha256: sha('1'), ...obj(F, 1, 0) }, { start: 2 * BS, size: 2 * BS, sha256: sha('2'), ...obj(F, 2, 0) }] })]),
      manifest(I1, [file('big', 4 * BS, { parts: [{ start: 0, size: 2 * BS, sha256: sha('1'), ...obj(F, 1, 0) }, { start: 2 * BS, size: 2 * BS, sha256: sha('3'), ...delta(0, 0, [[3, 1]]) }] })], F),
    ];
    const { tasks, multi } = planRestore(chain);
    expect(multi).toEqual([{ path: 'big', size: 4 * BS, mode: MODE, mtimeMs: MTIME }]);
    expect(tasks).toEqual([
      { kind: 'object', backup: F, n: 1, bytes: 2 * BS, pieces: [{ ...piece('big', 0, 2 * BS, false, sha('1')), offset: 0 }] },
      {
        kind: 'rebuild', piece: piece('big', 2 * BS, 2 * BS, false, sha('3')), blockSize: BS, bytes: 2 * BS,
        layers: [
          { kind: 'whole', backup: F, n: 2, offset: 0, start: 2 * BS, size: 2 * BS },
          { kind: 'delta', backup: I1, n: 0, offset: 0, start: 2 * BS, size: 2 * BS, blocks: [[3, 1]] },
        ],
      },
    ]);
  });

  it('refuses a reference to a backup outside the chain', () => {
    const chain = [manifest(F, [file('a', 10, obj(F, 0, 0))]), manifest(I1, [file('a', 10, obj('20261119-000000F', 0, 0))], F)];
    expect(integrityError(() => planRestore(chain))).toBe(`file 'a' refers to backup '20261119-000000F', which is not in the chain of '${I1}'`);
  });

  it('refuses a layer that refers to a backup outside the chain', () => {
    // The parent's whole copy of 'r' points at an object of a backup that is not an ancestor:
    // the rebuild would read an unrelated backup's object.
    const chain = [
      manifest(F, [file('r', 2 * BS, obj(F, 0, 0))]),
      manifest(I1, [file('r', 2 * BS, obj('20261119-000000F', 4, 0))], F),
      manifest(I2, [file('r', 2 * BS, delta(0, 0, [[0, 1]]))], I1),
    ];
    expect(integrityError(() => planRestore(chain))).toMatch(/'20261119-000000F'.*not in the chain/);
  });

  it('refuses a file with content but no stored reference', () => {
    const bad = manifest(F, [file('x', 5)]);
    expect(integrityError(() => planRestore([bad]))).toBe(`file 'x' of backup '${F}' has no stored content`);
  });

  it('refuses a delta whose parent lacks the file', () => {
    const chain = [manifest(F, [file('other', 1, obj(F, 0, 0))]), manifest(I1, [file('r', BS, delta(0, 0, [[0, 1]]))], F)];
    expect(integrityError(() => planRestore(chain))).toBe(`backup '${I1}' stores 'r' as changed blocks, but its parent '${F}' has no such file`);
  });

  it('refuses a chain ending in a delta', () => {
    const chain = [manifest(F, [file('r', BS, delta(0, 0, [[0, 1]]))]), manifest(I1, [file('r', BS, delta(0, 0, [[0, 1]]))], F)];
    expect(integrityError(() => planRestore(chain))).toBe(`'r' is stored as changed blocks down to the full backup '${F}', which does not hold it whole`);
    expect(integrityError(() => planRestore([chain[0]!]))).toBe(`'r' is stored as changed blocks down to the full backup '${F}', which does not hold it whole`);
  });
});

describe('layersOf', () => {
  const size = 4 * BS;
  const whole0: Layer = { kind: 'whole', backup: F, n: 0, offset: 0, start: 0, size };

  it('3-backup chain: full whole, then two deltas', () => {
    const chain = [
      manifest(F, [file('r', size, obj(F, 0, 0))]),
      manifest(I1, [file('r', size, delta(2, 100, [[0, 1]]))], F),
      manifest(I2, [file('r', size, delta(3, 8192, [[2, 2]]))], I1),
    ];
    expect(layersOf(chain, 2, 'r', 0, size, BS)).toEqual([
      whole0,
      { kind: 'delta', backup: I1, n: 2, offset: 100, start: 0, size, blocks: [[0, 1]] },
      { kind: 'delta', backup: I2, n: 3, offset: 8192, start: 0, size, blocks: [[2, 2]] },
    ]);
    // As of the middle backup.
    expect(layersOf(chain, 1, 'r', 0, size, BS)).toEqual([whole0, { kind: 'delta', backup: I1, n: 2, offset: 100, start: 0, size, blocks: [[0, 1]] }]);
  });

  it('a delta of no blocks (a file an incremental took unread from its parent) adds no layer: nothing of it is read', () => {
    const chain = [
      manifest(F, [file('r', size, obj(F, 0, 0))]),
      manifest(I1, [file('r', size, delta(2, 100, [[0, 1]]))], F),
      manifest(I2, [file('r', size, delta(9, 0, []))], I1),
    ];
    expect(layersOf(chain, 2, 'r', 0, size, BS)).toEqual([whole0, { kind: 'delta', backup: I1, n: 2, offset: 100, start: 0, size, blocks: [[0, 1]] }]);
  });

  it('stops at the backup that stored the file whole again', () => {
    const chain = [
      manifest(F, [file('r', size, obj(F, 0, 0))]),
      manifest(I1, [file('r', size, obj(I1, 5, 40))], F),
      manifest(I2, [file('r', size, delta(1, 0, [[3, 1]]))], I1),
    ];
    expect(layersOf(chain, 2, 'r', 0, size, BS)).toEqual([
      { kind: 'whole', backup: I1, n: 5, offset: 40, start: 0, size },
      { kind: 'delta', backup: I2, n: 1, offset: 0, start: 0, size, blocks: [[3, 1]] },
    ]);
  });

  it('a whole layer names the backup that holds the object (an unchanged file of an ancestor)', () => {
    const chain = [
      manifest(F, [file('r', size, obj(F, 7, 0))]),
      manifest(I1, [file('r', size, obj(F, 7, 0))], F),
      manifest(I2, [file('r', size, delta(1, 0, [[3, 1]]))], I1),
    ];
    // The chain is not followed past I1: its manifest already says where the whole copy is.
    expect(layersOf(chain, 2, 'r', 0, size, BS)).toEqual([
      { kind: 'whole', backup: F, n: 7, offset: 0, start: 0, size },
      { kind: 'delta', backup: I2, n: 1, offset: 0, start: 0, size, blocks: [[3, 1]] },
    ]);
  });

  it('no delta at the index: the whole piece alone', () => {
    const chain = [manifest(F, [file('r', size, obj(F, 0, 0))])];
    expect(layersOf(chain, 0, 'r', 0, size, BS)).toEqual([whole0]);
  });

  it('with parts, takes every overlapping part in start order', () => {
    const P = 2 * BS;
    const chain = [
      manifest(F, [file('r', 3 * P, { parts: [
        { start: 0, size: P, sha256: sha('1'), ...obj(F, 1, 0) },
        { start: P, size: P, sha256: sha('2'), ...obj(F, 2, 0) },
        { start: 2 * P, size: P, sha256: sha('3'), ...obj(F, 3, 0) },
      ] })]),
      manifest(I1, [file('r', 3 * P, { parts: [
        { start: 0, size: P, sha256: sha('1'), ...obj(F, 1, 0) },
        { start: P, size: P, sha256: sha('4'), ...delta(0, 0, [[2, 1]]) },
        { start: 2 * P, size: P, sha256: sha('5'), ...delta(1, 0, [[5, 1]]) },
      ] })], F),
    ];
    // Bytes [P, 3P): parts 1 and 2 of both backups.
    expect(layersOf(chain, 1, 'r', P, 3 * P, BS)).toEqual([
      { kind: 'whole', backup: F, n: 2, offset: 0, start: P, size: P },
      { kind: 'whole', backup: F, n: 3, offset: 0, start: 2 * P, size: P },
      { kind: 'delta', backup: I1, n: 0, offset: 0, start: P, size: P, blocks: [[2, 1]] },
      { kind: 'delta', backup: I1, n: 1, offset: 0, start: 2 * P, size: P, blocks: [[5, 1]] },
    ]);
    // Bytes [2P, 3P): only part 2.
    expect(layersOf(chain, 1, 'r', 2 * P, 3 * P, BS)).toEqual([
      { kind: 'whole', backup: F, n: 3, offset: 0, start: 2 * P, size: P },
      { kind: 'delta', backup: I1, n: 1, offset: 0, start: 2 * P, size: P, blocks: [[5, 1]] },
    ]);
  });

  it('refuses a delta whose parent lacks the file, naming both backups', () => {
    const chain = [
      manifest(F, [file('r', size, obj(F, 0, 0))]),
      manifest(I1, [], F),
      manifest(I2, [file('r', size, delta(1, 0, [[3, 1]]))], I1),
    ];
    expect(integrityError(() => layersOf(chain, 2, 'r', 0, size, BS))).toBe(`backup '${I2}' stores 'r' as changed blocks, but its parent '${I1}' has no such file`);
  });

  it('refuses a chain ending in a delta', () => {
    const chain = [
      manifest(F, [file('r', size, delta(0, 0, [[0, 4]]))]),
      manifest(I1, [file('r', size, delta(1, 0, [[0, 1]]))], F),
      manifest(I2, [file('r', size, delta(1, 0, [[3, 1]]))], I1),
    ];
    expect(integrityError(() => layersOf(chain, 2, 'r', 0, size, BS))).toBe(`'r' is stored as changed blocks down to the full backup '${F}', which does not hold it whole`);
  });

  it('refuses a part that does not start on a block boundary', () => {
    const chain = [
      manifest(F, [file('r', size, obj(F, 0, 0))]),
      manifest(I1, [file('r', size, { parts: [{ start: 0, size: 100, sha256: sha('1'), ...obj(F, 0, 0) }, { start: 100, size: size - 100, sha256: sha('2'), ...delta(0, 0, [[1, 1]]) }] })], F),
    ];
    expect(integrityError(() => layersOf(chain, 1, 'r', 100, size, BS))).toBe(`'r' in backup '${I1}' has a part that does not start on a block boundary`);
  });
});

describe('layerBlocks', () => {
  const whole = (start: number, size: number): Layer => ({ kind: 'whole', backup: F, n: 0, offset: 0, start, size });
  const deltaLayer = (blocks?: Array<[number, number]>): Layer => ({ kind: 'delta', backup: I1, n: 0, offset: 0, start: 0, size: 100 * BS, ...(blocks ? { blocks } : {}) });

  it.each<[string, Layer, number[]]>([
    ['whole from 0', whole(0, 3 * BS), [0, 1, 2]],
    ['whole from a start offset', whole(2 * BS, 2 * BS), [2, 3]],
    ['whole with a partial tail block', whole(0, 2 * BS + 1), [0, 1, 2]],
    ['whole, start offset, partial tail', whole(16 * BS, 100), [16]],
    ['whole, empty', whole(0, 0), []],
    ['delta ranges', deltaLayer([[1, 3], [7, 2], [10, 1]]), [1, 2, 3, 7, 8, 10]],
    ['delta, no ranges', deltaLayer([]), []],
    ['delta without blocks', deltaLayer(), []],
  ])('%s', (_, layer, blocks) => {
    expect([...layerBlocks(layer, BS)]).toEqual(blocks);
  });
});

describe('blockLength', () => {
  it.each<[number, number, number, number]>([
    [0, 3 * BS, BS, BS],
    [2, 3 * BS, BS, BS],
    [2, 2 * BS + 3616, BS, 3616],
    [0, 100, BS, 100],
    [3, 2 * BS + 3616, BS, 0],
    [5, 2 * BS + 3616, BS, 0],
    [1, 3000, 1024, 1024],
    [2, 3000, 1024, 952],
  ])('block %i, end %i, block size %i -> %i', (b, end, bs, len) => {
    expect(blockLength(b, end, bs)).toBe(len);
  });
});

describe('scheduleTasks', () => {
  const part = (path: string, start: number, bytes: number, n: number): ObjectTaskT => ({ kind: 'object', backup: F, n, bytes, pieces: [{ ...piece(path, start, bytes, false), offset: 0 }] });
  const whole = (path: string, bytes: number, n: number): ObjectTaskT => ({ kind: 'object', backup: F, n, bytes, pieces: [{ ...piece(path, 0, bytes, true), offset: 0 }] });
  it('interleaves the parts of large files, largest remaining first, never the same file twice in a row while others remain', () => {
    const order = scheduleTasks([part('a', 0, 4, 1), part('a', 4, 4, 2), part('a', 8, 4, 3), part('b', 0, 4, 4), part('b', 4, 1, 5), whole('c', 3, 6), whole('d', 1, 7)], [])
      .map((t) => (t.kind === 'object' ? t.n : -1));
    // a (12 left) -> b (5) -> a (8) -> c (3, more than b's 1 left) -> a (4) -> b (1; a queue wins the tie with d) -> d
    expect(order).toEqual([1, 4, 2, 6, 3, 5, 7]);
  });

  it('partOf: the file of a task that writes one part of it (the pool never runs two at once), else undefined', () => {
    const bundle: ObjectTaskT = { kind: 'object', backup: F, n: 8, bytes: 5, pieces: [{ ...piece('p', 0, 2, true), offset: 0 }, { ...piece('q', 0, 3, true), offset: 2 }] };
    const rebuild = (whole: boolean) => ({ kind: 'rebuild' as const, piece: piece('r', 0, 4, whole), layers: [], blockSize: BS, bytes: 4 });
    expect([part('a', 4, 4, 2), whole('c', 3, 6), bundle, rebuild(false), rebuild(true), { kind: 'empty' as const, pieces: [piece('e', 0, 0, true)], bytes: 0 as const }].map(partOf))
      .toEqual(['a', undefined, undefined, 'r', undefined, undefined]);
  });

  it('puts the empty files last', () => {
    const order = scheduleTasks([whole('x', 5, 1)], [piece('e', 0, 0, true)]);
    expect(order.map((t) => t.kind)).toEqual(['object', 'empty']);
  });
});
