import { mkdtempSync, mkdirSync, writeFileSync, existsSync, statSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { pushRecordDir, takePushRecord, walPushPathOf } from '../../src/wal/push-record.js';

const SEG = '000000010000000000000007';

describe('walPushPathOf (argv scan of the bin fast path)', () => {
  it.each([
    [['wal-push', 'pg_wal/X'], 'pg_wal/X'],
    [['wal-push', 'pg_wal/X', '--repo', '/r', '--stanza', 'main'], 'pg_wal/X'],
    [['--repo', '/r', 'wal-push', '--jobs', '2', 'pg_wal/X'], 'pg_wal/X'],
    [['wal-push', '--repo=/r', 'pg_wal/X'], 'pg_wal/X'],
    [['wal-push', 'pg_wal/X', '--json'], undefined],
    [['wal-push', '--help'], undefined],
    [['wal-push', 'pg_wal/X', '--unknown'], undefined],
    [['wal-fetch', 'A', 'B'], undefined],
    [['wal-push'], undefined],
    [['wal-push', 'a', 'b'], undefined],
    [['--repo', 'wal-push', 'info', 'x'], undefined],
  ])('%j -> %s', (args, want) => {
    expect(walPushPathOf(['node', 'pgark', ...args])).toBe(want);
  });
});

describe('takePushRecord', () => {
  function setup() {
    const wal = mkdtempSync(join(tmpdir(), 'pgark-rec-'));
    const seg = join(wal, SEG);
    writeFileSync(seg, Buffer.alloc(1000, 1));
    mkdirSync(pushRecordDir(wal), { recursive: true });
    const st = statSync(seg);
    const rec = join(pushRecordDir(wal), SEG);
    writeFileSync(rec, JSON.stringify({ size: st.size, mtimeMs: st.mtimeMs, ino: st.ino, sha256: 'x' }));
    return { seg, rec };
  }
  it('answers once for an unchanged file and consumes the record', () => {
    const { seg, rec } = setup();
    expect(takePushRecord(seg)).toBe(true);
    expect(existsSync(rec)).toBe(false);
    expect(takePushRecord(seg)).toBe(false);
  });
  it('distrusts a changed file but still consumes the record', () => {
    const { seg, rec } = setup();
    utimesSync(seg, new Date(), new Date(Date.now() + 5000));
    expect(takePushRecord(seg)).toBe(false);
    expect(existsSync(rec)).toBe(false);
  });
  it('ignores non-segment names and missing records', () => {
    const { seg } = setup();
    expect(takePushRecord(join(seg, '..', '00000002.history'))).toBe(false);
    expect(takePushRecord(join(seg, '..', '000000010000000000000008'))).toBe(false);
  });
});
