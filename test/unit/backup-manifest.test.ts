import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  MANIFEST_FORMAT,
  PART_SIZE,
  deltaBlockCount,
  manifestLines,
  parseManifest,
  partsDigest,
  piecesOf,
  toRanges,
  type FileEntry,
  type FilePart,
  type Manifest,
  type ManifestHeader,
} from '../../src/catalog/manifest.js';
import { IntegrityError } from '../../src/common/errors.js';

const SHA_A = 'a'.repeat(64);
const SHA_B = 'b'.repeat(64);
const SHA_C = 'c'.repeat(64);
const SHA_EMPTY = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
const WHERE = 'main/backup/20261123-162000I/manifest';

const header: ManifestHeader = {
  t: 'header',
  format: 1,
  id: '20261123-162000I',
  type: 'incr',
  parent: '20261122-010000F',
  pgVersion: 15,
  pgdata: '/var/lib/postgresql/15/main',
  blockSize: 8192,
  relsegBlocks: 131072,
  tablespaces: [{ oid: 16385, name: 'ts1', location: '/srv/ts1' }],
};

const files: FileEntry[] = [
  { t: 'file', path: 'PG_VERSION', size: 3, mode: 0o600, mtimeMs: 1_700_000_000_000, sha256: SHA_A, object: { backup: '20261122-010000F', n: 7, offset: 1234 } },
  { t: 'file', path: 'base/5/16384', size: 3 * 8192, mode: 0o600, mtimeMs: 1_700_000_000_500.25, sha256: SHA_B, delta: { n: 0, offset: 0, blocks: [[0, 1], [2, 1]] }, checksumFailures: [2] },
  {
    t: 'file', path: 'base/5/16390', size: PART_SIZE + 8192, mode: 0o600, mtimeMs: 1_700_000_001_000, sha256: SHA_C,
    parts: [
      { start: 0, size: PART_SIZE, sha256: SHA_A, object: { backup: '20261123-162000I', n: 1, offset: 0 } },
      { start: PART_SIZE, size: 8192, sha256: SHA_B, delta: { n: 2, offset: 0, blocks: [[16384, 1]] } },
    ],
  },
  { t: 'file', path: 'pg_tblspc/16385/PG_15_202209061/5/16400', size: 0, mode: 0o640, mtimeMs: 1_700_000_002_000, sha256: SHA_EMPTY },
];

const manifest: Manifest = {
  header,
  dirs: [{ t: 'dir', path: 'base', mode: 0o700 }, { t: 'dir', path: 'base/5', mode: 0o700 }],
  links: [{ t: 'link', path: 'pg_tblspc/16385', target: '/srv/ts1' }],
  files: new Map(files.map((f) => [f.path, f])),
};

const text = (...records: unknown[]) => records.map((r) => JSON.stringify(r)).join('\n') + '\n';
const minimalHeader = { ...header };
const fileRec = (over: Record<string, unknown>) => ({ t: 'file', path: 'base/1/1', size: 8192, mode: 0o600, mtimeMs: 1, sha256: SHA_A, object: { backup: 'X', n: 0, offset: 0 }, ...over });

function parseError(body: string): Error {
  try {
    parseManifest(body, WHERE);
  } catch (e) {
    expect(e).toBeInstanceOf(IntegrityError);
    return e as Error;
  }
  throw new Error('expected parseManifest to throw');
}

