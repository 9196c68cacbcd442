import { describe, expect, it } from 'vitest';
import type { TablespaceInfo } from '../../src/catalog/manifest.js';
import { InvalidInputError } from '../../src/common/errors.js';
import { parseTablespaceMap, resolveTablespaceMap } from '../../src/restore/tablespace-map.js';

function thrown(f: () => unknown): Error {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(InvalidInputError);
    return e as Error;
  }
  throw new Error('expected an error');
}

describe('parseTablespaceMap', () => {
  it.each<[string, string, { from: string; to: string }]>([
    ['by oid', '16385=/mnt/ts1', { from: '16385', to: '/mnt/ts1' }],
    ['by name', 'fast_ssd=/mnt/ssd', { from: 'fast_ssd', to: '/mnt/ssd' }],
    ['by location', '/srv/pg/ts1=/mnt/ts1', { from: '/srv/pg/ts1', to: '/mnt/ts1' }],
    ['OLD with =', '/srv/a=b=/mnt/x', { from: '/srv/a=b', to: '/mnt/x' }],
    ['OLD ending with =', 'odd==/mnt/x', { from: 'odd=', to: '/mnt/x' }],
    ['NEW with = not followed by /', 'ts=/mnt/a=b', { from: 'ts', to: '/mnt/a=b' }],
    ['NEW trailing slash', 'ts=/mnt/x/', { from: 'ts', to: '/mnt/x' }],
    ['NEW repeated slashes', 'ts=//mnt//x//', { from: 'ts', to: '/mnt/x' }],
    ['spaces and quotes', "my ts=/mnt/it's here", { from: 'my ts', to: "/mnt/it's here" }],
  ])('%s: %s', (_, flag, expected) => {
    expect(parseTablespaceMap([flag])).toEqual([expected]);
  });

  it('keeps the order of several flags', () => {
    expect(parseTablespaceMap(['a=/x', 'b=/y'])).toEqual([{ from: 'a', to: '/x' }, { from: 'b', to: '/y' }]);
    expect(parseTablespaceMap([])).toEqual([]);
  });

  it.each<[string, string]>([
    ['ts1', "invalid --tablespace-map 'ts1': expected OLD=NEW (OLD: tablespace OID, name or location; NEW: absolute path)"],
    ['ts1=relative/dir', "invalid --tablespace-map 'ts1=relative/dir': the new location must be an absolute path"],
    ['ts1=', "invalid --tablespace-map 'ts1=': the new location must be an absolute path"],
    ['=/mnt/x', "invalid --tablespace-map '=/mnt/x': the tablespace to map (before =) is empty"],
    ['ts1=/', "invalid --tablespace-map 'ts1=/': the new location cannot be the root directory"],
    ['ts1=/mnt/../etc', "invalid --tablespace-map 'ts1=/mnt/../etc': the new location must not contain '.' or '..' components"],
    ['ts1=/mnt/./x', "invalid --tablespace-map 'ts1=/mnt/./x': the new location must not contain '.' or '..' components"],
    ['ts1=/mnt/x\ny', "invalid --tablespace-map 'ts1=/mnt/x\\x0ay': contains a NUL, carriage return or newline"],
  ])('rejects %j', (flag, message) => {
    expect(thrown(() => parseTablespaceMap(['ok=/fine', flag])).message).toBe(message);
  });
});

