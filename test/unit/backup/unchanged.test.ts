import { describe, expect, it } from 'vitest';
import type { FileEntry } from '../../../src/catalog/manifest.js';
import { MTIME_MARGIN_MS, reuseEntry, unchangedFiles, type FileStat, type UnchangedRule } from '../../../src/backup/unchanged.js';

const SHA = 'a'.repeat(64);
const P0 = 1_700_000_000_000; // the parent's copy start
const NOW = P0 + 3_600_000;
const OLD = P0 - MTIME_MARGIN_MS - 1; // the latest mtime a skipped file can have

function parentOf(entries: Array<Partial<FileEntry> & { path: string; size: number; mtimeMs: number }>): Map<string, FileEntry> {
  return new Map(entries.map((e) => [e.path, { t: 'file', mode: 0o600, sha256: SHA, object: { backup: 'F', n: 1, offset: 0 }, ...e } as FileEntry]));
}
const rule = (r: Partial<UnchangedRule> = {}): UnchangedRule => ({ delta: false, copyStartMs: NOW, parentCopyStartMs: P0, ...r });

describe('unchangedFiles: which files an incremental takes from its parent unread', () => {
  // [case, file now, parent entry (undefined: none), skipped]
  const table: Array<[string, FileStat, { size: number; mtimeMs: number } | undefined, boolean]> = [
    ['same size and mtime, mtime before the parent start less the margin', { path: 'f', size: 8192, mtimeMs: OLD }, { size: 8192, mtimeMs: OLD }, true],
    ['mtime exactly at parent start minus the margin: read', { path: 'f', size: 8192, mtimeMs: P0 - MTIME_MARGIN_MS }, { size: 8192, mtimeMs: P0 - MTIME_MARGIN_MS }, false],
    ['mtime within the margin before the parent start (could be written again in the same tick): read', { path: 'f', size: 8192, mtimeMs: P0 - 1 }, { size: 8192, mtimeMs: P0 - 1 }, false],
    ['mtime at the parent start (written during the parent): read', { path: 'f', size: 8192, mtimeMs: P0 }, { size: 8192, mtimeMs: P0 }, false],
    ['mtime after the parent start: read', { path: 'f', size: 8192, mtimeMs: P0 + 10 }, { size: 8192, mtimeMs: P0 + 10 }, false],
    ['same size, newer mtime (changed in place, or truncated and extended to the same size): read', { path: 'f', size: 8192, mtimeMs: P0 + 500 }, { size: 8192, mtimeMs: OLD }, false],
    ['newer mtime 1 ms later: read', { path: 'f', size: 8192, mtimeMs: OLD + 1 }, { size: 8192, mtimeMs: OLD }, false],
    ['grew, newer mtime: read', { path: 'f', size: 16384, mtimeMs: P0 + 500 }, { size: 8192, mtimeMs: OLD }, false],
    ['new file (not in the parent): read', { path: 'f', size: 8192, mtimeMs: OLD }, undefined, false],
    ['empty file unchanged', { path: 'f', size: 0, mtimeMs: OLD }, { size: 0, mtimeMs: OLD }, true],
  ];
  for (const [name, f, p, skipped] of table) {
    it(name, () => {
      const parent = parentOf(p ? [{ path: 'f', ...p, ...(p.size === 0 ? { object: undefined } : {}) }] : [{ path: 'other', size: 1, mtimeMs: OLD }]);
      const d = unchangedFiles([f], parent, rule());
      expect(d.readAll).toBeUndefined();
      expect(d.unchanged.has('f')).toBe(skipped);
    });
  }

  // Global rules: every file read, with the reason.
  const globals: Array<[string, FileStat[], Partial<UnchangedRule>, RegExp]> = [
    ['--delta', [{ path: 'a', size: 8192, mtimeMs: OLD }], { delta: true }, /--delta/],
    ['parent written by an older pgark (no copyStartMs)', [{ path: 'a', size: 8192, mtimeMs: OLD }], { parentCopyStartMs: undefined }, /older pgark/],
    ['clock went back before the parent start', [{ path: 'a', size: 8192, mtimeMs: OLD }], { copyStartMs: P0 - 1 }, /clock/],
    ['a file with an mtime in the future', [{ path: 'a', size: 8192, mtimeMs: OLD }, { path: 'z', size: 1, mtimeMs: NOW + MTIME_MARGIN_MS + 1 }], {}, /z has a modification time in the future/],
    ['a file whose mtime went back', [{ path: 'a', size: 8192, mtimeMs: OLD }, { path: 'b', size: 8192, mtimeMs: OLD - 1000 }], {}, /b has an earlier modification time/],
    ['a file whose size changed but not its mtime', [{ path: 'a', size: 8192, mtimeMs: OLD }, { path: 'b', size: 16384, mtimeMs: OLD }], {}, /b changed size but not modification time/],
  ];
  for (const [name, files, r, why] of globals) {
    it(`reads everything: ${name}`, () => {
      const parent = parentOf([{ path: 'a', size: 8192, mtimeMs: OLD }, { path: 'b', size: 8192, mtimeMs: OLD }]);
      const d = unchangedFiles(files, parent, rule(r));
      expect(d.unchanged.size).toBe(0);
      expect(d.readAll).toMatch(why);
    });
  }

  it('a future mtime within the margin is tolerated (and the file is read, it is not old)', () => {
    const parent = parentOf([{ path: 'a', size: 8192, mtimeMs: OLD }]);
    const d = unchangedFiles([{ path: 'a', size: 8192, mtimeMs: OLD }, { path: 'n', size: 1, mtimeMs: NOW + MTIME_MARGIN_MS }], parent, rule());
    expect([...d.unchanged]).toEqual(['a']);
  });

  // ctime: [case, file now, parent (mtime OLD, size 8192), skipped]
  const ctimes: Array<[string, number | undefined, number | undefined, boolean]> = [
    ['ctime unchanged and old: skipped', OLD, OLD, true],
    ['mtime set back after a write (touch -d, cp -p, restore): ctime newer, read', P0 + 100, OLD, false],
    ['ctime changed by chmod alone: read (metadata change, conservative)', OLD + 1, OLD, false],
    ['ctime unchanged but within the margin before the parent start: read', P0 - 1, P0 - 1, false],
    ['parent without ctime (mtime rule alone)', P0 + 100, undefined, true],
  ];
  for (const [name, now, recorded, skipped] of ctimes) {
    it(`ctime: ${name}`, () => {
      const parent = parentOf([{ path: 'f', size: 8192, mtimeMs: OLD, ...(recorded !== undefined ? { ctimeMs: recorded } : {}) }]);
      const d = unchangedFiles([{ path: 'f', size: 8192, mtimeMs: OLD, ...(now !== undefined ? { ctimeMs: now } : {}) }], parent, rule());
      expect(d.unchanged.has('f')).toBe(skipped);
    });
  }

  it('reuseEntry records the current ctime', () => {
    const p: FileEntry = { t: 'file', path: 'f', size: 1, mode: 0o600, mtimeMs: OLD, ctimeMs: OLD, sha256: SHA, object: { backup: 'F', n: 0, offset: 0 } };
    expect(reuseEntry(p, { mode: 0o600, mtimeMs: OLD, ctimeMs: OLD }, 1).ctimeMs).toBe(OLD);
  });

  it('no parent (full backup): nothing skipped, no note', () => {
    expect(unchangedFiles([{ path: 'a', size: 1, mtimeMs: OLD }], undefined, rule())).toEqual({ unchanged: new Set() });
  });

  it('a parent entry without content references is read', () => {
    const parent = new Map<string, FileEntry>([['a', { t: 'file', path: 'a', size: 8192, mode: 0o600, mtimeMs: OLD, sha256: SHA }]]);
    expect(unchangedFiles([{ path: 'a', size: 8192, mtimeMs: OLD }], parent, rule()).unchanged.size).toBe(0);
  });
});