describe('manifestLines / parseManifest', () => {
  it('writes one JSON line per record: header, dirs, links, files', () => {
    const lines = [...manifestLines(manifest)];
    expect(lines).toHaveLength(1 + 2 + 1 + 4);
    expect(lines.every((l) => l.endsWith('\n') && !l.slice(0, -1).includes('\n'))).toBe(true);
    expect(lines.map((l) => (JSON.parse(l) as { t: string }).t)).toEqual(['header', 'dir', 'dir', 'link', 'file', 'file', 'file', 'file']);
    expect(lines[0]).toBe(JSON.stringify(header) + '\n');
    expect(lines[4]).toBe(JSON.stringify(files[0]) + '\n');
  });

  it('round-trips header, dirs, links and every kind of file entry', () => {
    const back = parseManifest([...manifestLines(manifest)].join(''), WHERE);
    expect(back.header).toEqual(header);
    expect(back.dirs).toEqual(manifest.dirs);
    expect(back.links).toEqual(manifest.links);
    expect([...back.files.keys()]).toEqual(files.map((f) => f.path));
    for (const f of files) expect(back.files.get(f.path)).toEqual(f);
    // Serializing the parsed manifest again gives the same bytes.
    expect([...manifestLines(back)].join('')).toBe([...manifestLines(manifest)].join(''));
  });

  it('accepts records in any order after the header, blank lines and a missing final newline', () => {
    const body = [JSON.stringify(files[0]), '', JSON.stringify(header), JSON.stringify(manifest.links[0]), '', JSON.stringify(manifest.dirs[0])].join('\n');
    const m = parseManifest(body, WHERE);
    expect(m.header.id).toBe('20261123-162000I');
    expect(m.dirs).toEqual([manifest.dirs[0]]);
    expect(m.links).toEqual(manifest.links);
    expect([...m.files.keys()]).toEqual(['PG_VERSION']);
  });

  it('a header alone is a manifest with nothing in it', () => {
    const m = parseManifest(text(minimalHeader), WHERE);
    expect(m).toEqual({ header, dirs: [], links: [], files: new Map() });
  });

  it('MANIFEST_FORMAT is 1', () => {
    expect(MANIFEST_FORMAT).toBe(1);
  });
});

