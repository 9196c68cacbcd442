// Files written in parts (restore/part-files.ts): each is finished as soon as its last part is
// written, every earlier part starts a writeback, at most one operation per file runs at a
// time, and a failed writeback fails the restore.
import { describe, expect, it } from 'vitest';
import { PartFiles, piecesPerFile, type PartFileOps } from '../../../src/restore/part-files.js';
import type { MultiPieceFile, RestorePiece, RestoreTask } from '../../../src/restore/plan.js';

const file = (path: string, size = 300): MultiPieceFile => ({ path, size, mode: 0o600, mtimeMs: 1 });
const piece = (path: string, start: number, whole = false): RestorePiece & { offset: number } => ({ path, start, size: 100, sha256: 'x', whole, mode: 0o600, mtimeMs: 1, offset: 0 });
const obj = (n: number, ...pieces: Array<RestorePiece & { offset: number }>): RestoreTask => ({ kind: 'object', backup: 'b', n, pieces, bytes: 100 * pieces.length });
const rebuild = (path: string, start: number): RestoreTask => ({ kind: 'rebuild', piece: piece(path, start), layers: [], blockSize: 8192, bytes: 100 });

/** Records every operation; each resolves when the test says so. */
function recorder() {
  const log: string[] = [];
  const pending: Array<{ what: string; resolve: () => void; reject: (e: Error) => void }> = [];
  const op = (kind: string) => (f: MultiPieceFile) =>
    new Promise<void>((resolve, reject) => {
      log.push(`${kind} ${f.path}`);
      pending.push({ what: `${kind} ${f.path}`, resolve, reject });
    });
  const ops: PartFileOps = { writeback: op('writeback'), finish: op('finish') };
  const settle = async (what: string, err?: Error) => {
    const i = pending.findIndex((p) => p.what === what);
    expect(i, what).toBeGreaterThanOrEqual(0);
    const [p] = pending.splice(i, 1);
    if (err) p!.reject(err);
    else p!.resolve();
    for (let k = 0; k < 5; k++) await Promise.resolve();
  };
  return { log, pending, ops, settle };
}

describe('piecesPerFile', () => {
  it.each([
    ['object tasks of one part each', [obj(1, piece('a', 0)), obj(2, piece('a', 100)), obj(3, piece('b', 0))], { a: 2, b: 1 }],
    ['rebuilt parts count too', [rebuild('a', 0), obj(2, piece('a', 100))], { a: 2, b: 0 }],
    ['whole files and files not in parts do not count', [obj(1, piece('c', 0, true), piece('a', 0)), obj(2, piece('d', 0))], { a: 1, b: 0 }],
    ['empty-file tasks hold no parts', [{ kind: 'empty', pieces: [piece('e', 0, true)], bytes: 0 } as RestoreTask], { a: 0, b: 0 }],
  ] as Array<[string, RestoreTask[], Record<string, number>]>)('%s', (_, tasks, want) => {
    expect(Object.fromEntries(piecesPerFile(tasks, [file('a'), file('b')]))).toEqual(want);
  });
});

describe('PartFiles', () => {
  it('writes back after an earlier part, finishes after the last, one operation per file at a time', async () => {
    const r = recorder();
    const t = [obj(1, piece('a', 0)), obj(2, piece('a', 100)), obj(3, piece('a', 200)), obj(4, piece('b', 0))];
    const p = new PartFiles(t, [file('a'), file('b')], r.ops);
    p.taskDone(t[0]!);
    expect(r.log).toEqual(['writeback a']);
    p.taskDone(t[1]!); // a writeback runs: another one after it, not two at once
    expect(r.log).toEqual(['writeback a']);
    p.taskDone(t[3]!); // b's only part: finished at once, beside a's writeback
    expect(r.log).toEqual(['writeback a', 'finish b']);
    await r.settle('writeback a');
    expect(r.log).toEqual(['writeback a', 'finish b', 'writeback a']);
    p.taskDone(t[2]!); // a's last part while its second writeback runs: finished after it
    await r.settle('writeback a');
    expect(r.log).toEqual(['writeback a', 'finish b', 'writeback a', 'finish a']);
    const all = p.finishAll();
    await r.settle('finish b');
    await r.settle('finish a');
    await all;
    expect(r.log.filter((l) => l.startsWith('finish'))).toEqual(['finish b', 'finish a']);
  });

  it('finishAll finishes a file with no part to write, and waits for what runs', async () => {
    const r = recorder();
    const p = new PartFiles([], [file('z', 0)], r.ops);
    const all = p.finishAll();
    expect(r.log).toEqual(['finish z']);
    let done = false;
    void all.then(() => (done = true));
    await Promise.resolve();
    expect(done).toBe(false);
    await r.settle('finish z');
    await all;
    expect(done).toBe(true);
  });

  it('a failed writeback fails the restore, and nothing more is started for any file', async () => {
    const r = recorder();
    const t = [obj(1, piece('a', 0)), obj(2, piece('a', 100)), obj(3, piece('b', 0)), obj(4, piece('b', 100))];
    const p = new PartFiles(t, [file('a', 200), file('b', 200)], r.ops);
    p.taskDone(t[0]!);
    await r.settle('writeback a', new Error('EIO: writeback failed'));
    p.taskDone(t[1]!);
    p.taskDone(t[2]!);
    p.taskDone(t[3]!);
    expect(r.log).toEqual(['writeback a']);
    await expect(p.finishAll()).rejects.toThrow('EIO: writeback failed');
  });

  it('finishAll refuses when a file still has parts not written', async () => {
    const r = recorder();
    const t = [obj(1, piece('a', 0)), obj(2, piece('a', 100))];
    const p = new PartFiles(t, [file('a', 200)], r.ops);
    p.taskDone(t[0]!);
    await r.settle('writeback a');
    await expect(p.finishAll()).rejects.toThrow("parts of 'a' not written");
  });
});
