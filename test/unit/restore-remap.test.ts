import { describe, expect, it } from 'vitest';
import type { LinkEntry } from '../../src/catalog/manifest.js';
import { tablespaceMapText, tablespaceTargets } from '../../src/restore/restore-remap.js';

const link = (oid: number, target: string): LinkEntry => ({ t: 'link', path: `pg_tblspc/${oid}`, target });

describe('tablespaceTargets', () => {
  it.each([
    ['no tablespaces', [], new Map(), {}],
    ['kept where the backup was taken', [link(16384, '/srv/ts1')], new Map(), { 16384: '/srv/ts1' }],
    ['moved by --tablespace-map, others kept', [link(16384, '/srv/ts1'), link(16385, '/srv/ts2')], new Map([[16385, '/new/ts2']]), { 16384: '/srv/ts1', 16385: '/new/ts2' }],
  ] as const)('%s', (_what, links, map, want) => {
    expect(tablespaceTargets([...links], map)).toEqual(want);
  });
});

describe('tablespaceMapText', () => {
  it('names the locations restored into, one line per tablespace', () => {
    expect(tablespaceMapText([link(16384, '/srv/ts1'), link(16385, '/srv/ts2')], { 16384: '/srv/ts1', 16385: '/new/ts2' }))
      .toBe('16384 /srv/ts1\n16385 /new/ts2\n');
  });
  it('escapes a backslash, newline and carriage return with a backslash', () => {
    expect(tablespaceMapText([link(1, 'x')], { 1: '/a\\b\nc\rd' })).toBe('1 /a\\\\b\\\nc\\\rd\n');
  });
  it('falls back to the backup location for a tablespace without a target', () => {
    expect(tablespaceMapText([link(7, '/orig')], {})).toBe('7 /orig\n');
  });
});