describe('parseManifest errors', () => {
  const pre = `unable to read manifest '${WHERE}' line`;
  it.each<[string, string, string]>([
    ['invalid JSON', JSON.stringify(header) + '\n{"t":"dir",', `${pre} 2: invalid JSON`],
    ['unknown record type', text(header, { t: 'socket', path: 'x' }), `${pre} 2: unknown record type "socket"`],
    ['record without type', text(header, { path: 'x' }), `${pre} 2: unknown record type undefined`],
    ['JSON that is not an object (number)', JSON.stringify(header) + '\n42\n', `${pre} 2: not a JSON object`],
    ['second header', text(header, manifest.dirs[0], header), `${pre} 3: second header`],
    ['no header', text(manifest.dirs[0], files[0]), `${pre} 1: no header`],
    ['empty text', '', `${pre} 1: no header`],
    ['unsupported format', text({ ...header, format: 2 }), `${pre} 1: manifest format 2 is not supported (supports 1)`],
    ['format missing', text({ ...header, format: undefined }), `${pre} 1: manifest format undefined is not supported (supports 1)`],
    ['header blockSize 0', text({ ...header, blockSize: 0 }), `${pre} 1: header is missing fields`],
    ['header without tablespaces', text({ ...header, tablespaces: undefined }), `${pre} 1: header is missing fields`],
    ['dir ../x', text(header, { t: 'dir', path: '../x', mode: 0o700 }), `${pre} 2: unsafe or invalid path "../x"`],
    ['dir /abs', text(header, { t: 'dir', path: '/abs', mode: 0o700 }), `${pre} 2: unsafe or invalid path "/abs"`],
    ['file a//b', text(header, fileRec({ path: 'a//b' })), `${pre} 2: unsafe or invalid path "a//b"`],
    ['file a/./b', text(header, fileRec({ path: 'a/./b' })), `${pre} 2: unsafe or invalid path "a/./b"`],
    ['file a/../../b', text(header, fileRec({ path: 'a/../../b' })), `${pre} 2: unsafe or invalid path "a/../../b"`],
    ['file trailing slash', text(header, fileRec({ path: 'base/' })), `${pre} 2: unsafe or invalid path "base/"`],
    ['file empty path', text(header, fileRec({ path: '' })), `${pre} 2: unsafe or invalid path ""`],
    ['file path not a string', text(header, fileRec({ path: 7 })), `${pre} 2: unsafe or invalid path 7`],
    ['link ..', text(header, { t: 'link', path: 'pg_tblspc/..', target: '/srv' }), `${pre} 2: unsafe or invalid path "pg_tblspc/.."`],
    ['duplicate file', text(header, fileRec({}), manifest.dirs[0], fileRec({ size: 0, object: undefined })), `${pre} 4: file 'base/1/1' listed twice`],
    ['no content reference, size > 0', text(header, fileRec({ object: undefined })), `${pre} 2: file 'base/1/1' has no content reference`],
    ['link target relative', text(header, { t: 'link', path: 'pg_tblspc/16385', target: 'srv/ts1' }), `${pre} 2: link target must be an absolute path`],
    ['link target missing', text(header, { t: 'link', path: 'pg_tblspc/16385' }), `${pre} 2: link target must be an absolute path`],
    ['parts not an array', text(header, fileRec({ object: undefined, parts: { start: 0 } })), `${pre} 2: file 'base/1/1' has invalid parts`],
    ['part without start', text(header, fileRec({ object: undefined, parts: [{ size: 8192, sha256: SHA_A, object: { backup: 'X', n: 0, offset: 0 } }] })), `${pre} 2: file 'base/1/1' has invalid parts`],
    ['part with negative size', text(header, fileRec({ object: undefined, parts: [{ start: 0, size: -1, sha256: SHA_A, object: { backup: 'X', n: 0, offset: 0 } }] })), `${pre} 2: file 'base/1/1' has invalid parts`],
    ['part without sha256', text(header, fileRec({ object: undefined, parts: [{ start: 0, size: 8192, object: { backup: 'X', n: 0, offset: 0 } }] })), `${pre} 2: file 'base/1/1' has invalid parts`],
    ['part with content but no reference', text(header, fileRec({ object: undefined, parts: [{ start: 0, size: 8192, sha256: SHA_A }] })), `${pre} 2: file 'base/1/1' has invalid parts`],
    ['bad sha256', text(header, fileRec({ sha256: 'A'.repeat(64) })), `${pre} 2: file 'base/1/1' has no valid size or sha256`],
    ['fractional size', text(header, fileRec({ size: 1.5 })), `${pre} 2: file 'base/1/1' has no valid size or sha256`],
    ['object without backup', text(header, fileRec({ object: { n: 0, offset: 0 } })), `${pre} 2: file 'base/1/1' has an invalid object reference`],
    ['delta without blocks', text(header, fileRec({ object: undefined, delta: { n: 0, offset: 0 } })), `${pre} 2: file 'base/1/1' has an invalid delta`],
  ])('%s', (_, body, message) => {
    expect(parseError(body).message).toBe(message);
  });

  // A corrupt manifest must fail as an IntegrityError naming the line (exit code 11), never as a
  // TypeError from reading a property of null.
  it.each<[string, string, RegExp]>([
    ['a JSON null line', JSON.stringify(header) + '\nnull\n', /^unable to read manifest 'main\/backup\/20261123-162000I\/manifest' line 2: /],
    ['a null part', text(header, fileRec({ object: undefined, parts: [null] })), /^unable to read manifest 'main\/backup\/20261123-162000I\/manifest' line 2: file 'base\/1\/1' has invalid parts$/],
  ])('%s is an IntegrityError', (_, body, message) => {
    expect(parseError(body).message).toMatch(message);
  });

  it('accepts an empty file with no reference, and empty parts', () => {
    const m = parseManifest(text(header, fileRec({ size: 0, object: undefined }), fileRec({ path: 'p', size: 0, object: undefined, parts: [{ start: 0, size: 0, sha256: SHA_EMPTY }] })), WHERE);
    expect(m.files.get('base/1/1')?.size).toBe(0);
    expect(m.files.get('p')?.parts).toEqual([{ start: 0, size: 0, sha256: SHA_EMPTY }]);
  });
});