describe('reuseEntry: the new manifest entry of a file taken from the parent', () => {
  it('keeps object references (they name the backup that stored them), takes mode and mtime from the file', () => {
    const p: FileEntry = { t: 'file', path: 'base/1/2', size: 100, mode: 0o600, mtimeMs: OLD, sha256: SHA, object: { backup: 'F', n: 3, offset: 40 }, checksumFailures: [2] };
    expect(reuseEntry(p, { mode: 0o640, mtimeMs: OLD }, 9)).toEqual({ t: 'file', path: 'base/1/2', size: 100, mode: 0o640, mtimeMs: OLD, sha256: SHA, object: { backup: 'F', n: 3, offset: 40 }, checksumFailures: [2] });
  });

  it('a block delta becomes a delta of no blocks at the extras object (all blocks from the parent)', () => {
    const p: FileEntry = { t: 'file', path: 'base/1/2', size: 16384, mode: 0o600, mtimeMs: OLD, sha256: SHA, delta: { n: 4, offset: 0, blocks: [[1, 1]] } };
    const e = reuseEntry(p, p, 9);
    expect(e.delta).toEqual({ n: 9, offset: 0, blocks: [] });
    expect(e.object).toBeUndefined();
    expect(JSON.parse(JSON.stringify(e))).toEqual({ t: 'file', path: 'base/1/2', size: 16384, mode: 0o600, mtimeMs: OLD, sha256: SHA, delta: { n: 9, offset: 0, blocks: [] } });
  });

  it('parts: object parts kept, delta parts emptied, sha256 of each part kept', () => {
    const p: FileEntry = {
      t: 'file', path: 'base/1/3', size: 300, mode: 0o600, mtimeMs: OLD, sha256: SHA,
      parts: [{ start: 0, size: 200, sha256: 'b'.repeat(64), object: { backup: 'F', n: 0, offset: 0 } }, { start: 200, size: 100, sha256: 'c'.repeat(64), delta: { n: 5, offset: 8, blocks: [[0, 1]] } }],
    };
    expect(reuseEntry(p, p, 2).parts).toEqual([
      { start: 0, size: 200, sha256: 'b'.repeat(64), object: { backup: 'F', n: 0, offset: 0 } },
      { start: 200, size: 100, sha256: 'c'.repeat(64), delta: { n: 2, offset: 0, blocks: [] } },
    ]);
    expect(p.parts![1]!.delta!.n).toBe(5); // the parent's entry is not changed
  });
});
