import { describe, expect, it } from 'vitest';
import { PART_SIZE, type FileEntry } from '../../src/catalog/manifest.js';
import { BUNDLE_LIMIT, BUNDLE_SIZE, FILE_COST, planTasks, type BackupTask } from '../../src/backup/tasks.js';
import type { WalkFile } from '../../src/backup/walk.js';

const MiB = 1024 * 1024;
/** Small options keep the tables readable: own object from 10 bytes, bundles of 20, parts of 30; no per-file cost (its own tests below). */
const OPT = { bundleLimit: 10, bundleSize: 20, partSize: 30, fileCost: 0 };

const wf = (path: string, size: number, extra: Partial<WalkFile> = {}): WalkFile => ({ path, abs: `/pgdata/${path}`, size, mode: 0o600, mtimeMs: 1_700_000_000_000, ...extra });

/** A task as [n, own, bytes, files], each file as its path, or path@start+length(/last). */
type Shape = [number, boolean, number, string[]];
function shape(tasks: BackupTask[]): Shape[] {
  return tasks.map((t) => [t.n, t.own, t.bytes, t.files.map((f) => (f.part ? `${f.path}@${f.part.start}+${f.part.length ?? 'rest'}${f.part.last ? '/last' : ''}` : f.path))]);
}

describe('planTasks', () => {
  it('defaults: 4 MiB bundle limit, 32 MiB bundles, 128 MiB parts', () => {
    expect(BUNDLE_LIMIT).toBe(4 * MiB);
    expect(BUNDLE_SIZE).toBe(32 * MiB);
    const tasks = planTasks([wf('small', 4 * MiB - 1), wf('own', 4 * MiB), wf('huge', PART_SIZE + 1)], undefined);
    expect(shape(tasks)).toEqual([
      [0, true, PART_SIZE, [`huge@0+${PART_SIZE}`]],
      [1, true, 4 * MiB, ['own']],
      [2, false, 4 * MiB - 1, ['small']],
      [3, true, 1, [`huge@${PART_SIZE}+rest/last`]],
    ]);
  });

  it('no files, no tasks', () => {
    expect(planTasks([], undefined, OPT)).toEqual([]);
  });

  it.each<[string, Array<[string, number]>, Shape[]]>([
    ['one small file', [['a', 5]], [[0, false, 5, ['a']]]],
    ['empty files are bundled', [['a', 0], ['b', 0]], [[0, false, 0, ['a', 'b']]]],
    [
      'bundles fill in walk order until they reach bundleSize (they may pass it)',
      [['s1', 5], ['s2', 9], ['s3', 7], ['s4', 3], ['s5', 8], ['s6', 1], ['s7', 0], ['s8', 9]],
      [[0, false, 21, ['s1', 's2', 's3']], [1, false, 21, ['s4', 's5', 's6', 's7', 's8']]],
    ],
    [
      'a bundle that reaches bundleSize exactly is closed',
      [['z', 9], ['y', 9], ['x', 2], ['w', 1]],
      [[0, false, 20, ['z', 'y', 'x']], [1, false, 1, ['w']]],
    ],
    [
      'walk order, not name or size order, inside bundles',
      [['m', 9], ['a', 1], ['z', 9], ['b', 9]],
      [[0, false, 28, ['m', 'a', 'z', 'b']]],
    ],
    [
      'files of at least bundleLimit get their own object, largest first, ties by path',
      [['b1', 12], ['b2', 30], ['b3', 10], ['b4', 25], ['b0', 12]],
      [[0, true, 30, ['b2']], [1, true, 25, ['b4']], [2, true, 12, ['b0']], [3, true, 12, ['b1']], [4, true, 10, ['b3']]],
    ],
    [
      'own objects come before smaller bundles',
      [['s1', 4], ['big', 15], ['s2', 4]],
      [[0, true, 15, ['big']], [1, false, 8, ['s1', 's2']]],
    ],
    [
      'a file of exactly partSize is not split',
      [['p', 30]],
      [[0, true, 30, ['p']]],
    ],
    [
      'files above partSize are split; the last part runs to the end',
      [['f', 70]],
      [[0, true, 30, ['f@0+30']], [1, true, 30, ['f@30+30']], [2, true, 10, ['f@60+rest/last']]],
    ],
    [
      'a multiple of partSize: the last part is a full one',
      [['f', 60]],
      [[0, true, 30, ['f@0+30']], [1, true, 30, ['f@30+rest/last']]],
    ],
    [
      'parts of several files are ordered by size with other own files, ties by path then start',
      [['g', 45], ['h', 20], ['s', 3], ['f', 70], ['i', 31]],
      [
        [0, true, 30, ['f@0+30']],
        [1, true, 30, ['f@30+30']],
        [2, true, 30, ['g@0+30']],
        [3, true, 30, ['i@0+30']],
        [4, true, 20, ['h']],
        [5, true, 15, ['g@30+rest/last']],
        [6, true, 10, ['f@60+rest/last']],
        [7, false, 3, ['s']],
        [8, true, 1, ['i@30+rest/last']],
      ],
    ],
  ])('%s', (_, sizes, expected) => {
    expect(shape(planTasks(sizes.map(([p, s]) => wf(p, s)), undefined, OPT))).toEqual(expected);
  });

  // "Large objects come first so that parallel jobs finish together" (tasks.ts): a bundle can be
  // larger than an own-object file (by default up to ~36 MiB against files from 4 MiB), and must
  // then be scheduled before it, with object numbers following the final order.
  it('orders all tasks by size, bundles included, numbering them in the final order', () => {
    const tasks = planTasks([wf('s1', 9), wf('s2', 9), wf('s3', 9), wf('own', 11), wf('s4', 1)], undefined, OPT);
    expect(shape(tasks)).toEqual([
      [0, false, 27, ['s1', 's2', 's3']],
      [1, true, 11, ['own']],
      [2, false, 1, ['s4']],
    ]);
  });

  it('many parts of the same size keep their order by path, then start', () => {
    const tasks = planTasks([wf('b', 30 * 40 + 5), wf('a', 30 * 40 + 5)], undefined, OPT);
    const starts = Array.from({ length: 40 }, (_, i) => i * 30);
    expect(tasks.map((t) => `${t.files[0]!.path}${t.files[0]!.part!.start}`)).toEqual([...starts.map((s) => `a${s}`), ...starts.map((s) => `b${s}`), 'a1200', 'b1200']);
    expect(tasks.map((t) => t.bytes)).toEqual([...Array<number>(80).fill(30), 5, 5]);
  });

  it('object numbers are 0..count-1 in array order', () => {
    const tasks = planTasks([wf('a', 3), wf('b', 70), wf('c', 9), wf('d', 12), wf('e', 9), wf('f', 9)], undefined, OPT);
    expect(tasks.map((t) => t.n)).toEqual(tasks.map((_, i) => i));
  });

  it('copies path, abs, mode, mtime, size and relation info; attaches parent entries by path', () => {
    const parentEntry: FileEntry = { t: 'file', path: 'base/5/16384', size: 8192, mode: 0o600, mtimeMs: 1, sha256: 'a'.repeat(64), object: { backup: '20261122-010000F', n: 3, offset: 0 } };
    const parentBig: FileEntry = { t: 'file', path: 'base/5/16390', size: 60, mode: 0o600, mtimeMs: 1, sha256: 'b'.repeat(64), object: { backup: '20261122-010000F', n: 0, offset: 0 } };
    const parents = new Map<string, FileEntry>([[parentEntry.path, parentEntry], [parentBig.path, parentBig], ['base/5/gone', { ...parentEntry, path: 'base/5/gone' }]]);
    const files = [
      wf('base/5/16384', 5, { mode: 0o640, mtimeMs: 1_700_000_000_123.5, relation: { relfilenode: '16384', fork: 'main', segment: 0 } }),
      wf('base/5/16384_vm', 4, { relation: { relfilenode: '16384', fork: 'vm', segment: 0 } }),
      wf('base/5/16390.2', 40, { relation: { relfilenode: '16390', fork: 'main', segment: 2 } }),
      wf('base/5/16390', 12, { abs: '/elsewhere/16390' }),
      wf('PG_VERSION', 3),
    ];
    const parentsFor = new Map(parents);
    parentsFor.set('base/5/16390.2', { ...parentBig, path: 'base/5/16390.2' });
    const tasks = planTasks(files, parentsFor, OPT);
    expect(tasks).toEqual([
      { n: 0, own: true, bytes: 30, cost: 30, files: [{ path: 'base/5/16390.2', abs: '/pgdata/base/5/16390.2', mode: 0o600, mtimeMs: 1_700_000_000_000, planSize: 40, relation: { segment: 2, fork: 'main' }, parent: parentsFor.get('base/5/16390.2'), part: { start: 0, length: 30, last: false } }] },
      { n: 1, own: true, bytes: 12, cost: 12, files: [{ path: 'base/5/16390', abs: '/elsewhere/16390', mode: 0o600, mtimeMs: 1_700_000_000_000, planSize: 12, parent: parentBig }] },
      {
        n: 2, own: false, bytes: 12, cost: 12, files: [
          { path: 'base/5/16384', abs: '/pgdata/base/5/16384', mode: 0o640, mtimeMs: 1_700_000_000_123.5, planSize: 5, relation: { segment: 0, fork: 'main' }, parent: parentEntry },
          { path: 'base/5/16384_vm', abs: '/pgdata/base/5/16384_vm', mode: 0o600, mtimeMs: 1_700_000_000_000, planSize: 4, relation: { segment: 0, fork: 'vm' } },
          { path: 'PG_VERSION', abs: '/pgdata/PG_VERSION', mode: 0o600, mtimeMs: 1_700_000_000_000, planSize: 3 },
        ],
      },
      { n: 3, own: true, bytes: 10, cost: 10, files: [{ path: 'base/5/16390.2', abs: '/pgdata/base/5/16390.2', mode: 0o600, mtimeMs: 1_700_000_000_000, planSize: 40, relation: { segment: 2, fork: 'main' }, parent: parentsFor.get('base/5/16390.2'), part: { start: 30, length: null, last: true } }] },
    ]);
    // The parent entry is the very object of the map, not a copy; relation info is a copy.
    expect(tasks[1]!.files[0]!.parent).toBe(parentBig);
    expect(tasks[2]!.files[0]!.parent).toBe(parentEntry);
    expect(tasks[2]!.files[0]!.relation).not.toBe(files[0]!.relation);
    expect(Object.keys(tasks[2]!.files[0]!.relation!)).toEqual(['segment', 'fork']);
    // Files without a parent entry, and no parent map at all: no `parent` key.
    expect('parent' in tasks[2]!.files[1]!).toBe(false);
    expect(planTasks(files, undefined, OPT).every((t) => t.files.every((f) => !('parent' in f)))).toBe(true);
    // Parts of one file are separate task files (not shared objects).
    expect(tasks[0]!.files[0]).not.toBe(tasks[3]!.files[0]);
  });

  // A bundle of many small files costs a lane more than its bytes (one open, read and close per
  // file): bundles close at bundleSize of cost, and the costliest tasks come first, so that a
  // bundle of a thousand catalog files is not the last task of one lane while the others idle.
  it('a per-file cost closes bundles by file count too and orders tasks by cost', () => {
    const o = { bundleLimit: 10, bundleSize: 20, partSize: 30, fileCost: 4 };
    // 12 empty files: cost 4 each, 5 per bundle (20); the own file costs 15 + 4.
    const files = [wf('big', 15), ...Array.from({ length: 12 }, (_, i) => wf(`s${String(i).padStart(2, '0')}`, 0))];
    const tasks = planTasks(files, undefined, o);
    expect(shape(tasks)).toEqual([
      [0, false, 0, ['s00', 's01', 's02', 's03', 's04']],
      [1, false, 0, ['s05', 's06', 's07', 's08', 's09']],
      [2, true, 15, ['big']],
      [3, false, 0, ['s10', 's11']],
    ]);
    expect(tasks.map((t) => t.cost)).toEqual([20, 20, 19, 8]);
    // Without the per-file cost all twelve go into one bundle of 0 bytes, scheduled last.
    expect(shape(planTasks(files, undefined, { ...o, fileCost: 0 }))).toEqual([[0, true, 15, ['big']], [1, false, 0, files.slice(1).map((f) => f.path)]]);
  });

  it('default per-file cost: a thousand 8 KiB files make several bundles, scheduled with the large files', () => {
    expect(FILE_COST).toBe(128 * 1024);
    const small = Array.from({ length: 1000 }, (_, i) => wf(`base/5/${1000 + i}`, 8192));
    const tasks = planTasks([wf('base/5/big', 64 * MiB), ...small], undefined);
    const bundles = tasks.filter((t) => !t.own);
    expect(bundles.length).toBe(Math.ceil(1000 / Math.ceil(BUNDLE_SIZE / (8192 + FILE_COST))));
    expect(bundles.every((t) => t.cost <= BUNDLE_SIZE + 8192 + FILE_COST)).toBe(true);
    expect(tasks[0]!.files[0]!.path).toBe('base/5/big');
    expect(tasks.slice(1).every((t) => !t.own)).toBe(true);
  });

  it('does not change the input array', () => {
    const files = [wf('b', 12), wf('a', 3), wf('c', 40)];
    const copy = structuredClone(files);
    planTasks(files, undefined, OPT);
    expect(files).toEqual(copy);
  });
});
