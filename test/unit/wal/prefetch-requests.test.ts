/** The names of the shell client's requests to the serving prefetch worker (src/wal/prefetch-requests.ts). */
import { describe, expect, it } from 'vitest';
import { parseRequestFile, requestFileName, serveArgsLine } from '../../../src/wal/prefetch-requests.js';

describe('request files of the prefetch area', () => {
  it.each([
    ['000000010000000000000012.want-4242', { kind: 'want', name: '000000010000000000000012', pid: 4242 }],
    ['000000010000000000000012.got-1', { kind: 'got', name: '000000010000000000000012', pid: 1 }],
    ['00000002.history.none-77', { kind: 'none', name: '00000002.history', pid: 77 }],
    ['00000002.history.fail-9', { kind: 'fail', name: '00000002.history', pid: 9 }],
    // Everything else in the area is not a request: segments, locks, temp files, other names.
    ['000000010000000000000012', undefined],
    ['000000010000000000000012.lock', undefined],
    ['.000000010000000000000012.got-5.pgark-tmp-6-abcd', undefined],
    ['000000010000000000000012.want-', undefined],
    ['000000010000000000000012.want-0', undefined],
    ['000000010000000000000012.want-12a', undefined],
    ['000000010000000000000012.partial.want-3', undefined],
    ['000000010000000000000012.00000028.backup.want-3', undefined],
    ['00000001000000000000001g.want-3', undefined],
    ['serve.lock', undefined],
  ])('%s', (entry, expected) => {
    expect(parseRequestFile(entry)).toEqual(expected);
    if (expected) expect(requestFileName(expected.kind as 'want', expected.name, expected.pid)).toBe(entry);
  });
});

describe('serveArgsLine: the options of a wal-fetch call as the shell client joins them', () => {
  const n = '000000010000000000000012';
  it.each([
    [['wal-fetch', n, 'pg_wal/RECOVERYXLOG', '--repo', '/r', '--stanza', 'main'], '--repo /r --stanza main'],
    [['wal-fetch', n, 'pg_wal/RECOVERYXLOG'], ''],
    // Options before the positionals, another command or name: the client could not compare.
    [['--repo', '/r', 'wal-fetch', n, 'pg_wal/RECOVERYXLOG'], undefined],
    [['wal-fetch', '000000010000000000000013', 'pg_wal/RECOVERYXLOG'], undefined],
    [['wal-fetch', n, 'pg_wal/RECOVERYXLOG', '--repo', '/r\n--stanza other'], undefined],
  ])('%j', (args, expected) => {
    expect(serveArgsLine(args, n, 'pg_wal/RECOVERYXLOG')).toBe(expected);
  });
});
