import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../src/common/errors.js';
import { checkRange, listStart } from '../../storage-drivers/keys.js';

describe('listStart', () => {
  it.each([
    ['', '', ''],
    ['main/', 'main', ''],
    ['main/wal/00000001', 'main/wal', '00000001'],
    ['dirx', '', 'dirx'],
    ['a/b/c/', 'a/b/c', ''],
  ])('%j starts in %j with names starting %j', (prefix, dirKey, namePrefix) => {
    expect(listStart(prefix)).toEqual({ dirKey, namePrefix });
  });
  it.each(['../x', '/abs', 'a//b', 'a/./b'])('rejects %j', (bad) => {
    expect(() => listStart(bad)).toThrow(InvalidInputError);
  });
});

describe('checkRange', () => {
  it('defaults the offset and keeps an absent length', () => {
    expect(checkRange('k', {})).toEqual({ offset: 0, length: undefined });
    expect(checkRange('k', { offset: 5, length: 0 })).toEqual({ offset: 5, length: 0 });
  });
  it.each([[{ offset: -1 }], [{ offset: 1.5 }], [{ length: -2 }], [{ length: Number.MAX_VALUE }]])('rejects %j', (o) => {
    expect(() => checkRange('k', o)).toThrow(InvalidInputError);
  });
});