describe('toRanges', () => {
  it.each<[string, number[], Array<[number, number]>]>([
    ['runs and singles', [1, 2, 3, 7, 8, 10], [[1, 3], [7, 2], [10, 1]]],
    ['empty', [], []],
    ['one block', [0], [[0, 1]]],
    ['all contiguous', [4, 5, 6, 7], [[4, 4]]],
    ['all separate', [0, 2, 4], [[0, 1], [2, 1], [4, 1]]],
    ['large block numbers', [131071, 131072], [[131071, 2]]],
  ])('%s', (_, blocks, ranges) => {
    expect(toRanges(blocks)).toEqual(ranges);
  });

  it('takes any iterable', () => {
    expect(toRanges(new Set([3, 4, 9]))).toEqual([[3, 2], [9, 1]]);
  });
});

describe('deltaBlockCount', () => {
  it.each<[Array<[number, number]>, number]>([
    [[], 0],
    [[[0, 1]], 1],
    [[[1, 3], [7, 2], [10, 1]], 6],
    [[[0, 131072]], 131072],
  ])('%j -> %i', (blocks, n) => {
    expect(deltaBlockCount({ n: 0, offset: 0, blocks })).toBe(n);
  });
});

describe('piecesOf', () => {
  it('a whole file is one piece with its object reference', () => {
    expect(piecesOf(files[0]!)).toEqual([{ start: 0, size: 3, sha256: SHA_A, object: { backup: '20261122-010000F', n: 7, offset: 1234 } }]);
  });

  it('a delta file is one piece with its delta', () => {
    expect(piecesOf(files[1]!)).toEqual([{ start: 0, size: 3 * 8192, sha256: SHA_B, delta: { n: 0, offset: 0, blocks: [[0, 1], [2, 1]] } }]);
  });

  it('a file in parts is its parts, as stored', () => {
    const f = files[2]!;
    expect(piecesOf(f)).toBe(f.parts);
  });

  it('an empty file is one empty piece without a reference', () => {
    const pieces = piecesOf(files[3]!);
    expect(pieces).toEqual([{ start: 0, size: 0, sha256: SHA_EMPTY }]);
    expect(Object.keys(pieces[0]!)).toEqual(['start', 'size', 'sha256']);
  });
});

describe('partsDigest', () => {
  const sha = (s: string) => createHash('sha256').update(s).digest('hex');
  const part = (start: number, sha256: string): FilePart => ({ start, size: 8192, sha256 });

  it('is the sha256 of the hex digests concatenated in order', () => {
    const h1 = sha('part one');
    const h2 = sha('part two');
    const expected = createHash('sha256').update(`${h1}${h2}`, 'utf8').digest('hex');
    expect(partsDigest([part(0, h1), part(PART_SIZE, h2)])).toBe(expected);
    expect(partsDigest([part(0, h1), part(PART_SIZE, h2)])).not.toBe(partsDigest([part(0, h2), part(PART_SIZE, h1)]));
  });

  it('of no parts is the sha256 of nothing; of one part is the sha256 of its hex digest', () => {
    expect(partsDigest([])).toBe(SHA_EMPTY);
    expect(partsDigest([part(0, SHA_A)])).toBe(createHash('sha256').update(SHA_A).digest('hex'));
    expect(partsDigest([part(0, SHA_A)])).toBe('ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb');
  });
});

describe('PART_SIZE', () => {
  it('is 128 MiB, a multiple of every PostgreSQL block size', () => {
    expect(PART_SIZE).toBe(134217728);
    for (const bs of [1024, 2048, 4096, 8192, 16384, 32768]) expect(PART_SIZE % bs).toBe(0);
  });
});