describe('resolveTablespaceMap', () => {
  const tablespaces: TablespaceInfo[] = [
    { oid: 16385, name: 'ts1', location: '/srv/pg/ts1' },
    { oid: 16386, name: 'fast ssd', location: '/ssd/pg/' },
    { oid: 16387, name: '16385', location: '/srv/pg/numeric' },
    { oid: 16388, name: 'archive', location: '/srv/pg/archive' },
  ];
  const resolve = (flags: string[]) => [...resolveTablespaceMap(parseTablespaceMap(flags), tablespaces)];

  it.each<[string, string[], Array<[number, string]>]>([
    ['no map: every tablespace stays', [], [[16385, '/srv/pg/ts1'], [16386, '/ssd/pg/'], [16387, '/srv/pg/numeric'], [16388, '/srv/pg/archive']]],
    ['by name with a space', ['fast ssd=/mnt/ssd'], [[16385, '/srv/pg/ts1'], [16386, '/mnt/ssd'], [16387, '/srv/pg/numeric'], [16388, '/srv/pg/archive']]],
    ['by oid', ['16388=/mnt/arch'], [[16385, '/srv/pg/ts1'], [16386, '/ssd/pg/'], [16387, '/srv/pg/numeric'], [16388, '/mnt/arch']]],
    ['by location, trailing / ignored on both sides', ['/ssd/pg=/mnt/a', '/srv/pg/ts1/=/mnt/b'], [[16385, '/mnt/b'], [16386, '/mnt/a'], [16387, '/srv/pg/numeric'], [16388, '/srv/pg/archive']]],
    ['a swap of two locations', ['/srv/pg/ts1=/srv/pg/archive', 'archive=/srv/pg/ts1'], [[16385, '/srv/pg/archive'], [16386, '/ssd/pg/'], [16387, '/srv/pg/numeric'], [16388, '/srv/pg/ts1']]],
    ['siblings with a common prefix are not nested', ['ts1=/mnt/ts', 'archive=/mnt/ts2'], [[16385, '/mnt/ts'], [16386, '/ssd/pg/'], [16387, '/srv/pg/numeric'], [16388, '/mnt/ts2']]],
  ])('%s', (_, flags, expected) => {
    expect(resolve(flags)).toEqual(expected);
  });

  it('resolves nothing for a backup without tablespaces', () => {
    expect([...resolveTablespaceMap([], [])]).toEqual([]);
  });

  it.each<[string, string[], string]>([
    ['an unknown tablespace', ['nope=/mnt/x'],
      "--tablespace-map 'nope=/mnt/x': 'nope' matches no tablespace of the backup (by OID, name or location); the backup's tablespaces are: " +
      "16385 'ts1' at '/srv/pg/ts1', 16386 'fast ssd' at '/ssd/pg/', 16387 '16385' at '/srv/pg/numeric', 16388 'archive' at '/srv/pg/archive'"],
    ['a location prefix only', ['/srv/pg=/mnt/x'], "--tablespace-map '/srv/pg=/mnt/x': '/srv/pg' matches no tablespace of the backup (by OID, name or location); the backup's tablespaces are: 16385 'ts1' at '/srv/pg/ts1', 16386 'fast ssd' at '/ssd/pg/', 16387 '16385' at '/srv/pg/numeric', 16388 'archive' at '/srv/pg/archive'"],
    ['an OID that is also a name', ['16385=/mnt/x'],
      "--tablespace-map '16385=/mnt/x': '16385' matches more than one tablespace: 16385 'ts1' at '/srv/pg/ts1', 16387 '16385' at '/srv/pg/numeric'; use the OID"],
    ['one tablespace mapped twice', ['ts1=/mnt/a', '/srv/pg/ts1=/mnt/b'],
      "--tablespace-map '/srv/pg/ts1=/mnt/b': tablespace 16385 'ts1' at '/srv/pg/ts1' is already mapped by --tablespace-map 'ts1=/mnt/a'"],
    ['two to one location', ['ts1=/mnt/x', 'archive=/mnt/x/'],
      "--tablespace-map: tablespaces 16385 'ts1' at '/srv/pg/ts1' (mapped to '/mnt/x') and 16388 'archive' at '/srv/pg/archive' (mapped to '/mnt/x') would share the location '/mnt/x'"],
    ['onto an unmapped tablespace', ['ts1=/ssd/pg'],
      "--tablespace-map: tablespaces 16385 'ts1' at '/srv/pg/ts1' (mapped to '/ssd/pg') and 16386 'fast ssd' at '/ssd/pg/' would share the location '/ssd/pg'"],
    ['inside another new location', ['ts1=/mnt/x', 'archive=/mnt/x/archive'],
      "--tablespace-map: the location of tablespace 16388 'archive' at '/srv/pg/archive' (mapped to '/mnt/x/archive') is inside that of tablespace 16385 'ts1' at '/srv/pg/ts1' (mapped to '/mnt/x')"],
    ['around an unmapped tablespace', ['ts1=/ssd'],
      "--tablespace-map: the location of tablespace 16386 'fast ssd' at '/ssd/pg/' is inside that of tablespace 16385 'ts1' at '/srv/pg/ts1' (mapped to '/ssd')"],
  ])('rejects %s', (_, flags, message) => {
    expect(thrown(() => resolve(flags)).message).toBe(message);
  });

  it('says when the backup has no tablespaces', () => {
    expect(thrown(() => resolveTablespaceMap([{ from: 'ts1', to: '/x' }], [])).message).toBe(
      "--tablespace-map 'ts1=/x': 'ts1' matches no tablespace of the backup (by OID, name or location); the backup has no tablespaces",
    );
  });
});
